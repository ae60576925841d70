//! Test kit for edge-gateway's black-box tests.
//!
//! - [`EchoBackend`], [`SilentBackend`], [`closed_port`]: upstreams on
//!   `127.0.0.x` (Linux routes all of `127.0.0.0/8` to loopback);
//! - [`Gateway`]: runs the real `edge-gateway` binary on a manifests folder;
//! - [`ManifestDir`] and the YAML builders ([`ingress_class`], [`service`],
//!   [`endpoint_slice`], [`IngressBuilder`], [`join_docs`]);
//! - HTTP helpers ([`get`], [`request`], [`get_frames`], [`Client`], [`raw`]);
//! - [`TestCa`], [`tls_secret`], [`curl_https`]: certificates and an HTTPS client;
//! - [`metrics::scrape`] and [`metrics::parse`]: the Prometheus text exposition;
//! - [`WebhookCert`], [`admission_review`], [`post_review`]: the admission webhook;
//! - [`eventually`]: polling with a deadline instead of sleeping;
//! - [`Haproxy`]: a TCP load balancer sending the PROXY protocol;
//!   [`TcpEcho`], [`UdpEcho`], [`TlsBackend`]: backends below HTTP.
//!
//! Everything async works on a current-thread Tokio runtime.

pub mod backend;
pub mod client;
pub mod gateway;
pub mod haproxy;
pub mod l4;
pub mod manifests;
pub mod metrics;
pub mod tls;
pub mod wait;
pub mod webhook;

pub use backend::{BYTES_FRAME_SIZE, EchoBackend, SeenRequest, SilentBackend, closed_port};
pub use client::{
    Client, RAW_TIMEOUT, REQUEST_TIMEOUT, TestResponse, get, get_frames, parse_status, raw,
    raw_status, raw_with_timeout, request, try_get_frames, try_request,
};
pub use gateway::{Gateway, READY_TIMEOUT, START_TIMEOUT};
pub use haproxy::{Frontend, Haproxy, SendProxy};
pub use l4::{TcpEcho, TlsBackend, UdpEcho, free_port};
pub use manifests::{
    IngressBuilder, ManifestDir, endpoint_slice, endpoint_slice_named, ingress_class, join_docs,
    service,
};
pub use metrics::{Sample, scrape};
pub use tls::{CurlOutput, IssuedCert, TestCa, ca_secret, curl_https, tls_secret};
pub use wait::{POLL_INTERVAL, eventually, eventually_sync};
pub use webhook::{
    WEBHOOK_HOST, WebhookCert, admission_review, post_review, webhook_configuration,
};
