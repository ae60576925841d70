//! The ConfigMap keys that keep tenants (namespaces) apart, under the
//! `edge-gateway.io/` prefix (ingress-nginx ignores them):
//! `allow-cross-namespace-canary` (default false: a canary Ingress only
//! splits routes of its own namespace) and the regex limits
//! `max-regex-paths-per-ingress` (1000), `max-regex-paths-per-host` (2000)
//! and `max-regex-memory-per-ingress` (32Mi; see
//! the compile's regex paths).

use std::collections::BTreeMap;

use super::KeyError;
use crate::annotations::values::boolean;
use crate::options::{CompileOptions, RegexLimits};

/// `edge-gateway.io/allow-cross-namespace-canary`.
pub const ALLOW_CROSS_NAMESPACE_CANARY: &str = "edge-gateway.io/allow-cross-namespace-canary";

/// The keys read here.
pub(super) const KEYS: [&str; 4] = [
    ALLOW_CROSS_NAMESPACE_CANARY,
    "edge-gateway.io/max-regex-paths-per-ingress",
    "edge-gateway.io/max-regex-paths-per-host",
    "edge-gateway.io/max-regex-memory-per-ingress",
];

/// The tenancy settings of a ConfigMap.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Tenancy {
    /// Whether canaries may join another namespace's routes.
    pub allow_cross_namespace_canary: bool,
    /// The regex limits.
    pub regex_limits: RegexLimits,
}

impl Tenancy {
    /// Sets them on the compile options.
    pub(super) fn apply(&self, options: &mut CompileOptions) {
        options.allow_cross_namespace_canary = self.allow_cross_namespace_canary;
        options.regex_limits = self.regex_limits;
    }
}

/// Reads the keys; a value that does not parse keeps its default (the
/// safe one: canaries stay in their namespace, limits at their defaults).
pub(super) fn read(data: &BTreeMap<String, String>, errors: &mut Vec<KeyError>) -> Tenancy {
    let mut tenancy = Tenancy::default();
    let mut fail = |key: &str, value: &str, message: String| {
        errors.push(KeyError {
            key: key.to_owned(),
            value: value.to_owned(),
            message,
        });
    };
    for key in KEYS {
        let Some(value) = data.get(key).map(|v| v.trim()) else {
            continue;
        };
        let limits = &mut tenancy.regex_limits;
        let result = match key {
            ALLOW_CROSS_NAMESPACE_CANARY => {
                boolean(value).map(|on| tenancy.allow_cross_namespace_canary = on)
            }
            "edge-gateway.io/max-regex-paths-per-ingress" => {
                count(value).map(|n| limits.per_ingress = n)
            }
            "edge-gateway.io/max-regex-paths-per-host" => count(value).map(|n| limits.per_host = n),
            _ => size(value).map(|n| limits.memory_per_ingress = n),
        };
        if let Err(message) = result {
            fail(key, value, message);
        }
    }
    tenancy
}

fn count(value: &str) -> Result<usize, String> {
    value
        .parse::<usize>()
        .map_err(|_| "must be a whole number".to_owned())
}

/// `33554432`, `32Mi`, `512Ki` (powers of 1024).
fn size(value: &str) -> Result<usize, String> {
    let (digits, multiplier) = match value {
        v if v.ends_with("Mi") => (&v[..v.len() - 2], 1 << 20),
        v if v.ends_with("Ki") => (&v[..v.len() - 2], 1 << 10),
        v => (v, 1),
    };
    digits
        .parse::<usize>()
        .ok()
        .and_then(|n| n.checked_mul(multiplier))
        .ok_or_else(|| "must be a size such as 32Mi, 512Ki or a number of bytes".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_parse_and_bad_values_keep_defaults() {
        let data: BTreeMap<String, String> = [
            (ALLOW_CROSS_NAMESPACE_CANARY, "true"),
            ("edge-gateway.io/max-regex-paths-per-ingress", "50"),
            ("edge-gateway.io/max-regex-paths-per-host", "lots"),
            ("edge-gateway.io/max-regex-memory-per-ingress", "4Mi"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        let mut errors = Vec::new();
        let t = read(&data, &mut errors);
        assert!(t.allow_cross_namespace_canary);
        assert_eq!(t.regex_limits.per_ingress, 50);
        assert_eq!(t.regex_limits.per_host, RegexLimits::default().per_host);
        assert_eq!(t.regex_limits.memory_per_ingress, 4 << 20);
        assert_eq!(errors.len(), 1);
    }
}
