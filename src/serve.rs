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
    self, ApiServer, ClusterError, ClusterOptions, Control, PodIdentity, StatusOptions,
};
use controller::manifests::ManifestDir;
use controller::reconcile::Reconciler;
use controller::webhook::BaselineHandle;
use gateway::access_log::AccessLogFormat;
use gateway::admin::{AdminListener, AdminState, Health};
use gateway::external_name::ExternalNames;
use gateway::l4::StreamListeners;
use gateway::metrics::{Metrics, MetricsConfig, RequestMetricsConfig};
use gateway::server::{HttpListener, shutdown_channel};
use gateway::settings::{ListenerSettings, Scheme};
use gateway::tls;
use gateway::{Observer, Proxy, Publisher, RouteTable, TableHandle};
use tokio::sync::watch;

use crate::cli::{AccessLog, ServeArgs, ns_name};
use crate::webhook::{WebhookError, WebhookServer};

/// How often the manifests folder is polled for changes.
const MANIFESTS_POLL: Duration = Duration::from_millis(250);
/// How long the reconciler waits for quiet before a recompile, with the API
/// source (watch events arrive one by one).
const API_DEBOUNCE: Duration = Duration::from_millis(20);
/// How long the cluster writers get to clear status and release the Lease.
const CLUSTER_SHUTDOWN: Duration = Duration::from_secs(10);
/// The longest drain after the control plane stopped: open connections get
/// this long to finish, with a table that no longer follows the cluster.
const FAILED_DRAIN: Duration = Duration::from_secs(10);
/// The shortest `--status-update-interval` (ingress-nginx raises lower
/// values to it).
const MIN_STATUS_INTERVAL: u64 = 5;
/// The shortest `--sync-period` (client-go's minimum resync period).
const MIN_SYNC_PERIOD: Duration = Duration::from_secs(1);
/// `--election-ttl` when given as zero (ingress-nginx's default).
const DEFAULT_ELECTION_TTL: Duration = Duration::from_secs(30);

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
    /// `--enable-gateway-api` without the Gateway API CRDs.
    #[error("{0}")]
    GatewayApi(#[source] controller::cluster::gateway_api::CrdError),
    /// The built-in certificate could not be made.
    #[error("cannot generate the default certificate: {0}")]
    Tls(#[source] tls::CertError),
    /// The TLS configuration was refused.
    #[error("invalid TLS configuration: {0}")]
    TlsConfig(#[source] rustls::Error),
    /// The metrics registry refused a metric (a bad bucket list).
    #[error("invalid metrics configuration: {0}")]
    Metrics(#[source] prometheus::Error),
    /// The reconcile thread stopped: nothing would follow the cluster.
    #[error("the control plane stopped: {0}")]
    ControlPlane(String),
    /// The admission webhook could not start.
    #[error("{0}")]
    Webhook(#[from] WebhookError),
}

impl ServeError {
    /// The process exit status: 2 for usage errors (like a bad flag), 1 otherwise.
    pub(crate) fn exit_code(&self) -> u8 {
        match self {
            Self::ManifestsNotAFolder(_)
            | Self::Cluster(ClusterError::Config(_))
            | Self::Metrics(_)
            | Self::GatewayApi(_) => 2,
            Self::Cluster(_)
            | Self::Bind { .. }
            | Self::Thread(..)
            | Self::Tls(_)
            | Self::TlsConfig(_)
            | Self::ControlPlane(_)
            | Self::Webhook(_) => 1,
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
        None => {
            let client = cluster::connect_to(&ApiServer {
                kubeconfig: args.kubeconfig.as_deref(),
                host: args.apiserver_host.as_deref(),
                certificate_authority: args.certificate_authority.as_deref(),
            })
            .await
            .map_err(ServeError::Cluster)?;
            // Refused before anything binds when the CRDs are missing.
            let gateway_api = match args.gateway_api.enable_gateway_api {
                true => Some(
                    controller::cluster::gateway_api::check(&client)
                        .await
                        .map_err(ServeError::GatewayApi)?,
                ),
                false => None,
            };
            Source::Cluster(client, gateway_api)
        }
    };

    let baseline: BaselineHandle = Arc::default();
    // clap requires the certificate and key with the address.
    let webhook = match (
        &args.validating_webhook,
        &args.validating_webhook_certificate,
        &args.validating_webhook_key,
    ) {
        (Some(listen), Some(cert), Some(key)) => {
            let addr = listen.with_default(args.bind_address);
            let server = WebhookServer::bind(addr, cert, key, baseline.clone()).await?;
            announce("webhook", server.local_addr().unwrap_or(addr));
            Some(server)
        }
        _ => None,
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
    let admin_ip = args
        .healthz_host
        .as_deref()
        .and_then(|h| h.parse().ok())
        .unwrap_or(args.bind_address);
    let admin_addr = SocketAddr::new(admin_ip, args.metrics_port);
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
    let resolver = Arc::new(tls::CertResolver::new(table.clone(), fallback.clone()));
    let https = https.with_tls(tls::server_config(resolver).map_err(ServeError::TlsConfig)?);
    let health = Arc::new(Health::default());
    let metrics =
        Metrics::new(&metrics_config(&args), table.clone()).map_err(ServeError::Metrics)?;
    metrics.set_fallback_certificate(fallback);
    let access_log =
        access_log(args.access_log, &table).map_err(|e| ServeError::Thread("access-log", e))?;
    if let Some(log) = &access_log {
        metrics.watch_access_log(log.clone());
        tokio::spawn(reopen_on_usr1(log.clone()));
    }
    let telemetry = gateway::telemetry::Telemetry::new();
    let observer = Observer {
        metrics: Some(metrics.clone()),
        access_log: access_log.clone(),
        telemetry: Some(telemetry.clone()),
    };
    let publisher =
        Publisher::new(table.clone(), Some(metrics.clone())).with_access_log(access_log.clone());
    let published = publisher.subscribe();
    let resolving = publisher.subscribe();
    let stapling = publisher.subscribe();
    let reserved = [http_addr, https_addr, admin_addr].map(|a| a.port());
    let webhook_baseline = webhook.is_some().then(|| baseline.clone());
    let (control, reconcile_stopped) = start_control_plane(
        &args,
        source,
        publisher,
        health.clone(),
        webhook_baseline,
        &reserved,
    )?;
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
    let admin_state = AdminState {
        health: health.clone(),
        metrics,
        health_path: args.health_check_path.clone(),
        view: args.enable_configuration_view.then(|| table.clone()),
    };
    // Model-server metrics of the backends with `endpoint-metrics`.
    let scraper = tokio::spawn(gateway::scrape::run(table.clone()));
    // Idle upstream connections past their keep-alive time, or closed.
    tokio::spawn(gateway::pool_reaper::run(table.clone()));
    let streams_task = tokio::spawn(streams.run(published, shutdown.clone()));
    if let Some(names) = ExternalNames::new(table.clone()) {
        tokio::spawn(names.run(resolving, shutdown.clone()));
    }
    let stapler = tls::ocsp::Stapler::new(table.clone(), Some(admin_state.metrics.clone()));
    tokio::spawn(stapler.run(stapling, shutdown.clone()));
    let proxy = Arc::new(Proxy::new(table, observer));
    let http_task = tokio::spawn(http.serve(proxy.clone(), shutdown.clone(), drain));
    let https_task = tokio::spawn(https.serve(proxy, shutdown.clone(), drain));
    let admin_task = tokio::spawn(admin.serve(admin_state, shutdown.clone()));
    let webhook_task = webhook.map(|webhook| tokio::spawn(webhook.serve(shutdown)));

    let stopped_by = tokio::select! {
        signal = stop_signal() => Ok(signal),
        why = reconcile_stopped => {
            let why = why.unwrap_or_else(|_| "the reconcile thread vanished".to_owned());
            tracing::error!(%why, "the control plane stopped; /healthz fails and the process exits");
            health.fail();
            Err(why)
        }
    };
    health.begin_shutdown();
    let grace = match stopped_by {
        Ok(_) => Duration::from_secs(args.shutdown_grace_period),
        Err(_) => Duration::ZERO,
    };
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
    let listeners = async {
        let _ = http_task.await;
        let _ = https_task.await;
        let _ = admin_task.await;
        if let Some(task) = webhook_task {
            let _ = task.await;
        }
        let _ = streams_task.await;
    };
    let signal = match stopped_by {
        Ok(signal) => signal,
        Err(why) => {
            // Open connections get a short drain; the table is stale.
            let _ = tokio::time::timeout(FAILED_DRAIN, listeners).await;
            scraper.abort();
            return Err(ServeError::ControlPlane(why));
        }
    };
    listeners.await;
    scraper.abort();
    // The export task sends what is queued while the process winds down;
    // nothing waits for the collector.
    telemetry.close();
    if let Some(log) = access_log {
        // The last lines, buffered by the workers, are written.
        let _ = tokio::task::spawn_blocking(move || log.close()).await;
    }
    // ingress-nginx waits on SIGTERM only (Kubernetes stopping the pod);
    // Ctrl-C at a terminal exits at once.
    let post = Duration::from_secs(args.post_shutdown_grace_period);
    if signal == Stop::Terminate && !post.is_zero() {
        tracing::info!(
            ?post,
            "stopped serving; waiting before exit (--post-shutdown-grace-period)"
        );
        tokio::time::sleep(post).await;
    }
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
    /// The Kubernetes API, and the Gateway API kinds it serves (when on).
    Cluster(
        kube::Client,
        Option<controller::cluster::gateway_api::Installed>,
    ),
}

/// Resolves with why the reconcile thread stopped, if it ever does.
type Stopped = tokio::sync::oneshot::Receiver<String>;

/// Starts the configuration source and the reconcile thread; with the
/// Kubernetes API, also the cluster writers. The thread is supervised: the
/// returned receiver resolves if it returns or panics.
fn start_control_plane(
    args: &ServeArgs,
    source: Source,
    publisher: Publisher,
    health: Arc<Health>,
    baseline: Option<BaselineHandle>,
    reserved_ports: &[u16],
) -> Result<(Option<Control>, Stopped), ServeError> {
    let options = compile_options(args, reserved_ports);
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
        Source::Cluster(client, gateway_api) => {
            let cluster = ClusterOptions {
                gateway_api,
                ..cluster_options(args)
            };
            let sources = cluster::watch(&client, &cluster, &updates);
            let (reports, reports_rx) = watch::channel(Arc::default());
            let (gateway_reports, gateway_reports_rx) = watch::channel(Default::default());
            let gateway_reports_rx = gateway_api.map(|_| gateway_reports_rx);
            let control = Control::start(&client, &cluster, reports_rx, gateway_reports_rx);
            let reconciler = Reconciler::new(options, publisher, health, sources, API_DEBOUNCE)
                .with_reports(reports)
                .with_gateway_api_reports(gateway_reports);
            tracing::info!(
                namespace = args.class.watch_namespace.as_deref().unwrap_or("all"),
                "watching the Kubernetes API"
            );
            (reconciler, Some(control))
        }
    };
    let reconciler = match baseline {
        Some(baseline) => reconciler.with_baseline(baseline),
        None => reconciler,
    };
    let (stopped_tx, stopped) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("reconcile".to_owned())
        .spawn(move || {
            let run = std::panic::AssertUnwindSafe(|| reconciler.run(&received));
            let why = match std::panic::catch_unwind(run) {
                Ok(()) => "every configuration source stopped".to_owned(),
                Err(panic) => format!("the reconcile thread panicked: {}", panic_text(&*panic)),
            };
            let _ = stopped_tx.send(why);
        })
        .map_err(|e| ServeError::Thread("reconcile", e))?;
    Ok((control, stopped))
}

/// A panic's message, when it has one.
fn panic_text(panic: &(dyn std::any::Any + Send)) -> &str {
    panic
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| panic.downcast_ref::<&str>().copied())
        .unwrap_or("no message")
}

/// What the compile is told by the flags.
fn compile_options(args: &ServeArgs, reserved_ports: &[u16]) -> CompileOptions {
    CompileOptions {
        default_ssl_certificate: ns_name(args.default_ssl_certificate.as_ref()),
        tcp_services: ns_name(args.edge.tcp_services_configmap.as_ref()),
        udp_services: ns_name(args.edge.udp_services_configmap.as_ref()),
        reserved_ports: reserved_ports.to_vec(),
        ssl_passthrough: args.edge.enable_ssl_passthrough,
        gateway_api: args.gateway_api.options(args.http_port, args.https_port),
        ..args.class.compile_options()
    }
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
        namespace: args.pod.pod_namespace.clone().unwrap_or_default(),
        class: args.class.controller_class.clone(),
        pod: args.pod.pod_name.clone().unwrap_or_default(),
        exclude: args.exclude_socket_metrics.clone(),
    }
}

fn sorted(buckets: &[f64]) -> Vec<f64> {
    let mut buckets: Vec<f64> = buckets.iter().copied().filter(|b| b.is_finite()).collect();
    buckets.sort_by(f64::total_cmp);
    buckets.dedup();
    buckets
}

fn access_log(
    format: AccessLog,
    table: &TableHandle,
) -> std::io::Result<Option<Arc<gateway::access_log::AccessLog>>> {
    let format = match format {
        AccessLog::Off => return Ok(None),
        AccessLog::Json => AccessLogFormat::Json,
        AccessLog::Nginx => AccessLogFormat::Nginx,
    };
    gateway::access_log::AccessLog::start(format, table.clone()).map(Some)
}

/// Reopens the access log file on SIGUSR1, as nginx does.
async fn reopen_on_usr1(log: Arc<gateway::access_log::AccessLog>) {
    use tokio::signal::unix::{SignalKind, signal};
    let Ok(mut usr1) = signal(SignalKind::user_defined1()) else {
        return;
    };
    while usr1.recv().await.is_some() {
        tracing::info!("SIGUSR1: reopening the access log");
        log.reopen();
    }
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
    let api_call_timeout = args.api_call_timeout.max(Duration::from_millis(100));
    let pod = args
        .pod
        .identity()
        .map(|(namespace, name)| PodIdentity { name, namespace });
    let interval = if args.status_update_interval < MIN_STATUS_INTERVAL {
        tracing::warn!(
            seconds = args.status_update_interval,
            "--status-update-interval is too low; using {MIN_STATUS_INTERVAL} seconds"
        );
        MIN_STATUS_INTERVAL
    } else {
        args.status_update_interval
    };
    let election_ttl = match args.election_ttl {
        Duration::ZERO => DEFAULT_ELECTION_TTL,
        ttl => ttl.max(Duration::from_secs(1)),
    };
    ClusterOptions {
        watch_namespace: args.class.watch_namespace.clone(),
        namespace_selector: args.class.namespace_selector(),
        sync_period: (!args.sync_period.is_zero()).then(|| args.sync_period.max(MIN_SYNC_PERIOD)),
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
            interval: Duration::from_secs(interval),
            update_on_shutdown: args.update_status_on_shutdown,
            call_timeout: api_call_timeout,
            node_internal_ip: args.report_node_internal_ip_address,
        },
        election_id: args.election_id.clone(),
        election_ttl,
        pod,
        fallback_holder: args
            .pod
            .hostname
            .clone()
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "edge-gateway".to_owned()),
        leader_election: !args.disable_leader_election,
        api_call_timeout,
        gateway_api: None,
    }
}

/// What asked the gateway to stop.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stop {
    /// SIGTERM: Kubernetes stopping the pod.
    Terminate,
    /// SIGINT: Ctrl-C.
    Interrupt,
}

/// Resolves on SIGTERM (Kubernetes stopping the pod) or SIGINT (Ctrl-C).
async fn stop_signal() -> Stop {
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
        () = ctrl_c => {
            tracing::info!("received Ctrl-C");
            Stop::Interrupt
        }
        () = terminate => {
            tracing::info!("received SIGTERM");
            Stop::Terminate
        }
    }
}
