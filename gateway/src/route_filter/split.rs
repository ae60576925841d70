//! Weighted `backendRefs`: a rule's share of requests per backend, each
//! with its own header filters; a backend that could not be resolved
//! keeps its share and answers it with 500, as the spec requires.
//!
//! A request draws uniformly in `0..total` and takes the slot whose
//! cumulative weight covers the draw; weight-0 slots are never taken.

use super::headers::HeaderEdits;
use crate::ids::BackendId;

/// One weighted backend of a rule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Slot {
    /// Its weight (0 is allowed: never chosen).
    pub weight: u32,
    /// The backend; `None` when the reference is invalid (answers 500).
    pub backend: Option<BackendId>,
    /// The backendRef's `RequestHeaderModifier`.
    pub request_headers: Option<HeaderEdits>,
    /// The backendRef's `ResponseHeaderModifier`.
    pub response_headers: Option<HeaderEdits>,
}

/// A rule's weighted backends.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Split {
    slots: Box<[Slot]>,
    total: u64,
}

impl Split {
    /// The split of `slots`; `None` when every weight is 0.
    pub fn new(slots: Vec<Slot>) -> Option<Self> {
        let total = slots.iter().map(|s| u64::from(s.weight)).sum();
        (total > 0).then(|| Self {
            slots: slots.into_boxed_slice(),
            total,
        })
    }

    /// Every slot, in the rule's order.
    pub fn slots(&self) -> &[Slot] {
        &self.slots
    }

    /// Draws the slot of one request.
    pub fn draw(&self) -> &Slot {
        self.draw_with(fastrand::u64(0..self.total))
    }

    /// The slot covering `draw` (in `0..total`).
    pub fn draw_with(&self, draw: u64) -> &Slot {
        let mut left = draw;
        for slot in &self.slots {
            let weight = u64::from(slot.weight);
            if left < weight {
                return slot;
            }
            left -= weight;
        }
        // `total` is the sum of the weights: only an out-of-range draw
        // gets here; the last weighted slot takes it.
        self.slots
            .iter()
            .rev()
            .find(|s| s.weight > 0)
            .unwrap_or(&self.slots[0])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slot(weight: u32, backend: Option<usize>) -> Slot {
        Slot {
            weight,
            backend: backend.map(BackendId::for_tests),
            request_headers: None,
            response_headers: None,
        }
    }

    #[test]
    fn draws_follow_the_weights() {
        let split = Split::new(vec![slot(1, Some(0)), slot(0, Some(1)), slot(3, None)]).unwrap();
        let picks: Vec<Option<BackendId>> = (0..4).map(|d| split.draw_with(d).backend).collect();
        assert_eq!(
            picks,
            [Some(BackendId::for_tests(0)), None, None, None],
            "weight 0 is never taken; an invalid backend keeps its share"
        );
        assert!(Split::new(vec![slot(0, Some(0))]).is_none());
        let mut counts = [0u32; 2];
        let even = Split::new(vec![slot(1, Some(0)), slot(1, Some(1))]).unwrap();
        for _ in 0..2000 {
            let b = even.draw().backend.unwrap();
            counts[usize::from(b != BackendId::for_tests(0))] += 1;
        }
        assert!(counts.iter().all(|c| *c > 800), "{counts:?}");
    }
}
