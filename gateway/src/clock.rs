//! The gateway's monotonic clock for balancer and metric timestamps (a
//! leaf module).

use std::sync::OnceLock;

use tokio::time::Instant;

/// Nanoseconds on the gateway's monotonic clock since its first use, plus
/// one: 0 is kept to mean "never".
pub(crate) fn now() -> u64 {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    let epoch = *EPOCH.get_or_init(Instant::now);
    u64::try_from(epoch.elapsed().as_nanos())
        .unwrap_or(u64::MAX - 1)
        .saturating_add(1)
}
