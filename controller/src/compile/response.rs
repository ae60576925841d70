//! `custom-headers`: the ConfigMap of response headers an Ingress names,
//! checked as ingress-nginx ≥ 1.12 checks it: every header name must match
//! `^[a-zA-Z\d\-_]+$`, every value ingress-nginx's value pattern, and every
//! name must be listed (exactly) in the controller ConfigMap's
//! `global-allowed-response-headers`. A missing ConfigMap or a refused
//! header denies the Ingress's routes (503), as ingress-nginx's
//! `LocationDenied`. Only a ConfigMap of the Ingress's own namespace is
//! read (ingress-nginx documents the same).

use std::sync::Arc;

use gateway::policy::Policy;
use gateway::policy::response::ResponseRules;
use http::{HeaderName, HeaderValue};

use super::{Compiler, Current};
use crate::annotations::PREFIX;
use crate::diagnostics::Reason;

/// The most headers one ConfigMap may set.
const MAX_HEADERS: usize = 64;

impl Compiler<'_> {
    /// Reads the Ingress's `custom-headers` ConfigMap into its policy; a
    /// refused one denies its routes.
    pub(super) fn custom_headers(&mut self, current: &mut Current<'_>) {
        let Some(id) = &current.annotations.custom_headers else {
            return;
        };
        let headers = if id.namespace != current.key.id.namespace {
            Err(format!(
                "ConfigMap {id} is in another namespace; only the Ingress's own namespace is read"
            ))
        } else {
            match self.snapshot.config_map(id) {
                None => Err(format!("ConfigMap {id} not found")),
                Some(map) => headers(map.data.iter().flatten(), &self.allowed_response_headers)
                    .map_err(|message| format!("ConfigMap {id}: {message}")),
            }
        };
        match headers {
            Ok(headers) => {
                let mut policy = Policy::clone(&current.policy);
                let mut rules = policy
                    .response
                    .as_deref()
                    .cloned()
                    .unwrap_or_else(ResponseRules::default);
                rules.headers = headers;
                policy.response = Some(Arc::new(rules));
                current.policy = Arc::new(policy);
            }
            Err(message) => {
                current.denied = true;
                let message =
                    format!("{PREFIX}custom-headers: {message}; the Ingress's routes answer 503");
                self.diagnose(current, Reason::LocationDenied, message);
            }
        }
    }
}

/// The headers of a ConfigMap's data, or why they are refused.
fn headers<'a>(
    data: impl Iterator<Item = (&'a String, &'a String)>,
    allowed: &[String],
) -> Result<Vec<(HeaderName, HeaderValue)>, String> {
    let mut headers = Vec::new();
    for (name, value) in data {
        let name_ok = !name.is_empty()
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !name_ok {
            return Err(format!("invalid header name {name:?}"));
        }
        let value_ok = !value.is_empty()
            && value.bytes().all(|b| {
                b.is_ascii_alphanumeric() || b" _:;.,\\/\"'?!(){}[]@<>=-+*#$&`|~^%".contains(&b)
            });
        if !value_ok {
            return Err(format!("invalid value for header {name:?}"));
        }
        if !allowed.iter().any(|a| a == name) {
            return Err(format!(
                "header {name} is not allowed: list it in the controller ConfigMap's global-allowed-response-headers"
            ));
        }
        let header = HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| format!("invalid header name {name:?}"))?;
        let value = HeaderValue::from_str(value)
            .map_err(|_| format!("invalid value for header {name:?}"))?;
        headers.push((header, value));
        if headers.len() > MAX_HEADERS {
            return Err(format!("more than {MAX_HEADERS} headers"));
        }
    }
    Ok(headers)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(pairs: &[(&str, &str)], allowed: &[&str]) -> Result<usize, String> {
        let data: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        let allowed: Vec<String> = allowed.iter().map(|a| (*a).to_owned()).collect();
        headers(data.iter().map(|(k, v)| (k, v)), &allowed).map(|h| h.len())
    }

    #[test]
    fn headers_follow_ingress_nginx_rules() {
        assert_eq!(
            check(
                &[("Content-Type", "application/json"), ("X-Cost", "$5")],
                &["Content-Type", "X-Cost"]
            ),
            Ok(2)
        );
        assert!(
            check(&[("X-Team", "a")], &[])
                .unwrap_err()
                .contains("global-allowed")
        );
        // Exact names, as ingress-nginx compares them.
        assert!(check(&[("x-team", "a")], &["X-Team"]).is_err());
        assert!(check(&[("X Team", "a")], &["X Team"]).is_err());
        assert!(check(&[("X-Team", "a\nb")], &["X-Team"]).is_err());
        assert!(check(&[("X-Team", "")], &["X-Team"]).is_err());
    }
}
