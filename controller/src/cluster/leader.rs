//! Leader election over a coordination.k8s.io Lease, as ingress-nginx does
//! it (`--election-id`, TTL 30 s): every replica serves traffic; only the
//! leader writes Ingress status.
//!
//! A candidate takes the Lease when it is free, expired (`renewTime` +
//! `leaseDurationSeconds` in the past) or already its own, by replacing it
//! with the resourceVersion it read: a 409 Conflict means another replica
//! won the race. The leader renews every retry period (TTL / 4) and stops
//! being leader as soon as a renewal is refused or it has not renewed for
//! the renew deadline (TTL / 2). On shutdown it releases the Lease so that
//! another replica takes over at once.

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
}

impl Election {
    fn retry(&self) -> Duration {
        self.ttl / 4
    }

    fn renew_deadline(&self) -> Duration {
        self.ttl / 2
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
    loop {
        let outcome = try_acquire(&api, &election).await;
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
        if let Err(error) = release(&api, &election).await {
            tracing::warn!(%error, lease = %election.lease, "could not release the lease");
        }
    }
}

/// One attempt to take or renew the Lease. `Ok(true)`: we hold it now.
async fn try_acquire(api: &Api<Lease>, election: &Election) -> Result<bool, kube::Error> {
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
    let free = spec.holder_identity.as_deref().is_none_or(str::is_empty) || expired(spec, &now);
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

fn expired(spec: &LeaseSpec, now: &MicroTime) -> bool {
    let Some(renewed) = &spec.renew_time else {
        return true;
    };
    let duration = i64::from(spec.lease_duration_seconds.unwrap_or(0));
    let expires = renewed
        .0
        .checked_add(jiff::SignedDuration::from_secs(duration))
        .unwrap_or(renewed.0);
    expires < now.0
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

    fn spec(renewed_secs_ago: i64, duration: i32) -> LeaseSpec {
        let renewed = jiff::Timestamp::now() - jiff::SignedDuration::from_secs(renewed_secs_ago);
        LeaseSpec {
            holder_identity: Some("other".to_owned()),
            renew_time: Some(MicroTime(renewed)),
            lease_duration_seconds: Some(duration),
            ..LeaseSpec::default()
        }
    }

    #[test]
    fn a_lease_expires_after_its_duration() {
        let now = MicroTime(jiff::Timestamp::now());
        assert!(!expired(&spec(10, 30), &now));
        assert!(expired(&spec(31, 30), &now));
        assert!(expired(&LeaseSpec::default(), &now));
    }

    #[test]
    fn timings_follow_the_ttl() {
        let election = Election {
            lease: "l".to_owned(),
            holder: "me".to_owned(),
            ttl: Duration::from_secs(30),
        };
        assert_eq!(election.retry(), Duration::from_millis(7500));
        assert_eq!(election.renew_deadline(), Duration::from_secs(15));
    }
}
