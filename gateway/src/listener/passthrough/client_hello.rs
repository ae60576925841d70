//! The server name of a TLS ClientHello, read without answering it: the
//! bytes are parsed by rustls' `Acceptor` (a maintained, fuzzed parser)
//! from a copy, and the originals are kept to be replayed to whoever
//! terminates the TLS session, the passthrough backend or the gateway.

use bytes::BytesMut;
use rustls::server::Acceptor;
use tokio::io::{AsyncRead, AsyncReadExt};

/// The most bytes read looking for a complete ClientHello: one TLS record
/// of 16 KiB plus headers is always enough for the first message (a
/// post-quantum key share makes it ~1.8 KiB today).
pub(crate) const MAX_HELLO: usize = 16 * 1024 + 512;

/// What the first bytes of a connection say.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Hello {
    /// A ClientHello naming a server (lower case).
    Named(String),
    /// A ClientHello without SNI, something that is not TLS, or a hello
    /// too large: the gateway terminates (and refuses) it as usual.
    Other,
    /// The client closed before a whole ClientHello.
    Closed,
}

/// Reads from `stream` into `buf` until a whole ClientHello is there (or
/// it cannot be one); everything read stays in `buf`.
pub(crate) async fn read<S: AsyncRead + Unpin>(stream: &mut S, buf: &mut BytesMut) -> Hello {
    let mut acceptor = Acceptor::default();
    let mut fed = 0;
    loop {
        if buf.len() > fed {
            let mut unread = &buf[fed..];
            while !unread.is_empty() {
                match acceptor.read_tls(&mut unread) {
                    Ok(0) | Err(_) => return Hello::Other,
                    Ok(_) => {}
                }
            }
            fed = buf.len();
            match acceptor.accept() {
                Ok(Some(accepted)) => {
                    return match accepted.client_hello().server_name() {
                        Some(name) => Hello::Named(name.to_ascii_lowercase()),
                        None => Hello::Other,
                    };
                }
                Ok(None) => {}
                Err(_) => return Hello::Other,
            }
        }
        if buf.len() >= MAX_HELLO {
            return Hello::Other;
        }
        let room = (MAX_HELLO - buf.len()) as u64;
        match (&mut *stream).take(room).read_buf(buf).await {
            Ok(0) | Err(_) => return Hello::Closed,
            Ok(_) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use tokio::io::AsyncWriteExt;

    /// The first flight of a real rustls client for `name`.
    fn client_hello(name: &str) -> Vec<u8> {
        let roots = rustls::RootCertStore::empty();
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        let name = rustls::pki_types::ServerName::try_from(name.to_owned()).unwrap();
        let mut client = rustls::ClientConnection::new(Arc::new(config), name).unwrap();
        let mut out = Vec::new();
        client.write_tls(&mut out).unwrap();
        out
    }

    #[tokio::test]
    async fn the_name_is_read_and_the_bytes_kept() {
        let hello = client_hello("Passthrough.Example.COM");
        let (mut client, mut server) = tokio::io::duplex(64 * 1024);
        // In two pieces, as two TCP segments.
        client.write_all(&hello[..40]).await.unwrap();
        let writer = {
            let rest = hello[40..].to_vec();
            tokio::spawn(async move {
                tokio::task::yield_now().await;
                client.write_all(&rest).await.unwrap();
                client
            })
        };
        let mut buf = BytesMut::new();
        let read = read(&mut server, &mut buf).await;
        assert_eq!(read, Hello::Named("passthrough.example.com".to_owned()));
        assert_eq!(&buf[..], &hello[..]);
        drop(writer.await.unwrap());
    }

    #[tokio::test]
    async fn plain_http_and_early_close_are_not_named() {
        let (mut client, mut server) = tokio::io::duplex(1024);
        client
            .write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        let mut buf = BytesMut::new();
        assert_eq!(read(&mut server, &mut buf).await, Hello::Other);
        assert!(buf.starts_with(b"GET /"));

        let (mut client, mut server) = tokio::io::duplex(1024);
        client
            .write_all(&client_hello("a.example")[..10])
            .await
            .unwrap();
        drop(client);
        let mut buf = BytesMut::new();
        assert_eq!(read(&mut server, &mut buf).await, Hello::Closed);
    }
}
