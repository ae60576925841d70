//! Telling servers and background tasks to stop (a leaf module).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, Waker};

use tokio::sync::watch;

/// Tells servers to stop accepting and drain. Cloned into every server.
#[derive(Clone, Debug)]
pub struct ShutdownSignal {
    rx: watch::Receiver<bool>,
    /// Set before the watch is told: a cheap check for every poll.
    stop: Arc<AtomicBool>,
}

/// Triggers a [`ShutdownSignal`]; dropping it triggers it too.
#[derive(Debug)]
pub struct ShutdownTrigger {
    tx: watch::Sender<bool>,
    stop: Arc<AtomicBool>,
}

/// A linked trigger and signal.
pub fn shutdown_channel() -> (ShutdownTrigger, ShutdownSignal) {
    let (tx, rx) = watch::channel(false);
    let stop = Arc::new(AtomicBool::new(false));
    (
        ShutdownTrigger {
            tx,
            stop: stop.clone(),
        },
        ShutdownSignal { rx, stop },
    )
}

impl ShutdownTrigger {
    /// Starts the shutdown of every server holding a linked signal.
    pub fn trigger(&self) {
        self.stop.store(true, Ordering::Release);
        self.tx.send_replace(true);
    }
}

impl Drop for ShutdownTrigger {
    /// A trigger that is gone means stop (the watch wakes every waiter as
    /// its sender drops).
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
    }
}

impl ShutdownSignal {
    /// Resolves once shutdown was triggered (or the trigger was dropped).
    ///
    /// A client connection's task polls this beside its connection on
    /// every wake-up, several times per request. The watch's wait takes a
    /// lock whenever it is polled, on a waiter list it shares with the other
    /// connections (tokio spreads a watch's waiters over eight); so it is
    /// polled only to register the task's waker (again when the waker
    /// changes), and otherwise a flag is read.
    pub fn triggered(&mut self) -> impl Future<Output = ()> + Send + '_ {
        let Self { rx, stop } = self;
        Triggered {
            stop,
            wait: rx.wait_for(|stop| *stop),
            registered: None,
        }
    }
}

pin_project_lite::pin_project! {
    /// The future of [`ShutdownSignal::triggered`]: `wait` is the watch's,
    /// polled only while the task's waker is not registered with it.
    struct Triggered<'a, F> {
        stop: &'a AtomicBool,
        #[pin]
        wait: F,
        registered: Option<Waker>,
    }
}

impl<F: Future> Future for Triggered<'_, F> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.project();
        if this.stop.load(Ordering::Acquire) {
            return Poll::Ready(());
        }
        if this
            .registered
            .as_ref()
            .is_some_and(|waker| waker.will_wake(cx.waker()))
        {
            return Poll::Pending;
        }
        // Ready with an error too: the trigger is gone, which means stop.
        match this.wait.poll(cx) {
            Poll::Ready(_) => Poll::Ready(()),
            Poll::Pending => {
                *this.registered = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    /// A task whose waiting was polled again by unrelated wake-ups (so
    /// that later polls only read the flag) is still woken by the trigger
    /// when nothing else wakes it.
    #[tokio::test]
    async fn a_waiter_polled_many_times_is_woken_by_the_trigger() {
        let (trigger, mut signal) = shutdown_channel();
        let waiter = tokio::spawn(async move {
            let mut triggered = std::pin::pin!(signal.triggered());
            for _ in 0..5 {
                tokio::select! {
                    () = triggered.as_mut() => return false,
                    () = tokio::time::sleep(Duration::from_millis(1)) => {}
                }
            }
            triggered.await;
            true
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        trigger.trigger();
        let waited = tokio::time::timeout(Duration::from_secs(5), waiter)
            .await
            .expect("the trigger woke the waiter")
            .expect("the waiter did not panic");
        assert!(waited, "the signal fired before the trigger");
    }

    /// Dropping the trigger stops its signals, waiting or not yet waiting.
    #[tokio::test]
    async fn a_dropped_trigger_means_stop() {
        let (trigger, mut signal) = shutdown_channel();
        let mut late = signal.clone();
        let waiter = tokio::spawn(async move { signal.triggered().await });
        tokio::time::sleep(Duration::from_millis(10)).await;
        drop(trigger);
        tokio::time::timeout(Duration::from_secs(5), waiter)
            .await
            .expect("the waiter ended")
            .expect("the waiter did not panic");
        tokio::time::timeout(Duration::from_secs(5), late.triggered())
            .await
            .expect("a signal asked after the drop ends at once");
    }

    /// A signal asked after the trigger fired is ready at once.
    #[tokio::test]
    async fn a_signal_asked_after_the_trigger_is_ready() {
        let (trigger, mut signal) = shutdown_channel();
        trigger.trigger();
        tokio::time::timeout(Duration::from_secs(5), signal.triggered())
            .await
            .expect("ready at once");
    }
}
