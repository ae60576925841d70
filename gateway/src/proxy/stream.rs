//! The clock of an upstream response body: which timeout applies while
//! waiting for the next chunk, and what each chunk's arrival tells the
//! balancer and the inference metrics.
//!
//! Until the first body byte, `proxy-first-byte-timeout` applies (counted
//! from sending the request), or `proxy-read-timeout` without it; after
//! it, `stream-idle-timeout` bounds each gap, or `proxy-read-timeout`
//! without it. `request-deadline` bounds the whole exchange throughout.
//! As with the client body's idle timer, a timer is armed only when a poll
//! finds no data, so a body that is always ready costs none.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::time::{Instant, Sleep};

use super::body::ResponseBodyError;
use crate::backend::InFlight;
use crate::metrics::inference::InferenceStats;
use crate::settings::ProxySettings;

/// The absolute bounds of one attempt.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Bounds {
    /// When the first body byte must have arrived, and the timeout that
    /// says so.
    pub(crate) first_byte: Option<(Instant, Duration)>,
    /// When the request must be over.
    pub(crate) deadline: Option<Instant>,
}

impl Bounds {
    /// The bounds of an attempt whose request was sent at `sent`.
    pub(crate) fn new(settings: &ProxySettings, sent: Instant, deadline: Option<Instant>) -> Self {
        Self {
            first_byte: settings.first_byte_timeout.map(|t| (sent + t, t)),
            deadline,
        }
    }
}

/// Which bound a pending wait runs into.
#[derive(Clone, Copy, Debug)]
enum Bound {
    Read(Duration),
    FirstByte(Duration),
    Idle(Duration),
    Deadline,
}

/// Timers and measurements of one upstream response body.
#[derive(Debug)]
pub(crate) struct StreamClock {
    read_timeout: Duration,
    idle_timeout: Option<Duration>,
    bounds: Bounds,
    sleep: Option<Pin<Box<Sleep>>>,
    /// The bound the armed timer stands for.
    armed: Bound,
    /// Whether a chunk arrived since the timer was armed.
    progressed: bool,
    /// Whether the first body byte arrived.
    started: bool,
    /// When the last chunk arrived, kept only to record gaps.
    last: Option<Instant>,
    stats: Option<Arc<InferenceStats>>,
}

impl StreamClock {
    pub(crate) fn new(
        settings: &ProxySettings,
        bounds: Bounds,
        stats: Option<Arc<InferenceStats>>,
    ) -> Self {
        Self {
            read_timeout: settings.read_timeout,
            idle_timeout: settings.stream_idle_timeout,
            bounds,
            sleep: None,
            armed: Bound::Deadline,
            progressed: false,
            started: false,
            last: None,
            stats,
        }
    }

    /// The response's first byte (its first chunk, or its end when it has
    /// no body): the time to first byte goes to the balancer and metrics.
    pub(crate) fn first_byte(&mut self, in_flight: Option<&mut InFlight>) {
        if std::mem::replace(&mut self.started, true) {
            return;
        }
        let ttfb = in_flight.map(InFlight::first_byte);
        if let Some(stats) = &self.stats {
            if let Some(ttfb) = ttfb {
                stats.first_byte(ttfb);
            }
            self.last = Some(Instant::now());
        }
    }

    /// A body chunk with data arrived.
    pub(crate) fn chunk(&mut self, in_flight: Option<&mut InFlight>) {
        self.progressed = true;
        if !self.started {
            self.first_byte(in_flight);
            return;
        }
        if let Some(in_flight) = in_flight {
            in_flight.chunk();
        }
        if let (Some(stats), Some(last)) = (&self.stats, self.last) {
            let now = Instant::now();
            stats.chunk_gap(now.saturating_duration_since(last));
            self.last = Some(now);
        }
    }

    /// Called when the body is pending: `Ready` with the error once the
    /// bound that applies now has passed.
    pub(crate) fn poll_expired(&mut self, cx: &mut Context<'_>) -> Poll<ResponseBodyError> {
        let rearm = self.sleep.is_none() || std::mem::take(&mut self.progressed);
        if rearm {
            let (at, bound) = self.next_bound();
            self.armed = bound;
            match &mut self.sleep {
                Some(sleep) => sleep.as_mut().reset(at),
                None => self.sleep = Some(Box::pin(tokio::time::sleep_until(at))),
            }
        }
        let Some(sleep) = &mut self.sleep else {
            return Poll::Pending;
        };
        if sleep.as_mut().poll(cx).is_pending() {
            return Poll::Pending;
        }
        Poll::Ready(match self.armed {
            Bound::Read(timeout) => ResponseBodyError::Timeout(timeout),
            Bound::FirstByte(timeout) => ResponseBodyError::FirstByteTimeout(timeout),
            Bound::Idle(timeout) => ResponseBodyError::StreamIdle(timeout),
            Bound::Deadline => ResponseBodyError::Deadline,
        })
    }

    /// The earliest bound from now, and which it is.
    fn next_bound(&self) -> (Instant, Bound) {
        let now = Instant::now();
        let read = (now + self.read_timeout, Bound::Read(self.read_timeout));
        let own = match (self.started, self.bounds.first_byte, self.idle_timeout) {
            (false, Some((at, timeout)), _) => (at, Bound::FirstByte(timeout)),
            (true, _, Some(idle)) => (now + idle, Bound::Idle(idle)),
            _ => read,
        };
        match self.bounds.deadline {
            Some(deadline) if deadline < own.0 => (deadline, Bound::Deadline),
            _ => own,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::future::poll_fn;

    use super::*;

    fn settings(first: Option<u64>, idle: Option<u64>) -> ProxySettings {
        ProxySettings {
            read_timeout: Duration::from_secs(60),
            first_byte_timeout: first.map(Duration::from_secs),
            stream_idle_timeout: idle.map(Duration::from_secs),
            ..ProxySettings::default()
        }
    }

    async fn expiry(clock: &mut StreamClock) -> (Duration, ResponseBodyError) {
        let started = Instant::now();
        let error = poll_fn(|cx| clock.poll_expired(cx)).await;
        (started.elapsed(), error)
    }

    #[tokio::test(start_paused = true)]
    async fn first_byte_then_idle_bounds() {
        let s = settings(Some(90), Some(2));
        let mut clock = StreamClock::new(&s, Bounds::new(&s, Instant::now(), None), None);
        let (waited, error) = expiry(&mut clock).await;
        assert_eq!(waited, Duration::from_secs(90));
        assert!(
            matches!(error, ResponseBodyError::FirstByteTimeout(_)),
            "{error}"
        );
        clock.chunk(None);
        let (waited, error) = expiry(&mut clock).await;
        assert_eq!(waited, Duration::from_secs(2));
        assert!(matches!(error, ResponseBodyError::StreamIdle(_)), "{error}");
    }

    #[tokio::test(start_paused = true)]
    async fn without_them_the_read_timeout_applies() {
        let s = settings(None, None);
        let mut clock = StreamClock::new(&s, Bounds::new(&s, Instant::now(), None), None);
        let (waited, error) = expiry(&mut clock).await;
        assert_eq!(waited, Duration::from_secs(60));
        assert!(matches!(error, ResponseBodyError::Timeout(_)), "{error}");
    }

    #[tokio::test(start_paused = true)]
    async fn the_deadline_cuts_everything_short() {
        let s = settings(Some(90), Some(30));
        let deadline = Some(Instant::now() + Duration::from_secs(5));
        let mut clock = StreamClock::new(&s, Bounds::new(&s, Instant::now(), deadline), None);
        clock.chunk(None);
        let (waited, error) = expiry(&mut clock).await;
        assert_eq!(waited, Duration::from_secs(5));
        assert!(matches!(error, ResponseBodyError::Deadline), "{error}");
    }
}
