//! The PROXY protocol (HAProxy's, versions 1 and 2), read at the start of
//! a connection when `use-proxy-protocol` is on (nginx's `listen ...
//! proxy_protocol`), and written at the start of an upstream connection
//! for TCP services that ask for it (`:PROXY:PROXY`).
//!
//! Reading is bounded: the header must arrive within
//! `proxy-protocol-header-timeout` and fit [`MAX_HEADER`] bytes; anything
//! else (no header, a broken one, a timeout) closes the connection, as
//! nginx does. Bytes read past the header are handed back to be replayed.
//! A `LOCAL` (v2) or `UNKNOWN` (v1) header is accepted and keeps the TCP
//! peer's address, as nginx does for load-balancer health checks.

use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use ppp::v2::{self, Command};
use ppp::{HeaderResult, PartialResult, v1};
use tokio::io::{AsyncRead, AsyncReadExt};

/// The longest header accepted, TLVs included (a v1 header is at most 107
/// bytes; v2 allows 64 KiB, which no load balancer needs).
pub const MAX_HEADER: usize = 4096;

/// The longest TLV value kept for the access log.
const MAX_TLV_TEXT: usize = 255;

/// Where a connection came from, by its PROXY header.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Origin {
    /// The client's address and port (`$proxy_protocol_addr`,
    /// `$proxy_protocol_port`); `None` for `LOCAL` / `UNKNOWN` headers.
    pub source: Option<SocketAddr>,
    /// The address and port the client connected to
    /// (`$proxy_protocol_server_addr`, `$proxy_protocol_server_port`).
    pub destination: Option<SocketAddr>,
    /// What the v2 header's TLVs said.
    pub tlvs: Tlvs,
}

/// The v2 TLVs the gateway reads (bounded, printable text only).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Tlvs {
    /// `PP2_TYPE_AUTHORITY`: the host name the client asked for (SNI).
    pub authority: Option<Box<str>>,
    /// `PP2_TYPE_UNIQUE_ID`, as lower-case hex.
    pub unique_id: Option<Box<str>>,
    /// AWS `PP2_SUBTYPE_AWS_VPCE_ID`: the VPC endpoint the client used.
    pub aws_vpce_id: Option<Box<str>>,
}

impl Tlvs {
    /// Whether no TLV was read.
    pub fn is_empty(&self) -> bool {
        self.authority.is_none() && self.unique_id.is_none() && self.aws_vpce_id.is_none()
    }
}

/// Why a connection's PROXY header was refused (the connection is closed).
#[derive(Debug, thiserror::Error)]
pub enum HeaderError {
    /// Nothing complete within `proxy-protocol-header-timeout`.
    #[error("no complete PROXY protocol header within {0:?}")]
    Timeout(Duration),
    /// The client closed (or the read failed) before the header ended.
    #[error("connection ended before the PROXY protocol header: {0}")]
    Closed(String),
    /// Not a PROXY header, or a broken one.
    #[error("broken PROXY protocol header: {0}")]
    Invalid(String),
    /// Longer than [`MAX_HEADER`].
    #[error("PROXY protocol header longer than {MAX_HEADER} bytes")]
    TooLong,
}

/// Reads a PROXY header from `stream` within `timeout`; returns what it
/// says and the bytes read after it.
pub async fn read<S: AsyncRead + Unpin>(
    stream: &mut S,
    timeout: Duration,
) -> Result<(Origin, Bytes), HeaderError> {
    match tokio::time::timeout(timeout, read_unbounded_in_time(stream)).await {
        Ok(result) => result,
        Err(_) => Err(HeaderError::Timeout(timeout)),
    }
}

async fn read_unbounded_in_time<S: AsyncRead + Unpin>(
    stream: &mut S,
) -> Result<(Origin, Bytes), HeaderError> {
    let mut buf = BytesMut::with_capacity(512);
    loop {
        // Internal: never read past MAX_HEADER; the rest stays in the socket.
        let room = MAX_HEADER + 1 - buf.len();
        let read = (&mut *stream)
            .take(room as u64)
            .read_buf(&mut buf)
            .await
            .map_err(|e| HeaderError::Closed(e.to_string()))?;
        if read == 0 {
            return Err(HeaderError::Closed("end of stream".to_owned()));
        }
        match parse(&buf)? {
            Some((origin, length)) => {
                let rest = buf.split_off(length).freeze();
                return Ok((origin, rest));
            }
            None if buf.len() > MAX_HEADER => return Err(HeaderError::TooLong),
            None => {}
        }
    }
}

/// Parses a header at the start of `input`: `Ok(None)` while more bytes
/// could complete it, else what it says and its length.
pub fn parse(input: &[u8]) -> Result<Option<(Origin, usize)>, HeaderError> {
    let result = HeaderResult::parse(input);
    if result.is_incomplete() {
        return Ok(None);
    }
    match result {
        HeaderResult::V1(Ok(header)) => Ok(Some((v1_origin(&header), header.header.len()))),
        HeaderResult::V2(Ok(header)) => {
            if header.len() > MAX_HEADER {
                return Err(HeaderError::TooLong);
            }
            Ok(Some((v2_origin(&header)?, header.len())))
        }
        HeaderResult::V1(Err(error)) => Err(HeaderError::Invalid(error.to_string())),
        HeaderResult::V2(Err(error)) => Err(HeaderError::Invalid(error.to_string())),
    }
}

fn v1_origin(header: &v1::Header<'_>) -> Origin {
    let (source, destination) = match header.addresses {
        v1::Addresses::Tcp4(a) => (
            SocketAddr::from((a.source_address, a.source_port)),
            SocketAddr::from((a.destination_address, a.destination_port)),
        ),
        v1::Addresses::Tcp6(a) => (
            SocketAddr::from((a.source_address, a.source_port)),
            SocketAddr::from((a.destination_address, a.destination_port)),
        ),
        v1::Addresses::Unknown => return Origin::default(),
    };
    Origin {
        source: Some(source),
        destination: Some(destination),
        tlvs: Tlvs::default(),
    }
}

fn v2_origin(header: &v2::Header<'_>) -> Result<Origin, HeaderError> {
    let tlvs = tlvs(header)?;
    let addresses = match header.command {
        Command::Local => None,
        Command::Proxy => match header.addresses {
            v2::Addresses::IPv4(a) => Some((
                SocketAddr::from((a.source_address, a.source_port)),
                SocketAddr::from((a.destination_address, a.destination_port)),
            )),
            v2::Addresses::IPv6(a) => Some((
                SocketAddr::from((a.source_address, a.source_port)),
                SocketAddr::from((a.destination_address, a.destination_port)),
            )),
            v2::Addresses::Unix(_) | v2::Addresses::Unspecified => None,
        },
    };
    Ok(Origin {
        source: addresses.map(|a| a.0),
        destination: addresses.map(|a| a.1),
        tlvs,
    })
}

/// The TLVs the gateway keeps; a malformed TLV list breaks the header.
fn tlvs(header: &v2::Header<'_>) -> Result<Tlvs, HeaderError> {
    const AUTHORITY: u8 = 0x02;
    const UNIQUE_ID: u8 = 0x05;
    const AWS: u8 = 0xEA;
    const AWS_VPCE_ID: u8 = 0x01;
    let mut tlvs = Tlvs::default();
    for tlv in header.tlvs() {
        let tlv = tlv.map_err(|e| HeaderError::Invalid(e.to_string()))?;
        match tlv.kind {
            AUTHORITY => tlvs.authority = text(&tlv.value),
            UNIQUE_ID if tlv.value.len() <= 128 => {
                let hex: String = tlv.value.iter().map(|b| format!("{b:02x}")).collect();
                tlvs.unique_id = Some(hex.into());
            }
            AWS if tlv.value.first() == Some(&AWS_VPCE_ID) => {
                tlvs.aws_vpce_id = text(&tlv.value[1..]);
            }
            _ => {}
        }
    }
    Ok(tlvs)
}

/// A TLV value as text, if it is short printable ASCII.
fn text(value: &[u8]) -> Option<Box<str>> {
    let printable = !value.is_empty()
        && value.len() <= MAX_TLV_TEXT
        && value.iter().all(|b| b.is_ascii_graphic());
    printable
        .then(|| std::str::from_utf8(value).ok().map(Box::from))
        .flatten()
}

/// A v1 header for an upstream connection (`:PROXY:PROXY`): the client's
/// address and the address it connected to, as nginx's `proxy_protocol
/// on` writes it.
pub fn v1_header(client: SocketAddr, local: SocketAddr) -> Vec<u8> {
    let client = canonical(client);
    let local = canonical(local);
    let addresses: v1::Addresses = match (client, local) {
        (SocketAddr::V4(_), SocketAddr::V4(_)) | (SocketAddr::V6(_), SocketAddr::V6(_)) => {
            (client, local).into()
        }
        _ => v1::Addresses::Unknown,
    };
    Header(addresses).to_string().into_bytes()
}

/// Displays a v1 header line.
struct Header(v1::Addresses);

impl fmt::Display for Header {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            v1::Addresses::Tcp4(a) => write!(
                f,
                "PROXY TCP4 {} {} {} {}\r\n",
                a.source_address, a.destination_address, a.source_port, a.destination_port
            ),
            v1::Addresses::Tcp6(a) => write!(
                f,
                "PROXY TCP6 {} {} {} {}\r\n",
                a.source_address, a.destination_address, a.source_port, a.destination_port
            ),
            v1::Addresses::Unknown => f.write_str("PROXY UNKNOWN\r\n"),
        }
    }
}

/// An IPv4-mapped IPv6 address as IPv4.
fn canonical(addr: SocketAddr) -> SocketAddr {
    SocketAddr::new(addr.ip().to_canonical(), addr.port())
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    fn v2(source: &str, destination: &str, tlvs: &[(u8, &[u8])]) -> Vec<u8> {
        let mut builder = v2::Builder::with_addresses(
            v2::Version::Two | v2::Command::Proxy,
            v2::Protocol::Stream,
            (addr(source), addr(destination)),
        );
        for (kind, value) in tlvs {
            builder = builder.write_tlv(*kind, value).unwrap();
        }
        builder.build().unwrap()
    }

    #[test]
    fn v1_headers_give_addresses_and_their_length() {
        let input = b"PROXY TCP4 192.0.2.7 10.0.0.1 51234 443\r\nGET / HTTP/1.1\r\n";
        let (origin, length) = parse(input).unwrap().unwrap();
        assert_eq!(origin.source, Some(addr("192.0.2.7:51234")));
        assert_eq!(origin.destination, Some(addr("10.0.0.1:443")));
        assert_eq!(&input[length..], b"GET / HTTP/1.1\r\n");
        let (origin, _) = parse(b"PROXY TCP6 2001:db8::1 2001:db8::2 1 2\r\n")
            .unwrap()
            .unwrap();
        assert_eq!(origin.source, Some(addr("[2001:db8::1]:1")));
        let (unknown, length) = parse(b"PROXY UNKNOWN\r\n").unwrap().unwrap();
        assert_eq!((unknown, length), (Origin::default(), 15));
    }

    #[test]
    fn partial_headers_wait_and_broken_ones_are_refused() {
        assert!(parse(b"").unwrap().is_none());
        assert!(parse(b"PRO").unwrap().is_none());
        assert!(parse(b"PROXY TCP4 192.0.2.7").unwrap().is_none());
        assert!(
            parse(&v2("192.0.2.7:1", "10.0.0.1:2", &[])[..20])
                .unwrap()
                .is_none()
        );
        for broken in [
            &b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"[..],
            b"PROXY TCP4 not-an-ip 10.0.0.1 1 2\r\n",
            b"PROXY TCP4 192.0.2.7 10.0.0.1 99999 2\r\n",
            b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",
        ] {
            assert!(
                matches!(parse(broken), Err(HeaderError::Invalid(_))),
                "{broken:?}"
            );
        }
        let long = [b'P'; 200];
        assert!(parse(&long).is_err());
    }

    #[test]
    fn v2_headers_give_addresses_and_tlvs() {
        let mut aws = vec![0x01];
        aws.extend_from_slice(b"vpce-0123abcd");
        let header = v2(
            "[2001:db8::7]:40000",
            "[2001:db8::1]:443",
            &[
                (0x02, b"api.example.com"),
                (0x05, &[0xab, 0x01]),
                (0xEA, &aws),
            ],
        );
        let mut input = header.clone();
        input.extend_from_slice(b"rest");
        let (origin, length) = parse(&input).unwrap().unwrap();
        assert_eq!(length, header.len());
        assert_eq!(origin.source, Some(addr("[2001:db8::7]:40000")));
        assert_eq!(origin.destination, Some(addr("[2001:db8::1]:443")));
        assert_eq!(origin.tlvs.authority.as_deref(), Some("api.example.com"));
        assert_eq!(origin.tlvs.unique_id.as_deref(), Some("ab01"));
        assert_eq!(origin.tlvs.aws_vpce_id.as_deref(), Some("vpce-0123abcd"));
    }

    #[test]
    fn v2_local_keeps_the_peer() {
        let local = v2::Builder::with_addresses(
            v2::Version::Two | v2::Command::Local,
            v2::Protocol::Unspecified,
            v2::Addresses::Unspecified,
        )
        .build()
        .unwrap();
        let (origin, length) = parse(&local).unwrap().unwrap();
        assert_eq!((origin, length), (Origin::default(), 16));
    }

    #[test]
    fn oversized_v2_headers_are_refused() {
        let big = vec![b'x'; MAX_HEADER];
        let header = v2("192.0.2.7:1", "10.0.0.1:2", &[(0x02, &big)]);
        assert!(matches!(parse(&header), Err(HeaderError::TooLong)));
    }

    #[tokio::test]
    async fn reading_keeps_what_follows_and_times_out() {
        let (mut client, mut server) = tokio::io::duplex(1024);
        client.write_all(b"PROXY TCP4 192.0.2.7 ").await.unwrap();
        let reader = tokio::spawn(async move { read(&mut server, Duration::from_secs(5)).await });
        client.write_all(b"10.0.0.1 5 443\r\nhello").await.unwrap();
        let (origin, rest) = reader.await.unwrap().unwrap();
        assert_eq!(origin.source, Some(addr("192.0.2.7:5")));
        assert_eq!(&rest[..], b"hello");

        let (_silent, mut server) = tokio::io::duplex(64);
        let started = tokio::time::Instant::now();
        let result = read(&mut server, Duration::from_millis(100)).await;
        assert!(matches!(result, Err(HeaderError::Timeout(_))));
        assert!(started.elapsed() >= Duration::from_millis(100));
    }

    #[test]
    fn upstream_headers_are_v1_lines() {
        let line = v1_header(addr("192.0.2.7:5000"), addr("10.0.0.1:9000"));
        assert_eq!(line, b"PROXY TCP4 192.0.2.7 10.0.0.1 5000 9000\r\n");
        let mixed = v1_header(addr("[2001:db8::1]:1"), addr("10.0.0.1:9000"));
        assert_eq!(mixed, b"PROXY UNKNOWN\r\n");
        let mapped = v1_header(addr("[::ffff:192.0.2.7]:1"), addr("10.0.0.1:2"));
        assert_eq!(mapped, b"PROXY TCP4 192.0.2.7 10.0.0.1 1 2\r\n");
        let (origin, _) = parse(&line).unwrap().unwrap();
        assert_eq!(origin.source, Some(addr("192.0.2.7:5000")));
    }
}
