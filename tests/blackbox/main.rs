//! Black-box tests: the real `edge-gateway` binary on a temporary manifests
//! folder, with echo backends on 127.0.0.x, driven over real sockets.
//!
//! One test binary with a module per area, so that it links once.

mod access_log;
mod admission;
mod affinity;
mod annotations;
mod backends;
mod bounds;
mod canary;
mod certgen;
mod check;
mod client_certs;
mod cluster;
mod compression;
mod config_map;
mod control_plane;
mod custom_errors;
mod default_backend;
mod fail_closed;
mod flags;
mod forwarded;
mod gateway_api;
mod global_limits;
mod inference;
mod inference_pool;
mod limits;
mod listener;
mod live;
mod metrics;
mod mirror;
mod model_routing;
mod ocsp;
mod otel;
mod passthrough;
mod platform;
mod process;
mod prometheus;
mod protocols;
mod proxy_protocol;
mod reload;
mod response_rules;
mod routing;
mod streaming;
mod streams;
mod tenancy;
mod tls;
mod traffic;
mod webhook;

use std::net::IpAddr;

use testkit::{
    EchoBackend, Gateway, ManifestDir, endpoint_slice, ingress_class, join_docs, service,
};

/// The binary under test.
const BIN: &str = env!("CARGO_BIN_EXE_edge-gateway");

/// A started gateway and the folder it serves; dropping stops both.
struct Setup {
    dir: ManifestDir,
    gateway: Gateway,
}

impl Setup {
    /// A gateway serving the IngressClass `nginx` plus `docs`, ready.
    async fn start(docs: &[String]) -> Setup {
        Setup::start_with(docs, &[]).await
    }

    /// Like [`Setup::start`] with extra command-line arguments.
    async fn start_with(docs: &[String], args: &[&str]) -> Setup {
        let dir = ManifestDir::new();
        dir.write("class.yaml", &ingress_class());
        if !docs.is_empty() {
            dir.write("objects.yaml", &join_docs(docs));
        }
        let gateway = Gateway::start(BIN, dir.path(), args).await;
        gateway.wait_ready().await;
        Setup { dir, gateway }
    }

    fn http(&self) -> std::net::SocketAddr {
        self.gateway.http_addr()
    }
}

/// A Service `ns/name` (port 80) and its EndpointSlice listing `backends`,
/// which must share one port (see `EchoBackend::start_group`); all ready.
fn service_for(ns: &str, name: &str, backends: &[&EchoBackend]) -> Vec<String> {
    let port = backends.first().map_or(8080, |b| b.addr().port());
    let endpoints: Vec<(IpAddr, Option<bool>)> = backends
        .iter()
        .map(|b| (b.addr().ip(), Some(true)))
        .collect();
    vec![
        service(ns, name, 80, port),
        endpoint_slice(ns, name, port, &endpoints),
    ]
}

/// The `backend` field of an echo backend's JSON answer: who answered.
fn answered_by(response: &testkit::TestResponse) -> String {
    response.json()["backend"].as_str().unwrap_or("").to_owned()
}
