//! Scale-from-zero holding (`hold-when-no-endpoints`, `max-pending`): a
//! request for a backend whose Service has no ready endpoint waits, bounded
//! in time and in number, instead of getting 503 at once. Publishing an
//! endpoint set with ready endpoints wakes every held request
//! ([`Gate::endpoints_changed`](super::queue::Gate::endpoints_changed)).
//!
//! The proxy holds only after the route's admission checks (auth, limits)
//! passed, so a held request is one that would have been served.

use std::pin::pin;
use std::sync::atomic::Ordering;

use tokio::time::Instant;

use super::queue::Gate;
use super::{BackendPolicy, Refused};
use crate::backend::Backend;
use crate::metrics::inference::{InferenceStats, Pending, Rejection};

/// Returns once `backend` has a ready endpoint, holding the request while
/// it has none if the policy says so. `deadline` is the request's.
pub(crate) async fn ready(
    backend: &Backend,
    policy: &BackendPolicy,
    deadline: Option<Instant>,
    stats: Option<&InferenceStats>,
) -> Result<(), Refused> {
    let set = backend.endpoints();
    if !set.endpoints().is_empty() {
        return Ok(());
    }
    if !set.service_found() {
        return Err(Refused::ServiceNotFound);
    }
    let Some(hold) = policy.hold else {
        return Err(Refused::NoEndpoints);
    };
    let gate = backend.gate();
    if gate.pending.fetch_add(1, Ordering::SeqCst) >= policy.max_pending {
        gate.pending.fetch_sub(1, Ordering::SeqCst);
        return Err(reject(stats, Rejection::PendingFull, Refused::PendingFull));
    }
    let _held = Held {
        gate,
        _pending: stats.map(InferenceStats::pending),
    };
    let started = Instant::now();
    let timeout = started + hold;
    let (until, expired, rejection) = match deadline {
        Some(deadline) if deadline < timeout => (deadline, Refused::Deadline, Rejection::Deadline),
        _ => (timeout, Refused::HoldTimeout, Rejection::HoldTimeout),
    };
    loop {
        let mut changed = pin!(gate.endpoints.notified());
        changed.as_mut().enable();
        let set = backend.endpoints();
        if !set.endpoints().is_empty() {
            if let Some(stats) = stats {
                stats.held(started.elapsed());
            }
            return Ok(());
        }
        if !set.service_found() {
            return Err(Refused::ServiceNotFound);
        }
        tokio::select! {
            () = changed => {}
            () = tokio::time::sleep_until(until) => return Err(reject(stats, rejection, expired)),
        }
    }
}

fn reject(stats: Option<&InferenceStats>, rejection: Rejection, refused: Refused) -> Refused {
    if let Some(stats) = stats {
        stats.rejected(rejection);
    }
    refused
}

/// A request counted as held (on the backend and in the pending gauge)
/// until it leaves, served, refused or cancelled.
struct Held<'g> {
    gate: &'g Gate,
    _pending: Option<Pending<'g>>,
}

impl Drop for Held<'_> {
    fn drop(&mut self) {
        self.gate.pending.fetch_sub(1, Ordering::SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;
    use std::sync::Arc;
    use std::time::Duration;

    use super::*;
    use crate::backend::{BackendKey, EndpointUpdate};

    fn empty(policy: BackendPolicy) -> Arc<Backend> {
        let key = BackendKey {
            namespace: "ns".into(),
            service: "model".into(),
            port: "80".into(),
            cluster_ip: false,
        };
        let backend = Backend::new(
            key,
            &EndpointUpdate {
                addrs: Vec::new(),
                service_found: true,
            },
        );
        backend.set_policy(Arc::new(policy));
        Arc::new(backend)
    }

    fn holding(max_pending: usize) -> BackendPolicy {
        BackendPolicy {
            hold: Some(Duration::from_secs(30)),
            max_pending,
            ..BackendPolicy::default()
        }
    }

    fn one_endpoint() -> EndpointUpdate {
        EndpointUpdate {
            addrs: vec![SocketAddr::from(([127, 0, 0, 1], 80))],
            service_found: true,
        }
    }

    #[tokio::test]
    async fn without_hold_no_endpoint_is_refused_at_once() {
        let backend = empty(BackendPolicy::default());
        let policy = backend.policy();
        assert_eq!(
            ready(&backend, &policy, None, None).await,
            Err(Refused::NoEndpoints)
        );
        let missing = Backend::new(backend.key().clone(), &EndpointUpdate::default());
        assert_eq!(
            ready(&missing, &policy, None, None).await,
            Err(Refused::ServiceNotFound)
        );
    }

    #[tokio::test(start_paused = true)]
    async fn held_requests_go_when_an_endpoint_appears() {
        let backend = empty(holding(10));
        let mut held = Vec::new();
        for _ in 0..5 {
            let backend = backend.clone();
            held.push(tokio::spawn(async move {
                let policy = backend.policy();
                ready(&backend, &policy, None, None).await
            }));
        }
        tokio::time::sleep(Duration::from_secs(10)).await;
        assert_eq!(backend.gate().pending.load(Ordering::SeqCst), 5);
        backend.update(&one_endpoint());
        for request in held {
            assert_eq!(request.await.unwrap(), Ok(()));
        }
        assert_eq!(backend.gate().pending.load(Ordering::SeqCst), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn holding_is_bounded_in_number_and_time() {
        let backend = empty(holding(1));
        let first = {
            let backend = backend.clone();
            tokio::spawn(async move {
                let policy = backend.policy();
                ready(&backend, &policy, None, None).await
            })
        };
        tokio::time::sleep(Duration::from_millis(1)).await;
        let policy = backend.policy();
        assert_eq!(
            ready(&backend, &policy, None, None).await,
            Err(Refused::PendingFull)
        );
        let started = Instant::now();
        assert_eq!(first.await.unwrap(), Err(Refused::HoldTimeout));
        assert!(started.elapsed() >= Duration::from_secs(29));
        let deadline = Some(Instant::now() + Duration::from_secs(1));
        assert_eq!(
            ready(&backend, &policy, deadline, None).await,
            Err(Refused::Deadline)
        );
        assert_eq!(backend.gate().pending.load(Ordering::SeqCst), 0);
    }
}
