//! Header names the gateway reads or writes in more than one place, and the
//! one list of hop-by-hop headers (a leaf module).

use http::HeaderName;
use http::header::{CONNECTION, TE, TRAILER, TRANSFER_ENCODING, UPGRADE};

/// `Keep-Alive` (RFC 7230 §6.1's example of a connection option).
pub static KEEP_ALIVE: HeaderName = HeaderName::from_static("keep-alive");
/// `Proxy-Connection`, a non-standard `Connection` some clients send.
pub static PROXY_CONNECTION: HeaderName = HeaderName::from_static("proxy-connection");
/// `Proxy`, never forwarded (httpoxy).
pub static PROXY: HeaderName = HeaderName::from_static("proxy");

/// Headers that describe one hop and never cross the proxy (beside those
/// the `Connection` header nominates).
pub fn is_hop_by_hop(name: &HeaderName) -> bool {
    name == CONNECTION
        || name == TRANSFER_ENCODING
        || name == UPGRADE
        || name == TE
        || name == TRAILER
        || name == KEEP_ALIVE
        || name == PROXY_CONNECTION
}
