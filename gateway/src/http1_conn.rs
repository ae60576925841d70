//! One HTTP/1.1 client connection: hyper serves it while requests come,
//! and it is parked while it idles.
//!
//! hyper keeps an 8 KiB read buffer, an 8 KiB write buffer and the last
//! request's header map for as long as its connection lives. When a
//! keep-alive wait for the next request head has lasted
//! [`crate::keepalive::PARK_AFTER`], the loop here ends hyper's connection
//! (it is idle: nothing is in flight), keeps the socket and the service,
//! and watches the socket alone until the client sends again (a new hyper
//! connection then carries on with the wait's deadline), the wait's
//! deadline passes, or the gateway shuts down (the socket is closed, as
//! hyper closes an idle connection then). nginx likewise frees a
//! keep-alive connection's buffers while it waits.
//!
//! Upgrades are handed over here too: hyper gives the socket back once a
//! `101 Switching Protocols` is written, and the loop passes it, with the
//! bytes hyper had read past the request, to the tunnel that asked for it
//! through the connection's [`UpgradeSlot`].

use std::error::Error as StdError;
use std::future::poll_fn;
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::task::Poll;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use hyper::body::{Body, Incoming};
use hyper::server::conn::http1;
use hyper::service::HttpService;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};

use crate::client_io::{ClientIo, ReadReady};
use crate::keepalive::{HeadTimer, IdleWatch};
use crate::rewind::Rewind;
use crate::shutdown::ShutdownSignal;
use crate::upgrade_slot::UpgradeSlot;

/// What an HTTP/1.1 connection is served with.
pub(crate) struct Http1<Svc> {
    /// hyper's settings for the connection (its timer is set here).
    pub(crate) builder: http1::Builder,
    /// How long a keep-alive wait for the next request head lasts.
    pub(crate) keepalive: Duration,
    /// The request handler, kept across parks.
    pub(crate) service: Svc,
    /// Where an upgrade's tunnel waits for the socket.
    pub(crate) upgrades: Arc<UpgradeSlot>,
}

/// How one hyper connection over the socket ended without an error.
enum Ended {
    /// hyper is done with the connection (closed, drained or upgraded).
    Done,
    /// Parked while idle; the wait for the next head ends at the deadline.
    Parked(Instant),
}

/// Serves `stream` until the client or the gateway ends the connection, or
/// an upgrade takes the socket (see the module docs).
pub(crate) async fn serve<S, Svc, B>(
    stream: ClientIo<S>,
    mut http1: Http1<Svc>,
    shutdown: &mut ShutdownSignal,
) -> Result<(), hyper::Error>
where
    S: AsyncRead + AsyncWrite + ReadReady + Send + Unpin + 'static,
    Svc: HttpService<Incoming, ResBody = B> + Unpin,
    Svc::Future: Unpin,
    Svc::Error: Into<Box<dyn StdError + Send + Sync>>,
    B: Body + Unpin + 'static,
    B::Error: Into<Box<dyn StdError + Send + Sync>>,
{
    let idle = Arc::new(IdleWatch::default());
    let mut stream = Rewind::new(stream);
    let mut resumed = None;
    loop {
        let timer = HeadTimer::new(http1.keepalive, idle.clone(), resumed);
        let mut conn = http1
            .builder
            .timer(timer)
            .serve_connection(TokioIo::new(stream), http1.service);
        let ended = drive(&mut conn, &idle, shutdown).await?;
        let http1::Parts {
            io,
            read_buf,
            service,
            ..
        } = conn.into_parts();
        let (rest, socket) = io.into_inner().into_parts();
        let unread = unread(&read_buf, rest);
        drop(read_buf);
        if let Some(tunnel) = http1.upgrades.take() {
            // The tunnel may have given up already; the socket closes then.
            let _ = tunnel.send(Box::new(Rewind::with_prefix(socket, unread)));
            return Ok(());
        }
        let Ended::Parked(deadline) = ended else {
            close(socket).await;
            return Ok(());
        };
        if unread.is_empty() && !client_sends(&socket, deadline, shutdown).await {
            return Ok(());
        }
        stream = Rewind::with_prefix(socket, unread);
        http1.service = service;
        resumed = Some(deadline);
    }
}

/// Polls hyper's connection until it ends; ends it gracefully when the
/// gateway shuts down, or when a head wait asks to park it.
async fn drive<I, Svc, B>(
    conn: &mut http1::Connection<I, Svc>,
    idle: &IdleWatch,
    shutdown: &mut ShutdownSignal,
) -> Result<Ended, hyper::Error>
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin,
    Svc: HttpService<Incoming, ResBody = B> + Unpin,
    Svc::Future: Unpin,
    Svc::Error: Into<Box<dyn StdError + Send + Sync>>,
    B: Body + Unpin + 'static,
    B::Error: Into<Box<dyn StdError + Send + Sync>>,
{
    let mut stop = pin!(shutdown.triggered());
    let mut draining = false;
    let mut parked = None;
    poll_fn(|cx| {
        loop {
            if !draining && stop.as_mut().poll(cx).is_ready() {
                draining = true;
                parked = None;
                Pin::new(&mut *conn).graceful_shutdown();
            }
            match conn.poll_without_shutdown(cx) {
                Poll::Ready(result) => {
                    return Poll::Ready(result.map(|()| parked.map_or(Ended::Done, Ended::Parked)));
                }
                Poll::Pending => match idle.take_park() {
                    // Asked only by a wait after a response: hyper's
                    // connection is idle, and ends at once.
                    Some(deadline) if !draining && parked.is_none() => {
                        parked = Some(deadline);
                        Pin::new(&mut *conn).graceful_shutdown();
                    }
                    _ => return Poll::Pending,
                },
            }
        }
    })
    .await
}

/// Waits, with hyper's state dropped, until the client sends again (true),
/// or the deadline passes or the gateway shuts down (false).
async fn client_sends<S: ReadReady>(
    socket: &ClientIo<S>,
    deadline: Instant,
    shutdown: &mut ShutdownSignal,
) -> bool {
    tokio::select! {
        ready = poll_fn(|cx| socket.poll_read_ready(cx)) => ready.is_ok(),
        () = tokio::time::sleep_until(deadline.into()) => false,
        () = shutdown.triggered() => false,
    }
}

/// Flushes and shuts the socket down, as hyper does at a connection's
/// end (bounded by the socket's send timeout).
async fn close<S: AsyncWrite + Unpin>(mut socket: ClientIo<S>) {
    if let Err(error) = socket.shutdown().await {
        tracing::debug!(%error, "client connection shutdown failed");
    }
}

/// What hyper read and did not use, then what the stream had not yet
/// replayed to it. Copied: hyper's bytes are a view of its 8 KiB read
/// buffer, which they would keep alive while the connection is parked.
fn unread(read: &[u8], rest: Bytes) -> Bytes {
    if read.is_empty() {
        return rest;
    }
    let mut both = BytesMut::with_capacity(read.len() + rest.len());
    both.extend_from_slice(read);
    both.extend_from_slice(&rest);
    both.freeze()
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;

    use http::{Request, Response, StatusCode};
    use http_body_util::Full;
    use hyper::service::service_fn;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::{TcpListener, TcpStream};

    use super::*;
    use crate::keepalive::PARK_AFTER;
    use crate::shutdown::{ShutdownTrigger, shutdown_channel};

    const GET: &[u8] = b"GET / HTTP/1.1\r\nHost: a\r\n\r\n";
    const UPGRADE: &[u8] =
        b"GET /ws HTTP/1.1\r\nHost: a\r\nConnection: upgrade\r\nUpgrade: echo\r\n\r\n";

    /// A server of one connection with `keepalive`, answering `ok` (and
    /// `101`, then echoing what the tunnel reads, to `/ws`); the client's
    /// end and the trigger that shuts the server down.
    async fn connection(keepalive: Duration) -> (TcpStream, ShutdownTrigger) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap());
        let (client, accepted) = tokio::join!(client, listener.accept());
        let (socket, _) = accepted.unwrap();
        let (trigger, mut signal) = shutdown_channel();
        let upgrades = Arc::new(UpgradeSlot::default());
        let slot = upgrades.clone();
        let service = service_fn(move |req: Request<Incoming>| {
            let tunnel = (req.uri().path() == "/ws").then(|| slot.expect());
            let answer = match tunnel {
                Some(tunnel) => {
                    tokio::spawn(async move {
                        let mut socket = tunnel.await.unwrap();
                        let mut buf = [0; 5];
                        socket.read_exact(&mut buf).await.unwrap();
                        socket.write_all(&buf).await.unwrap();
                    });
                    Response::builder()
                        .status(StatusCode::SWITCHING_PROTOCOLS)
                        .header("connection", "upgrade")
                        .header("upgrade", "echo")
                        .body(Full::new(Bytes::new()))
                }
                None => Response::builder().body(Full::new(Bytes::from_static(b"ok"))),
            };
            std::future::ready(Ok::<_, Infallible>(answer.unwrap()))
        });
        let mut builder = http1::Builder::new();
        builder.header_read_timeout(Duration::from_secs(5));
        let http1 = Http1 {
            builder,
            keepalive,
            service,
            upgrades,
        };
        let socket = ClientIo::new(socket, Duration::from_secs(5));
        tokio::spawn(async move { serve(socket, http1, &mut signal).await });
        (client.unwrap(), trigger)
    }

    /// Sends a GET and reads its response (`ok`, framed by length).
    async fn get(client: &mut TcpStream) -> String {
        client.write_all(GET).await.unwrap();
        read_response(client).await
    }

    async fn read_response(client: &mut TcpStream) -> String {
        let mut response = Vec::new();
        let mut buf = [0; 1024];
        while !response.ends_with(b"\r\n\r\nok") && !response.ends_with(b"\r\n\r\n") {
            let n = client.read(&mut buf).await.unwrap();
            assert!(
                n > 0,
                "closed after {:?}",
                String::from_utf8_lossy(&response)
            );
            response.extend_from_slice(&buf[..n]);
        }
        String::from_utf8(response).unwrap()
    }

    /// Whether the server closed the connection within `within`.
    async fn closed_within(client: &mut TcpStream, within: Duration) -> bool {
        let mut buf = [0; 16];
        matches!(
            tokio::time::timeout(within, client.read(&mut buf)).await,
            Ok(Ok(0) | Err(_))
        )
    }

    #[tokio::test]
    async fn a_parked_connection_serves_the_next_request() {
        let (mut client, _trigger) = connection(Duration::from_secs(10)).await;
        assert!(get(&mut client).await.starts_with("HTTP/1.1 200"));
        tokio::time::sleep(PARK_AFTER * 2).await;
        assert!(get(&mut client).await.ends_with("ok"));
        tokio::time::sleep(PARK_AFTER * 2).await;
        // A head that comes in pieces across the resume.
        client.write_all(&GET[..10]).await.unwrap();
        tokio::time::sleep(Duration::from_millis(50)).await;
        client.write_all(&GET[10..]).await.unwrap();
        assert!(read_response(&mut client).await.ends_with("ok"));
    }

    #[tokio::test]
    async fn a_parked_wait_keeps_its_keepalive_deadline() {
        let keepalive = PARK_AFTER * 3;
        let (mut client, _trigger) = connection(keepalive).await;
        get(&mut client).await;
        assert!(!closed_within(&mut client, keepalive / 2).await);
        assert!(closed_within(&mut client, keepalive).await);
    }

    #[tokio::test]
    async fn a_head_begun_while_parked_must_end_by_the_deadline() {
        let keepalive = PARK_AFTER * 3;
        let (mut client, _trigger) = connection(keepalive).await;
        get(&mut client).await;
        tokio::time::sleep(PARK_AFTER * 2).await;
        client.write_all(&GET[..10]).await.unwrap();
        assert!(closed_within(&mut client, keepalive).await);
    }

    #[tokio::test]
    async fn shutting_down_closes_a_parked_connection_at_once() {
        let (mut client, trigger) = connection(Duration::from_secs(30)).await;
        get(&mut client).await;
        tokio::time::sleep(PARK_AFTER * 2).await;
        trigger.trigger();
        assert!(closed_within(&mut client, Duration::from_secs(2)).await);
    }

    #[tokio::test]
    async fn an_upgrade_gets_the_socket_and_the_bytes_sent_with_the_request() {
        let (mut client, _trigger) = connection(Duration::from_secs(10)).await;
        get(&mut client).await;
        tokio::time::sleep(PARK_AFTER * 2).await;
        client
            .write_all(&[UPGRADE, b"hello"].concat())
            .await
            .unwrap();
        let mut answer = Vec::new();
        let mut buf = [0; 1024];
        while !answer.ends_with(b"\r\n\r\nhello") {
            let n = client.read(&mut buf).await.unwrap();
            assert!(n > 0, "closed after {:?}", String::from_utf8_lossy(&answer));
            answer.extend_from_slice(&buf[..n]);
        }
        assert!(answer.starts_with(b"HTTP/1.1 101"));
    }
}
