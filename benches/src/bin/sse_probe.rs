//! `sse-probe`: time to the first event of a streamed (SSE) response, on a
//! new connection per sample, from before `connect` to the first `data:`
//! bytes; then the stream is read to its end. Prints one line of
//! whitespace-separated `key=value` pairs: samples, failures, and p50, p90,
//! p99 of the first event and of the whole response, in milliseconds.
//!
//! `sse-probe --addr 127.0.0.1:18080 [--host bench.local] [--path /sse] [--samples 200]`

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::process::ExitCode;
use std::time::{Duration, Instant};

/// One sample: time to the first event and to the end of the response.
fn sample(addr: SocketAddr, request: &[u8]) -> std::io::Result<(Duration, Duration)> {
    let start = Instant::now();
    let mut stream = TcpStream::connect(addr)?;
    stream.set_nodelay(true)?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    stream.write_all(request)?;
    let mut seen = Vec::with_capacity(1024);
    let mut buf = [0u8; 4096];
    let mut first = None;
    loop {
        let n = stream.read(&mut buf)?;
        if n == 0 {
            break;
        }
        if first.is_none() {
            seen.extend_from_slice(&buf[..n]);
            if seen.windows(5).any(|w| w == b"data:") {
                first = Some(start.elapsed());
            }
        }
    }
    let first = first.ok_or_else(|| std::io::Error::other("no event in the response"))?;
    Ok((first, start.elapsed()))
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * sorted.len() as f64) as usize;
    sorted[rank.min(sorted.len() - 1)].as_secs_f64() * 1e3
}

fn main() -> ExitCode {
    let mut addr: Option<SocketAddr> = None;
    let mut host = "bench.local".to_owned();
    let mut path = "/sse".to_owned();
    let mut samples = 200usize;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let value = args.next().unwrap_or_default();
        match arg.as_str() {
            "--addr" => addr = value.parse().ok(),
            "--host" => host = value,
            "--path" => path = value,
            "--samples" => samples = value.parse().unwrap_or(samples),
            _ => {
                let _ = writeln!(std::io::stderr(), "sse-probe: unexpected argument {arg:?}");
                return ExitCode::from(2);
            }
        }
    }
    let Some(addr) = addr else {
        let _ = writeln!(std::io::stderr(), "sse-probe: --addr HOST:PORT is required");
        return ExitCode::from(2);
    };
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nAccept: text/event-stream\r\nConnection: close\r\n\r\n"
    );
    let mut firsts = Vec::with_capacity(samples);
    let mut totals = Vec::with_capacity(samples);
    let mut failures = 0usize;
    for _ in 0..samples {
        match sample(addr, request.as_bytes()) {
            Ok((first, total)) => {
                firsts.push(first);
                totals.push(total);
            }
            Err(_) => failures += 1,
        }
    }
    firsts.sort();
    totals.sort();
    println!(
        "samples={} failures={failures} first_p50={:.3} first_p90={:.3} first_p99={:.3} total_p50={:.3} total_p99={:.3}",
        firsts.len(),
        percentile(&firsts, 50.0),
        percentile(&firsts, 90.0),
        percentile(&firsts, 99.0),
        percentile(&totals, 50.0),
        percentile(&totals, 99.0),
    );
    if failures > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
