//! The ConfigMap's header keys: which headers go upstream and back to the
//! client beyond ingress-nginx's fixed set (`generate-request-id`,
//! `proxy-add-original-uri-header`, `enable-underscores-in-headers`,
//! `allow-backend-server-header`, `hide-headers`, `proxy-set-headers`,
//! `add-headers`). Every default costs nothing per request.

use http::header::{
    CONNECTION, CONTENT_LENGTH, HeaderMap, HeaderName, HeaderValue, TE, TRAILER, TRANSFER_ENCODING,
    UPGRADE,
};

/// Gateway-wide header settings, with ingress-nginx's defaults.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HeaderRules {
    /// `generate-request-id` (true): make an `X-Request-ID` when the client
    /// sent none.
    pub generate_request_id: bool,
    /// `proxy-add-original-uri-header` (false): send the client's request
    /// target upstream as `X-Original-URI`.
    pub original_uri: bool,
    /// `enable-underscores-in-headers` (false): forward request headers
    /// whose names contain `_` (otherwise dropped, as nginx's
    /// `ignore_invalid_headers`).
    pub underscores: bool,
    /// `allow-backend-server-header` (false): pass the upstream's `Server`.
    pub backend_server_header: bool,
    /// `hide-headers`: upstream response headers never sent to the client.
    pub hide: Vec<HeaderName>,
    /// `proxy-set-headers`: set on every upstream request, after the
    /// gateway's own headers.
    pub to_upstream: Vec<(HeaderName, HeaderValue)>,
    /// `add-headers`: set on every response to a client.
    pub to_client: Vec<(HeaderName, HeaderValue)>,
}

impl Default for HeaderRules {
    fn default() -> Self {
        Self {
            generate_request_id: true,
            original_uri: false,
            underscores: false,
            backend_server_header: false,
            hide: Vec::new(),
            to_upstream: Vec::new(),
            to_client: Vec::new(),
        }
    }
}

/// Sets each `(name, value)` on `headers`, replacing what was there (as
/// nginx's `more_set_headers` and `proxy_set_header`).
pub fn set_all(headers: &mut HeaderMap, pairs: &[(HeaderName, HeaderValue)]) {
    for (name, value) in pairs {
        headers.insert(name.clone(), value.clone());
    }
}

/// Checks one configured header: a valid field name that does not frame
/// or route the message, and a value of visible text with no line break
/// and no nginx variable (values are sent literally, never substituted).
pub fn header_pair(name: &str, value: &str) -> Result<(HeaderName, HeaderValue), String> {
    let name = HeaderName::from_bytes(name.trim().as_bytes())
        .map_err(|_| format!("{name:?} is not a valid header name"))?;
    let framing = [
        CONTENT_LENGTH,
        TRANSFER_ENCODING,
        CONNECTION,
        TE,
        TRAILER,
        UPGRADE,
    ];
    if framing.contains(&name) || name == "keep-alive" {
        return Err(format!("{name} frames the message and cannot be set"));
    }
    if has_variable(value) {
        return Err(format!(
            "{value:?} uses an nginx variable; values are sent as written and variables are not supported"
        ));
    }
    let value = HeaderValue::from_str(value)
        .map_err(|_| format!("the value of {name} must be visible text on one line"))?;
    Ok((name, value))
}

/// Whether `value` holds `$name`, `${name}` or `$1`, which nginx would
/// substitute.
fn has_variable(value: &str) -> bool {
    value
        .as_bytes()
        .windows(2)
        .any(|w| w[0] == b'$' && (w[1].is_ascii_alphanumeric() || w[1] == b'_' || w[1] == b'{'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_pairs() {
        let (n, v) = header_pair("X-Team", "models").unwrap();
        assert_eq!((n.as_str(), v.to_str().unwrap()), ("x-team", "models"));
        assert!(header_pair("Host", "internal.example").is_ok());
        assert!(header_pair("X-Price", "5 $").is_ok(), "a lone $ is text");
        assert!(header_pair("X-Empty", "").is_ok());
    }

    #[test]
    fn invalid_pairs() {
        assert!(header_pair("X Bad", "v").is_err());
        assert!(header_pair("X-Bad:", "v").is_err());
        assert!(header_pair("", "v").is_err());
        assert!(header_pair("X-Inject", "a\r\nX-Evil: 1").is_err());
        assert!(header_pair("X-Inject", "a\nb").is_err());
        assert!(header_pair("Content-Length", "0").is_err());
        assert!(header_pair("Transfer-Encoding", "chunked").is_err());
        assert!(header_pair("Keep-Alive", "timeout=1").is_err());
        let error = header_pair("X-Client", "$remote_addr").unwrap_err();
        assert!(error.contains("variable"), "{error}");
        assert!(header_pair("X-Client", "${host}").is_err());
        assert!(header_pair("X-Client", "a$1").is_err());
    }

    #[test]
    fn set_all_replaces() {
        let mut h = HeaderMap::new();
        h.append("x-a", HeaderValue::from_static("1"));
        h.append("x-a", HeaderValue::from_static("2"));
        set_all(&mut h, &[header_pair("X-A", "3").unwrap()]);
        assert_eq!(h.get_all("x-a").iter().count(), 1);
        assert_eq!(h["x-a"], "3");
    }
}
