//! The time texts of a log line, made once per second per thread: nginx's
//! `$time_local` (`24/Nov/2025:16:00:00 +0000`), `$time_iso8601`
//! (`2025-11-24T16:00:00+00:00`), the RFC 3339 prefix of the JSON line,
//! and the syslog header's time (`Nov 24 16:00:00`). Times are UTC, as in
//! ingress-nginx's image, which sets no time zone.

use std::cell::RefCell;
use std::sync::OnceLock;
use std::time::SystemTime;

const MONTHS: [&[u8; 3]; 12] = [
    b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov", b"Dec",
];

/// The texts of one second.
#[derive(Debug, Clone)]
pub(crate) struct Second {
    second: u64,
    local: Vec<u8>,
    iso8601: Vec<u8>,
    syslog: Vec<u8>,
}

impl Second {
    /// `$time_local`.
    pub(crate) fn local(&self) -> &[u8] {
        &self.local
    }

    /// `$time_iso8601`.
    pub(crate) fn iso8601(&self) -> &[u8] {
        &self.iso8601
    }

    /// `2025-11-24T16:00:00`, to which the JSON line adds milliseconds.
    pub(crate) fn rfc3339(&self) -> &[u8] {
        &self.iso8601[..19]
    }

    /// The syslog header's `Mmm dd hh:mm:ss` (day padded with a space).
    pub(crate) fn syslog(&self) -> &[u8] {
        &self.syslog
    }

    fn new(second: u64) -> Self {
        let (year, month, day) = civil(second / 86_400);
        let of_day = second % 86_400;
        let (h, m, s) = (of_day / 3600, of_day / 60 % 60, of_day % 60);
        let month_name = MONTHS[(month as usize + 11) % 12];
        let year = [year / 1000, year / 100, year / 10, year].map(digit);
        let clock = [&two(h)[..], b":", &two(m), b":", &two(s)].concat();
        let local = [
            &two(day)[..],
            b"/",
            month_name,
            b"/",
            &year,
            b":",
            &clock,
            b" +0000",
        ]
        .concat();
        let iso8601 = [
            &year[..],
            b"-",
            &two(month),
            b"-",
            &two(day),
            b"T",
            &clock,
            b"+00:00",
        ]
        .concat();
        let padded_day = if day < 10 {
            [b' ', digit(day)]
        } else {
            two(day)
        };
        let syslog = [&month_name[..], b" ", &padded_day, b" ", &clock].concat();
        Self {
            second,
            local,
            iso8601,
            syslog,
        }
    }
}

/// The last decimal digit of `n`.
fn digit(n: u64) -> u8 {
    b'0' + (n % 10) as u8
}

/// `n` (below 100) as two digits.
fn two(n: u64) -> [u8; 2] {
    [digit(n / 10), digit(n)]
}

thread_local! {
    static CURRENT: RefCell<Second> = RefCell::new(Second::new(0));
}

/// Calls `f` with the texts of `now`'s second, made at most once per
/// second on this thread.
pub(crate) fn with<R>(now: SystemTime, f: impl FnOnce(&Second) -> R) -> R {
    let second = unix_seconds(now);
    CURRENT.with(|current| {
        let mut current = current.borrow_mut();
        if current.second != second {
            *current = Second::new(second);
        }
        f(&current)
    })
}

/// The milliseconds of `now`'s second.
pub(crate) fn millis(now: SystemTime) -> u32 {
    now.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_millis())
}

fn unix_seconds(now: SystemTime) -> u64 {
    now.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// This machine's name (`$hostname`, the syslog header), read once.
pub(crate) fn hostname() -> &'static str {
    static NAME: OnceLock<String> = OnceLock::new();
    NAME.get_or_init(|| {
        std::fs::read_to_string("/proc/sys/kernel/hostname")
            .ok()
            .map(|name| name.trim().to_owned())
            .filter(|name| !name.is_empty())
            .unwrap_or_else(|| "localhost".to_owned())
    })
}

/// The proleptic Gregorian date of a day count since 1970-01-01
/// (Howard Hinnant's `civil_from_days`).
fn civil(days: u64) -> (u64, u64, u64) {
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    (y.max(0) as u64, m as u64, d as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn at(second: u64) -> Second {
        Second::new(second)
    }

    #[test]
    fn formats_like_nginx() {
        let s = at(1_764_000_000);
        assert_eq!(s.local(), b"24/Nov/2025:16:00:00 +0000");
        assert_eq!(s.iso8601(), b"2025-11-24T16:00:00+00:00");
        assert_eq!(s.rfc3339(), b"2025-11-24T16:00:00");
        assert_eq!(s.syslog(), b"Nov 24 16:00:00");
        let s = at(0);
        assert_eq!(s.local(), b"01/Jan/1970:00:00:00 +0000");
        assert_eq!(s.syslog(), b"Jan  1 00:00:00");
        // A leap day.
        assert_eq!(at(951_782_400 + 59).iso8601(), b"2000-02-29T00:00:59+00:00");
    }

    #[test]
    fn agrees_with_jiff_over_many_days() {
        for day in (0..40_000_u64).step_by(97) {
            let second = day * 86_400 + day % 86_400;
            let ts = jiff::Timestamp::from_second(second as i64).unwrap();
            let want = ts.strftime("%d/%b/%Y:%H:%M:%S +0000").to_string();
            assert_eq!(at(second).local(), want.as_bytes(), "{second}");
        }
    }

    #[test]
    fn the_cache_follows_the_second() {
        let base = SystemTime::UNIX_EPOCH + Duration::from_secs(1_764_000_000);
        let first = with(base, |s| s.local().to_vec());
        let later = with(base + Duration::from_millis(1500), |s| s.local().to_vec());
        assert_eq!(first, b"24/Nov/2025:16:00:00 +0000");
        assert_eq!(later, b"24/Nov/2025:16:00:01 +0000");
        assert_eq!(millis(base + Duration::from_millis(1500)), 500);
    }
}
