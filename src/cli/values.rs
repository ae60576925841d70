//! Value parsers for flags, in the syntax of ingress-nginx's Go flags
//! (pflag): Go booleans and durations, `namespace/name`, `[host]:port`.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use controller::selector::LabelSelector;

/// A Go boolean: `1 t T TRUE true True`, `0 f F FALSE false False`
/// (`strconv.ParseBool`).
pub(crate) fn go_bool(value: &str) -> Result<bool, String> {
    match value {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Ok(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Ok(false),
        _ => Err(format!("{value:?} is not a boolean (true or false)")),
    }
}

/// A Go duration (`time.ParseDuration`): `0`, or one or more
/// `<number><unit>` with unit ns, us, µs, ms, s, m or h and an optional
/// fraction (`30s`, `1m30s`, `1.5h`, `500ms`); a leading `-` gives zero,
/// since no flag here means anything by a negative duration.
pub(crate) fn duration(value: &str) -> Result<Duration, String> {
    let text = value.trim();
    let (negative, mut rest) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text.strip_prefix('+').unwrap_or(text)),
    };
    if rest == "0" {
        return Ok(Duration::ZERO);
    }
    if rest.is_empty() {
        return Err("empty duration".to_owned());
    }
    let bad = || format!("{value:?} is not a duration such as 30s, 1m30s or 500ms");
    let mut total = 0_f64;
    while !rest.is_empty() {
        let number_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let number: f64 = rest[..number_len].parse().map_err(|_| bad())?;
        rest = &rest[number_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let seconds = match &rest[..unit_len] {
            "ns" => 1e-9,
            "us" | "µs" | "μs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            "" => return Err(format!("{value:?}: missing unit (ms, s, m or h)")),
            unit => return Err(format!("unknown duration unit {unit:?}; use ms, s, m or h")),
        };
        total += number * seconds;
        rest = &rest[unit_len..];
    }
    if negative {
        return Ok(Duration::ZERO);
    }
    Duration::try_from_secs_f64(total).map_err(|_| bad())
}

/// `namespace/name`, both non-empty.
pub(crate) fn ns_name(value: &str) -> Result<(String, String), String> {
    match value.split_once('/') {
        Some((ns, name)) if !ns.is_empty() && !name.is_empty() && !name.contains('/') => {
            Ok((ns.to_owned(), name.to_owned()))
        }
        _ => Err("expected namespace/name".to_owned()),
    }
}

/// A label selector (`env=prod,tier in (a,b)`).
pub(crate) fn selector(value: &str) -> Result<LabelSelector, String> {
    LabelSelector::parse(value)
}

/// An IP address, or empty for the default.
pub(crate) fn optional_ip(value: &str) -> Result<String, String> {
    if value.is_empty() || value.parse::<IpAddr>().is_ok() {
        Ok(value.to_owned())
    } else {
        Err(format!("{value:?} is not an IP address"))
    }
}

/// A URL path: starts with `/`.
pub(crate) fn url_path(value: &str) -> Result<String, String> {
    if value.starts_with('/') && !value.contains(char::is_whitespace) {
        Ok(value.to_owned())
    } else {
        Err(format!("{value:?} is not a path starting with /"))
    }
}

/// Where a listener binds, as Go's `<host>:<port>`: the host may be empty
/// (`:8443`, every address of `--bind-address`), an IP (IPv6 in brackets)
/// or `localhost`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ListenAddr {
    /// The IP, `None` for "the gateway's bind address".
    pub(crate) ip: Option<IpAddr>,
    /// The port (0 picks a free one).
    pub(crate) port: u16,
}

impl ListenAddr {
    /// The socket address, with `default_ip` for an empty host.
    pub(crate) fn with_default(self, default_ip: IpAddr) -> SocketAddr {
        SocketAddr::new(self.ip.unwrap_or(default_ip), self.port)
    }
}

/// Parses `[host]:port`.
pub(crate) fn listen_addr(value: &str) -> Result<ListenAddr, String> {
    let bad = || format!("{value:?} is not an address such as :8443 or 127.0.0.1:8443");
    let (host, port) = value.rsplit_once(':').ok_or_else(bad)?;
    let port: u16 = port.parse().map_err(|_| bad())?;
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    let ip = match host {
        "" => None,
        "localhost" => Some(IpAddr::V4(Ipv4Addr::LOCALHOST)),
        "::" => Some(IpAddr::V6(Ipv6Addr::UNSPECIFIED)),
        ip => Some(ip.parse().map_err(|_| bad())?),
    };
    Ok(ListenAddr { ip, port })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations() {
        assert_eq!(duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(duration("2h"), Ok(Duration::from_secs(7200)));
        assert_eq!(duration("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(duration("0"), Ok(Duration::ZERO));
        assert_eq!(duration("-5s"), Ok(Duration::ZERO));
        assert_eq!(duration("10us"), Ok(Duration::from_micros(10)));
        for bad in ["", "s", "10", "5x", "1..2s", "-"] {
            assert!(duration(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn go_booleans_and_addresses() {
        assert_eq!(go_bool("T"), Ok(true));
        assert_eq!(go_bool("0"), Ok(false));
        assert!(go_bool("yes").is_err());
        assert_eq!(
            listen_addr(":8443"),
            Ok(ListenAddr {
                ip: None,
                port: 8443
            })
        );
        assert_eq!(
            listen_addr("[::1]:0").unwrap().ip,
            Some("::1".parse().unwrap())
        );
        assert_eq!(
            listen_addr("localhost:9")
                .unwrap()
                .with_default(IpAddr::V4(Ipv4Addr::UNSPECIFIED)),
            "127.0.0.1:9".parse().unwrap()
        );
        for bad in ["8443", "host:1", ":x", ":70000"] {
            assert!(listen_addr(bad).is_err(), "{bad:?}");
        }
        assert!(url_path("/healthz").is_ok() && url_path("healthz").is_err());
        assert!(optional_ip("").is_ok() && optional_ip("nope").is_err());
    }
}
