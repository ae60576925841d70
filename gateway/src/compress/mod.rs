//! Response compression, as ingress-nginx configures nginx's gzip module
//! (`use-gzip`, `gzip-level`, `gzip-min-length`, `gzip-types`,
//! `gzip-disable`; `gzip_proxied any`, `gzip_vary on`) and ngx_brotli
//! (`enable-brotli`, `brotli-level`, `brotli-min-length`, `brotli-types`).
//!
//! A response is eligible, as in both modules, when its status is 200, 403
//! or 404, it has no `Content-Encoding`, its `Content-Length` (if known) is
//! at least the minimum, its type is listed (`text/html` always is), and
//! the request was not a HEAD. An eligible response gets `Vary:
//! Accept-Encoding` whether or not it is then compressed. The coding is the
//! one of `br` and `gzip` the client weighs more (`Accept-Encoding`
//! q-values; brotli on a tie, as ngx_brotli runs first); gzip also needs an
//! HTTP/1.1 request (`gzip_http_version 1.1`) and a `User-Agent` that
//! `gzip-disable` does not name. Compressing removes `Content-Length` and
//! `Accept-Ranges` and weakens a strong `ETag`, as nginx does; a range
//! (206) response is never compressed. The body is encoded frame by frame
//! and each frame flushed ([`encoder`]), so streams stay streams.

mod encoder;
mod negotiate;

use std::sync::Arc;

use http::header::{
    ACCEPT_ENCODING, ACCEPT_RANGES, CONTENT_ENCODING, CONTENT_LENGTH, CONTENT_TYPE, ETAG,
    HeaderMap, HeaderValue, USER_AGENT, VARY,
};
use http::{Method, Response, StatusCode, Version};

pub(crate) use encoder::Encoder;

/// A content coding the gateway produces.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Coding {
    /// `gzip`.
    Gzip,
    /// `br`.
    Brotli,
}

impl Coding {
    fn header(self) -> HeaderValue {
        HeaderValue::from_static(match self {
            Self::Gzip => "gzip",
            Self::Brotli => "br",
        })
    }
}

/// One coding's settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Codec {
    /// `gzip-level` (1) / `brotli-level` (4).
    pub level: u32,
    /// `gzip-min-length` (256) / `brotli-min-length` (20): smaller
    /// responses of known length go uncompressed.
    pub min_length: u64,
    /// `gzip-types` / `brotli-types`.
    pub types: MimeTypes,
}

/// A list of MIME types (`*`: any), `text/html` always included.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MimeTypes {
    any: bool,
    types: Box<[Box<str>]>,
}

impl Default for MimeTypes {
    /// `text/html` alone.
    fn default() -> Self {
        Self {
            any: false,
            types: Box::new(["text/html".into()]),
        }
    }
}

impl MimeTypes {
    /// The space-separated list of an nginx `*_types` directive.
    pub fn parse(list: &str) -> Result<Self, String> {
        let mut types: Vec<Box<str>> = vec!["text/html".into()];
        let mut any = false;
        for item in list.split_ascii_whitespace() {
            if item == "*" {
                any = true;
                continue;
            }
            let valid = item.len() <= 127
                && item.split_once('/').is_some_and(|(a, b)| {
                    !a.is_empty()
                        && !b.is_empty()
                        && item
                            .bytes()
                            .all(|c| c.is_ascii_alphanumeric() || b"/+-.*_".contains(&c))
                });
            if !valid {
                return Err(format!("{item:?} is not a MIME type"));
            }
            types.push(item.to_ascii_lowercase().into());
        }
        types.dedup();
        Ok(Self {
            any,
            types: types.into_boxed_slice(),
        })
    }

    /// Whether a `Content-Type` value is listed.
    fn contains(&self, content_type: Option<&HeaderValue>) -> bool {
        if self.any {
            return true;
        }
        let Some(essence) = content_type
            .and_then(|v| v.to_str().ok())
            .map(|v| v.split(';').next().unwrap_or("").trim())
        else {
            return false;
        };
        self.types.iter().any(|t| t.eq_ignore_ascii_case(essence))
    }
}

/// `gzip-disable`: `User-Agent` patterns (case-insensitive regexes, as
/// nginx's `gzip_disable`) whose requests are not gzipped.
#[derive(Clone, Debug)]
pub struct UserAgents {
    source: Box<str>,
    patterns: Arc<[regex::Regex]>,
}

impl PartialEq for UserAgents {
    fn eq(&self, other: &Self) -> bool {
        self.source == other.source
    }
}

impl Eq for UserAgents {}

impl UserAgents {
    /// The space-separated patterns of `gzip-disable` (`msie6` is nginx's
    /// name for MSIE 4-6).
    pub fn parse(list: &str) -> Result<Self, String> {
        let patterns = list
            .split_ascii_whitespace()
            .map(|p| {
                let p = if p == "msie6" { r"MSIE [4-6]\." } else { p };
                regex::RegexBuilder::new(p)
                    .case_insensitive(true)
                    .size_limit(1 << 20)
                    .build()
                    .map_err(|e| format!("{p:?}: {e}"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            source: list.into(),
            patterns: patterns.into(),
        })
    }

    fn matches(&self, user_agent: Option<&HeaderValue>) -> bool {
        let Some(agent) = user_agent.and_then(|v| v.to_str().ok()) else {
            return false;
        };
        self.patterns.iter().any(|p| p.is_match(agent))
    }
}

/// The gateway's compression settings (the controller ConfigMap's).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Compression {
    /// `use-gzip` and its settings; `None`: off.
    pub gzip: Option<Codec>,
    /// `enable-brotli` and its settings; `None`: off.
    pub brotli: Option<Codec>,
    /// `gzip-disable`.
    pub gzip_disable: Option<UserAgents>,
}

/// What compression needs of a request, read before the request is taken
/// apart (only when compression is on).
#[derive(Debug)]
pub(crate) struct Asked {
    accept: negotiate::Accepted,
    head: bool,
    http10: bool,
    user_agent: Option<HeaderValue>,
}

impl Compression {
    /// Whether any coding is on.
    pub fn is_on(&self) -> bool {
        self.gzip.is_some() || self.brotli.is_some()
    }

    /// Reads what the request says about compression.
    pub(crate) fn asked(method: &Method, version: Version, headers: &HeaderMap) -> Asked {
        Asked {
            accept: negotiate::accepted(headers.get_all(ACCEPT_ENCODING).iter()),
            head: method == Method::HEAD,
            http10: version <= Version::HTTP_10,
            user_agent: headers.get(USER_AGENT).cloned(),
        }
    }

    /// Prepares `response`'s head for compression if it is eligible and the
    /// client takes a coding, and returns the encoder its body must go
    /// through; marks it `Vary: Accept-Encoding` if eligible.
    pub(crate) fn apply<B>(&self, asked: &Asked, response: &mut Response<B>) -> Option<Encoder> {
        if asked.head
            || !matches!(
                response.status(),
                StatusCode::OK | StatusCode::FORBIDDEN | StatusCode::NOT_FOUND
            )
        {
            return None;
        }
        let headers = response.headers();
        if headers.get(CONTENT_ENCODING).is_some_and(|v| !v.is_empty()) {
            return None;
        }
        let length = headers
            .get(CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        let content_type = headers.get(CONTENT_TYPE);
        let brotli = eligible(self.brotli.as_ref(), content_type, length);
        let gzip = eligible(self.gzip.as_ref(), content_type, length);
        if brotli.is_none() && gzip.is_none() {
            return None;
        }
        add_vary(response.headers_mut());
        let brotli = brotli.filter(|_| asked.accept.br > 0);
        let gzip = gzip.filter(|_| {
            asked.accept.gzip > 0
                && !asked.http10
                && !self
                    .gzip_disable
                    .as_ref()
                    .is_some_and(|d| d.matches(asked.user_agent.as_ref()))
        });
        let (coding, codec) = match (brotli, gzip) {
            (Some(_), Some(g)) if asked.accept.gzip > asked.accept.br => (Coding::Gzip, g),
            (Some(b), _) => (Coding::Brotli, b),
            (None, Some(g)) => (Coding::Gzip, g),
            (None, None) => return None,
        };
        let headers = response.headers_mut();
        headers.insert(CONTENT_ENCODING, coding.header());
        headers.remove(CONTENT_LENGTH);
        headers.remove(ACCEPT_RANGES);
        if let Some(etag) = headers.get(ETAG)
            && !etag.as_bytes().starts_with(b"W/")
            && let Ok(weak) = HeaderValue::from_bytes(&[b"W/", etag.as_bytes()].concat())
        {
            headers.insert(ETAG, weak);
        }
        Some(Encoder::new(coding, codec.level))
    }
}

/// The codec, if a response of this type and length is eligible for it.
fn eligible<'c>(
    codec: Option<&'c Codec>,
    content_type: Option<&HeaderValue>,
    length: Option<u64>,
) -> Option<&'c Codec> {
    codec.filter(|c| c.types.contains(content_type) && length.is_none_or(|l| l >= c.min_length))
}

/// Adds `Accept-Encoding` to `Vary` unless it is there.
fn add_vary(headers: &mut HeaderMap) {
    let present = headers.get_all(VARY).iter().any(|v| {
        v.to_str().is_ok_and(|v| {
            v.split(',')
                .any(|t| t.trim() == "*" || t.trim().eq_ignore_ascii_case("accept-encoding"))
        })
    });
    if !present {
        headers.append(VARY, HeaderValue::from_static("Accept-Encoding"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proxy::ResponseBody;

    fn on() -> Compression {
        let types = MimeTypes::parse("application/json text/event-stream").unwrap();
        Compression {
            gzip: Some(Codec {
                level: 1,
                min_length: 256,
                types: types.clone(),
            }),
            brotli: Some(Codec {
                level: 4,
                min_length: 20,
                types,
            }),
            gzip_disable: Some(UserAgents::parse("msie6").unwrap()),
        }
    }

    fn asked(accept: &str) -> Asked {
        let mut headers = HeaderMap::new();
        headers.insert(ACCEPT_ENCODING, HeaderValue::from_str(accept).unwrap());
        Compression::asked(&Method::GET, Version::HTTP_11, &headers)
    }

    fn response(status: u16, content_type: &str, length: Option<usize>) -> Response<ResponseBody> {
        let mut response = Response::new(ResponseBody::full("x".repeat(length.unwrap_or(1000))));
        *response.status_mut() = StatusCode::from_u16(status).unwrap();
        let h = response.headers_mut();
        h.insert(CONTENT_TYPE, HeaderValue::from_str(content_type).unwrap());
        if let Some(length) = length {
            h.insert(CONTENT_LENGTH, HeaderValue::from(length));
        }
        h.insert(ETAG, HeaderValue::from_static("\"v1\""));
        h.insert(ACCEPT_RANGES, HeaderValue::from_static("bytes"));
        response
    }

    fn encoding(r: &Response<ResponseBody>) -> Option<&str> {
        r.headers()
            .get(CONTENT_ENCODING)
            .map(|v| v.to_str().unwrap())
    }

    #[test]
    fn the_client_weights_choose_and_brotli_wins_ties() {
        let c = on();
        for (accept, want) in [
            ("gzip, br", Some("br")),
            ("gzip;q=1, br;q=0.5", Some("gzip")),
            ("gzip", Some("gzip")),
            ("br", Some("br")),
            ("br;q=0, gzip;q=0", None),
            ("deflate", None),
        ] {
            let mut r = response(200, "application/json; charset=utf-8", Some(1000));
            c.apply(&asked(accept), &mut r);
            assert_eq!(encoding(&r), want, "{accept}");
            assert_eq!(r.headers()[VARY], "Accept-Encoding", "{accept}");
            if want.is_some() {
                assert!(r.headers().get(CONTENT_LENGTH).is_none());
                assert!(r.headers().get(ACCEPT_RANGES).is_none());
                assert_eq!(r.headers()[ETAG], "W/\"v1\"");
            }
        }
    }

    #[test]
    fn ineligible_responses_pass_untouched() {
        let c = on();
        let cases = [
            response(206, "application/json", Some(1000)),
            response(500, "application/json", Some(1000)),
            response(200, "image/png", Some(1000)),
            response(200, "application/json", Some(10)),
        ];
        for mut r in cases {
            c.apply(&asked("gzip, br"), &mut r);
            assert_eq!(encoding(&r), None);
            assert!(r.headers().get(VARY).is_none());
        }
        let mut encoded = response(200, "application/json", Some(1000));
        encoded
            .headers_mut()
            .insert(CONTENT_ENCODING, HeaderValue::from_static("zstd"));
        c.apply(&asked("gzip"), &mut encoded);
        assert_eq!(encoding(&encoded), Some("zstd"));
        // Between the two minimums: brotli only.
        let mut r = response(200, "application/json", Some(100));
        c.apply(&asked("gzip"), &mut r);
        assert_eq!(encoding(&r), None);
        assert_eq!(r.headers()[VARY], "Accept-Encoding");
        // text/html always; a stream of unknown length too.
        let mut r = response(200, "text/html", None);
        c.apply(&asked("gzip"), &mut r);
        assert_eq!(encoding(&r), Some("gzip"));
    }

    #[test]
    fn head_http10_and_disabled_agents_are_not_gzipped() {
        let c = on();
        let mut headers = HeaderMap::new();
        headers.insert(ACCEPT_ENCODING, HeaderValue::from_static("gzip"));
        let head = Compression::asked(&Method::HEAD, Version::HTTP_11, &headers);
        let mut r = response(200, "application/json", Some(1000));
        c.apply(&head, &mut r);
        assert_eq!(encoding(&r), None);
        let old = Compression::asked(&Method::GET, Version::HTTP_10, &headers);
        let mut r = response(200, "application/json", Some(1000));
        c.apply(&old, &mut r);
        assert_eq!(encoding(&r), None);
        headers.insert(
            USER_AGENT,
            HeaderValue::from_static("Mozilla/4.0 (compatible; MSIE 6.0)"),
        );
        let msie = Compression::asked(&Method::GET, Version::HTTP_11, &headers);
        let mut r = response(200, "application/json", Some(1000));
        c.apply(&msie, &mut r);
        assert_eq!(encoding(&r), None);
    }

    #[test]
    fn mime_lists() {
        let t = MimeTypes::parse("application/json  text/plain").unwrap();
        assert!(t.contains(Some(&HeaderValue::from_static("text/html; charset=utf-8"))));
        assert!(t.contains(Some(&HeaderValue::from_static("Application/JSON"))));
        assert!(!t.contains(Some(&HeaderValue::from_static("image/png"))));
        assert!(!t.contains(None));
        assert!(MimeTypes::parse("*").unwrap().contains(None));
        assert!(MimeTypes::parse("not-a-type").is_err());
        assert!(UserAgents::parse("(unclosed").is_err());
    }
}
