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
    /// `--update-status`: write Ingress status at all.
    pub update_status: bool,
    /// Where status addresses come from.
    pub status: StatusOptions,
    /// The Lease name (`--election-id`) and TTL (`--election-ttl`).
    pub election_id: String,
    /// How long a leader's Lease lasts without renewal.
    pub election_ttl: Duration,
    /// Elect a leader; when false (`--disable-leader-election`) every
    /// replica leads: no Lease, each writes status.
    pub leader_election: bool,
    /// The pod this replica runs in, if known.
    pub pod: Option<PodIdentity>,
    /// How long one API call may take (`--api-call-timeout`): leader
    /// election, status writes, Events, and each page of a watcher's list.
    pub api_call_timeout: Duration,
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
    let timeout = options.api_call_timeout;
    watch::spawn(
        Kind::Ingress,
        scoped::<Ingress>(client, ns),
        config(),
        timeout,
        updates.clone(),
    );
    watch::spawn(
        Kind::IngressClass,
        Api::<IngressClass>::all(client.clone()),
        config(),
        timeout,
        updates.clone(),
    );
    watch::spawn(
        Kind::Service,
        scoped::<Service>(client, ns),
        config(),
        timeout,
        updates.clone(),
    );
    watch::spawn(
        Kind::EndpointSlice,
        scoped::<EndpointSlice>(client, ns),
        config(),
        timeout,
        updates.clone(),
    );
    for secret_type in SECRET_TYPES {
        watch::spawn(
            Kind::Secret,
            scoped::<Secret>(client, ns),
            config().fields(secret_type),
            timeout,
            updates.clone(),
        );
    }
    let mut sources = 4 + SECRET_TYPES.len();
    // The controller ConfigMap and those its `proxy-set-headers` and
    // `add-headers` name: every ConfigMap of its namespace, as
    // ingress-nginx's Role allows; the compile reads only those named.
    if let Some(id) = &options.configmap {
        let api = Api::<ConfigMap>::namespaced(client.clone(), &id.namespace);
        watch::spawn(Kind::ConfigMap, api, config(), timeout, updates.clone());
        sources += 1;
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
    stop_writers: channel::Sender<bool>,
    writers: Vec<JoinHandle<()>>,
    stop_election: channel::Sender<bool>,
    election: JoinHandle<()>,
    leading: Leadership,
}

impl Control {
    /// Starts them. `reports` comes from the reconciler.
    pub fn start(
        client: &Client,
        options: &ClusterOptions,
        reports: channel::Receiver<Arc<Report>>,
    ) -> Control {
        let (stop_writers, writers_stopped) = channel::channel(false);
        let (stop_election, election_stopped) = channel::channel(false);
        let (leading_tx, leading) = channel::channel(!options.leader_election);
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
            call_timeout: options.api_call_timeout,
        };
        let leases: Api<Lease> = Api::namespaced(client.clone(), &lease_namespace);
        let election = if options.leader_election {
            tokio::spawn(leader::run(leases, election, leading_tx, election_stopped))
        } else {
            // Every replica leads. The sender stays open until stop: a
            // closed channel would wake the status writer in a loop.
            let mut stop = election_stopped;
            tokio::spawn(async move {
                let _leading = leading_tx;
                let _ = stop.wait_for(|s| *s).await;
            })
        };
        let mut writers = Vec::new();
        if options.update_status {
            let status = StatusOptions {
                call_timeout: options.api_call_timeout,
                ..options.status.clone()
            };
            writers.push(tokio::spawn(status::run(
                client.clone(),
                status,
                options.pod.clone(),
                leading.clone(),
                reports.clone(),
                writers_stopped.clone(),
            )));
        }
        let reporter = Reporter {
            controller: "edge-gateway".to_owned(),
            instance: Some(holder),
        };
        writers.push(tokio::spawn(events::run(
            client.clone(),
            reporter,
            options.api_call_timeout,
            reports,
            writers_stopped,
        )));
        Control {
            stop_writers,
            writers,
            stop_election,
            election,
            leading,
        }
    }

    /// Whether this replica leads now.
    pub fn leading(&self) -> Leadership {
        self.leading.clone()
    }

    /// Stops the tasks within `deadline`: first the writers (the status
    /// writer clears status if asked to, while this replica still leads),
    /// then the election, which releases the Lease.
    pub async fn shutdown(self, deadline: Duration) {
        let end = tokio::time::Instant::now() + deadline;
        self.stop_writers.send_replace(true);
        let writers = futures::future::join_all(self.writers);
        if tokio::time::timeout_at(end, writers).await.is_err() {
            tracing::warn!("cluster writers did not stop in time");
        }
        self.stop_election.send_replace(true);
        if tokio::time::timeout_at(end, self.election).await.is_err() {
            tracing::warn!("leader election did not stop in time");
        }
    }
}
