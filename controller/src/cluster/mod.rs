//! The Kubernetes API source and the controller's writes back to the
//! cluster: watchers for every kind (feeding the same reconciler as the
//! manifests folder), leader election, the Ingress status writer, and
//! Events for diagnostics.
//!
//! What the controller reads and writes, and so the RBAC it needs, is
//! written down in `docs/rbac.md`.

mod events;
mod leader;
mod list;
mod status;
mod watch;

use std::path::Path;
use std::sync::Arc;
use std::sync::mpsc::Sender;
use std::time::Duration;

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{ConfigMap, Secret, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::api::networking::v1::{Ingress, IngressClass};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::runtime::events::Reporter;
use kube::runtime::watcher;
use kube::{Api, Client, Config};
use tokio::sync::watch as channel;
use tokio::task::JoinHandle;

pub use leader::{Election, Leadership};
pub use list::list_once;
pub use status::StatusOptions;

use crate::objects::{Kind, NsName};
use crate::reconcile::{Report, SourceUpdate};

/// The pod this controller runs in (`POD_NAME`, `POD_NAMESPACE`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PodIdentity {
    /// The pod's name: the leader election holder identity.
    pub name: String,
    /// The pod's namespace: where the Lease lives.
    pub namespace: String,
}

/// What to watch and how to write back, from the command line.
#[derive(Clone, Debug)]
pub struct ClusterOptions {
    /// `--watch-namespace`: watch namespaced kinds in this namespace only.
    pub watch_namespace: Option<String>,
    /// `--configmap ns/name`: the controller's ConfigMap.
    pub configmap: Option<NsName>,
    /// Other ConfigMaps named on the command line
    /// (`--tcp-services-configmap`, `--udp-services-configmap`).
    pub other_configmaps: Vec<NsName>,
    /// `--update-status`: write Ingress status at all.
    pub update_status: bool,
    /// Where status addresses come from.
    pub status: StatusOptions,
    /// The Lease name (`--election-id`) and TTL (`--election-ttl`).
    pub election_id: String,
    /// How long a leader's Lease lasts without renewal.
    pub election_ttl: Duration,
    /// The pod this replica runs in, if known.
    pub pod: Option<PodIdentity>,
}

/// Why the cluster could not be reached or written.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// No usable kubeconfig or in-cluster configuration.
    #[error("no Kubernetes configuration: {0}")]
    Config(String),
    /// The API server answered with an error or could not be reached.
    #[error("Kubernetes API: {0}")]
    Api(#[source] kube::Error),
    /// An API call took too long.
    #[error("timed out {0}")]
    Timeout(&'static str),
    /// An object the configuration names does not exist.
    #[error("{0} not found")]
    NotFound(String),
    /// No address to publish in Ingress status could be found.
    #[error(
        "no address to publish: set --publish-service or --publish-status-address, or POD_NAME/POD_NAMESPACE"
    )]
    NoAddress,
}

/// The field selectors of the Secrets read, one watcher each: TLS Secrets
/// (certificates) and Opaque ones (`auth-secret` htpasswd files, CA
/// bundles). A cluster's Secrets are mostly other things (Helm releases,
/// service-account tokens, registry credentials), some large, none of them
/// ours to hold; a type cannot change after creation, so the two sets never
/// overlap.
const SECRET_TYPES: [&str; 2] = ["type=kubernetes.io/tls", "type=Opaque"];

/// A client for the API server: from `kubeconfig` if given, else inferred
/// (`KUBECONFIG`, `~/.kube/config`, or the in-cluster service account).
pub async fn connect(kubeconfig: Option<&Path>) -> Result<Client, ClusterError> {
    let config = match kubeconfig {
        Some(path) => {
            let file = Kubeconfig::read_from(path)
                .map_err(|e| ClusterError::Config(format!("{}: {e}", path.display())))?;
            Config::from_custom_kubeconfig(file, &KubeConfigOptions::default())
                .await
                .map_err(|e| ClusterError::Config(format!("{}: {e}", path.display())))?
        }
        None => Config::infer()
            .await
            .map_err(|e| ClusterError::Config(e.to_string()))?,
    };
    Client::try_from(config).map_err(ClusterError::Api)
}

/// Starts one watcher per kind. Returns how many sources the reconciler
/// must hear a full list from before it is ready.
pub fn watch(client: &Client, options: &ClusterOptions, updates: &Sender<SourceUpdate>) -> usize {
    let ns = options.watch_namespace.as_deref();
    let config = watcher::Config::default;
    watch::spawn(
        Kind::Ingress,
        scoped::<Ingress>(client, ns),
        config(),
        updates.clone(),
    );
    watch::spawn(
        Kind::IngressClass,
        Api::<IngressClass>::all(client.clone()),
        config(),
        updates.clone(),
    );
    watch::spawn(
        Kind::Service,
        scoped::<Service>(client, ns),
        config(),
        updates.clone(),
    );
    watch::spawn(
        Kind::EndpointSlice,
        scoped::<EndpointSlice>(client, ns),
        config(),
        updates.clone(),
    );
    for secret_type in SECRET_TYPES {
        watch::spawn(
            Kind::Secret,
            scoped::<Secret>(client, ns),
            config().fields(secret_type),
            updates.clone(),
        );
    }
    let mut sources = 4 + SECRET_TYPES.len();
    // ConfigMaps: the controller's, those its `proxy-set-headers` and
    // `add-headers` name, the TCP/UDP services and the `custom-headers` of
    // Ingresses, which may be in any watched namespace: every ConfigMap
    // the Ingress scope covers (as ingress-nginx's ClusterRole allows),
    // plus the namespaces the command line names outside it. The compile
    // reads only those named.
    match ns {
        None => {
            let api = Api::<ConfigMap>::all(client.clone());
            watch::spawn(Kind::ConfigMap, api, config(), updates.clone());
            sources += 1;
        }
        Some(ns) => {
            let mut namespaces = vec![ns];
            let named = options.configmap.iter().chain(&options.other_configmaps);
            for id in named {
                if !namespaces.contains(&id.namespace.as_str()) {
                    namespaces.push(&id.namespace);
                }
            }
            for namespace in namespaces {
                let api = Api::<ConfigMap>::namespaced(client.clone(), namespace);
                watch::spawn(Kind::ConfigMap, api, config(), updates.clone());
                sources += 1;
            }
        }
    }
    sources
}

fn scoped<K>(client: &Client, namespace: Option<&str>) -> Api<K>
where
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>,
    K::DynamicType: Default,
{
    match namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    }
}

/// The tasks that write to the cluster: leader election, the status writer
/// and the event recorder.
#[derive(Debug)]
pub struct Control {
    stop: channel::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
    leading: Leadership,
}

impl Control {
    /// Starts them. `reports` comes from the reconciler.
    pub fn start(
        client: &Client,
        options: &ClusterOptions,
        reports: channel::Receiver<Arc<Report>>,
    ) -> Control {
        let (stop, stopped) = channel::channel(false);
        let (leading_tx, leading) = channel::channel(false);
        let (holder, lease_namespace) = match &options.pod {
            Some(pod) => (pod.name.clone(), pod.namespace.clone()),
            None => {
                let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "edge-gateway".to_owned());
                tracing::warn!(holder = %host, "POD_NAME/POD_NAMESPACE not set; electing in namespace default");
                (host, "default".to_owned())
            }
        };
        let election = Election {
            lease: options.election_id.clone(),
            holder: holder.clone(),
            ttl: options.election_ttl,
        };
        let leases: Api<Lease> = Api::namespaced(client.clone(), &lease_namespace);
        let mut tasks = vec![tokio::spawn(leader::run(
            leases,
            election,
            leading_tx,
            stopped.clone(),
        ))];
        if options.update_status {
            tasks.push(tokio::spawn(status::run(
                client.clone(),
                options.status.clone(),
                options.pod.clone(),
                leading.clone(),
                reports.clone(),
                stopped.clone(),
            )));
        }
        let reporter = Reporter {
            controller: "edge-gateway".to_owned(),
            instance: Some(holder),
        };
        tasks.push(tokio::spawn(events::run(
            client.clone(),
            reporter,
            reports,
            stopped,
        )));
        Control {
            stop,
            tasks,
            leading,
        }
    }

    /// Whether this replica leads now.
    pub fn leading(&self) -> Leadership {
        self.leading.clone()
    }

    /// Stops the tasks: the status writer clears status if asked to and the
    /// Lease is released, within `deadline`.
    pub async fn shutdown(self, deadline: Duration) {
        self.stop.send_replace(true);
        let all = futures::future::join_all(self.tasks);
        if tokio::time::timeout(deadline, all).await.is_err() {
            tracing::warn!("cluster writers did not stop in time");
        }
    }
}
