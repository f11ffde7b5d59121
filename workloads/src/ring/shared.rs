//! The ring's shared state: one `MAP_SHARED` mapping the worker and its W tasks all see.
//!
//! The worker maps it before it forks the tasks, so every task inherits the same pages. It
//! holds a header (setup count, the turn counter, the phase's end and calls per turn, the
//! phase-done word), one [`Slot`] per task (its token word and its setup error) and, per turn,
//! the timed interval in clock ticks and the CPU it ran on. The token and the two counters the
//! worker sleeps on are futex words (`FUTEX_WAIT`/`FUTEX_WAKE` without `FUTEX_PRIVATE_FLAG`:
//! they are shared between processes). Everything here is plain atomics and raw syscalls, so a
//! task may use it between fork and exit without allocating or taking a lock. [`rotation`] is
//! the pure part: the order the token goes round.

use std::ptr::NonNull;
use std::sync::atomic::{AtomicI32, AtomicU32, AtomicU64, Ordering};

use rand::seq::SliceRandom as _;
use rand::SeedableRng as _;

/// The header at the start of the mapping.
#[repr(C)]
pub(super) struct Header {
    /// Tasks done with their setup (futex: the last one wakes the worker).
    pub ready: AtomicU32,
    /// Tasks whose setup failed (their slot says how).
    pub failed: AtomicU32,
    /// Phases finished (futex: the task that ends a phase wakes the worker).
    pub done: AtomicU32,
    /// `getsockname()` calls that failed during the turns.
    pub call_errors: AtomicU32,
    /// The errno of the first failed call.
    pub call_errno: AtomicI32,
    /// Filters each task probes on its turn in the current phase instead of timing (0: time).
    pub probe: AtomicU32,
    /// The next turn, counted over every phase.
    pub turn: AtomicU64,
    /// The turn at which the current phase ends (exclusive).
    pub end: AtomicU64,
    /// Trigger calls per turn in the current phase.
    pub calls: AtomicU64,
}

/// One task's slot: its token and what stopped its setup, if anything.
#[repr(C)]
pub(super) struct Slot {
    /// 1 while the task holds the token (futex: the task sleeps on it).
    pub go: AtomicU32,
    /// The setup step that failed (`task::Stage` as a number), 0 when none did.
    pub stage: AtomicU32,
    /// The errno of that step.
    pub errno: AtomicI32,
    /// The task's pid, written by the task when it is ready.
    pub pid: AtomicI32,
    /// Filters of its chain that answered their probe (`seccomp::probe_filter`).
    pub probe_answered: AtomicU32,
    /// 1 + the index of the first filter that did not (0: none).
    pub probe_miss: AtomicU32,
    /// The errno that filter's probe got instead (0: the call succeeded).
    pub probe_got: AtomicI32,
    /// Padding to 32 bytes.
    _pad: u32,
}

/// The mapping: a header, `tasks` slots, and `capacity` turns of samples and CPUs.
pub(super) struct Shared {
    base: NonNull<u8>,
    len: usize,
    tasks: usize,
    capacity: usize,
}

/// Byte offsets of the parts of a mapping for `tasks` slots and `capacity` turns.
fn layout(tasks: usize, capacity: usize) -> (usize, usize, usize, usize) {
    let slots = std::mem::size_of::<Header>().next_multiple_of(64);
    let samples = (slots + tasks * std::mem::size_of::<Slot>()).next_multiple_of(64);
    let cpus = samples + capacity * std::mem::size_of::<AtomicU64>();
    let len = cpus + capacity * std::mem::size_of::<AtomicU32>();
    (slots, samples, cpus, len)
}

impl Shared {
    /// Maps a zeroed shared region for `tasks` slots and `capacity` turns.
    ///
    /// Errors: the errno of `mmap(2)`.
    pub fn new(tasks: usize, capacity: usize) -> Result<Shared, std::io::Error> {
        let len = layout(tasks, capacity).3;
        // SAFETY: an anonymous shared mapping with no address hint; the kernel zeroes it.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(std::io::Error::last_os_error());
        }
        let base = NonNull::new(p.cast::<u8>()).ok_or_else(|| std::io::Error::from_raw_os_error(libc::ENOMEM))?;
        Ok(Shared {
            base,
            len,
            tasks,
            capacity,
        })
    }

    /// The header.
    pub fn header(&self) -> &Header {
        // SAFETY: the mapping starts with a zero-initialised `Header` (all-zero atomics are
        // valid) and lives as long as `self`.
        unsafe { &*self.base.as_ptr().cast::<Header>() }
    }

    /// Task `i`'s slot (`i < tasks`, else the last one: callers index by task).
    pub fn slot(&self, i: usize) -> &Slot {
        let i = i.min(self.tasks.saturating_sub(1));
        let (slots, ..) = layout(self.tasks, self.capacity);
        // SAFETY: `i` is in range; the slots follow the header, zero-initialised and aligned
        // (64-byte start, 32-byte slots).
        unsafe { &*self.base.as_ptr().add(slots).cast::<Slot>().add(i) }
    }

    /// The timed interval of turn `t` in clock ticks, and the CPU it ran on (`None` beyond).
    fn turn_cells(&self, t: usize) -> Option<(&AtomicU64, &AtomicU32)> {
        if t >= self.capacity {
            return None;
        }
        let (_, samples, cpus, _) = layout(self.tasks, self.capacity);
        // SAFETY: `t` is in range; both arrays lie inside the mapping, aligned (8-byte start
        // for the ticks, 4-byte for the CPUs).
        unsafe {
            Some((
                &*self.base.as_ptr().add(samples).cast::<AtomicU64>().add(t),
                &*self.base.as_ptr().add(cpus).cast::<AtomicU32>().add(t),
            ))
        }
    }

    /// Records turn `t`: `ticks` timed on CPU `cpu_plus_1 - 1` (0: unknown).
    ///
    /// A turn beyond the capacity is dropped.
    #[inline(always)]
    pub fn record(&self, t: u64, ticks: u64, cpu_plus_1: u32) {
        if let Some((s, c)) = self.turn_cells(t as usize) {
            s.store(ticks, Ordering::Relaxed);
            c.store(cpu_plus_1, Ordering::Relaxed);
        }
    }

    /// Turns `from..to` as (ticks, CPU + 1, 0 when unknown), clipped to the capacity.
    pub fn turns(&self, from: u64, to: u64) -> Vec<(u64, u32)> {
        (from..to)
            .filter_map(|t| self.turn_cells(t as usize))
            .map(|(s, c)| (s.load(Ordering::Relaxed), c.load(Ordering::Relaxed)))
            .collect()
    }
}

impl Drop for Shared {
    fn drop(&mut self) {
        // SAFETY: `base` and `len` are those mmap returned; nothing borrows the mapping once
        // `self` is dropped (every reference is tied to `&self`).
        unsafe {
            libc::munmap(self.base.as_ptr().cast(), self.len);
        }
    }
}

/// `FUTEX_WAIT` on `word` while it holds `expected`, for at most `timeout_ns` (`None`: forever).
///
/// Returns when woken, when the value differs, on a signal or at the timeout; callers re-check.
#[inline(always)]
pub(super) fn futex_wait(word: &AtomicU32, expected: u32, timeout_ns: Option<u64>) {
    let ts = timeout_ns.map(|ns| libc::timespec {
        tv_sec: (ns / 1_000_000_000) as libc::time_t,
        tv_nsec: (ns % 1_000_000_000) as libc::c_long,
    });
    let tsp = ts.as_ref().map_or(std::ptr::null(), |t| t as *const libc::timespec);
    // SAFETY: `word` is a valid, aligned u32 for the call; `tsp` is null or points at `ts`.
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAIT,
            expected,
            tsp,
            std::ptr::null::<u32>(),
            0u32,
        );
    }
}

/// `FUTEX_WAKE` of at most one task sleeping on `word`.
#[inline(always)]
pub(super) fn futex_wake(word: &AtomicU32) {
    // SAFETY: `word` is a valid, aligned u32 for the call.
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAKE,
            1u32,
            std::ptr::null::<libc::timespec>(),
            std::ptr::null::<u32>(),
            0u32,
        );
    }
}

/// The order the token goes round `tasks` tasks, shuffled with `seed`: `(order, next)`.
///
/// `order[k]` is the task of the k-th turn of every rotation and `next[i]` the task that
/// follows task `i` (a single cycle through all of them). A seeded order, as the model's slot
/// order, so that consecutive turns do not walk memory in allocation order. Pure.
pub fn rotation(tasks: u32, seed: u64) -> (Vec<u32>, Vec<u32>) {
    let mut order: Vec<u32> = (0..tasks).collect();
    order.shuffle(&mut rand::rngs::SmallRng::seed_from_u64(seed));
    let mut next = vec![0u32; tasks as usize];
    for (k, &task) in order.iter().enumerate() {
        next[task as usize] = order[(k + 1) % order.len()];
    }
    (order, next)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rotation_is_one_cycle_through_every_task() {
        for tasks in [1u32, 2, 7, 4096] {
            let (order, next) = rotation(tasks, 42);
            let mut seen = vec![false; tasks as usize];
            let mut i = order[0];
            for (k, &task) in order.iter().enumerate() {
                assert_eq!(i, task, "turn {k} of {tasks}");
                assert!(!seen[i as usize], "task {i} twice in one rotation");
                seen[i as usize] = true;
                i = next[i as usize];
            }
            assert_eq!(i, order[0], "the cycle closes");
            assert!(seen.iter().all(|s| *s));
        }
        assert_eq!(rotation(1, 0), (vec![0], vec![0]));
        assert_eq!(rotation(64, 1), rotation(64, 1), "seeded");
        assert_ne!(rotation(64, 1).0, rotation(64, 2).0);
    }

    #[test]
    fn the_mapping_holds_slots_and_turns_apart() {
        let s = Shared::new(3, 5).expect("mmap");
        s.slot(2).go.store(7, Ordering::Relaxed);
        s.record(4, 99, 1);
        s.record(5, 1, 1); // beyond the capacity: dropped
        assert_eq!(s.slot(2).go.load(Ordering::Relaxed), 7);
        assert_eq!(s.slot(0).go.load(Ordering::Relaxed), 0);
        assert_eq!(s.turns(3, 9), vec![(0, 0), (99, 1)]);
        assert_eq!(s.header().turn.load(Ordering::Relaxed), 0);
        let (slots, samples, cpus, len) = layout(3, 5);
        assert!(slots >= std::mem::size_of::<Header>() && samples >= slots + 3 * 16);
        assert!(cpus == samples + 40 && len == cpus + 20);
    }
}
