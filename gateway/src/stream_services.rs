//! What the TCP and UDP services ConfigMaps and the `proxy-stream-*` keys
//! say, as the route table carries it; the `l4` module serves it.

use std::fmt;
use std::time::Duration;

use crate::ids::BackendId;

/// A stream service's transport.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum StreamProtocol {
    /// From `--tcp-services-configmap`.
    Tcp,
    /// From `--udp-services-configmap`.
    Udp,
}

impl StreamProtocol {
    /// `tcp` or `udp`, for logs and metric labels.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Tcp => "tcp",
            Self::Udp => "udp",
        }
    }
}

impl fmt::Display for StreamProtocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One entry of a services ConfigMap: `"<port>": "<ns>/<svc>:<port>[:PROXY][:PROXY]"`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StreamService {
    /// TCP or UDP.
    pub protocol: StreamProtocol,
    /// The port the gateway listens on.
    pub port: u16,
    /// The Service port's backend in the same table.
    pub backend: BackendId,
    /// The first `PROXY`: connections start with a PROXY protocol header
    /// (TCP only).
    pub decode_proxy_protocol: bool,
    /// The second `PROXY`: upstream connections start with a v1 PROXY
    /// protocol header (TCP only).
    pub encode_proxy_protocol: bool,
}

/// The controller ConfigMap's `proxy-stream-*` keys, ingress-nginx's
/// defaults.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StreamSettings {
    /// `proxy-stream-timeout` (600 s): the longest silence both ways
    /// before a connection (UDP: a session) is closed.
    pub timeout: Duration,
    /// nginx's `proxy_connect_timeout` in the stream context (60 s; not a
    /// ConfigMap key).
    pub connect_timeout: Duration,
    /// `proxy-stream-next-upstream` (true): a failed connect tries the
    /// next endpoint.
    pub next_upstream: bool,
    /// `proxy-stream-next-upstream-timeout` (600 s): the time all
    /// attempts together may take; `None` is unlimited.
    pub next_upstream_timeout: Option<Duration>,
    /// `proxy-stream-next-upstream-tries` (3): attempts, the first
    /// included; 0 is unlimited.
    pub next_upstream_tries: u32,
    /// `proxy-stream-responses` (1): datagrams a UDP session expects back
    /// before it ends; `None` is unlimited.
    pub responses: Option<u32>,
}

impl Default for StreamSettings {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(600),
            connect_timeout: Duration::from_secs(60),
            next_upstream: true,
            next_upstream_timeout: Some(Duration::from_secs(600)),
            next_upstream_tries: 3,
            responses: Some(1),
        }
    }
}
