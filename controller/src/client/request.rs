//! Checked requests: the arguments of a call with their defaults filled in
//! and every field validated, so that callers (the CLI) can refuse bad
//! input before they even connect, and the client before any API call.

use super::{ClientConfig, ClientError, validate};

/// A create request, checked: what `create_ingress` writes, and the URL it
/// returns.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CreateRequest {
    /// The Ingress's namespace (a DNS label).
    pub namespace: String,
    /// The Ingress's name (a DNS subdomain).
    pub name: String,
    /// The backend Service (a DNS-1035 label).
    pub service: String,
    /// The backend Service's port (1-65535).
    pub service_port: u16,
    /// The rule's host: the caller's, else the configured one.
    pub host: String,
    /// The Prefix path: the caller's, else [`ClientConfig::default_path`].
    pub path: String,
    /// The public URL: [`ClientConfig::url`] of host and path.
    pub url: String,
}

impl ClientConfig {
    /// Fills in the defaults of a `create_ingress` call and checks every
    /// field (and this configuration) against the API server's rules,
    /// without calling it.
    pub fn check_create(
        &self,
        namespace: &str,
        name: &str,
        service_name: &str,
        service_port: u16,
        ingress_host: Option<&str>,
        ingress_path: Option<&str>,
    ) -> Result<CreateRequest, ClientError> {
        check_ingress_name(namespace, name)?;
        validate::service_name("service", service_name)?;
        validate::port("service_port", service_port)?;
        self.validate()?;
        let host = ingress_host.unwrap_or(&self.ingress_host);
        validate::host("host", host)?;
        let path = match ingress_path {
            Some(path) => path.to_owned(),
            None => self.default_path(name),
        };
        validate::path("path", &path)?;
        Ok(CreateRequest {
            namespace: namespace.to_owned(),
            name: name.to_owned(),
            service: service_name.to_owned(),
            service_port,
            host: host.to_owned(),
            url: self.url(host, &path, self.tls_secret.is_some()),
            path,
        })
    }
}

/// Checks an Ingress's namespace (a DNS label) and name (a DNS subdomain).
pub fn check_ingress_name(namespace: &str, name: &str) -> Result<(), ClientError> {
    check_namespace(namespace)?;
    validate::dns_subdomain("name", name)
}

/// Checks a namespace (a DNS label).
pub fn check_namespace(namespace: &str) -> Result<(), ClientError> {
    validate::dns_label("namespace", namespace)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_filled_in() {
        let config = ClientConfig::default();
        let request = config
            .check_create(
                "user-1",
                "model-serving-1",
                "model-serving-1",
                80,
                None,
                None,
            )
            .unwrap();
        assert_eq!(request.host, "localhost");
        assert_eq!(request.path, "/api/v1/predict/1");
        assert_eq!(request.url, "http://localhost:30080/api/v1/predict/1");
    }

    #[test]
    fn the_caller_s_host_and_path_win() {
        let config = ClientConfig::default();
        let request = config
            .check_create(
                "a",
                "m",
                "svc",
                8080,
                Some("models.example.com"),
                Some("/v2/m"),
            )
            .unwrap();
        assert_eq!(request.url, "http://models.example.com:30080/v2/m");
    }

    #[test]
    fn each_field_is_checked_and_named() {
        let config = ClientConfig::default();
        let field = |result: Result<CreateRequest, ClientError>| match result {
            Err(ClientError::Invalid { field, .. }) => field,
            other => panic!("{other:?}"),
        };
        assert_eq!(
            field(config.check_create("A", "m", "s", 80, None, None)),
            "namespace"
        );
        assert_eq!(
            field(config.check_create("a", "M", "s", 80, None, None)),
            "name"
        );
        assert_eq!(
            field(config.check_create("a", "m", "9s", 80, None, None)),
            "service"
        );
        assert_eq!(
            field(config.check_create("a", "m", "s", 0, None, None)),
            "service_port"
        );
        assert_eq!(
            field(config.check_create("a", "m", "s", 80, Some("a b"), None)),
            "host"
        );
        assert_eq!(
            field(config.check_create("a", "m", "s", 80, None, Some("x"))),
            "path"
        );
        // A default path built from a bad base path names the variable.
        let bad = ClientConfig {
            base_path: "/a/..".to_owned(),
            ..ClientConfig::default()
        };
        assert_eq!(
            field(bad.check_create("a", "m", "s", 80, None, None)),
            "INGRESS_BASE_PATH"
        );
    }
}
