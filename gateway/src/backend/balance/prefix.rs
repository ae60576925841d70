//! Prompt-prefix affinity (`prefix-affinity`): send a request to an
//! endpoint that recently served the same start of a prompt, whose model
//! server likely still holds it in its prefix cache (vLLM's automatic
//! prefix caching), so its prefill is skipped. This is the Gateway API
//! Inference Extension's "estimation mode": the gateway does not ask the
//! servers what they cache, it remembers where it sent what.
//!
//! The body peek cuts the prompt (`prompt`, or `messages` as sent) into
//! blocks of [`crate::model_field::PROMPT_BLOCK_BYTES`] and chains their
//! hashes: block *i*'s hash covers blocks 0 to *i*, so one hash names a
//! whole prefix. Each backend with prefix affinity keeps one table of
//! [`SLOTS`] slots (256 KiB): a slot holds one prefix hash and the last two
//! endpoints that served it. A pick looks for the longest recorded prefix
//! of the request (binary search over its blocks: O(log blocks), whatever
//! the number of endpoints), and every request records its blocks against
//! the endpoint it went to. A slot taken by another prefix is overwritten:
//! the table forgets the least used prefixes first, approximately (as a
//! CPU cache does), and never grows.
//!
//! Affinity yields to load (see [`super::pick`]): the remembered endpoint
//! is taken only while its load is within `prefix-affinity-slack` requests
//! of the endpoint the algorithm picked, so a hot prefix spills over to a
//! second endpoint, which the table then remembers too.
//!
//! Internal: a slot is two words written one after the other without a
//! lock; a reader racing a writer may pair a prefix with another's
//! endpoints. That costs one less good pick, never a wrong answer.

use std::sync::atomic::{AtomicU64, Ordering};

/// Slots per backend table: 16 Ki × 16 bytes = 256 KiB.
pub(crate) const SLOTS: usize = 1 << 14;

/// One prefix hash and the two endpoints (tags) that last served it,
/// the most recent in the low half.
#[derive(Debug, Default)]
struct Slot {
    key: AtomicU64,
    owners: AtomicU64,
}

/// The prefixes a backend's endpoints recently served.
#[derive(Debug)]
pub(crate) struct PrefixTable {
    slots: Box<[Slot]>,
}

impl Default for PrefixTable {
    fn default() -> Self {
        Self {
            slots: (0..SLOTS).map(|_| Slot::default()).collect(),
        }
    }
}

/// Block `i`'s key: its chained hash with the request's model mixed in,
/// so that two models (or adapters) never share a prefix; never 0.
fn key(block: u64, model: u64) -> u64 {
    match block ^ model.rotate_left(29) {
        0 => 1,
        key => key,
    }
}

impl PrefixTable {
    fn slot(&self, key: u64) -> &Slot {
        // SLOTS is a power of two; the keys are hashes.
        &self.slots[(key as usize) & (SLOTS - 1)]
    }

    /// The endpoints (up to two tags, most recent first; 0 for none) that
    /// served the longest recorded prefix of `blocks`, and its length in
    /// blocks.
    pub(crate) fn longest(&self, blocks: &[u64], model: u64) -> Option<(usize, [u32; 2])> {
        let owners = |i: usize| {
            let k = key(blocks[i], model);
            let slot = self.slot(k);
            let owners = slot.owners.load(Ordering::Relaxed);
            (slot.key.load(Ordering::Relaxed) == k && owners != 0).then_some(owners)
        };
        // Chained hashes: a recorded prefix of n blocks recorded every
        // shorter one too, so "block i is known" is (nearly) monotone.
        let (mut known, mut unknown) = (0, blocks.len());
        while known < unknown {
            let mid = known + (unknown - known).div_ceil(2);
            if owners(mid - 1).is_some() {
                known = mid;
            } else {
                unknown = mid - 1;
            }
        }
        let found = owners(known.checked_sub(1)?)?;
        Some((known, [found as u32, (found >> 32) as u32]))
    }

    /// Records that the endpoint tagged `tag` now serves `blocks`.
    pub(crate) fn record(&self, blocks: &[u64], model: u64, tag: u32) {
        for block in blocks {
            let k = key(*block, model);
            let slot = self.slot(k);
            if slot.key.load(Ordering::Relaxed) == k {
                let owners = slot.owners.load(Ordering::Relaxed);
                let latest = owners as u32;
                if latest != tag {
                    slot.owners.store(
                        (u64::from(latest) << 32) | u64::from(tag),
                        Ordering::Relaxed,
                    );
                }
            } else {
                // Owners first: a reader that sees the new key sees them.
                slot.owners.store(u64::from(tag), Ordering::Relaxed);
                slot.key.store(k, Ordering::Relaxed);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Chained block hashes of `text` (the scanner's, in miniature).
    fn blocks(text: &str) -> Vec<u64> {
        let mut scanner = crate::model_field::ModelScanner::with_prompt();
        scanner.feed(format!(r#"{{"prompt":"{text}"}}"#).as_bytes());
        scanner.prompt_blocks().to_vec()
    }

    #[test]
    fn the_longest_shared_prefix_names_its_endpoints() {
        let table = PrefixTable::default();
        let system = "s".repeat(640);
        let a = blocks(&format!("{system}{}", "a".repeat(640)));
        let b = blocks(&format!("{system}{}", "b".repeat(640)));
        assert!(a.len() >= 20 && a[..10] == b[..10] && a[10] != b[10]);
        assert_eq!(table.longest(&a, 0), None);
        table.record(&a, 0, 7);
        assert_eq!(table.longest(&a, 0), Some((a.len(), [7, 0])));
        // Another conversation on the same system prompt: its shared part.
        assert_eq!(table.longest(&b, 0), Some((10, [7, 0])));
        table.record(&b, 0, 9);
        assert_eq!(table.longest(&b, 0), Some((b.len(), [9, 0])));
        assert_eq!(table.longest(&a, 0), Some((a.len(), [7, 0])));
        // The shared blocks remember both, the latest first.
        assert_eq!(table.longest(&a[..10], 0), Some((10, [9, 7])));
        // Another model shares nothing.
        assert_eq!(table.longest(&a, 42), None);
    }

    #[test]
    fn memory_is_bounded_and_old_prefixes_are_forgotten() {
        let table = PrefixTable::default();
        let first = blocks(&"x".repeat(256));
        table.record(&first, 0, 3);
        // Far more distinct prefixes than slots: the table stays its size
        // and the first prefix is overwritten.
        for i in 0..(4 * SLOTS as u64) {
            table.record(&[i.wrapping_mul(0x9E37_79B9_7F4A_7C15)], 0, 5);
        }
        assert_eq!(table.slots.len(), SLOTS);
        assert_ne!(table.longest(&first, 0).map(|(_, o)| o[0]), Some(3));
    }
}
