//! `use-proxy-protocol` through the real binary with HAProxy in front, as
//! a cloud TCP load balancer: PROXY v1 and v2 on the HTTP and HTTPS
//! listeners; the header's address is the client for the upstream
//! headers, the access lists and the access log; a connection without a
//! header is closed; `proxy-real-ip-cidr` decides whose header counts.
//!
//! Clients connect from their own loopback addresses (127.0.200.50 and
//! .51), so HAProxy's headers name them; HAProxy itself connects from
//! 127.0.0.1.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use testkit::{
    EchoBackend, Frontend, Haproxy, IngressBuilder, SendProxy, TestResponse, curl_https,
    eventually, free_port, parse_status, raw_with_timeout,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpSocket;

use crate::{Setup, service_for};

const CONTROLLER: &str = "ingress-nginx/controller";
const CLIENT: [u8; 4] = [127, 0, 200, 50];
const OTHER_CLIENT: [u8; 4] = [127, 0, 200, 51];

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

/// `GET path` for `pp.test` sent from `source` to `addr`; the status and
/// the echo backend's JSON answer (if any).
async fn get_from(source: [u8; 4], addr: SocketAddr, path: &str) -> Result<TestResponse, String> {
    let socket = TcpSocket::new_v4().map_err(|e| e.to_string())?;
    socket
        .bind(SocketAddr::from((Ipv4Addr::from(source), 0)))
        .map_err(|e| e.to_string())?;
    let mut stream = socket.connect(addr).await.map_err(|e| e.to_string())?;
    let head = format!("GET {path} HTTP/1.1\r\nHost: pp.test\r\nConnection: close\r\n\r\n");
    stream
        .write_all(head.as_bytes())
        .await
        .map_err(|e| e.to_string())?;
    let mut bytes = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut bytes))
        .await
        .map_err(|_| "no answer in 10 s".to_owned())?
        .map_err(|e| e.to_string())?;
    let status = parse_status(&bytes).ok_or_else(|| {
        format!(
            "no HTTP answer: {:?}",
            String::from_utf8_lossy(&bytes[..bytes.len().min(200)])
        )
    })?;
    let split = bytes
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map_or(bytes.len(), |p| p + 4);
    Ok(TestResponse {
        status,
        headers: http::HeaderMap::new(),
        body: bytes::Bytes::copy_from_slice(&bytes[split..]),
    })
}

/// The header `name` the echo backend saw.
fn upstream(response: &TestResponse, name: &str) -> Option<String> {
    response.json()["headers"][name].as_str().map(str::to_owned)
}

#[tokio::test]
async fn haproxy_v1_and_v2_headers_name_the_client() {
    let backend = EchoBackend::start([127, 0, 200, 1]).await;
    let mut docs = service_for("pp", "svc", &[&backend]);
    docs.push(
        IngressBuilder::new("pp", "app")
            .class("nginx")
            .host("pp.test")
            .path("/", "Prefix", "svc", 80)
            .build(),
    );
    docs.push(
        IngressBuilder::new("pp", "only-client")
            .class("nginx")
            .host("pp.test")
            .path("/allowed", "Prefix", "svc", 80)
            .annotation(
                "nginx.ingress.kubernetes.io/whitelist-source-range",
                "127.0.200.50/32",
            )
            .build(),
    );
    let s = Setup::start_with(&docs, &["--configmap", CONTROLLER]).await;
    s.dir
        .write("cm.yaml", &controller(&[("use-proxy-protocol", "true")]));
    let lb = [127, 0, 200, 2];
    let v1 = SocketAddr::from((Ipv4Addr::from(lb), free_port(lb)));
    let v2 = SocketAddr::from((Ipv4Addr::from(lb), free_port(lb)));
    let tls_v2 = SocketAddr::from((Ipv4Addr::from(lb), free_port(lb)));
    let _haproxy = Haproxy::start(&[
        Frontend {
            listen: v1,
            server: s.http(),
            proxy: SendProxy::V1,
        },
        Frontend {
            listen: v2,
            server: s.http(),
            proxy: SendProxy::V2,
        },
        Frontend {
            listen: tls_v2,
            server: s.gateway.https_addr(),
            proxy: SendProxy::V2,
        },
    ])
    .await;

    // The ConfigMap applies to new connections once its table is in.
    let seen = eventually(Duration::from_secs(10), || async {
        let response = get_from(CLIENT, v1, "/").await?;
        // Before the table with use-proxy-protocol is in, the gateway
        // answers the PROXY line with 400.
        if response.status != 200 {
            return Err(format!("status {}", response.status));
        }
        match upstream(&response, "x-real-ip") {
            Some(ip) if ip == "127.0.200.50" => Ok(response),
            other => Err(format!("status {}, X-Real-IP {other:?}", response.status)),
        }
    })
    .await;
    assert_eq!(
        upstream(&seen, "x-forwarded-for").as_deref(),
        Some("127.0.200.50")
    );
    // X-Forwarded-Port: the port the client connected to, from the header.
    assert_eq!(
        upstream(&seen, "x-forwarded-port"),
        Some(v1.port().to_string())
    );

    // v2, binary, with a unique-id TLV.
    let seen = get_from(OTHER_CLIENT, v2, "/").await.unwrap();
    assert_eq!(
        upstream(&seen, "x-real-ip").as_deref(),
        Some("127.0.200.51")
    );

    // Access lists see the header's address.
    assert_eq!(get_from(CLIENT, v2, "/allowed").await.unwrap().status, 200);
    assert_eq!(
        get_from(OTHER_CLIENT, v1, "/allowed").await.unwrap().status,
        403
    );

    // HTTPS: the header comes before the TLS handshake.
    let out = curl_https(
        tls_v2,
        "pp.test",
        "/",
        None,
        &["--interface", "127.0.200.50"],
    )
    .await;
    assert!(out.success, "{}", out.stderr);
    let answer: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(answer["headers"]["x-real-ip"], "127.0.200.50");
    assert_eq!(answer["headers"]["x-forwarded-proto"], "https");

    // A connection without a header is closed unanswered.
    let direct = raw_with_timeout(
        s.http(),
        b"GET / HTTP/1.1\r\nHost: pp.test\r\n\r\n",
        Duration::from_secs(5),
    )
    .await;
    assert!(direct.is_empty(), "{:?}", String::from_utf8_lossy(&direct));

    // The access log names the client.
    eventually(Duration::from_secs(5), || async {
        let lines = s.gateway.stdout();
        if lines.contains("127.0.200.51") {
            Ok(())
        } else {
            Err("no access log line with 127.0.200.51".to_owned())
        }
    })
    .await;

    // proxy-real-ip-cidr without HAProxy's address: its header does not
    // count, the client is HAProxy.
    s.dir.write(
        "cm.yaml",
        &controller(&[
            ("use-proxy-protocol", "true"),
            ("proxy-real-ip-cidr", "10.0.0.0/8"),
        ]),
    );
    eventually(Duration::from_secs(10), || async {
        let response = get_from(CLIENT, v1, "/").await?;
        // Before the table with use-proxy-protocol is in, the gateway
        // answers the PROXY line with 400.
        if response.status != 200 {
            return Err(format!("status {}", response.status));
        }
        match upstream(&response, "x-real-ip") {
            Some(ip) if ip == "127.0.0.1" => Ok(()),
            other => Err(format!("X-Real-IP {other:?}")),
        }
    })
    .await;
}
