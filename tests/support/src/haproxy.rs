//! HAProxy (Debian package `haproxy`) as the TCP load balancer in front of
//! the gateway, sending the PROXY protocol as cloud load balancers do.

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::wait::eventually;

/// How a frontend's connections reach the server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SendProxy {
    /// Plain TCP, no header.
    None,
    /// `send-proxy`: a v1 (text) header.
    V1,
    /// `send-proxy-v2`: a v2 (binary) header, with a unique-id TLV.
    V2,
}

/// One `frontend` → `backend` pair in TCP mode.
#[derive(Clone, Copy, Debug)]
pub struct Frontend {
    /// Where haproxy listens.
    pub listen: SocketAddr,
    /// The server it forwards to.
    pub server: SocketAddr,
    /// The PROXY header it sends.
    pub proxy: SendProxy,
}

/// A running haproxy; killed when dropped.
pub struct Haproxy {
    child: Child,
    _dir: tempfile::TempDir,
}

impl Haproxy {
    /// Starts `haproxy -db` with `frontends` and waits until each listens.
    pub async fn start(frontends: &[Frontend]) -> Haproxy {
        let dir = tempfile::tempdir().expect("a temporary folder");
        let mut config = String::from(
            "global\n    maxconn 256\n\ndefaults\n    mode tcp\n    timeout connect 5s\n    timeout client 30s\n    timeout server 30s\n    unique-id-format %ci_%cp\n",
        );
        for (i, f) in frontends.iter().enumerate() {
            let options = match f.proxy {
                SendProxy::None => "",
                SendProxy::V1 => " send-proxy",
                SendProxy::V2 => " send-proxy-v2 proxy-v2-options unique-id",
            };
            config.push_str(&format!(
                "\nfrontend f{i}\n    bind {}\n    default_backend b{i}\n\nbackend b{i}\n    server s{i} {}{options}\n",
                f.listen, f.server
            ));
        }
        let path = dir.path().join("haproxy.cfg");
        std::fs::write(&path, config).expect("write haproxy.cfg");
        let child = Command::new("haproxy")
            .arg("-db")
            .arg("-f")
            .arg(&path)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("haproxy can run (Debian package haproxy)");
        let haproxy = Haproxy { child, _dir: dir };
        for f in frontends {
            let listen = f.listen;
            eventually(Duration::from_secs(10), || async move {
                tokio::net::TcpStream::connect(listen)
                    .await
                    .map(drop)
                    .map_err(|e| format!("haproxy not listening on {listen}: {e}"))
            })
            .await;
        }
        haproxy
    }
}

impl Drop for Haproxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
