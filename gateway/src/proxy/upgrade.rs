//! Protocol upgrades (WebSocket, or any `Connection: upgrade` request over
//! HTTP/1.1), which ingress-nginx passes through without an annotation:
//! the `Upgrade` header goes upstream, and on `101 Switching Protocols`
//! both connections are spliced together until one side closes or no byte
//! moves either way for the shorter of `proxy-read-timeout` and
//! `proxy-send-timeout` (nginx re-arms both timers on any traffic). The
//! client's `limit-connections` slot is held until the tunnel ends.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use http::header::{CONNECTION, HeaderValue, UPGRADE};
use http::{Request, Response, StatusCode, Version};
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::oneshot;
use tokio::time::Instant;

use super::ResponseBody;
use crate::settings::ProxySettings;
use crate::upgrade_slot::{UpgradeSlot, Upgraded};

/// The client side of a requested upgrade.
#[derive(Debug)]
pub(crate) struct ClientUpgrade {
    /// The client's socket, once the connection's loop hands it over.
    on: oneshot::Receiver<Upgraded>,
    /// The `Upgrade` header the client sent, passed on upstream.
    pub(crate) protocol: HeaderValue,
}

/// Takes the upgrade an HTTP/1.1 request asks for (`Upgrade` with
/// `Connection: upgrade`), if any, from the connection's `slot`.
pub(crate) fn take<B>(req: &Request<B>, slot: Option<&UpgradeSlot>) -> Option<ClientUpgrade> {
    if req.version() != Version::HTTP_11 {
        return None;
    }
    let slot = slot?;
    let protocol = req.headers().get(UPGRADE)?.clone();
    let asks = req
        .headers()
        .get_all(CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|token| token.trim().eq_ignore_ascii_case("upgrade"));
    asks.then(|| ClientUpgrade {
        on: slot.expect(),
        protocol,
    })
}

/// On a `101` answer to an upgrade, gives the client the upgrade headers
/// and splices the two connections on a task of their own; otherwise the
/// client's upgrade is dropped and the response is a plain one.
pub(crate) fn splice(
    upgrade: Option<ClientUpgrade>,
    response: &mut Response<ResponseBody>,
    settings: &ProxySettings,
) {
    let Some(client) = upgrade else { return };
    if response.status() != StatusCode::SWITCHING_PROTOCOLS {
        return;
    }
    let protocol = response
        .headers()
        .get(UPGRADE)
        .cloned()
        .unwrap_or_else(|| client.protocol.clone());
    let headers = response.headers_mut();
    headers.insert(UPGRADE, protocol);
    headers.insert(CONNECTION, HeaderValue::from_static("upgrade"));
    let upstream = hyper::upgrade::on(&mut *response);
    let idle = settings.read_timeout.min(settings.send_timeout);
    // The client's `limit-connections` slot lasts as long as the tunnel.
    let permit = response.body_mut().take_permit();
    tokio::spawn(async move {
        tunnel(client.on, upstream, idle).await;
        drop(permit);
    });
}

/// Copies both ways until either side ends or `idle` passes without a byte.
async fn tunnel(client: oneshot::Receiver<Upgraded>, upstream: OnUpgrade, idle: Duration) {
    let (client, upstream) = match tokio::join!(client, upstream) {
        (Ok(client), Ok(upstream)) => (client, upstream),
        (Err(_), _) => {
            tracing::debug!("upgrade failed: the client connection ended first");
            return;
        }
        (_, Err(error)) => {
            tracing::debug!(%error, "upgrade failed");
            return;
        }
    };
    let activity = Activity::default();
    let mut client = Tracked {
        io: client,
        activity: activity.clone(),
    };
    let mut upstream = TokioIo::new(upstream);
    let copy = tokio::io::copy_bidirectional(&mut client, &mut upstream);
    let mut copy = std::pin::pin!(copy);
    loop {
        let deadline = activity.last() + idle;
        tokio::select! {
            result = &mut copy => {
                if let Err(error) = result {
                    tracing::debug!(%error, "upgraded connection ended with an error");
                }
                return;
            }
            () = tokio::time::sleep_until(deadline) => {
                if activity.last() + idle <= Instant::now() {
                    tracing::debug!(?idle, "upgraded connection idle; closing");
                    return;
                }
            }
        }
    }
}

/// When bytes last moved through a tunnel.
#[derive(Clone, Debug)]
struct Activity {
    start: Instant,
    nanos: Arc<AtomicU64>,
}

impl Default for Activity {
    fn default() -> Self {
        Self {
            start: Instant::now(),
            nanos: Arc::default(),
        }
    }
}

impl Activity {
    fn touch(&self) {
        let nanos = u64::try_from(self.start.elapsed().as_nanos()).unwrap_or(u64::MAX);
        self.nanos.store(nanos, Ordering::Relaxed);
    }

    fn last(&self) -> Instant {
        self.start + Duration::from_nanos(self.nanos.load(Ordering::Relaxed))
    }
}

/// The client side of a tunnel, recording activity both ways (what it
/// reads goes upstream, what it writes came from upstream).
struct Tracked<T> {
    io: T,
    activity: Activity,
}

impl<T: AsyncRead + Unpin> AsyncRead for Tracked<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.io).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.activity.touch();
        }
        polled
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Tracked<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let polled = Pin::new(&mut self.io).poll_write(cx, buf);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
        }
        polled
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_http11_connection_upgrade_requests_are_taken() {
        let ask = |version, connection: &str| {
            let req = Request::get("/ws")
                .version(version)
                .header(UPGRADE, "websocket")
                .header(CONNECTION, connection)
                .body(())
                .unwrap();
            take(&req, Some(&UpgradeSlot::default())).map(|u| u.protocol)
        };
        assert_eq!(
            ask(Version::HTTP_11, "keep-alive, Upgrade").unwrap(),
            "websocket"
        );
        assert!(ask(Version::HTTP_11, "keep-alive").is_none());
        assert!(ask(Version::HTTP_10, "upgrade").is_none());
        let plain = Request::get("/").body(()).unwrap();
        assert!(take(&plain, Some(&UpgradeSlot::default())).is_none());
        let websocket = Request::get("/ws")
            .header(UPGRADE, "websocket")
            .header(CONNECTION, "upgrade")
            .body(())
            .unwrap();
        assert!(take(&websocket, None).is_none(), "no slot: HTTP/2");
    }

    #[test]
    fn a_refused_upgrade_is_a_plain_response() {
        let req = Request::get("/ws")
            .header(UPGRADE, "websocket")
            .header(CONNECTION, "upgrade")
            .body(())
            .unwrap();
        let upgrade = take(&req, Some(&UpgradeSlot::default()));
        let mut response = Response::new(ResponseBody::empty());
        splice(upgrade, &mut response, &ProxySettings::default());
        assert!(response.headers().get(UPGRADE).is_none());
    }
}
