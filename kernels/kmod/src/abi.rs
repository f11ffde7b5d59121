//! The Rust mirror of `uapi/hookbench_kmod.h`, hookbench.ko's ioctl ABI, and its conversions.
//!
//! `#[repr(C)]` mirrors of every struct and constant of the header, the ioctl request numbers,
//! and the functions that turn hookbench-model's names into the ABI's numbers
//! ([`model_raw`], [`model_from_raw`], [`attach_flags_raw`]). The header is the reference; see
//! it for the meaning of every field and the errors of every ioctl. The layout test (`tests`
//! below) compiles a C program including the header with the host's `cc` and compares every
//! `sizeof`, `offsetof`, constant and ioctl number with this file; it also checks that every
//! struct field and `#define` of the header has a mirror here.

use hookbench_model::{AttachFlags, ModelKind};

/// The uapi header's text (for tests and for tools that want to show it).
pub const HEADER: &str = include_str!("../uapi/hookbench_kmod.h");

/// `HB_KMOD_ABI_VERSION`: the ABI this crate speaks.
pub const HB_KMOD_ABI_VERSION: u32 = 2;
/// `HB_KMOD_ABI_VERSION_MIN`: the oldest caller ABI the module still serves.
///
/// A version-1 caller's RUN is [`HB_KMOD_IOC_RUN_V1`] (the first [`HB_KMOD_RUN_V1_SIZE`] bytes
/// of [`HbKmodRun`]), run with a working set of 1.
pub const HB_KMOD_ABI_VERSION_MIN: u32 = 1;
/// `HB_KMOD_DEVICE`: the device node.
pub const HB_KMOD_DEVICE: &str = "/dev/hookbench";
/// `HB_KMOD_MAX_HOOKS`: hook ids are `0..HB_KMOD_MAX_HOOKS`.
pub const HB_KMOD_MAX_HOOKS: u32 = 16;
/// `HB_KMOD_MAX_PROGS`: programs per cgroup and hook, and per global hook.
///
/// As the kernel's `BPF_CGROUP_MAX_PROGS`.
pub const HB_KMOD_MAX_PROGS: u32 = 64;
/// `HB_KMOD_MAX_TASK_PROGS`: most chain nodes (task-chain) or programs per hook (task-hook-array).
///
/// Per task: the nodes of its chain, or the programs of one hook in its array set.
pub const HB_KMOD_MAX_TASK_PROGS: u32 = 4096;
/// `HB_KMOD_MAX_BATCH`: most fires per RUN sample.
pub const HB_KMOD_MAX_BATCH: u32 = 65536;
/// `HB_KMOD_MAX_SAMPLES`: most samples per RUN.
pub const HB_KMOD_MAX_SAMPLES: u32 = 1_048_576;
/// `HB_KMOD_MAX_FIRES`: most `batch * samples` per RUN.
pub const HB_KMOD_MAX_FIRES: u64 = 268_435_456;
/// `HB_KMOD_MAX_BATCH_WORK`: most `batch * work of one fire` per RUN batch.
///
/// The work of a fire: the programs it runs, or the caller's chain length in task-chain if
/// more; at least 1.
pub const HB_KMOD_MAX_BATCH_WORK: u64 = 4_194_304;
/// `HB_KMOD_CTX_ARGS`: `u64` values in the hook context.
pub const HB_KMOD_CTX_ARGS: u32 = 4;
/// `HB_KMOD_MAX_WORKING_SET`: most states in a RUN's working set.
pub const HB_KMOD_MAX_WORKING_SET: u32 = 65536;
/// `HB_KMOD_MAX_WORKING_SET_BYTES`: most bytes of a RUN's working-set states (256 MiB).
pub const HB_KMOD_MAX_WORKING_SET_BYTES: u64 = 268_435_456;
/// `HB_KMOD_RUN_V1_SIZE`: size of an ABI 1 caller's `struct hb_kmod_run`.
pub const HB_KMOD_RUN_V1_SIZE: u32 = 64;
/// `HB_KMOD_DIGEST_PRIME`: the multiplier of RUN's `states_digest` (FNV-1a's 64-bit prime).
pub const HB_KMOD_DIGEST_PRIME: u64 = 1_099_511_628_211;
/// `HB_KMOD_CTX_HOOK`: context slot of the hook id.
pub const HB_KMOD_CTX_HOOK: u32 = 0;
/// `HB_KMOD_CTX_CGROUP_ID`: context slot of the firing task's cgroup v2 id.
pub const HB_KMOD_CTX_CGROUP_ID: u32 = 1;
/// `HB_KMOD_CTX_PID`: context slot of the firing task's pid (thread id).
pub const HB_KMOD_CTX_PID: u32 = 2;
/// `HB_KMOD_CTX_MODEL`: context slot of the model fired.
pub const HB_KMOD_CTX_MODEL: u32 = 3;
/// `HB_KMOD_MODEL_TASK_CHAIN`: "task-chain".
pub const HB_KMOD_MODEL_TASK_CHAIN: u32 = 0;
/// `HB_KMOD_MODEL_TASK_HOOK_ARRAY`: "task-hook-array".
pub const HB_KMOD_MODEL_TASK_HOOK_ARRAY: u32 = 1;
/// `HB_KMOD_MODEL_CGROUP_EFFECTIVE`: "cgroup-effective".
pub const HB_KMOD_MODEL_CGROUP_EFFECTIVE: u32 = 2;
/// `HB_KMOD_MODEL_GLOBAL_FILTER`: "global-filter".
pub const HB_KMOD_MODEL_GLOBAL_FILTER: u32 = 3;
/// `HB_KMOD_MODELS`: number of models.
pub const HB_KMOD_MODELS: u32 = 4;
/// `HB_KMOD_F_ALLOW_OVERRIDE` (`BPF_F_ALLOW_OVERRIDE`).
pub const HB_KMOD_F_ALLOW_OVERRIDE: u32 = 1;
/// `HB_KMOD_F_ALLOW_MULTI` (`BPF_F_ALLOW_MULTI`).
pub const HB_KMOD_F_ALLOW_MULTI: u32 = 2;
/// `HB_KMOD_PROG_NULL_BODY`: `prog_fd` naming the built-in null body.
pub const HB_KMOD_PROG_NULL_BODY: i32 = -1;
/// `HB_KMOD_NO_CGROUP`: `cgroup_fd` of every model but cgroup-effective.
pub const HB_KMOD_NO_CGROUP: i32 = -1;
/// `HB_KMOD_VERDICT_ALLOW`: what every built-in body returns.
pub const HB_KMOD_VERDICT_ALLOW: u32 = 1;
/// `HB_KMOD_IOC_MAGIC`: the ioctl type byte.
pub const HB_KMOD_IOC_MAGIC: u32 = 0xB9;

/// `struct hb_kmod_version` (VERSION).
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HbKmodVersion {
    /// out: `HB_KMOD_ABI_VERSION`.
    pub abi_version: u32,
    /// out: `HB_KMOD_MODELS`.
    pub models: u32,
    /// out: `HB_KMOD_MAX_HOOKS`.
    pub max_hooks: u32,
    /// out: `HB_KMOD_MAX_PROGS`.
    pub max_progs: u32,
    /// out: `HB_KMOD_MAX_TASK_PROGS`.
    pub max_task_progs: u32,
    /// out: `HB_KMOD_MAX_BATCH`.
    pub max_batch: u32,
    /// out: `HB_KMOD_MAX_SAMPLES`.
    pub max_samples: u32,
    /// out: `HB_KMOD_CTX_ARGS`.
    pub ctx_args: u32,
    /// out: `HB_KMOD_MAX_FIRES`.
    pub max_fires: u64,
    /// out: `HB_KMOD_MAX_BATCH_WORK`.
    pub max_batch_work: u64,
}

/// `struct hb_kmod_attach` (ATTACH, DETACH).
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HbKmodAttach {
    /// in: `HB_KMOD_ABI_VERSION`.
    pub abi_version: u32,
    /// in: `HB_KMOD_MODEL_*`.
    pub model: u32,
    /// in: raw_tp BPF program fd, or `HB_KMOD_PROG_NULL_BODY`.
    pub prog_fd: i32,
    /// in: cgroup v2 directory fd (cgroup-effective), else `HB_KMOD_NO_CGROUP`.
    pub cgroup_fd: i32,
    /// in: hook id.
    pub hook: u32,
    /// in: 0; for a cgroup-effective ATTACH also `HB_KMOD_F_ALLOW_OVERRIDE` or `_ALLOW_MULTI`.
    pub flags: u32,
    /// out: kernel time of the update.
    pub elapsed_ns: u64,
    /// out: effective arrays recomputed (cgroup-effective).
    pub recomputed: u32,
    /// out: programs in effect / on the chain / on the hook after the update.
    pub count: u32,
    /// in: 0.
    pub reserved: u64,
}

/// `struct hb_kmod_fire` (FIRE).
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HbKmodFire {
    /// in: `HB_KMOD_ABI_VERSION`.
    pub abi_version: u32,
    /// in: `HB_KMOD_MODEL_*`.
    pub model: u32,
    /// in: hook id.
    pub hook: u32,
    /// in: 0.
    pub flags: u32,
    /// out: programs run.
    pub progs_run: u32,
    /// out: AND of their return values.
    pub verdict: u32,
    /// out: the cgroup id in the context.
    pub cgroup_id: u64,
    /// in: 0.
    pub reserved: u64,
}

/// `struct hb_kmod_run` (RUN, the in-kernel timed loop).
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HbKmodRun {
    /// in: `HB_KMOD_ABI_VERSION`.
    pub abi_version: u32,
    /// in: `HB_KMOD_MODEL_*`.
    pub model: u32,
    /// in: hook id.
    pub hook: u32,
    /// in: fires per sample.
    pub batch: u32,
    /// in: samples.
    pub samples: u32,
    /// in: 0.
    pub flags: u32,
    /// in: user address of `u64[samples]`.
    pub samples_addr: u64,
    /// out: programs run over all fires.
    pub progs_run: u64,
    /// out: programs run by the untimed first fire.
    pub progs_per_fire: u32,
    /// out: AND over all fires.
    pub verdict: u32,
    /// out: sum of the samples.
    pub total_ns: u64,
    /// in: 0.
    pub reserved: u64,
    /// in: W, the states fired in turn (1: the caller's own; ABI 2).
    pub working_set: u32,
    /// in: 0.
    pub reserved2: u32,
    /// in: seed of the states' permutation ([`working_set_permutation`]); 0 when W is 1.
    pub seed: u64,
    /// out: W times the bytes of one state (kmalloc sizes requested).
    pub working_set_bytes: u64,
    /// out: the digest of the states fired, in order ([`states_digest`]); 0 when W is 1.
    pub states_digest: u64,
}

/// The order RUN fires a working set of `w` states in: a permutation of `0..w` from `seed`.
///
/// splitmix64 and Fisher-Yates exactly as the uapi header's RUN says, so a run can be reproduced
/// and checked; fire `f` uses state `perm[f % w]`. Empty for `w == 0`.
pub fn working_set_permutation(w: u32, seed: u64) -> Vec<u32> {
    let mut x = seed;
    let mut next = || {
        x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = x;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    };
    let mut perm: Vec<u32> = (0..w).collect();
    for i in (1..w as usize).rev() {
        let j = (next() % (i as u64 + 1)) as usize;
        perm.swap(i, j);
    }
    perm
}

/// The `states_digest` RUN reports after `fires` fires over permutation `perm`.
///
/// `d = 0`, then per fire `d = (d ^ (perm[f % W] + 1)) * HB_KMOD_DIGEST_PRIME` (wrapping): the
/// key of each state found, in order. 0 for an empty `perm`.
pub fn states_digest(perm: &[u32], fires: u64) -> u64 {
    if perm.is_empty() {
        return 0;
    }
    let mut d = 0u64;
    for f in 0..fires {
        let key = u64::from(perm[(f % perm.len() as u64) as usize]) + 1;
        d = (d ^ key).wrapping_mul(HB_KMOD_DIGEST_PRIME);
    }
    d
}

/// `struct hb_kmod_reset` (RESET).
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HbKmodReset {
    /// in: `HB_KMOD_ABI_VERSION`.
    pub abi_version: u32,
    /// in: 0.
    pub flags: u32,
    /// in: 0.
    pub reserved: u64,
}

/// `struct hb_kmod_stats` (STATS).
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HbKmodStats {
    /// in: `HB_KMOD_ABI_VERSION`.
    pub abi_version: u32,
    /// in: 0.
    pub flags: u32,
    /// in: 0.
    pub reserved: u64,
    /// out: tasks with state in the session.
    pub task_entries: u64,
    /// out: cgroups with state in the session.
    pub cgroup_entries: u64,
    /// out: task-chain nodes.
    pub chain_nodes: u64,
    /// out: task-hook-array sets.
    pub task_arrays: u64,
    /// out: program arrays.
    pub prog_arrays: u64,
    /// out: cgroup and global attachments.
    pub attachments: u64,
    /// out: bytes of all of the above.
    pub bytes: u64,
    /// out: forks that shared state with the child.
    pub forks_shared: u64,
    /// out: forks whose child got no state.
    pub forks_nomem: u64,
    /// out: exits that released state.
    pub exits_released: u64,
}

/// Whether this architecture has the 13-bit `_IOC` size field (and 3 direction bits).
///
/// powerpc, mips and sparc (include/uapi/asm-generic/ioctl.h is overridden by their
/// `asm/ioctl.h`); every other architecture has 14 size bits and 2 direction bits.
const IOC_SIZE_13_BITS: bool = cfg!(any(
    target_arch = "powerpc",
    target_arch = "powerpc64",
    target_arch = "mips",
    target_arch = "mips64",
    target_arch = "sparc",
    target_arch = "sparc64"
));

/// `_IOWR(HB_KMOD_IOC_MAGIC, nr, T)` with the kernel's `_IOC` encoding for this architecture.
pub const fn iowr(nr: u32, size: usize) -> u64 {
    // (READ|WRITE, DIRSHIFT, SIZEMASK)
    let (dir, dirshift, sizemask): (u64, u64, u64) = if IOC_SIZE_13_BITS {
        (6, 29, 0x1fff)
    } else {
        (3, 30, 0x3fff)
    };
    (dir << dirshift) | (((size as u64) & sizemask) << 16) | ((HB_KMOD_IOC_MAGIC as u64) << 8) | nr as u64
}

/// `HB_KMOD_IOC_VERSION`.
pub const HB_KMOD_IOC_VERSION: u64 = iowr(0, std::mem::size_of::<HbKmodVersion>());
/// `HB_KMOD_IOC_ATTACH`.
pub const HB_KMOD_IOC_ATTACH: u64 = iowr(1, std::mem::size_of::<HbKmodAttach>());
/// `HB_KMOD_IOC_DETACH`.
pub const HB_KMOD_IOC_DETACH: u64 = iowr(2, std::mem::size_of::<HbKmodAttach>());
/// `HB_KMOD_IOC_FIRE`.
pub const HB_KMOD_IOC_FIRE: u64 = iowr(3, std::mem::size_of::<HbKmodFire>());
/// `HB_KMOD_IOC_RUN`.
pub const HB_KMOD_IOC_RUN: u64 = iowr(4, std::mem::size_of::<HbKmodRun>());
/// `HB_KMOD_IOC_RUN_V1`: RUN of an ABI 1 caller (its 64-byte struct).
pub const HB_KMOD_IOC_RUN_V1: u64 = iowr(4, HB_KMOD_RUN_V1_SIZE as usize);
/// `HB_KMOD_IOC_RESET`.
pub const HB_KMOD_IOC_RESET: u64 = iowr(5, std::mem::size_of::<HbKmodReset>());
/// `HB_KMOD_IOC_STATS`.
pub const HB_KMOD_IOC_STATS: u64 = iowr(6, std::mem::size_of::<HbKmodStats>());

/// `[(name, value as u64)]` of constants, each named once so that name and value cannot part.
///
/// `as u64` sign-extends the negative ones (-1 is 2^64-1), as the C header's
/// `(unsigned long long)` cast does.
macro_rules! named_u64 {
    ($($name:ident),* $(,)?) => {
        [$((stringify!($name), $name as u64)),*]
    };
}

/// Every ioctl request number with its header name.
pub const IOCTLS: [(&str, u64); 8] = named_u64![
    HB_KMOD_IOC_VERSION,
    HB_KMOD_IOC_ATTACH,
    HB_KMOD_IOC_DETACH,
    HB_KMOD_IOC_FIRE,
    HB_KMOD_IOC_RUN,
    HB_KMOD_IOC_RUN_V1,
    HB_KMOD_IOC_RESET,
    HB_KMOD_IOC_STATS,
];

/// The ABI's `HB_KMOD_MODEL_*` number of a dispatch model.
pub const fn model_raw(model: ModelKind) -> u32 {
    match model {
        ModelKind::TaskChain => HB_KMOD_MODEL_TASK_CHAIN,
        ModelKind::TaskHookArray => HB_KMOD_MODEL_TASK_HOOK_ARRAY,
        ModelKind::CgroupEffective => HB_KMOD_MODEL_CGROUP_EFFECTIVE,
        ModelKind::GlobalFilter => HB_KMOD_MODEL_GLOBAL_FILTER,
    }
}

/// The dispatch model of an `HB_KMOD_MODEL_*` number; `None` for a number the ABI lacks.
pub fn model_from_raw(raw: u32) -> Option<ModelKind> {
    ModelKind::ALL.into_iter().find(|&m| model_raw(m) == raw)
}

/// The ATTACH `flags` of cgroup-effective attach flags (the same bits as `BPF_F_ALLOW_*`).
///
/// Unknown bits and `ALLOW_OVERRIDE | ALLOW_MULTI` pass through: the module refuses them
/// with `EINVAL`, as the kernel does.
pub const fn attach_flags_raw(flags: AttachFlags) -> u32 {
    flags.0
}

// hookbench-model's flags are the kernel's bits, and the ABI's too.
const _: () = assert!(
    attach_flags_raw(AttachFlags::NONE) == 0
        && attach_flags_raw(AttachFlags::ALLOW_OVERRIDE) == HB_KMOD_F_ALLOW_OVERRIDE
        && attach_flags_raw(AttachFlags::ALLOW_MULTI) == HB_KMOD_F_ALLOW_MULTI
);

/// The size every ABI struct must have (also asserted by `BUILD_BUG_ON` in the module).
const _: () = {
    assert!(std::mem::size_of::<HbKmodVersion>() == 48);
    assert!(std::mem::size_of::<HbKmodAttach>() == 48);
    assert!(std::mem::size_of::<HbKmodFire>() == 40);
    assert!(std::mem::size_of::<HbKmodRun>() == 96);
    assert!(std::mem::offset_of!(HbKmodRun, working_set) == HB_KMOD_RUN_V1_SIZE as usize);
    assert!(std::mem::size_of::<HbKmodReset>() == 16);
    assert!(std::mem::size_of::<HbKmodStats>() == 96);
};

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::{BTreeMap, BTreeSet};
    use std::mem::{offset_of, size_of};
    use std::process::Command;

    #[test]
    fn models_convert_both_ways_and_stay_below_hb_kmod_models() {
        for m in ModelKind::ALL {
            assert!(model_raw(m) < HB_KMOD_MODELS, "{m}");
            assert_eq!(model_from_raw(model_raw(m)), Some(m));
        }
        assert_eq!(model_raw(ModelKind::CgroupEffective), 2);
        assert_eq!(model_from_raw(HB_KMOD_MODELS), None);
        assert_eq!(
            attach_flags_raw(AttachFlags::ALLOW_MULTI | AttachFlags::ALLOW_OVERRIDE),
            3
        );
    }

    #[test]
    fn permutations_are_seeded_and_visit_every_state() {
        for (w, seed) in [(1, 0), (2, 7), (4096, 1), (4096, 2), (65536, 99)] {
            let p = working_set_permutation(w, seed);
            let mut sorted = p.clone();
            sorted.sort_unstable();
            assert_eq!(sorted, (0..w).collect::<Vec<_>>(), "w {w} seed {seed}");
            assert_eq!(p, working_set_permutation(w, seed), "reproducible");
        }
        let (a, b) = (working_set_permutation(4096, 1), working_set_permutation(4096, 2));
        assert_ne!(a, b, "another seed, another order");
        let fixed = (0..4096u32).filter(|&i| a[i as usize] == i).count();
        assert!(fixed < 20, "{fixed} states kept their place: not shuffled");
        // splitmix64's first output for seed 0 is 0xe220a8397b1dcdaf (its published vector):
        // j = that % 3 for w = 3 at i = 2, which swaps perm[2] with perm[j].
        let j = (0xe220_a839_7b1d_cdaf_u64 % 3) as u32;
        let mut want = [0u32, 1, 2];
        want.swap(2, j as usize);
        assert_eq!(working_set_permutation(3, 0)[2], want[2]);
    }

    #[test]
    fn the_digest_follows_the_order_of_the_states() {
        let p = working_set_permutation(8, 3);
        assert_eq!(states_digest(&p, 0), 0);
        assert_eq!(states_digest(&[], 100), 0);
        let one = (u64::from(p[0]) + 1).wrapping_mul(HB_KMOD_DIGEST_PRIME);
        assert_eq!(states_digest(&p, 1), one);
        let mut q = p.clone();
        q.swap(0, 1);
        assert_ne!(states_digest(&p, 16), states_digest(&q, 16), "order matters");
        assert_ne!(states_digest(&p, 16), states_digest(&p, 17), "every fire counts");
    }

    /// One struct's Rust layout: its C name, size and (field, offset, size) triples.
    struct StructLayout {
        c_name: &'static str,
        size: usize,
        fields: Vec<(&'static str, usize, usize)>,
    }

    macro_rules! layout {
        ($c:literal, $t:ty, [$($f:ident),* $(,)?]) => {{
            let v: $t = Default::default();
            let _ = &v;
            StructLayout {
                c_name: $c,
                size: size_of::<$t>(),
                fields: vec![$((stringify!($f), offset_of!($t, $f), std::mem::size_of_val(&v.$f))),*],
            }
        }};
    }

    fn rust_structs() -> Vec<StructLayout> {
        vec![
            layout!(
                "hb_kmod_version",
                HbKmodVersion,
                [
                    abi_version,
                    models,
                    max_hooks,
                    max_progs,
                    max_task_progs,
                    max_batch,
                    max_samples,
                    ctx_args,
                    max_fires,
                    max_batch_work
                ]
            ),
            layout!(
                "hb_kmod_attach",
                HbKmodAttach,
                [
                    abi_version,
                    model,
                    prog_fd,
                    cgroup_fd,
                    hook,
                    flags,
                    elapsed_ns,
                    recomputed,
                    count,
                    reserved
                ]
            ),
            layout!(
                "hb_kmod_fire",
                HbKmodFire,
                [abi_version, model, hook, flags, progs_run, verdict, cgroup_id, reserved]
            ),
            layout!(
                "hb_kmod_run",
                HbKmodRun,
                [
                    abi_version,
                    model,
                    hook,
                    batch,
                    samples,
                    flags,
                    samples_addr,
                    progs_run,
                    progs_per_fire,
                    verdict,
                    total_ns,
                    reserved,
                    working_set,
                    reserved2,
                    seed,
                    working_set_bytes,
                    states_digest
                ]
            ),
            layout!("hb_kmod_reset", HbKmodReset, [abi_version, flags, reserved]),
            layout!(
                "hb_kmod_stats",
                HbKmodStats,
                [
                    abi_version,
                    flags,
                    reserved,
                    task_entries,
                    cgroup_entries,
                    chain_nodes,
                    task_arrays,
                    prog_arrays,
                    attachments,
                    bytes,
                    forks_shared,
                    forks_nomem,
                    exits_released
                ]
            ),
        ]
    }

    /// Every numeric `#define` of the header with the Rust value (as the C program prints it:
    /// `(unsigned long long)(NAME)`, so -1 is 2^64-1).
    fn rust_constants() -> Vec<(&'static str, u64)> {
        let mut v: Vec<(&'static str, u64)> = named_u64![
            HB_KMOD_ABI_VERSION,
            HB_KMOD_ABI_VERSION_MIN,
            HB_KMOD_MAX_WORKING_SET,
            HB_KMOD_MAX_WORKING_SET_BYTES,
            HB_KMOD_RUN_V1_SIZE,
            HB_KMOD_DIGEST_PRIME,
            HB_KMOD_MAX_HOOKS,
            HB_KMOD_MAX_PROGS,
            HB_KMOD_MAX_TASK_PROGS,
            HB_KMOD_MAX_BATCH,
            HB_KMOD_MAX_SAMPLES,
            HB_KMOD_MAX_FIRES,
            HB_KMOD_MAX_BATCH_WORK,
            HB_KMOD_CTX_ARGS,
            HB_KMOD_CTX_HOOK,
            HB_KMOD_CTX_CGROUP_ID,
            HB_KMOD_CTX_PID,
            HB_KMOD_CTX_MODEL,
            HB_KMOD_MODEL_TASK_CHAIN,
            HB_KMOD_MODEL_TASK_HOOK_ARRAY,
            HB_KMOD_MODEL_CGROUP_EFFECTIVE,
            HB_KMOD_MODEL_GLOBAL_FILTER,
            HB_KMOD_MODELS,
            HB_KMOD_F_ALLOW_OVERRIDE,
            HB_KMOD_F_ALLOW_MULTI,
            HB_KMOD_PROG_NULL_BODY,
            HB_KMOD_NO_CGROUP,
            HB_KMOD_VERDICT_ALLOW,
            HB_KMOD_IOC_MAGIC,
        ]
        .to_vec();
        v.extend(IOCTLS);
        v
    }

    /// (struct name -> field names in order, every `#define` name) parsed from the header.
    fn header_items() -> (BTreeMap<String, Vec<String>>, BTreeSet<String>) {
        let mut structs = BTreeMap::new();
        let mut defines = BTreeSet::new();
        let mut current: Option<(String, Vec<String>)> = None;
        for line in HEADER.lines() {
            let t = line.trim();
            if let Some(rest) = t.strip_prefix("#define ") {
                let name = rest.split_whitespace().next().unwrap_or_default();
                if name != "_UAPI_HOOKBENCH_KMOD_H" {
                    defines.insert(name.to_string());
                }
            } else if let Some(rest) = t.strip_prefix("struct ") {
                if let Some(name) = rest.strip_suffix(" {") {
                    current = Some((name.to_string(), Vec::new()));
                }
            } else if t.starts_with("};") {
                if let Some((name, fields)) = current.take() {
                    structs.insert(name, fields);
                }
            } else if let Some((_, fields)) = current.as_mut() {
                if t.starts_with("__") {
                    let decl = t.split(';').next().unwrap_or_default();
                    let name = decl.split_whitespace().last().unwrap_or_default();
                    fields.push(name.to_string());
                }
            }
        }
        (structs, defines)
    }

    #[test]
    fn every_header_item_has_a_rust_mirror() {
        let (structs, defines) = header_items();
        let rs = rust_structs();
        let names: BTreeSet<String> = rs.iter().map(|s| s.c_name.to_string()).collect();
        assert_eq!(
            structs.keys().cloned().collect::<BTreeSet<_>>(),
            names,
            "structs of the header"
        );
        for s in &rs {
            let c_fields = &structs[s.c_name];
            let r_fields: Vec<String> = s.fields.iter().map(|f| f.0.to_string()).collect();
            assert_eq!(c_fields, &r_fields, "fields of struct {}", s.c_name);
        }
        let consts: BTreeSet<String> = rust_constants().iter().map(|c| c.0.to_string()).collect();
        let mut missing: Vec<&String> = defines.iter().filter(|d| !consts.contains(*d)).collect();
        missing.retain(|d| d.as_str() != "HB_KMOD_DEVICE");
        assert!(missing.is_empty(), "defines without a Rust mirror: {missing:?}");
        assert!(HEADER.contains(&format!("#define HB_KMOD_DEVICE \"{HB_KMOD_DEVICE}\"")));
    }

    /// The C program: one line `<expression> <value>` per size, offset, field size, constant.
    fn c_program() -> (String, Vec<(String, u64)>) {
        let mut src = String::from(
            "#include <stdio.h>\n#include <stddef.h>\n#include \"hookbench_kmod.h\"\n\
             #define P(e) printf(\"%s %llu\\n\", #e, (unsigned long long)(e))\n\
             #define F(s, f) printf(\"sizeof(((struct %s *)0)->%s) %llu\\n\", #s, #f, \
             (unsigned long long)sizeof(((struct s *)0)->f))\nint main(void) {\n",
        );
        let mut expected = Vec::new();
        for s in rust_structs() {
            src.push_str(&format!("P(sizeof(struct {}));\n", s.c_name));
            expected.push((format!("sizeof(struct {})", s.c_name), s.size as u64));
            for (f, off, size) in &s.fields {
                src.push_str(&format!("P(offsetof(struct {}, {f}));\n", s.c_name));
                expected.push((format!("offsetof(struct {}, {f})", s.c_name), *off as u64));
                src.push_str(&format!("F({}, {f});\n", s.c_name));
                expected.push((format!("sizeof(((struct {} *)0)->{f})", s.c_name), *size as u64));
            }
        }
        for (name, v) in rust_constants() {
            src.push_str(&format!("P({name});\n"));
            expected.push((name.to_string(), v));
        }
        src.push_str("return 0;\n}\n");
        (src, expected)
    }

    fn compile_and_run(src: &str) -> Result<BTreeMap<String, u64>, String> {
        let dir = tempfile::tempdir().map_err(|e| format!("tempdir: {e}"))?;
        let c = dir.path().join("layout.c");
        let exe = dir.path().join("layout");
        std::fs::write(&c, src).map_err(|e| format!("write: {e}"))?;
        let uapi = concat!(env!("CARGO_MANIFEST_DIR"), "/uapi");
        let out = Command::new("cc")
            .args(["-std=c11", "-Wall", "-Werror", "-I", uapi, "-o"])
            .arg(&exe)
            .arg(&c)
            .output()
            .map_err(|e| format!("running cc (install a C compiler and linux-libc-dev): {e}"))?;
        if !out.status.success() {
            return Err(format!("cc failed:\n{}", String::from_utf8_lossy(&out.stderr)));
        }
        let out = Command::new(&exe)
            .output()
            .map_err(|e| format!("running the program: {e}"))?;
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let mut map = BTreeMap::new();
        for line in text.lines() {
            let (k, v) = line.rsplit_once(' ').ok_or_else(|| format!("bad line {line:?}"))?;
            map.insert(k.to_string(), v.parse::<u64>().map_err(|e| format!("{line:?}: {e}"))?);
        }
        Ok(map)
    }

    /// Compares every (expression, Rust value) with what C prints; returns the mismatches.
    fn mismatches(c: &BTreeMap<String, u64>, expected: &[(String, u64)]) -> Vec<String> {
        expected
            .iter()
            .filter_map(|(k, v)| match c.get(k) {
                Some(cv) if cv == v => None,
                Some(cv) => Some(format!("{k}: C {cv}, Rust {v}")),
                None => Some(format!("{k}: not printed by C")),
            })
            .collect()
    }

    #[test]
    fn c_and_rust_layouts_agree() {
        let (src, expected) = c_program();
        let c = compile_and_run(&src).unwrap_or_else(|e| panic!("layout program: {e}"));
        let bad = mismatches(&c, &expected);
        assert!(
            bad.is_empty(),
            "ABI mismatches between uapi/hookbench_kmod.h and src/abi.rs:\n{}",
            bad.join("\n")
        );
        assert!(expected.len() >= 140, "{} items compared", expected.len());
    }

    /// The comparison can fail: a wrong offset or constant on the Rust side is reported.
    #[test]
    fn layout_comparison_detects_a_difference() {
        let (src, mut expected) = c_program();
        let c = compile_and_run(&src).unwrap_or_else(|e| panic!("layout program: {e}"));
        let i = expected
            .iter()
            .position(|(k, _)| k == "offsetof(struct hb_kmod_run, samples_addr)")
            .expect("item present");
        expected[i].1 += 4;
        let j = expected
            .iter()
            .position(|(k, _)| k == "HB_KMOD_IOC_RUN")
            .expect("item present");
        expected[j].1 ^= 1 << 16;
        let bad = mismatches(&c, &expected);
        assert_eq!(bad.len(), 2, "{bad:?}");
    }
}
