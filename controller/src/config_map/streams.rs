//! The ConfigMap keys of what happens before HTTP and outside it: the
//! PROXY protocol on the HTTP and HTTPS listeners (`use-proxy-protocol`,
//! `proxy-protocol-header-timeout`), the TLS handshake
//! (`ssl-reject-handshake`, `enable-ocsp`), IPv6 clients (`disable-ipv6`) and the TCP/UDP
//! services' timeouts and retries (`proxy-stream-*`).

use std::time::Duration;

use super::{Apply, nginx_duration};
use crate::annotations::values::{boolean, go_duration};

/// The longest `proxy-protocol-header-timeout` accepted.
const MAX_HEADER_TIMEOUT: Duration = Duration::from_secs(3600);

/// The keys, with their parsers.
pub(super) const PARSERS: &[(&str, Apply)] = &[
    ("use-proxy-protocol", |c, v| {
        c.globals.listener.proxy_protocol = Some(boolean(v)?);
        Ok(())
    }),
    ("proxy-protocol-header-timeout", |c, v| {
        let timeout = go_duration(v)?;
        if timeout.is_zero() || timeout > MAX_HEADER_TIMEOUT {
            return Err("must be between 1ms and 1h".to_owned());
        }
        c.globals.listener.proxy_protocol_header_timeout = Some(timeout);
        Ok(())
    }),
    ("ssl-reject-handshake", |c, v| {
        c.globals.reject_unknown_sni = boolean(v)?;
        Ok(())
    }),
    ("enable-ocsp", |c, v| {
        c.globals.ocsp_stapling = boolean(v)?;
        Ok(())
    }),
    ("disable-ipv6", |c, v| {
        c.globals.listener.disable_ipv6 = Some(boolean(v)?);
        Ok(())
    }),
    ("proxy-stream-timeout", |c, v| {
        c.globals.streams.timeout = positive(nginx_duration(v)?)?;
        Ok(())
    }),
    ("proxy-stream-next-upstream", |c, v| {
        c.globals.streams.next_upstream = boolean(v)?;
        Ok(())
    }),
    ("proxy-stream-next-upstream-timeout", |c, v| {
        // nginx: 0 is no limit.
        let timeout = nginx_duration(v)?;
        c.globals.streams.next_upstream_timeout = (!timeout.is_zero()).then_some(timeout);
        Ok(())
    }),
    ("proxy-stream-next-upstream-tries", |c, v| {
        c.globals.streams.next_upstream_tries = v
            .parse::<u32>()
            .map_err(|_| "must be a whole number (0: no limit)".to_owned())?;
        Ok(())
    }),
    ("proxy-stream-responses", |c, v| {
        let responses = v
            .parse::<u32>()
            .map_err(|_| "must be a whole number".to_owned())?;
        c.globals.streams.responses = Some(responses);
        Ok(())
    }),
];

fn positive(duration: Duration) -> Result<Duration, String> {
    if duration.is_zero() {
        return Err("must be longer than zero".to_owned());
    }
    Ok(duration)
}

#[cfg(test)]
mod tests {
    use super::super::read;
    use std::collections::BTreeMap;
    use std::time::Duration;

    fn data(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn proxy_protocol_and_stream_keys_apply() {
        let r = read(&data(&[
            ("use-proxy-protocol", "true"),
            ("proxy-protocol-header-timeout", "2s"),
            ("proxy-stream-timeout", "30s"),
            ("proxy-stream-next-upstream", "false"),
            ("proxy-stream-next-upstream-timeout", "0"),
            ("proxy-stream-next-upstream-tries", "5"),
            ("proxy-stream-responses", "3"),
        ]));
        assert_eq!(r.errors, []);
        assert!(r.not_applied.is_empty(), "{:?}", r.not_applied);
        let g = &r.config.globals;
        assert_eq!(g.listener.proxy_protocol, Some(true));
        assert_eq!(
            g.listener.proxy_protocol_header_timeout,
            Some(Duration::from_secs(2))
        );
        assert_eq!(g.streams.timeout, Duration::from_secs(30));
        assert!(!g.streams.next_upstream);
        assert_eq!(g.streams.next_upstream_timeout, None);
        assert_eq!(g.streams.next_upstream_tries, 5);
        assert_eq!(g.streams.responses, Some(3));
    }

    #[test]
    fn enable_ocsp_turns_stapling_on() {
        let r = read(&data(&[("enable-ocsp", "true")]));
        assert_eq!(r.errors, []);
        assert!(r.not_applied.is_empty(), "{:?}", r.not_applied);
        assert!(r.config.globals.ocsp_stapling);
        let r = read(&data(&[("enable-ocsp", "yes")]));
        assert_eq!(r.errors.len(), 1, "{:?}", r.errors);
        assert!(!r.config.globals.ocsp_stapling);
    }

    #[test]
    fn bad_values_keep_the_defaults() {
        let r = read(&data(&[
            ("use-proxy-protocol", "on"),
            ("proxy-protocol-header-timeout", "5"),
            ("proxy-stream-timeout", "0"),
            ("proxy-stream-responses", "-1"),
        ]));
        assert_eq!(r.errors.len(), 4, "{:?}", r.errors);
        assert_eq!(r.config, super::super::GlobalConfig::default());
    }
}
