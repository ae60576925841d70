//! Leader election over a coordination.k8s.io Lease, as ingress-nginx does
//! it (`--election-id`, TTL 30 s): every replica serves traffic; only the
//! leader writes Ingress status.
//!
//! A candidate takes the Lease when it is free, expired or already its own,
//! by replacing it with the resourceVersion it read: a 409 Conflict means
//! another replica won the race. Expired is judged as client-go's
//! `leaderelection` judges it, by local observation, never by comparing
//! clocks: the record (holder, `renewTime`, ...) seen last, and when this
//! replica saw it change; a Lease whose record did not change for
//! `leaseDurationSeconds` of this replica's monotonic clock is expired,
//! whatever its timestamps say (another node's clock may be off).
//!
//! Every API call runs under a timeout (the retry period, TTL / 4, at most
//! `--api-call-timeout`). The leader renews every retry period and stops
//! being leader as soon as a renewal is refused, or when it has not renewed
//! for the renew deadline (TTL / 2): a call that hangs ends at its timeout,
//! so a hung API server can never leave a replica leader. On shutdown it
//! releases the Lease so that another replica takes over at once.

use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::Api;
use kube::api::PostParams;
use tokio::sync::watch;
use tokio::time::Instant;

/// Who competes for which Lease, and how long a term lasts.
#[derive(Clone, Debug)]
pub struct Election {
    /// The Lease name (`--election-id`).
    pub lease: String,
    /// This replica's identity (the pod name).
    pub holder: String,
    /// How long a Lease stays valid without renewal (`--election-ttl`).
    pub ttl: Duration,
    /// The longest any one API call may take (`--api-call-timeout`).
    pub call_timeout: Duration,
}

impl Election {
    fn retry(&self) -> Duration {
        self.ttl / 4
    }

    fn renew_deadline(&self) -> Duration {
        self.ttl / 2
    }

    /// How long one API call may take: no longer than a retry period, so
    /// that leadership is judged again before the renew deadline passes.
    fn call_timeout(&self) -> Duration {
        self.retry().min(self.call_timeout)
    }
}

/// The Lease record as last seen, and when this replica saw it change.
#[derive(Debug, Default)]
struct Observed {
    record: Option<Record>,
    at: Option<Instant>,
}

/// The fields of a Lease that change on every renewal or takeover.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Record {
    holder: Option<String>,
    renew_time: Option<MicroTime>,
    acquire_time: Option<MicroTime>,
    transitions: Option<i32>,
    duration: Option<i32>,
}

impl Record {
    fn of(spec: &LeaseSpec) -> Self {
        Self {
            holder: spec.holder_identity.clone(),
            renew_time: spec.renew_time.clone(),
            acquire_time: spec.acquire_time.clone(),
            transitions: spec.lease_transitions,
            duration: spec.lease_duration_seconds,
        }
    }
}

impl Observed {
    /// Notes the Lease as read at `now`; whether it is expired: its record
    /// has not changed for its `leaseDurationSeconds` of local time.
    fn expired(&mut self, spec: &LeaseSpec, now: Instant) -> bool {
        let record = Record::of(spec);
        if self.record.as_ref() != Some(&record) || self.at.is_none() {
            self.record = Some(record);
            self.at = Some(now);
        }
        let duration = Duration::from_secs(
            u64::try_from(spec.lease_duration_seconds.unwrap_or(0)).unwrap_or(0),
        );
        self.at
            .is_none_or(|seen| now.saturating_duration_since(seen) >= duration)
    }
}

/// Whether this replica leads now; `false` until it wins.
pub type Leadership = watch::Receiver<bool>;

/// Campaigns until `stop` resolves, then releases the Lease if held.
pub(crate) async fn run(
    api: Api<Lease>,
    election: Election,
    leading: watch::Sender<bool>,
    mut stop: watch::Receiver<bool>,
) {
    let mut last_renewal: Option<Instant> = None;
    let mut failing = false;
    let mut observed = Observed::default();
    loop {
        let attempt = try_acquire(&api, &election, &mut observed);
        let outcome = match tokio::time::timeout(election.call_timeout(), attempt).await {
            Ok(outcome) => outcome.map_err(|e| e.to_string()),
            Err(_) => Err(format!(
                "the API server did not answer within {:?}",
                election.call_timeout()
            )),
        };
        let now = Instant::now();
        let leader = match outcome {
            Ok(won) => {
                if failing {
                    tracing::info!(lease = %election.lease, "the lease can be read and written again");
                    failing = false;
                }
                if won {
                    last_renewal = Some(now);
                }
                won
            }
            Err(error) => {
                if !failing {
                    tracing::warn!(%error, lease = %election.lease, "cannot read or write the leader lease; retrying");
                    failing = true;
                }
                last_renewal.is_some_and(|t| now.duration_since(t) < election.renew_deadline())
            }
        };
        if !leader {
            last_renewal = None;
        }
        leading.send_if_modified(|was| {
            let changed = *was != leader;
            if changed {
                tracing::info!(lease = %election.lease, holder = %election.holder, leader, "leadership changed");
                *was = leader;
            }
            changed
        });
        tokio::select! {
            () = tokio::time::sleep(election.retry()) => {}
            _ = stop.wait_for(|s| *s) => break,
        }
    }
    if *leading.borrow() {
        leading.send_replace(false);
        match tokio::time::timeout(election.call_timeout(), release(&api, &election)).await {
            Ok(Ok(())) => {}
            Ok(Err(error)) => {
                tracing::warn!(%error, lease = %election.lease, "could not release the lease");
            }
            Err(_) => tracing::warn!(lease = %election.lease, "releasing the lease timed out"),
        }
    }
}

/// One attempt to take or renew the Lease. `Ok(true)`: we hold it now.
async fn try_acquire(
    api: &Api<Lease>,
    election: &Election,
    observed: &mut Observed,
) -> Result<bool, kube::Error> {
    let now = MicroTime(jiff::Timestamp::now());
    let ttl_seconds = i32::try_from(election.ttl.as_secs())
        .unwrap_or(i32::MAX)
        .max(1);
    let Some(mut lease) = api.get_opt(&election.lease).await? else {
        let lease = Lease {
            metadata: ObjectMeta {
                name: Some(election.lease.clone()),
                ..ObjectMeta::default()
            },
            spec: Some(LeaseSpec {
                holder_identity: Some(election.holder.clone()),
                lease_duration_seconds: Some(ttl_seconds),
                acquire_time: Some(now.clone()),
                renew_time: Some(now),
                lease_transitions: Some(0),
                ..LeaseSpec::default()
            }),
        };
        return match api.create(&PostParams::default(), &lease).await {
            Ok(_) => Ok(true),
            Err(kube::Error::Api(status)) if status.is_already_exists() => Ok(false),
            Err(error) => Err(error),
        };
    };
    let spec = lease.spec.get_or_insert_with(LeaseSpec::default);
    let ours = spec.holder_identity.as_deref() == Some(election.holder.as_str());
    let expired = observed.expired(spec, Instant::now());
    let free = spec.holder_identity.as_deref().is_none_or(str::is_empty) || expired;
    if !ours && !free {
        return Ok(false);
    }
    if !ours {
        spec.holder_identity = Some(election.holder.clone());
        spec.acquire_time = Some(now.clone());
        spec.lease_transitions = Some(spec.lease_transitions.unwrap_or(0).saturating_add(1));
    }
    spec.lease_duration_seconds = Some(ttl_seconds);
    spec.renew_time = Some(now);
    // `lease` carries the resourceVersion we read: a concurrent writer makes
    // this a 409 Conflict.
    match api
        .replace(&election.lease, &PostParams::default(), &lease)
        .await
    {
        Ok(_) => Ok(true),
        Err(kube::Error::Api(status)) if status.is_conflict() => Ok(false),
        Err(error) => Err(error),
    }
}

/// Gives the Lease up: the holder is cleared so another replica need not
/// wait for the TTL.
async fn release(api: &Api<Lease>, election: &Election) -> Result<(), kube::Error> {
    let Some(mut lease) = api.get_opt(&election.lease).await? else {
        return Ok(());
    };
    let Some(spec) = lease.spec.as_mut() else {
        return Ok(());
    };
    if spec.holder_identity.as_deref() != Some(election.holder.as_str()) {
        return Ok(());
    }
    spec.holder_identity = None;
    spec.renew_time = None;
    api.replace(&election.lease, &PostParams::default(), &lease)
        .await
        .map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(holder: &str, renewed: i64) -> LeaseSpec {
        LeaseSpec {
            holder_identity: Some(holder.to_owned()),
            renew_time: Some(MicroTime(jiff::Timestamp::from_second(renewed).unwrap())),
            lease_duration_seconds: Some(30),
            ..LeaseSpec::default()
        }
    }

    /// Expiry comes from the local clock: the record must stay unchanged
    /// for the lease duration after this replica saw it, whatever its
    /// timestamps say.
    #[test]
    fn a_lease_expires_after_its_duration_of_local_observation() {
        let t0 = Instant::now();
        let mut observed = Observed::default();
        // Renewed "long ago" by a clock far behind ours: not expired yet.
        let old = spec("other", 1_000);
        assert!(!observed.expired(&old, t0));
        assert!(!observed.expired(&old, t0 + Duration::from_secs(29)));
        assert!(observed.expired(&old, t0 + Duration::from_secs(30)));
        // Renewed again (a new renewTime, even one from the past): a new term.
        let renewed = spec("other", 1_001);
        assert!(!observed.expired(&renewed, t0 + Duration::from_secs(31)));
        assert!(!observed.expired(&renewed, t0 + Duration::from_secs(60)));
        assert!(observed.expired(&renewed, t0 + Duration::from_secs(61)));
        // Renewed "in the future" by a clock ahead of ours, then never
        // again: expired after the duration all the same.
        let mut fresh = Observed::default();
        let ahead = spec("other", 4_000_000_000);
        assert!(!fresh.expired(&ahead, t0));
        assert!(fresh.expired(&ahead, t0 + Duration::from_secs(30)));
        assert!(Observed::default().expired(&LeaseSpec::default(), t0));
    }

    #[test]
    fn timings_follow_the_ttl() {
        let election = Election {
            lease: "l".to_owned(),
            holder: "me".to_owned(),
            ttl: Duration::from_secs(30),
            call_timeout: Duration::from_secs(5),
        };
        assert_eq!(election.retry(), Duration::from_millis(7500));
        assert_eq!(election.renew_deadline(), Duration::from_secs(15));
        assert_eq!(election.call_timeout(), Duration::from_secs(5));
    }
}
