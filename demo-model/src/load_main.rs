//! `model-load`: open-loop Poisson load on a model route, seeded, one JSON
//! line per request (see `demo_model::load`).
//!
//! `model-load --addr 127.0.0.1:31080 --host localhost --path /v1/completions
//!  --rate 40 --duration 60 --timeout 10 --seed 42 --tokens-median 30
//!  --tokens-p99 200 --max-tokens 400 --stream --out requests.jsonl`

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use demo_model::fake::Dist;
use demo_model::load::{Plan, run};

/// Sends seeded open-loop load and records every request.
#[derive(Debug, Parser)]
#[command(name = "model-load", version, about)]
struct Args {
    /// Where to connect.
    #[arg(long)]
    addr: SocketAddr,
    /// The Host header.
    #[arg(long, default_value = "localhost")]
    host: String,
    /// The request path.
    #[arg(long, default_value = "/v1/completions")]
    path: String,
    /// Mean arrivals per second (Poisson).
    #[arg(long)]
    rate: f64,
    /// Seconds of arrivals.
    #[arg(long)]
    duration: f64,
    /// Client timeout per request, in seconds.
    #[arg(long, default_value_t = 10.0)]
    timeout: f64,
    /// Seed of arrivals, lengths and prompts.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Median output length (log-normal).
    #[arg(long, default_value_t = 30.0)]
    tokens_median: f64,
    /// 99th percentile of the output length.
    #[arg(long, default_value_t = 200.0)]
    tokens_p99: f64,
    /// The longest output asked.
    #[arg(long, default_value_t = 400)]
    max_tokens: u64,
    /// Prompt prefix groups (0: no shared prefixes).
    #[arg(long, default_value_t = 0)]
    prefix_groups: usize,
    /// Bytes of a group's shared prefix.
    #[arg(long, default_value_t = 0)]
    prefix_bytes: usize,
    /// Bytes of each request's own prompt.
    #[arg(long, default_value_t = 32)]
    suffix_bytes: usize,
    /// The `model` field.
    #[arg(long, default_value = "model")]
    model: String,
    /// Ask for SSE streams.
    #[arg(long)]
    stream: bool,
    /// An extra header, `Name: value` (repeatable).
    #[arg(long)]
    header: Vec<String>,
    /// Write one JSON line per request here.
    #[arg(long)]
    out: PathBuf,
}

#[tokio::main]
#[expect(clippy::print_stderr, reason = "a small CLI without a log subscriber")]
async fn main() -> ExitCode {
    let args = Args::parse();
    let valid = args.rate > 0.0
        && args.rate.is_finite()
        && (0.0..=3600.0).contains(&args.duration)
        && (0.0..=3600.0).contains(&args.timeout)
        && args.tokens_median > 0.0
        && args.tokens_p99 >= args.tokens_median;
    if !valid {
        eprintln!("model-load: rate > 0, duration and timeout up to 3600 s, 0 < median <= p99");
        return ExitCode::from(2);
    }
    let mut headers = Vec::new();
    for header in &args.header {
        let Some((name, value)) = header.split_once(':') else {
            eprintln!("model-load: --header {header:?} is not Name: value");
            return ExitCode::from(2);
        };
        headers.push((name.trim().to_owned(), value.trim().to_owned()));
    }
    let plan = Plan {
        addr: args.addr,
        host: args.host,
        path: args.path,
        rate: args.rate,
        duration: Duration::from_secs_f64(args.duration),
        timeout: Duration::from_secs_f64(args.timeout),
        seed: args.seed,
        tokens: Dist::LogNormal {
            median: args.tokens_median,
            p99: args.tokens_p99,
        },
        max_tokens: args.max_tokens,
        prefix_groups: args.prefix_groups,
        prefix_bytes: args.prefix_bytes,
        suffix_bytes: args.suffix_bytes,
        model: args.model,
        stream: args.stream,
        headers,
    };
    let outcomes = run(&plan).await;
    let written = std::fs::File::create(&args.out).and_then(|file| {
        let mut out = std::io::BufWriter::new(file);
        for outcome in &outcomes {
            serde_json::to_writer(&mut out, outcome).map_err(std::io::Error::other)?;
            out.write_all(b"\n")?;
        }
        out.flush()
    });
    if let Err(error) = written {
        eprintln!("model-load: {}: {error}", args.out.display());
        return ExitCode::FAILURE;
    }
    let ok = outcomes.iter().filter(|o| o.outcome == "ok").count();
    println!("requests {} ok {ok}", outcomes.len());
    ExitCode::SUCCESS
}
