//! The process's allocator, and keeping what it frees from staying resident.

use std::time::Duration;

/// mimalloc rather than the system allocator: glibc's malloc kept what a
/// recompile or a manifests parse had freed (+40 to +224 MB per Ingress
/// change at 10,000 Ingresses, never given back); mimalloc returns freed
/// pages to the OS. The figures: loadtest/RESULTS.md, `loadtest/scale.sh`.
/// Built with `no_thp` (Cargo.toml): mimalloc would otherwise ask for
/// transparent huge pages on its regions, and where THP is `madvise` (the
/// usual default) a 2 MiB page stays resident while one small block in it
/// lives: 184 of 236 MiB of RSS at 10,000 Ingresses were huge pages.
/// Without the `mimalloc` feature the system allocator serves, for heap
/// profilers.
#[cfg(feature = "mimalloc")]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// How often freed memory is given a chance to go back to the OS.
const PURGE_EVERY: Duration = Duration::from_secs(1);

/// A block past mimalloc's largest size class (512 KiB): it gets a page of
/// its own, and freeing it frees that page.
const PAST_LARGEST_CLASS: usize = 1 << 20;

/// Starts a thread that lets mimalloc give freed memory back to the OS
/// while the gateway is idle. mimalloc purges freed pages once they have
/// been free for its `purge_delay` (1 s), but it looks for them only when
/// some thread frees a whole page later: after a recompile nothing does
/// until traffic comes, and at 10,000 Ingresses the RSS after 100 Ingress
/// changes was 192 MiB instead of 134 (`loadtest/scale.sh`, and the same
/// with `MIMALLOC_PURGE_DELAY=0`). Freeing a block with a page of its own
/// every [`PURGE_EVERY`] is such a free; the block itself is never
/// written, so it costs a page header, not a MiB. Nothing to do with the
/// system allocator.
pub(crate) fn keep_purging() {
    if !cfg!(feature = "mimalloc") {
        return;
    }
    let started = std::thread::Builder::new()
        .name("allocator-purge".to_owned())
        .spawn(|| {
            loop {
                std::thread::sleep(PURGE_EVERY);
                drop(std::hint::black_box(Vec::<u8>::with_capacity(
                    PAST_LARGEST_CLASS,
                )));
            }
        });
    if let Err(error) = started {
        tracing::warn!(%error, "cannot start the allocator purge thread; freed memory is returned under traffic only");
    }
}
