//! The global rate limits' store: `global-rate-limit-memcached-host`,
//! `-port` (11211), `-connect-timeout` (50 ms), `-max-idle-timeout`
//! (10000 ms), `-pool-size` (50), and `global-rate-limit-status-code`
//! (429), with ingress-nginx's defaults. Without a host, global limits are
//! off, as in ingress-nginx; a value that does not parse keeps its default,
//! with a diagnostic.

use std::collections::BTreeMap;
use std::time::Duration;

use gateway::policy::global_limit::MemcachedConfig;
use http::StatusCode;

use super::{GlobalStoreSettings, KeyError, error_status};

/// The keys [`read`] reads (the registry test checks each is known).
#[cfg(test)]
pub(super) const KEYS: &[&str] = &[
    "global-rate-limit-memcached-connect-timeout",
    "global-rate-limit-memcached-host",
    "global-rate-limit-memcached-max-idle-timeout",
    "global-rate-limit-memcached-pool-size",
    "global-rate-limit-memcached-port",
    "global-rate-limit-status-code",
];

/// Reads the keys; `None` without a memcached host.
pub(super) fn read(
    data: &BTreeMap<String, String>,
    errors: &mut Vec<KeyError>,
) -> Option<GlobalStoreSettings> {
    let value = |key: &str| data.get(key).map(|v| v.trim()).filter(|v| !v.is_empty());
    let mut number = |key: &str, default: u64, max: u64| match value(key) {
        None => default,
        Some(v) => match v.parse::<u64>() {
            Ok(n) if (1..=max).contains(&n) => n,
            _ => {
                errors.push(KeyError {
                    key: key.to_owned(),
                    value: v.to_owned(),
                    message: format!("must be a whole number from 1 to {max}; {default} applies"),
                });
                default
            }
        },
    };
    let port = number("global-rate-limit-memcached-port", 11211, 65535);
    let connect = number("global-rate-limit-memcached-connect-timeout", 50, 60_000);
    let idle = number(
        "global-rate-limit-memcached-max-idle-timeout",
        10_000,
        3_600_000,
    );
    let pool = number("global-rate-limit-memcached-pool-size", 50, 10_000);
    let status = match value("global-rate-limit-status-code") {
        None => StatusCode::TOO_MANY_REQUESTS,
        Some(v) => error_status(v).unwrap_or_else(|message| {
            errors.push(KeyError {
                key: "global-rate-limit-status-code".to_owned(),
                value: v.to_owned(),
                message: format!("{message}; 429 applies"),
            });
            StatusCode::TOO_MANY_REQUESTS
        }),
    };
    let host = value("global-rate-limit-memcached-host")?;
    Some(GlobalStoreSettings {
        memcached: MemcachedConfig {
            host: host.to_owned(),
            port: u16::try_from(port).unwrap_or(11211),
            timeout: Duration::from_millis(connect),
            max_idle: Duration::from_millis(idle),
            pool_size: usize::try_from(pool).unwrap_or(50),
        },
        status,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn off_without_a_host_and_defaults_as_ingress_nginx() {
        let mut errors = Vec::new();
        assert_eq!(read(&data(&[]), &mut errors), None);
        let read = read(
            &data(&[("global-rate-limit-memcached-host", "memcached.ns")]),
            &mut errors,
        )
        .unwrap();
        assert_eq!(read.memcached.port, 11211);
        assert_eq!(read.memcached.timeout, Duration::from_millis(50));
        assert_eq!(read.memcached.max_idle, Duration::from_secs(10));
        assert_eq!(read.memcached.pool_size, 50);
        assert_eq!(read.status, StatusCode::TOO_MANY_REQUESTS);
        assert!(errors.is_empty());
    }

    #[test]
    fn bad_values_keep_their_default_with_a_diagnostic() {
        let mut errors = Vec::new();
        let read = read(
            &data(&[
                ("global-rate-limit-memcached-host", "m"),
                ("global-rate-limit-memcached-port", "x"),
                ("global-rate-limit-status-code", "200"),
            ]),
            &mut errors,
        )
        .unwrap();
        assert_eq!(read.memcached.port, 11211);
        assert_eq!(read.status, StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(errors.len(), 2);
    }
}
