//! A bounded map from [`Fingerprint`]s to shared values: the decision cache.
//!
//! Two generations ("hot" and "cold") of at most `capacity / 2` entries each: lookups and
//! insertions go to the hot one; a hit in the cold one moves the entry back to the hot one;
//! when the hot generation is full (`capacity / 2` entries, or keys totalling `max_bytes / 2`
//! bytes), it becomes the cold one and the old cold one is dropped. So an entry used at least
//! once per `capacity / 2` insertions stays, and memory is bounded by `capacity` entries and
//! `max_bytes` of keys.
//! Simple, no unsafe, O(1) per operation, one short critical section.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use super::fingerprint::Fingerprint;

/// Hit/miss counters of a cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CacheStats {
    pub hits: u64,
    pub misses: u64,
    /// Entries currently held.
    pub entries: usize,
}

/// See the module documentation.
pub struct BoundedCache<V> {
    generations: Mutex<Generations<V>>,
    half: usize,
    half_bytes: usize,
    hits: AtomicU64,
    misses: AtomicU64,
}

struct Generations<V> {
    hot: HashMap<Fingerprint, V>,
    /// Total length of the hot generation's keys.
    hot_bytes: usize,
    cold: HashMap<Fingerprint, V>,
}

impl<V: Clone> BoundedCache<V> {
    /// A cache holding at most `capacity` entries (at least 2) and `max_bytes` of keys.
    pub fn new(capacity: usize, max_bytes: usize) -> Self {
        Self {
            generations: Mutex::new(Generations {
                hot: HashMap::new(),
                hot_bytes: 0,
                cold: HashMap::new(),
            }),
            half: (capacity / 2).max(1),
            half_bytes: (max_bytes / 2).max(1),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
        }
    }

    /// The value for `key`, if cached.
    pub fn get(&self, key: &Fingerprint) -> Option<V> {
        let mut g = self.lock();
        let found = match g.hot.get(key) {
            Some(v) => Some(v.clone()),
            None => match g.cold.remove_entry(key) {
                Some((key, v)) => {
                    g.insert(key, v.clone(), self.half, self.half_bytes);
                    Some(v)
                }
                None => None,
            },
        };
        drop(g);
        let counter = if found.is_some() {
            &self.hits
        } else {
            &self.misses
        };
        counter.fetch_add(1, Ordering::Relaxed);
        found
    }

    /// Caches `value` for `key` (replacing any previous value).
    pub fn insert(&self, key: Fingerprint, value: V) {
        self.lock().insert(key, value, self.half, self.half_bytes);
    }

    pub fn stats(&self) -> CacheStats {
        let g = self.lock();
        CacheStats {
            hits: self.hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
            entries: g.hot.len() + g.cold.len(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Generations<V>> {
        // The maps are always consistent between statements: a panic elsewhere while the
        // lock was held cannot leave them half-updated, so a poisoned lock is still usable.
        self.generations
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl<V> Generations<V> {
    fn insert(&mut self, key: Fingerprint, value: V, half: usize, half_bytes: usize) {
        self.cold.remove(&key);
        if let Some(slot) = self.hot.get_mut(&key) {
            *slot = value;
            return;
        }
        if self.hot.len() >= half || self.hot_bytes + key.len() > half_bytes {
            self.cold = std::mem::take(&mut self.hot);
            self.hot_bytes = 0;
        }
        self.hot_bytes += key.len();
        self.hot.insert(key, value);
    }
}

impl<V> std::fmt::Debug for BoundedCache<V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BoundedCache")
            .field("capacity", &(self.half * 2))
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::super::fingerprint::fingerprint;
    use super::*;

    fn key(i: usize) -> Fingerprint {
        fingerprint(&format!("select * from t{i}")).unwrap()
    }

    #[test]
    fn hits_and_misses_are_counted() {
        let cache = BoundedCache::new(10, 1 << 20);
        assert_eq!(cache.get(&key(1)), None);
        cache.insert(key(1), 1);
        assert_eq!(cache.get(&key(1)), Some(1));
        // Literals do not matter: same key.
        assert_eq!(
            cache.get(&fingerprint("SELECT * FROM T1").unwrap()),
            Some(1)
        );
        let stats = cache.stats();
        assert_eq!((stats.hits, stats.misses, stats.entries), (2, 1, 1));
    }

    #[test]
    fn size_is_bounded() {
        let cache = BoundedCache::new(100, 1 << 20);
        for i in 0..10_000 {
            cache.insert(key(i), i);
            assert!(cache.stats().entries <= 100);
        }
        // The most recent ones are there, the oldest are gone.
        assert_eq!(cache.get(&key(9_999)), Some(9_999));
        assert_eq!(cache.get(&key(0)), None);
    }

    #[test]
    fn key_bytes_are_bounded() {
        // Keys of about 20 bytes, at most 200 bytes of them: about 10 entries.
        let cache = BoundedCache::new(1_000, 200);
        for i in 0..1_000 {
            cache.insert(key(i), i);
        }
        assert!(cache.stats().entries <= 12, "{:?}", cache.stats());
        assert_eq!(cache.get(&key(999)), Some(999));
    }

    #[test]
    fn an_entry_in_use_survives_rotations() {
        let cache = BoundedCache::new(10, 1 << 20);
        cache.insert(key(0), 0);
        for i in 1..1_000 {
            cache.insert(key(i), i);
            assert_eq!(cache.get(&key(0)), Some(0), "lost after {i} insertions");
        }
    }
}
