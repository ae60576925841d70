//! A temporary manifests folder and builders for the Kubernetes objects the
//! gateway reads (as JSON, which is valid YAML).

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value, json};

/// A temporary folder of manifest files, deleted when dropped.
///
/// Writes are atomic (hidden temp file `.name.tmp` in the same folder, then
/// rename), so the gateway never reads a half-written file.
#[derive(Debug)]
pub struct ManifestDir {
    dir: tempfile::TempDir,
}

impl ManifestDir {
    /// Creates an empty temporary folder.
    ///
    /// Panics if it cannot be created.
    pub fn new() -> ManifestDir {
        let dir = tempfile::Builder::new()
            .prefix("edge-gateway-manifests-")
            .tempdir()
            .expect("create a temporary manifests folder");
        ManifestDir { dir }
    }

    /// The folder's path (pass it as `--manifests`).
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The path of file `name` in the folder.
    pub fn file(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Atomically creates or replaces file `name` with `yaml`.
    ///
    /// Panics on I/O errors.
    pub fn write(&self, name: &str, yaml: &str) {
        let temp = self.dir.path().join(format!(".{name}.tmp"));
        std::fs::write(&temp, yaml)
            .unwrap_or_else(|error| panic!("write {}: {error}", temp.display()));
        let target = self.file(name);
        std::fs::rename(&temp, &target)
            .unwrap_or_else(|error| panic!("rename to {}: {error}", target.display()));
    }

    /// Deletes file `name`.
    ///
    /// Panics on I/O errors (including a missing file).
    pub fn remove(&self, name: &str) {
        let target = self.file(name);
        std::fs::remove_file(&target)
            .unwrap_or_else(|error| panic!("remove {}: {error}", target.display()));
    }
}

impl Default for ManifestDir {
    fn default() -> ManifestDir {
        ManifestDir::new()
    }
}

fn pretty(value: &Value) -> String {
    serde_json::to_string_pretty(value).expect("serialize a manifest")
}

/// Joins documents into one multi-document YAML stream (`---` lines between
/// documents).
pub fn join_docs(docs: &[String]) -> String {
    let mut out = String::new();
    for (index, doc) in docs.iter().enumerate() {
        if index > 0 {
            out.push_str("---\n");
        }
        out.push_str(doc.trim_end());
        out.push('\n');
    }
    out
}

/// The IngressClass `nginx` with controller `k8s.io/ingress-nginx`.
pub fn ingress_class() -> String {
    pretty(&json!({
        "apiVersion": "networking.k8s.io/v1",
        "kind": "IngressClass",
        "metadata": { "name": "nginx" },
        "spec": { "controller": "k8s.io/ingress-nginx" },
    }))
}

/// A ClusterIP Service `ns/name` with one TCP port named `http`
/// (`port` → `target_port`).
pub fn service(ns: &str, name: &str, port: u16, target_port: u16) -> String {
    pretty(&json!({
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": { "name": name, "namespace": ns },
        "spec": {
            "type": "ClusterIP",
            "ports": [{
                "name": "http",
                "protocol": "TCP",
                "port": port,
                "targetPort": target_port,
            }],
        },
    }))
}

/// An IPv4 EndpointSlice `<service>-slice` for Service `ns/service`, with one
/// TCP port named `http` and one endpoint per address (`ready: None` omits
/// `conditions`).
pub fn endpoint_slice(
    ns: &str,
    service: &str,
    port: u16,
    endpoints: &[(IpAddr, Option<bool>)],
) -> String {
    endpoint_slice_named(ns, &format!("{service}-slice"), service, port, endpoints)
}

/// Like [`endpoint_slice`] but with an explicit slice name, for services
/// with several slices (e.g. endpoints on different ports).
pub fn endpoint_slice_named(
    ns: &str,
    name: &str,
    service: &str,
    port: u16,
    endpoints: &[(IpAddr, Option<bool>)],
) -> String {
    let endpoints: Vec<Value> = endpoints
        .iter()
        .map(|(ip, ready)| {
            let mut endpoint = Map::new();
            endpoint.insert("addresses".to_owned(), json!([ip.to_string()]));
            if let Some(ready) = ready {
                endpoint.insert("conditions".to_owned(), json!({ "ready": ready }));
            }
            Value::Object(endpoint)
        })
        .collect();
    pretty(&json!({
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {
            "name": name,
            "namespace": ns,
            "labels": { "kubernetes.io/service-name": service },
        },
        "addressType": "IPv4",
        "ports": [{ "name": "http", "protocol": "TCP", "port": port }],
        "endpoints": endpoints,
    }))
}

/// One `spec.rules[]` entry under construction.
#[derive(Debug, Clone)]
struct Rule {
    host: Option<String>,
    paths: Vec<Value>,
}

/// Builds a `networking.k8s.io/v1` Ingress.
///
/// `.host(h)` starts a new rule; `.path(..)` adds to the current rule (paths
/// before any host go to a host-less rule).
///
/// ```
/// let yaml = testkit::IngressBuilder::new("default", "web")
///     .class("nginx")
///     .host("a.com")
///     .path("/api", "Prefix", "api", 80)
///     .build();
/// assert!(yaml.contains("\"ingressClassName\": \"nginx\""));
/// ```
#[derive(Debug, Clone)]
pub struct IngressBuilder {
    ns: String,
    name: String,
    class: Option<String>,
    annotations: Map<String, Value>,
    creation_timestamp: Option<String>,
    rules: Vec<Rule>,
    default_backend: Option<Value>,
    tls: Vec<Value>,
}

/// A service backend reference with a numeric port.
fn service_backend(service: &str, port: u16) -> Value {
    json!({ "service": { "name": service, "port": { "number": port } } })
}

/// A service backend reference with a named port.
fn service_backend_named(service: &str, port_name: &str) -> Value {
    json!({ "service": { "name": service, "port": { "name": port_name } } })
}

impl IngressBuilder {
    /// Starts an Ingress `ns/name` with no class, rules or annotations.
    pub fn new(ns: &str, name: &str) -> IngressBuilder {
        IngressBuilder {
            ns: ns.to_owned(),
            name: name.to_owned(),
            class: None,
            annotations: Map::new(),
            creation_timestamp: None,
            rules: Vec::new(),
            default_backend: None,
            tls: Vec::new(),
        }
    }

    /// Sets `spec.ingressClassName`.
    pub fn class(mut self, class: &str) -> IngressBuilder {
        self.class = Some(class.to_owned());
        self
    }

    /// Adds (or replaces) annotation `key: value`.
    pub fn annotation(mut self, key: &str, value: &str) -> IngressBuilder {
        self.annotations
            .insert(key.to_owned(), Value::String(value.to_owned()));
        self
    }

    /// Sets `metadata.creationTimestamp` (RFC 3339, e.g. `2025-01-01T00:00:00Z`).
    pub fn creation_timestamp(mut self, timestamp: &str) -> IngressBuilder {
        self.creation_timestamp = Some(timestamp.to_owned());
        self
    }

    /// Starts a new rule for `host`.
    pub fn host(mut self, host: &str) -> IngressBuilder {
        self.rules.push(Rule {
            host: Some(host.to_owned()),
            paths: Vec::new(),
        });
        self
    }

    /// Adds a path to the current rule, backed by `service` port number `port`.
    /// `path_type` is `Prefix`, `Exact` or `ImplementationSpecific`; an empty
    /// `path` is omitted from the output.
    pub fn path(self, path: &str, path_type: &str, service: &str, port: u16) -> IngressBuilder {
        self.push_path(path, path_type, service_backend(service, port))
    }

    /// Like [`IngressBuilder::path`] but refers to the service port by name.
    pub fn path_port_name(
        self,
        path: &str,
        path_type: &str,
        service: &str,
        port_name: &str,
    ) -> IngressBuilder {
        self.push_path(path, path_type, service_backend_named(service, port_name))
    }

    fn push_path(mut self, path: &str, path_type: &str, backend: Value) -> IngressBuilder {
        let mut entry = Map::new();
        if !path.is_empty() {
            entry.insert("path".to_owned(), Value::String(path.to_owned()));
        }
        entry.insert("pathType".to_owned(), Value::String(path_type.to_owned()));
        entry.insert("backend".to_owned(), backend);
        if self.rules.is_empty() {
            self.rules.push(Rule {
                host: None,
                paths: Vec::new(),
            });
        }
        if let Some(rule) = self.rules.last_mut() {
            rule.paths.push(Value::Object(entry));
        }
        self
    }

    /// Sets `spec.defaultBackend` to `service` port number `port`.
    pub fn default_backend(mut self, service: &str, port: u16) -> IngressBuilder {
        self.default_backend = Some(service_backend(service, port));
        self
    }

    /// Adds a `spec.tls[]` entry for `hosts` with secret `secret_name`.
    pub fn tls(mut self, hosts: &[&str], secret_name: &str) -> IngressBuilder {
        self.tls
            .push(json!({ "hosts": hosts, "secretName": secret_name }));
        self
    }

    /// The Ingress as a JSON document (valid YAML).
    pub fn build(&self) -> String {
        pretty(&self.to_value())
    }

    /// The Ingress as a JSON value.
    pub fn to_value(&self) -> Value {
        let mut metadata = Map::new();
        metadata.insert("name".to_owned(), Value::String(self.name.clone()));
        metadata.insert("namespace".to_owned(), Value::String(self.ns.clone()));
        if let Some(timestamp) = &self.creation_timestamp {
            metadata.insert(
                "creationTimestamp".to_owned(),
                Value::String(timestamp.clone()),
            );
        }
        if !self.annotations.is_empty() {
            metadata.insert(
                "annotations".to_owned(),
                Value::Object(self.annotations.clone()),
            );
        }

        let mut spec = Map::new();
        if let Some(class) = &self.class {
            spec.insert("ingressClassName".to_owned(), Value::String(class.clone()));
        }
        if let Some(backend) = &self.default_backend {
            spec.insert("defaultBackend".to_owned(), backend.clone());
        }
        if !self.tls.is_empty() {
            spec.insert("tls".to_owned(), Value::Array(self.tls.clone()));
        }
        if !self.rules.is_empty() {
            let rules: Vec<Value> = self
                .rules
                .iter()
                .map(|rule| {
                    let mut out = Map::new();
                    if let Some(host) = &rule.host {
                        out.insert("host".to_owned(), Value::String(host.clone()));
                    }
                    if !rule.paths.is_empty() {
                        out.insert("http".to_owned(), json!({ "paths": rule.paths }));
                    }
                    Value::Object(out)
                })
                .collect();
            spec.insert("rules".to_owned(), Value::Array(rules));
        }

        json!({
            "apiVersion": "networking.k8s.io/v1",
            "kind": "Ingress",
            "metadata": metadata,
            "spec": spec,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(yaml: &str) -> Value {
        serde_json::from_str(yaml).expect("builders emit JSON")
    }

    #[test]
    fn ingress_class_fields() {
        let class = parse(&ingress_class());
        assert_eq!(class["apiVersion"], "networking.k8s.io/v1");
        assert_eq!(class["kind"], "IngressClass");
        assert_eq!(class["metadata"]["name"], "nginx");
        assert_eq!(class["spec"]["controller"], "k8s.io/ingress-nginx");
    }

    #[test]
    fn service_fields() {
        let svc = parse(&service("default", "api", 80, 8080));
        assert_eq!(svc["apiVersion"], "v1");
        assert_eq!(svc["kind"], "Service");
        assert_eq!(svc["metadata"]["name"], "api");
        assert_eq!(svc["metadata"]["namespace"], "default");
        let port = &svc["spec"]["ports"][0];
        assert_eq!(port["name"], "http");
        assert_eq!(port["port"], 80);
        assert_eq!(port["targetPort"], 8080);
    }

    #[test]
    fn endpoint_slice_fields() {
        let slice = parse(&endpoint_slice(
            "default",
            "api",
            8080,
            &[
                ("127.0.0.2".parse().unwrap(), Some(true)),
                ("127.0.0.3".parse().unwrap(), Some(false)),
                ("127.0.0.4".parse().unwrap(), None),
            ],
        ));
        assert_eq!(slice["apiVersion"], "discovery.k8s.io/v1");
        assert_eq!(slice["kind"], "EndpointSlice");
        assert_eq!(slice["metadata"]["name"], "api-slice");
        assert_eq!(slice["metadata"]["namespace"], "default");
        assert_eq!(
            slice["metadata"]["labels"]["kubernetes.io/service-name"],
            "api"
        );
        assert_eq!(slice["addressType"], "IPv4");
        assert_eq!(slice["ports"][0]["name"], "http");
        assert_eq!(slice["ports"][0]["port"], 8080);
        let endpoints = slice["endpoints"].as_array().unwrap();
        assert_eq!(endpoints.len(), 3);
        assert_eq!(endpoints[0]["addresses"][0], "127.0.0.2");
        assert_eq!(endpoints[0]["conditions"]["ready"], true);
        assert_eq!(endpoints[1]["conditions"]["ready"], false);
        assert!(endpoints[2].get("conditions").is_none());

        let named = parse(&endpoint_slice_named("ns", "api-b", "api", 1, &[]));
        assert_eq!(named["metadata"]["name"], "api-b");
        assert_eq!(
            named["metadata"]["labels"]["kubernetes.io/service-name"],
            "api"
        );
    }

    #[test]
    fn ingress_builder_rules() {
        let ingress = parse(
            &IngressBuilder::new("default", "web")
                .class("nginx")
                .annotation("nginx.ingress.kubernetes.io/rewrite-target", "/$1")
                .creation_timestamp("2025-01-01T00:00:00Z")
                .path("/any", "Prefix", "fallback", 80)
                .host("a.com")
                .path("/api", "Prefix", "api", 80)
                .path("/exact", "Exact", "api", 81)
                .host("b.com")
                .path_port_name("/", "Prefix", "b", "http")
                .default_backend("fallback", 8080)
                .tls(&["a.com"], "a-tls")
                .build(),
        );
        assert_eq!(ingress["apiVersion"], "networking.k8s.io/v1");
        assert_eq!(ingress["kind"], "Ingress");
        assert_eq!(ingress["metadata"]["name"], "web");
        assert_eq!(ingress["metadata"]["namespace"], "default");
        assert_eq!(
            ingress["metadata"]["creationTimestamp"],
            "2025-01-01T00:00:00Z"
        );
        assert_eq!(
            ingress["metadata"]["annotations"]["nginx.ingress.kubernetes.io/rewrite-target"],
            "/$1"
        );
        let spec = &ingress["spec"];
        assert_eq!(spec["ingressClassName"], "nginx");
        assert_eq!(spec["defaultBackend"]["service"]["name"], "fallback");
        assert_eq!(spec["defaultBackend"]["service"]["port"]["number"], 8080);
        assert_eq!(spec["tls"][0]["hosts"][0], "a.com");
        assert_eq!(spec["tls"][0]["secretName"], "a-tls");

        let rules = spec["rules"].as_array().unwrap();
        assert_eq!(rules.len(), 3);
        assert!(rules[0].get("host").is_none());
        assert_eq!(rules[0]["http"]["paths"][0]["path"], "/any");
        assert_eq!(rules[1]["host"], "a.com");
        let paths = rules[1]["http"]["paths"].as_array().unwrap();
        assert_eq!(paths.len(), 2);
        assert_eq!(paths[0]["path"], "/api");
        assert_eq!(paths[0]["pathType"], "Prefix");
        assert_eq!(paths[0]["backend"]["service"]["name"], "api");
        assert_eq!(paths[0]["backend"]["service"]["port"]["number"], 80);
        assert_eq!(paths[1]["pathType"], "Exact");
        assert_eq!(paths[1]["backend"]["service"]["port"]["number"], 81);
        assert_eq!(rules[2]["host"], "b.com");
        assert_eq!(
            rules[2]["http"]["paths"][0]["backend"]["service"]["port"]["name"],
            "http"
        );
    }

    #[test]
    fn minimal_ingress_has_no_optional_fields() {
        let ingress = parse(
            &IngressBuilder::new("ns", "only-default")
                .annotation("kubernetes.io/ingress.class", "nginx")
                .default_backend("svc", 80)
                .build(),
        );
        let spec = ingress["spec"].as_object().unwrap();
        assert!(!spec.contains_key("ingressClassName"));
        assert!(!spec.contains_key("rules"));
        assert!(ingress["metadata"].get("creationTimestamp").is_none());
        assert_eq!(
            ingress["metadata"]["annotations"]["kubernetes.io/ingress.class"],
            "nginx"
        );
    }

    #[test]
    fn join_docs_separates_documents() {
        let joined = join_docs(&[ingress_class(), service("a", "b", 1, 2)]);
        let docs: Vec<Value> = joined.split("\n---\n").map(parse).collect();
        assert_eq!(docs.len(), 2);
        assert_eq!(docs[0]["kind"], "IngressClass");
        assert_eq!(docs[1]["kind"], "Service");
        assert_eq!(join_docs(&[]), "");
    }

    #[test]
    fn manifest_dir_writes_atomically_and_removes() {
        let dir = ManifestDir::new();
        dir.write("a.yaml", "first");
        dir.write("a.yaml", "second");
        assert_eq!(
            std::fs::read_to_string(dir.file("a.yaml")).unwrap(),
            "second"
        );
        let names: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["a.yaml"], "no temp file left behind");
        dir.remove("a.yaml");
        assert!(!dir.file("a.yaml").exists());
        let path = dir.path().to_owned();
        drop(dir);
        assert!(!path.exists());
    }
}
