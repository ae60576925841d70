//! The client's settings: which host and base path Ingresses get, and how
//! their public URLs are written. Read from the environment through an
//! injectable lookup, so tests never touch the process environment.

use std::time::Duration;

use super::{ClientError, validate};

/// `INGRESS_HOST`: the host of created Ingresses and their URLs.
pub const ENV_HOST: &str = "INGRESS_HOST";
/// `INGRESS_BASE_PATH`: every model's default path is `<base>/<id>`.
pub const ENV_BASE_PATH: &str = "INGRESS_BASE_PATH";
/// `INGRESS_CLASS`: the `ingressClassName` of created Ingresses.
pub const ENV_CLASS: &str = "INGRESS_CLASS";
/// `INGRESS_TLS_SECRET`: a TLS Secret for the host; URLs become https.
pub const ENV_TLS_SECRET: &str = "INGRESS_TLS_SECRET";
/// `INGRESS_HTTP_PORT`: the port in http URLs (the gateway's NodePort).
pub const ENV_HTTP_PORT: &str = "INGRESS_HTTP_PORT";
/// `INGRESS_HTTPS_PORT`: the port in https URLs (the gateway's NodePort).
pub const ENV_HTTPS_PORT: &str = "INGRESS_HTTPS_PORT";

/// The prefix the model-serving chart gives a model's objects
/// (`model-serving-<id>`); see [`ClientConfig::default_path`].
pub const MODEL_NAME_PREFIX: &str = "model-serving-";

/// How the client writes Ingresses and their URLs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientConfig {
    /// The rule host when a call gives none (`INGRESS_HOST`, default
    /// `localhost`).
    pub ingress_host: String,
    /// The path models live under (`INGRESS_BASE_PATH`, default
    /// `/api/v1/predict`).
    pub base_path: String,
    /// `spec.ingressClassName` (`INGRESS_CLASS`, default `nginx`).
    pub class_name: String,
    /// The port in http URLs (`INGRESS_HTTP_PORT`, default 30080).
    pub http_port: u16,
    /// The port in https URLs (`INGRESS_HTTPS_PORT`, default 30443).
    pub https_port: u16,
    /// A TLS Secret (in the Ingress's namespace) for the host
    /// (`INGRESS_TLS_SECRET`, default none). When set, Ingresses get a
    /// `spec.tls` entry and URLs are https.
    pub tls_secret: Option<String>,
    /// The longest any one API call may take before it counts as
    /// [`ClientError::Unreachable`] (30 s).
    pub timeout: Duration,
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            ingress_host: "localhost".to_owned(),
            base_path: "/api/v1/predict".to_owned(),
            class_name: "nginx".to_owned(),
            http_port: 30080,
            https_port: 30443,
            tls_secret: None,
            timeout: Duration::from_secs(30),
        }
    }
}

impl ClientConfig {
    /// The configuration from the process environment (see the `ENV_*`
    /// constants); unset or empty variables keep the defaults.
    #[allow(
        clippy::disallowed_methods,
        reason = "the client API's documented configuration (docs/client-api.md) is the environment"
    )]
    pub fn from_env() -> Result<Self, ClientError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// The configuration from `lookup(variable name)`, e.g. a map in tests.
    /// Unset or empty variables keep the defaults; the values are validated
    /// ([`ClientError::Invalid`] names the variable).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ClientError> {
        let get = |name: &str| lookup(name).filter(|value| !value.is_empty());
        let mut config = ClientConfig::default();
        if let Some(host) = get(ENV_HOST) {
            config.ingress_host = host;
        }
        if let Some(base) = get(ENV_BASE_PATH) {
            config.base_path = base;
        }
        if let Some(class) = get(ENV_CLASS) {
            config.class_name = class;
        }
        config.tls_secret = get(ENV_TLS_SECRET);
        if let Some(port) = get(ENV_HTTP_PORT) {
            config.http_port = parse_port(ENV_HTTP_PORT, &port)?;
        }
        if let Some(port) = get(ENV_HTTPS_PORT) {
            config.https_port = parse_port(ENV_HTTPS_PORT, &port)?;
        }
        config.validate()?;
        Ok(config)
    }

    /// Checks the values as the API server would see them; errors name the
    /// environment variable each value comes from.
    pub fn validate(&self) -> Result<(), ClientError> {
        validate::host(ENV_HOST, &self.ingress_host)?;
        validate::path(ENV_BASE_PATH, &self.base_path)?;
        validate::dns_subdomain(ENV_CLASS, &self.class_name)?;
        if let Some(secret) = &self.tls_secret {
            validate::dns_subdomain(ENV_TLS_SECRET, secret)?;
        }
        validate::port(ENV_HTTP_PORT, self.http_port)?;
        validate::port(ENV_HTTPS_PORT, self.https_port)
    }

    /// The path an Ingress named `name` gets when the caller gives none:
    /// `<base_path>/<id>`, where the id is `name` without the chart's
    /// `model-serving-` prefix. So `model-serving-1` (the name the
    /// model-serving chart gives deployment 1) and `1` both get
    /// `/api/v1/predict/1`, the path the chart gives that deployment.
    pub fn default_path(&self, name: &str) -> String {
        let id = match name.strip_prefix(MODEL_NAME_PREFIX) {
            Some(id) if !id.is_empty() => id,
            _ => name,
        };
        format!("{}/{id}", self.base_path.trim_end_matches('/'))
    }

    /// The public URL of `path` on `host`: `http://<host>:<http_port><path>`,
    /// or `https://<host>:<https_port><path>` when `tls`; the port is left
    /// out when it is the scheme's own (80, 443).
    pub fn url(&self, host: &str, path: &str, tls: bool) -> String {
        let (scheme, port, default) = if tls {
            ("https", self.https_port, 443)
        } else {
            ("http", self.http_port, 80)
        };
        if port == default {
            format!("{scheme}://{host}{path}")
        } else {
            format!("{scheme}://{host}:{port}{path}")
        }
    }
}

fn parse_port(variable: &'static str, value: &str) -> Result<u16, ClientError> {
    value.trim().parse().map_err(|_| ClientError::Invalid {
        field: variable,
        reason: format!("{value:?} is not a port number (1 to 65535)"),
    })
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn from(vars: &[(&str, &str)]) -> Result<ClientConfig, ClientError> {
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        ClientConfig::from_lookup(|name| vars.get(name).cloned())
    }

    #[test]
    fn defaults_give_the_issue_s_url_for_deployment_1() {
        let config = from(&[]).unwrap();
        assert_eq!(config, ClientConfig::default());
        let path = config.default_path("model-serving-1");
        assert_eq!(path, "/api/v1/predict/1");
        assert_eq!(
            config.url(&config.ingress_host, &path, false),
            "http://localhost:30080/api/v1/predict/1"
        );
        assert_eq!(config.default_path("1"), "/api/v1/predict/1");
    }

    #[test]
    fn default_path_keeps_names_without_the_chart_prefix() {
        let config = ClientConfig::default();
        assert_eq!(config.default_path("llama"), "/api/v1/predict/llama");
        assert_eq!(
            config.default_path("model-serving"),
            "/api/v1/predict/model-serving"
        );
        assert_eq!(config.default_path("a.b"), "/api/v1/predict/a.b");
        let root = ClientConfig {
            base_path: "/".to_owned(),
            ..ClientConfig::default()
        };
        assert_eq!(root.default_path("model-serving-2"), "/2");
        let slash = ClientConfig {
            base_path: "/models/".to_owned(),
            ..ClientConfig::default()
        };
        assert_eq!(slash.default_path("x"), "/models/x");
    }

    #[test]
    fn environment_overrides() {
        let config = from(&[
            (ENV_HOST, "models.example.com"),
            (ENV_BASE_PATH, "/v2/models"),
            (ENV_CLASS, "edge"),
            (ENV_TLS_SECRET, "models-tls"),
            (ENV_HTTP_PORT, "80"),
            (ENV_HTTPS_PORT, "443"),
        ])
        .unwrap();
        assert_eq!(config.ingress_host, "models.example.com");
        assert_eq!(config.class_name, "edge");
        assert_eq!(config.tls_secret.as_deref(), Some("models-tls"));
        let path = config.default_path("m");
        assert_eq!(path, "/v2/models/m");
        assert_eq!(
            config.url(&config.ingress_host, &path, true),
            "https://models.example.com/v2/models/m"
        );
        assert_eq!(
            config.url(&config.ingress_host, &path, false),
            "http://models.example.com/v2/models/m"
        );
    }

    #[test]
    fn tls_urls_use_the_https_port() {
        let config = ClientConfig::default();
        assert_eq!(
            config.url("localhost", "/api/v1/predict/1", true),
            "https://localhost:30443/api/v1/predict/1"
        );
    }

    #[test]
    fn empty_variables_keep_defaults() {
        let config = from(&[(ENV_HOST, ""), (ENV_TLS_SECRET, "")]).unwrap();
        assert_eq!(config, ClientConfig::default());
    }

    #[test]
    fn bad_values_name_the_variable() {
        for (var, value) in [
            (ENV_HOST, "10.0.0.1"),
            (ENV_HOST, "Local_Host"),
            (ENV_BASE_PATH, "api/v1"),
            (ENV_BASE_PATH, "/api//v1"),
            (ENV_TLS_SECRET, "Bad Secret"),
            (ENV_HTTP_PORT, "http"),
            (ENV_HTTP_PORT, "0"),
            (ENV_HTTPS_PORT, "70000"),
        ] {
            match from(&[(var, value)]) {
                Err(ClientError::Invalid { field, .. }) => assert_eq!(field, var, "{value}"),
                other => panic!("{var}={value}: {other:?}"),
            }
        }
    }
}
