//! Backends below HTTP, for TCP/UDP services and SSL passthrough: a TCP
//! echo server that greets with its name and records what it received, a
//! UDP echo server, a TLS server with its own certificate, and a helper
//! for free ports.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex, PoisonError};

use rustls::pki_types::pem::PemObject;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, UdpSocket};
use tokio::task::JoinHandle;

use crate::tls::IssuedCert;

/// A port on `ip` that nothing listens on right now (bound, then freed).
pub fn free_port(ip: [u8; 4]) -> u16 {
    let listener = std::net::TcpListener::bind((Ipv4Addr::from(ip), 0))
        .unwrap_or_else(|error| panic!("cannot bind {ip:?}: {error}"));
    listener.local_addr().expect("listener address").port()
}

/// A TCP server that writes `<name>\n` to each connection, then echoes
/// every byte back, recording what each connection sent.
pub struct TcpEcho {
    addr: SocketAddr,
    received: Arc<Mutex<Vec<Vec<u8>>>>,
    task: JoinHandle<()>,
}

impl TcpEcho {
    /// Starts on `ip` (a free port), greeting with `name`.
    pub async fn start(ip: [u8; 4], name: &str) -> TcpEcho {
        TcpEcho::start_at(SocketAddr::from((Ipv4Addr::from(ip), 0)), name).await
    }

    /// Starts on `addr`, greeting with `name`.
    pub async fn start_at(addr: SocketAddr, name: &str) -> TcpEcho {
        let listener = TcpListener::bind(addr)
            .await
            .unwrap_or_else(|error| panic!("cannot bind {addr}: {error}"));
        let addr = listener.local_addr().expect("listener address");
        let received: Arc<Mutex<Vec<Vec<u8>>>> = Arc::default();
        let greeting = format!("{name}\n").into_bytes();
        let log = received.clone();
        let task = tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let greeting = greeting.clone();
                let log = log.clone();
                tokio::spawn(async move {
                    let index = {
                        let mut log = log.lock().unwrap_or_else(PoisonError::into_inner);
                        log.push(Vec::new());
                        log.len() - 1
                    };
                    if stream.write_all(&greeting).await.is_err() {
                        return;
                    }
                    let mut buf = [0u8; 4096];
                    loop {
                        match stream.read(&mut buf).await {
                            Ok(0) | Err(_) => break,
                            Ok(n) => {
                                log.lock().unwrap_or_else(PoisonError::into_inner)[index]
                                    .extend_from_slice(&buf[..n]);
                                if stream.write_all(&buf[..n]).await.is_err() {
                                    break;
                                }
                            }
                        }
                    }
                });
            }
        });
        TcpEcho {
            addr,
            received,
            task,
        }
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// What each connection sent, in the order they were accepted.
    pub fn received(&self) -> Vec<Vec<u8>> {
        self.received
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

impl Drop for TcpEcho {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A UDP server answering each datagram with `<name>:` and the datagram.
pub struct UdpEcho {
    addr: SocketAddr,
    task: JoinHandle<()>,
}

impl UdpEcho {
    /// Starts on `ip` (a free port).
    pub async fn start(ip: [u8; 4], name: &str) -> UdpEcho {
        let socket = UdpSocket::bind((Ipv4Addr::from(ip), 0))
            .await
            .unwrap_or_else(|error| panic!("cannot bind UDP {ip:?}: {error}"));
        let addr = socket.local_addr().expect("socket address");
        let prefix = format!("{name}:").into_bytes();
        let task = tokio::spawn(async move {
            let mut buf = vec![0u8; 65_535];
            while let Ok((n, from)) = socket.recv_from(&mut buf).await {
                let mut answer = prefix.clone();
                answer.extend_from_slice(&buf[..n]);
                let _ = socket.send_to(&answer, from).await;
            }
        });
        UdpEcho { addr, task }
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for UdpEcho {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A TLS server with its own certificate that answers every HTTP/1.1
/// request with `200` and the body `tls backend <name>`.
pub struct TlsBackend {
    addr: SocketAddr,
    task: JoinHandle<()>,
}

impl TlsBackend {
    /// Starts on `ip` (a free port) with `cert`.
    pub async fn start(ip: [u8; 4], name: &str, cert: &IssuedCert) -> TlsBackend {
        let certs: Vec<_> = rustls_pemfile_certs(&cert.cert_pem);
        let key = rustls::pki_types::PrivateKeyDer::from_pem_slice(cert.key_pem.as_bytes())
            .expect("a PEM private key");
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("TLS versions")
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .expect("a usable certificate");
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = TcpListener::bind((Ipv4Addr::from(ip), 0))
            .await
            .unwrap_or_else(|error| panic!("cannot bind {ip:?}: {error}"));
        let addr = listener.local_addr().expect("listener address");
        let body = format!("tls backend {name}");
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let acceptor = acceptor.clone();
                let body = body.clone();
                tokio::spawn(async move {
                    let Ok(mut tls) = acceptor.accept(stream).await else {
                        return;
                    };
                    let mut head = Vec::new();
                    let mut buf = [0u8; 4096];
                    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                        match tls.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => head.extend_from_slice(&buf[..n]),
                        }
                    }
                    let answer = format!(
                        "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = tls.write_all(answer.as_bytes()).await;
                    let _ = tls.shutdown().await;
                });
            }
        });
        TlsBackend { addr, task }
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for TlsBackend {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The certificates of a PEM bundle.
fn rustls_pemfile_certs(pem: &str) -> Vec<rustls::pki_types::CertificateDer<'static>> {
    rustls::pki_types::CertificateDer::pem_slice_iter(pem.as_bytes())
        .collect::<Result<_, _>>()
        .expect("PEM certificates")
}
