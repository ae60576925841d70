//! TCP and UDP services (`--tcp-services-configmap`,
//! `--udp-services-configmap`) through the real binary: ports bound and
//! closed as the ConfigMaps change, endpoints following EndpointSlices,
//! the PROXY header decoded from clients and sent upstream, per-service
//! metrics.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use serde_json::json;
use testkit::{TcpEcho, UdpEcho, eventually, free_port, scrape};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};

use crate::Setup;

const LOOPBACK: [u8; 4] = [127, 0, 0, 1];

fn config_map(name: &str, data: &[(String, String)]) -> String {
    let data: serde_json::Map<String, serde_json::Value> = data
        .iter()
        .map(|(k, v)| (k.clone(), v.clone().into()))
        .collect();
    json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"namespace": "ingress-nginx", "name": name},
        "data": data,
    })
    .to_string()
}

/// A Service `l4/<name>` with one port `port` of `protocol`, targeting
/// `target`.
fn service(name: &str, port: u16, protocol: &str, target: u16) -> String {
    json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"namespace": "l4", "name": name},
        "spec": {"ports": [{"name": "main", "port": port, "protocol": protocol, "targetPort": target}]},
    })
    .to_string()
}

/// A slice for `l4/<name>` with one port named `main` of `protocol`.
fn slice(name: &str, protocol: &str, port: u16, ips: &[IpAddr]) -> String {
    json!({
        "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
        "metadata": {"namespace": "l4", "name": format!("{name}-slice"),
                     "labels": {"kubernetes.io/service-name": name}},
        "addressType": "IPv4",
        "ports": [{"name": "main", "port": port, "protocol": protocol}],
        "endpoints": ips.iter().map(|ip| json!({"addresses": [ip.to_string()]})).collect::<Vec<_>>(),
    })
    .to_string()
}

/// Connects to `addr`, sends `prefix` then `payload`, and reads the
/// greeting line and the echo of `payload`.
async fn echo(addr: SocketAddr, prefix: &[u8], payload: &[u8]) -> Result<String, String> {
    let mut stream = TcpStream::connect(addr)
        .await
        .map_err(|e| format!("connect {addr}: {e}"))?;
    stream
        .write_all(&[prefix, payload].concat())
        .await
        .map_err(|e| e.to_string())?;
    let mut got = Vec::new();
    let mut buf = [0u8; 1024];
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while !got.ends_with(payload) {
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Ok(Ok(0)) => return Err(format!("closed after {:?}", String::from_utf8_lossy(&got))),
            Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
            Ok(Err(e)) => return Err(e.to_string()),
            Err(_) => return Err(format!("no echo; got {:?}", String::from_utf8_lossy(&got))),
        }
    }
    Ok(String::from_utf8_lossy(&got).into_owned())
}

#[tokio::test]
async fn tcp_services_follow_the_config_map_and_endpoints() {
    let first = TcpEcho::start([127, 0, 201, 1], "first").await;
    let port = first.addr().port();
    let second = TcpEcho::start_at(SocketAddr::from(([127, 0, 201, 2], port)), "second").await;
    let ip = |e: &TcpEcho| e.addr().ip();
    let listen = free_port(LOOPBACK);
    let moved = free_port(LOOPBACK);
    let docs = [
        service("echo", 9000, "TCP", port),
        slice("echo", "TCP", port, &[ip(&first)]),
        config_map(
            "tcp-services",
            &[(listen.to_string(), "l4/echo:9000".to_owned())],
        ),
    ];
    let s = Setup::start_with(
        &docs,
        &[
            "--tcp-services-configmap",
            "ingress-nginx/tcp-services",
            "--enable-metrics",
        ],
    )
    .await;
    let addr = SocketAddr::from((Ipv4Addr::from(LOOPBACK), listen));
    let got = eventually(Duration::from_secs(10), || echo(addr, b"", b"hello")).await;
    assert_eq!(got, "first\nhello");
    assert_eq!(
        first.received().last().map(Vec::as_slice),
        Some(&b"hello"[..])
    );

    // Endpoints follow the EndpointSlice, on the same port.
    s.dir.write(
        "objects.yaml",
        &testkit::join_docs(&[
            service("echo", 9000, "TCP", port),
            slice("echo", "TCP", port, &[ip(&second)]),
            config_map(
                "tcp-services",
                &[(listen.to_string(), "l4/echo:9000".to_owned())],
            ),
        ]),
    );
    eventually(Duration::from_secs(10), || async {
        let got = echo(addr, b"", b"again").await?;
        if got.starts_with("second\n") {
            Ok(())
        } else {
            Err(format!("answered by {got:?}"))
        }
    })
    .await;

    // Metrics per service.
    let metrics = scrape(s.gateway.metrics_addr()).await;
    let connections = metrics
        .iter()
        .filter(|m| m.name == "edge_gateway_stream_connections_total")
        .filter(|m| m.label("protocol") == Some("tcp") && m.label("service") == Some("echo"))
        .map(|m| m.value)
        .sum::<f64>();
    assert!(connections >= 1.0, "{connections}");

    // The port moves: the new one is bound, the old one closed.
    s.dir.write(
        "objects.yaml",
        &testkit::join_docs(&[
            service("echo", 9000, "TCP", port),
            slice("echo", "TCP", port, &[ip(&first)]),
            config_map(
                "tcp-services",
                &[(moved.to_string(), "l4/echo:9000::PROXY".to_owned())],
            ),
        ]),
    );
    let moved_addr = SocketAddr::from((Ipv4Addr::from(LOOPBACK), moved));
    eventually(Duration::from_secs(10), || echo(moved_addr, b"", b"moved")).await;
    eventually(Duration::from_secs(10), || async {
        match TcpStream::connect(addr).await {
            Err(_) => Ok(()),
            Ok(_) => Err(format!("{addr} still accepts")),
        }
    })
    .await;
    // `::PROXY`: a v1 header goes upstream first, naming the client.
    let received = first.received();
    let last = received.last().cloned().unwrap_or_default();
    let text = String::from_utf8_lossy(&last);
    assert!(
        text.starts_with("PROXY TCP4 127.0.0.1 127.0.0.1 "),
        "{text:?}"
    );
    assert!(text.ends_with(&format!(" {moved}\r\nmoved")), "{text:?}");
}

#[tokio::test]
async fn a_decoded_proxy_header_is_passed_on_with_enable_real_ip() {
    let backend = TcpEcho::start([127, 0, 202, 1], "pp").await;
    let port = backend.addr().port();
    let listen = free_port(LOOPBACK);
    let docs = [
        service("pp", 7000, "TCP", port),
        slice("pp", "TCP", port, &[backend.addr().ip()]),
        config_map(
            "tcp-services",
            &[(listen.to_string(), "l4/pp:7000:PROXY:PROXY".to_owned())],
        ),
        config_map(
            "controller",
            &[("enable-real-ip".to_owned(), "true".to_owned())],
        ),
    ];
    let _s = Setup::start_with(
        &docs,
        &[
            "--tcp-services-configmap=ingress-nginx/tcp-services",
            "--configmap=ingress-nginx/controller",
        ],
    )
    .await;
    let addr = SocketAddr::from((Ipv4Addr::from(LOOPBACK), listen));
    let header = b"PROXY TCP4 198.51.100.7 10.0.0.1 40000 443\r\n";
    let got = eventually(Duration::from_secs(10), || echo(addr, header, b"data")).await;
    // The client's header is consumed; the backend echoes the one the
    // gateway sent in its place, then the data.
    assert!(
        got.starts_with("pp\nPROXY TCP4 198.51.100.7 127.0.0.1 40000 ")
            && got.ends_with("\r\ndata")
            && got.matches("PROXY").count() == 1,
        "{got:?}"
    );
    let received = backend.received();
    let text = String::from_utf8_lossy(received.last().unwrap()).into_owned();
    assert!(
        text.starts_with("PROXY TCP4 198.51.100.7 127.0.0.1 40000 "),
        "{text:?}"
    );
    assert!(text.ends_with("\r\ndata"), "{text:?}");

    // Without a header the connection is closed.
    let closed = echo(addr, b"", b"no header").await;
    assert!(closed.is_err(), "{closed:?}");
}

#[tokio::test]
async fn udp_services_answer_datagrams() {
    let backend = UdpEcho::start([127, 0, 203, 1], "dns").await;
    let port = backend.addr().port();
    let listen = {
        let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        socket.local_addr().unwrap().port()
    };
    let docs = [
        // The TCP port of the same number must not be taken for UDP.
        json!({
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"namespace": "l4", "name": "dns"},
            "spec": {"ports": [
                {"name": "dns-tcp", "port": 53, "protocol": "TCP", "targetPort": 1},
                {"name": "main", "port": 53, "protocol": "UDP", "targetPort": port},
            ]},
        })
        .to_string(),
        slice("dns", "UDP", port, &[backend.addr().ip()]),
        config_map(
            "udp-services",
            &[(listen.to_string(), "l4/dns:53".to_owned())],
        ),
    ];
    let s = Setup::start_with(
        &docs,
        &[
            "--udp-services-configmap",
            "ingress-nginx/udp-services",
            "--enable-metrics",
        ],
    )
    .await;
    let client = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let target = SocketAddr::from((Ipv4Addr::from(LOOPBACK), listen));
    let answer = eventually(Duration::from_secs(10), || async {
        client
            .send_to(b"query", target)
            .await
            .map_err(|e| e.to_string())?;
        let mut buf = [0u8; 512];
        match tokio::time::timeout(Duration::from_millis(500), client.recv_from(&mut buf)).await {
            Ok(Ok((n, _))) => Ok(buf[..n].to_vec()),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err("no answer".to_owned()),
        }
    })
    .await;
    assert_eq!(answer, b"dns:query");
    // socat, a real client.
    let mut child = tokio::process::Command::new("socat")
        .args(["-t", "5", "-T", "5", "-", &format!("UDP:{target}")])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("socat can run (Debian package socat)");
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(b"socat").await.unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let mut buf = [0u8; 64];
    let n = tokio::time::timeout(Duration::from_secs(10), stdout.read(&mut buf))
        .await
        .expect("socat prints the answer")
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&buf[..n]), "dns:socat");
    drop(stdin);
    let metrics = scrape(s.gateway.metrics_addr()).await;
    assert!(
        metrics
            .iter()
            .any(|m| m.name == "edge_gateway_stream_sent_bytes_total"
                && m.label("protocol") == Some("udp")
                && m.value >= 9.0),
        "no UDP series"
    );
}
