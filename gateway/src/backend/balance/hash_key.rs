//! `upstream-hash-by`: the key a request is hashed on, an nginx complex
//! value such as `$request_uri`, `$http_x_user_id` or `tenant-$arg_t`.
//!
//! The value is parsed once, when the table is compiled, into literal text
//! and typed variables ([`HashKey`]); a request's key is never built as text
//! to be interpreted: each piece is fed straight into the hash. Variables:
//! `$request_uri` (the client's path and query, before any rewrite),
//! `$remote_addr`, `$host` (lowercase, without port), `$http_<name>`,
//! `$cookie_<name>` and `$arg_<name>`; `${name}` may be written to end a
//! variable inside text.

use std::fmt;
use std::net::IpAddr;

use http::header::{COOKIE, HOST};
use http::{HeaderMap, HeaderName, Uri};

use super::ring::StableHash;

/// Longest `upstream-hash-by` value accepted.
const MAX_LEN: usize = 1024;

/// A parsed `upstream-hash-by` value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HashKey {
    parts: Box<[Part]>,
    /// `upstream-hash-by-subset-size`, with `upstream-hash-by-subset`.
    subset: Option<usize>,
}

/// One piece of a key.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Part {
    Text(Box<[u8]>),
    RequestUri,
    RemoteAddr,
    Host,
    Header(HeaderName),
    Cookie(Box<[u8]>),
    Arg(Box<[u8]>),
}

/// Why an `upstream-hash-by` value was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum HashKeyError {
    /// Nothing to hash on.
    #[error("is empty")]
    Empty,
    /// Longer than the limit.
    #[error("is longer than {MAX_LEN} bytes")]
    TooLong,
    /// A control character.
    #[error("contains a control character")]
    Control,
    /// `$` not followed by a variable name, or `${` without `}`.
    #[error("has a `$` without a variable name")]
    Dangling,
    /// A variable this gateway does not provide.
    #[error(
        "uses ${0}, which is not supported (supported: $request_uri, $remote_addr, $host, $http_<name>, $cookie_<name>, $arg_<name>)"
    )]
    Unsupported(String),
}

/// What a key's variables read from a request.
#[derive(Clone, Copy, Debug)]
pub(crate) struct RequestVars<'a> {
    /// The request target as the client sent it.
    pub uri: &'a Uri,
    /// The request headers as the client sent them.
    pub headers: &'a HeaderMap,
    /// The client's address.
    pub remote: IpAddr,
}

impl HashKey {
    /// Parses an nginx complex value of text and variables.
    pub fn parse(value: &str) -> Result<Self, HashKeyError> {
        if value.is_empty() {
            return Err(HashKeyError::Empty);
        }
        if value.len() > MAX_LEN {
            return Err(HashKeyError::TooLong);
        }
        if value.bytes().any(|b| b.is_ascii_control()) {
            return Err(HashKeyError::Control);
        }
        let mut parts = Vec::new();
        let mut rest = value;
        while !rest.is_empty() {
            let Some(dollar) = rest.find('$') else {
                parts.push(Part::Text(rest.as_bytes().into()));
                break;
            };
            if dollar > 0 {
                parts.push(Part::Text(rest.as_bytes()[..dollar].into()));
            }
            let after = &rest[dollar + 1..];
            let (name, next) = match after.strip_prefix('{') {
                Some(braced) => {
                    let end = braced.find('}').ok_or(HashKeyError::Dangling)?;
                    (&braced[..end], &braced[end + 1..])
                }
                None => {
                    let end = after
                        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                        .unwrap_or(after.len());
                    (&after[..end], &after[end..])
                }
            };
            if name.is_empty() {
                return Err(HashKeyError::Dangling);
            }
            parts.push(variable(name)?);
            rest = next;
        }
        Ok(Self {
            parts: parts.into_boxed_slice(),
            subset: None,
        })
    }

    /// `upstream-hash-by-subset`: keys map to subsets of `size` endpoints
    /// (see [`super::subset`]).
    pub fn with_subsets(mut self, size: usize) -> Self {
        self.subset = Some(size.max(1));
        self
    }

    /// The subset size, when the key maps to subsets.
    pub fn subset_size(&self) -> Option<usize> {
        self.subset
    }

    /// The hash of this key's value for a request: the same as hashing the
    /// text nginx would build, without building it.
    pub(crate) fn hash(&self, vars: &RequestVars<'_>) -> u64 {
        let mut hash = StableHash::default();
        for part in &*self.parts {
            match part {
                Part::Text(text) => hash.write(text),
                Part::RequestUri => hash.write(
                    vars.uri
                        .path_and_query()
                        .map_or(b"/".as_slice(), |pq| pq.as_str().as_bytes()),
                ),
                Part::RemoteAddr => hash.write(vars.remote.to_canonical().to_string().as_bytes()),
                Part::Host => write_host(&mut hash, vars),
                Part::Header(name) => {
                    for (i, value) in vars.headers.get_all(name).iter().enumerate() {
                        if i > 0 {
                            hash.write(b", ");
                        }
                        hash.write(value.as_bytes());
                    }
                }
                Part::Cookie(name) => {
                    if let Some(value) = vars
                        .headers
                        .get_all(COOKIE)
                        .iter()
                        .find_map(|line| crate::cookies::cookie_value(line.as_bytes(), name))
                    {
                        hash.write(value);
                    }
                }
                Part::Arg(name) => {
                    if let Some(value) = vars.uri.query().and_then(|q| arg(q.as_bytes(), name)) {
                        hash.write(value);
                    }
                }
            }
        }
        hash.finish()
    }
}

impl fmt::Display for HashKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for part in &*self.parts {
            match part {
                Part::Text(text) => f.write_str(&String::from_utf8_lossy(text))?,
                Part::RequestUri => f.write_str("$request_uri")?,
                Part::RemoteAddr => f.write_str("$remote_addr")?,
                Part::Host => f.write_str("$host")?,
                Part::Header(name) => write!(f, "$http_{}", name.as_str().replace('-', "_"))?,
                Part::Cookie(name) => write!(f, "$cookie_{}", String::from_utf8_lossy(name))?,
                Part::Arg(name) => write!(f, "$arg_{}", String::from_utf8_lossy(name))?,
            }
        }
        Ok(())
    }
}

fn variable(name: &str) -> Result<Part, HashKeyError> {
    let unsupported = || HashKeyError::Unsupported(name.to_owned());
    let valid = !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
    if !valid {
        return Err(unsupported());
    }
    let part = match name {
        "request_uri" => Part::RequestUri,
        "remote_addr" => Part::RemoteAddr,
        "host" => Part::Host,
        _ => {
            if let Some(header) = name.strip_prefix("http_").filter(|h| !h.is_empty()) {
                let header = header.replace('_', "-").to_ascii_lowercase();
                Part::Header(HeaderName::from_bytes(header.as_bytes()).map_err(|_| unsupported())?)
            } else if let Some(cookie) = name.strip_prefix("cookie_").filter(|c| !c.is_empty()) {
                Part::Cookie(cookie.as_bytes().into())
            } else if let Some(arg) = name.strip_prefix("arg_").filter(|a| !a.is_empty()) {
                Part::Arg(arg.as_bytes().into())
            } else {
                return Err(unsupported());
            }
        }
    };
    Ok(part)
}

/// nginx's `$host`: the Host header (or the target's authority), without
/// port, lowercase.
fn write_host(hash: &mut StableHash, vars: &RequestVars<'_>) {
    let host = vars
        .uri
        .host()
        .map(str::as_bytes)
        .or_else(|| vars.headers.get(HOST).map(|h| h.as_bytes()))
        .unwrap_or_default();
    let host = match host.first() {
        // An IPv6 literal keeps its brackets, nginx drops the port only.
        Some(b'[') => host
            .iter()
            .position(|b| *b == b']')
            .map_or(host, |end| &host[..=end]),
        _ => host
            .iter()
            .position(|b| *b == b':')
            .map_or(host, |colon| &host[..colon]),
    };
    for byte in host {
        hash.write(&[byte.to_ascii_lowercase()]);
    }
}

/// nginx's `$arg_<name>`: the raw value of the first argument of that
/// name (compared case-insensitively).
pub(crate) fn arg<'q>(query: &'q [u8], name: &[u8]) -> Option<&'q [u8]> {
    query.split(|b| *b == b'&').find_map(|pair| {
        let (key, value) = match pair.iter().position(|b| *b == b'=') {
            Some(eq) => (&pair[..eq], &pair[eq + 1..]),
            None => (pair, &pair[pair.len()..]),
        };
        key.eq_ignore_ascii_case(name).then_some(value)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn hash_of(key: &str, uri: &str, headers: &[(&'static str, &'static str)]) -> u64 {
        let key = HashKey::parse(key).unwrap();
        let uri: Uri = uri.parse().unwrap();
        let mut map = HeaderMap::new();
        for (k, v) in headers {
            map.append(*k, HeaderValue::from_static(v));
        }
        key.hash(&RequestVars {
            uri: &uri,
            headers: &map,
            remote: IpAddr::from([10, 1, 2, 3]),
        })
    }

    #[test]
    fn parses_text_and_variables() {
        for ok in [
            "$request_uri",
            "$remote_addr",
            "$host",
            "$http_x_user_id",
            "$cookie_session",
            "$arg_tenant",
            "t-${arg_t}-x",
            "$host$request_uri",
            "fixed",
        ] {
            let key = HashKey::parse(ok).unwrap();
            assert_eq!(HashKey::parse(&key.to_string()).unwrap(), key, "{ok}");
        }
        assert_eq!(
            HashKey::parse("$http_X_User").unwrap().to_string(),
            "$http_x_user"
        );
    }

    #[test]
    fn refuses_what_it_cannot_evaluate() {
        assert_eq!(HashKey::parse(""), Err(HashKeyError::Empty));
        assert_eq!(HashKey::parse("a$"), Err(HashKeyError::Dangling));
        assert_eq!(HashKey::parse("${arg_a"), Err(HashKeyError::Dangling));
        assert_eq!(HashKey::parse("$-x"), Err(HashKeyError::Dangling));
        assert_eq!(HashKey::parse("a\nb"), Err(HashKeyError::Control));
        assert_eq!(
            HashKey::parse(&"a".repeat(1025)),
            Err(HashKeyError::TooLong)
        );
        assert!(HashKey::parse(&"a".repeat(1024)).is_ok());
        for bad in [
            "$uri",
            "$http_",
            "$cookie_",
            "$arg_",
            "${a b}",
            "$binary_remote_addr",
        ] {
            assert!(
                matches!(HashKey::parse(bad), Err(HashKeyError::Unsupported(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn hashes_what_nginx_would_build() {
        let whole = StableHash::of(b"t-7-/a?t=7");
        assert_eq!(hash_of("t-$arg_t-$request_uri", "/a?t=7", &[]), whole);
        assert_eq!(
            hash_of("$remote_addr", "/", &[]),
            StableHash::of(b"10.1.2.3")
        );
        assert_eq!(
            hash_of("$host", "/", &[("host", "Models.Example:8080")]),
            StableHash::of(b"models.example")
        );
        assert_eq!(
            hash_of("$http_x_user", "/", &[("x-user", "a"), ("x-user", "b")]),
            StableHash::of(b"a, b")
        );
        assert_eq!(
            hash_of("$cookie_sid", "/", &[("cookie", "x=1; SID=abc")]),
            StableHash::of(b"abc")
        );
        assert_eq!(
            hash_of("$arg_T", "/p?a=1&t=9&t=10", &[]),
            StableHash::of(b"9")
        );
        // A missing variable is empty, as in nginx.
        assert_eq!(hash_of("k$http_x_none", "/", &[]), StableHash::of(b"k"));
    }
}
