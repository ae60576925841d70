//! `RequestMirror`: a Gateway API rule's copies of its requests to another
//! backend, through the same machinery as the Ingress `mirror-target`
//! ([`crate::mirror`]): fire and forget, the answer thrown away, the
//! client's answer never waiting for it or changed by it.
//!
//! Each mirrored request goes to one ready endpoint of the mirror's
//! backend (drawn at random), as the spec asks, over the main backend's
//! wire (HTTP/1.1, or h2c for a GRPCRoute); it is the request as it is
//! forwarded to the main backend (after `URLRewrite` and the header
//! modifiers), body included. `percent` / `fraction` take a random share
//! of the requests. At most [`crate::mirror::MAX_IN_FLIGHT`] copies of a
//! mirror are in flight (more are dropped); a mirror backend without a
//! ready endpoint counts its copies failed.

use std::sync::Arc;

use http::Request;
use tokio::sync::Semaphore;

use crate::backend::Backend;
use crate::ids::BackendId;
use crate::metrics::MirrorStats;
use crate::mirror::{MAX_IN_FLIGHT, Shadow, count};

/// One `RequestMirror` filter with a resolved backend.
#[derive(Clone, Debug)]
pub struct RequestMirror {
    backend: BackendId,
    /// `numerator` of every `denominator` requests are mirrored.
    numerator: u32,
    denominator: u32,
    slots: Arc<Semaphore>,
}

impl PartialEq for RequestMirror {
    fn eq(&self, other: &Self) -> bool {
        (self.backend, self.numerator, self.denominator)
            == (other.backend, other.numerator, other.denominator)
    }
}

impl Eq for RequestMirror {}

impl RequestMirror {
    /// Mirrors `numerator` of every `denominator` requests to `backend`
    /// (a `denominator` of 0 is taken as 1; a numerator above the
    /// denominator as all).
    pub fn new(backend: BackendId, numerator: u32, denominator: u32) -> Self {
        let denominator = denominator.max(1);
        Self {
            backend,
            numerator: numerator.min(denominator),
            denominator,
            slots: Arc::new(Semaphore::new(MAX_IN_FLIGHT)),
        }
    }

    /// The mirror's backend.
    pub fn backend(&self) -> BackendId {
        self.backend
    }

    /// Whether this request is in the mirrored share.
    fn sampled(&self) -> bool {
        self.numerator == self.denominator
            || (self.numerator > 0 && fastrand::u32(0..self.denominator) < self.numerator)
    }

    /// A copy of `req` (the upstream request as forwarded) for one
    /// endpoint of `backend` (the mirror's, from the table), when this
    /// request is in the share and a slot is free.
    pub(crate) fn copy<B>(
        &self,
        req: &Request<B>,
        backend: Option<&Arc<Backend>>,
        http2: bool,
        stats: Option<Arc<MirrorStats>>,
    ) -> Option<Shadow> {
        if !self.sampled() {
            return None;
        }
        let Ok(permit) = self.slots.clone().try_acquire_owned() else {
            count(stats.as_ref(), |s| &s.dropped);
            return None;
        };
        let endpoints = backend.map(|b| b.endpoints());
        let ready = endpoints.as_ref().map_or(&[][..], |e| e.endpoints());
        if ready.is_empty() {
            count(stats.as_ref(), |s| &s.failed);
            return None;
        }
        let addr = ready[fastrand::usize(..ready.len())].addr();
        Some(Shadow::forwarded(req, addr, http2, permit, stats))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_follow_percent_and_fraction() {
        let id = BackendId::for_tests(0);
        assert!((0..100).all(|_| RequestMirror::new(id, 100, 100).sampled()));
        assert!((0..100).all(|_| RequestMirror::new(id, 7, 0).sampled()));
        assert!(!(0..1000).any(|_| RequestMirror::new(id, 0, 100).sampled()));
        let quarter = RequestMirror::new(id, 25, 100);
        let hits = (0..4000).filter(|_| quarter.sampled()).count();
        assert!((700..1300).contains(&hits), "{hits} of 4000 at 25%");
        assert_eq!(RequestMirror::new(id, 1, 2), RequestMirror::new(id, 1, 2));
        assert_ne!(RequestMirror::new(id, 1, 2), RequestMirror::new(id, 1, 3));
    }
}
