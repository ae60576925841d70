//! The ConfigMap defaults of the response annotations (`limit-rate`,
//! `limit-rate-after`, `proxy-cookie-domain`, `proxy-cookie-path`,
//! `proxy-redirect-from` / `-to`), read together into the route policy's
//! rules, and `global-allowed-response-headers`, which `custom-headers`
//! must keep to.

use std::collections::BTreeMap;
use std::sync::Arc;

use gateway::policy::response::ResponseRules;

use super::{Apply, KeyError, Read};
use crate::annotations::response::{kilobytes, rate, redirect, replace_pair};

/// The keys [`read`] combines.
pub(super) const KEYS: [&str; 6] = [
    "limit-rate",
    "limit-rate-after",
    "proxy-cookie-domain",
    "proxy-cookie-path",
    "proxy-redirect-from",
    "proxy-redirect-to",
];

/// The keys with a parser of their own.
pub(super) const PARSERS: &[(&str, Apply)] = &[("global-allowed-response-headers", |c, v| {
    let mut allowed = Vec::new();
    for name in v.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        if http::HeaderName::from_bytes(name.as_bytes()).is_err() {
            return Err(format!("{name:?} is not a header name"));
        }
        allowed.push(name.to_owned());
    }
    c.allowed_response_headers = allowed;
    Ok(())
})];

/// Reads [`KEYS`] into the default policy's response rules.
pub(super) fn read(data: &BTreeMap<String, String>, read: &mut Read) {
    if !KEYS.iter().any(|k| data.contains_key(*k)) {
        return;
    }
    let get = |key: &str| data.get(key).map(|v| v.trim());
    let mut rules = ResponseRules::default();
    let mut errors: Vec<(&str, String)> = Vec::new();
    let from = get("proxy-redirect-from").unwrap_or("off");
    let to = get("proxy-redirect-to").unwrap_or("off");
    match redirect(from, to) {
        Ok(replace) => rules.redirect = replace,
        Err(message) => errors.push(("proxy-redirect-from", message)),
    }
    for (key, slot) in [
        ("proxy-cookie-domain", &mut rules.cookie_domain),
        ("proxy-cookie-path", &mut rules.cookie_path),
    ] {
        if let Some(value) = get(key) {
            match replace_pair(value) {
                Ok(replace) => *slot = replace,
                Err(message) => errors.push((key, message)),
            }
        }
    }
    let mut kilobytes_of = |key: &'static str| match get(key) {
        None => 0,
        Some(value) => kilobytes(value).unwrap_or_else(|message| {
            errors.push((key, message));
            0
        }),
    };
    let (limit, after) = (kilobytes_of("limit-rate"), kilobytes_of("limit-rate-after"));
    rules.rate = rate(limit, after);
    for (key, message) in errors {
        read.errors.push(KeyError {
            key: key.to_owned(),
            value: data.get(key).cloned().unwrap_or_default(),
            message,
        });
    }
    read.config.policy.response = (!rules.is_empty()).then(|| Arc::new(rules));
}

#[cfg(test)]
mod tests {
    use super::super::read;
    use super::*;
    use gateway::body_filter::RateLimit;

    /// A rate in kilobytes.
    fn kb(rate: u64, after: u64) -> Option<RateLimit> {
        Some(RateLimit {
            rate: rate * 1024,
            after: after * 1024,
        })
    }

    fn data(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn defaults_for_every_route() {
        let r = read(&data(&[
            ("limit-rate", "64"),
            ("limit-rate-after", "128"),
            ("proxy-cookie-path", "/ /app/"),
            ("proxy-redirect-from", "http://internal/"),
            ("proxy-redirect-to", "/"),
            ("global-allowed-response-headers", "X-Team, Content-Type"),
        ]));
        assert!(r.errors.is_empty(), "{:?}", r.errors);
        assert!(r.unknown.is_empty() && r.not_applied.is_empty());
        let rules = r.config.policy.response.unwrap();
        assert_eq!(rules.rate, kb(64, 128));
        assert!(rules.cookie_path.is_some() && rules.redirect.is_some());
        assert_eq!(
            r.config.allowed_response_headers,
            ["X-Team", "Content-Type"]
        );
    }

    #[test]
    fn off_is_the_default_and_bad_values_are_reported() {
        let r = read(&data(&[
            ("proxy-cookie-domain", "off"),
            ("limit-rate", "0"),
        ]));
        assert!(r.config.policy.response.is_none());
        let r = read(&data(&[
            ("limit-rate", "-5"),
            ("proxy-cookie-domain", "one"),
            ("global-allowed-response-headers", "Bad Header"),
        ]));
        assert_eq!(r.errors.len(), 3, "{:?}", r.errors);
    }
}
