//! A TCP connection to one of a backend's endpoints, as nginx's stream
//! proxy makes it: the balancer's pick, each attempt bounded by the
//! connect timeout, and on failure the next endpoint (not one tried
//! before) while tries and the overall budget last.

use std::net::SocketAddr;

use tokio::net::TcpStream;
use tokio::time::Instant;

use super::StreamSettings;
use crate::backend::Backend;

/// Connects to an endpoint of `backend`; `None` when none is ready or
/// every attempt failed (each is logged).
pub(crate) async fn connect(
    backend: &Backend,
    settings: &StreamSettings,
) -> Option<(TcpStream, SocketAddr)> {
    let set = backend.endpoints();
    let endpoints = set.endpoints();
    if endpoints.is_empty() {
        tracing::warn!(backend = backend.name(), "no ready endpoint");
        return None;
    }
    let algorithm = backend.policy().algorithm;
    let tries = match (settings.next_upstream, settings.next_upstream_tries) {
        (false, _) => 1,
        (true, 0) => usize::MAX,
        (true, n) => n as usize,
    };
    let budget = settings
        .next_upstream_timeout
        .filter(|_| settings.next_upstream)
        .map(|t| Instant::now() + t);
    let mut tried: Vec<u64> = Vec::new();
    while tried.len() < tries.min(endpoints.len()) {
        let endpoint = algorithm.pick(backend.cursor(), endpoints, |e| !tried.contains(&e.id()))?;
        tried.push(endpoint.id());
        let addr = endpoint.addr();
        let mut deadline = Instant::now() + settings.connect_timeout;
        if let Some(budget) = budget {
            deadline = deadline.min(budget);
        }
        match tokio::time::timeout_at(deadline, TcpStream::connect(addr)).await {
            Ok(Ok(stream)) => {
                let _ = stream.set_nodelay(true);
                return Some((stream, addr));
            }
            Ok(Err(error)) => {
                tracing::warn!(backend = backend.name(), %addr, %error, "cannot connect upstream");
            }
            Err(_) => {
                tracing::warn!(backend = backend.name(), %addr, "upstream connect timed out");
            }
        }
        if budget.is_some_and(|b| Instant::now() >= b) {
            break;
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::{BackendKey, EndpointUpdate};
    use std::time::Duration;
    use tokio::net::TcpListener;

    fn backend(addrs: Vec<SocketAddr>) -> Backend {
        let key = BackendKey {
            namespace: "ns".into(),
            service: "svc".into(),
            port: "9000".into(),
            cluster_ip: false,
        };
        Backend::new(
            key,
            &EndpointUpdate {
                addrs,
                service_found: true,
            },
        )
    }

    /// A port nothing listens on.
    async fn closed() -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        listener.local_addr().unwrap()
    }

    #[tokio::test]
    async fn a_refused_endpoint_is_skipped_for_the_next() {
        let live = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let live_addr = live.local_addr().unwrap();
        let dead = closed().await;
        let backend = backend(vec![dead, live_addr]);
        let settings = StreamSettings {
            connect_timeout: Duration::from_secs(5),
            ..StreamSettings::default()
        };
        for _ in 0..4 {
            let (_, addr) = connect(&backend, &settings).await.unwrap();
            assert_eq!(addr, live_addr);
        }
        let once = StreamSettings {
            next_upstream: false,
            ..settings
        };
        let results: Vec<bool> = attempts(&backend, &once).await;
        assert!(results.contains(&false) && results.contains(&true));
    }

    async fn attempts(backend: &Backend, settings: &StreamSettings) -> Vec<bool> {
        let mut results = Vec::new();
        for _ in 0..4 {
            results.push(connect(backend, settings).await.is_some());
        }
        results
    }

    #[tokio::test]
    async fn no_endpoint_is_none() {
        assert!(
            connect(&backend(Vec::new()), &StreamSettings::default())
                .await
                .is_none()
        );
    }
}
