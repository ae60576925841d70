//! Wiring of the serving command: bind the listeners, start the control
//! plane (source thread + reconcile thread), serve, and shut down gracefully
//! on SIGTERM or Ctrl-C.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use controller::CompileOptions;
use controller::cluster::{
    self, ClusterError, ClusterOptions, Control, PodIdentity, StatusOptions,
};
use controller::manifests::ManifestDir;
use controller::reconcile::Reconciler;
use gateway::access_log::AccessLogFormat;
use gateway::admin::{AdminListener, Health};
use gateway::external_name::ExternalNames;
use gateway::l4::StreamListeners;
use gateway::metrics::{Metrics, MetricsConfig, RequestMetricsConfig};
use gateway::server::{HttpListener, shutdown_channel};
use gateway::settings::{ListenerSettings, Scheme};
use gateway::tls;
use gateway::{Observer, Proxy, Publisher, RouteTable, TableHandle};
use tokio::sync::watch;

use crate::cli::{AccessLog, ServeArgs, ns_name};

/// How often the manifests folder is polled for changes.
const MANIFESTS_POLL: Duration = Duration::from_millis(250);
/// How long the reconciler waits for quiet before a recompile, with the API
/// source (watch events arrive one by one).
const API_DEBOUNCE: Duration = Duration::from_millis(20);
/// How long the cluster writers get to clear status and release the Lease.
const CLUSTER_SHUTDOWN: Duration = Duration::from_secs(10);

/// Why serving could not start or went wrong.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ServeError {
    /// The manifests folder is not a readable folder.
    #[error("--manifests {}: not a folder", .0.display())]
    ManifestsNotAFolder(PathBuf),
    /// No Kubernetes configuration could be found or used.
    #[error("{0} (pass --manifests DIR to serve a folder instead)")]
    Cluster(#[source] ClusterError),
    /// A listener could not bind.
    #[error("cannot listen for {what} on {addr}: {source}")]
    Bind {
        /// Which listener.
        what: &'static str,
        /// The address it tried.
        addr: SocketAddr,
        /// The bind error.
        source: std::io::Error,
    },
    /// A control-plane thread could not start.
    #[error("cannot start the {0} thread: {1}")]
    Thread(&'static str, std::io::Error),
    /// The built-in certificate could not be made.
    #[error("cannot generate the default certificate: {0}")]
    Tls(#[source] tls::CertError),
    /// The TLS configuration was refused.
    #[error("invalid TLS configuration: {0}")]
    TlsConfig(#[source] rustls::Error),
    /// The metrics registry refused a metric (a bad bucket list).
    #[error("invalid metrics configuration: {0}")]
    Metrics(#[source] prometheus::Error),
}

impl ServeError {
    /// The process exit status: 2 for usage errors (like a bad flag), 1 otherwise.
    pub(crate) fn exit_code(&self) -> u8 {
        match self {
            Self::ManifestsNotAFolder(_)
            | Self::Cluster(ClusterError::Config(_))
            | Self::Metrics(_) => 2,
            Self::Cluster(_)
            | Self::Bind { .. }
            | Self::Thread(..)
            | Self::Tls(_)
            | Self::TlsConfig(_) => 1,
        }
    }
}

/// Serves until SIGTERM or Ctrl-C.
pub(crate) async fn run(args: ServeArgs) -> Result<(), ServeError> {
    if let Some(dir) = &args.manifests
        && !dir.is_dir()
    {
        return Err(ServeError::ManifestsNotAFolder(dir.clone()));
    }
    let source = match &args.manifests {
        Some(dir) => Source::Folder(dir.clone()),
        None => Source::Cluster(
            cluster::connect(args.kubeconfig.as_deref())
                .await
                .map_err(ServeError::Cluster)?,
        ),
    };

    let http_addr = SocketAddr::new(args.bind_address, args.http_port);
    let http = HttpListener::bind(http_addr, &ListenerSettings::new(Scheme::Http))
        .await
        .map_err(|source| ServeError::Bind {
            what: "http",
            addr: http_addr,
            source,
        })?;
    let https_addr = SocketAddr::new(args.bind_address, args.https_port);
    let mut https_settings = ListenerSettings::new(Scheme::Https);
    https_settings.ssl_passthrough = args.edge.enable_ssl_passthrough;
    let https = HttpListener::bind(https_addr, &https_settings)
        .await
        .map_err(|source| ServeError::Bind {
            what: "https",
            addr: https_addr,
            source,
        })?;
    let admin_addr = SocketAddr::new(args.bind_address, args.metrics_port);
    let admin = AdminListener::bind(admin_addr)
        .await
        .map_err(|source| ServeError::Bind {
            what: "metrics",
            addr: admin_addr,
            source,
        })?;
    announce("http", http.local_addr().unwrap_or(http_addr));
    announce("https", https.local_addr().unwrap_or(https_addr));
    announce("metrics", admin.local_addr().unwrap_or(admin_addr));

    let table: TableHandle = Arc::new(ArcSwap::from_pointee(RouteTable::default()));
    let fallback = Arc::new(tls::fake_certificate().map_err(ServeError::Tls)?);
    let resolver = Arc::new(tls::CertResolver::new(table.clone(), fallback));
    let https = https.with_tls(tls::server_config(resolver).map_err(ServeError::TlsConfig)?);
    let health = Arc::new(Health::default());
    let metrics =
        Metrics::new(&metrics_config(&args), table.clone()).map_err(ServeError::Metrics)?;
    let observer = Observer {
        metrics: Some(metrics.clone()),
        access_log: access_log(args.access_log).map_err(|e| ServeError::Thread("access-log", e))?,
        log_default_backend: false,
    };
    let publisher = Publisher::new(table.clone(), Some(metrics.clone()));
    let published = publisher.subscribe();
    let resolving = publisher.subscribe();
    let reserved = [http_addr, https_addr, admin_addr].map(|a| a.port());
    let control = start_control_plane(&args, source, publisher, health.clone(), &reserved)?;
    if let Some(control) = &control {
        tokio::spawn(report_leadership(
            control.leading(),
            metrics.clone(),
            args.election_id.clone(),
        ));
    }

    let (trigger, shutdown) = shutdown_channel();
    let drain = Duration::from_secs(args.drain_timeout);
    let streams = StreamListeners::new(args.bind_address, table.clone(), Some(metrics.clone()));
    let streams_task = tokio::spawn(streams.run(published, shutdown.clone()));
    if let Some(names) = ExternalNames::new(table.clone()) {
        tokio::spawn(names.run(resolving, shutdown.clone()));
    }
    let proxy = Arc::new(Proxy::new(table, observer));
    let http_task = tokio::spawn(http.serve(proxy.clone(), shutdown.clone(), drain));
    let https_task = tokio::spawn(https.serve(proxy, shutdown.clone(), drain));
    let admin_task = tokio::spawn(admin.serve(health.clone(), metrics, shutdown));

    stop_signal().await;
    health.begin_shutdown();
    let grace = Duration::from_secs(args.shutdown_grace_period);
    tracing::info!(
        ?grace,
        ?drain,
        "shutting down: readiness off, then draining"
    );
    if let Some(control) = control {
        control.shutdown(CLUSTER_SHUTDOWN).await;
    }
    tokio::time::sleep(grace).await;
    trigger.trigger();
    let _ = http_task.await;
    let _ = https_task.await;
    let _ = admin_task.await;
    let _ = streams_task.await;
    tracing::info!("stopped");
    Ok(())
}

/// Prints where a listener is, on stdout, in a line scripts can read.
fn announce(what: &str, addr: SocketAddr) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "listening {what} {addr}");
    let _ = out.flush();
}

/// Where the configuration comes from.
enum Source {
    /// A manifests folder (`--manifests`).
    Folder(PathBuf),
    /// The Kubernetes API.
    Cluster(kube::Client),
}

/// Starts the configuration source and the reconcile thread; with the
/// Kubernetes API, also the cluster writers.
fn start_control_plane(
    args: &ServeArgs,
    source: Source,
    publisher: Publisher,
    health: Arc<Health>,
    reserved_ports: &[u16],
) -> Result<Option<Control>, ServeError> {
    let options = CompileOptions {
        default_ssl_certificate: ns_name(args.default_ssl_certificate.as_ref()),
        tcp_services: ns_name(args.edge.tcp_services_configmap.as_ref()),
        udp_services: ns_name(args.edge.udp_services_configmap.as_ref()),
        reserved_ports: reserved_ports.to_vec(),
        ssl_passthrough: args.edge.enable_ssl_passthrough,
        ..args.class.compile_options()
    };
    let (updates, received) = std::sync::mpsc::channel();
    let (reconciler, control) = match source {
        Source::Folder(dir) => {
            tracing::info!(dir = %dir.display(), "watching the manifests folder");
            ManifestDir::new(dir)
                .spawn(updates, MANIFESTS_POLL)
                .map_err(|e| ServeError::Thread("manifests", e))?;
            let reconciler = Reconciler::new(options, publisher, health, 1, Duration::ZERO);
            (reconciler, None)
        }
        Source::Cluster(client) => {
            let cluster = cluster_options(args);
            let sources = cluster::watch(&client, &cluster, &updates);
            let (reports, reports_rx) = watch::channel(Arc::default());
            let control = Control::start(&client, &cluster, reports_rx);
            let reconciler = Reconciler::new(options, publisher, health, sources, API_DEBOUNCE)
                .with_reports(reports);
            tracing::info!(
                namespace = args.class.watch_namespace.as_deref().unwrap_or("all"),
                "watching the Kubernetes API"
            );
            (reconciler, Some(control))
        }
    };
    std::thread::Builder::new()
        .name("reconcile".to_owned())
        .spawn(move || reconciler.run(&received))
        .map_err(|e| ServeError::Thread("reconcile", e))?;
    Ok(control)
}

/// The metrics endpoint's shape, from the flags.
fn metrics_config(args: &ServeArgs) -> MetricsConfig {
    let requests = args.enable_metrics.then(|| RequestMetricsConfig {
        per_host: args.metrics_per_host,
        per_undefined_host: args.metrics_per_undefined_host,
        status_classes: args.report_status_classes,
        time_buckets: sorted(&args.time_buckets),
        length_buckets: sorted(&args.length_buckets),
        size_buckets: sorted(&args.size_buckets),
    });
    MetricsConfig {
        requests,
        namespace: std::env::var("POD_NAMESPACE").unwrap_or_default(),
        class: args.class.controller_class.clone(),
        pod: std::env::var("POD_NAME").unwrap_or_default(),
    }
}

fn sorted(buckets: &[f64]) -> Vec<f64> {
    let mut buckets: Vec<f64> = buckets.iter().copied().filter(|b| b.is_finite()).collect();
    buckets.sort_by(f64::total_cmp);
    buckets.dedup();
    buckets
}

fn access_log(format: AccessLog) -> std::io::Result<Option<Arc<gateway::access_log::AccessLog>>> {
    let format = match format {
        AccessLog::Off => return Ok(None),
        AccessLog::Json => AccessLogFormat::Json,
        AccessLog::Text => AccessLogFormat::Text,
    };
    gateway::access_log::AccessLog::start(format).map(Some)
}

/// Keeps `leader_election_status` in step with the election.
async fn report_leadership(
    mut leading: cluster::Leadership,
    metrics: Arc<Metrics>,
    election: String,
) {
    loop {
        metrics.set_leader(&election, *leading.borrow_and_update());
        if leading.changed().await.is_err() {
            return;
        }
    }
}

fn cluster_options(args: &ServeArgs) -> ClusterOptions {
    let pod = match (std::env::var("POD_NAME"), std::env::var("POD_NAMESPACE")) {
        (Ok(name), Ok(namespace)) if !name.is_empty() && !namespace.is_empty() => {
            Some(PodIdentity { name, namespace })
        }
        _ => None,
    };
    ClusterOptions {
        watch_namespace: args.class.watch_namespace.clone(),
        configmap: ns_name(args.class.configmap.as_ref()),
        other_configmaps: [
            &args.edge.tcp_services_configmap,
            &args.edge.udp_services_configmap,
        ]
        .into_iter()
        .filter_map(|id| ns_name(id.as_ref()))
        .collect(),
        update_status: args.update_status,
        status: StatusOptions {
            publish_status_address: args.publish_status_address.clone(),
            publish_service: ns_name(args.publish_service.as_ref()),
            interval: Duration::from_secs(args.status_update_interval.max(1)),
            update_on_shutdown: args.update_status_on_shutdown,
        },
        election_id: args.election_id.clone(),
        election_ttl: args.election_ttl.max(Duration::from_secs(1)),
        pod,
    }
}

/// Resolves on SIGTERM (Kubernetes stopping the pod) or SIGINT (Ctrl-C).
async fn stop_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => tracing::info!("received Ctrl-C"),
        () = terminate => tracing::info!("received SIGTERM"),
    }
}
