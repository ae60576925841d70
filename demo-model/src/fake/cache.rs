//! What a fake replica reads from a request body (OpenAI-style JSON:
//! `max_tokens`, `model`, `prompt` or `messages`), and its simulated
//! prefix cache.
//!
//! The prefix cache works as vLLM's automatic prefix caching does, in
//! miniature: the prompt text is cut into blocks whose hashes are chained
//! (a block's hash covers every block before it), a request reuses the
//! leading blocks the cache holds and prefills the rest, and every block it
//! used becomes the most recently used. Prefill costs
//! `prefill_ms_per_block` per block not reused (a last partial block is
//! never reused); the least recently used blocks leave first.

use std::collections::{BTreeMap, HashMap};
use std::hash::{DefaultHasher, Hash, Hasher};
use std::time::Duration;

use serde_json::Value;

use super::profile::PrefixCacheProfile;

/// What a request body asks for.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct Ask {
    /// `max_tokens`.
    pub(crate) max_tokens: Option<u64>,
    /// The prompt: `prompt` (a string, or strings), or every `messages`
    /// entry's `content` (a string, or parts' `text`), in order.
    pub(crate) prompt: Vec<u8>,
}

impl Ask {
    /// Reads a body; anything not JSON asks for nothing.
    pub(crate) fn read(body: &[u8]) -> Self {
        let Ok(value) = serde_json::from_slice::<Value>(body) else {
            return Self::default();
        };
        let mut prompt = Vec::new();
        match value.get("prompt") {
            Some(Value::String(text)) => prompt.extend_from_slice(text.as_bytes()),
            Some(Value::Array(parts)) => {
                for part in parts.iter().filter_map(Value::as_str) {
                    prompt.extend_from_slice(part.as_bytes());
                }
            }
            _ => {}
        }
        for message in value
            .get("messages")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            match message.get("content") {
                Some(Value::String(text)) => prompt.extend_from_slice(text.as_bytes()),
                Some(Value::Array(parts)) => {
                    for text in parts.iter().filter_map(|p| p.get("text")?.as_str()) {
                        prompt.extend_from_slice(text.as_bytes());
                    }
                }
                _ => {}
            }
        }
        Self {
            max_tokens: value.get("max_tokens").and_then(Value::as_u64),
            prompt,
        }
    }

    /// The prompt's length in tokens, roughly (4 bytes a token).
    pub(crate) fn prompt_tokens(&self) -> u64 {
        (self.prompt.len() as u64).div_ceil(4)
    }
}

/// A least-recently-used set of chained block hashes.
#[derive(Debug)]
pub(crate) struct PrefixCache {
    profile: PrefixCacheProfile,
    /// Hash → when last used.
    used: HashMap<u64, u64>,
    /// When last used → hash, oldest first.
    order: BTreeMap<u64, u64>,
    clock: u64,
}

/// What one lookup found.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Lookup {
    /// Blocks of the prompt, the partial last one included.
    pub(crate) blocks: u64,
    /// Leading blocks the cache held.
    pub(crate) hits: u64,
    /// Prefill time for the rest.
    pub(crate) prefill: Duration,
}

impl PrefixCache {
    pub(crate) fn new(profile: PrefixCacheProfile) -> Self {
        Self {
            profile,
            used: HashMap::new(),
            order: BTreeMap::new(),
            clock: 0,
        }
    }

    /// Looks `prompt` up, then holds all its whole blocks as the most
    /// recently used.
    pub(crate) fn lookup(&mut self, prompt: &[u8]) -> Lookup {
        let mut chain = 0u64;
        let hashes: Vec<u64> = prompt
            .chunks_exact(self.profile.block_bytes)
            .map(|block| {
                let mut hasher = DefaultHasher::new();
                chain.hash(&mut hasher);
                block.hash(&mut hasher);
                chain = hasher.finish();
                chain
            })
            .collect();
        let partial = u64::from(!prompt.len().is_multiple_of(self.profile.block_bytes));
        let hits = hashes
            .iter()
            .take_while(|h| self.used.contains_key(h))
            .count() as u64;
        for hash in &hashes {
            self.touch(*hash);
        }
        let blocks = hashes.len() as u64 + partial;
        let misses = blocks - hits;
        Lookup {
            blocks,
            hits,
            prefill: Duration::from_secs_f64(
                self.profile.prefill_ms_per_block * misses as f64 / 1e3,
            ),
        }
    }

    fn touch(&mut self, hash: u64) {
        self.clock += 1;
        if let Some(old) = self.used.insert(hash, self.clock) {
            self.order.remove(&old);
        }
        self.order.insert(self.clock, hash);
        while self.used.len() > self.profile.capacity_blocks {
            let Some((_, oldest)) = self.order.pop_first() else {
                break;
            };
            self.used.remove(&oldest);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_completions_and_chat_bodies() {
        let ask = Ask::read(br#"{"model":"m","prompt":"hello","max_tokens":42}"#);
        assert_eq!(ask.max_tokens, Some(42));
        assert_eq!(ask.prompt, b"hello");
        let chat = Ask::read(
            br#"{"messages":[{"role":"system","content":"be brief"},
                {"role":"user","content":[{"type":"text","text":"hi"}]}]}"#,
        );
        assert_eq!(chat.prompt, b"be briefhi");
        assert_eq!(chat.max_tokens, None);
        assert_eq!(Ask::read(b"not json"), Ask::default());
    }

    #[test]
    fn a_shared_prefix_is_prefilled_once_and_old_blocks_leave() {
        let mut cache = PrefixCache::new(PrefixCacheProfile {
            block_bytes: 4,
            capacity_blocks: 6,
            prefill_ms_per_block: 10.0,
        });
        let first = cache.lookup(b"systuser");
        assert_eq!((first.blocks, first.hits), (2, 0));
        assert_eq!(first.prefill, Duration::from_millis(20));
        let again = cache.lookup(b"systother!");
        assert_eq!((again.blocks, again.hits), (3, 1));
        assert_eq!(again.prefill, Duration::from_millis(20));
        // Six new blocks push every older one out (capacity 6).
        cache.lookup(b"aaaabbbbccccddddeeeeffff");
        assert_eq!(cache.lookup(b"systuser").hits, 0);
    }
}
