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
use controller::class::ClassOptions;
use controller::manifests::ManifestDir;
use controller::reconcile::Reconciler;
use gateway::admin::{AdminListener, Health};
use gateway::server::{HttpListener, shutdown_channel};
use gateway::settings::{ListenerSettings, ProxySettings, Scheme};
use gateway::{Proxy, RouteTable, TableHandle};

use crate::cli::ServeArgs;

/// How often the manifests folder is polled for changes.
const MANIFESTS_POLL: Duration = Duration::from_millis(250);

/// Why serving could not start or went wrong.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ServeError {
    /// No configuration source was given.
    #[error(
        "no configuration source: pass --manifests DIR (the Kubernetes API source is not built yet)"
    )]
    NoSource,
    /// The manifests folder is not a readable folder.
    #[error("--manifests {}: not a folder", .0.display())]
    ManifestsNotAFolder(PathBuf),
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
}

impl ServeError {
    /// The process exit status: 2 for usage errors (like a bad flag), 1 otherwise.
    pub(crate) fn exit_code(&self) -> u8 {
        match self {
            Self::NoSource | Self::ManifestsNotAFolder(_) => 2,
            Self::Bind { .. } | Self::Thread(..) => 1,
        }
    }
}

/// Serves until SIGTERM or Ctrl-C.
pub(crate) async fn run(args: ServeArgs) -> Result<(), ServeError> {
    let manifests = args.manifests.clone().ok_or(ServeError::NoSource)?;
    if !manifests.is_dir() {
        return Err(ServeError::ManifestsNotAFolder(manifests));
    }

    let http_addr = SocketAddr::new(args.bind_address, args.http_port);
    let http = HttpListener::bind(http_addr, &ListenerSettings::new(Scheme::Http))
        .await
        .map_err(|source| ServeError::Bind {
            what: "http",
            addr: http_addr,
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
    announce("metrics", admin.local_addr().unwrap_or(admin_addr));

    let table: TableHandle = Arc::new(ArcSwap::from_pointee(RouteTable::default()));
    let health = Arc::new(Health::default());
    start_control_plane(&args, manifests, table.clone(), health.clone())?;

    let (trigger, shutdown) = shutdown_channel();
    let drain = Duration::from_secs(args.drain_timeout);
    let proxy = Arc::new(Proxy::new(table));
    let http_task = tokio::spawn(http.serve(proxy, shutdown.clone(), drain));
    let admin_task = tokio::spawn(admin.serve(health.clone(), shutdown));

    stop_signal().await;
    health.begin_shutdown();
    let grace = Duration::from_secs(args.shutdown_grace_period);
    tracing::info!(
        ?grace,
        ?drain,
        "shutting down: readiness off, then draining"
    );
    tokio::time::sleep(grace).await;
    trigger.trigger();
    let _ = http_task.await;
    let _ = admin_task.await;
    tracing::info!("stopped");
    Ok(())
}

/// Prints where a listener is, on stdout, in a line scripts can read.
fn announce(what: &str, addr: SocketAddr) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "listening {what} {addr}");
    let _ = out.flush();
}

fn start_control_plane(
    args: &ServeArgs,
    manifests: PathBuf,
    table: TableHandle,
    health: Arc<Health>,
) -> Result<(), ServeError> {
    let options = CompileOptions {
        class: ClassOptions {
            ingress_class: args.ingress_class.clone(),
            controller_class: args.controller_class.clone(),
            watch_without_class: args.watch_ingress_without_class,
            by_name: args.ingress_class_by_name,
        },
        watch_namespace: args.watch_namespace.clone(),
        proxy: ProxySettings::default(),
    };
    let (updates, received) = std::sync::mpsc::channel();
    let reconciler = Reconciler::new(options, table, health, 1, Duration::ZERO);
    std::thread::Builder::new()
        .name("reconcile".to_owned())
        .spawn(move || reconciler.run(&received))
        .map_err(|e| ServeError::Thread("reconcile", e))?;
    tracing::info!(dir = %manifests.display(), "watching the manifests folder");
    ManifestDir::new(manifests)
        .spawn(updates, MANIFESTS_POLL)
        .map_err(|e| ServeError::Thread("manifests", e))?;
    Ok(())
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
