//! Per-worker line buffers between the request path and the writer thread.
//!
//! A worker renders a finished request's line straight into its own
//! buffer (one of [`Buffers::shards`], chosen once per thread, so two
//! workers never share one while there are enough), under a lock only the
//! writer ever contends for, and only while it swaps the buffer out. The
//! writer takes every buffer whole every [`super::writer::GATHER`] while
//! lines keep coming, and sleeps while none do: the first line after a
//! quiet spell wakes it, as does a buffer filling past [`HIGH_WATER`].
//! The buffers together hold at most the bound given to [`Buffers::new`]:
//! a line that does not fit is dropped and counted, never waited for.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::thread::Thread;

/// A buffer this full wakes the writer early.
pub(crate) const HIGH_WATER: usize = 64 * 1024;

/// The buffers of one access log.
#[derive(Debug)]
pub(crate) struct Buffers {
    shards: Box<[Mutex<Vec<u8>>]>,
    /// The bytes one shard may hold.
    cap: usize,
    dropped: AtomicU64,
    /// Set by the writer before it sleeps with nothing to write.
    idle: AtomicBool,
    writer: OnceLock<Thread>,
}

/// The slot of the current thread, handed out in turn.
fn slot() -> usize {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    thread_local! {
        static SLOT: usize = NEXT.fetch_add(1, Ordering::Relaxed);
    }
    SLOT.with(|slot| *slot)
}

fn lock(shard: &Mutex<Vec<u8>>) -> MutexGuard<'_, Vec<u8>> {
    // A panic while appending leaves at worst a partial line.
    shard
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Buffers {
    /// Buffers holding at most `bound` bytes in all, one per worker thread
    /// the machine can run (twice the CPUs, at least 4).
    pub(crate) fn new(bound: usize) -> Self {
        let cpus = std::thread::available_parallelism().map_or(4, std::num::NonZero::get);
        let count = (cpus * 2).clamp(4, 64);
        Self {
            shards: (0..count).map(|_| Mutex::new(Vec::new())).collect(),
            cap: (bound / count).max(4096),
            dropped: AtomicU64::new(0),
            idle: AtomicBool::new(false),
            writer: OnceLock::new(),
        }
    }

    /// Appends the line `render` writes (plus a newline) to this thread's
    /// buffer; `false` when it did not fit and was dropped.
    pub(crate) fn append(&self, render: impl FnOnce(&mut Vec<u8>)) -> bool {
        let Some(shard) = self.shards.get(slot() % self.shards.len()) else {
            return false;
        };
        let mut buffer = lock(shard);
        let start = buffer.len();
        if start >= self.cap {
            drop(buffer);
            self.dropped.fetch_add(1, Ordering::Relaxed);
            return false;
        }
        if buffer.capacity() == 0 {
            buffer.reserve(self.cap.min(HIGH_WATER));
        }
        render(&mut buffer);
        buffer.push(b'\n');
        if buffer.len() > self.cap {
            buffer.truncate(start);
            drop(buffer);
            self.dropped.fetch_add(1, Ordering::Relaxed);
            return false;
        }
        let crossed = start < HIGH_WATER && buffer.len() >= HIGH_WATER;
        drop(buffer);
        if (start == 0
            && self.idle.load(Ordering::SeqCst)
            && self.idle.swap(false, Ordering::SeqCst))
            || crossed
        {
            self.wake();
        }
        true
    }

    /// Lines dropped because their buffer was full.
    pub(crate) fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Counts lines dropped after they were buffered (a failed write).
    pub(crate) fn count_dropped(&self, lines: u64) {
        self.dropped.fetch_add(lines, Ordering::Relaxed);
    }

    /// Registers the calling thread as the one to wake.
    pub(crate) fn set_writer(&self) {
        let _ = self.writer.set(std::thread::current());
    }

    /// Wakes the writer (its next sleep returns at once if it is awake).
    pub(crate) fn wake(&self) {
        if let Some(writer) = self.writer.get() {
            writer.unpark();
        }
    }

    /// Calls `write` with every non-empty buffer in turn, each swapped out
    /// for `spare` (which comes back empty, keeping its capacity); returns
    /// how many bytes were taken.
    pub(crate) fn drain(&self, spare: &mut Vec<u8>, mut write: impl FnMut(&[u8])) -> usize {
        let mut taken = 0;
        for shard in &*self.shards {
            {
                let mut buffer = lock(shard);
                if buffer.is_empty() {
                    continue;
                }
                std::mem::swap(&mut *buffer, spare);
            }
            taken += spare.len();
            write(spare);
            spare.clear();
            // Give back memory a burst made the buffer grow to.
            if spare.capacity() > 4 * HIGH_WATER {
                spare.shrink_to(HIGH_WATER);
            }
        }
        taken
    }

    /// Marks the writer idle before it sleeps; `false` (and not idle) when
    /// a line came in meanwhile and it should write instead.
    pub(crate) fn go_idle(&self) -> bool {
        self.idle.store(true, Ordering::SeqCst);
        if self.shards.iter().any(|shard| !lock(shard).is_empty()) {
            self.idle.store(false, Ordering::SeqCst);
            return false;
        }
        true
    }

    /// Marks the writer awake.
    pub(crate) fn wake_up(&self) {
        self.idle.store(false, Ordering::SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_come_out_whole_and_the_bound_holds() {
        let buffers = Buffers::new(4096 * 4);
        let cap = buffers.cap;
        let line = vec![b'x'; 1000];
        let mut kept = 0;
        for _ in 0..100 {
            if buffers.append(|out| out.extend_from_slice(&line)) {
                kept += 1;
            }
        }
        // One thread, one buffer: what fits in it, whole lines only.
        assert_eq!(kept, cap / 1001);
        assert_eq!(buffers.dropped(), 100 - kept as u64);
        let mut spare = Vec::new();
        let mut out = Vec::new();
        let taken = buffers.drain(&mut spare, |bytes| out.extend_from_slice(bytes));
        assert_eq!(taken, kept * 1001);
        assert!(
            out.split(|b| *b == b'\n')
                .filter(|l| !l.is_empty())
                .all(|l| l.len() == 1000)
        );
        // Emptied: the next line fits again.
        assert!(buffers.append(|out| out.extend_from_slice(b"again")));
    }

    #[test]
    fn a_line_larger_than_a_buffer_is_dropped_alone() {
        let buffers = Buffers::new(4096);
        assert!(buffers.append(|out| out.extend_from_slice(b"small")));
        assert!(!buffers.append(|out| out.resize(out.len() + 100_000, b'y')));
        let mut out = Vec::new();
        buffers.drain(&mut Vec::new(), |bytes| out.extend_from_slice(bytes));
        assert_eq!(out, b"small\n");
        assert_eq!(buffers.dropped(), 1);
    }

    #[test]
    fn the_first_line_after_idle_wakes_the_writer() {
        let buffers = std::sync::Arc::new(Buffers::new(1 << 20));
        buffers.set_writer();
        assert!(buffers.go_idle());
        let other = buffers.clone();
        std::thread::spawn(move || other.append(|out| out.extend_from_slice(b"x")))
            .join()
            .unwrap();
        // The append took the idle mark (and unparked this thread).
        assert!(!buffers.idle.load(Ordering::SeqCst));
        assert!(!buffers.go_idle(), "a line is waiting");
    }
}
