//! When a response is refreshed and when it stops being stapled, and how
//! soon a failed fetch is tried again. All times are Unix seconds.

use super::Verified;

/// The soonest a response is refreshed after it arrived.
pub(super) const MIN_REFRESH: i64 = 10;
/// The longest a response is kept before it is refreshed, however long it
/// is valid (a revocation shows within a day).
pub(super) const MAX_REFRESH: i64 = 24 * 3600;
/// How often a response without `nextUpdate` is refreshed.
pub(super) const NO_NEXT_UPDATE_REFRESH: i64 = 3600;
/// How long a response without `nextUpdate` is stapled when it cannot be
/// refreshed: ingress-nginx keeps every response three days.
pub(super) const NO_NEXT_UPDATE_LIFETIME: i64 = 3 * 24 * 3600;
/// The first retry after a failed fetch; it doubles per failure.
pub(super) const RETRY_MIN: i64 = 5;
/// The longest wait between two tries.
pub(super) const RETRY_MAX: i64 = 600;

/// When a response stops being stapled.
pub(super) fn expires_at(response: &Verified) -> i64 {
    response
        .next_update
        .unwrap_or(response.this_update.saturating_add(NO_NEXT_UPDATE_LIFETIME))
}

/// When to fetch a fresh response: halfway through the response's
/// validity, at least [`MIN_REFRESH`] and at most [`MAX_REFRESH`] from now;
/// hourly without `nextUpdate`.
pub(super) fn refresh_at(response: &Verified, now: i64) -> i64 {
    match response.next_update {
        Some(next) => {
            let halfway = response.this_update + (next - response.this_update) / 2;
            halfway.clamp(now + MIN_REFRESH, now + MAX_REFRESH)
        }
        None => now + NO_NEXT_UPDATE_REFRESH,
    }
}

/// When to try again after `failures` failed fetches in a row (at least
/// one).
pub(super) fn retry_at(failures: u32, now: i64) -> i64 {
    let doublings = failures.saturating_sub(1).min(16);
    now + (RETRY_MIN << doublings).min(RETRY_MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_800_000_000;

    fn response(this: i64, next: Option<i64>) -> Verified {
        Verified {
            this_update: this,
            next_update: next,
        }
    }

    #[test]
    fn responses_are_refreshed_halfway_to_next_update() {
        let week = response(NOW, Some(NOW + 7 * 86400));
        assert_eq!(refresh_at(&week, NOW), NOW + MAX_REFRESH);
        assert_eq!(expires_at(&week), NOW + 7 * 86400);
        let hour = response(NOW - 600, Some(NOW + 3000));
        assert_eq!(refresh_at(&hour, NOW), NOW + 1200);
        // Almost run out: not refetched in a busy loop.
        let short = response(NOW - 100, Some(NOW + 4));
        assert_eq!(refresh_at(&short, NOW), NOW + MIN_REFRESH);
    }

    #[test]
    fn responses_without_next_update_are_refreshed_hourly_and_kept_three_days() {
        let open = response(NOW - 60, None);
        assert_eq!(refresh_at(&open, NOW), NOW + NO_NEXT_UPDATE_REFRESH);
        assert_eq!(expires_at(&open), NOW - 60 + 3 * 86400);
    }

    #[test]
    fn retries_back_off_to_a_bound() {
        assert_eq!(retry_at(1, NOW), NOW + RETRY_MIN);
        assert_eq!(retry_at(2, NOW), NOW + 2 * RETRY_MIN);
        assert_eq!(retry_at(3, NOW), NOW + 4 * RETRY_MIN);
        assert_eq!(retry_at(40, NOW), NOW + RETRY_MAX);
        assert_eq!(retry_at(u32::MAX, NOW), NOW + RETRY_MAX);
    }
}
