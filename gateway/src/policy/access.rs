//! Client address allow and deny lists: ingress-nginx's
//! `whitelist-source-range` / `allowlist-source-range` and
//! `denylist-source-range` annotations, and the ConfigMap's `block-cidrs`.
//!
//! ingress-nginx renders a location's lists as nginx access rules, denylist
//! first, then the allowlist, then `deny all` when there is an allowlist;
//! nginx takes the first rule that matches. [`AccessList::check`] evaluates
//! the same order. A list that does not parse makes ingress-nginx answer
//! every request of the location with 503 (`LocationDenied`); that is
//! [`AccessList::Invalid`] here, so a typo never opens a protected path.
//!
//! Lookups scan the entries in order: lists are short (a handful of
//! networks), a scan is a few integer compares per entry, and nothing is
//! allocated per request.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use http::StatusCode;

/// Why a list of addresses and networks did not parse.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AccessError {
    /// The value has no entry at all.
    #[error("the list is empty")]
    Empty,
    /// An entry is neither an IP address nor a CIDR (`10.0.0.0/8`, `2001:db8::/32`).
    #[error("{0:?} is not an IP address or CIDR")]
    Invalid(String),
}

/// One IPv4 or IPv6 network (`10.0.0.0/8`), or a single address as a
/// full-length network. Host bits given in the text are dropped
/// (`10.1.2.3/8` is `10.0.0.0/8`), as nginx and Go's `net.ParseCIDR` do.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Cidr {
    net: Net,
    prefix: u8,
}

/// The network and mask, precomputed so that a match is one AND and one
/// compare.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
enum Net {
    V4 { net: u32, mask: u32 },
    V6 { net: u128, mask: u128 },
}

impl Cidr {
    /// The network of `addr` with `prefix` leading bits. IPv4-mapped IPv6
    /// networks (`::ffff:10.0.0.0/104`) become the IPv4 network they name,
    /// because clients are matched by their canonical address.
    pub fn new(addr: IpAddr, prefix: u8) -> Option<Self> {
        match addr {
            IpAddr::V4(v4) => Self::v4(v4, prefix),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) if prefix >= 96 => Self::v4(v4, prefix - 96),
                _ => Self::v6(v6, prefix),
            },
        }
    }

    fn v4(addr: Ipv4Addr, prefix: u8) -> Option<Self> {
        let mask = match prefix {
            0 => 0,
            1..=32 => u32::MAX << (32 - prefix),
            _ => return None,
        };
        let net = Net::V4 {
            net: u32::from(addr) & mask,
            mask,
        };
        Some(Self { net, prefix })
    }

    fn v6(addr: Ipv6Addr, prefix: u8) -> Option<Self> {
        let mask = match prefix {
            0 => 0,
            1..=128 => u128::MAX << (128 - prefix),
            _ => return None,
        };
        let net = Net::V6 {
            net: u128::from(addr) & mask,
            mask,
        };
        Some(Self { net, prefix })
    }

    /// Whether `ip` is in this network. `ip` must already be canonical (an
    /// IPv4-mapped IPv6 address turned into IPv4, see [`canonical`]);
    /// [`AccessList::check`] does that once per request.
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.net, ip) {
            (Net::V4 { net, mask }, IpAddr::V4(v4)) => u32::from(v4) & mask == net,
            (Net::V6 { net, mask }, IpAddr::V6(v6)) => u128::from(v6) & mask == net,
            _ => false,
        }
    }

    /// The prefix length.
    pub fn prefix(&self) -> u8 {
        self.prefix
    }

    /// The network address (host bits zero).
    pub fn network(&self) -> IpAddr {
        match self.net {
            Net::V4 { net, .. } => IpAddr::V4(Ipv4Addr::from(net)),
            Net::V6 { net, .. } => IpAddr::V6(Ipv6Addr::from(net)),
        }
    }
}

impl FromStr for Cidr {
    type Err = AccessError;

    /// `address/prefix` or a bare address (a /32 or /128), surrounding
    /// whitespace ignored.
    fn from_str(text: &str) -> Result<Self, AccessError> {
        let entry = text.trim();
        let invalid = || AccessError::Invalid(entry.to_owned());
        let (addr, prefix) = match entry.split_once('/') {
            Some((addr, prefix)) => {
                // Decimal digits only: no sign, no spaces, at most 3 digits.
                if prefix.is_empty()
                    || prefix.len() > 3
                    || !prefix.bytes().all(|b| b.is_ascii_digit())
                {
                    return Err(invalid());
                }
                let addr: IpAddr = addr.parse().map_err(|_| invalid())?;
                (addr, prefix.parse::<u8>().map_err(|_| invalid())?)
            }
            None => {
                let addr: IpAddr = entry.parse().map_err(|_| invalid())?;
                let full = if addr.is_ipv4() { 32 } else { 128 };
                (addr, full)
            }
        };
        Self::new(addr, prefix).ok_or_else(invalid)
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network(), self.prefix)
    }
}

impl fmt::Debug for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// Parses a comma-separated list of networks and addresses
/// (`10.0.0.0/8, 192.168.1.1, 2001:db8::/32`), as ingress-nginx's
/// `ParseIPNets` does: each entry trimmed, any bad entry (an empty one
/// included, as in `10.0.0.0/8,`) fails the whole list.
pub fn parse_cidrs(value: &str) -> Result<Vec<Cidr>, AccessError> {
    if value.trim().is_empty() {
        return Err(AccessError::Empty);
    }
    value.split(',').map(str::parse).collect()
}

/// The canonical form a client address is matched in: an IPv4-mapped IPv6
/// address (`::ffff:10.1.2.3`, what a dual-stack socket reports for an IPv4
/// client) becomes the IPv4 address, as nginx's access module does.
pub fn canonical(ip: IpAddr) -> IpAddr {
    ip.to_canonical()
}

/// Whether any of `list` contains `ip` (canonicalised first).
pub fn any_contains(list: &[Cidr], ip: IpAddr) -> bool {
    let ip = canonical(ip);
    list.iter().any(|cidr| cidr.contains(ip))
}

/// What the lists say of a client they let through.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Judged {
    /// An allow-list entry matched.
    Allowed,
    /// No entry matched (there is no allow list): nginx's access module
    /// declines to decide.
    NoRule,
}

/// A location's client address rules.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AccessList {
    /// Deny the `deny` networks, then, if `allow` is not empty, allow only
    /// the `allow` networks. Both empty: everyone is let through.
    Rules {
        /// `whitelist-source-range` / `allowlist-source-range`.
        allow: Vec<Cidr>,
        /// `denylist-source-range` (or `block-cidrs` for the global list).
        deny: Vec<Cidr>,
    },
    /// A list did not parse: every request gets 503, as ingress-nginx's
    /// `LocationDenied`. The text says why, for logs and diagnostics.
    Invalid(String),
}

impl Default for AccessList {
    /// No rules: everyone is let through.
    fn default() -> Self {
        Self::Rules {
            allow: Vec::new(),
            deny: Vec::new(),
        }
    }
}

impl AccessList {
    /// Builds a location's list from the annotation values (`None` when the
    /// annotation is absent). A value that does not parse makes the whole
    /// list [`AccessList::Invalid`], naming the annotation.
    pub fn from_values(allow: Option<&str>, deny: Option<&str>) -> Self {
        let parse = |name: &str, value: Option<&str>| match value {
            None => Ok(Vec::new()),
            Some(value) => parse_cidrs(value).map_err(|e| format!("{name}: {e}")),
        };
        let allow = parse("allowlist-source-range", allow);
        let deny = parse("denylist-source-range", deny);
        match (allow, deny) {
            (Ok(allow), Ok(deny)) => Self::Rules { allow, deny },
            (Err(reason), _) | (_, Err(reason)) => Self::Invalid(reason),
        }
    }

    /// A list that only denies `deny` (the ConfigMap's `block-cidrs`).
    pub fn deny_only(deny: Vec<Cidr>) -> Self {
        Self::Rules {
            allow: Vec::new(),
            deny,
        }
    }

    /// Whether the list lets every client through (no rules), so that the
    /// request path can skip it.
    pub fn is_open(&self) -> bool {
        matches!(self, Self::Rules { allow, deny } if allow.is_empty() && deny.is_empty())
    }

    /// nginx's access module's answer for one client, for `satisfy any`:
    /// a rule allowed it, none matched (no allow list, not denied), or a
    /// rule denied it (`Err(403)`; `Err(503)` for an invalid list).
    pub fn judge(&self, client: IpAddr) -> Result<Judged, StatusCode> {
        match self {
            Self::Rules { allow, .. } => {
                self.check(client)?;
                Ok(if allow.is_empty() {
                    Judged::NoRule
                } else {
                    Judged::Allowed
                })
            }
            Self::Invalid(_) => Err(StatusCode::SERVICE_UNAVAILABLE),
        }
    }

    /// Decides for one client: `Ok` to go on, `Err(403)` when a rule denies
    /// it, `Err(503)` when the list is invalid. Rules are taken in
    /// ingress-nginx's order: denylist, allowlist, then `deny all` when there
    /// is an allowlist.
    pub fn check(&self, client: IpAddr) -> Result<(), StatusCode> {
        match self {
            Self::Invalid(_) => Err(StatusCode::SERVICE_UNAVAILABLE),
            Self::Rules { allow, deny } => {
                let client = canonical(client);
                if deny.iter().any(|cidr| cidr.contains(client)) {
                    return Err(StatusCode::FORBIDDEN);
                }
                if allow.is_empty() || allow.iter().any(|cidr| cidr.contains(client)) {
                    Ok(())
                } else {
                    Err(StatusCode::FORBIDDEN)
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    fn list(allow: &str, deny: &str) -> AccessList {
        AccessList::from_values(
            (!allow.is_empty()).then_some(allow),
            (!deny.is_empty()).then_some(deny),
        )
    }

    #[test]
    fn parses_networks_and_single_addresses() {
        // Entries are trimmed as Go's strings.TrimSpace does.
        let cidrs = parse_cidrs("10.0.0.0/8, 192.168.1.1 ,2001:db8::/32,::1\n").unwrap();
        let shown: Vec<String> = cidrs.iter().map(ToString::to_string).collect();
        assert_eq!(
            shown,
            ["10.0.0.0/8", "192.168.1.1/32", "2001:db8::/32", "::1/128"]
        );
        // Host bits are dropped, as Go's ParseCIDR does.
        assert_eq!(
            "10.1.2.3/8".parse::<Cidr>().unwrap().to_string(),
            "10.0.0.0/8"
        );
        assert_eq!("0.0.0.0/0".parse::<Cidr>().unwrap().prefix(), 0);
        assert_eq!("::/0".parse::<Cidr>().unwrap().to_string(), "::/0");
    }

    #[test]
    fn refuses_bad_entries() {
        for bad in [
            "",
            "  ",
            "10.0.0.0/8,",
            ",10.0.0.0/8",
            "10.0.0.0/33",
            "::/129",
            "10.0.0.0/",
            "10.0.0.0/+8",
            "10.0.0.0/ 8",
            "10.0.0.0/0008",
            "10.0.0",
            "010.0.0.1",
            "10.0.0.0/8 10.1.0.0/16",
            "example.com",
            "fe80::1%eth0",
            "10.0.0.1\r\n10.0.0.2",
            "1.2.3.4/8/8",
        ] {
            assert!(parse_cidrs(bad).is_err(), "{bad:?} parsed");
        }
        assert_eq!(parse_cidrs(" ").unwrap_err(), AccessError::Empty);
        assert_eq!(
            parse_cidrs("10.0.0.0/8, nope").unwrap_err(),
            AccessError::Invalid("nope".to_owned())
        );
    }

    #[test]
    fn allowlist_allows_only_its_networks() {
        let acl = list("10.0.0.0/8, 192.168.1.1", "");
        assert_eq!(acl.check(ip("10.200.3.4")), Ok(()));
        assert_eq!(acl.check(ip("192.168.1.1")), Ok(()));
        assert_eq!(acl.check(ip("192.168.1.2")), Err(StatusCode::FORBIDDEN));
        assert_eq!(acl.check(ip("11.0.0.1")), Err(StatusCode::FORBIDDEN));
        // `deny all` covers IPv6 clients too.
        assert_eq!(acl.check(ip("2001:db8::1")), Err(StatusCode::FORBIDDEN));
    }

    #[test]
    fn denylist_is_checked_before_the_allowlist() {
        let acl = list("10.0.0.0/8", "10.1.0.0/16");
        assert_eq!(acl.check(ip("10.2.0.1")), Ok(()));
        assert_eq!(acl.check(ip("10.1.0.1")), Err(StatusCode::FORBIDDEN));
        let deny_only = list("", "10.1.0.0/16, 2001:db8::/32");
        assert_eq!(deny_only.check(ip("10.1.9.9")), Err(StatusCode::FORBIDDEN));
        assert_eq!(
            deny_only.check(ip("2001:db8:1::5")),
            Err(StatusCode::FORBIDDEN)
        );
        assert_eq!(deny_only.check(ip("10.2.0.1")), Ok(()));
        assert_eq!(deny_only.check(ip("2001:db9::1")), Ok(()));
    }

    #[test]
    fn ipv6_networks() {
        let acl = list("2001:db8::/32, fd00::1", "");
        assert_eq!(acl.check(ip("2001:db8:ffff::1")), Ok(()));
        assert_eq!(acl.check(ip("fd00::1")), Ok(()));
        assert_eq!(acl.check(ip("fd00::2")), Err(StatusCode::FORBIDDEN));
        assert_eq!(acl.check(ip("2001:db9::1")), Err(StatusCode::FORBIDDEN));
        // An IPv4 client never matches an IPv6 network.
        assert_eq!(acl.check(ip("32.1.13.184")), Err(StatusCode::FORBIDDEN));
    }

    #[test]
    fn mapped_addresses_are_matched_as_ipv4() {
        let acl = list("10.0.0.0/8", "");
        assert_eq!(acl.check(ip("::ffff:10.9.8.7")), Ok(()));
        assert_eq!(acl.check(ip("::ffff:11.9.8.7")), Err(StatusCode::FORBIDDEN));
        // A mapped network in the list is the IPv4 network it names.
        let mapped = list("::ffff:192.168.0.0/112", "");
        assert_eq!(mapped.check(ip("192.168.7.7")), Ok(()));
        assert_eq!(mapped.check(ip("::ffff:192.168.7.7")), Ok(()));
        assert_eq!(mapped.check(ip("192.169.0.1")), Err(StatusCode::FORBIDDEN));
        let deny = list("", "::ffff:10.0.0.1");
        assert_eq!(deny.check(ip("10.0.0.1")), Err(StatusCode::FORBIDDEN));
    }

    #[test]
    fn invalid_lists_fail_closed_with_503() {
        for acl in [
            list("10.0.0.0/8, bogus", ""),
            list("", "300.0.0.0/8"),
            list("10.0.0.0/8", "10.0.0.0/8,"),
            AccessList::from_values(Some(""), None),
        ] {
            assert!(matches!(acl, AccessList::Invalid(_)), "{acl:?}");
            assert_eq!(
                acl.check(ip("10.0.0.1")),
                Err(StatusCode::SERVICE_UNAVAILABLE)
            );
            assert!(!acl.is_open());
        }
        let AccessList::Invalid(reason) = list("", "bogus") else {
            panic!("not invalid");
        };
        assert!(reason.contains("denylist-source-range"), "{reason}");
        assert!(reason.contains("bogus"), "{reason}");
    }

    #[test]
    fn empty_list_lets_everyone_through() {
        let open = AccessList::default();
        assert!(open.is_open());
        assert_eq!(open.check(ip("10.0.0.1")), Ok(()));
        assert_eq!(open.check(ip("::1")), Ok(()));
        assert_eq!(list("", ""), open);
        assert!(!list("10.0.0.0/8", "").is_open());
    }

    #[test]
    fn block_cidrs_deny_only() {
        let block = AccessList::deny_only(parse_cidrs("1.2.3.0/24,2001:db8::/48").unwrap());
        assert_eq!(block.check(ip("1.2.3.4")), Err(StatusCode::FORBIDDEN));
        assert_eq!(
            block.check(ip("::ffff:1.2.3.4")),
            Err(StatusCode::FORBIDDEN)
        );
        assert_eq!(block.check(ip("1.2.4.4")), Ok(()));
        assert!(any_contains(
            &parse_cidrs("0.0.0.0/0").unwrap(),
            ip("::ffff:8.8.8.8")
        ));
    }

    #[test]
    fn prefix_edges() {
        let all4: Cidr = "0.0.0.0/0".parse().unwrap();
        assert!(all4.contains(ip("255.255.255.255")));
        assert!(!all4.contains(ip("::1")));
        let one: Cidr = "255.255.255.255/32".parse().unwrap();
        assert!(one.contains(ip("255.255.255.255")));
        assert!(!one.contains(ip("255.255.255.254")));
        let all6: Cidr = "::/0".parse().unwrap();
        assert!(all6.contains(ip("ffff::1")));
        let host6: Cidr = "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff/128"
            .parse()
            .unwrap();
        assert!(host6.contains(ip("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff")));
        assert!(!host6.contains(ip("ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe")));
        let odd: Cidr = "10.128.0.0/9".parse().unwrap();
        assert!(odd.contains(ip("10.255.0.1")));
        assert!(!odd.contains(ip("10.127.0.1")));
    }
}
