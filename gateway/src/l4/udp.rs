//! One UDP service port, as nginx's stream proxy serves UDP: a session per
//! client address, each with its own upstream socket on one endpoint,
//! ended after `proxy-stream-responses` answers or `proxy-stream-timeout`
//! with no datagram either way. Sessions are bounded per port; past the
//! bound, datagrams from new clients are dropped and counted.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::{StreamProtocol, StreamSettings};
use crate::backend::Backend;
use crate::metrics::{ActiveGuard, Metrics, StreamStats};
use crate::table::TableHandle;

/// Client sessions one port keeps at once.
const MAX_SESSIONS: usize = 4096;
/// The largest datagram relayed (UDP's own limit).
const MAX_DATAGRAM: usize = 65_535;

/// One client's session.
struct Session {
    id: u64,
    upstream: Arc<UdpSocket>,
    activity: Arc<Activity>,
    stats: Option<Arc<StreamStats>>,
    relay: Option<JoinHandle<()>>,
    _active: Option<ActiveGuard>,
}

impl Drop for Session {
    fn drop(&mut self) {
        if let Some(relay) = self.relay.take() {
            relay.abort();
        }
    }
}

/// When a session last saw a datagram either way.
#[derive(Debug)]
struct Activity {
    start: Instant,
    last: AtomicU64,
}

impl Activity {
    fn new() -> Self {
        Self {
            start: Instant::now(),
            last: AtomicU64::new(0),
        }
    }

    fn touch(&self) {
        let millis = u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last.store(millis, Ordering::Relaxed);
    }

    fn deadline(&self, idle: Duration) -> Instant {
        self.start + Duration::from_millis(self.last.load(Ordering::Relaxed)) + idle
    }
}

/// Relays datagrams on `port` until the task is aborted.
pub(super) async fn serve(
    socket: UdpSocket,
    port: u16,
    table: TableHandle,
    metrics: Option<Arc<Metrics>>,
) {
    let socket = Arc::new(socket);
    let mut sessions: HashMap<SocketAddr, Session> = HashMap::new();
    let (ended_tx, mut ended) = mpsc::unbounded_channel::<(SocketAddr, u64)>();
    let mut next_id = 0u64;
    let mut buf = vec![0u8; MAX_DATAGRAM];
    loop {
        let (len, client) = tokio::select! {
            received = socket.recv_from(&mut buf) => match received {
                Ok(received) => received,
                Err(error) => {
                    // ICMP errors of earlier sends surface here: not fatal.
                    tracing::debug!(port, %error, "UDP service receive failed");
                    continue;
                }
            },
            Some((client, id)) = ended.recv() => {
                if sessions.get(&client).is_some_and(|s| s.id == id) {
                    sessions.remove(&client);
                }
                continue;
            }
        };
        let datagram = &buf[..len];
        if let Some(session) = sessions.get(&client) {
            session.activity.touch();
            count(session.stats.as_ref(), |s| &s.received, len);
            if session.upstream.send(datagram).await.is_err() {
                sessions.remove(&client);
            }
            continue;
        }
        let current = table.load_full();
        let Some((_, backend)) = current.stream(StreamProtocol::Udp, port) else {
            continue;
        };
        let ipv6 = client.ip().to_canonical().is_ipv6();
        if ipv6 && current.globals().listener.disable_ipv6 == Some(true) {
            continue;
        }
        let stats = super::stats(metrics.as_ref(), "udp", port, backend);
        if sessions.len() >= MAX_SESSIONS {
            count(stats.as_ref(), |s| &s.failed, 1);
            continue;
        }
        let settings = current.globals().streams;
        next_id += 1;
        let opened = open(backend, client, next_id, stats).await;
        let Some(mut session) = opened else { continue };
        count(session.stats.as_ref(), |s| &s.received, len);
        if session.upstream.send(datagram).await.is_err() {
            continue;
        }
        if settings.responses == Some(0) {
            continue;
        }
        session.relay = Some(tokio::spawn(relay(
            socket.clone(),
            client,
            session.id,
            session.upstream.clone(),
            session.activity.clone(),
            session.stats.clone(),
            settings,
            ended_tx.clone(),
        )));
        sessions.insert(client, session);
    }
}

/// A new session for `client` on an endpoint of `backend`.
async fn open(
    backend: &Backend,
    client: SocketAddr,
    id: u64,
    stats: Option<Arc<StreamStats>>,
) -> Option<Session> {
    let set = backend.endpoints();
    let Some(endpoint) = backend
        .policy()
        .algorithm
        .pick(backend.cursor(), set.endpoints(), |_| true)
    else {
        count(stats.as_ref(), |s| &s.failed, 1);
        tracing::warn!(backend = backend.name(), %client, "no ready endpoint for a UDP session");
        return None;
    };
    let addr = endpoint.addr();
    let local: IpAddr = match addr {
        SocketAddr::V4(_) => Ipv4Addr::UNSPECIFIED.into(),
        SocketAddr::V6(_) => Ipv6Addr::UNSPECIFIED.into(),
    };
    let upstream = match UdpSocket::bind(SocketAddr::new(local, 0)).await {
        Ok(socket) => socket,
        Err(error) => {
            count(stats.as_ref(), |s| &s.failed, 1);
            tracing::warn!(%error, "cannot open an upstream UDP socket");
            return None;
        }
    };
    if let Err(error) = upstream.connect(addr).await {
        count(stats.as_ref(), |s| &s.failed, 1);
        tracing::warn!(%addr, %error, "cannot reach a UDP endpoint");
        return None;
    }
    let activity = Arc::new(Activity::new());
    Some(Session {
        id,
        upstream: Arc::new(upstream),
        activity,
        _active: stats.as_ref().map(|s| s.open()),
        stats,
        relay: None,
    })
}

/// Sends the endpoint's answers back to `client` until the session ends.
#[allow(clippy::too_many_arguments, reason = "one task's state, moved in")]
async fn relay(
    listener: Arc<UdpSocket>,
    client: SocketAddr,
    id: u64,
    upstream: Arc<UdpSocket>,
    activity: Arc<Activity>,
    stats: Option<Arc<StreamStats>>,
    settings: StreamSettings,
    ended: mpsc::UnboundedSender<(SocketAddr, u64)>,
) {
    let mut buf = vec![0u8; MAX_DATAGRAM];
    let mut answers = 0u32;
    loop {
        let deadline = activity.deadline(settings.timeout);
        let received = tokio::time::timeout_at(deadline, upstream.recv(&mut buf)).await;
        match received {
            Ok(Ok(len)) => {
                activity.touch();
                if listener.send_to(&buf[..len], client).await.is_ok() {
                    count(stats.as_ref(), |s| &s.sent, len);
                }
                answers = answers.saturating_add(1);
                if settings.responses.is_some_and(|limit| answers >= limit) {
                    break;
                }
            }
            Ok(Err(error)) => {
                tracing::debug!(%client, %error, "UDP endpoint unreachable");
                break;
            }
            // The client may have sent since: only a real silence ends it.
            Err(_) if Instant::now() < activity.deadline(settings.timeout) => {}
            Err(_) => break,
        }
    }
    let _ = ended.send((client, id));
}

fn count(stats: Option<&Arc<StreamStats>>, which: fn(&StreamStats) -> &AtomicU64, n: usize) {
    if let Some(stats) = stats {
        which(stats).fetch_add(n as u64, Ordering::Relaxed);
    }
}
