//! `fake-apiserver`: runs the fake Kubernetes API server until Ctrl-C, for
//! manual runs (`kubectl --kubeconfig ... get ingress -A`).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use fake_apiserver::{FakeApiServer, Options};

/// Command-line flags.
#[derive(Debug, Parser)]
#[command(
    name = "fake-apiserver",
    about = "A fake Kubernetes API server on 127.0.0.1 (plain HTTP)"
)]
struct Args {
    /// Port on 127.0.0.1 (0 picks a free one).
    #[arg(long, default_value_t = 0)]
    port: u16,
    /// Write a kubeconfig pointing at the server to this file.
    #[arg(long)]
    kubeconfig: Option<PathBuf>,
    /// Load every *.yaml, *.yml and *.json file under this folder at start.
    #[arg(long)]
    seed: Option<PathBuf>,
    /// Milliseconds between watch BOOKMARK events.
    #[arg(long, default_value_t = 1000)]
    bookmark_interval_ms: u64,
    /// Accept creates in namespaces that do not exist.
    #[arg(long)]
    no_namespace_check: bool,
    /// Simulate the cluster's controllers: workloads get ready pods at this
    /// address and Services get EndpointSlices listing them (see the README).
    #[arg(long, value_name = "IP")]
    pod_ip: Option<std::net::IpAddr>,
    /// Refuse loopback addresses in EndpointSlices, as a real API server
    /// does (by default they are accepted, for backends on 127.0.0.x).
    #[arg(long)]
    refuse_loopback_endpoints: bool,
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    let options = Options {
        port: args.port,
        bookmark_interval: Duration::from_millis(args.bookmark_interval_ms),
        require_namespaces: !args.no_namespace_check,
        pod_ip: args.pod_ip,
        allow_loopback_endpoints: !args.refuse_loopback_endpoints,
        ..Options::default()
    };
    let server = match FakeApiServer::start_with(options).await {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, port = args.port, "cannot listen");
            return ExitCode::FAILURE;
        }
    };
    if let Some(dir) = &args.seed {
        match server.seed_dir(dir) {
            Ok(n) => tracing::info!(objects = n, dir = %dir.display(), "seeded"),
            Err(e) => {
                tracing::error!(error = %e, "cannot seed");
                return ExitCode::from(2);
            }
        }
    }
    if let Some(path) = &args.kubeconfig
        && let Err(e) = server.write_kubeconfig(path)
    {
        tracing::error!(error = %e, path = %path.display(), "cannot write the kubeconfig");
        return ExitCode::FAILURE;
    }
    println!("listening {}", server.url());
    let _ = tokio::signal::ctrl_c().await;
    server.stop().await;
    ExitCode::SUCCESS
}
