//! Timeouts, limits and retry rules, with ingress-nginx's defaults.
//!
//! [`ProxySettings`] belong to a route (the per-Ingress annotations override
//! them); [`ListenerSettings`] belong to a listening socket.

use std::time::Duration;

use crate::upstream::PoolSettings;

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
    /// `retry-non-idempotent`: also retry POST, PATCH and LOCK after the
    /// request reached an endpoint (false).
    pub retry_non_idempotent: bool,
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
            pool: PoolSettings::default(),
            first_byte_timeout: None,
            stream_idle_timeout: None,
            request_deadline: None,
        }
    }
}

/// Which scheme a listener speaks, for `X-Forwarded-Proto` and friends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scheme {
    /// Plain HTTP.
    Http,
    /// HTTP over TLS.
    Https,
}

impl Scheme {
    /// `http` or `https`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Http => "http",
            Self::Https => "https",
        }
    }
}

/// Per-listener client-side limits. Defaults are ingress-nginx's.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListenerSettings {
    /// The scheme of this listener.
    pub scheme: Scheme,
    /// The port reported in `X-Forwarded-Port`: ingress-nginx reports its
    /// container ports (80, 443), not the NodePorts, and so do we.
    pub forwarded_port: u16,
    /// `client-header-timeout`: the whole request head must arrive within
    /// this, counted from the first wait for it; it also closes idle
    /// keep-alive connections (60 s).
    pub client_header_timeout: Duration,
    /// `keep-alive-requests`: requests served on one client connection (1000).
    pub keepalive_requests: u32,
    /// `large-client-header-buffers` (4 × 8k): the largest request head, in bytes.
    pub max_header_bytes: usize,
    /// The longest request target (request line limit, 8k) before 414.
    pub max_uri_bytes: usize,
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
            keepalive_requests: 1000,
            max_header_bytes: 4 * 8 * 1024,
            max_uri_bytes: 8 * 1024,
        }
    }
}
