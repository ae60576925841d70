//! One HTTPRoute rule, compiled once per route (its listeners add the
//! hostnames, the scheme condition and the redirect port): its matches,
//! and what it does with a request.
//!
//! A rule using something this gateway does not implement is never served
//! without it: its matches stay in the table and answer 500 (`Dropped
//! Rule` in `PartiallyInvalid`, or `Accepted: False` when no rule of the
//! route is left), so requests neither fall through to another rule nor
//! skip the filter. That covers `ExternalAuth`, `retry`, backend filters
//! other than the header modifiers, unknown enum values and header session
//! persistence (`RequestMirror`: see [`super::mirror`]). A rule whose matches cannot be compiled (a bad
//! expression, an unknown path type) is dropped.

use std::time::Duration;

use gateway::balance::session_cookie::{AffinityMode, SessionCookie};
use gateway::matches::{Conditions, HeaderCondition, QueryCondition, ValueMatch};
use gateway::route_filter::HeaderEdits;
use gateway::route_filter::cors::{CorsFilter, CorsSpec};
use http::header::{HeaderName, HeaderValue};
use http::{Method, StatusCode};

use crate::snapshot::Snapshot;

use super::mirror::{MirrorSpec, mirror_spec};
use super::refs::{self, RefProblem, ResolvedBackend};
use super::status::names;
use super::types::{
    BackendRef, HTTPRouteFilter, HTTPRouteMatch, HTTPRouteRule, HeaderFilter,
    PathModifier as PathModifierSpec, SessionPersistence, ValueMatch as ValueMatchSpec,
};

/// The spec's limits on one rule.
const MAX_MATCHES: usize = 64;
const MAX_VALUES: usize = 16;
const MAX_FILTERS: usize = 16;
const MAX_BACKENDS: usize = 16;
/// The default session cookie name when `sessionName` is unset.
const SESSION_COOKIE: &str = "edge-gateway-session";
/// What a zero timeout ("no timeout") becomes where one is needed.
const NO_TIMEOUT: Duration = Duration::from_secs(365 * 24 * 3600);

/// How a match compares the path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum PathSpec {
    /// `Exact`.
    Exact(String),
    /// `PathPrefix`.
    Prefix(String),
    /// `RegularExpression` (the whole path).
    Regex(String),
}

impl PathSpec {
    /// The value as written (the metrics `path` label).
    pub(crate) fn value(&self) -> &str {
        match self {
            Self::Exact(v) | Self::Prefix(v) | Self::Regex(v) => v,
        }
    }
}

/// One compiled match of a rule.
#[derive(Clone, Debug)]
pub(crate) struct MatchSpec {
    pub(crate) path: PathSpec,
    /// Method, header and query conditions (the listener's scheme is
    /// added per listener).
    pub(crate) when: Conditions,
}

impl MatchSpec {
    /// The precedence of a match after its path (bigger first): method,
    /// then header count, then query count.
    pub(crate) fn weight(&self) -> (bool, usize, usize) {
        (
            self.when.method.is_some(),
            self.when.headers.len(),
            self.when.query.len(),
        )
    }
}

/// Why a rule is not served as written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct RuleProblem {
    /// `UnsupportedValue` or `IncompatibleFilters`.
    pub(crate) reason: &'static str,
    pub(crate) message: String,
}

fn unsupported(message: impl Into<String>) -> RuleProblem {
    RuleProblem {
        reason: names::UNSUPPORTED_VALUE,
        message: message.into(),
    }
}

/// A path modifier before its match is known.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum ModifierSpec {
    Full(String),
    Prefix(String),
}

impl ModifierSpec {
    /// The data plane's modifier for a match on `matched`.
    pub(crate) fn build(&self, matched: &str) -> gateway::route_filter::PathModifier {
        match self {
            Self::Full(path) => gateway::route_filter::PathModifier::Full(path.as_str().into()),
            Self::Prefix(replacement) => gateway::route_filter::PathModifier::Prefix {
                matched: matched.into(),
                replacement: replacement.as_str().into(),
            },
        }
    }
}

/// A `RequestRedirect` before its listener is known.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct RedirectSpec {
    pub(crate) scheme: Option<gateway::settings::Scheme>,
    pub(crate) hostname: Option<String>,
    pub(crate) path: Option<ModifierSpec>,
    pub(crate) port: Option<u16>,
    pub(crate) status: StatusCode,
}

/// One weighted backend of a rule.
#[derive(Clone, Debug)]
pub(crate) struct BackendSpec {
    pub(crate) weight: u32,
    pub(crate) target: Result<ResolvedBackend, RefProblem>,
    pub(crate) request_headers: Option<HeaderEdits>,
    pub(crate) response_headers: Option<HeaderEdits>,
}

/// What a valid rule does.
#[derive(Clone, Debug, Default)]
pub(crate) struct Behaviour {
    pub(crate) request_headers: Option<HeaderEdits>,
    pub(crate) response_headers: Option<HeaderEdits>,
    pub(crate) redirect: Option<RedirectSpec>,
    pub(crate) rewrite: Option<ModifierSpec>,
    pub(crate) rewrite_host: Option<HeaderValue>,
    pub(crate) cors: Option<CorsFilter>,
    pub(crate) backends: Vec<BackendSpec>,
    /// `RequestMirror`s, in order.
    pub(crate) mirrors: Vec<MirrorSpec>,
    /// An `ExtensionRef` filter: its requests answer 500 (the spec forbids
    /// skipping a filter it cannot resolve).
    pub(crate) extension: Option<String>,
    /// `timeouts.request`: `Some(None)` is "no timeout".
    pub(crate) request_timeout: Option<Option<Duration>>,
    /// `timeouts.backendRequest`.
    pub(crate) backend_timeout: Option<Duration>,
    /// `sessionPersistence`.
    pub(crate) session: Option<SessionCookie>,
}

/// One compiled rule.
#[derive(Clone, Debug)]
pub(crate) struct CompiledRule {
    /// Its index in the route.
    pub(crate) index: usize,
    /// Its matches (empty when they could not be compiled: not placed).
    pub(crate) matches: Vec<MatchSpec>,
    /// What it does, or why it answers 500 instead.
    pub(crate) behaviour: Result<Behaviour, RuleProblem>,
}

/// Compiles an HTTPRoute rule of a route in `namespace`.
pub(crate) fn http_rule(
    snapshot: &Snapshot,
    namespace: &str,
    index: usize,
    rule: &HTTPRouteRule,
) -> CompiledRule {
    let matches = match http_matches(&rule.matches) {
        Ok(matches) => matches,
        Err(problem) => {
            return CompiledRule {
                index,
                matches: Vec::new(),
                behaviour: Err(problem),
            };
        }
    };
    let behaviour = http_behaviour(snapshot, namespace, rule, &matches);
    CompiledRule {
        index,
        matches,
        behaviour,
    }
}

fn http_matches(matches: &[HTTPRouteMatch]) -> Result<Vec<MatchSpec>, RuleProblem> {
    if matches.len() > MAX_MATCHES {
        return Err(unsupported(format!("more than {MAX_MATCHES} matches")));
    }
    if matches.is_empty() {
        return Ok(vec![MatchSpec {
            path: PathSpec::Prefix("/".to_owned()),
            when: Conditions::default(),
        }]);
    }
    matches.iter().map(http_match).collect()
}

fn http_match(m: &HTTPRouteMatch) -> Result<MatchSpec, RuleProblem> {
    let path_type = m
        .path
        .as_ref()
        .and_then(|p| p.type_.as_deref())
        .unwrap_or("PathPrefix");
    let value = m
        .path
        .as_ref()
        .and_then(|p| p.value.clone())
        .unwrap_or_else(|| "/".to_owned());
    let path = path_spec(path_type, value)?;
    let method = match m.method.as_deref() {
        None => None,
        Some(method) => Some(parse_method(method)?),
    };
    Ok(MatchSpec {
        path,
        when: Conditions {
            scheme: None,
            method,
            headers: header_conditions(&m.headers)?,
            query: query_conditions(&m.query_params)?,
        },
    })
}

/// A path match, validated as the data plane will compile it.
pub(crate) fn path_spec(path_type: &str, value: String) -> Result<PathSpec, RuleProblem> {
    let spec = match path_type {
        "Exact" => PathSpec::Exact(value),
        "PathPrefix" => PathSpec::Prefix(value),
        "RegularExpression" => PathSpec::Regex(value),
        other => return Err(unsupported(format!("path type {other:?} is not supported"))),
    };
    match &spec {
        PathSpec::Exact(v) | PathSpec::Prefix(v) => {
            let kind = match spec {
                PathSpec::Exact(_) => gateway::path::PathKind::Exact,
                _ => gateway::path::PathKind::Prefix,
            };
            gateway::path::PathRule::new(kind, v)
                .map_err(|e| unsupported(format!("path {v:?}: {e}")))?;
        }
        PathSpec::Regex(v) => {
            gateway::path::PathRegex::new(v)
                .map_err(|e| unsupported(format!("path {v:?}: {e}")))?;
        }
    }
    Ok(spec)
}

fn parse_method(method: &str) -> Result<Method, RuleProblem> {
    match method {
        "GET" | "HEAD" | "POST" | "PUT" | "DELETE" | "CONNECT" | "OPTIONS" | "TRACE" | "PATCH" => {
            Method::from_bytes(method.as_bytes())
                .map_err(|_| unsupported(format!("method {method:?}")))
        }
        other => Err(unsupported(format!("method {other:?} is not supported"))),
    }
}

fn value_match(type_: Option<&str>, value: &str) -> Result<ValueMatch, RuleProblem> {
    match type_.unwrap_or("Exact") {
        "Exact" => Ok(ValueMatch::Exact(value.as_bytes().into())),
        "RegularExpression" => {
            ValueMatch::regex(value).map_err(|e| unsupported(format!("{value:?}: {e}")))
        }
        other => Err(unsupported(format!(
            "match type {other:?} is not supported"
        ))),
    }
}

/// Header matches: names case-insensitive, only the first of equivalent
/// names counting (spec).
pub(crate) fn header_conditions(
    specs: &[ValueMatchSpec],
) -> Result<Vec<HeaderCondition>, RuleProblem> {
    if specs.len() > MAX_VALUES {
        return Err(unsupported(format!(
            "more than {MAX_VALUES} header matches"
        )));
    }
    let mut out: Vec<HeaderCondition> = Vec::new();
    for spec in specs {
        let name = HeaderName::from_bytes(spec.name.as_bytes())
            .map_err(|_| unsupported(format!("header name {:?}", spec.name)))?;
        if out.iter().any(|c| c.name == name) {
            continue;
        }
        out.push(HeaderCondition {
            name,
            value: value_match(spec.type_.as_deref(), &spec.value)?,
        });
    }
    Ok(out)
}

fn query_conditions(specs: &[ValueMatchSpec]) -> Result<Vec<QueryCondition>, RuleProblem> {
    if specs.len() > MAX_VALUES {
        return Err(unsupported(format!("more than {MAX_VALUES} query matches")));
    }
    let mut out: Vec<QueryCondition> = Vec::new();
    for spec in specs {
        if out.iter().any(|c| *c.name == *spec.name.as_bytes()) {
            continue;
        }
        out.push(QueryCondition {
            name: spec.name.as_bytes().into(),
            value: value_match(spec.type_.as_deref(), &spec.value)?,
        });
    }
    Ok(out)
}

fn http_behaviour(
    snapshot: &Snapshot,
    namespace: &str,
    rule: &HTTPRouteRule,
    matches: &[MatchSpec],
) -> Result<Behaviour, RuleProblem> {
    if rule.filters.len() > MAX_FILTERS || rule.backend_refs.len() > MAX_BACKENDS {
        return Err(unsupported(format!(
            "more than {MAX_FILTERS} filters or {MAX_BACKENDS} backendRefs"
        )));
    }
    if rule.retry.is_some() {
        return Err(unsupported(
            "retry (experimental) is not supported; ingress-nginx-style retries apply to idempotent requests",
        ));
    }
    let mut behaviour = Behaviour::default();
    let mut seen: Vec<&str> = Vec::new();
    for filter in &rule.filters {
        let repeatable = filter.type_ == "RequestMirror" || filter.type_ == "ExtensionRef";
        if !repeatable && seen.contains(&filter.type_.as_str()) {
            return Err(unsupported(format!("filter {} is repeated", filter.type_)));
        }
        seen.push(filter.type_.as_str());
        if filter.type_ == "RequestMirror" {
            let mirror = filter.request_mirror.as_ref();
            let spec = mirror_spec(snapshot, "HTTPRoute", namespace, mirror)?;
            behaviour.mirrors.push(spec);
            continue;
        }
        rule_filter(&mut behaviour, filter, matches)?;
    }
    if behaviour.redirect.is_some() && behaviour.rewrite.is_some()
        || behaviour.redirect.is_some() && behaviour.rewrite_host.is_some()
    {
        return Err(RuleProblem {
            reason: names::INCOMPATIBLE_FILTERS,
            message: "RequestRedirect and URLRewrite cannot be combined".to_owned(),
        });
    }
    if behaviour.redirect.is_some() && !rule.backend_refs.is_empty() {
        return Err(RuleProblem {
            reason: names::INCOMPATIBLE_FILTERS,
            message: "RequestRedirect cannot be used with backendRefs".to_owned(),
        });
    }
    for backend in &rule.backend_refs {
        let mut spec = backend_spec(snapshot, "HTTPRoute", namespace, &backend.backend_ref)?;
        for filter in &backend.filters {
            match filter.type_.as_str() {
                "RequestHeaderModifier" if spec.request_headers.is_none() => {
                    spec.request_headers = Some(edits(filter.request_header_modifier.as_ref())?);
                }
                "ResponseHeaderModifier" if spec.response_headers.is_none() => {
                    spec.response_headers = Some(edits(filter.response_header_modifier.as_ref())?);
                }
                other => {
                    return Err(unsupported(format!(
                        "backendRef filter {other} is not supported (only one RequestHeaderModifier and one ResponseHeaderModifier are)"
                    )));
                }
            }
        }
        behaviour.backends.push(spec);
    }
    if let Some(timeouts) = &rule.timeouts {
        let request = timeouts
            .request
            .as_deref()
            .map(parse_duration)
            .transpose()?;
        let backend = timeouts
            .backend_request
            .as_deref()
            .map(parse_duration)
            .transpose()?;
        if let (Some(request), Some(backend)) = (request, backend)
            && !request.is_zero()
            && backend > request
        {
            return Err(unsupported(
                "timeouts.backendRequest is longer than timeouts.request",
            ));
        }
        behaviour.request_timeout = request.map(|d| (!d.is_zero()).then_some(d));
        behaviour.backend_timeout = backend.map(|d| if d.is_zero() { NO_TIMEOUT } else { d });
    }
    if let Some(session) = &rule.session_persistence {
        if rule.backend_refs.len() > 1 {
            return Err(unsupported(
                "sessionPersistence with more than one backendRef is not supported",
            ));
        }
        behaviour.session = Some(session_cookie(session)?);
    }
    Ok(behaviour)
}

fn rule_filter(
    behaviour: &mut Behaviour,
    filter: &HTTPRouteFilter,
    matches: &[MatchSpec],
) -> Result<(), RuleProblem> {
    match filter.type_.as_str() {
        "RequestHeaderModifier" => {
            behaviour.request_headers = Some(edits(filter.request_header_modifier.as_ref())?);
        }
        "ResponseHeaderModifier" => {
            behaviour.response_headers = Some(edits(filter.response_header_modifier.as_ref())?);
        }
        "RequestRedirect" => {
            let spec = filter
                .request_redirect
                .as_ref()
                .ok_or_else(|| unsupported("RequestRedirect without requestRedirect"))?;
            let scheme = match spec.scheme.as_deref() {
                None => None,
                Some("http") => Some(gateway::settings::Scheme::Http),
                Some("https") => Some(gateway::settings::Scheme::Https),
                Some(other) => return Err(unsupported(format!("redirect scheme {other:?}"))),
            };
            let status = match spec.status_code.unwrap_or(302) {
                code @ (301 | 302 | 303 | 307 | 308) => {
                    StatusCode::from_u16(u16::try_from(code).unwrap_or(302))
                        .unwrap_or(StatusCode::FOUND)
                }
                other => return Err(unsupported(format!("redirect statusCode {other}"))),
            };
            let port = match spec.port {
                None => None,
                Some(port) => Some(
                    u16::try_from(port)
                        .ok()
                        .filter(|p| *p > 0)
                        .ok_or_else(|| unsupported(format!("redirect port {port}")))?,
                ),
            };
            let hostname = spec.hostname.clone().map(precise_hostname).transpose()?;
            let path = spec
                .path
                .as_ref()
                .map(|p| modifier(p, matches))
                .transpose()?;
            behaviour.redirect = Some(RedirectSpec {
                scheme,
                hostname,
                path,
                port,
                status,
            });
        }
        "URLRewrite" => {
            let spec = filter
                .url_rewrite
                .as_ref()
                .ok_or_else(|| unsupported("URLRewrite without urlRewrite"))?;
            if let Some(host) = spec.hostname.clone() {
                let host = precise_hostname(host)?;
                behaviour.rewrite_host = Some(
                    HeaderValue::from_str(&host)
                        .map_err(|_| unsupported(format!("hostname {host:?}")))?,
                );
            }
            behaviour.rewrite = spec
                .path
                .as_ref()
                .map(|p| modifier(p, matches))
                .transpose()?;
        }
        "CORS" => {
            let spec = filter
                .cors
                .as_ref()
                .ok_or_else(|| unsupported("CORS without cors"))?;
            let max_age = match spec.max_age {
                None => None,
                Some(age) => Some(
                    u32::try_from(age)
                        .ok()
                        .filter(|a| *a > 0)
                        .ok_or_else(|| unsupported(format!("cors.maxAge {age}")))?,
                ),
            };
            let cors = CorsFilter::new(&CorsSpec {
                allow_origins: spec.allow_origins.clone(),
                allow_credentials: spec.allow_credentials.unwrap_or(false),
                allow_methods: spec.allow_methods.clone(),
                allow_headers: spec.allow_headers.clone(),
                expose_headers: spec.expose_headers.clone(),
                max_age,
            })
            .map_err(|e| unsupported(e.to_string()))?;
            behaviour.cors = Some(cors);
        }
        "ExtensionRef" => {
            let reference = filter.extension_ref.as_ref().map_or_else(String::new, |r| {
                format!("{}.{} {}", r.kind, r.group, r.name)
            });
            behaviour.extension = Some(reference);
        }
        other => {
            return Err(unsupported(format!(
                "filter type {other:?} is not supported"
            )));
        }
    }
    Ok(())
}

/// A `path` modifier: `ReplacePrefixMatch` needs exactly one `PathPrefix`
/// match.
fn modifier(spec: &PathModifierSpec, matches: &[MatchSpec]) -> Result<ModifierSpec, RuleProblem> {
    match spec.type_.as_str() {
        "ReplaceFullPath" => {
            let path = spec
                .replace_full_path
                .clone()
                .ok_or_else(|| unsupported("ReplaceFullPath without replaceFullPath"))?;
            valid_path(&path)?;
            Ok(ModifierSpec::Full(path))
        }
        "ReplacePrefixMatch" => {
            let replacement = spec
                .replace_prefix_match
                .clone()
                .ok_or_else(|| unsupported("ReplacePrefixMatch without replacePrefixMatch"))?;
            if !(matches.len() == 1 && matches!(matches[0].path, PathSpec::Prefix(_))) {
                return Err(unsupported(
                    "ReplacePrefixMatch needs exactly one PathPrefix match",
                ));
            }
            if !replacement.is_empty() {
                valid_path(&replacement)?;
            }
            Ok(ModifierSpec::Prefix(replacement))
        }
        other => Err(unsupported(format!("path modifier type {other:?}"))),
    }
}

fn valid_path(path: &str) -> Result<(), RuleProblem> {
    if path.starts_with('/')
        && path.len() <= 1024
        && !path
            .bytes()
            .any(|b| b.is_ascii_control() || b == b' ' || b == b'?' || b == b'#')
    {
        Ok(())
    } else {
        Err(unsupported(format!("path {path:?} is not a valid path")))
    }
}

/// A `PreciseHostname`.
fn precise_hostname(host: String) -> Result<String, RuleProblem> {
    match gateway::host::HostPattern::parse(&host) {
        Ok(gateway::host::HostPattern::Exact(name)) => Ok(name.into()),
        _ => Err(unsupported(format!(
            "hostname {host:?} is not a precise hostname"
        ))),
    }
}

/// Header modifier edits.
pub(crate) fn edits(spec: Option<&HeaderFilter>) -> Result<HeaderEdits, RuleProblem> {
    let spec = spec.ok_or_else(|| unsupported("a header modifier filter without its field"))?;
    if spec.set.len() > MAX_VALUES || spec.add.len() > MAX_VALUES || spec.remove.len() > MAX_VALUES
    {
        return Err(unsupported(format!("more than {MAX_VALUES} header edits")));
    }
    HeaderEdits::new(
        spec.set.iter().map(|h| (h.name.as_str(), h.value.as_str())),
        spec.add.iter().map(|h| (h.name.as_str(), h.value.as_str())),
        spec.remove.iter().map(String::as_str),
    )
    .map_err(|e| unsupported(e.to_string()))
}

/// A backendRef with its weight, resolved.
pub(crate) fn backend_spec(
    snapshot: &Snapshot,
    kind: &str,
    namespace: &str,
    reference: &BackendRef,
) -> Result<BackendSpec, RuleProblem> {
    let weight = match reference.weight {
        None => 1,
        Some(w) => u32::try_from(w)
            .ok()
            .filter(|w| *w <= 1_000_000)
            .ok_or_else(|| unsupported(format!("backendRef weight {w}")))?,
    };
    Ok(BackendSpec {
        weight,
        target: refs::backend(snapshot, kind, namespace, reference),
        request_headers: None,
        response_headers: None,
    })
}

/// `sessionPersistence` as the backend's session cookie: `Cookie` type,
/// the endpoint named in the cookie (sticky while it is ready); a
/// `Permanent` cookie lives `absoluteTimeout`.
pub(crate) fn session_cookie(spec: &SessionPersistence) -> Result<SessionCookie, RuleProblem> {
    if spec.type_.as_deref().unwrap_or("Cookie") != "Cookie" {
        return Err(unsupported(format!(
            "sessionPersistence type {:?} is not supported (Cookie is)",
            spec.type_.as_deref().unwrap_or("")
        )));
    }
    if spec.idle_timeout.is_some() {
        return Err(unsupported(
            "sessionPersistence.idleTimeout is not supported",
        ));
    }
    let lifetime = spec
        .cookie_config
        .as_ref()
        .and_then(|c| c.lifetime_type.as_deref())
        .unwrap_or("Session");
    let absolute = spec
        .absolute_timeout
        .as_deref()
        .map(parse_duration)
        .transpose()?;
    let max_age = match (lifetime, absolute) {
        ("Permanent", Some(timeout)) => Some(timeout.as_secs()),
        ("Permanent", None) => {
            return Err(unsupported(
                "a Permanent session cookie needs absoluteTimeout",
            ));
        }
        ("Session", None) => None,
        ("Session", Some(_)) => {
            return Err(unsupported(
                "absoluteTimeout on a Session cookie is not supported (the gateway keeps no session state)",
            ));
        }
        (other, _) => return Err(unsupported(format!("cookie lifetimeType {other:?}"))),
    };
    let name = spec
        .session_name
        .clone()
        .unwrap_or_else(|| SESSION_COOKIE.to_owned());
    let valid_name = !name.is_empty()
        && name.len() <= 128
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
    if !valid_name {
        return Err(unsupported(format!(
            "sessionName {name:?} is not a cookie name"
        )));
    }
    Ok(SessionCookie {
        name: name.into(),
        mode: AffinityMode::Persistent,
        path: Some("/".into()),
        max_age,
        ..SessionCookie::default()
    })
}

/// A Gateway API duration (GEP-2257): one to four `<1-5 digits><h|m|s|ms>`.
pub(crate) fn parse_duration(value: &str) -> Result<Duration, RuleProblem> {
    let bad = || {
        unsupported(format!(
            "{value:?} is not a Gateway API duration (such as 10s or 1m30s)"
        ))
    };
    let mut rest = value;
    let mut total = Duration::ZERO;
    let mut parts = 0;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 || digits > 5 {
            return Err(bad());
        }
        let number: u64 = rest[..digits].parse().map_err(|_| bad())?;
        rest = &rest[digits..];
        let (unit, len) = if rest.starts_with("ms") {
            (Duration::from_millis(number), 2)
        } else if rest.starts_with('h') {
            (Duration::from_secs(number * 3600), 1)
        } else if rest.starts_with('m') {
            (Duration::from_secs(number * 60), 1)
        } else if rest.starts_with('s') {
            (Duration::from_secs(number), 1)
        } else {
            return Err(bad());
        };
        rest = &rest[len..];
        total += unit;
        parts += 1;
    }
    if parts == 0 || parts > 4 {
        return Err(bad());
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gateway_durations() {
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(
            parse_duration("1h2m3s4ms"),
            Ok(Duration::from_millis(3_723_004))
        );
        assert_eq!(parse_duration("0s"), Ok(Duration::ZERO));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        for bad in ["", "s", "10", "1.5s", "123456s", "1s1s1s1s1s", "10d", "-1s"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn session_cookies() {
        let spec = |type_: Option<&str>, lifetime: Option<&str>, timeout: Option<&str>| {
            SessionPersistence {
                session_name: Some("s".into()),
                absolute_timeout: timeout.map(str::to_owned),
                type_: type_.map(str::to_owned),
                cookie_config: lifetime.map(|l| super::super::types::CookieConfig {
                    lifetime_type: Some(l.to_owned()),
                }),
                ..SessionPersistence::default()
            }
        };
        let cookie = session_cookie(&spec(None, None, None)).unwrap();
        assert_eq!(&*cookie.name, "s");
        assert_eq!(cookie.max_age, None);
        let permanent =
            session_cookie(&spec(Some("Cookie"), Some("Permanent"), Some("1h"))).unwrap();
        assert_eq!(permanent.max_age, Some(3600));
        assert!(session_cookie(&spec(Some("Header"), None, None)).is_err());
        assert!(session_cookie(&spec(None, Some("Permanent"), None)).is_err());
        assert!(session_cookie(&spec(None, Some("Session"), Some("1h"))).is_err());
    }

    #[test]
    fn matches_validate_paths_methods_and_types() {
        let m = |json: serde_json::Value| {
            http_match(&serde_json::from_value::<HTTPRouteMatch>(json).unwrap())
        };
        let ok = m(
            serde_json::json!({"path": {"type": "Exact", "value": "/a"}, "method": "POST",
            "headers": [{"name": "X", "value": "1"}, {"name": "x", "value": "2"}]}),
        )
        .unwrap();
        assert_eq!(ok.path, PathSpec::Exact("/a".into()));
        assert_eq!(
            ok.weight(),
            (true, 1, 0),
            "the second equivalent header name is ignored"
        );
        assert_eq!(
            m(serde_json::json!({})).unwrap().path,
            PathSpec::Prefix("/".into())
        );
        for bad in [
            serde_json::json!({"path": {"type": "Glob", "value": "/a"}}),
            serde_json::json!({"path": {"type": "RegularExpression", "value": "("}}),
            serde_json::json!({"path": {"type": "Exact", "value": "a"}}),
            serde_json::json!({"method": "FETCH"}),
            serde_json::json!({"headers": [{"type": "Prefix", "name": "x", "value": "1"}]}),
        ] {
            let problem = m(bad.clone()).unwrap_err();
            assert_eq!(problem.reason, names::UNSUPPORTED_VALUE, "{bad}");
        }
    }
}
