//! The path half of `URLRewrite` and `RequestRedirect`: replace the whole
//! path, or the part a `PathPrefix` match matched.
//!
//! `ReplacePrefixMatch` works element by element, as the match does, and
//! follows the table in the spec's `HTTPPathModifier` documentation: the
//! prefix (without its trailing `/`) is cut from the normalised request
//! path and the replacement (without its trailing `/`) put in front of
//! what is left; an empty result is `/`. The request's query string is
//! kept. The new path is percent-encoded where a path cannot hold a byte
//! as it is.

/// How a filter changes the path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PathModifier {
    /// `ReplaceFullPath`: this path.
    Full(Box<str>),
    /// `ReplacePrefixMatch`: the matched prefix replaced.
    Prefix {
        /// The `PathPrefix` value the route matched on.
        matched: Box<str>,
        /// What replaces it.
        replacement: Box<str>,
    },
}

impl PathModifier {
    /// The new path for a normalised request path (the one the route
    /// matched), encoded, without a query.
    pub fn path(&self, normalised: &[u8]) -> String {
        match self {
            Self::Full(path) => encode(path.as_bytes()),
            Self::Prefix {
                matched,
                replacement,
            } => {
                let prefix = matched.trim_end_matches('/').as_bytes();
                let rest = normalised.strip_prefix(prefix).unwrap_or(normalised);
                let mut out = replacement.trim_end_matches('/').as_bytes().to_vec();
                out.extend_from_slice(rest);
                if out.is_empty() {
                    out.push(b'/');
                }
                encode(&out)
            }
        }
    }

    /// The new path and query: [`PathModifier::path`] with `query` kept.
    pub fn target(&self, normalised: &[u8], query: Option<&str>) -> String {
        let mut target = self.path(normalised);
        if let Some(query) = query {
            target.push('?');
            target.push_str(query);
        }
        target
    }
}

/// Percent-encodes what a path cannot hold as it is.
pub(crate) fn encode(path: &[u8]) -> String {
    let mut out = String::with_capacity(path.len());
    for &b in path {
        if b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:@/".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prefix(matched: &str, replacement: &str) -> PathModifier {
        PathModifier::Prefix {
            matched: matched.into(),
            replacement: replacement.into(),
        }
    }

    /// The table of `ReplacePrefixMatch` in the spec.
    #[test]
    fn replace_prefix_match_table() {
        let cases = [
            ("/foo/bar", "/foo", "/xyz", "/xyz/bar"),
            ("/foo/bar", "/foo", "/xyz/", "/xyz/bar"),
            ("/foo/bar", "/foo/", "/xyz", "/xyz/bar"),
            ("/foo/bar", "/foo/", "/xyz/", "/xyz/bar"),
            ("/foo", "/foo", "/xyz", "/xyz"),
            ("/foo/", "/foo", "/xyz", "/xyz/"),
            ("/foo/bar", "/foo", "", "/bar"),
            ("/foo/", "/foo", "", "/"),
            ("/foo", "/foo", "", "/"),
            ("/foo/", "/foo", "/", "/"),
            ("/foo", "/foo", "/", "/"),
            ("/anything", "/", "/prefix", "/prefix/anything"),
        ];
        for (request, matched, replacement, want) in cases {
            assert_eq!(
                prefix(matched, replacement).path(request.as_bytes()),
                want,
                "{request} {matched} {replacement}"
            );
        }
    }

    #[test]
    fn full_path_keeps_the_query_and_encodes() {
        let full = PathModifier::Full("/one".into());
        assert_eq!(full.target(b"/x/y", Some("a=1")), "/one?a=1");
        assert_eq!(full.target(b"/x/y", None), "/one");
        assert_eq!(prefix("/a", "/b").path(b"/a/x y"), "/b/x%20y");
    }
}
