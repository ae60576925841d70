//! `demo-model`: runs model replicas in a process of their own, so that a
//! load test can measure the gateway's CPU apart from its upstreams.
//!
//! Demo replicas, answering at once:
//! `demo-model --model 1 --listen 127.0.0.11:8080 --listen 127.0.0.12:8080`
//!
//! Fake replicas for benchmarks, each with its own profile (delays, output
//! lengths, slots and queue, slow or stuck), from a JSON file (the format is
//! in `demo-model/src/fake/config.rs`):
//! `demo-model --config replicas.json`

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use demo_model::fake::{FakeConfig, FakeReplica};
use demo_model::{ModelInfo, ModelServer};

/// The largest --config file read, in bytes.
const MAX_CONFIG_BYTES: u64 = 1 << 20;

/// Serves model replicas until interrupted.
#[derive(Debug, Parser)]
#[command(name = "demo-model", version, about)]
struct Args {
    /// The model id echoed in answers (demo replicas).
    #[arg(long, default_value = "1")]
    model: String,
    /// An address to serve a demo replica on (repeatable).
    #[arg(long, required_unless_present = "config", conflicts_with = "config")]
    listen: Vec<SocketAddr>,
    /// A JSON file of fake replicas to serve instead: named profiles and
    /// one entry per replica (address, model, profile, seed).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
}

#[tokio::main]
#[expect(clippy::print_stderr, reason = "a small CLI without a log subscriber")]
async fn main() -> ExitCode {
    let args = Args::parse();
    let replicas = match &args.config {
        Some(path) => match read_config(path) {
            Ok(replicas) => replicas,
            Err(message) => {
                eprintln!("demo-model: {}: {message}", path.display());
                return ExitCode::from(2);
            }
        },
        None => Vec::new(),
    };
    let mut servers = Vec::new();
    for addr in &args.listen {
        let model = ModelInfo {
            id: args.model.clone(),
        };
        let bound = ModelServer::bind(*addr, model).await;
        servers.push((*addr, format!("model {} {addr}", args.model), bound));
    }
    for replica in replicas {
        let model = ModelInfo {
            id: replica.model.clone(),
        };
        let bound = ModelServer::bind_fake(replica.listen, model, replica.profile, replica.seed);
        let label = format!(
            "model {} {} profile {} seed {}",
            replica.model, replica.listen, replica.profile_name, replica.seed
        );
        servers.push((replica.listen, label, bound.await));
    }
    let mut running = tokio::task::JoinSet::new();
    for (addr, label, bound) in servers {
        match bound {
            Ok(server) => {
                println!("listening {label}");
                running.spawn(server.run());
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

/// Reads and checks a --config file.
fn read_config(path: &PathBuf) -> Result<Vec<FakeReplica>, String> {
    let size = std::fs::metadata(path).map_err(|e| e.to_string())?.len();
    if size > MAX_CONFIG_BYTES {
        return Err(format!("larger than {MAX_CONFIG_BYTES} bytes"));
    }
    let text = std::fs::read_to_string(path).map_err(|e| e.to_string())?;
    FakeConfig::replicas_from_json(&text).map_err(|e| e.to_string())
}
