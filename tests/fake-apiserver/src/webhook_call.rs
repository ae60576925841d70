//! One admission webhook call: where (`clientConfig.url`, or
//! `clientConfig.service` resolved through the Service's ready
//! EndpointSlice addresses, with the TLS name `<service>.<namespace>.svc`
//! kube-apiserver verifies), the AdmissionReview v1 request, HTTPS with the
//! webhook's `caBundle` as the only trusted roots, one deadline for the
//! whole exchange, a bounded answer, and the checks on the AdmissionReview
//! that comes back. Errors are worded as kube-apiserver words them after
//! `failed calling webhook "<name>": `.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::rt::TokioIo;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, ServerName};
use serde_json::{Value, json};
use tokio::net::TcpStream;

use crate::admission::Attributes;
use crate::reviews::{GROUPS, USER};
use crate::store::{Key, Store};

/// The largest AdmissionReview answer read.
const MAX_RESPONSE: usize = 3 << 20;

/// Where a webhook is called.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    /// The URL as kube-apiserver prints it in errors (before `?timeout=`).
    url: String,
    /// The address to connect to.
    addr: Addr,
    /// The TLS server name.
    server_name: String,
    /// Path and query of the request.
    path: String,
    /// PEM roots from `caBundle`.
    ca_bundle: Vec<u8>,
}

#[derive(Debug, Clone)]
enum Addr {
    /// A resolved address (service endpoints).
    Socket(SocketAddr),
    /// host:port, resolved at call time (a `url`).
    Host(String),
}

fn text<'a>(v: &'a Value, pointer: &str) -> &'a str {
    v.pointer(pointer).and_then(Value::as_str).unwrap_or("")
}

impl Target {
    /// Where to call a webhook, from its `clientConfig` (services are
    /// resolved through their EndpointSlices in `store`).
    pub(crate) fn resolve(store: &Store, webhook: &Value) -> Result<Self, String> {
        let config = webhook
            .get("clientConfig")
            .cloned()
            .unwrap_or_else(|| json!({}));
        let ca_bundle = base64::engine::general_purpose::STANDARD
            .decode(text(&config, "/caBundle"))
            .map_err(|e| format!("invalid caBundle: {e}"))?;
        if let Some(url) = config.get("url").and_then(Value::as_str) {
            let rest = url
                .strip_prefix("https://")
                .ok_or_else(|| format!("webhook URL {url:?} must use the https scheme"))?;
            let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
            let host = authority
                .rsplit_once(':')
                .filter(|(_, port)| port.parse::<u16>().is_ok())
                .map_or(authority, |(h, _)| h);
            let with_port = if host.len() == authority.len() {
                format!("{authority}:443")
            } else {
                authority.to_owned()
            };
            return Ok(Self {
                url: url.to_owned(),
                addr: Addr::Host(with_port),
                server_name: host
                    .trim_start_matches('[')
                    .trim_end_matches(']')
                    .to_owned(),
                path: if path.is_empty() {
                    "/".to_owned()
                } else {
                    path.to_owned()
                },
                ca_bundle,
            });
        }
        let service = config
            .get("service")
            .ok_or("the webhook has neither clientConfig.url nor clientConfig.service")?;
        let (ns, name) = (text(service, "/namespace"), text(service, "/name"));
        let port = service.get("port").and_then(Value::as_u64).unwrap_or(443);
        let path = match text(service, "/path") {
            "" => "/",
            p => p,
        };
        let url = format!("https://{name}.{ns}.svc:{port}{path}");
        let addr = service_endpoint(store, ns, name, port)?;
        Ok(Self {
            url,
            addr: Addr::Socket(addr),
            server_name: format!("{name}.{ns}.svc"),
            path: path.to_owned(),
            ca_bundle,
        })
    }
}

/// A ready endpoint address of a Service port, from its EndpointSlices.
fn service_endpoint(store: &Store, ns: &str, name: &str, port: u64) -> Result<SocketAddr, String> {
    let svc_key = Key {
        res: Arc::from("/services"),
        ns: ns.to_owned(),
        name: name.to_owned(),
    };
    let svc = store
        .get(&svc_key)
        .ok_or_else(|| format!("service \"{name}\" not found"))?;
    let svc_port = svc
        .pointer("/spec/ports")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .find(|p| p.get("port").and_then(Value::as_u64) == Some(port))
        .ok_or_else(|| format!("service \"{name}\" has no port {port}"))?;
    let port_name = text(svc_port, "/name");
    let slices: Arc<str> = Arc::from("discovery.k8s.io/endpointslices");
    for (_, slice) in store.range(&slices, Some(ns), None) {
        let owner = slice
            .pointer("/metadata/labels/kubernetes.io~1service-name")
            .and_then(Value::as_str);
        if owner != Some(name) {
            continue;
        }
        let target = slice
            .get("ports")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .find(|p| text(p, "/name") == port_name)
            .and_then(|p| p.get("port").and_then(Value::as_u64))
            .and_then(|p| u16::try_from(p).ok());
        let ready = slice
            .get("endpoints")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter(|e| e.pointer("/conditions/ready") != Some(&json!(false)))
            .flat_map(|e| {
                e.get("addresses")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
            })
            .filter_map(|a| a.as_str()?.parse::<std::net::IpAddr>().ok())
            .next();
        if let (Some(ip), Some(port)) = (ready, target) {
            return Ok(SocketAddr::new(ip, port));
        }
    }
    Err(format!("no endpoints available for service \"{name}\""))
}

/// The AdmissionReview v1 request for a write.
fn review(attrs: &Attributes<'_>, object: &Value) -> Value {
    let rt = attrs.rt;
    let kind = json!({"group": rt.group, "version": rt.version, "kind": rt.kind});
    let resource = json!({"group": rt.group, "version": rt.version, "resource": rt.plural});
    let mut request = json!({
        "uid": crate::objects::new_uid(),
        "kind": kind, "resource": resource,
        "requestKind": kind, "requestResource": resource,
        "name": attrs.name,
        "operation": attrs.operation.as_str(),
        "userInfo": {"username": USER, "groups": GROUPS},
        "object": object,
        "oldObject": attrs.old,
        "dryRun": attrs.dry_run,
        "options": {"kind": attrs.operation.options_kind(), "apiVersion": "meta.k8s.io/v1"},
    });
    if let Value::Object(m) = &mut request {
        if attrs.status {
            m.insert("subResource".to_owned(), json!("status"));
            m.insert("requestSubResource".to_owned(), json!("status"));
        }
        if !attrs.namespace.is_empty() {
            m.insert("namespace".to_owned(), json!(attrs.namespace));
        }
    }
    json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": request})
}

/// Calls a webhook; returns the AdmissionReview's `response`.
pub(crate) async fn call(
    target: &Target,
    attrs: &Attributes<'_>,
    object: &Value,
    webhook: &Value,
    timeout: Duration,
) -> Result<Value, String> {
    let versions: Vec<&str> = webhook
        .get("admissionReviewVersions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    if !versions.contains(&"v1") {
        return Err(format!(
            "webhook does not accept v1 AdmissionReview (admissionReviewVersions: {versions:?})"
        ));
    }
    let request = review(attrs, object);
    let uid = text(&request, "/request/uid").to_owned();
    let secs = timeout.as_secs();
    let post = format!("Post \"{}?timeout={secs}s\"", target.url);
    let path = format!("{}?timeout={secs}s", target.path);
    let exchange = exchange(target, &path, &request);
    let body = match tokio::time::timeout(timeout, exchange).await {
        Ok(Ok(body)) => body,
        Ok(Err(e)) => return Err(format!("failed to call webhook: {post}: {e}")),
        Err(_) => {
            return Err(format!(
                "failed to call webhook: {post}: context deadline exceeded"
            ));
        }
    };
    let answer: Value = serde_json::from_slice(&body)
        .map_err(|e| format!("received invalid webhook response: {e}"))?;
    let response = answer
        .get("response")
        .filter(|r| r.is_object())
        .ok_or("received invalid webhook response: the response is missing")?;
    if text(response, "/uid") != uid {
        return Err(format!(
            "received invalid webhook response: expected response.uid={uid:?}, got {:?}",
            text(response, "/uid")
        ));
    }
    Ok(response.clone())
}

/// TCP, TLS and one HTTP/1.1 POST; the answer's body (2xx only).
async fn exchange(target: &Target, path_and_query: &str, request: &Value) -> Result<Bytes, String> {
    let stream = match &target.addr {
        Addr::Socket(a) => TcpStream::connect(a).await,
        Addr::Host(h) => TcpStream::connect(h.as_str()).await,
    }
    .map_err(|e| format!("dial tcp {}: {e}", display_addr(&target.addr)))?;
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(&target.ca_bundle) {
        let cert = cert.map_err(|e| format!("invalid caBundle: {e}"))?;
        roots
            .add(cert)
            .map_err(|e| format!("invalid caBundle: {e}"))?;
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    let name = ServerName::try_from(target.server_name.clone()).map_err(|e| e.to_string())?;
    let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(name, stream)
        .await
        .map_err(|e| format!("tls: {e}"))?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
        .await
        .map_err(|e| e.to_string())?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    let body = serde_json::to_vec(request).map_err(|e| e.to_string())?;
    let req = http::Request::post(path_and_query)
        .header(http::header::HOST, target.server_name.as_str())
        .header(http::header::CONTENT_TYPE, "application/json")
        .header(http::header::ACCEPT, "application/json")
        .body(Full::new(Bytes::from(body)))
        .map_err(|e| e.to_string())?;
    let resp = sender.send_request(req).await.map_err(|e| e.to_string())?;
    let status = resp.status();
    let bytes = Limited::new(resp.into_body(), MAX_RESPONSE)
        .collect()
        .await
        .map_err(|e| format!("reading the answer: {e}"))?
        .to_bytes();
    if !status.is_success() {
        return Err(format!(
            "the server responded with the status code {} but did not return more information",
            status.as_u16()
        ));
    }
    Ok(bytes)
}

fn display_addr(a: &Addr) -> String {
    match a {
        Addr::Socket(s) => s.to_string(),
        Addr::Host(h) => h.clone(),
    }
}
