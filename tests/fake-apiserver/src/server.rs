//! [`FakeApiServer`]: the handle tests hold. Binds 127.0.0.1, serves plain
//! HTTP/1.1, and can be paused, resumed on the same port, made to answer
//! 503, compacted, stopped; plus direct store access and the request log.

use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::direct;
use crate::service::serve;
use crate::state::{Options, RecordedRequest, Shared, lock};
use crate::status::ApiError;

/// A fake Kubernetes API server on `http://127.0.0.1:PORT`, with its
/// in-memory store. Dropping it stops it (the accept loop, every connection
/// and every watch stream).
#[derive(Debug)]
pub struct FakeApiServer {
    shared: Arc<Shared>,
    addr: SocketAddr,
    accept: Mutex<Option<JoinHandle<()>>>,
}

impl FakeApiServer {
    /// Starts a server on a free port with default [`Options`].
    ///
    /// # Panics
    ///
    /// When 127.0.0.1 cannot be bound (no loopback interface).
    pub async fn start() -> Self {
        match Self::start_with(Options::default()).await {
            Ok(s) => s,
            Err(e) => panic!("fake-apiserver: cannot bind 127.0.0.1: {e}"),
        }
    }

    /// Starts a server with the given options.
    pub async fn start_with(options: Options) -> io::Result<Self> {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, options.port)).await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared::new(options));
        direct::seed_namespaces(&shared);
        let accept = tokio::spawn(accept_loop(listener, Arc::clone(&shared)));
        tracing::info!(url = %format!("http://{addr}"), "fake-apiserver listening");
        Ok(Self {
            shared,
            addr,
            accept: Mutex::new(Some(accept)),
        })
    }

    /// The base URL, `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// A kubeconfig (one cluster, context and user; namespace `default`)
    /// pointing at this server.
    pub fn kubeconfig(&self) -> String {
        format!(
            "apiVersion: v1\n\
             kind: Config\n\
             clusters:\n\
             - name: fake\n  cluster:\n    server: {url}\n\
             contexts:\n\
             - name: fake\n  context:\n    cluster: fake\n    user: fake\n    namespace: default\n\
             current-context: fake\n\
             preferences: {{}}\n\
             users:\n\
             - name: fake\n  user: {{}}\n",
            url = self.url()
        )
    }

    /// Writes [`Self::kubeconfig`] to a file.
    pub fn write_kubeconfig(&self, path: impl AsRef<Path>) -> io::Result<()> {
        std::fs::write(path, self.kubeconfig())
    }

    /// Stops the server for good; once this returns, connections are
    /// refused. Dropping the handle also stops it, without waiting.
    pub async fn stop(self) {
        self.pause().await;
    }

    /// Simulates an outage: stops listening (once this returns, connections
    /// are refused) and cuts every open connection and watch. The store is
    /// kept; [`Self::resume`] listens again on the same port.
    pub async fn pause(&self) {
        let task = lock(&self.accept).take();
        self.shared.cut_all();
        if let Some(task) = task {
            task.abort();
            // Wait until the aborted task (and so the listener) is dropped.
            let _ = task.await;
        }
    }

    /// Whether the server is paused.
    pub fn is_paused(&self) -> bool {
        lock(&self.accept).is_none()
    }

    /// Ends an outage: listens again on the same port. A no-op when not
    /// paused.
    pub async fn resume(&self) -> io::Result<()> {
        if !self.is_paused() {
            return Ok(());
        }
        let listener = bind_again(self.addr).await?;
        let task = tokio::spawn(accept_loop(listener, Arc::clone(&self.shared)));
        if let Some(old) = lock(&self.accept).replace(task) {
            old.abort();
        }
        Ok(())
    }

    /// [`Self::pause`] then [`Self::resume`]: every client loses its
    /// connections and watches and reconnects to the same port.
    pub async fn restart_same_port(&self) -> io::Result<()> {
        self.pause().await;
        self.resume().await
    }

    /// While on, every request is answered 503 ServiceUnavailable (the
    /// listener stays up); turning it on also cuts open watches.
    pub fn set_unavailable(&self, on: bool) {
        self.shared.unavailable.store(on, Ordering::SeqCst);
        if on {
            self.shared.cut_all();
        }
    }

    /// Holds every later request `rule` matches unanswered until its
    /// connection is cut (see the `hang` module); replaces any earlier
    /// rule.
    pub fn hang(&self, rule: impl Fn(&RecordedRequest) -> bool + Send + Sync + 'static) {
        self.shared.hang.set(Some(Arc::new(rule)));
    }

    /// Answers later requests again; those already held stay held.
    pub fn stop_hanging(&self) {
        self.shared.hang.set(None);
    }

    /// Makes every resourceVersion older than the current one too old:
    /// watches and `resourceVersionMatch=Exact` lists from them get 410 Gone.
    pub fn compact(&self) {
        lock(&self.shared.store).compact();
    }

    /// The current (latest) resourceVersion.
    pub fn resource_version(&self) -> u64 {
        lock(&self.shared.store).rv()
    }

    /// Every request received so far, oldest first.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        lock(&self.shared.requests).clone()
    }

    /// Forgets the recorded requests.
    pub fn clear_requests(&self) {
        lock(&self.shared.requests).clear();
    }

    /// How many watch streams are open (to check that none leak).
    pub fn active_watches(&self) -> usize {
        self.shared.active_watches.load(Ordering::SeqCst)
    }

    /// Creates or replaces an object (kind from its `apiVersion`/`kind`,
    /// namespace `default` when missing), bumping the resourceVersion and
    /// emitting ADDED or MODIFIED. The object is taken whole, `.status`
    /// included; uid and creationTimestamp are kept on replace. Returns the
    /// stored object.
    pub fn apply(&self, object: Value) -> Result<Value, ApiError> {
        direct::apply(&self.shared, object)
    }

    /// [`Self::apply`] for every object of a YAML text (multi-document, and
    /// `kind: List` items).
    pub fn apply_yaml(&self, yaml: &str) -> Result<Vec<Value>, ApiError> {
        direct::apply_yaml(&self.shared, yaml)
    }

    /// [`Self::apply_yaml`] for every `*.yaml`, `*.yml` and `*.json` file
    /// under a folder (recursively); returns how many objects were stored.
    pub fn seed_dir(&self, dir: impl AsRef<Path>) -> Result<usize, ApiError> {
        direct::seed_dir(&self.shared, dir.as_ref())
    }

    /// One object. `resource` is a kind, plural, singular or short name,
    /// optionally qualified (`Ingress`, `ingresses.networking.k8s.io`,
    /// `networking.k8s.io/v1/Ingress`); `namespace` is `""` for
    /// cluster-scoped kinds.
    pub fn get(&self, resource: &str, namespace: &str, name: &str) -> Option<Value> {
        direct::get(&self.shared, resource, namespace, name)
    }

    /// Objects of a resource in a namespace (`""`: all namespaces), sorted
    /// by namespace and name.
    pub fn list(&self, resource: &str, namespace: &str) -> Vec<Value> {
        direct::list(&self.shared, resource, namespace)
    }

    /// Deletes an object at once (finalizers are ignored), emitting DELETED.
    /// Returns the deleted object; 404 when it does not exist.
    pub fn delete(&self, resource: &str, namespace: &str, name: &str) -> Result<Value, ApiError> {
        direct::delete(&self.shared, resource, namespace, name)
    }
}

impl Drop for FakeApiServer {
    fn drop(&mut self) {
        if let Some(task) = lock(&self.accept).take() {
            task.abort();
        }
        self.shared.cut_all();
    }
}

/// Binds the same address again, retrying briefly in case the old socket
/// is still being torn down.
async fn bind_again(addr: SocketAddr) -> io::Result<TcpListener> {
    let mut last = None;
    for _ in 0..50 {
        match TcpListener::bind(addr).await {
            Ok(l) => return Ok(l),
            Err(e) if e.kind() == io::ErrorKind::AddrInUse => {
                last = Some(e);
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
            Err(e) => return Err(e),
        }
    }
    Err(last.unwrap_or_else(|| io::Error::other("cannot bind again")))
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    loop {
        let (stream, _) = match listener.accept().await {
            Ok(conn) => conn,
            Err(e) => {
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let shared = Arc::clone(&shared);
        let mut cut = shared.cut.subscribe();
        tokio::spawn(async move {
            let svc_shared = Arc::clone(&shared);
            let service = service_fn(move |req| serve(Arc::clone(&svc_shared), req));
            let conn = http1::Builder::new()
                .keep_alive(true)
                .serve_connection(TokioIo::new(stream), service);
            tokio::select! {
                res = conn => {
                    if let Err(e) = res {
                        tracing::debug!(error = %e, "connection ended with an error");
                    }
                }
                _ = cut.changed() => {}
            }
        });
    }
}
