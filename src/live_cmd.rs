//! `edge-gateway check --live URL`: prints the configuration a running
//! gateway serves (its routes, backends with their ready endpoints, and
//! certificates), read from its metrics port (`GET /configuration`, served
//! with `--enable-configuration-view`), the way operators used `nginx -T`
//! and `kubectl ingress-nginx backends`.
//!
//! Bounded: 10 s for the whole exchange, at most [`MAX_BODY`] bytes read.
//! Exit status: 0 when printed, 2 when the gateway cannot be read.

use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Limited};
use hyper::Request;
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tokio::net::TcpStream;

use crate::cli::CheckOutput;

/// How long reading the configuration may take in all.
const TIMEOUT: Duration = Duration::from_secs(10);
/// The most bytes read (the view lists at most 10 000 items of each kind).
const MAX_BODY: usize = 64 << 20;

/// Why the configuration could not be read.
#[derive(Debug, thiserror::Error)]
enum LiveError {
    #[error("{0:?} is not a URL such as http://127.0.0.1:10254")]
    Url(String),
    #[error("cannot start the async runtime: {0}")]
    Runtime(#[source] std::io::Error),
    #[error("{0}: timed out after {TIMEOUT:?}")]
    Timeout(String),
    #[error("{0}: {1}")]
    Http(String, String),
    #[error(
        "{0}: the gateway does not serve its configuration; start it with --enable-configuration-view"
    )]
    NotEnabled(String),
    #[error("{0}: answered {1}")]
    Status(String, u16),
    #[error("{0}: not a configuration document: {1}")]
    Document(String, String),
}

/// Reads and prints the configuration; returns the exit status.
pub(crate) fn main(url: &str, output: CheckOutput) -> ExitCode {
    let result = read(url).map(|view| match output {
        CheckOutput::Json => serde_json::to_string_pretty(&view).unwrap_or_default() + "\n",
        CheckOutput::Text => text(&view),
    });
    match result {
        Ok(printed) => {
            let mut out = std::io::stdout().lock();
            if out
                .write_all(printed.as_bytes())
                .and_then(|()| out.flush())
                .is_err()
            {
                return ExitCode::from(2);
            }
            ExitCode::SUCCESS
        }
        Err(error) => {
            let _ = writeln!(
                std::io::stderr().lock(),
                "edge-gateway check --live: {error}"
            );
            ExitCode::from(2)
        }
    }
}

/// The address and base path of `url` (`http://host:port[/base]`, or
/// `host:port`).
fn endpoint(url: &str) -> Result<(String, String), LiveError> {
    let rest = url.strip_prefix("http://").unwrap_or(url);
    if rest.contains("://") || rest.is_empty() {
        return Err(LiveError::Url(url.to_owned()));
    }
    let (authority, base) = match rest.find('/') {
        Some(i) => (&rest[..i], rest[i..].trim_end_matches('/')),
        None => (rest, ""),
    };
    if !authority.contains(':') {
        return Err(LiveError::Url(url.to_owned()));
    }
    Ok((authority.to_owned(), format!("{base}/configuration")))
}

fn read(url: &str) -> Result<Value, LiveError> {
    let (authority, path) = endpoint(url)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(LiveError::Runtime)?;
    let shown = format!("http://{authority}{path}");
    let body = runtime
        .block_on(async {
            tokio::time::timeout(TIMEOUT, fetch(&authority, &path))
                .await
                .unwrap_or_else(|_| Err(LiveError::Timeout(shown.clone())))
        })
        .map_err(|e| match e {
            LiveError::Http(_, message) => LiveError::Http(shown.clone(), message),
            LiveError::Status(_, 404) => LiveError::NotEnabled(shown.clone()),
            LiveError::Status(_, status) => LiveError::Status(shown.clone(), status),
            other => other,
        })?;
    let view: Value = serde_json::from_slice(&body)
        .map_err(|e| LiveError::Document(shown.clone(), e.to_string()))?;
    if !view["routes"].is_array() || !view["backends"].is_array() {
        return Err(LiveError::Document(
            shown,
            "no routes or backends".to_owned(),
        ));
    }
    Ok(view)
}

async fn fetch(authority: &str, path: &str) -> Result<Bytes, LiveError> {
    let http = |e: &dyn std::fmt::Display| LiveError::Http(String::new(), e.to_string());
    let stream = TcpStream::connect(authority).await.map_err(|e| http(&e))?;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| http(&e))?;
    tokio::spawn(connection);
    let request = Request::get(path)
        .header(hyper::header::HOST, authority)
        .header(hyper::header::ACCEPT, "application/json")
        .body(Empty::<Bytes>::new())
        .map_err(|e| http(&e))?;
    let response = sender.send_request(request).await.map_err(|e| http(&e))?;
    let status = response.status().as_u16();
    if status != 200 {
        return Err(LiveError::Status(String::new(), status));
    }
    let body = Limited::new(response.into_body(), MAX_BODY)
        .collect()
        .await
        .map_err(|e| http(&e.to_string()))?;
    Ok(body.to_bytes())
}

/// The view as aligned text sections.
fn text(view: &Value) -> String {
    let s = |v: &Value| v.as_str().unwrap_or("").to_owned();
    let mut out = String::new();
    let routes = view["routes"].as_array().map_or(&[][..], Vec::as_slice);
    let rows: Vec<[String; 5]> = routes
        .iter()
        .map(|r| {
            let target = match (&r["action"]["backend"], &r["action"]["status"]) {
                (Value::String(b), _) => b.clone(),
                (_, Value::Number(n)) => format!("answers {n}"),
                _ => "-".to_owned(),
            };
            let mut target = target;
            if let Some(canary) = r["canary"].as_str() {
                target.push_str(&format!(" (canary {canary})"));
            }
            let host = match s(&r["host"]) {
                h if h.is_empty() => "*".to_owned(),
                h => h,
            };
            let ingress = r["ingress"].as_str().unwrap_or("(built-in)").to_owned();
            [host, s(&r["path"]), s(&r["pathType"]), ingress, target]
        })
        .collect();
    out.push_str(&format!("Routes ({})\n", rows.len()));
    out.push_str(&table(
        &["HOST", "PATH", "TYPE", "INGRESS", "BACKEND"],
        &rows,
    ));
    let backends = view["backends"].as_array().map_or(&[][..], Vec::as_slice);
    out.push_str(&format!("\nBackends ({})\n", backends.len()));
    for b in backends {
        let endpoints = b["endpoints"].as_array().map_or(&[][..], Vec::as_slice);
        let state = if b["serviceFound"] == Value::Bool(false) {
            "service not found".to_owned()
        } else {
            format!("{} ready endpoints", endpoints.len())
        };
        out.push_str(&format!(
            "{}  {}  {state}\n",
            s(&b["name"]),
            s(&b["loadBalance"])
        ));
        for e in endpoints {
            out.push_str(&format!(
                "  {}  in flight {}\n",
                s(&e["address"]),
                e["inFlight"].as_u64().unwrap_or(0)
            ));
        }
    }
    let certificates = view["certificates"]
        .as_array()
        .map_or(&[][..], Vec::as_slice);
    out.push_str(&format!("\nCertificates ({})\n", certificates.len()));
    let rows: Vec<[String; 5]> = certificates
        .iter()
        .map(|c| {
            let not_after = c["notAfter"]
                .as_i64()
                .and_then(|t| jiff::Timestamp::from_second(t).ok())
                .map_or_else(|| "-".to_owned(), |t| t.to_string());
            [
                c["host"].as_str().unwrap_or("(default)").to_owned(),
                s(&c["subject"]),
                not_after,
                c["secret"].as_str().unwrap_or("(built-in)").to_owned(),
                String::new(),
            ]
        })
        .collect();
    out.push_str(&table(
        &["HOST", "SUBJECT", "NOT AFTER", "SECRET", ""],
        &rows,
    ));
    if view["truncated"] == Value::Bool(true) {
        out.push_str("\n(truncated: the gateway lists at most 10000 of each)\n");
    }
    out
}

/// Left-aligned columns.
fn table<const N: usize>(header: &[&str; N], rows: &[[String; N]]) -> String {
    let mut widths = header.map(str::len);
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: &mut dyn Iterator<Item = &str>| {
        let mut line = String::new();
        for (cell, width) in cells.zip(widths) {
            line.push_str(&format!("{cell:width$}  "));
        }
        line.trim_end().to_owned() + "\n"
    };
    let mut out = line(&mut header.iter().copied());
    for row in rows {
        out.push_str(&line(&mut row.iter().map(String::as_str)));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn urls_name_the_metrics_port() {
        assert_eq!(
            endpoint("http://127.0.0.1:10254").unwrap(),
            ("127.0.0.1:10254".to_owned(), "/configuration".to_owned())
        );
        assert_eq!(
            endpoint("localhost:10254/admin/").unwrap().1,
            "/admin/configuration"
        );
        for bad in ["https://x:1", "", "no-port"] {
            assert!(endpoint(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn text_lists_routes_backends_and_certificates() {
        let view = json!({
            "routes": [
                {"ingress": "ns/web", "host": "a.example.com", "path": "/v1", "pathType": "Prefix",
                 "action": {"backend": "ns-svc-80"}, "canary": "ns-svc2-80"},
                {"ingress": null, "host": "", "path": "/healthz", "pathType": "Prefix",
                 "action": {"status": 200}},
            ],
            "backends": [{"name": "ns-svc-80", "loadBalance": "round_robin", "serviceFound": true,
                          "endpoints": [{"address": "10.0.0.1:8080", "inFlight": 2}]}],
            "certificates": [{"host": null, "subject": "CN=x", "notAfter": 0, "secret": null}],
            "truncated": false,
        });
        let text = text(&view);
        assert!(text.contains("Routes (2)"), "{text}");
        assert!(
            text.contains(
                "a.example.com  /v1       Prefix  ns/web      ns-svc-80 (canary ns-svc2-80)"
            ),
            "{text}"
        );
        assert!(
            text.contains("*              /healthz  Prefix  (built-in)  answers 200"),
            "{text}"
        );
        assert!(
            text.contains("ns-svc-80  round_robin  1 ready endpoints"),
            "{text}"
        );
        assert!(text.contains("  10.0.0.1:8080  in flight 2"), "{text}");
        assert!(
            text.contains("(default)  CN=x     1970-01-01T00:00:00Z  (built-in)"),
            "{text}"
        );
    }
}
