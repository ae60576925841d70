//! The client's errors: typed, so the platform's backend can tell a bad
//! request (fix the input) from a refused one (permissions, someone else's
//! Ingress) and from an API server that cannot be reached (retry later).

/// Why a client call failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// An argument or configuration value breaks the API server's rules;
    /// found before any API call.
    #[error("invalid {field}: {reason}")]
    Invalid {
        /// The argument or environment variable at fault (`name`, `path`,
        /// `INGRESS_HOST`, ...).
        field: &'static str,
        /// What is wrong with it, quoting the value.
        reason: String,
    },
    /// The API server answered 404, e.g. the namespace does not exist.
    #[error("not found: {0}")]
    NotFound(String),
    /// The API server answered 403: the client's account may not do this
    /// (see docs/client-api.md for the RBAC it needs).
    #[error("forbidden: {0}")]
    Forbidden(String),
    /// The API server answered 409 again after one retry: the Ingress kept
    /// changing underneath (or is being deleted).
    #[error("conflict: {0}")]
    Conflict(String),
    /// The API server could not be reached, or did not answer in time.
    #[error("Kubernetes API unreachable: {0}")]
    Unreachable(String),
    /// An Ingress of that name exists but the client did not create it (it
    /// lacks the managed-by label), so the client leaves it alone.
    #[error(
        "Ingress {namespace}/{name} exists but was not created by this client \
         (no label {label}); refusing to change or delete it",
        label = super::MANAGED_SELECTOR
    )]
    NotManaged {
        /// The Ingress's namespace.
        namespace: String,
        /// The Ingress's name.
        name: String,
    },
    /// Any other error from the API server or the kube client.
    #[error("Kubernetes API: {0}")]
    Api(#[source] kube::Error),
}

impl ClientError {
    /// Whether the input was refused before any API call (the CLI exits
    /// with 2 for these, 1 for the rest).
    pub fn is_invalid(&self) -> bool {
        matches!(self, Self::Invalid { .. })
    }
}

impl From<kube::Error> for ClientError {
    fn from(error: kube::Error) -> Self {
        match error {
            kube::Error::Api(status) => match status.code {
                404 => Self::NotFound(status.message),
                403 => Self::Forbidden(status.message),
                409 => Self::Conflict(status.message),
                _ => Self::Api(kube::Error::Api(status)),
            },
            // Connecting, TLS, or a transport failure: nothing was answered.
            kube::Error::HyperError(_) | kube::Error::Service(_) => {
                Self::Unreachable(chain(&error))
            }
            other => Self::Api(other),
        }
    }
}

/// An error and its sources, joined by ": ".
fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let more = cause.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube::core::Status;

    fn api(code: u16) -> ClientError {
        let status = Status::failure("msg", "Reason").with_code(code);
        kube::Error::Api(status.boxed()).into()
    }

    #[test]
    fn status_codes_map_to_kinds() {
        assert!(matches!(api(404), ClientError::NotFound(m) if m == "msg"));
        assert!(matches!(api(403), ClientError::Forbidden(_)));
        assert!(matches!(api(409), ClientError::Conflict(_)));
        assert!(matches!(api(422), ClientError::Api(_)));
        assert!(matches!(api(500), ClientError::Api(_)));
    }

    #[test]
    fn not_managed_names_the_label() {
        let error = ClientError::NotManaged {
            namespace: "user-1".to_owned(),
            name: "model-serving-1".to_owned(),
        };
        let text = error.to_string();
        assert!(text.contains("user-1/model-serving-1"), "{text}");
        assert!(
            text.contains("app.kubernetes.io/managed-by=edge-gateway-client"),
            "{text}"
        );
    }
}
