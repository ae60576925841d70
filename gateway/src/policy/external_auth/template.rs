//! nginx variable templates: the annotation values nginx interpolates
//! (`auth-url`, `auth-signin`, `auth-request-redirect`, `auth-cache-key`),
//! parsed once into literal text and a documented subset of nginx
//! variables, rendered per request; nothing is ever pasted into
//! configuration text.

use http::header::{COOKIE, HeaderName};
use percent_encoding::percent_encode;
use sha2::{Digest as _, Sha256};

use crate::policy::basic_auth::basic_credentials;

use super::*;

/// What is wrong with a [`Template`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    /// A variable this gateway does not provide.
    #[error(
        "unknown variable ${0} (supported: $http_<name>, $cookie_<name>, $arg_<name>, $remote_addr, $remote_user, $host, $http_host, $request_uri, $escaped_request_uri, $uri, $args, $scheme, $request_method, $request_id)"
    )]
    UnknownVariable(String),
    /// A `$` without a variable name after it.
    #[error("'$' at byte {0} is not followed by a variable name")]
    StrayDollar(usize),
    /// `${` without its `}`.
    #[error("'${{' at byte {0} is not closed")]
    Unclosed(usize),
    /// White space or a control character, which no URL or header may hold.
    #[error("white space or control character at byte {0}")]
    Control(usize),
}

/// A string with nginx variables (`$name` or `${name}`), filled in per
/// request. The supported variables: `$http_<name>` (a request header,
/// `_` for `-`), `$cookie_<name>`, `$arg_<name>` (a query parameter),
/// `$remote_addr`, `$remote_user` (the Basic user), `$host`, `$http_host`,
/// `$request_uri`, `$escaped_request_uri`, `$uri` (the path), `$args`,
/// `$scheme` (also as `$pass_access_scheme`), `$request_method` and
/// `$request_id`; any other is an error when parsed, never at run time.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Template {
    pub(super) source: String,
    pub(super) parts: Vec<Part>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Part {
    Text(String),
    Var(Var),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Var {
    Header(HeaderName),
    Cookie(String),
    Arg(String),
    RemoteAddr,
    RemoteUser,
    Host,
    HttpHost,
    RequestUri,
    EscapedRequestUri,
    Path,
    Args,
    Scheme,
    Method,
    RequestId,
}

impl Var {
    pub(super) fn from_name(name: &str) -> Option<Var> {
        let var = match name {
            "remote_addr" | "the_real_ip" => Var::RemoteAddr,
            "remote_user" => Var::RemoteUser,
            "host" => Var::Host,
            "http_host" | "best_http_host" => Var::HttpHost,
            "request_uri" => Var::RequestUri,
            "escaped_request_uri" => Var::EscapedRequestUri,
            "uri" | "document_uri" => Var::Path,
            "args" | "query_string" => Var::Args,
            "scheme" | "pass_access_scheme" => Var::Scheme,
            "request_method" => Var::Method,
            "request_id" | "req_id" => Var::RequestId,
            _ => {
                if let Some(header) = name.strip_prefix("http_") {
                    let header = header.replace('_', "-");
                    return HeaderName::from_bytes(header.as_bytes())
                        .ok()
                        .map(Var::Header);
                }
                if let Some(cookie) = name.strip_prefix("cookie_").filter(|c| !c.is_empty()) {
                    return Some(Var::Cookie(cookie.to_owned()));
                }
                if let Some(arg) = name.strip_prefix("arg_").filter(|a| !a.is_empty()) {
                    return Some(Var::Arg(arg.to_owned()));
                }
                return None;
            }
        };
        Some(var)
    }

    /// Appends the variable's value for `request` (empty when it has none).
    pub(super) fn render(&self, request: &AuthRequest<'_>, out: &mut Vec<u8>) {
        match self {
            Var::Header(name) => {
                let separator: &[u8] = if *name == COOKIE { b"; " } else { b", " };
                for (index, value) in request.headers.get_all(name).iter().enumerate() {
                    if index > 0 {
                        out.extend_from_slice(separator);
                    }
                    out.extend_from_slice(value.as_bytes());
                }
            }
            Var::Cookie(wanted) => {
                let found = request
                    .headers
                    .get_all(COOKIE)
                    .iter()
                    .flat_map(|value| value.as_bytes().split(|b| *b == b';'))
                    .filter_map(|pair| {
                        let pair = pair.trim_ascii();
                        let at = pair.iter().position(|b| *b == b'=')?;
                        Some((&pair[..at], &pair[at + 1..]))
                    })
                    .find(|(name, _)| name.eq_ignore_ascii_case(wanted.as_bytes()));
                if let Some((_, value)) = found {
                    out.extend_from_slice(value);
                }
            }
            Var::Arg(wanted) => {
                let query = request.uri.query().unwrap_or_default();
                let found = query
                    .split('&')
                    .filter_map(|pair| pair.split_once('='))
                    .find(|(name, _)| name.eq_ignore_ascii_case(wanted));
                if let Some((_, value)) = found {
                    out.extend_from_slice(value.as_bytes());
                }
            }
            Var::RemoteAddr => {
                out.extend_from_slice(request.client_ip.to_canonical().to_string().as_bytes());
            }
            Var::RemoteUser => {
                if let Some((user, _)) = basic_credentials(request.headers) {
                    out.extend_from_slice(user.as_bytes());
                }
            }
            Var::Host => out.extend_from_slice(request.host.as_bytes()),
            Var::HttpHost => out.extend_from_slice(request.http_host()),
            Var::RequestUri => out.extend_from_slice(request.request_uri().as_bytes()),
            Var::EscapedRequestUri => {
                let escaped = percent_encode(request.request_uri().as_bytes(), URI_COMPONENT);
                for chunk in escaped {
                    out.extend_from_slice(chunk.as_bytes());
                }
            }
            Var::Path => out.extend_from_slice(request.uri.path().as_bytes()),
            Var::Args => out.extend_from_slice(request.uri.query().unwrap_or_default().as_bytes()),
            Var::Scheme => out.extend_from_slice(request.scheme.as_bytes()),
            Var::Method => out.extend_from_slice(request.method.as_str().as_bytes()),
            Var::RequestId => {
                if let Some(id) = request.request_id {
                    out.extend_from_slice(id.as_bytes());
                }
            }
        }
    }
}

impl Template {
    /// Parses `source`; `$name` takes the longest run of letters, digits and
    /// `_`, as nginx does, and `${name}` delimits a name explicitly.
    pub fn parse(source: &str) -> Result<Template, TemplateError> {
        let bytes = source.as_bytes();
        let mut parts = Vec::new();
        let mut text_start = 0;
        let mut at = 0;
        while at < bytes.len() {
            if bytes[at] != b'$' {
                at += 1;
                continue;
            }
            if at > text_start {
                parts.push(Part::Text(source[text_start..at].to_owned()));
            }
            let (name, end) = if bytes.get(at + 1) == Some(&b'{') {
                let close = source[at + 2..]
                    .find('}')
                    .ok_or(TemplateError::Unclosed(at))?;
                (&source[at + 2..at + 2 + close], at + 3 + close)
            } else {
                let len = bytes[at + 1..]
                    .iter()
                    .take_while(|b| b.is_ascii_alphanumeric() || **b == b'_')
                    .count();
                (&source[at + 1..at + 1 + len], at + 1 + len)
            };
            if name.is_empty() {
                return Err(TemplateError::StrayDollar(at));
            }
            let var = Var::from_name(name)
                .ok_or_else(|| TemplateError::UnknownVariable(name.to_owned()))?;
            parts.push(Part::Var(var));
            at = end;
            text_start = end;
        }
        if text_start < bytes.len() {
            parts.push(Part::Text(source[text_start..].to_owned()));
        }
        Ok(Template {
            source: source.to_owned(),
            parts,
        })
    }

    /// The template as written.
    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// Whether the template has variables (is not a constant).
    pub fn has_variables(&self) -> bool {
        self.parts.iter().any(|part| matches!(part, Part::Var(_)))
    }

    /// The template filled in for `request`.
    pub(super) fn render(&self, request: &AuthRequest<'_>) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.source.len() + 64);
        for part in &self.parts {
            match part {
                Part::Text(text) => out.extend_from_slice(text.as_bytes()),
                Part::Var(var) => var.render(request, &mut out),
            }
        }
        out
    }

    /// A digest of the filled-in template in which every part is
    /// length-prefixed, so that no two different sets of values can share
    /// a key by concatenating the same way (`$http_a$http_b` with `ab`,`c`
    /// and `a`,`bc`).
    pub(super) fn digest(&self, request: &AuthRequest<'_>) -> [u8; 32] {
        let mut hasher = Sha256::new();
        let mut value = Vec::new();
        for part in &self.parts {
            value.clear();
            match part {
                Part::Text(text) => value.extend_from_slice(text.as_bytes()),
                Part::Var(var) => var.render(request, &mut value),
            }
            hasher.update((value.len() as u64).to_le_bytes());
            hasher.update(&value);
        }
        hasher.finalize().into()
    }

    /// Refuses white space and control characters outside the variables.
    pub(super) fn check_no_controls(&self) -> Result<(), TemplateError> {
        match self
            .source
            .bytes()
            .position(|b| b.is_ascii_whitespace() || b.is_ascii_control())
        {
            Some(at) => Err(TemplateError::Control(at)),
            None => Ok(()),
        }
    }
}
