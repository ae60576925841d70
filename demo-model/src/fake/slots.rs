//! `k` concurrency slots with a bounded FIFO queue in front (vLLM's
//! `max-num-seqs` semantics): a request beyond `k` waits, in arrival order,
//! and one beyond the queue bound is refused.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

/// The slots of one replica.
#[derive(Debug)]
pub(crate) struct Slots {
    /// One permit per slot. Tokio's semaphore is fair: waiters are served
    /// in FIFO order and a newcomer cannot take a permit while others wait.
    permits: Arc<Semaphore>,
    slots: usize,
    waiting: AtomicUsize,
    max_queue: usize,
}

/// A slot held; freed when dropped.
#[derive(Debug)]
pub(crate) struct Slot {
    _permit: OwnedSemaphorePermit,
}

/// A request that got its slot, and how it queued.
#[derive(Debug)]
pub(crate) struct Admitted {
    pub(crate) slot: Slot,
    /// Its place in line on arrival: 0 if it got a slot at once, else 1 +
    /// the requests already waiting.
    pub(crate) depth: usize,
    /// Time spent waiting for the slot.
    pub(crate) waited: Duration,
}

/// The queue was full: this many requests were waiting.
#[derive(Debug, PartialEq)]
pub(crate) struct QueueFull {
    pub(crate) depth: usize,
}

/// Counts a request as waiting for as long as it lives, so that a request
/// whose client goes away while queued leaves the count.
struct Waiting<'a>(&'a AtomicUsize);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Slots {
    pub(crate) fn new(slots: usize, max_queue: usize) -> Self {
        Self {
            permits: Arc::new(Semaphore::new(slots)),
            slots,
            waiting: AtomicUsize::new(0),
            max_queue,
        }
    }

    /// Requests generating now.
    pub(crate) fn running(&self) -> usize {
        self.slots - self.permits.available_permits()
    }

    /// Requests waiting for a slot now.
    pub(crate) fn waiting(&self) -> usize {
        self.waiting.load(Ordering::Relaxed)
    }

    /// Takes a free slot, or waits in line for one; refuses at once when
    /// `max_queue` requests are already waiting. Cancel-safe: dropping the
    /// future leaves the line.
    pub(crate) async fn acquire(&self) -> Result<Admitted, QueueFull> {
        let arrived = Instant::now();
        if let Ok(permit) = self.permits.clone().try_acquire_owned() {
            return Ok(Admitted {
                slot: Slot { _permit: permit },
                depth: 0,
                waited: Duration::ZERO,
            });
        }
        let depth = self
            .waiting
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
                (n < self.max_queue).then_some(n + 1)
            })
            .map_err(|depth| QueueFull { depth })?;
        let _waiting = Waiting(&self.waiting);
        // The semaphore is never closed; treat closing as a full queue.
        let permit = self
            .permits
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| QueueFull { depth })?;
        Ok(Admitted {
            slot: Slot { _permit: permit },
            depth: depth + 1,
            waited: arrived.elapsed(),
        })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;

    /// Waits (bounded) until `slots` has `n` requests waiting.
    async fn until_waiting(slots: &Slots, n: usize) {
        for _ in 0..1000 {
            if slots.waiting() == n {
                return;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        panic!("expected {n} waiting, found {}", slots.waiting());
    }

    #[tokio::test]
    async fn waiters_get_slots_in_arrival_order() {
        let slots = Arc::new(Slots::new(1, 100));
        let first = slots.acquire().await.unwrap();
        assert_eq!((first.depth, first.waited), (0, Duration::ZERO));
        assert_eq!(slots.running(), 1);

        let order = Arc::new(Mutex::new(Vec::new()));
        let mut tasks = Vec::new();
        for id in 0..5 {
            let (shared, order) = (slots.clone(), order.clone());
            tasks.push(tokio::spawn(async move {
                let admitted = shared.acquire().await.unwrap();
                order.lock().unwrap().push((id, admitted.depth));
                tokio::time::sleep(Duration::from_millis(2)).await;
            }));
            until_waiting(&slots, id + 1).await;
        }
        drop(first);
        for task in tasks {
            task.await.unwrap();
        }
        let order = order.lock().unwrap().clone();
        assert_eq!(order, vec![(0, 1), (1, 2), (2, 3), (3, 4), (4, 5)]);
        assert_eq!((slots.running(), slots.waiting()), (0, 0));
    }

    #[tokio::test]
    async fn k_requests_run_at_once() {
        let slots = Slots::new(3, 10);
        let mut held = Vec::new();
        for _ in 0..3 {
            held.push(slots.acquire().await.unwrap());
        }
        assert_eq!(slots.running(), 3);
        assert!(held.iter().all(|a| a.depth == 0 && a.waited.is_zero()));
    }

    #[tokio::test]
    async fn a_full_queue_refuses_at_once() {
        let slots = Arc::new(Slots::new(1, 2));
        let held = slots.acquire().await.unwrap();
        let mut waiters = Vec::new();
        for n in 1..=2 {
            let shared = slots.clone();
            waiters.push(tokio::spawn(async move {
                shared.acquire().await.map(|a| a.depth)
            }));
            until_waiting(&slots, n).await;
        }
        assert_eq!(slots.acquire().await.unwrap_err(), QueueFull { depth: 2 });

        tokio::time::sleep(Duration::from_millis(20)).await;
        drop(held);
        let mut depths = Vec::new();
        for waiter in waiters {
            depths.push(waiter.await.unwrap().unwrap());
        }
        assert_eq!(depths, vec![1, 2]);
    }

    #[tokio::test]
    async fn waiting_time_is_measured() {
        let slots = Arc::new(Slots::new(1, 1));
        let held = slots.acquire().await.unwrap();
        let waiter = {
            let slots = slots.clone();
            tokio::spawn(async move { slots.acquire().await.map(|a| a.waited) })
        };
        until_waiting(&slots, 1).await;
        tokio::time::sleep(Duration::from_millis(50)).await;
        drop(held);
        let waited = waiter.await.unwrap().unwrap();
        assert!(waited >= Duration::from_millis(50), "{waited:?}");
        assert!(waited < Duration::from_secs(2), "{waited:?}");
    }

    #[tokio::test]
    async fn a_cancelled_waiter_leaves_the_line() {
        let slots = Arc::new(Slots::new(1, 1));
        let held = slots.acquire().await.unwrap();
        let waiter = {
            let slots = slots.clone();
            tokio::spawn(async move { slots.acquire().await.map(|_| ()) })
        };
        until_waiting(&slots, 1).await;
        waiter.abort();
        until_waiting(&slots, 0).await;
        drop(held);
        assert_eq!(slots.running(), 0);
        // The slot did not go to the cancelled waiter.
        assert_eq!(slots.acquire().await.unwrap().depth, 0);
    }
}
