//! A memcached client for the counters: the text protocol's `get`, `incr`
//! and `add`, over a bounded pool of connections.
//!
//! Hand-written rather than a crate: the three commands are a few lines
//! each, and what matters here (a permit per call bounding the connections
//! in use, a deadline over the whole call, idle connections dropped after
//! `max-idle-timeout`, replies bounded in size) is the part the async
//! memcached crates leave to the caller.

use std::io;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::sync::Semaphore;
use tokio::time::Instant;

/// A reply line longer than this is an error (a counter's reply is a few
/// bytes; `VALUE <key> <flags> <bytes>` under 300).
const MAX_LINE: usize = 512;

/// Where memcached is and how it is used (the ConfigMap's
/// `global-rate-limit-memcached-*`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemcachedConfig {
    /// `global-rate-limit-memcached-host`.
    pub host: String,
    /// `global-rate-limit-memcached-port` (11211).
    pub port: u16,
    /// `global-rate-limit-memcached-connect-timeout` (50 ms): for the
    /// connection, and again for each command.
    pub timeout: Duration,
    /// `global-rate-limit-memcached-max-idle-timeout` (10 s): an idle
    /// connection older than this is closed rather than reused.
    pub max_idle: Duration,
    /// `global-rate-limit-memcached-pool-size` (50): connections in use
    /// and kept idle at most.
    pub pool_size: usize,
}

type Connection = BufReader<TcpStream>;

/// A connection in use, holding one of the pool's permits.
struct Lease<'a> {
    conn: Connection,
    _permit: tokio::sync::SemaphorePermit<'a>,
}

/// The pool of connections to one memcached.
#[derive(Debug)]
pub(crate) struct Memcached {
    config: MemcachedConfig,
    permits: Semaphore,
    idle: Mutex<Vec<(Connection, Instant)>>,
}

impl Memcached {
    pub(crate) fn new(config: MemcachedConfig) -> Self {
        let size = config.pool_size.max(1);
        Self {
            permits: Semaphore::new(size),
            idle: Mutex::new(Vec::with_capacity(size)),
            config,
        }
    }

    /// Where it is and how it is used.
    pub(crate) fn config(&self) -> &MemcachedConfig {
        &self.config
    }

    /// The counter `key`, `None` when absent.
    pub(crate) async fn get(&self, key: &str) -> io::Result<Option<u64>> {
        self.within(async {
            let mut lease = self.lease().await?;
            let conn = &mut lease.conn;
            conn.get_mut()
                .write_all(format!("get {key}\r\n").as_bytes())
                .await?;
            let line = read_line(conn).await?;
            let value = if line == "END" {
                None
            } else {
                let bytes: usize = line
                    .strip_prefix("VALUE ")
                    .and_then(|rest| rest.split(' ').nth(2))
                    .and_then(|n| n.parse().ok())
                    .filter(|n| *n <= 20)
                    .ok_or_else(|| invalid(&line))?;
                let value = read_line(conn).await?;
                if value.len() != bytes || read_line(conn).await? != "END" {
                    return Err(invalid(&value));
                }
                Some(value.parse().map_err(|_| invalid(&value))?)
            };
            self.release(lease);
            Ok(value)
        })
        .await
    }

    /// Adds 1 to the counter `key`, creating it (expiring after `expiry`)
    /// when absent, as lua-resty-global-throttle does: `incr`, else `add`,
    /// else (another replica added it first) `incr` again.
    pub(crate) async fn incr(&self, key: &str, expiry: Duration) -> io::Result<u64> {
        let incr = format!("incr {key} 1\r\n");
        let add = format!("add {key} 0 {} 1\r\n1\r\n", expiry.as_secs().max(1));
        self.within(async {
            let mut lease = self.lease().await?;
            let conn = &mut lease.conn;
            conn.get_mut().write_all(incr.as_bytes()).await?;
            let mut line = read_line(conn).await?;
            if line == "NOT_FOUND" {
                conn.get_mut().write_all(add.as_bytes()).await?;
                line = match read_line(conn).await?.as_str() {
                    "STORED" => "1".to_owned(),
                    "NOT_STORED" => {
                        conn.get_mut().write_all(incr.as_bytes()).await?;
                        read_line(conn).await?
                    }
                    other => return Err(invalid(other)),
                };
            }
            let value = line.parse().map_err(|_| invalid(&line))?;
            self.release(lease);
            Ok(value)
        })
        .await
    }

    /// Runs `call` with the timeout.
    async fn within<T>(&self, call: impl Future<Output = io::Result<T>>) -> io::Result<T> {
        tokio::time::timeout(self.config.timeout, call)
            .await
            .unwrap_or_else(|_| {
                Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "memcached did not answer in time",
                ))
            })
    }

    /// A permit and a connection: an idle one, or a new one.
    async fn lease(&self) -> io::Result<Lease<'_>> {
        let permit = self
            .permits
            .acquire()
            .await
            .map_err(|_| io::Error::other("the pool is closed"))?;
        let conn = match self.take_idle() {
            Some(conn) => conn,
            None => self.connect().await?,
        };
        Ok(Lease {
            conn,
            _permit: permit,
        })
    }

    /// Returns a connection that read a whole reply to the pool.
    fn release(&self, lease: Lease<'_>) {
        let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        if idle.len() < self.config.pool_size.max(1) {
            idle.push((lease.conn, Instant::now()));
        }
    }

    async fn connect(&self) -> io::Result<Connection> {
        let stream = TcpStream::connect((self.config.host.as_str(), self.config.port)).await?;
        stream.set_nodelay(true)?;
        Ok(BufReader::with_capacity(1024, stream))
    }

    fn take_idle(&self) -> Option<Connection> {
        let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        while let Some((conn, since)) = idle.pop() {
            if since.elapsed() < self.config.max_idle {
                return Some(conn);
            }
        }
        None
    }
}

/// One reply line, without its CRLF, bounded in length.
async fn read_line(conn: &mut Connection) -> io::Result<String> {
    let mut line = Vec::with_capacity(32);
    loop {
        let available = conn.fill_buf().await?;
        if available.is_empty() {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        let (take, done) = match available.iter().position(|&b| b == b'\n') {
            Some(end) => (end + 1, true),
            None => (available.len(), false),
        };
        line.extend_from_slice(&available[..take]);
        conn.consume(take);
        if line.len() > MAX_LINE {
            return Err(invalid("reply line too long"));
        }
        if done {
            break;
        }
    }
    while line.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
        line.pop();
    }
    String::from_utf8(line).map_err(|_| invalid("reply not UTF-8"))
}

fn invalid(reply: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("unexpected memcached reply {reply:?}"),
    )
}
