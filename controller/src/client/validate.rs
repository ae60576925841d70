//! The checks the Kubernetes API server applies to what the client sends,
//! run before any API call so that a bad name or path comes back as
//! [`ClientError::Invalid`] naming the field, not as a 422 from the server.

use std::net::IpAddr;

use super::ClientError;
use crate::paths;

/// Longest DNS-1123 label (namespaces; Service names are DNS-1035 labels of
/// the same length).
const LABEL_MAX: usize = 63;
/// Longest DNS-1123 subdomain (object names, hosts).
const SUBDOMAIN_MAX: usize = 253;

fn invalid(field: &'static str, reason: String) -> ClientError {
    ClientError::Invalid { field, reason }
}

/// A DNS-1123 label: 1-63 of `[a-z0-9-]`, starting and ending with a letter
/// or digit (what the API server requires of a namespace).
pub(super) fn dns_label(field: &'static str, value: &str) -> Result<(), ClientError> {
    if value.is_empty() || value.len() > LABEL_MAX || !is_label(value) {
        return Err(invalid(
            field,
            format!(
                "{value:?} is not a DNS label: 1 to {LABEL_MAX} lower-case letters, digits or '-', \
                 starting and ending with a letter or digit (e.g. \"user-1\")"
            ),
        ));
    }
    Ok(())
}

/// A DNS-1035 label: a DNS-1123 label that starts with a letter (what the
/// API server requires of a Service name, also in an Ingress backend).
pub(super) fn service_name(field: &'static str, value: &str) -> Result<(), ClientError> {
    let starts_with_letter = value.bytes().next().is_some_and(|b| b.is_ascii_lowercase());
    if value.len() > LABEL_MAX || !starts_with_letter || !is_label(value) {
        return Err(invalid(
            field,
            format!(
                "{value:?} is not a Service name: 1 to {LABEL_MAX} lower-case letters, digits or \
                 '-', starting with a letter and ending with a letter or digit (e.g. \"model-serving-1\")"
            ),
        ));
    }
    Ok(())
}

/// A DNS-1123 subdomain: at most 253 characters, dot-separated DNS labels
/// (what the API server requires of an object name).
pub(super) fn dns_subdomain(field: &'static str, value: &str) -> Result<(), ClientError> {
    if !is_subdomain(value) {
        return Err(invalid(
            field,
            format!(
                "{value:?} is not a DNS subdomain: at most {SUBDOMAIN_MAX} lower-case letters, \
                 digits, '-' or '.', starting and ending with a letter or digit (e.g. \"model-serving-1\")"
            ),
        ));
    }
    Ok(())
}

/// A host for an Ingress rule and a URL: a lower-case DNS name, as the API
/// server requires of `spec.rules[].host`, and neither an IP address (the
/// API server refuses those) nor a wildcard (a URL needs one name).
pub(super) fn host(field: &'static str, value: &str) -> Result<(), ClientError> {
    if value.parse::<IpAddr>().is_ok() {
        return Err(invalid(
            field,
            format!("{value:?} is an IP address; an Ingress host must be a DNS name"),
        ));
    }
    if value.starts_with("*.") {
        return Err(invalid(
            field,
            format!("{value:?} is a wildcard; the client needs one host name to build a URL"),
        ));
    }
    if value.contains(':') {
        return Err(invalid(
            field,
            format!("{value:?} has a port; give the host alone (the URL's port is configured)"),
        ));
    }
    if !is_subdomain(value) {
        return Err(invalid(
            field,
            format!(
                "{value:?} is not a lower-case DNS name such as \"localhost\" or \"models.example.com\""
            ),
        ));
    }
    Ok(())
}

/// A path for pathType Prefix: absolute, passing the API server's checks
/// (no `//`, `/./`, `/../`, `%2f`, no trailing `/.` or `/..`), and usable
/// verbatim in a URL (no spaces, control characters, `?` or `#`).
pub(super) fn path(field: &'static str, value: &str) -> Result<(), ClientError> {
    paths::validate("Prefix", value)
        .map_err(|reason| invalid(field, format!("{value:?} {reason}")))?;
    if let Some(c) = value
        .chars()
        .find(|c| c.is_whitespace() || c.is_control() || matches!(c, '?' | '#'))
    {
        return Err(invalid(
            field,
            format!("{value:?} must not contain {c:?} (it must be usable as a URL path)"),
        ));
    }
    Ok(())
}

/// A Service port: 1-65535.
pub(super) fn port(field: &'static str, value: u16) -> Result<(), ClientError> {
    if value == 0 {
        return Err(invalid(field, "0 is not a port; use 1 to 65535".to_owned()));
    }
    Ok(())
}

fn is_label(value: &str) -> bool {
    let bytes = value.as_bytes();
    let alnum = |b: &u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    bytes.first().is_some_and(alnum)
        && bytes.last().is_some_and(alnum)
        && bytes.iter().all(|b| alnum(b) || *b == b'-')
}

fn is_subdomain(value: &str) -> bool {
    !value.is_empty() && value.len() <= SUBDOMAIN_MAX && value.split('.').all(is_label)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field_of(result: Result<(), ClientError>) -> Option<&'static str> {
        match result {
            Err(ClientError::Invalid { field, .. }) => Some(field),
            _ => None,
        }
    }

    #[test]
    fn labels() {
        for good in ["a", "user-1", "0", "a-b-c", &"a".repeat(63)] {
            assert!(dns_label("namespace", good).is_ok(), "{good}");
        }
        for bad in ["", "-a", "a-", "A", "a_b", "a.b", &"a".repeat(64)] {
            assert_eq!(
                field_of(dns_label("namespace", bad)),
                Some("namespace"),
                "{bad}"
            );
        }
    }

    #[test]
    fn service_names_start_with_a_letter() {
        assert!(service_name("service", "model-serving-1").is_ok());
        for bad in ["", "1model", "model.x", "Model", &"a".repeat(64)] {
            assert_eq!(
                field_of(service_name("service", bad)),
                Some("service"),
                "{bad}"
            );
        }
    }

    #[test]
    fn subdomains() {
        for good in [
            "a",
            "model-serving-1",
            "a.b.c",
            "1",
            &format!("{}b", "a.".repeat(126)),
        ] {
            assert!(dns_subdomain("name", good).is_ok(), "{good}");
        }
        for bad in ["", "a..b", ".a", "a.", "a_b", "A", "a.-b", &"a".repeat(254)] {
            assert_eq!(field_of(dns_subdomain("name", bad)), Some("name"), "{bad}");
        }
    }

    #[test]
    fn hosts() {
        for good in ["localhost", "models.example.com", "a-1.b"] {
            assert!(host("host", good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "10.0.0.1",
            "::1",
            "*.example.com",
            "localhost:8080",
            "Models.example.com",
            "a_b.com",
            "a..b",
        ] {
            assert_eq!(field_of(host("host", bad)), Some("host"), "{bad}");
        }
    }

    #[test]
    fn paths_follow_the_api_server_and_url_rules() {
        for good in ["/", "/api/v1/predict/1", "/v1.0/x", "/a-b_c~d"] {
            assert!(path("path", good).is_ok(), "{good}");
        }
        for bad in [
            "", "api", "/a//b", "/a/./b", "/a/../b", "/a%2fb", "/a%2Fb", "/a/.", "/a/..", "/a b",
            "/a?b", "/a#b", "/a\nb",
        ] {
            assert_eq!(field_of(path("path", bad)), Some("path"), "{bad:?}");
        }
    }

    #[test]
    fn ports() {
        assert!(port("service_port", 1).is_ok());
        assert!(port("service_port", 65535).is_ok());
        assert_eq!(field_of(port("service_port", 0)), Some("service_port"));
    }

    #[test]
    fn messages_name_the_value_and_the_rule() {
        let error = dns_subdomain("name", "Model_1").unwrap_err().to_string();
        assert!(error.contains("name"), "{error}");
        assert!(error.contains("\"Model_1\""), "{error}");
        assert!(error.contains("DNS subdomain"), "{error}");
        let error = path("path", "/a//b").unwrap_err().to_string();
        assert!(error.contains("\"//\""), "{error}");
    }
}
