//! Polling with deadlines instead of sleeping.

use std::time::{Duration, Instant};

/// Interval between attempts of [`eventually`] and [`eventually_sync`].
pub const POLL_INTERVAL: Duration = Duration::from_millis(20);

/// Minimum time given to an attempt of [`eventually`] started at the deadline.
const ATTEMPT_GRACE: Duration = Duration::from_millis(100);

/// Calls `f` every 20 ms until it returns `Ok`, and returns that value.
///
/// Each attempt is bounded by the time left (at least 100 ms); a hanging
/// attempt counts as a failure. Panics with the last error once `deadline` has passed.
pub async fn eventually<T, F, Fut>(deadline: Duration, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, String>>,
{
    let start = tokio::time::Instant::now();
    let end = start + deadline;
    let mut attempts = 0_u32;
    let mut error = String::from("no attempt finished");
    loop {
        attempts += 1;
        // Even the last attempt, at the deadline, gets a little time.
        let attempt_end = end.max(tokio::time::Instant::now() + ATTEMPT_GRACE);
        error = match tokio::time::timeout_at(attempt_end, f()).await {
            Ok(Ok(value)) => return value,
            Ok(Err(error)) => error,
            Err(_) => format!("an attempt did not finish in time (previous error: {error})"),
        };
        let now = tokio::time::Instant::now();
        if now >= end {
            panic!(
                "condition not met within {deadline:?} ({attempts} attempts); last error: {error}"
            );
        }
        tokio::time::sleep_until((now + POLL_INTERVAL).min(end)).await;
    }
}

/// Blocking version of [`eventually`]: calls `f` every 20 ms until it
/// returns `Ok`, and returns that value; panics with the last error once
/// `deadline` has passed. Do not use it on an async runtime's thread.
pub fn eventually_sync<T, F>(deadline: Duration, mut f: F) -> T
where
    F: FnMut() -> Result<T, String>,
{
    let start = Instant::now();
    let end = start + deadline;
    let mut attempts = 0_u32;
    loop {
        attempts += 1;
        let error = match f() {
            Ok(value) => return value,
            Err(error) => error,
        };
        let now = Instant::now();
        if now >= end {
            panic!(
                "condition not met within {deadline:?} ({attempts} attempts); last error: {error}"
            );
        }
        std::thread::sleep(POLL_INTERVAL.min(end - now));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn eventually_returns_the_first_success() {
        let mut calls = 0;
        let value = eventually(Duration::from_secs(5), || {
            calls += 1;
            let calls = calls;
            async move {
                if calls < 3 {
                    Err(format!("call {calls}"))
                } else {
                    Ok(calls)
                }
            }
        })
        .await;
        assert_eq!(value, 3);
    }

    #[tokio::test]
    #[should_panic(expected = "last error: still failing")]
    async fn eventually_panics_with_the_last_error() {
        eventually(Duration::from_millis(100), || async {
            Err::<(), _>("still failing".to_owned())
        })
        .await;
    }

    #[test]
    fn eventually_sync_polls() {
        let mut calls = 0;
        eventually_sync(Duration::from_secs(5), || {
            calls += 1;
            if calls < 3 {
                Err("not yet".to_owned())
            } else {
                Ok(())
            }
        });
        assert_eq!(calls, 3);
    }

    #[test]
    #[should_panic(expected = "last error: nope")]
    fn eventually_sync_panics_after_the_deadline() {
        eventually_sync(Duration::from_millis(50), || {
            Err::<(), _>("nope".to_owned())
        });
    }
}
