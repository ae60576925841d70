//! `demo-model`: runs demo model replicas in a process of their own, so
//! that a load test can measure the gateway's CPU apart from its upstreams.
//!
//! `demo-model --model 1 --listen 127.0.0.11:8080 --listen 127.0.0.12:8080`

use std::net::SocketAddr;
use std::process::ExitCode;

use clap::Parser;
use demo_model::{ModelInfo, ModelServer};

/// Serves one model on one or more addresses until interrupted.
#[derive(Debug, Parser)]
#[command(name = "demo-model", version, about)]
struct Args {
    /// The model id echoed in answers.
    #[arg(long, default_value = "1")]
    model: String,
    /// An address to serve a replica on (repeatable).
    #[arg(long, required = true)]
    listen: Vec<SocketAddr>,
}

#[tokio::main]
#[expect(clippy::print_stderr, reason = "a small CLI without a log subscriber")]
async fn main() -> ExitCode {
    let args = Args::parse();
    let mut replicas = tokio::task::JoinSet::new();
    for addr in args.listen {
        let model = ModelInfo {
            id: args.model.clone(),
        };
        match ModelServer::bind(addr, model).await {
            Ok(server) => {
                println!("listening model {} {}", args.model, server.local_addr());
                replicas.spawn(server.run());
            }
            Err(error) => {
                eprintln!("demo-model: cannot listen on {addr}: {error}");
                return ExitCode::FAILURE;
            }
        }
    }
    let _ = tokio::signal::ctrl_c().await;
    ExitCode::SUCCESS
}
