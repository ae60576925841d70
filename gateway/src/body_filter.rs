//! What the gateway may do to a response body on its way to the client,
//! frame by frame and never buffering more than one frame: compress it
//! ([`crate::compress`]) and pace it (`limit-rate`, `limit-rate-after`:
//! nginx's `limit_rate`, per request).
//!
//! Pacing follows nginx's write filter: the first `after` bytes go at
//! once; after them, the bytes sent may not exceed `rate` per second since
//! the body started plus one second's worth (nginx's `+ 1`). A frame that
//! would overrun is split, and the rest waits on a timer.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use bytes::Bytes;
use http_body::Frame;
use tokio::time::{Instant, Sleep};

use crate::compress::Encoder;

/// `limit-rate` / `limit-rate-after`, in bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateLimit {
    /// Bytes per second once `after` bytes went.
    pub rate: u64,
    /// Bytes sent at full speed first.
    pub after: u64,
}

/// The filters of one response body.
#[derive(Debug, Default)]
pub(crate) struct Filter {
    // Internal: boxed by the body that holds it, so its size does not
    // weigh on bodies without filters.
    encoder: Option<Encoder>,
    pacer: Option<Pacer>,
    /// Output waiting to go (paced).
    pending: Option<Bytes>,
    /// A trailers frame to send once the data is out.
    trailers: Option<Frame<Bytes>>,
    /// The source body ended.
    source_done: bool,
    /// Everything went out.
    done: bool,
}

/// The body source a filter reads from, one frame at a time.
pub(crate) type Source<'a, E> =
    &'a mut dyn FnMut(&mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, E>>>;

impl Filter {
    /// Compresses with `encoder`.
    pub(crate) fn encode(&mut self, encoder: Encoder) {
        self.encoder = Some(encoder);
    }

    /// Paces the body.
    pub(crate) fn pace(&mut self, limit: RateLimit) {
        self.pacer = Some(Pacer::new(limit));
    }

    /// Whether there is nothing more to send.
    pub(crate) fn is_end_stream(&self) -> bool {
        self.done
    }

    /// The next frame for the client, from `source`.
    pub(crate) fn poll_frame<E: From<std::io::Error>>(
        &mut self,
        cx: &mut Context<'_>,
        source: Source<'_, E>,
    ) -> Poll<Option<Result<Frame<Bytes>, E>>> {
        loop {
            if let Some(data) = self.pending.take() {
                return match &mut self.pacer {
                    None => Poll::Ready(Some(Ok(Frame::data(data)))),
                    Some(pacer) => match pacer.poll_release(cx, data) {
                        Release::Ready((now, rest)) => {
                            self.pending = rest;
                            Poll::Ready(Some(Ok(Frame::data(now))))
                        }
                        Release::Pending(data) => {
                            self.pending = Some(data);
                            Poll::Pending
                        }
                    },
                };
            }
            if let Some(trailers) = self.trailers.take() {
                self.done = true;
                return Poll::Ready(Some(Ok(trailers)));
            }
            if self.done {
                return Poll::Ready(None);
            }
            if self.source_done {
                let last = match &mut self.encoder {
                    Some(encoder) => encoder.finish()?,
                    None => Bytes::new(),
                };
                if !last.is_empty() {
                    self.pending = Some(last);
                }
                self.done = self.trailers.is_none();
                continue;
            }
            match ready!(source(cx)) {
                Some(Ok(frame)) => match frame.into_data() {
                    Ok(data) => {
                        let out = match &mut self.encoder {
                            Some(encoder) => encoder.encode(&data)?,
                            None => data,
                        };
                        if !out.is_empty() {
                            self.pending = Some(out);
                        }
                    }
                    Err(trailers) => {
                        self.trailers = Some(trailers);
                        self.source_done = true;
                    }
                },
                Some(Err(error)) => return Poll::Ready(Some(Err(error))),
                None => self.source_done = true,
            }
        }
    }
}

/// What pacing allows now.
enum Release {
    /// Send the first part now; keep the rest.
    Ready((Bytes, Option<Bytes>)),
    /// Nothing yet; the data is handed back.
    Pending(Bytes),
}

/// nginx's `limit_rate` for one body.
#[derive(Debug)]
struct Pacer {
    limit: RateLimit,
    start: Instant,
    sent: u64,
    timer: Option<Pin<Box<Sleep>>>,
}

impl Pacer {
    fn new(limit: RateLimit) -> Self {
        Self {
            limit,
            start: Instant::now(),
            sent: 0,
            timer: None,
        }
    }

    /// How many bytes may go at `now`.
    fn allowance(&self, now: Instant) -> u64 {
        let elapsed = now.saturating_duration_since(self.start).as_secs_f64() + 1.0;
        let budget = self.limit.after as f64 + self.limit.rate as f64 * elapsed;
        (budget as u64).saturating_sub(self.sent)
    }

    /// When `need` more bytes will be allowed (a byte later, against
    /// rounding).
    fn when(&self, need: u64) -> Instant {
        let target = self
            .sent
            .saturating_add(need)
            .saturating_add(1)
            .saturating_sub(self.limit.after);
        let seconds = target as f64 / self.limit.rate.max(1) as f64 - 1.0;
        self.start + Duration::from_secs_f64(seconds.clamp(0.0, 86_400.0))
    }

    fn poll_release(&mut self, cx: &mut Context<'_>, mut data: Bytes) -> Release {
        // Never dribble: wait for a tenth of a second's worth (or the frame).
        let chunk = (self.limit.rate / 10).max(512).min(data.len() as u64);
        loop {
            let now = Instant::now();
            let allowed = self.allowance(now);
            if allowed >= chunk {
                let take = allowed.min(data.len() as u64) as usize;
                self.sent += take as u64;
                self.timer = None;
                let rest = (take < data.len()).then(|| data.split_off(take));
                return Release::Ready((data, rest));
            }
            let deadline = self.when(chunk);
            let timer = self
                .timer
                .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
            timer.as_mut().reset(deadline);
            if timer.as_mut().poll(cx).is_pending() {
                return Release::Pending(data);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::VecDeque;

    /// Drains `filter` over `frames`, returning each output frame's data and
    /// the (paused) time it came out at.
    async fn drain(mut filter: Filter, frames: Vec<&'static [u8]>) -> Vec<(Bytes, Duration)> {
        let start = Instant::now();
        let mut frames: VecDeque<Frame<Bytes>> = frames
            .into_iter()
            .map(|f| Frame::data(Bytes::from_static(f)))
            .collect();
        let mut source =
            move |_: &mut Context<'_>| Poll::Ready(frames.pop_front().map(Ok::<_, std::io::Error>));
        let mut out = Vec::new();
        while let Some(frame) = std::future::poll_fn(|cx| filter.poll_frame(cx, &mut source)).await
        {
            out.push((frame.unwrap().into_data().unwrap(), start.elapsed()));
        }
        assert!(filter.is_end_stream());
        out
    }

    #[tokio::test(start_paused = true)]
    async fn pacing_follows_nginx_limit_rate() {
        let mut filter = Filter::default();
        filter.pace(RateLimit {
            rate: 1000,
            after: 500,
        });
        let body: &'static [u8] = &[b'x'; 4000];
        let out = drain(filter, vec![body]).await;
        let total: usize = out.iter().map(|(b, _)| b.len()).sum();
        assert_eq!(total, 4000);
        // 500 free + one second's worth at once, then ~1000 B/s.
        assert_eq!(out[0].0.len(), 1500);
        assert_eq!(out[0].1, Duration::ZERO);
        let last = out.last().unwrap().1;
        assert!(
            last >= Duration::from_millis(2400) && last <= Duration::from_millis(2700),
            "{last:?}"
        );
    }

    #[tokio::test]
    async fn encoding_then_trailer_bytes() {
        let mut filter = Filter::default();
        filter.encode(Encoder::new(crate::compress::Coding::Gzip, 1));
        let out = drain(filter, vec![b"one", b"two"]).await;
        assert_eq!(out.len(), 3, "two chunks and the gzip trailer");
        let all: Vec<u8> = out.iter().flat_map(|(b, _)| b.iter().copied()).collect();
        let mut plain = String::new();
        std::io::Read::read_to_string(&mut flate2::read::GzDecoder::new(&all[..]), &mut plain)
            .unwrap();
        assert_eq!(plain, "onetwo");
    }
}
