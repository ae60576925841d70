//! Session affinity and consistent hashing: `affinity: cookie` with
//! `affinity-mode`, `affinity-canary-behavior` and `session-cookie-*`, and
//! `upstream-hash-by`, parsed into the backend's typed [`Affinity`]
//! (ingress-nginx's `internal/ingress/annotations/sessionaffinity` and
//! `upstreamhashby`). A bad value is reported and its default applies; a
//! bad `affinity` or `upstream-hash-by` leaves the backend without it.
//! With both set, the cookie wins, as ingress-nginx's `balancer.lua`.

use std::collections::BTreeMap;
use std::sync::Arc;

use gateway::balance::Affinity;
use gateway::balance::hash_key::HashKey;
use gateway::balance::session_cookie::{AffinityMode, CanaryBehavior, SameSite, SessionCookie};

use super::AnnotationError;
use super::values::boolean;

/// The longest cookie lifetime accepted, in seconds (about 136 years).
const MAX_SECONDS: u64 = u32::MAX as u64;

/// How one key changes the cookie settings.
type Apply = fn(&mut SessionCookie, &str) -> Result<(), String>;

/// The cookie settings and their parsers.
const COOKIE_KEYS: [(&str, Apply); 11] = [
    ("affinity-mode", |c, v| {
        c.mode = match v {
            "balanced" => AffinityMode::Balanced,
            "persistent" => AffinityMode::Persistent,
            _ => return Err("must be balanced or persistent".to_owned()),
        };
        Ok(())
    }),
    ("affinity-canary-behavior", |c, v| {
        c.canary_behavior = match v {
            "sticky" => CanaryBehavior::Sticky,
            "legacy" => CanaryBehavior::Legacy,
            _ => return Err("must be sticky or legacy".to_owned()),
        };
        Ok(())
    }),
    ("session-cookie-name", |c, v| {
        c.name = cookie_name(v)?.into();
        Ok(())
    }),
    ("session-cookie-path", |c, v| {
        c.path = Some(cookie_path(v)?.into());
        Ok(())
    }),
    ("session-cookie-domain", |c, v| {
        c.domain = Some(cookie_domain(v)?.into());
        Ok(())
    }),
    ("session-cookie-expires", |c, v| {
        c.expires = Some(lifetime(v)?);
        Ok(())
    }),
    ("session-cookie-max-age", |c, v| {
        c.max_age = Some(lifetime(v)?);
        Ok(())
    }),
    ("session-cookie-secure", |c, v| {
        c.secure = Some(boolean(v)?);
        Ok(())
    }),
    ("session-cookie-samesite", |c, v| {
        c.samesite = Some(match v.to_ascii_lowercase().as_str() {
            "none" => SameSite::None,
            "lax" => SameSite::Lax,
            "strict" => SameSite::Strict,
            _ => return Err("must be None, Lax or Strict".to_owned()),
        });
        Ok(())
    }),
    ("session-cookie-conditional-samesite-none", |c, v| {
        c.conditional_samesite_none = boolean(v)?;
        Ok(())
    }),
    ("session-cookie-change-on-failure", |c, v| {
        c.change_on_failure = boolean(v)?;
        Ok(())
    }),
];

/// Reads an Ingress's affinity annotations (keys without prefix); `None`
/// when it asks for none (or only for one that did not parse).
/// `regex_mode` is whether the Ingress puts its host in regex mode, where
/// ingress-nginx asks for `session-cookie-path` (the default is the path
/// as written, a regular expression).
pub(crate) fn parse(
    annotations: &BTreeMap<&str, &str>,
    regex_mode: bool,
    errors: &mut Vec<AnnotationError>,
) -> Option<Affinity> {
    let value = |name: &str| annotations.get(name).map(|v| v.trim());
    let cookie = match value("affinity") {
        Some("cookie") => true,
        Some(other) => {
            errors.push(error("affinity", other, "must be cookie".to_owned()));
            false
        }
        None => false,
    };
    if cookie {
        let mut config = SessionCookie::default();
        for (name, apply) in &COOKIE_KEYS {
            if let Some(v) = value(name)
                && let Err(message) = apply(&mut config, v)
            {
                errors.push(error(name, v, message));
            }
        }
        if regex_mode && config.path.is_none() {
            errors.push(error(
                "session-cookie-path",
                "",
                "should be set when use-regex or rewrite-target is on: the cookie's Path \
                 is otherwise the Ingress path as written"
                    .to_owned(),
            ));
        }
        return Some(Affinity::Cookie(Arc::new(config)));
    }
    let hash_by = value("upstream-hash-by").filter(|v| !v.is_empty())?;
    match HashKey::parse(hash_by) {
        Ok(key) => Some(Affinity::Hash(Arc::new(subsets(key, &value, errors)))),
        Err(e) => {
            errors.push(error("upstream-hash-by", hash_by, e.to_string()));
            None
        }
    }
}

/// `upstream-hash-by-subset` (false) and `-subset-size` (3, at least 1).
fn subsets<'v>(
    key: HashKey,
    value: &impl Fn(&str) -> Option<&'v str>,
    errors: &mut Vec<AnnotationError>,
) -> HashKey {
    let on = match value("upstream-hash-by-subset") {
        None => false,
        Some(v) => boolean(v).unwrap_or_else(|message| {
            errors.push(error("upstream-hash-by-subset", v, message));
            false
        }),
    };
    if !on {
        return key;
    }
    let size = match value("upstream-hash-by-subset-size") {
        None => 3,
        Some(v) => match v.parse::<usize>() {
            Ok(n) if (1..=1000).contains(&n) => n,
            _ => {
                errors.push(error(
                    "upstream-hash-by-subset-size",
                    v,
                    "must be a whole number from 1 to 1000".to_owned(),
                ));
                3
            }
        },
    };
    key.with_subsets(size)
}

fn error(name: &str, value: &str, message: String) -> AnnotationError {
    AnnotationError {
        key: format!("{}{name}", super::PREFIX),
        value: value.to_owned(),
        message,
    }
}

/// A cookie name: an RFC 6265 token.
fn cookie_name(value: &str) -> Result<&str, String> {
    let token = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+.^_`|~-".contains(&b);
    if value.is_empty() || value.len() > 256 || !value.bytes().all(token) {
        return Err("must be a cookie name (letters, digits and !#$%&'*+.^_`|~-)".to_owned());
    }
    Ok(value)
}

/// A cookie `Path`: starts with `/`, no `;`, space or control character.
fn cookie_path(value: &str) -> Result<&str, String> {
    let ok = value.starts_with('/')
        && value.len() <= 1024
        && value
            .bytes()
            .all(|b| b.is_ascii_graphic() && b != b';' && b != b',');
    if !ok {
        return Err("must be a path starting with / without ; , or spaces".to_owned());
    }
    Ok(value)
}

/// A cookie `Domain`: a host name, optionally with a leading dot.
fn cookie_domain(value: &str) -> Result<&str, String> {
    let host = value.strip_prefix('.').unwrap_or(value);
    let ok = !host.is_empty()
        && host.len() <= 253
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
        && !host.starts_with('.')
        && !host.ends_with('.');
    if !ok {
        return Err("must be a domain name".to_owned());
    }
    Ok(value)
}

/// A cookie lifetime in whole seconds.
fn lifetime(value: &str) -> Result<u64, String> {
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
        return Err("must be a whole number of seconds".to_owned());
    }
    value
        .parse::<u64>()
        .ok()
        .filter(|n| *n <= MAX_SECONDS)
        .ok_or_else(|| format!("must be at most {MAX_SECONDS} seconds"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(pairs: &[(&'static str, &'static str)]) -> (Option<Affinity>, Vec<String>) {
        let map: BTreeMap<&str, &str> = pairs.iter().copied().collect();
        let mut errors = Vec::new();
        let affinity = parse(&map, false, &mut errors);
        (affinity, errors.into_iter().map(|e| e.key).collect())
    }

    fn cookie(pairs: &[(&'static str, &'static str)]) -> (SessionCookie, Vec<String>) {
        let mut all = vec![("affinity", "cookie")];
        all.extend_from_slice(pairs);
        match parsed(&all) {
            (Some(Affinity::Cookie(c)), errors) => ((*c).clone(), errors),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn defaults_follow_ingress_nginx() {
        let (c, errors) = cookie(&[]);
        assert!(errors.is_empty());
        assert_eq!(c, SessionCookie::default());
        assert_eq!(&*c.name, "INGRESSCOOKIE");
        assert_eq!(c.mode, AffinityMode::Balanced);
        assert_eq!(parsed(&[]).0, None);
        // session-cookie-* without affinity do nothing.
        assert_eq!(parsed(&[("session-cookie-name", "x")]).0, None);
    }

    #[test]
    fn every_cookie_setting() {
        let (c, errors) = cookie(&[
            ("affinity-mode", "persistent"),
            ("affinity-canary-behavior", "legacy"),
            ("session-cookie-name", "route"),
            ("session-cookie-path", "/app"),
            ("session-cookie-domain", ".example.com"),
            ("session-cookie-expires", "172800"),
            ("session-cookie-max-age", "0"),
            ("session-cookie-secure", "true"),
            ("session-cookie-samesite", "None"),
            ("session-cookie-conditional-samesite-none", "true"),
            ("session-cookie-change-on-failure", "true"),
        ]);
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(c.mode, AffinityMode::Persistent);
        assert_eq!(c.canary_behavior, CanaryBehavior::Legacy);
        assert_eq!(&*c.name, "route");
        assert_eq!(c.path.as_deref(), Some("/app"));
        assert_eq!(c.domain.as_deref(), Some(".example.com"));
        assert_eq!((c.expires, c.max_age), (Some(172_800), Some(0)));
        assert_eq!(c.secure, Some(true));
        assert_eq!(c.samesite, Some(SameSite::None));
        assert!(c.conditional_samesite_none && c.change_on_failure);
    }

    #[test]
    fn bad_values_are_reported_and_keep_their_defaults() {
        let (c, errors) = cookie(&[
            ("affinity-mode", "sticky"),
            ("affinity-canary-behavior", "always"),
            ("session-cookie-name", "a b"),
            ("session-cookie-path", "app"),
            ("session-cookie-domain", "a;b"),
            ("session-cookie-expires", "-1"),
            ("session-cookie-max-age", "4294967296"),
            ("session-cookie-secure", "yes"),
            ("session-cookie-samesite", "sometimes"),
        ]);
        assert_eq!(errors.len(), 9, "{errors:?}");
        assert!(errors.iter().all(|k| k.starts_with(super::super::PREFIX)));
        assert_eq!(c, SessionCookie::default());
        assert_eq!(lifetime("4294967295"), Ok(MAX_SECONDS));
        assert!(cookie_path("/a;Secure").is_err());
        assert!(cookie_name("x\r\ny").is_err());
    }

    #[test]
    fn affinity_other_than_cookie_is_refused() {
        let (affinity, errors) = parsed(&[("affinity", "ip")]);
        assert_eq!(affinity, None);
        assert_eq!(errors, ["nginx.ingress.kubernetes.io/affinity"]);
    }

    #[test]
    fn hash_subsets_have_a_size() {
        let (affinity, errors) = parsed(&[
            ("upstream-hash-by", "$host"),
            ("upstream-hash-by-subset", "true"),
            ("upstream-hash-by-subset-size", "2"),
        ]);
        assert!(errors.is_empty(), "{errors:?}");
        match affinity {
            Some(Affinity::Hash(key)) => assert_eq!(key.subset_size(), Some(2)),
            other => panic!("{other:?}"),
        }
        let (affinity, _) = parsed(&[
            ("upstream-hash-by", "$host"),
            ("upstream-hash-by-subset", "true"),
        ]);
        match affinity {
            Some(Affinity::Hash(key)) => assert_eq!(key.subset_size(), Some(3)),
            other => panic!("{other:?}"),
        }
        let (_, errors) = parsed(&[
            ("upstream-hash-by", "$host"),
            ("upstream-hash-by-subset", "true"),
            ("upstream-hash-by-subset-size", "0"),
        ]);
        assert_eq!(
            errors,
            ["nginx.ingress.kubernetes.io/upstream-hash-by-subset-size"]
        );
    }

    #[test]
    fn hash_by_is_a_parsed_template_and_the_cookie_wins() {
        let (affinity, errors) = parsed(&[("upstream-hash-by", "$http_x_user")]);
        assert!(errors.is_empty());
        assert!(matches!(affinity, Some(Affinity::Hash(k)) if k.to_string() == "$http_x_user"));
        let (affinity, errors) = parsed(&[("upstream-hash-by", "$uri$")]);
        assert_eq!(affinity, None);
        assert_eq!(errors, ["nginx.ingress.kubernetes.io/upstream-hash-by"]);
        let (affinity, _) = parsed(&[("upstream-hash-by", "$host"), ("affinity", "cookie")]);
        assert!(matches!(affinity, Some(Affinity::Cookie(_))));
    }
}
