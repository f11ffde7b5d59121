//! A small fixed-size hash table shaped like the kernel's BPF hash map, so lookups cost the same.
//!
//! As in kernel/bpf/hashtab.c: power-of-two buckets, jhash, chained elements.

/// The golden-ratio seed of include/linux/jhash.h (`JHASH_INITVAL`).
pub const JHASH_INITVAL: u32 = 0xdead_beef;

/// `jhash_2words` of include/linux/jhash.h: hashes two 32-bit words with seed `initval`.
///
/// The map hashes the two halves of a 64-bit key with its `hashrnd`; this is
/// `__jhash_nwords` followed by `__jhash_final`.
pub fn jhash_2words(a: u32, b: u32, initval: u32) -> u32 {
    let init = initval.wrapping_add(JHASH_INITVAL).wrapping_add(2 << 2);
    let mut a = a.wrapping_add(init);
    let mut b = b.wrapping_add(init);
    let mut c = init;
    mix(&mut c, b, 14);
    mix(&mut a, c, 11);
    mix(&mut b, a, 25);
    mix(&mut c, b, 16);
    mix(&mut a, c, 4);
    mix(&mut b, a, 14);
    mix(&mut c, b, 24);
    c
}

/// One step of `__jhash_final`: `x ^= y; x -= rol32(y, rot)`.
#[inline(always)]
fn mix(x: &mut u32, y: u32, rot: u32) {
    *x ^= y;
    *x = x.wrapping_sub(y.rotate_left(rot));
}

/// One separately allocated element (`struct htab_elem`) of a bucket chain.
///
/// It holds the next pointer in the bucket chain, the hash, the key and the value.
#[derive(Debug)]
pub struct HtabElem<V> {
    next: Option<Box<HtabElem<V>>>,
    hash: u32,
    key: u64,
    value: V,
}

/// Error of [`Htab::update`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HtabError {
    /// The map already holds `max_entries` elements and the key is new.
    ///
    /// `htab_map_update_elem` returns -E2BIG.
    #[error("E2BIG: hash map is full ({max_entries} entries) and key {key} is new; create the map with more entries")]
    Full {
        /// The map's capacity.
        max_entries: u32,
        /// The key that did not fit.
        key: u64,
    },
}

/// A fixed-capacity hash map from 64-bit keys to `V` (`struct bpf_htab`).
///
/// `n_buckets` is the capacity rounded up to a power of two, the bucket is
/// `jhash(key) & (n_buckets - 1)`, and each bucket is a singly linked chain of separately
/// allocated elements.
#[derive(Debug)]
pub struct Htab<V> {
    buckets: Box<[Option<Box<HtabElem<V>>>]>,
    mask: u32,
    count: u32,
    max_entries: u32,
    hashrnd: u32,
}

impl<V> Htab<V> {
    /// An empty map for at most `max_entries` elements, hashing with seed `hashrnd`.
    ///
    /// It has at least one bucket.
    pub fn with_capacity(max_entries: u32, hashrnd: u32) -> Htab<V> {
        let n_buckets = max_entries.max(1).next_power_of_two();
        let buckets = (0..n_buckets).map(|_| None).collect::<Vec<_>>().into_boxed_slice();
        Htab {
            buckets,
            mask: n_buckets - 1,
            count: 0,
            max_entries,
            hashrnd,
        }
    }

    #[inline(always)]
    fn hash(&self, key: u64) -> u32 {
        jhash_2words(key as u32, (key >> 32) as u32, self.hashrnd)
    }

    /// `htab_map_lookup_elem`: the value for `key`, if present.
    #[inline]
    pub fn lookup(&self, key: u64) -> Option<&V> {
        let hash = self.hash(key);
        let mut elem = self.buckets.get((hash & self.mask) as usize)?.as_deref();
        while let Some(e) = elem {
            if e.hash == hash && e.key == key {
                return Some(&e.value);
            }
            elem = e.next.as_deref();
        }
        None
    }

    /// `htab_map_update_elem` (BPF_ANY): inserts or replaces; returns the old value on replace.
    ///
    /// Errors with [`HtabError::Full`] when the key is new and the map holds `max_entries`.
    pub fn update(&mut self, key: u64, value: V) -> Result<Option<V>, HtabError> {
        let hash = self.hash(key);
        let max_entries = self.max_entries;
        let full = self.count >= max_entries;
        let slot = &mut self.buckets[(hash & self.mask) as usize];
        let mut cur = slot.as_deref_mut();
        while let Some(e) = cur {
            if e.hash == hash && e.key == key {
                return Ok(Some(std::mem::replace(&mut e.value, value)));
            }
            cur = e.next.as_deref_mut();
        }
        if full {
            return Err(HtabError::Full { max_entries, key });
        }
        let next = slot.take();
        *slot = Some(Box::new(HtabElem { next, hash, key, value }));
        self.count += 1;
        Ok(None)
    }

    /// `htab_map_delete_elem`: removes `key`, returning its value.
    pub fn remove(&mut self, key: u64) -> Option<V> {
        let hash = self.hash(key);
        let mut link = &mut self.buckets[(hash & self.mask) as usize];
        loop {
            match link {
                None => return None,
                Some(e) if e.hash == hash && e.key == key => {
                    let mut e = link.take()?;
                    *link = e.next.take();
                    self.count -= 1;
                    return Some(e.value);
                }
                Some(e) => link = &mut e.next,
            }
        }
    }

    /// Elements in the map.
    pub fn len(&self) -> usize {
        self.count as usize
    }

    /// Whether the map is empty.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Number of buckets (`n_buckets`).
    pub fn n_buckets(&self) -> usize {
        self.buckets.len()
    }

    /// Every (key, value), bucket by bucket.
    pub fn iter(&self) -> impl Iterator<Item = (u64, &V)> {
        self.buckets.iter().flat_map(|b| {
            let mut cur = b.as_deref();
            std::iter::from_fn(move || {
                let e = cur?;
                cur = e.next.as_deref();
                Some((e.key, &e.value))
            })
        })
    }

    /// Bytes allocated by the map: the bucket array plus one element per entry.
    ///
    /// `value_heap(v)` adds the memory each value owns.
    pub fn heap_bytes(&self, value_heap: impl Fn(&V) -> u64) -> u64 {
        self.bucket_bytes() + self.element_bytes(value_heap)
    }

    /// Bytes of the bucket array (`n_buckets` x one pointer).
    pub fn bucket_bytes(&self) -> u64 {
        (self.buckets.len() * std::mem::size_of::<Option<Box<HtabElem<V>>>>()) as u64
    }

    /// Bytes of the elements (`len()` x `size_of::<HtabElem<V>>()`) plus `value_heap(v)` each.
    pub fn element_bytes(&self, value_heap: impl Fn(&V) -> u64) -> u64 {
        self.iter()
            .map(|(_, v)| std::mem::size_of::<HtabElem<V>>() as u64 + value_heap(v))
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookup_update_remove() {
        let mut m: Htab<u64> = Htab::with_capacity(100, 7);
        assert_eq!(m.n_buckets(), 128);
        for k in 0..100u64 {
            assert_eq!(m.update(k * 3, k).unwrap(), None);
        }
        assert_eq!(
            m.update(1000, 1),
            Err(HtabError::Full {
                max_entries: 100,
                key: 1000
            })
        );
        assert_eq!(m.update(3, 42).unwrap(), Some(1));
        assert_eq!(m.lookup(3), Some(&42));
        assert_eq!(m.lookup(4), None);
        assert_eq!(m.remove(3), Some(42));
        assert_eq!(m.lookup(3), None);
        assert_eq!(m.len(), 99);
        assert_eq!(m.iter().count(), 99);
        for k in 2..100u64 {
            assert_eq!(m.lookup(k * 3), Some(&k));
        }
    }

    #[test]
    fn jhash_2words_matches_the_kernel_sequence() {
        assert_eq!(jhash_2words(0, 0, 0), 0x58c1_84bf);
        assert_eq!(jhash_2words(1, 0, 0), 0x5543_253f);
        assert_eq!(jhash_2words(42, 7, 3), 0xdeb5_2b3d);
        assert_eq!(jhash_2words(u32::MAX, u32::MAX, JHASH_INITVAL), 0xb134_7f4b);
    }

    #[test]
    fn jhash_spreads_sequential_keys() {
        let buckets: std::collections::HashSet<u32> = (0..64u64).map(|k| jhash_2words(k as u32, 0, 0) & 63).collect();
        assert!(buckets.len() > 32, "only {} of 64 buckets used", buckets.len());
    }
}
