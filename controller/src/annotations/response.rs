//! The annotations (and ConfigMap defaults) of what happens to a route's
//! upstream response: `proxy-redirect-from` / `-to`, `proxy-cookie-domain`,
//! `proxy-cookie-path`, `limit-rate` / `limit-rate-after` (kilobytes, as
//! ingress-nginx writes `limit_rate <n>k`), and `custom-headers` (a
//! ConfigMap the compile reads).

use std::collections::BTreeMap;

use gateway::body_filter::RateLimit;
use gateway::policy::response::{Replace, ResponseRules};

use super::{AnnotationError, error};
use crate::objects::NsName;

/// The parsed response annotations.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ResponseSpec {
    /// The rules (the defaults with the annotations applied), without the
    /// custom headers.
    pub rules: ResponseRules,
    /// `custom-headers`: the ConfigMap of headers (`<name>` is in the
    /// Ingress's namespace).
    pub custom_headers: Option<NsName>,
}

/// The annotations read here.
pub(crate) const KEYS: [&str; 7] = [
    "custom-headers",
    "limit-rate",
    "limit-rate-after",
    "proxy-cookie-domain",
    "proxy-cookie-path",
    "proxy-redirect-from",
    "proxy-redirect-to",
];

/// `off`, or `<from> <to>` (`proxy-cookie-domain`, `proxy-cookie-path`).
pub(crate) fn replace_pair(value: &str) -> Result<Option<Replace>, String> {
    if value == "off" {
        return Ok(None);
    }
    let mut fields = value.split_ascii_whitespace();
    match (fields.next(), fields.next(), fields.next()) {
        (Some(from), Some(to), None) => Replace::new(from, to).map(Some),
        _ => Err("must be off, or the text to replace and its replacement".to_owned()),
    }
}

/// `proxy-redirect-from` and `-to`: `off` or `default` in `from` (or `to`
/// left `off`) means no rewriting, as ingress-nginx's template.
pub(crate) fn redirect(from: &str, to: &str) -> Result<Option<Replace>, String> {
    // `default` would rewrite ingress-nginx's internal upstream name, which
    // no upstream sends.
    if matches!(from, "off" | "default") || to == "off" {
        return Ok(None);
    }
    if from.contains(char::is_whitespace) || to.contains(char::is_whitespace) {
        return Err("must be a string without spaces".to_owned());
    }
    Replace::new(from, to).map(Some)
}

/// Kilobytes (per second), as ingress-nginx's `limit_rate <n>k`.
pub(crate) fn kilobytes(value: &str) -> Result<u64, String> {
    value
        .parse::<u64>()
        .ok()
        .filter(|n| *n <= 1 << 30)
        .map(|n| n * 1024)
        .ok_or_else(|| "must be a whole number of kilobytes".to_owned())
}

/// `limit-rate` and `limit-rate-after` (bytes): no pacing when the rate is 0.
pub(crate) fn rate(rate: u64, after: u64) -> Option<RateLimit> {
    (rate > 0).then_some(RateLimit { rate, after })
}

/// Reads the annotations over `defaults` (the ConfigMap's).
pub(crate) fn parse(
    annotations: &BTreeMap<&str, &str>,
    namespace: &str,
    defaults: Option<&ResponseRules>,
    errors: &mut Vec<AnnotationError>,
) -> ResponseSpec {
    let mut rules = defaults.cloned().unwrap_or_default();
    let get = |name: &str| annotations.get(name).map(|v| v.trim());
    let mut report = |name: &str, message: String| {
        errors.push(error(name, get(name).unwrap_or(""), message));
    };
    if get("proxy-redirect-from").is_some() || get("proxy-redirect-to").is_some() {
        let from = get("proxy-redirect-from").unwrap_or("off");
        let to = get("proxy-redirect-to").unwrap_or("off");
        match redirect(from, to) {
            Ok(replace) => rules.redirect = replace,
            Err(message) => report("proxy-redirect-from", message),
        }
    }
    for (name, slot) in [
        ("proxy-cookie-domain", &mut rules.cookie_domain),
        ("proxy-cookie-path", &mut rules.cookie_path),
    ] {
        if let Some(value) = get(name) {
            match replace_pair(value) {
                Ok(replace) => *slot = replace,
                Err(message) => report(name, message),
            }
        }
    }
    if get("limit-rate").is_some() || get("limit-rate-after").is_some() {
        let current = rules.rate.unwrap_or(RateLimit { rate: 0, after: 0 });
        let mut read = |name: &str, fallback: u64| match get(name) {
            None => fallback,
            Some(value) => kilobytes(value).unwrap_or_else(|message| {
                report(name, message);
                fallback
            }),
        };
        let limit = read("limit-rate", current.rate);
        let after = read("limit-rate-after", current.after);
        rules.rate = rate(limit, after);
    }
    let custom_headers = get("custom-headers").and_then(|value| {
        let id = match value.split_once('/') {
            Some((ns, name)) => NsName::new(ns, name),
            None => NsName::new(namespace, value),
        };
        let valid = [&id.namespace, &id.name].iter().all(|part| {
            !part.is_empty()
                && part.len() <= 253
                && part
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
        });
        if valid {
            Some(id)
        } else {
            report(
                "custom-headers",
                "must name a ConfigMap as <namespace>/<name> or <name>".to_owned(),
            );
            None
        }
    });
    ResponseSpec {
        rules,
        custom_headers,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_pairs(pairs: &[(&str, &str)]) -> (ResponseSpec, Vec<AnnotationError>) {
        let map: BTreeMap<&str, &str> = pairs.iter().copied().collect();
        let mut errors = Vec::new();
        (parse(&map, "ns", None, &mut errors), errors)
    }

    #[test]
    fn annotations_build_the_rules() {
        let (spec, errors) = parse_pairs(&[
            ("proxy-redirect-from", "http://backend/"),
            ("proxy-redirect-to", "https://app.example/"),
            ("proxy-cookie-domain", "backend.local app.example"),
            ("proxy-cookie-path", "/ /app/"),
            ("limit-rate", "100"),
            ("limit-rate-after", "10"),
            ("custom-headers", "headers"),
        ]);
        assert!(errors.is_empty(), "{errors:?}");
        let r = &spec.rules;
        assert_eq!(&*r.redirect.as_ref().unwrap().to, "https://app.example/");
        assert_eq!(&*r.cookie_domain.as_ref().unwrap().from, "backend.local");
        assert_eq!(&*r.cookie_path.as_ref().unwrap().to, "/app/");
        assert_eq!(
            r.rate,
            Some(RateLimit {
                rate: 102_400,
                after: 10_240
            })
        );
        assert_eq!(spec.custom_headers, Some(NsName::new("ns", "headers")));
    }

    #[test]
    fn off_and_default_disable_and_bad_values_are_reported() {
        let (spec, errors) = parse_pairs(&[
            ("proxy-redirect-from", "default"),
            ("proxy-redirect-to", "https://x/"),
            ("proxy-cookie-domain", "off"),
            ("limit-rate", "0"),
        ]);
        assert!(errors.is_empty());
        assert!(spec.rules.is_empty());
        let (_, errors) = parse_pairs(&[
            ("proxy-cookie-path", "/only-one"),
            ("proxy-redirect-from", "http://$host/"),
            ("proxy-redirect-to", "/"),
            ("limit-rate", "fast"),
            ("custom-headers", "Bad/Name"),
        ]);
        let keys: Vec<&str> = errors.iter().map(|e| e.key.as_str()).collect();
        assert_eq!(keys.len(), 4, "{keys:?}");
        // Only `from` set: `to` stays off, nothing is rewritten.
        let (spec, errors) = parse_pairs(&[("proxy-redirect-from", "http://a/")]);
        assert!(errors.is_empty() && spec.rules.redirect.is_none());
    }

    #[test]
    fn annotations_override_the_config_map_defaults() {
        let defaults = ResponseRules {
            rate: rate(2048, 0),
            cookie_path: replace_pair("/ /x/").unwrap(),
            ..ResponseRules::default()
        };
        let map: BTreeMap<&str, &str> = [("limit-rate-after", "1")].into_iter().collect();
        let spec = parse(&map, "ns", Some(&defaults), &mut Vec::new());
        assert_eq!(spec.rules.rate, rate(2048, 1024));
        assert!(spec.rules.cookie_path.is_some());
    }
}
