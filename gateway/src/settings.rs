//! Timeouts, limits and retry rules, with ingress-nginx's defaults.
//!
//! [`ProxySettings`] belong to a route (the per-Ingress annotations override
//! them); [`ListenerSettings`] belong to a listening socket.

pub use crate::scheme::Scheme;
use std::sync::Arc;
use std::time::Duration;

use http::StatusCode;

use crate::upstream::PoolSettings;
use crate::upstream_tls::UpstreamTls;

/// `backend-protocol`: how the gateway talks to a route's endpoints.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum BackendProtocol {
    /// HTTP/1.1 over TCP (the default).
    #[default]
    Http,
    /// HTTP/1.1 over TLS.
    Https,
    /// gRPC: HTTP/2 over TCP with prior knowledge (h2c).
    Grpc,
    /// gRPC over TLS: HTTP/2 by ALPN.
    Grpcs,
    /// nginx's `$scheme`: HTTPS when the client came over HTTPS, else HTTP.
    AutoHttp,
}

impl BackendProtocol {
    /// ingress-nginx's names (`HTTP`, `HTTPS`, `GRPC`, `GRPCS`,
    /// `AUTO_HTTP`), in any case.
    pub fn parse(value: &str) -> Option<Self> {
        Some(match value.to_ascii_uppercase().as_str() {
            "HTTP" => Self::Http,
            "HTTPS" => Self::Https,
            "GRPC" => Self::Grpc,
            "GRPCS" => Self::Grpcs,
            "AUTO_HTTP" => Self::AutoHttp,
            _ => return None,
        })
    }

    /// Whether the upstream speaks HTTP/2 (gRPC).
    pub fn is_http2(self) -> bool {
        matches!(self, Self::Grpc | Self::Grpcs)
    }

    /// Whether the connection to the upstream uses TLS for a client that
    /// came in over `scheme`.
    pub fn uses_tls(self, scheme: Scheme) -> bool {
        match self {
            Self::Http | Self::Grpc => false,
            Self::Https | Self::Grpcs => true,
            Self::AutoHttp => scheme == Scheme::Https,
        }
    }
}

/// `proxy-next-upstream`: which failures send a request to the next
/// endpoint (ingress-nginx's default: `error timeout`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NextUpstream {
    /// `error`: the connection failed or broke before a response head.
    pub error: bool,
    /// `timeout`: connecting or waiting for the response head timed out.
    pub timeout: bool,
    /// `invalid_header`: the upstream sent a malformed response head.
    pub invalid_header: bool,
    /// `http_<code>`: these response statuses, as a bit per
    /// [`NextUpstream::STATUSES`] entry.
    statuses: u8,
}

impl Default for NextUpstream {
    fn default() -> Self {
        Self {
            error: true,
            timeout: true,
            invalid_header: false,
            statuses: 0,
        }
    }
}

impl NextUpstream {
    /// The statuses nginx can retry on (`http_500` ... `http_429`).
    pub const STATUSES: [u16; 7] = [500, 502, 503, 504, 403, 404, 429];

    /// `off`: nothing is retried.
    pub fn off() -> Self {
        Self {
            error: false,
            timeout: false,
            invalid_header: false,
            statuses: 0,
        }
    }

    /// Also retries responses with status `code`; `false` when nginx
    /// cannot retry on it.
    pub fn add_status(&mut self, code: u16) -> bool {
        match Self::STATUSES.iter().position(|c| *c == code) {
            Some(bit) => {
                self.statuses |= 1 << bit;
                true
            }
            None => false,
        }
    }

    /// Whether a response with `status` goes to the next endpoint.
    pub fn retries_status(&self, status: StatusCode) -> bool {
        self.statuses != 0
            && Self::STATUSES
                .iter()
                .position(|c| *c == status.as_u16())
                .is_some_and(|bit| self.statuses & (1 << bit) != 0)
    }
}

/// Per-route proxy behaviour. Defaults are ingress-nginx's
/// (`internal/ingress/controller/config/config.go`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProxySettings {
    /// `proxy-connect-timeout`: TCP connect to an endpoint (5 s).
    pub connect_timeout: Duration,
    /// `proxy-read-timeout`: longest wait for the response head after the
    /// request was sent, and between two reads of the response body (60 s).
    pub read_timeout: Duration,
    /// `proxy-send-timeout`: longest stall while sending the request body (60 s).
    pub send_timeout: Duration,
    /// `proxy-body-size`: largest request body; `None` is unlimited (1 MiB).
    pub max_body_size: Option<u64>,
    /// `client-body-timeout`: longest wait between two reads of the client's
    /// request body (60 s).
    pub client_body_timeout: Duration,
    /// `proxy-next-upstream-tries`: attempts per request, the first included (3).
    pub next_upstream_tries: u32,
    /// `proxy-next-upstream-timeout`: time budget for all attempts; `None` is unlimited.
    pub next_upstream_timeout: Option<Duration>,
    /// `retry-non-idempotent`, or `non_idempotent` in `proxy-next-upstream`:
    /// also retry POST, PATCH and LOCK after the request reached an
    /// endpoint (false).
    pub retry_non_idempotent: bool,
    /// `proxy-next-upstream`: which failures are retried.
    pub next_upstream: NextUpstream,
    /// `backend-protocol`: HTTP (default), HTTPS, GRPC, GRPCS or AUTO_HTTP.
    pub protocol: BackendProtocol,
    /// `proxy-http-version: 1.0`: HTTP/1.0 requests with `Connection:
    /// close` to the upstream (default 1.1, with keep-alive).
    pub http_10: bool,
    /// `proxy-ssl-*`: TLS to the upstream when the protocol uses it;
    /// `None`: nginx's defaults (no verification, no SNI).
    pub upstream_tls: Option<Arc<UpstreamTls>>,
    /// `upstream-keepalive-*`: reuse of upstream connections.
    pub pool: PoolSettings,
    /// `edge-gateway.io/proxy-first-byte-timeout`: longest wait from
    /// sending the request to the first response body byte (a model's time
    /// to first token); replaces `proxy-read-timeout` until that byte.
    /// `None`: `proxy-read-timeout` alone, as in ingress-nginx.
    pub first_byte_timeout: Option<Duration>,
    /// `edge-gateway.io/stream-idle-timeout`: longest gap between two
    /// response body chunks; replaces `proxy-read-timeout` after the first.
    pub stream_idle_timeout: Option<Duration>,
    /// `edge-gateway.io/request-deadline`: the whole exchange, from the
    /// start of forwarding (holding and queueing included) to the last
    /// response byte.
    pub request_deadline: Option<Duration>,
    /// `edge-gateway.io/model-from-body`: copy a JSON body's top-level
    /// `model` into a header before the canary decision; `None`: off.
    pub model_from_body: Option<ModelFromBody>,
    /// What the route's requests tell the picker: their prompt and model
    /// (`prefix-affinity`, `endpoint-metrics`) and their criticality.
    pub signals: crate::backend::balance::RouteSignals,
}

/// `edge-gateway.io/model-from-body` and `model-body-peek`: which header
/// carries a JSON request body's top-level `model`, and how many body
/// bytes may be read to find it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ModelFromBody {
    /// The header set from the body (or removed when it names no model).
    pub header: http::HeaderName,
    /// The most body bytes read before forwarding (16 KiB, at most 1 MiB).
    pub peek: usize,
}

impl ModelFromBody {
    /// `model-body-peek`'s default.
    pub const DEFAULT_PEEK: usize = 16 * 1024;
    /// `model-body-peek`'s largest value.
    pub const MAX_PEEK: usize = 1024 * 1024;
}

impl Default for ProxySettings {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(5),
            read_timeout: Duration::from_secs(60),
            send_timeout: Duration::from_secs(60),
            max_body_size: Some(1024 * 1024),
            client_body_timeout: Duration::from_secs(60),
            next_upstream_tries: 3,
            next_upstream_timeout: None,
            retry_non_idempotent: false,
            next_upstream: NextUpstream::default(),
            protocol: BackendProtocol::Http,
            http_10: false,
            upstream_tls: None,
            pool: PoolSettings::default(),
            first_byte_timeout: None,
            stream_idle_timeout: None,
            request_deadline: None,
            model_from_body: None,
            signals: crate::backend::balance::RouteSignals::default(),
        }
    }
}

/// Per-listener client-side limits. Defaults are ingress-nginx's; the
/// controller ConfigMap overrides them for new connections
/// ([`ListenerOverrides`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ListenerSettings {
    /// The scheme of this listener.
    pub scheme: Scheme,
    /// The port reported in `X-Forwarded-Port`: ingress-nginx reports its
    /// container ports (80, 443), not the NodePorts, and so do we.
    pub forwarded_port: u16,
    /// `client-header-timeout`: the first request head (and the TLS
    /// handshake) must arrive within this, counted from the accept (60 s).
    pub client_header_timeout: Duration,
    /// `keep-alive`: how long a kept-alive connection may wait for the next
    /// request head to arrive (75 s); zero turns keep-alive off.
    pub keepalive_timeout: Duration,
    /// `keep-alive-requests`: requests served on one client connection (1000).
    pub keepalive_requests: u32,
    /// `large-client-header-buffers` (4 × 8k): the largest request head, in bytes.
    pub max_header_bytes: usize,
    /// `large-client-header-buffers` (one 8k buffer): the longest request
    /// target (414 beyond) and the longest header line (431 beyond).
    pub max_uri_bytes: usize,
    /// `use-http2`: whether ALPN offers `h2` on a TLS listener (true).
    pub http2: bool,
    /// `http2-max-concurrent-streams`: open streams per HTTP/2 connection (128).
    pub http2_max_concurrent_streams: u32,
    /// `edge-gateway.io/client-send-timeout` (nginx's `send_timeout`, 60 s):
    /// the longest a write to the client may stall (a client that stops
    /// reading); then the connection closes, releasing what its request
    /// held (upstream connection, in-flight slot).
    pub send_timeout: Duration,
    /// `max-worker-connections` (16384): client connections this listener
    /// holds at once; more are closed as soon as accepted. `None`: no cap.
    pub max_connections: Option<usize>,
    /// `use-proxy-protocol` (false): every connection starts with a PROXY
    /// protocol header (v1 or v2), read before TLS or HTTP.
    pub proxy_protocol: bool,
    /// `proxy-protocol-header-timeout` (5 s): how long that header may take.
    pub proxy_protocol_header_timeout: Duration,
    /// `disable-ipv6` (false): connections from IPv6 peers are closed at
    /// once (a listener bound to `::` then serves IPv4 only).
    pub disable_ipv6: bool,
    /// `--enable-ssl-passthrough` (false, HTTPS only): read each
    /// ClientHello's server name before terminating TLS, and splice
    /// connections for passthrough hosts to their backend.
    pub ssl_passthrough: bool,
}

impl ListenerSettings {
    /// ingress-nginx's defaults for a listener of `scheme`.
    pub fn new(scheme: Scheme) -> Self {
        Self {
            scheme,
            forwarded_port: match scheme {
                Scheme::Http => 80,
                Scheme::Https => 443,
            },
            client_header_timeout: Duration::from_secs(60),
            keepalive_timeout: Duration::from_secs(75),
            keepalive_requests: 1000,
            max_header_bytes: 4 * 8 * 1024,
            max_uri_bytes: 8 * 1024,
            http2: true,
            http2_max_concurrent_streams: 128,
            send_timeout: Duration::from_secs(60),
            max_connections: Some(16_384),
            proxy_protocol: false,
            proxy_protocol_header_timeout: Duration::from_secs(5),
            disable_ipv6: false,
            ssl_passthrough: false,
        }
    }

    /// These settings with the ConfigMap's overrides applied.
    pub fn overridden(&self, overrides: &ListenerOverrides) -> Self {
        let mut settings = *self;
        let o = overrides;
        if let Some(timeout) = o.client_header_timeout {
            settings.client_header_timeout = timeout;
        }
        if let Some(timeout) = o.keepalive_timeout {
            settings.keepalive_timeout = timeout;
        }
        if let Some(requests) = o.keepalive_requests {
            settings.keepalive_requests = requests;
        }
        if let Some(buffers) = o.header_buffers {
            settings.max_header_bytes = buffers.total();
            settings.max_uri_bytes = buffers.size;
        }
        if let Some(http2) = o.http2 {
            settings.http2 = http2;
        }
        if let Some(streams) = o.http2_max_concurrent_streams {
            settings.http2_max_concurrent_streams = streams;
        }
        if let Some(timeout) = o.send_timeout {
            settings.send_timeout = timeout;
        }
        if let Some(cap) = o.max_connections {
            settings.max_connections = cap;
        }
        if let Some(on) = o.proxy_protocol {
            settings.proxy_protocol = on;
        }
        if let Some(timeout) = o.proxy_protocol_header_timeout {
            settings.proxy_protocol_header_timeout = timeout;
        }
        if let Some(disable) = o.disable_ipv6 {
            settings.disable_ipv6 = disable;
        }
        settings
    }
}

/// `large-client-header-buffers`: `count` buffers of `size` bytes; a
/// request line or a header line must fit one, the head all of them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HeaderBuffers {
    /// How many buffers.
    pub count: usize,
    /// The size of one, in bytes.
    pub size: usize,
}

impl HeaderBuffers {
    /// The largest request head: all buffers together.
    pub fn total(self) -> usize {
        self.count.saturating_mul(self.size)
    }
}

/// The client-connection keys of the controller ConfigMap; each `None`
/// keeps the listener's own value. Read once per accepted connection, so a
/// change applies to new connections and open ones keep theirs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ListenerOverrides {
    /// `client-header-timeout`.
    pub client_header_timeout: Option<Duration>,
    /// `keep-alive` (zero: off).
    pub keepalive_timeout: Option<Duration>,
    /// `keep-alive-requests`.
    pub keepalive_requests: Option<u32>,
    /// `large-client-header-buffers`.
    pub header_buffers: Option<HeaderBuffers>,
    /// `use-http2`.
    pub http2: Option<bool>,
    /// `http2-max-concurrent-streams`.
    pub http2_max_concurrent_streams: Option<u32>,
    /// `edge-gateway.io/client-send-timeout`.
    pub send_timeout: Option<Duration>,
    /// `max-worker-connections` (`Some(None)`: `0`, no cap).
    pub max_connections: Option<Option<usize>>,
    /// `use-proxy-protocol`.
    pub proxy_protocol: Option<bool>,
    /// `proxy-protocol-header-timeout`.
    pub proxy_protocol_header_timeout: Option<Duration>,
    /// `disable-ipv6`.
    pub disable_ipv6: Option<bool>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn protocols_parse_as_ingress_nginx_names() {
        assert_eq!(
            BackendProtocol::parse("grpcs"),
            Some(BackendProtocol::Grpcs)
        );
        assert_eq!(
            BackendProtocol::parse("AUTO_HTTP"),
            Some(BackendProtocol::AutoHttp)
        );
        assert_eq!(BackendProtocol::parse("FCGI"), None);
        assert!(BackendProtocol::AutoHttp.uses_tls(Scheme::Https));
        assert!(!BackendProtocol::AutoHttp.uses_tls(Scheme::Http));
        assert!(BackendProtocol::Grpc.is_http2() && !BackendProtocol::Grpc.uses_tls(Scheme::Https));
    }

    #[test]
    fn next_upstream_statuses() {
        let mut next = NextUpstream::default();
        assert!(!next.retries_status(StatusCode::SERVICE_UNAVAILABLE));
        assert!(next.add_status(503));
        assert!(!next.add_status(501));
        assert!(next.retries_status(StatusCode::SERVICE_UNAVAILABLE));
        assert!(!next.retries_status(StatusCode::BAD_GATEWAY));
        assert!(!NextUpstream::off().error);
    }

    #[test]
    fn overrides_replace_only_what_they_set() {
        let base = ListenerSettings::new(Scheme::Https);
        assert_eq!(base.overridden(&ListenerOverrides::default()), base);
        let overrides = ListenerOverrides {
            keepalive_requests: Some(2),
            header_buffers: Some(HeaderBuffers {
                count: 4,
                size: 1024,
            }),
            http2: Some(false),
            ..ListenerOverrides::default()
        };
        let settings = base.overridden(&overrides);
        assert_eq!(settings.keepalive_requests, 2);
        assert_eq!(
            (settings.max_header_bytes, settings.max_uri_bytes),
            (4096, 1024)
        );
        assert!(!settings.http2);
        assert_eq!(settings.client_header_timeout, base.client_header_timeout);
        assert_eq!(settings.scheme, Scheme::Https);
    }
}
