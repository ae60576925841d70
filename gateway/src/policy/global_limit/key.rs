//! `global-rate-limit-key`: literal text and nginx variables
//! (`$remote_addr`, `$http_x_api_key`, `${cookie_user}`, ...), compiled
//! once, read from the request when it is admitted.

use http::HeaderName;
use http::header::COOKIE;

use crate::policy::external_auth::AuthRequest;

/// One part of a key.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Part {
    Text(Box<str>),
    RemoteAddr,
    Host,
    Scheme,
    Method,
    Uri,
    RequestUri,
    Header(HeaderName),
    Cookie(Box<str>),
    Arg(Box<str>),
}

/// A compiled key template.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyTemplate {
    parts: Vec<Part>,
}

impl Default for KeyTemplate {
    /// `$remote_addr`, ingress-nginx's default.
    fn default() -> Self {
        Self {
            parts: vec![Part::RemoteAddr],
        }
    }
}

impl KeyTemplate {
    /// Compiles `template`; an unknown variable is refused by name.
    pub fn parse(template: &str) -> Result<Self, String> {
        let mut parts = Vec::new();
        let mut rest = template;
        while let Some(at) = rest.find('$') {
            if at > 0 {
                parts.push(Part::Text(rest[..at].into()));
            }
            let after = &rest[at + 1..];
            let (name, next) = match after.strip_prefix('{') {
                Some(braced) => match braced.find('}') {
                    Some(end) => (&braced[..end], &braced[end + 1..]),
                    None => return Err(format!("unclosed ${{ in {template:?}")),
                },
                None => {
                    let end = after
                        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                        .unwrap_or(after.len());
                    (&after[..end], &after[end..])
                }
            };
            parts.push(variable(name)?);
            rest = next;
        }
        if !rest.is_empty() {
            parts.push(Part::Text(rest.into()));
        }
        Ok(Self { parts })
    }

    /// The key's value for `request`; empty values read as nothing.
    pub(crate) fn render(&self, request: &AuthRequest<'_>) -> String {
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Text(text) => out.push_str(text),
                Part::RemoteAddr => out.push_str(&request.client_ip.to_string()),
                Part::Host => out.push_str(request.host),
                Part::Scheme => out.push_str(request.scheme),
                Part::Method => out.push_str(request.method.as_str()),
                Part::Uri => out.push_str(request.uri.path()),
                Part::RequestUri => {
                    out.push_str(request.uri.path_and_query().map_or("/", |pq| pq.as_str()));
                }
                Part::Header(name) => {
                    if let Some(value) = request.headers.get(name) {
                        out.push_str(&String::from_utf8_lossy(value.as_bytes()));
                    }
                }
                Part::Cookie(name) => {
                    if let Some(value) = cookie(request, name) {
                        out.push_str(value);
                    }
                }
                Part::Arg(name) => {
                    if let Some(value) = arg(request, name) {
                        out.push_str(value);
                    }
                }
            }
        }
        out
    }
}

fn variable(name: &str) -> Result<Part, String> {
    let header = |rest: &str| {
        HeaderName::from_bytes(rest.replace('_', "-").to_ascii_lowercase().as_bytes())
            .map_err(|_| format!("${name} is not a header variable"))
    };
    Ok(match name {
        "remote_addr" | "binary_remote_addr" => Part::RemoteAddr,
        "host" => Part::Host,
        "scheme" => Part::Scheme,
        "request_method" => Part::Method,
        "uri" | "document_uri" => Part::Uri,
        "request_uri" => Part::RequestUri,
        _ => {
            if let Some(rest) = name.strip_prefix("http_").filter(|r| !r.is_empty()) {
                Part::Header(header(rest)?)
            } else if let Some(rest) = name.strip_prefix("cookie_").filter(|r| !r.is_empty()) {
                Part::Cookie(rest.into())
            } else if let Some(rest) = name.strip_prefix("arg_").filter(|r| !r.is_empty()) {
                Part::Arg(rest.into())
            } else {
                return Err(format!(
                    "${name} is not a variable global-rate-limit-key can use here ($remote_addr, $host, $scheme, $request_method, $uri, $request_uri, $http_*, $cookie_*, $arg_*)"
                ));
            }
        }
    })
}

/// nginx's `$cookie_<name>`: the first cookie of that name.
fn cookie<'r>(request: &AuthRequest<'r>, name: &str) -> Option<&'r str> {
    request
        .headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(n, _)| *n == name)
        .map(|(_, v)| v)
}

/// nginx's `$arg_<name>`: the first query argument of that name, as sent.
fn arg<'r>(request: &AuthRequest<'r>, name: &str) -> Option<&'r str> {
    request
        .uri
        .query()?
        .split('&')
        .filter_map(|pair| pair.split_once('=').or(Some((pair, ""))))
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v)
}

#[cfg(test)]
mod tests {
    use std::net::{IpAddr, Ipv4Addr};

    use http::{HeaderMap, HeaderValue, Method, Uri};

    use super::*;

    #[test]
    fn variables_and_text_render_from_the_request() {
        let key = KeyTemplate::parse("$remote_addr-${http_x_api_key}:$cookie_u/$arg_t").unwrap();
        let mut headers = HeaderMap::new();
        headers.insert("x-api-key", HeaderValue::from_static("k1"));
        headers.insert(COOKIE, HeaderValue::from_static("a=1; u=alice"));
        let uri: Uri = "/p?x=1&t=tok".parse().unwrap();
        let request = AuthRequest {
            method: &Method::GET,
            scheme: "http",
            host: "h.test",
            uri: &uri,
            headers: &headers,
            client_ip: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)),
            forwarded_for: None,
            request_id: None,
            underscores: false,
        };
        assert_eq!(key.render(&request), "10.0.0.1-k1:alice/tok");
    }

    #[test]
    fn unknown_variables_are_refused_by_name() {
        let error = KeyTemplate::parse("$remote_addr$ssl_client_s_dn").unwrap_err();
        assert!(error.contains("$ssl_client_s_dn"), "{error}");
        assert!(KeyTemplate::parse("${host").is_err());
    }
}
