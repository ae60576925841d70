//! The canary annotations (`canary`, `canary-weight`, `canary-weight-total`,
//! `canary-by-header`, `canary-by-header-value`, `canary-by-header-pattern`,
//! `canary-by-cookie`), read as ingress-nginx's
//! `internal/ingress/annotations/canary` reads them: an invalid value is
//! reported and replaced by its default (weight 0, total 100, no header,
//! no cookie), and the character sets are ingress-nginx's validators'
//! (`BasicCharsRegex` for names and the header value, `IsValidRegex` for
//! the pattern).
//!
//! An Ingress is a canary only with `canary: "true"`; `canary-*` values
//! without it are reported and ignored (ingress-nginx: "configured but not
//! enabled"). What a canary does with them is in [`gateway::canary`].

use std::collections::BTreeMap;

use gateway::canary::{CanaryRule, DEFAULT_WEIGHT_TOTAL, HeaderMatch};
use http::HeaderName;

use super::values::boolean;
use super::{AnnotationError, error};

/// What makes an Ingress a canary, and when its Service takes a request.
#[derive(Clone, Debug)]
pub struct CanarySpec {
    /// The rule, with ingress-nginx's defaults for what is unset or invalid.
    pub rule: CanaryRule,
    /// Settings that parse but do not do what they seem to (a pattern this
    /// gateway cannot run, a total below 100, a value without a header),
    /// for diagnostics.
    pub notes: Vec<String>,
}

/// The canary annotations (without prefix) other than `canary` itself.
const SETTINGS: [&str; 6] = [
    "canary-weight",
    "canary-weight-total",
    "canary-by-header",
    "canary-by-header-value",
    "canary-by-header-pattern",
    "canary-by-cookie",
];

/// Reads the canary annotations: `Some` for a canary Ingress.
pub(crate) fn parse(
    annotations: &BTreeMap<&str, &str>,
    errors: &mut Vec<AnnotationError>,
) -> Option<CanarySpec> {
    let enabled = match value(annotations, "canary").map(boolean) {
        None => false,
        Some(Ok(enabled)) => enabled,
        Some(Err(message)) => {
            let found = value(annotations, "canary").unwrap_or("");
            errors.push(error("canary", found, message));
            false
        }
    };
    if !enabled {
        let set: Vec<&str> = SETTINGS
            .into_iter()
            .filter(|n| value(annotations, n).is_some())
            .collect();
        if !set.is_empty() {
            let message = format!(
                "is not \"true\", so {} {} ignored and the Ingress is not a canary",
                set.join(", "),
                if set.len() == 1 { "is" } else { "are" }
            );
            let found = value(annotations, "canary").unwrap_or("");
            errors.push(error("canary", found, message));
        }
        return None;
    }
    let mut notes = Vec::new();
    let weight = integer(annotations, "canary-weight", 0, errors);
    let default_total = i64::from(DEFAULT_WEIGHT_TOTAL);
    let total = integer(annotations, "canary-weight-total", default_total, errors);
    if total < default_total {
        notes.push(format!(
            "{}canary-weight-total {total} is below 100, which ingress-nginx's balancer \
             ignores: the weight counts out of 100",
            super::PREFIX
        ));
    }
    let mut rule = CanaryRule::weighted(weight, total);

    let header = checked(annotations, "canary-by-header", basic_char, errors).and_then(|name| {
        // nginx matches `$http_<name>` with `-` and `_` alike.
        let header = HeaderName::from_bytes(name.replace('_', "-").as_bytes()).ok();
        if header.is_none() {
            let message = "is not a header name; ignored".to_owned();
            errors.push(error("canary-by-header", name, message));
        }
        header
    });
    let value_char = |b| basic_char(b) || b == b' ';
    let header_value = checked(annotations, "canary-by-header-value", value_char, errors);
    let pattern = checked(annotations, "canary-by-header-pattern", regex_char, errors);
    match header {
        Some(name) => {
            let matching = match (header_value, pattern) {
                (Some(wanted), _) => HeaderMatch::Value(wanted.as_bytes().into()),
                (None, Some(pattern)) => HeaderMatch::pattern(pattern).unwrap_or_else(|e| {
                    notes.push(format!(
                        "{}canary-by-header-pattern {pattern:?}: {e}; requests with the header \
                         {name} go to the main backend, as in ingress-nginx when a pattern fails",
                        super::PREFIX
                    ));
                    HeaderMatch::Unusable
                }),
                (None, None) => HeaderMatch::AlwaysNever,
            };
            rule = rule.by_header(name, matching);
        }
        None if header_value.is_some() || pattern.is_some() => notes.push(format!(
            "{0}canary-by-header-value and {0}canary-by-header-pattern have no effect \
             without {0}canary-by-header",
            super::PREFIX
        )),
        None => {}
    }
    if let Some(cookie) = checked(annotations, "canary-by-cookie", basic_char, errors) {
        rule = rule.by_cookie(cookie);
    }
    Some(CanarySpec { rule, notes })
}

/// An annotation's trimmed value; empty is unset.
fn value<'a>(annotations: &BTreeMap<&str, &'a str>, name: &str) -> Option<&'a str> {
    annotations
        .get(name)
        .map(|v| v.trim())
        .filter(|v| !v.is_empty())
}

/// An integer as Go's `strconv.Atoi` reads it, or `default` (reported).
fn integer(
    annotations: &BTreeMap<&str, &str>,
    name: &str,
    default: i64,
    errors: &mut Vec<AnnotationError>,
) -> i64 {
    let Some(found) = value(annotations, name) else {
        return default;
    };
    found.parse().unwrap_or_else(|_| {
        errors.push(error(name, found, "must be a whole number".to_owned()));
        default
    })
}

/// A value made only of `allowed` characters, or `None` (reported).
fn checked<'a>(
    annotations: &BTreeMap<&str, &'a str>,
    name: &str,
    allowed: fn(u8) -> bool,
    errors: &mut Vec<AnnotationError>,
) -> Option<&'a str> {
    let found = value(annotations, name)?;
    if found.bytes().all(allowed) {
        return Some(found);
    }
    let message = "has characters ingress-nginx does not accept here; ignored".to_owned();
    errors.push(error(name, found, message));
    None
}

/// ingress-nginx's `BasicCharsRegex`: letters, digits and `/-._~:`.
fn basic_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"/-._~:".contains(&b)
}

/// ingress-nginx's `IsValidRegex`: the basic characters and `^$[](){}*+?|&=\`.
fn regex_char(b: u8) -> bool {
    basic_char(b) || b"^$[](){}*+?|&=\\".contains(&b)
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::{HeaderMap, HeaderValue};

    fn parse_pairs(pairs: &[(&str, &str)]) -> (Option<CanarySpec>, Vec<AnnotationError>) {
        let map: BTreeMap<&str, &str> = pairs.iter().copied().collect();
        let mut errors = Vec::new();
        (parse(&map, &mut errors), errors)
    }

    fn keys(errors: &[AnnotationError]) -> Vec<&str> {
        errors
            .iter()
            .map(|e| e.key.trim_start_matches(super::super::PREFIX))
            .collect()
    }

    fn with(name: &'static str, value: &'static str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(name, HeaderValue::from_static(value));
        h
    }

    /// Decides without a draw: the header or cookie must decide.
    fn decided(spec: &CanarySpec, h: &HeaderMap) -> bool {
        spec.rule.decide_with(h, |_| panic!("no draw expected"))
    }

    #[test]
    fn only_canary_true_makes_a_canary() {
        assert!(parse_pairs(&[]).0.is_none());
        let (spec, errors) = parse_pairs(&[("canary", "true")]);
        assert_eq!(spec.unwrap().rule.weight(), (0, 100));
        assert!(errors.is_empty());
        let (spec, errors) = parse_pairs(&[("canary", "false"), ("canary-weight", "10")]);
        assert!(spec.is_none());
        assert_eq!(keys(&errors), ["canary"]);
        assert!(errors[0].message.contains("canary-weight is ignored"));
        let (spec, errors) = parse_pairs(&[("canary", "yes"), ("canary-by-header", "x")]);
        assert!(spec.is_none());
        assert_eq!(keys(&errors), ["canary", "canary"]);
        assert!(parse_pairs(&[("canary", "false")]).1.is_empty());
    }

    #[test]
    fn integers_default_when_invalid() {
        let (spec, errors) = parse_pairs(&[
            ("canary", "true"),
            ("canary-weight", "30%"),
            ("canary-weight-total", "lots"),
        ]);
        assert_eq!(spec.unwrap().rule.weight(), (0, 100));
        assert_eq!(keys(&errors), ["canary-weight", "canary-weight-total"]);
        let (spec, _) = parse_pairs(&[
            ("canary", "true"),
            ("canary-weight", " 25 "),
            ("canary-weight-total", "1000"),
        ]);
        assert_eq!(spec.unwrap().rule.weight(), (25, 1000));
        let (spec, errors) = parse_pairs(&[
            ("canary", "true"),
            ("canary-weight", "5"),
            ("canary-weight-total", "10"),
        ]);
        let spec = spec.unwrap();
        assert!(errors.is_empty());
        assert_eq!(spec.rule.weight(), (5, 100), "ingress-nginx's floor of 100");
        assert_eq!(spec.notes.len(), 1);
    }

    #[test]
    fn header_name_value_and_pattern() {
        let (spec, errors) = parse_pairs(&[
            ("canary", "true"),
            ("canary-by-header", "X_Canary"),
            ("canary-by-header-value", "beta user"),
            ("canary-by-header-pattern", "ignored"),
        ]);
        assert!(errors.is_empty(), "{errors:?}");
        let spec = spec.unwrap();
        assert!(decided(&spec, &with("x-canary", "beta user")));
        assert!(!decided(&spec, &with("x-canary", "always")));
        let (spec, _) = parse_pairs(&[
            ("canary", "true"),
            ("canary-by-header", "x-version"),
            ("canary-by-header-pattern", "^v[2-9]$"),
        ]);
        let spec = spec.unwrap();
        assert!(decided(&spec, &with("x-version", "v3")));
        assert!(!decided(&spec, &with("x-version", "v1")));
    }

    #[test]
    fn characters_outside_ingress_nginx_validators_are_refused() {
        let (spec, errors) = parse_pairs(&[
            ("canary", "true"),
            ("canary-by-header", "x-canary"),
            ("canary-by-header-value", "a,b"),
            ("canary-by-cookie", "bad cookie"),
        ]);
        assert_eq!(
            keys(&errors),
            ["canary-by-header-value", "canary-by-cookie"]
        );
        // The value is dropped, so the header reads always / never.
        let spec = spec.unwrap();
        assert!(decided(&spec, &with("x-canary", "always")));
        let (_, errors) = parse_pairs(&[
            ("canary", "true"),
            ("canary-by-header", "x-canary"),
            ("canary-by-header-pattern", "a b"),
        ]);
        assert_eq!(keys(&errors), ["canary-by-header-pattern"]);
        let (_, errors) = parse_pairs(&[("canary", "true"), ("canary-by-header", "x/y")]);
        assert_eq!(keys(&errors), ["canary-by-header"], "not a header name");
    }

    #[test]
    fn a_pattern_that_cannot_run_sends_its_header_to_main() {
        let (spec, errors) = parse_pairs(&[
            ("canary", "true"),
            ("canary-weight", "100"),
            ("canary-by-header", "x-version"),
            ("canary-by-header-pattern", "(unclosed"),
        ]);
        assert!(errors.is_empty());
        let spec = spec.unwrap();
        assert_eq!(spec.notes.len(), 1, "{:?}", spec.notes);
        assert!(!decided(&spec, &with("x-version", "x")));
        assert!(decided(&spec, &HeaderMap::new()));
    }

    #[test]
    fn value_without_header_is_noted_and_cookie_read() {
        let (spec, _) = parse_pairs(&[
            ("canary", "true"),
            ("canary-by-header-value", "v"),
            ("canary-by-cookie", "canary_user"),
        ]);
        let spec = spec.unwrap();
        assert_eq!(spec.notes.len(), 1);
        assert!(decided(&spec, &with("cookie", "canary_user=always")));
        assert!(!decided(&spec, &with("cookie", "canary_user=never")));
    }
}
