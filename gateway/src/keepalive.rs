//! The wait for a client's next request head, timed as nginx times it, and
//! the signal to park an idle HTTP/1 connection.
//!
//! hyper arms one timer each time it starts waiting for a request head: on
//! a new connection and after every response. nginx counts two things
//! there: `client-header-timeout` for the first request of a connection and
//! `keep-alive` for each later one. [`HeadTimer`] is hyper's timer for one
//! connection and gives the first wait the deadline hyper computed from the
//! header timeout, and every later wait the keep-alive timeout.
//!
//! A later wait (one after a response: hyper's connection is idle) that
//! lasts [`PARK_AFTER`] asks the connection's loop, through [`IdleWatch`],
//! to park the connection: to drop hyper's state and buffers and watch the
//! socket alone until the wait's deadline (the HTTP/1 connection loop). A
//! connection resumed from a park starts with the parked wait's deadline.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::task::{Context, Poll, ready};
use std::time::{Duration, Instant};

use hyper::rt::{Sleep, Timer};
use hyper_util::rt::TokioTimer;

/// How long a keep-alive wait lasts before the connection is parked. nginx
/// frees a waiting connection's buffers at once; a short delay keeps a
/// busy connection from paying for rebuilding hyper's state per request.
pub(crate) const PARK_AFTER: Duration = Duration::from_millis(500);

/// hyper's timer for one HTTP/1 connection (see the module docs).
#[derive(Debug)]
pub(crate) struct HeadTimer {
    keepalive: Duration,
    first_armed: AtomicBool,
    /// The first wait's deadline, when this connection continues a parked
    /// one's wait.
    resumed: Option<Instant>,
    idle: Arc<IdleWatch>,
    tokio: TokioTimer,
}

impl HeadTimer {
    /// A timer whose waits after the first last `keepalive` and, past
    /// [`PARK_AFTER`], ask `idle`'s loop to park; the first wait ends at
    /// `resumed` if given, else at hyper's deadline.
    pub(crate) fn new(keepalive: Duration, idle: Arc<IdleWatch>, resumed: Option<Instant>) -> Self {
        Self {
            keepalive,
            first_armed: AtomicBool::new(false),
            resumed,
            idle,
            tokio: TokioTimer::new(),
        }
    }

    /// A head wait armed now: when it ends (`hypers` is hyper's deadline,
    /// from the header timeout), and when it asks to park, if it does.
    fn arm(&self, hypers: Instant) -> (Instant, Option<Instant>) {
        if self.first_armed.swap(true, Ordering::Relaxed) {
            let now = self.now();
            let deadline = now + self.keepalive;
            let park = Some(now + PARK_AFTER).filter(|park| *park < deadline);
            (deadline, park)
        } else {
            (self.resumed.unwrap_or(hypers), None)
        }
    }
}

impl Timer for HeadTimer {
    fn sleep(&self, duration: Duration) -> Pin<Box<dyn Sleep>> {
        self.tokio.sleep(duration)
    }

    fn sleep_until(&self, deadline: Instant) -> Pin<Box<dyn Sleep>> {
        let (deadline, park) = self.arm(deadline);
        Box::pin(HeadWait::new(deadline, park, self.idle.clone()))
    }

    fn now(&self) -> Instant {
        self.tokio.now()
    }

    fn reset(&self, sleep: &mut Pin<Box<dyn Sleep>>, new_deadline: Instant) {
        let (deadline, park) = self.arm(new_deadline);
        match sleep.as_mut().downcast_mut_pin::<HeadWait>() {
            Some(wait) => wait.reset(deadline, park),
            None => *sleep = Box::pin(HeadWait::new(deadline, park, self.idle.clone())),
        }
    }
}

pin_project_lite::pin_project! {
    /// One head wait: ready at its deadline; on the way, at its park time,
    /// it asks the connection's loop to park (and goes on waiting).
    struct HeadWait {
        #[pin]
        sleep: tokio::time::Sleep,
        deadline: Instant,
        park: Option<Instant>,
        idle: Arc<IdleWatch>,
    }
}

impl HeadWait {
    fn new(deadline: Instant, park: Option<Instant>, idle: Arc<IdleWatch>) -> Self {
        let first = park.unwrap_or(deadline);
        Self {
            sleep: tokio::time::sleep_until(first.into()),
            deadline,
            park,
            idle,
        }
    }

    fn reset(self: Pin<&mut Self>, deadline: Instant, park: Option<Instant>) {
        let this = self.project();
        *this.deadline = deadline;
        *this.park = park;
        this.sleep.reset(park.unwrap_or(deadline).into());
    }
}

impl std::future::Future for HeadWait {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let mut this = self.project();
        loop {
            ready!(this.sleep.as_mut().poll(cx));
            if this.park.take().is_none() {
                return Poll::Ready(());
            }
            this.idle.ask_to_park(*this.deadline);
            this.sleep.as_mut().reset((*this.deadline).into());
        }
    }
}

impl Sleep for HeadWait {}

/// What an HTTP/1 connection's head waits tell its loop: that the
/// connection has idled [`PARK_AFTER`] and may be parked until a deadline.
#[derive(Debug)]
pub(crate) struct IdleWatch {
    epoch: Instant,
    /// The deadline of the wait that asked to park, in nanoseconds after
    /// `epoch` plus one; 0 when none asks.
    park_until: AtomicU64,
}

impl Default for IdleWatch {
    fn default() -> Self {
        Self {
            epoch: Instant::now(),
            park_until: AtomicU64::new(0),
        }
    }
}

impl IdleWatch {
    fn ask_to_park(&self, deadline: Instant) {
        let nanos = deadline.saturating_duration_since(self.epoch).as_nanos();
        let nanos = u64::try_from(nanos).unwrap_or(u64::MAX - 1) + 1;
        self.park_until.store(nanos, Ordering::Relaxed);
    }

    /// The deadline of the wait that asked to park, if one did since the
    /// last call.
    pub(crate) fn take_park(&self) -> Option<Instant> {
        if self.park_until.load(Ordering::Relaxed) == 0 {
            return None;
        }
        let nanos = self.park_until.swap(0, Ordering::Relaxed).checked_sub(1)?;
        Some(self.epoch + Duration::from_nanos(nanos))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn timer(resumed: Option<Instant>) -> (HeadTimer, Arc<IdleWatch>) {
        let idle = Arc::new(IdleWatch::default());
        let timer = HeadTimer::new(Duration::from_secs(75), idle.clone(), resumed);
        (timer, idle)
    }

    #[tokio::test]
    async fn the_first_wait_is_hypers_and_later_ones_the_keepalive() {
        let (timer, _) = timer(None);
        let hypers = timer.now() + Duration::from_secs(60);
        assert_eq!(timer.arm(hypers), (hypers, None));
        let before = timer.now();
        let (later, park) = timer.arm(hypers);
        assert!(later >= before + Duration::from_secs(75));
        assert!(later <= timer.now() + Duration::from_secs(75));
        assert_eq!(park, Some(later - Duration::from_secs(75) + PARK_AFTER));
    }

    #[tokio::test]
    async fn a_resumed_connection_first_waits_until_the_parked_deadline() {
        let parked = Instant::now() + Duration::from_secs(3);
        let (timer, _) = timer(Some(parked));
        assert_eq!(
            timer.arm(Instant::now() + Duration::from_secs(60)),
            (parked, None)
        );
    }

    #[tokio::test]
    async fn a_keepalive_shorter_than_the_park_delay_never_parks() {
        let timer = HeadTimer::new(Duration::from_millis(100), Arc::default(), None);
        timer.arm(timer.now());
        assert_eq!(timer.arm(timer.now()).1, None);
    }

    #[tokio::test(start_paused = true)]
    async fn a_later_wait_asks_to_park_then_ends_at_its_deadline() {
        let (timer, idle) = timer(None);
        let first = timer.sleep_until(timer.now() + Duration::from_secs(60));
        drop(first);
        let mut wait = timer.sleep_until(timer.now());
        let deadline = timer.now() + Duration::from_secs(75);
        let mut cx = Context::from_waker(std::task::Waker::noop());
        assert!(wait.as_mut().poll(&mut cx).is_pending());
        assert_eq!(idle.take_park(), None);
        tokio::time::advance(PARK_AFTER).await;
        assert!(wait.as_mut().poll(&mut cx).is_pending());
        assert_eq!(idle.take_park(), Some(deadline));
        assert_eq!(idle.take_park(), None, "asked once");
        tokio::time::advance(Duration::from_secs(75)).await;
        assert!(wait.as_mut().poll(&mut cx).is_ready());
    }
}
