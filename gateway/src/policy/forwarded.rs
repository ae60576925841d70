//! Who the client is: ingress-nginx's `use-forwarded-headers`,
//! `enable-real-ip`, `forwarded-for-header`, `proxy-real-ip-cidr` and
//! `compute-full-forwarded-for`, resolved once per request into a
//! [`Client`] that every later phase uses (address lists, limits, external
//! auth, `X-Real-IP`, the access log).
//!
//! The address follows nginx's realip module with `real_ip_recursive on`:
//! when the peer is trusted, the forwarded-for header is read right to
//! left, skipping trusted addresses; the first untrusted one is the client,
//! or the leftmost when all are trusted. An entry that is not an address
//! stops the walk at the last good one.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use http::header::{HeaderMap, HeaderName, HeaderValue};

use super::access::{Cidr, any_contains, canonical};

/// The ConfigMap's forwarded-header settings, gateway-wide.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Forwarded {
    /// `use-forwarded-headers` (false): take `X-Forwarded-Proto`, `-Host`
    /// and `-Port` from trusted peers, and the client address from the
    /// forwarded-for header.
    pub use_forwarded_headers: bool,
    /// `enable-real-ip` (false): the client address from the forwarded-for
    /// header of trusted peers, without trusting the other headers.
    pub enable_real_ip: bool,
    /// `compute-full-forwarded-for` (false): append the peer to the
    /// client's `X-Forwarded-For` instead of replacing it.
    pub compute_full_forwarded_for: bool,
    /// `forwarded-for-header` (`X-Forwarded-For`): where the client address is.
    pub forwarded_for_header: HeaderName,
    /// `proxy-real-ip-cidr` (`0.0.0.0/0`): the peers whose headers count.
    pub trusted: Vec<Cidr>,
}

impl Default for Forwarded {
    fn default() -> Self {
        Self {
            use_forwarded_headers: false,
            enable_real_ip: false,
            compute_full_forwarded_for: false,
            forwarded_for_header: HeaderName::from_static("x-forwarded-for"),
            trusted: Cidr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0)
                .into_iter()
                .collect(),
        }
    }
}

/// The client of one request, as the phases after the first see it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Client {
    /// `$remote_addr`: the peer, or the address its trusted forwarded-for
    /// header names.
    pub ip: IpAddr,
    /// `$realip_remote_addr`: the connection's peer.
    pub peer: IpAddr,
    /// Whether the peer's `X-Forwarded-Proto`, `-Host` and `-Port` count.
    pub trust_forwarded: bool,
}

impl Client {
    /// Whether the address is the peer's (its header value is cached per
    /// connection).
    pub fn is_peer(&self) -> bool {
        self.ip == self.peer
    }

    /// The address with the peer's port, for the access log.
    pub fn socket_addr(&self, peer: SocketAddr) -> SocketAddr {
        SocketAddr::new(self.ip, peer.port())
    }
}

impl Forwarded {
    /// Resolves the client of a request from `peer`. Costs nothing beyond a
    /// comparison when neither `use-forwarded-headers` nor `enable-real-ip`
    /// is on.
    pub fn client(&self, peer: IpAddr, headers: &HeaderMap) -> Client {
        let peer = canonical(peer);
        let mut client = Client {
            ip: peer,
            peer,
            trust_forwarded: false,
        };
        if !self.use_forwarded_headers && !self.enable_real_ip {
            return client;
        }
        if !any_contains(&self.trusted, peer) {
            return client;
        }
        client.trust_forwarded = self.use_forwarded_headers;
        client.ip = self.real_ip(peer, headers);
        client
    }

    /// Resolves the client of a request on a connection that started with
    /// a PROXY header; `peer` is the address the header named (when the
    /// TCP peer was trusted). As ingress-nginx configures nginx: with
    /// `use-forwarded-headers`, a trusted `peer` lets the forwarded-for
    /// header name the client (`X-Forwarded-For-Proxy-Protocol`); without
    /// it the header's address is the client (`real_ip_header
    /// proxy_protocol`), `enable-real-ip` or not.
    pub fn client_behind_proxy_protocol(&self, peer: IpAddr, headers: &HeaderMap) -> Client {
        if self.use_forwarded_headers {
            return self.client(peer, headers);
        }
        let peer = canonical(peer);
        Client {
            ip: peer,
            peer,
            trust_forwarded: false,
        }
    }

    /// nginx's recursive realip walk over the forwarded-for header.
    fn real_ip(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        let mut ip = peer;
        let entries = headers
            .get_all(&self.forwarded_for_header)
            .iter()
            .rev()
            .flat_map(|value| value.as_bytes().rsplit(|b| *b == b','))
            .map(<[u8]>::trim_ascii)
            .filter(|entry| !entry.is_empty());
        for entry in entries {
            if !any_contains(&self.trusted, ip) {
                break;
            }
            match parse_addr(entry) {
                Some(next) => ip = canonical(next),
                None => break,
            }
        }
        ip
    }
}

/// An address as nginx's `ngx_parse_addr_port` reads it: `ip`, `ip:port`,
/// `[ipv6]` or `[ipv6]:port`.
fn parse_addr(entry: &[u8]) -> Option<IpAddr> {
    let text = std::str::from_utf8(entry).ok()?;
    if let Ok(ip) = text.parse::<IpAddr>() {
        return Some(ip);
    }
    if let Ok(addr) = text.parse::<SocketAddr>() {
        return Some(addr.ip());
    }
    text.strip_prefix('[')
        .and_then(|t| t.strip_suffix(']'))
        .and_then(|t| t.parse::<IpAddr>().ok())
}

/// The `X-Forwarded-For` value of `compute-full-forwarded-for`: the
/// client's `X-Forwarded-For` (all of its lines), then the peer.
pub(crate) fn full_forwarded_for(
    incoming: &http::header::GetAll<'_, HeaderValue>,
    peer: &HeaderValue,
) -> HeaderValue {
    let mut out: Vec<u8> = Vec::with_capacity(64);
    for value in incoming.iter().filter(|v| !v.is_empty()) {
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b", ");
    }
    out.extend_from_slice(peer.as_bytes());
    HeaderValue::from_bytes(&out).unwrap_or_else(|_| peer.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(xff: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in xff {
            h.append("x-forwarded-for", HeaderValue::from_str(v).unwrap());
        }
        h
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn real_ip(f: &Forwarded, peer: &str, xff: &[&str]) -> String {
        f.client(ip(peer), &headers(xff)).ip.to_string()
    }

    fn on(trusted: &str) -> Forwarded {
        Forwarded {
            use_forwarded_headers: true,
            trusted: super::super::access::parse_cidrs(trusted).unwrap(),
            ..Forwarded::default()
        }
    }

    #[test]
    fn off_by_default_the_peer_is_the_client() {
        let f = Forwarded::default();
        let c = f.client(ip("10.0.0.1"), &headers(&["1.2.3.4"]));
        assert_eq!(c.ip, ip("10.0.0.1"));
        assert!(c.is_peer());
        assert!(!c.trust_forwarded);
    }

    #[test]
    fn trusted_peer_gives_the_rightmost_untrusted_address() {
        let f = on("10.0.0.0/8");
        assert_eq!(real_ip(&f, "10.0.0.1", &["1.1.1.1, 2.2.2.2"]), "2.2.2.2");
        assert_eq!(
            real_ip(&f, "10.0.0.1", &["1.1.1.1, 2.2.2.2, 10.9.9.9"]),
            "2.2.2.2"
        );
        assert_eq!(
            real_ip(&f, "10.0.0.1", &["1.1.1.1", "2.2.2.2, 10.9.9.9"]),
            "2.2.2.2",
            "header lines read last to first"
        );
        assert_eq!(
            real_ip(&f, "10.0.0.1", &["10.1.1.1, 10.2.2.2"]),
            "10.1.1.1",
            "all trusted: the leftmost"
        );
        assert_eq!(
            real_ip(&f, "10.0.0.1", &["1.1.1.1, junk, 10.2.2.2"]),
            "10.2.2.2",
            "a bad entry stops the walk"
        );
        assert_eq!(real_ip(&f, "10.0.0.1", &["1.1.1.1:443"]), "1.1.1.1");
        assert_eq!(
            real_ip(&f, "10.0.0.1", &["[2001:db8::1]:80"]),
            "2001:db8::1"
        );
        assert_eq!(real_ip(&f, "10.0.0.1", &["2001:db8::1"]), "2001:db8::1");
        assert_eq!(real_ip(&f, "10.0.0.1", &[" , "]), "10.0.0.1");
        assert_eq!(real_ip(&f, "10.0.0.1", &[]), "10.0.0.1");
    }

    #[test]
    fn untrusted_peer_keeps_its_address_and_headers_do_not_count() {
        let f = on("10.0.0.0/8");
        let c = f.client(ip("192.0.2.1"), &headers(&["1.1.1.1"]));
        assert_eq!(c.ip, ip("192.0.2.1"));
        assert!(!c.trust_forwarded);
        // The default 0.0.0.0/0 trusts IPv4 peers only, as nginx.
        let default = Forwarded {
            use_forwarded_headers: true,
            ..Forwarded::default()
        };
        assert_eq!(real_ip(&default, "192.0.2.1", &["1.1.1.1"]), "1.1.1.1");
        assert_eq!(
            real_ip(&default, "2001:db8::9", &["1.1.1.1"]),
            "2001:db8::9"
        );
        assert_eq!(
            real_ip(&default, "::ffff:192.0.2.1", &["1.1.1.1"]),
            "1.1.1.1",
            "IPv4-mapped peers are IPv4"
        );
    }

    #[test]
    fn real_ip_alone_does_not_trust_the_other_headers() {
        let f = Forwarded {
            enable_real_ip: true,
            forwarded_for_header: HeaderName::from_static("cf-connecting-ip"),
            ..Forwarded::default()
        };
        let mut h = headers(&["9.9.9.9"]);
        h.insert("cf-connecting-ip", HeaderValue::from_static("3.3.3.3"));
        let c = f.client(ip("10.0.0.1"), &h);
        assert_eq!(c.ip, ip("3.3.3.3"));
        assert!(!c.trust_forwarded);
    }

    #[test]
    fn full_forwarded_for_appends_the_peer() {
        let peer = HeaderValue::from_static("10.0.0.1");
        let h = headers(&["1.1.1.1", "2.2.2.2"]);
        let v = full_forwarded_for(&h.get_all("x-forwarded-for"), &peer);
        assert_eq!(v, "1.1.1.1, 2.2.2.2, 10.0.0.1");
        let none = HeaderMap::new();
        assert_eq!(
            full_forwarded_for(&none.get_all("x-forwarded-for"), &peer),
            "10.0.0.1"
        );
    }
}
