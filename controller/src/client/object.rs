//! The Ingress the client writes, and what it reads back from one: pure
//! functions, unit-tested without a server.

use std::collections::BTreeMap;

use k8s_openapi::api::networking::v1::{
    HTTPIngressPath, HTTPIngressRuleValue, Ingress, IngressBackend, IngressRule,
    IngressServiceBackend, IngressSpec, IngressTLS, ServiceBackendPort,
};
use kube::api::ObjectMeta;

use super::{ClientConfig, CreateRequest, MANAGED_BY_LABEL, MANAGED_BY_VALUE};

/// One Ingress the client manages, as the API server holds it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ManagedIngress {
    /// Its namespace.
    pub namespace: String,
    /// Its name.
    pub name: String,
    /// The host of its first rule (empty: any host).
    pub host: String,
    /// The path of its first rule.
    pub path: String,
    /// The Service its first path sends to.
    pub service: String,
    /// That Service's port (`None` if the backend names the port).
    pub service_port: Option<u16>,
    /// Its public URL: https when a TLS entry covers the host. With no host
    /// in the rule, the configured host is used.
    pub url: String,
}

/// The Ingress for `want`: class, one rule (host, Prefix path, backend),
/// TLS for the host when configured, and the managed-by label.
pub(super) fn desired(config: &ClientConfig, want: &CreateRequest) -> Ingress {
    let backend = IngressBackend {
        service: Some(IngressServiceBackend {
            name: want.service.clone(),
            port: Some(ServiceBackendPort {
                number: Some(i32::from(want.service_port)),
                name: None,
            }),
        }),
        resource: None,
    };
    let rule = IngressRule {
        host: Some(want.host.clone()),
        http: Some(HTTPIngressRuleValue {
            paths: vec![HTTPIngressPath {
                path: Some(want.path.clone()),
                path_type: "Prefix".to_owned(),
                backend,
            }],
        }),
    };
    let tls = config.tls_secret.as_ref().map(|secret| {
        vec![IngressTLS {
            hosts: Some(vec![want.host.clone()]),
            secret_name: Some(secret.clone()),
        }]
    });
    Ingress {
        metadata: ObjectMeta {
            name: Some(want.name.clone()),
            namespace: Some(want.namespace.clone()),
            labels: Some(BTreeMap::from([(
                MANAGED_BY_LABEL.to_owned(),
                MANAGED_BY_VALUE.to_owned(),
            )])),
            ..ObjectMeta::default()
        },
        spec: Some(IngressSpec {
            ingress_class_name: Some(config.class_name.clone()),
            rules: Some(vec![rule]),
            tls,
            default_backend: None,
        }),
        status: None,
    }
}

/// Whether the client created `ingress` (it carries the managed-by label).
pub(super) fn is_managed(ingress: &Ingress) -> bool {
    ingress
        .metadata
        .labels
        .as_ref()
        .and_then(|labels| labels.get(MANAGED_BY_LABEL))
        .is_some_and(|value| value == MANAGED_BY_VALUE)
}

/// `want` as an update of `existing`: the existing metadata (its
/// resourceVersion for optimistic concurrency, and labels and annotations
/// others added) with our labels on top, and our spec in place of its spec.
pub(super) fn update_of(existing: Ingress, want: Ingress) -> Ingress {
    let mut metadata = existing.metadata;
    let mut labels = metadata.labels.take().unwrap_or_default();
    labels.extend(want.metadata.labels.unwrap_or_default());
    metadata.labels = Some(labels);
    Ingress {
        metadata,
        spec: want.spec,
        status: None,
    }
}

/// What `ingress` routes, with its URL.
pub(super) fn read(config: &ClientConfig, ingress: &Ingress) -> ManagedIngress {
    let spec = ingress.spec.as_ref();
    let rule = spec
        .and_then(|s| s.rules.as_ref())
        .and_then(|rules| rules.first());
    let host = rule.and_then(|r| r.host.clone()).unwrap_or_default();
    let first_path = rule
        .and_then(|r| r.http.as_ref())
        .and_then(|http| http.paths.first());
    let path = first_path
        .and_then(|p| p.path.clone())
        .unwrap_or_else(|| "/".to_owned());
    let backend = first_path.and_then(|p| p.backend.service.as_ref());
    let service = backend.map(|b| b.name.clone()).unwrap_or_default();
    let service_port = backend
        .and_then(|b| b.port.as_ref())
        .and_then(|p| p.number)
        .and_then(|n| u16::try_from(n).ok());
    let tls = spec
        .and_then(|s| s.tls.as_ref())
        .is_some_and(|entries| entries.iter().any(|t| covers(t, &host)));
    let url_host = if host.is_empty() {
        &config.ingress_host
    } else {
        &host
    };
    ManagedIngress {
        namespace: ingress.metadata.namespace.clone().unwrap_or_default(),
        name: ingress.metadata.name.clone().unwrap_or_default(),
        url: config.url(url_host, &path, tls),
        host,
        path,
        service,
        service_port,
    }
}

/// Whether a TLS entry serves `host` (an entry without hosts covers all).
fn covers(tls: &IngressTLS, host: &str) -> bool {
    tls.hosts
        .as_ref()
        .is_none_or(|hosts| hosts.is_empty() || hosts.iter().any(|h| h == host))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn want() -> CreateRequest {
        ClientConfig::default()
            .check_create(
                "user-1",
                "model-serving-1",
                "model-serving-1",
                80,
                None,
                None,
            )
            .unwrap()
    }

    #[test]
    fn desired_ingress_is_the_chart_s_shape() {
        let ingress = desired(&ClientConfig::default(), &want());
        let json = serde_json::to_value(&ingress).unwrap();
        assert_eq!(
            json["metadata"]["labels"][MANAGED_BY_LABEL],
            MANAGED_BY_VALUE
        );
        assert_eq!(json["spec"]["ingressClassName"], "nginx");
        let rule = &json["spec"]["rules"][0];
        assert_eq!(rule["host"], "localhost");
        let path = &rule["http"]["paths"][0];
        assert_eq!(path["path"], "/api/v1/predict/1");
        assert_eq!(path["pathType"], "Prefix");
        assert_eq!(path["backend"]["service"]["name"], "model-serving-1");
        assert_eq!(path["backend"]["service"]["port"]["number"], 80);
        assert!(json["spec"].get("tls").is_none());
        assert!(is_managed(&ingress));
    }

    #[test]
    fn tls_adds_an_entry_for_the_host_and_an_https_url() {
        let config = ClientConfig {
            tls_secret: Some("models-tls".to_owned()),
            ..ClientConfig::default()
        };
        let ingress = desired(&config, &want());
        let json = serde_json::to_value(&ingress).unwrap();
        assert_eq!(json["spec"]["tls"][0]["secretName"], "models-tls");
        assert_eq!(json["spec"]["tls"][0]["hosts"][0], "localhost");
        assert_eq!(
            read(&config, &ingress).url,
            "https://localhost:30443/api/v1/predict/1"
        );
    }

    #[test]
    fn read_gives_back_what_was_written() {
        let config = ClientConfig::default();
        let got = read(&config, &desired(&config, &want()));
        assert_eq!(
            got,
            ManagedIngress {
                namespace: "user-1".to_owned(),
                name: "model-serving-1".to_owned(),
                host: "localhost".to_owned(),
                path: "/api/v1/predict/1".to_owned(),
                service: "model-serving-1".to_owned(),
                service_port: Some(80),
                url: "http://localhost:30080/api/v1/predict/1".to_owned(),
            }
        );
    }

    #[test]
    fn updates_keep_others_metadata_and_replace_the_spec() {
        let config = ClientConfig::default();
        let mut existing = desired(&config, &want());
        existing.metadata.resource_version = Some("42".to_owned());
        existing
            .metadata
            .labels
            .get_or_insert_default()
            .insert("team".to_owned(), "a".to_owned());
        existing.metadata.annotations = Some(BTreeMap::from([("note".to_owned(), "x".to_owned())]));
        let new = desired(
            &config,
            &CreateRequest {
                service_port: 8080,
                ..want()
            },
        );
        let updated = update_of(existing, new);
        assert_eq!(updated.metadata.resource_version.as_deref(), Some("42"));
        let labels = updated.metadata.labels.clone().unwrap_or_default();
        assert_eq!(labels.get("team").map(String::as_str), Some("a"));
        assert!(is_managed(&updated));
        assert!(updated.metadata.annotations.is_some());
        assert_eq!(read(&config, &updated).service_port, Some(8080));
    }

    #[test]
    fn foreign_ingresses_are_not_managed() {
        let mut ingress = desired(&ClientConfig::default(), &want());
        ingress.metadata.labels = Some(BTreeMap::from([(
            MANAGED_BY_LABEL.to_owned(),
            "Helm".to_owned(),
        )]));
        assert!(!is_managed(&ingress));
        ingress.metadata.labels = None;
        assert!(!is_managed(&ingress));
    }

    #[test]
    fn a_rule_without_host_uses_the_configured_host() {
        let config = ClientConfig::default();
        let mut ingress = desired(&config, &want());
        if let Some(rules) = ingress.spec.as_mut().and_then(|s| s.rules.as_mut()) {
            rules[0].host = None;
        }
        let got = read(&config, &ingress);
        assert_eq!(got.host, "");
        assert_eq!(got.url, "http://localhost:30080/api/v1/predict/1");
    }
}
