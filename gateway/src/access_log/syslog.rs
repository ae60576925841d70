//! `enable-syslog`: access log lines as syslog messages over UDP, one
//! datagram per line, in the form nginx's `access_log syslog:server=...`
//! sends (RFC 3164 style): `<190>Nov 24 16:00:00 <hostname> nginx: <line>`
//! (facility local7, severity info, tag `nginx`, no trailing newline).

use std::io;
use std::net::{ToSocketAddrs, UdpSocket};
use std::time::SystemTime;

use super::clock;

/// nginx's default priority: facility local7 (23) × 8 + severity info (6).
const PRIORITY: &[u8] = b"<190>";

/// The largest UDP payload.
const MAX_DATAGRAM: usize = 65_507;

/// A connected syslog destination.
#[derive(Debug)]
pub(crate) struct Syslog {
    socket: UdpSocket,
    /// ` <hostname> nginx: `, after the time.
    tail: Vec<u8>,
    message: Vec<u8>,
}

impl Syslog {
    /// Resolves `host` (a name is looked up once, as nginx does when it
    /// reads its configuration) and connects a UDP socket to it.
    pub(crate) fn connect(host: &str, port: u16) -> io::Result<Self> {
        let addr = (host, port)
            .to_socket_addrs()?
            .next()
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no address"))?;
        let bind: std::net::SocketAddr = if addr.is_ipv4() {
            ([0, 0, 0, 0], 0).into()
        } else {
            (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
        };
        let socket = UdpSocket::bind(bind)?;
        socket.connect(addr)?;
        let mut tail = b" ".to_vec();
        tail.extend_from_slice(clock::hostname().to_ascii_lowercase().as_bytes());
        tail.extend_from_slice(b" nginx: ");
        Ok(Self {
            socket,
            tail,
            message: Vec::with_capacity(1024),
        })
    }

    /// Sends every line of `batch` (lines end with `\n`) as one message.
    /// A refused send (no listener: ICMP unreachable) loses that line only.
    pub(crate) fn send_lines(&mut self, batch: &[u8], now: SystemTime) -> io::Result<()> {
        let mut failed = None;
        for line in batch.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
            self.message.clear();
            self.message.extend_from_slice(PRIORITY);
            clock::with(now, |second| {
                self.message.extend_from_slice(second.syslog());
            });
            self.message.extend_from_slice(&self.tail);
            self.message.extend_from_slice(line);
            self.message.truncate(MAX_DATAGRAM);
            if let Err(error) = self.socket.send(&self.message) {
                failed = Some(error);
            }
        }
        failed.map_or(Ok(()), Err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn one_datagram_per_line_with_nginx_header() {
        let receiver = UdpSocket::bind("127.0.0.1:0").unwrap();
        receiver
            .set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        let port = receiver.local_addr().unwrap().port();
        let mut syslog = Syslog::connect("127.0.0.1", port).unwrap();
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_764_000_000);
        syslog.send_lines(b"first line\nsecond\n", now).unwrap();
        let mut buf = [0_u8; 2048];
        let host = clock::hostname().to_ascii_lowercase();
        for want in ["first line", "second"] {
            let n = receiver.recv(&mut buf).unwrap();
            assert_eq!(
                String::from_utf8_lossy(&buf[..n]),
                format!("<190>Nov 24 16:00:00 {host} nginx: {want}")
            );
        }
    }
}
