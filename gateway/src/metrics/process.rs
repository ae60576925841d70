//! The process's own figures from `/proc/self`, under both the standard
//! `process_*` names and the `nginx_process_*` names ingress-nginx's
//! dashboards read (`..._nginx_process_cpu_seconds_total` and friends),
//! with what the gateway process really does.

use std::sync::atomic::{AtomicI64, AtomicU64};

/// Linux's USER_HZ: `/proc` times are in these ticks on every mainstream
/// architecture.
const TICKS_PER_SECOND: f64 = 100.0;

/// Client connection and request counts, kept by the listeners and the proxy.
#[derive(Debug, Default)]
pub struct ConnectionStats {
    pub(crate) accepted: AtomicU64,
    pub(crate) handled: AtomicU64,
    pub(crate) active: AtomicI64,
    pub(crate) requests: AtomicU64,
    pub(crate) in_flight: AtomicI64,
    /// Connections closed at once because their listener was at its
    /// connection cap, by listener (`[http, https]`).
    pub(crate) refused: [AtomicU64; 2],
}

/// What `/proc/self` says right now.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub(crate) struct ProcessSample {
    pub(crate) cpu_seconds: f64,
    pub(crate) start_time_seconds: f64,
    pub(crate) resident_bytes: f64,
    pub(crate) virtual_bytes: f64,
    pub(crate) read_bytes: f64,
    pub(crate) write_bytes: f64,
    pub(crate) open_fds: f64,
    pub(crate) max_fds: f64,
}

impl ProcessSample {
    /// Reads the figures; what cannot be read stays zero.
    pub(crate) fn read() -> Self {
        let mut sample = Self::default();
        if let Ok(stat) = std::fs::read_to_string("/proc/self/stat") {
            sample.parse_stat(&stat, boot_time());
        }
        if let Ok(status) = std::fs::read_to_string("/proc/self/status") {
            sample.resident_bytes = kib_field(&status, "VmRSS:") * 1024.0;
            sample.virtual_bytes = kib_field(&status, "VmSize:") * 1024.0;
        }
        if let Ok(io) = std::fs::read_to_string("/proc/self/io") {
            sample.read_bytes = number_field(&io, "rchar:");
            sample.write_bytes = number_field(&io, "wchar:");
        }
        if let Ok(fds) = std::fs::read_dir("/proc/self/fd") {
            sample.open_fds = fds.count() as f64;
        }
        if let Ok(limits) = std::fs::read_to_string("/proc/self/limits") {
            sample.max_fds = limits
                .lines()
                .find(|l| l.starts_with("Max open files"))
                .and_then(|l| l.split_whitespace().nth(3))
                .and_then(|v| v.parse().ok())
                .unwrap_or(0.0);
        }
        sample
    }

    /// Fields 14, 15 and 22 of `/proc/self/stat`, counted after the
    /// command name (which may hold spaces).
    fn parse_stat(&mut self, stat: &str, boot_time: f64) {
        let Some(after_name) = stat.rfind(')').map(|i| &stat[i + 1..]) else {
            return;
        };
        let fields: Vec<&str> = after_name.split_whitespace().collect();
        // fields[0] is field 3 (state).
        let field = |n: usize| {
            fields
                .get(n - 3)
                .and_then(|v| v.parse::<f64>().ok())
                .unwrap_or(0.0)
        };
        self.cpu_seconds = (field(14) + field(15)) / TICKS_PER_SECOND;
        self.start_time_seconds = boot_time + field(22) / TICKS_PER_SECOND;
    }
}

fn boot_time() -> f64 {
    std::fs::read_to_string("/proc/stat")
        .ok()
        .map_or(0.0, |stat| number_field(&stat, "btime"))
}

fn number_field(text: &str, name: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

fn kib_field(text: &str, name: &str) -> f64 {
    number_field(text, name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_stat_with_spaces_in_the_name() {
        let mut sample = ProcessSample::default();
        let stat = "42 (edge gateway) S 1 42 42 0 -1 4194560 100 0 0 0 250 150 0 0 20 0 3 0 1000 1234567 890";
        sample.parse_stat(stat, 1_700_000_000.0);
        assert_eq!(sample.cpu_seconds, 4.0);
        assert_eq!(sample.start_time_seconds, 1_700_000_010.0);
    }

    #[test]
    fn reads_this_process() {
        let sample = ProcessSample::read();
        assert!(sample.resident_bytes > 0.0);
        assert!(sample.open_fds >= 3.0);
        assert!(sample.start_time_seconds > 1_600_000_000.0);
    }
}
