//! Response compression (`use-gzip`, `enable-brotli` and their settings)
//! through the real binary: curl `--compressed`, the codings chosen by
//! `Accept-Encoding`, what is never compressed, and a stream that reaches
//! the client compressed chunk by chunk while its upstream is still
//! sending.

use std::io::{Read, Write};
use std::time::Duration;

use testkit::backend::{Script, ScriptedBackend};
use testkit::{EchoBackend, IngressBuilder, eventually, request};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::{Setup, service_for};

const CONTROLLER: &str = "ingress-nginx/controller";

fn controller(data: &[(&str, &str)]) -> String {
    let data: serde_json::Map<String, serde_json::Value> = data
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).into()))
        .collect();
    serde_json::json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"namespace": "ingress-nginx", "name": "controller"},
        "data": data,
    })
    .to_string()
}

fn gunzip(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(bytes)
        .read_to_end(&mut out)
        .unwrap();
    out
}

fn unbrotli(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    brotli::Decompressor::new(bytes, 4096)
        .read_to_end(&mut out)
        .unwrap();
    out
}

#[tokio::test]
async fn responses_are_compressed_as_the_client_asks() {
    let backend = EchoBackend::start([127, 0, 205, 1]).await;
    let mut docs = service_for("gz", "svc", &[&backend]);
    docs.push(
        IngressBuilder::new("gz", "app")
            .class("nginx")
            .host("gz.test")
            .path("/", "Prefix", "svc", 80)
            .build(),
    );
    docs.push(controller(&[
        ("use-gzip", "true"),
        ("gzip-min-length", "100"),
        ("enable-brotli", "true"),
    ]));
    let s = Setup::start_with(&docs, &["--configmap", CONTROLLER]).await;
    let get = |accept: &'static str, path: &'static str| {
        let addr = s.http();
        async move {
            request(
                addr,
                "GET",
                "gz.test",
                path,
                &[("accept-encoding", accept)],
                Vec::new(),
            )
            .await
        }
    };
    let gzipped = eventually(Duration::from_secs(10), || async {
        let response = get("gzip", "/json").await;
        match response.headers.get("content-encoding") {
            Some(v) if v == "gzip" => Ok(response),
            other => Err(format!("content-encoding {other:?}")),
        }
    })
    .await;
    assert_eq!(gzipped.headers["vary"], "Accept-Encoding");
    assert!(gzipped.headers.get("content-length").is_none());
    let plain: serde_json::Value = serde_json::from_slice(&gunzip(&gzipped.body)).unwrap();
    assert_eq!(plain["path"], "/json");

    let br = get("gzip;q=0.5, br", "/json").await;
    assert_eq!(br.headers["content-encoding"], "br");
    let plain: serde_json::Value = serde_json::from_slice(&unbrotli(&br.body)).unwrap();
    assert_eq!(plain["path"], "/json");
    let prefer_gzip = get("gzip;q=1, br;q=0.1", "/json").await;
    assert_eq!(prefer_gzip.headers["content-encoding"], "gzip");

    // Not compressed: no Accept-Encoding (Vary all the same), a HEAD, an
    // already encoded body, a type not listed, a 5xx.
    let none = get("identity", "/json").await;
    assert!(none.headers.get("content-encoding").is_none());
    assert_eq!(none.headers["vary"], "Accept-Encoding");
    serde_json::from_slice::<serde_json::Value>(&none.body).unwrap();
    let head = request(
        s.http(),
        "HEAD",
        "gz.test",
        "/json",
        &[("accept-encoding", "gzip")],
        Vec::new(),
    )
    .await;
    assert!(head.headers.get("content-encoding").is_none());
    let encoded = get("gzip", "/json?header=content-encoding:zstd").await;
    assert_eq!(encoded.headers["content-encoding"], "zstd");
    let binary = get("gzip", "/?bytes=5000").await;
    assert!(binary.headers.get("content-encoding").is_none());
    assert_eq!(binary.body.len(), 5000);
    let error = get("gzip", "/json?status=500").await;
    assert!(error.headers.get("content-encoding").is_none());

    // curl, a real client, decodes what it asked for.
    let output = tokio::process::Command::new("curl")
        .args(["-s", "-S", "--max-time", "20", "--compressed", "-D", "-"])
        .args(["-H", "Host: gz.test"])
        .arg(format!("http://{}/curl", s.http()))
        .kill_on_drop(true)
        .output()
        .await
        .expect("curl can run");
    let text = String::from_utf8_lossy(&output.stdout).to_lowercase();
    assert!(
        text.contains("content-encoding: br") || text.contains("content-encoding: gzip"),
        "{text}"
    );
    assert!(text.contains("\"path\":\"/curl\""), "{text}");
}

#[tokio::test]
async fn a_stream_arrives_compressed_chunk_by_chunk() {
    // The upstream sends one event, then nothing more: the client must
    // decode that event while the stream is still open.
    let upstream = ScriptedBackend::start([127, 0, 205, 2], Script::StreamThenStall).await;
    let docs = vec![
        testkit::service("gz", "sse", 80, upstream.addr().port()),
        testkit::endpoint_slice(
            "gz",
            "sse",
            upstream.addr().port(),
            &[(upstream.addr().ip(), Some(true))],
        ),
        IngressBuilder::new("gz", "sse")
            .class("nginx")
            .host("sse.test")
            .path("/", "Prefix", "sse", 80)
            .build(),
        controller(&[("use-gzip", "true"), ("gzip-types", "text/event-stream")]),
    ];
    let s = Setup::start_with(&docs, &["--configmap", CONTROLLER]).await;
    let decoded = eventually(Duration::from_secs(20), || async {
        let mut stream = TcpStream::connect(s.http())
            .await
            .map_err(|e| e.to_string())?;
        stream
            .write_all(b"GET /events HTTP/1.1\r\nHost: sse.test\r\nAccept-Encoding: gzip\r\n\r\n")
            .await
            .map_err(|e| e.to_string())?;
        let mut received = Vec::new();
        let mut buf = [0u8; 4096];
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        loop {
            let n = tokio::time::timeout_at(deadline, stream.read(&mut buf))
                .await
                .map_err(|_| format!("nothing decodable; got {received:?}"))?
                .map_err(|e| e.to_string())?;
            if n == 0 {
                return Err("closed".to_owned());
            }
            received.extend_from_slice(&buf[..n]);
            let Some(head_end) = received.windows(4).position(|w| w == b"\r\n\r\n") else {
                continue;
            };
            let head = String::from_utf8_lossy(&received[..head_end]).to_lowercase();
            if !head.contains("content-encoding: gzip") {
                return Err(format!("not compressed: {head}"));
            }
            // Chunked framing: decode every complete chunk received so far.
            let mut body = &received[head_end + 4..];
            let mut data = Vec::new();
            while let Some(line_end) = body.windows(2).position(|w| w == b"\r\n") {
                let size = usize::from_str_radix(
                    std::str::from_utf8(&body[..line_end]).unwrap_or("0"),
                    16,
                )
                .unwrap_or(0);
                if body.len() < line_end + 2 + size + 2 {
                    break;
                }
                data.extend_from_slice(&body[line_end + 2..line_end + 2 + size]);
                body = &body[line_end + 2 + size + 2..];
            }
            let mut decoder = flate2::write::GzDecoder::new(Vec::new());
            let _ = decoder.write_all(&data);
            let _ = decoder.flush();
            if decoder.get_ref().windows(11).any(|w| w == b"data: first") {
                return Ok(String::from_utf8_lossy(decoder.get_ref()).into_owned());
            }
        }
    })
    .await;
    assert_eq!(decoded, "data: first\n\n");
}
