//! Programs: one body for every model, so that only dispatch differs between models.
//!
//! The bodies are null, counter and map lookup, called through a function pointer like
//! `bpf_prog->bpf_func`.

use crate::htab::Htab;
use crate::names::Body;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// A hook number: index of the hook (the cgroup-bpf attach type, `enum cgroup_bpf_attach_type`).
/// Hook 0 is the measured hook of every scenario.
pub type HookId = u32;

/// Verdict meaning "allow" (an LSM hook's 0).
pub const VERDICT_ALLOW: u32 = 0;

/// Entries in the hash map owned by every [`Body::MapLookup`] program.
///
/// The keys are `0..PROG_MAP_ENTRIES`, so a lookup of a hook number below this hits.
pub const PROG_MAP_ENTRIES: u32 = 16;

/// What a program sees when a hook fires (the `ctx` argument of `bpf_prog_run`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HookCtx {
    /// The hook that fired.
    pub hook: HookId,
}

/// The entry point of a program: `bpf_func(ctx, insn)` in `struct bpf_prog`.
///
/// It returns a verdict: [`VERDICT_ALLOW`] or non-zero.
pub type ProgFn = fn(&Prog, &HookCtx) -> u32;

/// One loaded program (`struct bpf_prog`), shared by `Arc` between every place it is attached.
///
/// It is run by an indirect call through [`Prog::run`], so the body is opaque to the dispatcher
/// exactly as a JITed BPF program is.
#[derive(Debug)]
pub struct Prog {
    func: ProgFn,
    id: u64,
    body: Body,
    /// The counter of [`Body::Counter`] (a one-entry BPF array map updated with an atomic add).
    counter: AtomicU64,
    /// The hash map of [`Body::MapLookup`] (a small BPF hash map owned by the program).
    map: Option<Htab<u64>>,
}

static NEXT_PROG_ID: AtomicU64 = AtomicU64::new(1);

fn run_null(_prog: &Prog, _ctx: &HookCtx) -> u32 {
    VERDICT_ALLOW
}

fn run_counter(prog: &Prog, _ctx: &HookCtx) -> u32 {
    // `__sync_fetch_and_add(&value, 1)` on an array map value: a locked RMW, relaxed ordering.
    prog.counter.fetch_add(1, Ordering::Relaxed);
    VERDICT_ALLOW
}

fn run_map_lookup(prog: &Prog, ctx: &HookCtx) -> u32 {
    // `bpf_map_lookup_elem(&map, &key)`; allow when the key is present.
    match prog.map.as_ref().and_then(|m| m.lookup(u64::from(ctx.hook))) {
        Some(_) => VERDICT_ALLOW,
        None => 1,
    }
}

impl Prog {
    /// Loads a new program with `body`, with a process-unique id (like `prog->aux->id`).
    ///
    /// A [`Body::MapLookup`] program gets its own hash map of [`PROG_MAP_ENTRIES`] entries.
    pub fn new(body: Body) -> Arc<Prog> {
        let id = NEXT_PROG_ID.fetch_add(1, Ordering::Relaxed);
        let (func, map): (ProgFn, Option<Htab<u64>>) = match body {
            Body::Null => (run_null, None),
            Body::Counter => (run_counter, None),
            Body::MapLookup => {
                let mut map = Htab::with_capacity(PROG_MAP_ENTRIES, id as u32);
                for key in 0..u64::from(PROG_MAP_ENTRIES) {
                    // Cannot fail: exactly PROG_MAP_ENTRIES distinct keys into a map of that size.
                    let _ = map.update(key, key ^ id);
                }
                (run_map_lookup, Some(map))
            }
        };
        Arc::new(Prog {
            func,
            id,
            body,
            counter: AtomicU64::new(0),
            map,
        })
    }

    /// Runs the program: one indirect call through its function pointer (`bpf_prog_run`).
    #[inline(always)]
    pub fn run(&self, ctx: &HookCtx) -> u32 {
        (self.func)(self, ctx)
    }

    /// The program's unique id.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// The program's body.
    pub fn body(&self) -> Body {
        self.body
    }

    /// How many times a [`Body::Counter`] program ran, from its counter.
    ///
    /// `None` for other bodies, which keep no count (counting would change their cost).
    pub fn run_count(&self) -> Option<u64> {
        match self.body {
            Body::Counter => Some(self.counter.load(Ordering::Relaxed)),
            Body::Null | Body::MapLookup => None,
        }
    }

    /// Bytes of this program's allocations, from the actual lengths.
    ///
    /// They are the `Arc` allocation holding the struct plus its hash map (buckets and elements).
    pub fn allocated_bytes(&self) -> u64 {
        crate::footprint::arc_bytes::<Prog>() + self.map.as_ref().map_or(0, |m| m.heap_bytes(|_| 0))
    }
}
