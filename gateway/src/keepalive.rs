//! The wait for a client's next request head, timed as nginx times it.
//!
//! hyper arms one timer each time it starts waiting for a request head: on
//! a new connection and after every response. nginx counts two things
//! there: `client-header-timeout` for the first request of a connection and
//! `keep-alive` for each later one. [`HeadTimer`] is hyper's timer for one
//! connection and gives the first wait the deadline hyper computed from the
//! header timeout, and every later wait the keep-alive timeout.

use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use hyper::rt::{Sleep, Timer};
use hyper_util::rt::TokioTimer;

/// hyper's timer for one HTTP/1 connection (see the module docs).
#[derive(Debug)]
pub(crate) struct HeadTimer {
    keepalive: Duration,
    first_armed: AtomicBool,
    tokio: TokioTimer,
}

impl HeadTimer {
    /// A timer whose waits after the first last `keepalive`.
    pub(crate) fn new(keepalive: Duration) -> Self {
        Self {
            keepalive,
            first_armed: AtomicBool::new(false),
            tokio: TokioTimer::new(),
        }
    }

    /// When a head wait armed now ends: `deadline` (hyper's, from the
    /// header timeout) the first time, the keep-alive timeout after that.
    fn deadline(&self, deadline: Instant) -> Instant {
        if self.first_armed.swap(true, Ordering::Relaxed) {
            self.now() + self.keepalive
        } else {
            deadline
        }
    }
}

impl Timer for HeadTimer {
    fn sleep(&self, duration: Duration) -> Pin<Box<dyn Sleep>> {
        self.tokio.sleep(duration)
    }

    fn sleep_until(&self, deadline: Instant) -> Pin<Box<dyn Sleep>> {
        self.tokio.sleep_until(self.deadline(deadline))
    }

    fn now(&self) -> Instant {
        self.tokio.now()
    }

    fn reset(&self, sleep: &mut Pin<Box<dyn Sleep>>, new_deadline: Instant) {
        self.tokio.reset(sleep, self.deadline(new_deadline));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_first_wait_is_hypers_and_later_ones_the_keepalive() {
        let timer = HeadTimer::new(Duration::from_secs(75));
        let hypers = timer.now() + Duration::from_secs(60);
        assert_eq!(timer.deadline(hypers), hypers);
        let before = timer.now();
        let later = timer.deadline(hypers);
        assert!(later >= before + Duration::from_secs(75));
        assert!(later <= timer.now() + Duration::from_secs(75));
    }
}
