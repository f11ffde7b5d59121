//! Counts the exact bytes of dispatch metadata and programs, so claim 5 compares real sizes.
//!
//! The figures come from the actual allocations (length or capacity x `size_of`), with shared
//! allocations counted once.

use crate::prog::Prog;
use std::collections::HashSet;
use std::mem::{align_of, size_of};
use std::sync::Arc;

/// Bytes of the two reference counts in front of every `Arc` allocation (`ArcInner`).
pub const ARC_HEADER_BYTES: u64 = 2 * size_of::<usize>() as u64;

fn round_up(n: u64, align: u64) -> u64 {
    n.div_ceil(align) * align
}

/// Bytes of the allocation behind an `Arc<T>`: the header plus `T`, padded to `T`'s alignment.
pub fn arc_bytes<T>() -> u64 {
    let align = align_of::<T>().max(align_of::<usize>()) as u64;
    round_up(ARC_HEADER_BYTES, align) + size_of::<T>() as u64
}

/// Bytes of the allocation behind an `Arc<[T]>` of `len` elements.
///
/// An empty `Arc<[T]>` still allocates its header, so `len == 0` does not give 0.
pub fn arc_slice_bytes<T>(len: usize) -> u64 {
    let align = align_of::<T>().max(align_of::<usize>()) as u64;
    round_up(ARC_HEADER_BYTES + (len * size_of::<T>()) as u64, align)
}

/// Bytes of a `Vec<T>`'s heap buffer (`capacity x size_of::<T>()`).
pub fn vec_bytes<T>(v: &Vec<T>) -> u64 {
    (v.capacity() * size_of::<T>()) as u64
}

/// Bytes of a boxed slice's heap buffer.
pub fn boxed_slice_bytes<T>(v: &[T]) -> u64 {
    std::mem::size_of_val(v) as u64
}

/// Accumulates metadata bytes by component and program bytes apart, each allocation once.
///
/// Components keep their first-seen order. Shared allocations (chains shared across fork,
/// shared programs, the shared empty array) are counted once, by address.
#[derive(Debug, Default)]
pub struct Footprint {
    parts: Vec<(&'static str, u64)>,
    seen: HashSet<usize>,
    programs: u64,
}

impl Footprint {
    /// An empty footprint.
    pub fn new() -> Footprint {
        Footprint::default()
    }

    /// Adds `bytes` to `component`.
    pub fn add(&mut self, component: &'static str, bytes: u64) {
        match self.parts.iter_mut().find(|(c, _)| *c == component) {
            Some((_, b)) => *b += bytes,
            None => self.parts.push((component, bytes)),
        }
    }

    /// Adds `bytes` to `component` once per allocation `addr`, and says whether it was new.
    pub fn add_once(&mut self, component: &'static str, addr: usize, bytes: u64) -> bool {
        if !self.seen.insert(addr) {
            return false;
        }
        self.add(component, bytes);
        true
    }

    /// Counts a program's allocations once (see [`Prog::allocated_bytes`]).
    pub fn program(&mut self, prog: &Arc<Prog>) {
        if self.seen.insert(Arc::as_ptr(prog) as usize) {
            self.programs += prog.allocated_bytes();
        }
    }

    /// Total metadata bytes (programs excluded).
    pub fn metadata_bytes(&self) -> u64 {
        self.parts.iter().map(|(_, b)| b).sum()
    }

    /// Metadata bytes by component, in first-seen order.
    pub fn breakdown(&self) -> Vec<(&'static str, u64)> {
        self.parts.clone()
    }

    /// Bytes of the distinct programs counted.
    pub fn program_bytes(&self) -> u64 {
        self.programs
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shared_allocations_count_once() {
        let mut fp = Footprint::new();
        assert!(fp.add_once("a", 0x1000, 40));
        assert!(!fp.add_once("a", 0x1000, 40));
        fp.add("b", 8);
        fp.add("a", 2);
        assert_eq!(fp.breakdown(), vec![("a", 42), ("b", 8)]);
        assert_eq!(fp.metadata_bytes(), 50);
        assert_eq!(arc_bytes::<u64>(), 24);
        assert_eq!(arc_slice_bytes::<u64>(3), 40);
        assert_eq!(arc_slice_bytes::<u32>(1), 24);
    }
}
