//! `nginx.ingress.kubernetes.io/*` annotations, parsed into typed settings.
//!
//! Every value is parsed or rejected; nothing is ever pasted into
//! configuration text. An unparseable value keeps the default and yields a
//! diagnostic naming the annotation and the value, as ingress-nginx does for
//! these keys.
//!
//! Supported so far: the proxy timeouts, the body size limit and the retry
//! count, which map onto [`ProxySettings`]; the HTTPS redirect switches,
//! which map onto [`Policy`].

use std::collections::BTreeMap;
use std::time::Duration;

use gateway::policy::Policy;
use gateway::settings::ProxySettings;

/// The annotation prefix ingress-nginx reads.
pub const PREFIX: &str = "nginx.ingress.kubernetes.io/";

/// An annotation whose value could not be used.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AnnotationError {
    /// The full annotation key.
    pub key: String,
    /// The value found.
    pub value: String,
    /// Why it was refused.
    pub message: String,
}

/// How one annotation changes a settings value of type `T`.
type Apply<T> = fn(&mut T, &str) -> Result<(), String>;

/// The supported proxy annotations (without prefix) and their parsers.
const PROXY_ANNOTATIONS: [(&str, Apply<ProxySettings>); 5] = [
    ("proxy-connect-timeout", |s, v| {
        s.connect_timeout = seconds(v)?;
        Ok(())
    }),
    ("proxy-read-timeout", |s, v| {
        s.read_timeout = seconds(v)?;
        Ok(())
    }),
    ("proxy-send-timeout", |s, v| {
        s.send_timeout = seconds(v)?;
        Ok(())
    }),
    ("proxy-body-size", |s, v| {
        s.max_body_size = body_size(v)?;
        Ok(())
    }),
    ("proxy-next-upstream-tries", |s, v| {
        s.next_upstream_tries = tries(v)?;
        Ok(())
    }),
];

/// The supported policy annotations (without prefix) and their parsers.
const POLICY_ANNOTATIONS: [(&str, Apply<Policy>); 4] = [
    ("ssl-redirect", |p, v| {
        p.ssl_redirect = boolean(v)?;
        Ok(())
    }),
    ("force-ssl-redirect", |p, v| {
        p.force_ssl_redirect = boolean(v)?;
        Ok(())
    }),
    ("preserve-trailing-slash", |p, v| {
        p.preserve_trailing_slash = boolean(v)?;
        Ok(())
    }),
    ("enable-access-log", |p, v| {
        p.access_log = boolean(v)?;
        Ok(())
    }),
];

/// The proxy settings of an Ingress: `defaults` with its annotations applied.
pub fn proxy_settings(
    defaults: &ProxySettings,
    annotations: Option<&BTreeMap<String, String>>,
) -> (ProxySettings, Vec<AnnotationError>) {
    apply_all(&PROXY_ANNOTATIONS, defaults, annotations)
}

/// The policy of an Ingress: `defaults` with its annotations applied.
pub fn policy(
    defaults: &Policy,
    annotations: Option<&BTreeMap<String, String>>,
) -> (Policy, Vec<AnnotationError>) {
    apply_all(&POLICY_ANNOTATIONS, defaults, annotations)
}

fn apply_all<T: Clone>(
    table: &[(&str, Apply<T>)],
    defaults: &T,
    annotations: Option<&BTreeMap<String, String>>,
) -> (T, Vec<AnnotationError>) {
    let mut value = defaults.clone();
    let mut errors = Vec::new();
    let Some(annotations) = annotations else {
        return (value, errors);
    };
    for (name, apply) in table {
        let key = format!("{PREFIX}{name}");
        let Some(found) = annotations.get(&key) else {
            continue;
        };
        if let Err(message) = apply(&mut value, found.trim()) {
            errors.push(AnnotationError {
                key,
                value: found.clone(),
                message,
            });
        }
    }
    (value, errors)
}

/// A boolean as Go's `strconv.ParseBool` reads it, which ingress-nginx uses.
fn boolean(value: &str) -> Result<bool, String> {
    match value {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Ok(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Ok(false),
        _ => Err("must be true or false".to_owned()),
    }
}

/// A timeout in whole seconds, as ingress-nginx's integer annotations.
fn seconds(value: &str) -> Result<Duration, String> {
    match value.parse::<u64>() {
        Ok(0) => Err("must be at least 1 second".to_owned()),
        Ok(n) if n <= 24 * 3600 => Ok(Duration::from_secs(n)),
        Ok(_) => Err("must be at most 86400 seconds".to_owned()),
        Err(_) => Err("must be a whole number of seconds".to_owned()),
    }
}

/// nginx's size syntax: a number with an optional `k`, `m` or `g` suffix
/// (either case); `0` means unlimited.
fn body_size(value: &str) -> Result<Option<u64>, String> {
    let (digits, unit) = match value.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => (&value[..i], c.to_ascii_lowercase()),
        _ => (value, 'b'),
    };
    let multiplier: u64 = match unit {
        'b' => 1,
        'k' => 1 << 10,
        'm' => 1 << 20,
        'g' => 1 << 30,
        _ => return Err("size unit must be k, m or g".to_owned()),
    };
    let n: u64 = digits
        .parse()
        .map_err(|_| "must be a size such as 1m, 512k or 0".to_owned())?;
    let bytes = n
        .checked_mul(multiplier)
        .ok_or_else(|| "size too large".to_owned())?;
    Ok((bytes > 0).then_some(bytes))
}

/// Attempts per request; `0` means no limit (every endpoint may be tried).
fn tries(value: &str) -> Result<u32, String> {
    match value.parse::<u32>() {
        Ok(0) => Ok(u32::MAX),
        Ok(n) => Ok(n),
        Err(_) => Err("must be a whole number".to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(pairs: &[(&str, &str)]) -> (ProxySettings, Vec<AnnotationError>) {
        let map: BTreeMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (format!("{PREFIX}{k}"), (*v).to_owned()))
            .collect();
        proxy_settings(&ProxySettings::default(), Some(&map))
    }

    #[test]
    fn valid_values_override_defaults() {
        let (s, errors) = parse(&[
            ("proxy-connect-timeout", "2"),
            ("proxy-read-timeout", " 120 "),
            ("proxy-send-timeout", "30"),
            ("proxy-body-size", "8m"),
            ("proxy-next-upstream-tries", "1"),
        ]);
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(s.connect_timeout, Duration::from_secs(2));
        assert_eq!(s.read_timeout, Duration::from_secs(120));
        assert_eq!(s.send_timeout, Duration::from_secs(30));
        assert_eq!(s.max_body_size, Some(8 << 20));
        assert_eq!(s.next_upstream_tries, 1);
    }

    #[test]
    fn body_sizes_follow_nginx_syntax() {
        assert_eq!(body_size("0"), Ok(None));
        assert_eq!(body_size("100"), Ok(Some(100)));
        assert_eq!(body_size("512k"), Ok(Some(512 << 10)));
        assert_eq!(body_size("1M"), Ok(Some(1 << 20)));
        assert_eq!(body_size("2g"), Ok(Some(2 << 30)));
        for bad in ["", "m", "1.5m", "-1", "1t", "99999999999999999999g", "1 m"] {
            assert!(body_size(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn invalid_values_keep_defaults_and_are_reported() {
        let (s, errors) = parse(&[
            ("proxy-read-timeout", "60s"),
            ("proxy-connect-timeout", "0"),
            ("proxy-body-size", "lots"),
        ]);
        assert_eq!(s, ProxySettings::default());
        let keys: Vec<&str> = errors.iter().map(|e| e.key.as_str()).collect();
        assert_eq!(
            keys,
            [
                "nginx.ingress.kubernetes.io/proxy-connect-timeout",
                "nginx.ingress.kubernetes.io/proxy-read-timeout",
                "nginx.ingress.kubernetes.io/proxy-body-size",
            ]
        );
        assert_eq!(errors[1].value, "60s");
    }

    #[test]
    fn redirect_switches() {
        let map: BTreeMap<String, String> = [
            ("ssl-redirect", "false"),
            ("force-ssl-redirect", "True"),
            ("preserve-trailing-slash", "yes"),
        ]
        .iter()
        .map(|(k, v)| (format!("{PREFIX}{k}"), (*v).to_owned()))
        .collect();
        let (p, errors) = policy(&Policy::default(), Some(&map));
        assert!(!p.ssl_redirect);
        assert!(p.force_ssl_redirect);
        assert!(!p.preserve_trailing_slash);
        assert_eq!(errors.len(), 1);
        assert!(errors[0].key.ends_with("preserve-trailing-slash"));
    }

    #[test]
    fn zero_tries_means_unlimited() {
        assert_eq!(tries("0"), Ok(u32::MAX));
        assert!(tries("-1").is_err());
    }
}
