//! OCSP stapling (`enable-ocsp`): each served certificate's revocation
//! status, fetched from its CA's responder and sent with the handshake so
//! that clients need not ask the responder themselves.
//!
//! As ingress-nginx's `certificate.lua`: for a certificate whose chain
//! names a responder (Authority Information Access) and holds its issuer
//! (the certificate after it), the gateway POSTs an RFC 6960 request to the
//! responder, checks the answer (signed by the issuer or by a responder the
//! issuer delegated to; about this very certificate; current; status
//! `good`) and staples it. Unlike ingress-nginx, which fetches after the
//! first handshake without a staple and keeps a response three days
//! whatever it says, responses are fetched as soon as a table serves the
//! certificate, refreshed halfway to their `nextUpdate` (hourly when they
//! have none) and never stapled past it.
//!
//! Off the request path and bounded: one task ([`Stapler`]) follows the
//! published tables; at most [`MAX_CERTIFICATES`] chains are stapled, one
//! fetch per certificate and [`MAX_IN_FLIGHT`] in all at a time, each within
//! [`FETCH_TIMEOUT`] and [`MAX_RESPONSE_BYTES`]. A handshake only reads the
//! staple its certificate carries. When the responder is down or answers
//! badly, the last good response is stapled until it runs out, then none:
//! the handshake goes on without a staple (logged, and counted in
//! `edge_gateway_ocsp_fetches_total`).

mod fetch;
mod schedule;
mod stapler;
mod target;
#[cfg(test)]
mod test_ca;
mod verify;

use std::sync::Arc;
use std::time::Duration;

use super::Certificate;

pub use fetch::FetchError;
pub use stapler::Stapler;
pub use target::{NotStapled, Target};
pub use verify::{Rejected, Verified};

/// Distinct certificate chains stapled at most; the others are served
/// without a staple (logged).
pub const MAX_CERTIFICATES: usize = 4096;
/// Fetches running at once, all certificates together.
pub const MAX_IN_FLIGHT: usize = 8;
/// How long one fetch may take: connect, request and answer.
pub const FETCH_TIMEOUT: Duration = Duration::from_secs(5);
/// The largest response read (a response with a delegated responder's
/// certificate is a few KiB).
pub const MAX_RESPONSE_BYTES: usize = 64 * 1024;

/// What the stapler staples: the served certificates. The route table's
/// handle implements it (the table sits above this module, which only
/// names what it needs).
pub trait Served: Send + Sync {
    /// The certificates served now (the same object may come more than
    /// once), or `None` while stapling is off (`enable-ocsp`).
    fn stapled_certificates(&self) -> Option<Vec<Arc<Certificate>>>;
}

/// Where the stapler counts its fetches (the metrics registry implements
/// it: `edge_gateway_ocsp_fetches_total`).
pub trait FetchCounter: Send + Sync {
    /// Counts one fetch with its `result` (`good`, `not_good`, `invalid`,
    /// ...).
    fn ocsp_fetched(&self, result: &str);
}

/// The current time, as Unix seconds.
pub fn unix_now() -> i64 {
    jiff::Timestamp::now().as_second()
}
