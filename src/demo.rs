//! The demo: the gateway on the bundled `examples/manifests` folder, with a
//! demo model server started on every endpoint the `model-serving-<id>`
//! Services list, so that the whole main job runs on one machine.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use controller::Snapshot;
use controller::compile::{PortRef, resolve};
use controller::manifests::ManifestDir;
use controller::reconcile::Change;
use demo_model::{ModelInfo, ModelServer};

use crate::cli::ServeArgs;
use crate::serve::{self, ServeError};

/// The Service name prefix the model-serving chart uses.
const MODEL_SERVICE_PREFIX: &str = "model-serving-";

/// Starts the demo models, then serves.
pub(crate) async fn run(mut args: ServeArgs) -> Result<(), ServeError> {
    let dir = args.manifests.get_or_insert_with(default_folder).clone();
    if !dir.is_dir() {
        return Err(ServeError::ManifestsNotAFolder(dir));
    }
    let mut started = Vec::new();
    for (addr, id) in model_endpoints(&dir) {
        match ModelServer::bind(addr, ModelInfo { id: id.clone() }).await {
            Ok(server) => {
                started.push(format!("model {id} at {addr}"));
                tokio::spawn(server.run());
            }
            Err(error) => tracing::warn!(%addr, model = %id, %error, "demo model not started"),
        }
    }
    tracing::info!(models = ?started, "demo models started");
    println!(
        "demo: {} model replica(s); try  curl http://localhost:{}/api/v1/predict/1/health",
        started.len(),
        args.http_port
    );
    serve::run(args).await
}

/// `examples/manifests` in the working directory, else in the source tree
/// this binary was built from.
fn default_folder() -> PathBuf {
    let local = PathBuf::from("examples/manifests");
    if local.is_dir() {
        return local;
    }
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/manifests")
}

/// Every ready endpoint of every `model-serving-<id>` Service port in the
/// folder, with the model id.
fn model_endpoints(dir: &Path) -> Vec<(SocketAddr, String)> {
    let mut snapshot = Snapshot::default();
    for change in ManifestDir::new(dir).scan() {
        if let Change::Apply(object) = change {
            snapshot.apply(object);
        }
    }
    let mut endpoints = Vec::new();
    for (id, service) in snapshot.services() {
        let Some(model) = id.name.strip_prefix(MODEL_SERVICE_PREFIX) else {
            continue;
        };
        let ports = service.spec.as_ref().and_then(|s| s.ports.as_ref());
        for port in ports.into_iter().flatten() {
            let resolved = resolve(&snapshot, id, &PortRef::Number(port.port));
            for addr in resolved.update.addrs {
                endpoints.push((addr, model.to_owned()));
            }
        }
    }
    endpoints.sort();
    endpoints.dedup();
    endpoints
}
