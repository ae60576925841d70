//! The Kubernetes API source and the controller's writes back to the
//! cluster: watchers for every kind (feeding the same reconciler as the
//! manifests folder), leader election, the Ingress status writer, and
//! Events for diagnostics.
//!
//! What the controller reads and writes, and so the RBAC it needs, is
//! written down in `docs/rbac.md`.

mod events;
pub mod gateway_api;
mod leader;
mod list;
mod status;
mod watch;

use std::path::Path;
use std::sync::Arc;
use std::sync::mpsc::Sender;
use std::time::Duration;

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Secret, Service};
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
pub(crate) use status::published_addresses;

use crate::objects::{Kind, NsName};
use crate::reconcile::{Report, SourceUpdate};
use crate::selector::LabelSelector;

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
    /// `--watch-namespace-selector`: also watch the Namespaces it selects
    /// (their labels decide which Ingresses are served).
    pub namespace_selector: Option<LabelSelector>,
    /// `--sync-period`: list every kind again this often.
    pub sync_period: Option<Duration>,
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
    /// Elect a leader; when false (`--disable-leader-election`) every
    /// replica leads: no Lease, each writes status.
    pub leader_election: bool,
    /// The pod this replica runs in, if known.
    pub pod: Option<PodIdentity>,
    /// How long one API call may take (`--api-call-timeout`): leader
    /// election, status writes, Events, and each page of a watcher's list.
    pub api_call_timeout: Duration,
    /// The leader election identity without a pod identity (the host name).
    pub fallback_holder: String,
    /// `--enable-gateway-api`: the Gateway API kinds installed (see
    /// [`gateway_api`]); `None`: off.
    pub gateway_api: Option<gateway_api::Installed>,
}

pub use crate::cluster_error::ClusterError;

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
    connect_to(&ApiServer {
        kubeconfig,
        ..ApiServer::default()
    })
    .await
}

/// Where the API server is, from the command line.
#[derive(Clone, Copy, Debug, Default)]
pub struct ApiServer<'a> {
    /// `--kubeconfig`.
    pub kubeconfig: Option<&'a Path>,
    /// `--apiserver-host`: this URL instead of the configuration's, with
    /// its credentials (none when there is no configuration).
    pub host: Option<&'a str>,
    /// `--certificate-authority`: CA certificates (PEM) trusted for `host`.
    pub certificate_authority: Option<&'a Path>,
}

/// A client for the API server described by `server`, as ingress-nginx's
/// `createApiserverClient`.
pub async fn connect_to(server: &ApiServer<'_>) -> Result<Client, ClusterError> {
    let mut config = match (server.kubeconfig, server.host) {
        (Some(path), _) => {
            let file = Kubeconfig::read_from(path)
                .map_err(|e| ClusterError::Config(format!("{}: {e}", path.display())))?;
            Config::from_custom_kubeconfig(file, &KubeConfigOptions::default())
                .await
                .map_err(|e| ClusterError::Config(format!("{}: {e}", path.display())))?
        }
        (None, None) => Config::infer()
            .await
            .map_err(|e| ClusterError::Config(e.to_string()))?,
        (None, Some(host)) => match Config::infer().await {
            Ok(config) => config,
            Err(_) => Config::new(api_url(host)?),
        },
    };
    if let Some(host) = server.host {
        config.cluster_url = api_url(host)?;
        if let Some(path) = server.certificate_authority {
            config.root_cert = Some(ca_certificates(path)?);
        }
    }
    Client::try_from(config).map_err(ClusterError::Api)
}

fn api_url(host: &str) -> Result<http::Uri, ClusterError> {
    host.parse()
        .map_err(|e| ClusterError::Config(format!("--apiserver-host {host:?}: {e}")))
}

/// The DER certificates of a PEM file.
fn ca_certificates(path: &Path) -> Result<Vec<Vec<u8>>, ClusterError> {
    let fail = |e: String| {
        ClusterError::Config(format!("--certificate-authority {}: {e}", path.display()))
    };
    let pem = std::fs::read(path).map_err(|e| fail(e.to_string()))?;
    let certs = pem_certificates(&pem).map_err(fail)?;
    if certs.is_empty() {
        return Err(fail("no certificate found".to_owned()));
    }
    Ok(certs)
}

/// The `CERTIFICATE` blocks of a PEM text, decoded.
fn pem_certificates(pem: &[u8]) -> Result<Vec<Vec<u8>>, String> {
    use base64::Engine as _;
    let text = std::str::from_utf8(pem).map_err(|_| "not PEM text".to_owned())?;
    let mut certs = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("-----BEGIN CERTIFICATE-----") {
        let body = &rest[start + "-----BEGIN CERTIFICATE-----".len()..];
        let end = body
            .find("-----END CERTIFICATE-----")
            .ok_or("a certificate block is not closed")?;
        let b64: String = body[..end].split_whitespace().collect();
        let der = base64::engine::general_purpose::STANDARD
            .decode(b64)
            .map_err(|e| format!("bad base64 in a certificate: {e}"))?;
        certs.push(der);
        rest = &body[end..];
    }
    Ok(certs)
}

/// Starts one watcher per kind. Returns how many sources the reconciler
/// must hear a full list from before it is ready.
pub fn watch(client: &Client, options: &ClusterOptions, updates: &Sender<SourceUpdate>) -> usize {
    let ns = options.watch_namespace.as_deref();
    let config = watcher::Config::default;
    let timeout = options.api_call_timeout;
    let resync = options.sync_period;
    watch::spawn(
        Kind::Ingress,
        scoped::<Ingress>(client, ns),
        config(),
        timeout,
        resync,
        updates.clone(),
    );
    watch::spawn(
        Kind::IngressClass,
        Api::<IngressClass>::all(client.clone()),
        config(),
        timeout,
        resync,
        updates.clone(),
    );
    watch::spawn(
        Kind::Service,
        scoped::<Service>(client, ns),
        config(),
        timeout,
        resync,
        updates.clone(),
    );
    watch::spawn(
        Kind::EndpointSlice,
        scoped::<EndpointSlice>(client, ns),
        config(),
        timeout,
        resync,
        updates.clone(),
    );
    for secret_type in SECRET_TYPES {
        watch::spawn(
            Kind::Secret,
            scoped::<Secret>(client, ns),
            config().fields(secret_type),
            timeout,
            resync,
            updates.clone(),
        );
    }
    let mut sources = 4 + SECRET_TYPES.len();
    // The Gateway API kinds (and every Namespace, for `allowedRoutes`
    // selectors; `--watch-namespace-selector` is then checked against their
    // labels in the compile).
    if let Some(installed) = &options.gateway_api {
        use crate::gateway_api_types::{
            GRPCRoute, Gateway, GatewayClass, HTTPRoute, ReferenceGrant,
        };
        watch::spawn(
            Kind::Namespace,
            Api::<Namespace>::all(client.clone()),
            config(),
            timeout,
            resync,
            updates.clone(),
        );
        watch::spawn(
            Kind::GatewayClass,
            Api::<GatewayClass>::all(client.clone()),
            config(),
            timeout,
            resync,
            updates.clone(),
        );
        watch::spawn(
            Kind::Gateway,
            scoped::<Gateway>(client, ns),
            config(),
            timeout,
            resync,
            updates.clone(),
        );
        watch::spawn(
            Kind::HTTPRoute,
            scoped::<HTTPRoute>(client, ns),
            config(),
            timeout,
            resync,
            updates.clone(),
        );
        watch::spawn(
            Kind::ReferenceGrant,
            scoped::<ReferenceGrant>(client, ns),
            config(),
            timeout,
            resync,
            updates.clone(),
        );
        sources += 5;
        if installed.grpc_routes {
            watch::spawn(
                Kind::GRPCRoute,
                scoped::<GRPCRoute>(client, ns),
                config(),
                timeout,
                resync,
                updates.clone(),
            );
            sources += 1;
        }
        sources += watch_inference(client, options, installed, updates);
    }
    // ConfigMaps: the controller's, those its `proxy-set-headers` and
    // `add-headers` name, the TCP/UDP services and the `custom-headers` of
    // Ingresses, which may be in any watched namespace: every ConfigMap
    // the Ingress scope covers (as ingress-nginx's ClusterRole allows),
    // plus the namespaces the command line names outside it. The compile
    // reads only those named.
    match ns {
        None => {
            let api = Api::<ConfigMap>::all(client.clone());
            watch::spawn(
                Kind::ConfigMap,
                api,
                config(),
                timeout,
                resync,
                updates.clone(),
            );
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
                watch::spawn(
                    Kind::ConfigMap,
                    api,
                    config(),
                    timeout,
                    resync,
                    updates.clone(),
                );
                sources += 1;
            }
        }
    }
    // Only the selected Namespaces, as ingress-nginx's informer lists them:
    // one that stops matching arrives as a deletion, one that starts as an
    // addition, so label changes are followed.
    if let Some(selector) = options
        .namespace_selector
        .as_ref()
        .filter(|s| !s.is_empty() && options.gateway_api.is_none())
    {
        let api = Api::<Namespace>::all(client.clone());
        let selected = config().labels(&selector.to_string());
        watch::spawn(
            Kind::Namespace,
            api,
            selected,
            timeout,
            resync,
            updates.clone(),
        );
        sources += 1;
    }
    sources
}

/// The Inference Extension kinds, when installed: InferencePools,
/// InferenceObjectives and the Pods pools select (in their slim form,
/// see [`crate::gateway_api_types::inference::Pod`]). Returns how many
/// watchers were started.
fn watch_inference(
    client: &Client,
    options: &ClusterOptions,
    installed: &gateway_api::Installed,
    updates: &Sender<SourceUpdate>,
) -> usize {
    use crate::gateway_api_types::inference::{InferenceObjective, InferencePool, Pod};
    if !installed.inference_pools {
        return 0;
    }
    let ns = options.watch_namespace.as_deref();
    let (timeout, resync) = (options.api_call_timeout, options.sync_period);
    let config = watcher::Config::default;
    watch::spawn(
        Kind::InferencePool,
        scoped::<InferencePool>(client, ns),
        config(),
        timeout,
        resync,
        updates.clone(),
    );
    watch::spawn(
        Kind::Pod,
        scoped::<Pod>(client, ns),
        config(),
        timeout,
        resync,
        updates.clone(),
    );
    if !installed.inference_objectives {
        return 2;
    }
    watch::spawn(
        Kind::InferenceObjective,
        scoped::<InferenceObjective>(client, ns),
        config(),
        timeout,
        resync,
        updates.clone(),
    );
    3
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
    /// Starts them. `reports` (and `gateway_api`, with the Gateway API on)
    /// come from the reconciler.
    pub fn start(
        client: &Client,
        options: &ClusterOptions,
        reports: channel::Receiver<Arc<Report>>,
        gateway_api: Option<channel::Receiver<crate::gateway_api::writer::GatewayApiReport>>,
    ) -> Control {
        let (stop_writers, writers_stopped) = channel::channel(false);
        let (stop_election, election_stopped) = channel::channel(false);
        let (leading_tx, leading) = channel::channel(!options.leader_election);
        let (holder, lease_namespace) = match &options.pod {
            Some(pod) => (pod.name.clone(), pod.namespace.clone()),
            None => {
                let host = options.fallback_holder.clone();
                if options.leader_election {
                    tracing::warn!(holder = %host, "POD_NAME/POD_NAMESPACE not set; electing in namespace default");
                }
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
            tracing::info!("leader election disabled: this replica writes Ingress status");
            // Every replica leads. The sender stays open until stop: a
            // closed channel would wake the status writer in a loop.
            let mut stop = election_stopped;
            tokio::spawn(async move {
                let _leading = leading_tx;
                let _ = stop.wait_for(|s| *s).await;
            })
        };
        let mut writers = Vec::new();
        if let (Some(gateway_api), true) = (gateway_api, options.update_status) {
            writers.push(tokio::spawn(gateway_api::write_status(
                client.clone(),
                options.clone(),
                leading.clone(),
                gateway_api,
                writers_stopped.clone(),
            )));
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ca_files_are_read_block_by_block() {
        let pem = b"junk\n-----BEGIN CERTIFICATE-----\nAQID\nBA==\n-----END CERTIFICATE-----\n\
                    -----BEGIN CERTIFICATE-----\nBQY=\n-----END CERTIFICATE-----\n";
        assert_eq!(
            pem_certificates(pem).unwrap(),
            [vec![1, 2, 3, 4], vec![5, 6]]
        );
        assert!(pem_certificates(b"-----BEGIN CERTIFICATE-----\nAQID").is_err());
        assert!(
            pem_certificates(b"-----BEGIN CERTIFICATE-----\n!!\n-----END CERTIFICATE-----")
                .is_err()
        );
        assert!(api_url("not a url").is_err());
    }
}
