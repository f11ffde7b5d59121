//! hookbench's cgroup-bpf programs: BPF C beside Rust, with one header as their ABI.
//!
//! The C is `src/bpf/hookbench.bpf.c`, the C/Rust ABI header `src/bpf/hookbench.h`; `build.rs`
//! compiles them with clang and libbpf-cargo's `SkeletonBuilder`.
//!
//! The object holds one program per [`SockBody`] for each [`MeasuredHook`]: `cgroup/getsockname4`
//! (`BPF_CGROUP_INET4_GETSOCKNAME`, Linux 5.8+, run by `inet_getname()` on every `getsockname()`
//! of an AF_INET socket: the cheap trigger) and `cgroup/sock_create`
//! (`BPF_CGROUP_INET_SOCK_CREATE`, run by `inet_create()` on every `socket(AF_INET*, ...)` of a
//! task in the cgroup); and one program per [`ForeignHook`] (attach types that `socket()`,
//! `getsockname()` and `close()` never run). A [`ProgramInstance`] opens the object and loads
//! exactly one of its programs, with its own two maps (`hb_counter`, `hb_lookup`): N instances
//! are N distinct kernel programs, as hookbench's "program" (each with its own counter or map,
//! ARCHITECTURE.md, "Names") requires. One instance costs one ELF parse (~5.5 KiB), two
//! `BPF_MAP_CREATE` and one `BPF_PROG_LOAD` (verification of a few instructions): well under a
//! millisecond.
//!
//! Attachments are bpf_links ([`ProgramInstance::attach_cgroup`], `BPF_LINK_CREATE`): they are
//! detached when the [`libbpf_rs::Link`] is dropped and by the kernel when the owning process
//! dies, so a killed run leaves nothing attached. cgroup links always use `BPF_F_ALLOW_MULTI`
//! semantics (`kernel/bpf/cgroup.c: cgroup_bpf_link_attach` -> `__cgroup_bpf_attach` with
//! `BPF_F_ALLOW_MULTI`), and each attach recomputes the effective arrays of the cgroup and all
//! its descendants (`update_effective_progs`). At most [`BPF_CGROUP_MAX_PROGS`] programs per
//! cgroup and attach type (`-E2BIG`, reported as [`BpfError::MaxProgs`]).
//!
//! Whether programs ran, whatever their body: [`RunStats`] turns the kernel's run statistics on
//! for as long as it is held (`BPF_ENABLE_STATS`), and [`ProgramInstance::run_count`] reads a
//! program's `bpf_prog_info.run_cnt`. Statistics cost every program run two clock reads and a
//! per-CPU update (`__bpf_prog_run` in include/linux/filter.h), so they are never on while a
//! measurement is timed.
//!
//! The BPF LSM programs (`lsm_cgroup` and global `lsm` on the `socket_create` hook) are a
//! separate object, `src/bpf/lsm.bpf.c`, loaded by [`lsm::LsmProgram`]. Every object (these two
//! and hookbench-kmod's) takes its maps and bodies from `src/bpf/hb_bodies.h`, and every loader
//! embeds it with [`embed_object!`] and opens and loads one program of it with [`LoadedProgram`].
//! Cells of thousands of programs load the null body alone instead, without an object
//! ([`raw::load_null`]).

#![warn(missing_docs)]

use std::ffi::c_void;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::ptr::NonNull;

pub use libbpf_rs;

pub mod global;
pub mod loaded;
pub mod lsm;
pub mod raw;

use libbpf_rs::libbpf_sys;
use libbpf_rs::Link;
pub use loaded::{object_names, LoadError, LoadStep, LoadedProgram, ObjectNames};

/// Embeds a BPF object that the calling crate's `build.rs` built, with its skeleton.
///
/// `embed_object!(OBJECT, skel, "name")` defines `pub static OBJECT: &[u8]`, the ELF of
/// `OUT_DIR/name.bpf.o` (built from `src/bpf/name.bpf.c`), and `pub mod skel`, libbpf-cargo's
/// `OUT_DIR/name.skel.rs` for typed access to the whole object. The loaders
/// ([`LoadedProgram::load`]) open the ELF themselves: they need owned objects, and a skeleton
/// borrows its storage. The calling crate depends on `libbpf-rs`, which skeletons name.
#[macro_export]
macro_rules! embed_object {
    ($object:ident, $skel:ident, $name:literal) => {
        #[doc = concat!("The compiled BPF object (ELF) of `src/bpf/", $name, ".bpf.c`.")]
        pub static $object: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/", $name, ".bpf.o"));

        #[doc = concat!("The libbpf-cargo skeleton of `", $name, ".bpf.c` (generated into `OUT_DIR`).")]
        #[allow(
            clippy::all,
            clippy::pedantic,
            clippy::unwrap_used,
            missing_docs,
            unsafe_op_in_unsafe_fn
        )]
        pub mod $skel {
            include!(concat!(env!("OUT_DIR"), "/", $name, ".skel.rs"));
        }
    };
}

embed_object!(OBJECT, skel, "hookbench");

/// The text of the C/Rust ABI header `src/bpf/hookbench.h`, which the constants below mirror.
///
/// A unit test checks every one.
pub const HEADER: &str = include_str!("bpf/hookbench.h");

/// `HB_BODY_NULL`: the body returns "allow" at once.
pub const HB_BODY_NULL: u32 = 0;
/// `HB_BODY_COUNTER`: the body adds 1 to its counter map with an atomic add.
pub const HB_BODY_COUNTER: u32 = 1;
/// `HB_BODY_MAP_LOOKUP`: the body looks up [`HB_LOOKUP_KEY`] in its hash map.
pub const HB_BODY_MAP_LOOKUP: u32 = 2;
/// `HB_COUNTER_ENTRIES`: entries of each program's `hb_counter` array map.
///
/// Key `u32`, value `u64`.
pub const HB_COUNTER_ENTRIES: u32 = 1;
/// `HB_COUNTER_KEY`: the entry the counter body increments.
pub const HB_COUNTER_KEY: u32 = 0;
/// `HB_LOOKUP_ENTRIES`: entries of each program's `hb_lookup` hash map, all filled at load.
///
/// Key `u32`, value `u64`; [`ProgramInstance::load`] fills them.
pub const HB_LOOKUP_ENTRIES: u32 = 16;
/// `HB_LOOKUP_KEY`: the key the map-lookup body looks up (present).
pub const HB_LOOKUP_KEY: u32 = 7;
/// `HB_VERDICT_ALLOW`: what every program returns (1 = allow, for every attach type used).
pub const HB_VERDICT_ALLOW: u32 = 1;

// The keys the bodies use exist in their maps.
const _: () = assert!(HB_LOOKUP_KEY < HB_LOOKUP_ENTRIES && HB_COUNTER_KEY < HB_COUNTER_ENTRIES);

/// Most programs one cgroup may have attached per attach type (`BPF_CGROUP_MAX_PROGS`).
///
/// Of `include/linux/bpf-cgroup-defs.h`, checked in `kernel/bpf/cgroup.c: __cgroup_bpf_attach`.
pub const BPF_CGROUP_MAX_PROGS: usize = 64;

/// The body of a measured program (on either [`MeasuredHook`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SockBody {
    /// `hb_sock_null`: returns 1.
    Null,
    /// `hb_sock_counter`: atomic add on its `hb_counter` entry, returns 1.
    Counter,
    /// `hb_sock_lookup`: one `bpf_map_lookup_elem` on its `hb_lookup` hash map, returns 1.
    MapLookup,
}

impl SockBody {
    /// Every body.
    pub const ALL: [SockBody; 3] = [SockBody::Null, SockBody::Counter, SockBody::MapLookup];

    /// The name of its `cgroup/sock_create` program in the object.
    pub fn prog_name(self) -> &'static str {
        MeasuredHook::SockCreate.prog_name(self)
    }

    /// The body's `HB_BODY_*` code of the ABI header.
    pub fn abi_code(self) -> u32 {
        match self {
            SockBody::Null => HB_BODY_NULL,
            SockBody::Counter => HB_BODY_COUNTER,
            SockBody::MapLookup => HB_BODY_MAP_LOOKUP,
        }
    }

    /// This body's program among the three `HB_BODY_PROGS` defines for one hook (hb_bodies.h).
    ///
    /// `names` are that hook's `<prefix>_null`, `<prefix>_counter` and `<prefix>_lookup`.
    pub fn program_of(self, names: [&'static str; 3]) -> &'static str {
        match self {
            SockBody::Null => names[0],
            SockBody::Counter => names[1],
            SockBody::MapLookup => names[2],
        }
    }

    /// The results name: "null", "counter" or "map-lookup" (as hookbench-model's `Body`).
    pub fn name(self) -> &'static str {
        match self {
            SockBody::Null => "null",
            SockBody::Counter => "counter",
            SockBody::MapLookup => "map-lookup",
        }
    }
}

/// The cgroup hook a measured program is attached to: what fires it, and how cheaply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MeasuredHook {
    /// `cgroup/getsockname4` (`BPF_CGROUP_INET4_GETSOCKNAME`, Linux 5.8+): `inet_getname()`
    /// runs `BPF_CGROUP_RUN_SA_PROG` on every `getsockname()` of an AF_INET socket, over the
    /// effective array of the cgroup the *socket* was created in (`sk->sk_cgrp_data`, set by
    /// `cgroup_sk_alloc` at `socket()`), not the caller's. A cheap, batchable trigger.
    Getsockname4,
    /// `cgroup/sock_create` (`BPF_CGROUP_INET_SOCK_CREATE`), run on every `socket(AF_INET*, ...)`.
    ///
    /// `inet_create()` runs `BPF_CGROUP_RUN_PROG_INET_SOCK`; about 1 us per call.
    SockCreate,
}

impl MeasuredHook {
    /// Every measured hook.
    pub const ALL: [MeasuredHook; 2] = [MeasuredHook::Getsockname4, MeasuredHook::SockCreate];

    /// The name of the program of `body` on this hook in the object.
    pub fn prog_name(self, body: SockBody) -> &'static str {
        body.program_of(match self {
            MeasuredHook::Getsockname4 => ["hb_getsockname_null", "hb_getsockname_counter", "hb_getsockname_lookup"],
            MeasuredHook::SockCreate => ["hb_sock_null", "hb_sock_counter", "hb_sock_lookup"],
        })
    }

    /// The hook's attach type.
    pub fn attach_type(self) -> AttachType {
        match self {
            MeasuredHook::Getsockname4 => AttachType::Getsockname4,
            MeasuredHook::SockCreate => AttachType::SockCreate,
        }
    }

    /// The libbpf section name, e.g. `"cgroup/getsockname4"`.
    pub fn section(self) -> &'static str {
        match self {
            MeasuredHook::Getsockname4 => "cgroup/getsockname4",
            MeasuredHook::SockCreate => "cgroup/sock_create",
        }
    }

    /// The first Linux release with the attach type, as (major, minor).
    ///
    /// getsockname4: 5.8 ("bpf: Add get{peer,sock}name attach types for sock_addr"); sock_create:
    /// 4.10.
    pub fn min_kernel(self) -> (u32, u32) {
        match self {
            MeasuredHook::Getsockname4 => (5, 8),
            MeasuredHook::SockCreate => (4, 10),
        }
    }
}

/// A "foreign" hook: a cgroup attach type whose programs never run in a measuring worker.
///
/// Not on `socket()`, `getsockname()` or `close()`, nor anywhere else in the worker (it reads no
/// sysctl, calls no `getsockopt()` and opens no device node once in its cgroup).
/// `cgroup/sock_create` would not do as a foreign type of a getsockname measurement: the worker's
/// one socket fires it once when it is created, so it would run in the worker, if not per timed
/// call. Its program runs the counter body, so a test can check it did not run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ForeignHook {
    /// `cgroup/sysctl` (`BPF_CGROUP_SYSCTL`): runs on /proc/sys reads and writes.
    Sysctl,
    /// `cgroup/getsockopt` (`BPF_CGROUP_GETSOCKOPT`): runs on `getsockopt(2)`.
    Getsockopt,
    /// `cgroup/dev` (`BPF_CGROUP_DEVICE`): runs on device node open/mknod (returns allow).
    Device,
}

impl ForeignHook {
    /// Every foreign hook, in the round-robin order used to place foreign programs.
    pub const ALL: [ForeignHook; 3] = [ForeignHook::Sysctl, ForeignHook::Getsockopt, ForeignHook::Device];

    /// The program's name in the object.
    pub fn prog_name(self) -> &'static str {
        match self {
            ForeignHook::Sysctl => "hb_foreign_sysctl",
            ForeignHook::Getsockopt => "hb_foreign_getsockopt",
            ForeignHook::Device => "hb_foreign_dev",
        }
    }
}

/// Which program of the object an instance loads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ProgKind {
    /// A measured program of a body on a hook.
    Measured(MeasuredHook, SockBody),
    /// A program on a foreign hook.
    Foreign(ForeignHook),
}

impl ProgKind {
    /// The program's name in the object.
    pub fn prog_name(self) -> &'static str {
        match self {
            ProgKind::Measured(hook, body) => hook.prog_name(body),
            ProgKind::Foreign(h) => h.prog_name(),
        }
    }

    /// The kernel's `enum bpf_attach_type` value of the program's hook.
    pub fn attach_type(self) -> AttachType {
        match self {
            ProgKind::Measured(hook, _) => hook.attach_type(),
            ProgKind::Foreign(ForeignHook::Sysctl) => AttachType::Sysctl,
            ProgKind::Foreign(ForeignHook::Getsockopt) => AttachType::Getsockopt,
            ProgKind::Foreign(ForeignHook::Device) => AttachType::Device,
        }
    }
}

/// The cgroup attach types hookbench uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AttachType {
    /// `BPF_CGROUP_INET4_GETSOCKNAME` (a measured hook).
    Getsockname4,
    /// `BPF_CGROUP_INET_SOCK_CREATE` (a measured hook).
    SockCreate,
    /// `BPF_CGROUP_SYSCTL`.
    Sysctl,
    /// `BPF_CGROUP_GETSOCKOPT`.
    Getsockopt,
    /// `BPF_CGROUP_DEVICE`.
    Device,
    /// `BPF_LSM_CGROUP`: the `lsm_cgroup` programs of [`lsm::LsmProgram`].
    ///
    /// One effective array per cgroup and LSM hook.
    LsmCgroup,
}

impl AttachType {
    /// Every attach type used.
    pub const ALL: [AttachType; 6] = [
        AttachType::Getsockname4,
        AttachType::SockCreate,
        AttachType::Sysctl,
        AttachType::Getsockopt,
        AttachType::Device,
        AttachType::LsmCgroup,
    ];

    /// The UAPI `enum bpf_attach_type` value.
    pub fn raw(self) -> libbpf_sys::bpf_attach_type {
        match self {
            AttachType::Getsockname4 => libbpf_sys::BPF_CGROUP_INET4_GETSOCKNAME,
            AttachType::SockCreate => libbpf_sys::BPF_CGROUP_INET_SOCK_CREATE,
            AttachType::Sysctl => libbpf_sys::BPF_CGROUP_SYSCTL,
            AttachType::Getsockopt => libbpf_sys::BPF_CGROUP_GETSOCKOPT,
            AttachType::Device => libbpf_sys::BPF_CGROUP_DEVICE,
            AttachType::LsmCgroup => libbpf_sys::BPF_LSM_CGROUP,
        }
    }

    /// The UAPI name, e.g. `"BPF_CGROUP_INET_SOCK_CREATE"`.
    pub fn name(self) -> &'static str {
        match self {
            AttachType::Getsockname4 => "BPF_CGROUP_INET4_GETSOCKNAME",
            AttachType::SockCreate => "BPF_CGROUP_INET_SOCK_CREATE",
            AttachType::Sysctl => "BPF_CGROUP_SYSCTL",
            AttachType::Getsockopt => "BPF_CGROUP_GETSOCKOPT",
            AttachType::Device => "BPF_CGROUP_DEVICE",
            AttachType::LsmCgroup => "BPF_LSM_CGROUP",
        }
    }
}

impl std::fmt::Display for AttachType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Errors of loading, attaching and querying programs; each names the program or attach type.
///
/// And the errno.
#[derive(Debug, thiserror::Error)]
pub enum BpfError {
    /// libbpf could not open (parse) the embedded object.
    #[error("opening the BPF object for {prog} failed: {source}")]
    Open {
        /// The program being instantiated.
        prog: &'static str,
        /// libbpf's error.
        #[source]
        source: libbpf_rs::Error,
    },
    /// `BPF_MAP_CREATE` or `BPF_PROG_LOAD` failed.
    ///
    /// `EPERM`: not root / no `CAP_BPF` + `CAP_NET_ADMIN`; `EINVAL`: the kernel lacks the program
    /// type.
    #[error("loading BPF program {prog} failed: {source} (run as root; the kernel needs CONFIG_CGROUP_BPF)")]
    Load {
        /// The program.
        prog: &'static str,
        /// libbpf's error.
        #[source]
        source: libbpf_rs::Error,
    },
    /// `BPF_PROG_LOAD` of a BPF LSM program failed.
    ///
    /// `EPERM`: not root, or the kernel refuses BPF trampolines; `EINVAL`/`ESRCH`: no
    /// `CONFIG_BPF_LSM`, no kernel BTF, or for `lsm_cgroup` a kernel older than 6.0.
    /// [`lsm::is_permission_denied`] tells `EPERM`.
    #[error(
        "loading BPF LSM program {prog} failed: {source} (run as root; the kernel needs CONFIG_BPF_LSM, BTF and \
         BPF trampolines, and 6.0 or later for lsm_cgroup)"
    )]
    LoadLsm {
        /// The program.
        prog: &'static str,
        /// libbpf's error.
        #[source]
        source: libbpf_rs::Error,
    },
    /// The trampoline of the LSM hook already holds [`lsm::BPF_MAX_TRAMP_LINKS`] programs.
    ///
    /// `E2BIG` from `bpf_trampoline_link_prog`.
    #[error(
        "attaching {prog} failed: a BPF trampoline holds at most BPF_MAX_TRAMP_LINKS = {} programs per kernel \
         function (kernel/bpf/trampoline.c: bpf_trampoline_link_prog returned E2BIG); attach fewer global lsm programs",
        lsm::BPF_MAX_TRAMP_LINKS
    )]
    MaxTrampolineLinks {
        /// The program.
        prog: &'static str,
    },
    /// Attaching a global BPF LSM program (`BPF_LSM_MAC`) to its hook failed for another reason.
    #[error("attaching {prog} (BPF_LSM_MAC, global) failed: {errno}")]
    AttachLsm {
        /// The program.
        prog: &'static str,
        /// The errno: `EPERM`, trampolines refused; `EBUSY`/`ENOTSUPP`, the trampoline is fixed.
        errno: std::io::Error,
    },
    /// The loaded object has no program or map of that name (a build bug).
    #[error("the BPF object has no {what} named {name}")]
    Missing {
        /// "program" or "map".
        what: &'static str,
        /// The name.
        name: &'static str,
    },
    /// A map operation failed.
    #[error("{op} on map {map} of {prog} failed: {source}")]
    Map {
        /// "lookup" or "update".
        op: &'static str,
        /// The map.
        map: &'static str,
        /// The program owning it.
        prog: &'static str,
        /// libbpf's error.
        #[source]
        source: libbpf_rs::Error,
    },
    /// The cgroup already has [`BPF_CGROUP_MAX_PROGS`] programs of this attach type (`E2BIG`).
    #[error(
        "{attach_type}: a cgroup holds at most BPF_CGROUP_MAX_PROGS = {BPF_CGROUP_MAX_PROGS} programs per attach \
         type (kernel/bpf/cgroup.c: __cgroup_bpf_attach returned E2BIG); spread programs over more levels"
    )]
    MaxProgs {
        /// The attach type.
        attach_type: AttachType,
    },
    /// `BPF_LINK_CREATE` on a cgroup failed for another reason.
    #[error("attaching {prog} ({attach_type}) to a cgroup failed: {errno}")]
    Attach {
        /// The program.
        prog: &'static str,
        /// The attach type.
        attach_type: AttachType,
        /// The errno (`EPERM`: not root; `EBADF`: not a cgroup directory fd).
        errno: std::io::Error,
    },
    /// `BPF_PROG_QUERY` failed.
    #[error("BPF_PROG_QUERY ({attach_type}) failed: {errno}")]
    Query {
        /// The attach type.
        attach_type: AttachType,
        /// The errno.
        errno: std::io::Error,
    },
    /// `BPF_ENABLE_STATS` (`BPF_STATS_RUN_TIME`) was refused (`EPERM`: needs `CAP_SYS_ADMIN`;
    /// `EINVAL`: a kernel older than 5.8).
    #[error(
        "BPF_ENABLE_STATS (BPF_STATS_RUN_TIME) failed: {errno} (needs CAP_SYS_ADMIN and Linux 5.8 or later; \
         `sysctl kernel.bpf_stats_enabled=1` turns the statistics on for everyone instead)"
    )]
    Stats {
        /// The errno.
        errno: std::io::Error,
    },
    /// `BPF_OBJ_GET_INFO_BY_FD` on a program failed.
    #[error("reading bpf_prog_info of {prog} failed: {errno}")]
    Info {
        /// The program.
        prog: &'static str,
        /// The errno.
        errno: std::io::Error,
    },
}

/// One loaded program: its own libbpf object with only that program loaded, and its own maps.
///
/// Dropping it closes the program fd; the kernel frees the program once no link holds it.
#[derive(Debug)]
pub struct ProgramInstance {
    loaded: LoadedProgram,
    kind: ProgKind,
    id: u32,
}

impl ProgramInstance {
    /// Loads `kind`'s program alone from [`OBJECT`], with its own maps ([`LoadedProgram::load`]).
    ///
    /// Every other program is set not to autoload; the load is two `BPF_MAP_CREATE` and one
    /// `BPF_PROG_LOAD`, then `hb_lookup` gets keys `0..HB_LOOKUP_ENTRIES` (value = key). Errors:
    /// [`BpfError::Open`], [`BpfError::Load`], [`BpfError::Missing`], [`BpfError::Map`].
    pub fn load(kind: ProgKind) -> Result<ProgramInstance, BpfError> {
        let loaded = LoadedProgram::load(OBJECT, kind.prog_name(), |_| true).map_err(|e| e.into_bpf(false))?;
        let id = loaded.id().unwrap_or(0);
        Ok(ProgramInstance { loaded, kind, id })
    }

    /// The program loaded.
    pub fn kind(&self) -> ProgKind {
        self.kind
    }

    /// The kernel's program id (`bpf_prog_info.id`; 0 if it could not be read).
    pub fn id(&self) -> u32 {
        self.id
    }

    /// The program fd, borrowed.
    ///
    /// `None` only if libbpf lost it, which cannot happen after a successful load.
    pub fn fd(&self) -> Option<BorrowedFd<'_>> {
        self.loaded.fd()
    }

    /// Attaches the program to the cgroup whose directory is open as `cgroup`, with a bpf_link.
    ///
    /// `bpf_program__attach_cgroup` -> `BPF_LINK_CREATE`, ALLOW_MULTI semantics. Dropping the
    /// returned link detaches it. Errors: [`BpfError::MaxProgs`] on `E2BIG`, else
    /// [`BpfError::Attach`] with the errno.
    pub fn attach_cgroup(&self, cgroup: BorrowedFd<'_>) -> Result<Link, BpfError> {
        let attach_type = self.kind.attach_type();
        // SAFETY: the program pointer is valid while `self.loaded` lives.
        let ptr = unsafe { libbpf_sys::bpf_program__attach_cgroup(self.loaded.raw_program(), cgroup.as_raw_fd()) };
        link_or_errno(ptr).map_err(|errno| {
            if errno == libc::E2BIG {
                BpfError::MaxProgs { attach_type }
            } else {
                BpfError::Attach {
                    prog: self.kind.prog_name(),
                    attach_type,
                    errno: std::io::Error::from_raw_os_error(errno),
                }
            }
        })
    }

    /// The program's counter, `hb_counter[HB_COUNTER_KEY]`.
    ///
    /// Its runs for the counter body and foreign programs, 0 for the others. Errors:
    /// [`BpfError::Map`], [`BpfError::Missing`].
    pub fn counter(&self) -> Result<u64, BpfError> {
        self.loaded.counter().map_err(|e| e.into_bpf(false))
    }

    /// The program's `bpf_prog_info.run_cnt`: how often it ran while run statistics were on.
    ///
    /// Run statistics are on under [`RunStats`] or the `kernel.bpf_stats_enabled` sysctl; the count
    /// is kept whatever the body. Errors: [`BpfError::Missing`], [`BpfError::Info`].
    pub fn run_count(&self) -> Result<u64, BpfError> {
        let name = self.kind.prog_name();
        let fd = self.loaded.fd().ok_or(BpfError::Missing { what: "program", name })?;
        prog_info(fd)
            .map(|i| i.run_cnt)
            .map_err(|errno| BpfError::Info { prog: name, errno })
    }
}

/// Attaches `prog` to the cgroup open as `cgroup` with one raw `BPF_LINK_CREATE`.
///
/// `bpf_link_create`, for `attach_type`, with no libbpf link object around it: what an attach
/// costs the kernel, and nothing of hookbench's. `name` names the program in messages. Returns
/// the link's fd; closing it detaches the link (the last reference of an unpinned link:
/// `bpf_link_release` -> `cgroup_bpf_release_link`). Errors: [`BpfError::MaxProgs`] on `E2BIG`,
/// else [`BpfError::Attach`] with the errno.
pub fn link_create_cgroup(
    prog: BorrowedFd<'_>,
    cgroup: BorrowedFd<'_>,
    attach_type: AttachType,
    name: &'static str,
) -> Result<OwnedFd, BpfError> {
    // SAFETY: plain syscall wrapper; NULL options are allowed; a returned fd is owned below.
    let fd = unsafe {
        libbpf_sys::bpf_link_create(
            prog.as_raw_fd(),
            cgroup.as_raw_fd(),
            attach_type.raw(),
            std::ptr::null(),
        )
    };
    if fd < 0 {
        let errno = -fd;
        return Err(if errno == libc::E2BIG {
            BpfError::MaxProgs { attach_type }
        } else {
            BpfError::Attach {
                prog: name,
                attach_type,
                errno: std::io::Error::from_raw_os_error(errno),
            }
        });
    }
    // SAFETY: `fd` is a fresh fd owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// `BPF_LINK_DETACH` of the link open as `link` (`bpf_link_detach`); its fd stays open.
///
/// A cgroup link leaves its cgroup (`cgroup_bpf_detach_link`). Errors: the errno.
pub fn link_detach(link: BorrowedFd<'_>) -> Result<(), std::io::Error> {
    // SAFETY: plain syscall wrapper on a borrowed fd.
    let rc = unsafe { libbpf_sys::bpf_link_detach(link.as_raw_fd()) };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::from_raw_os_error(-rc))
    }
}

/// Holds the kernel's BPF run statistics on while it lives.
///
/// It is the fd `BPF_ENABLE_STATS` returns for `BPF_STATS_RUN_TIME` (kernel/bpf/syscall.c
/// `bpf_enable_runtime_stats`, Linux 5.8+: `static_key_slow_inc(&bpf_stats_enabled_key)`, undone
/// when the fd is closed). While the key is on, every program run reads the clock twice and
/// updates its per-CPU `run_cnt` and `run_time_ns` (`__bpf_prog_run`), so hold it only for
/// untimed passes.
#[derive(Debug)]
pub struct RunStats {
    _fd: OwnedFd,
}

impl RunStats {
    /// Turns run statistics on until the returned value is dropped. Errors:
    /// [`BpfError::Stats`] (`EPERM` without `CAP_SYS_ADMIN`, `EINVAL` before Linux 5.8).
    pub fn enable() -> Result<RunStats, BpfError> {
        // SAFETY: plain syscall wrapper; a returned fd is owned by the RunStats below.
        let fd = unsafe { libbpf_sys::bpf_enable_stats(libbpf_sys::BPF_STATS_RUN_TIME) };
        if fd < 0 {
            return Err(BpfError::Stats {
                errno: std::io::Error::from_raw_os_error(-fd),
            });
        }
        // SAFETY: `fd` is a fresh fd owned by nobody else.
        Ok(RunStats {
            _fd: unsafe { OwnedFd::from_raw_fd(fd) },
        })
    }
}

/// Whether the `kernel.bpf_stats_enabled` sysctl has run statistics on for every program.
///
/// Read from `/proc/sys/kernel/bpf_stats_enabled`; `None` when it cannot be read. When on, every
/// program run pays for them, timed ones too.
pub fn stats_sysctl_enabled() -> Option<bool> {
    std::fs::read_to_string("/proc/sys/kernel/bpf_stats_enabled")
        .ok()
        .map(|v| v.trim() != "0")
}

/// The [`Link`] of a libbpf `bpf_program__attach_*` result, or its errno.
///
/// libbpf 1.x's error convention: a link pointer, or NULL with errno set; `EINVAL` when the
/// errno is unusable.
fn link_or_errno(ptr: *mut libbpf_sys::bpf_link) -> Result<Link, i32> {
    // SAFETY: libbpf_get_error only inspects the pointer value and errno.
    let err = unsafe { libbpf_sys::libbpf_get_error(ptr as *const c_void) };
    match NonNull::new(ptr) {
        Some(ptr) if err == 0 => {
            // SAFETY: a non-NULL link from libbpf, owned by the Link from now on.
            Ok(unsafe { Link::from_ptr(ptr) })
        }
        _ => Err(i32::try_from(-err).unwrap_or(libc::EINVAL)),
    }
}

/// `bpf_prog_info` of the program open as `fd` (`BPF_OBJ_GET_INFO_BY_FD`), or the errno.
pub(crate) fn prog_info(fd: BorrowedFd<'_>) -> Result<libbpf_sys::bpf_prog_info, std::io::Error> {
    // SAFETY: bpf_prog_info is a plain C struct; zero is valid and the kernel fills at most `len`.
    let mut info: libbpf_sys::bpf_prog_info = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libbpf_sys::bpf_prog_info>() as u32;
    // SAFETY: `info` and `len` outlive the call.
    let rc = unsafe { libbpf_sys::bpf_prog_get_info_by_fd(fd.as_raw_fd(), &mut info, &mut len) };
    if rc == 0 {
        Ok(info)
    } else {
        Err(std::io::Error::from_raw_os_error(-rc))
    }
}

/// `bpf_prog_info.id` of the program open as `fd`.
fn prog_id(fd: BorrowedFd<'_>) -> Option<u32> {
    prog_info(fd).ok().map(|i| i.id)
}

/// Ids of the programs attached to the cgroup open as `cgroup` for `attach_type`
/// (`BPF_PROG_QUERY`): with `effective`, the cgroup's effective array (`BPF_F_QUERY_EFFECTIVE`:
/// its own programs and its ancestors' under ALLOW_MULTI, in run order), else only its own
/// attachments. Errors: [`BpfError::Query`].
pub fn query_cgroup(cgroup: BorrowedFd<'_>, attach_type: AttachType, effective: bool) -> Result<Vec<u32>, BpfError> {
    let mut ids = vec![0u32; 4 * BPF_CGROUP_MAX_PROGS * 64];
    // SAFETY: bpf_prog_query_opts is a plain C struct; zero is a valid initial state.
    let mut opts: libbpf_sys::bpf_prog_query_opts = unsafe { std::mem::zeroed() };
    opts.sz = std::mem::size_of::<libbpf_sys::bpf_prog_query_opts>() as _;
    opts.query_flags = if effective {
        libbpf_sys::BPF_F_QUERY_EFFECTIVE
    } else {
        0
    };
    opts.prog_ids = ids.as_mut_ptr();
    opts.__bindgen_anon_1.count = ids.len() as u32;
    // SAFETY: `opts` points at `ids`, which outlives the call; the kernel writes at most `count`.
    let rc = unsafe { libbpf_sys::bpf_prog_query_opts(cgroup.as_raw_fd(), attach_type.raw(), &mut opts) };
    if rc != 0 {
        return Err(BpfError::Query {
            attach_type,
            errno: std::io::Error::from_raw_os_error(-rc),
        });
    }
    // SAFETY: `count` (a u32 in a union with the same-sized `prog_cnt`) was initialized above.
    let count = unsafe { opts.__bindgen_anon_1.count };
    ids.truncate(count as usize);
    Ok(ids)
}

/// Whether the kernel still has a program with id `id` (`BPF_PROG_GET_FD_BY_ID`).
///
/// `false` on `ENOENT`, i.e. it was freed: no fd, link or attachment holds it any more.
pub fn prog_exists(id: u32) -> bool {
    // SAFETY: plain syscall wrapper; a returned fd is closed at once below.
    let fd = unsafe { libbpf_sys::bpf_prog_get_fd_by_id(id) };
    if fd >= 0 {
        // SAFETY: `fd` is a fresh fd owned by nobody else.
        drop(unsafe { OwnedFd::from_raw_fd(fd) });
        true
    } else {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The value of `#define NAME VALUE` in a header's text; panics when it is not there.
    pub(crate) fn header_define(header: &str, name: &str) -> u64 {
        header
            .lines()
            .find_map(|l| {
                let mut it = l.split_whitespace();
                (it.next() == Some("#define") && it.next() == Some(name)).then(|| it.next())?
            })
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("{name} is not defined in the header"))
    }

    #[test]
    fn abi_constants_match_the_header() {
        for (name, v) in [
            ("HB_BODY_NULL", HB_BODY_NULL),
            ("HB_BODY_COUNTER", HB_BODY_COUNTER),
            ("HB_BODY_MAP_LOOKUP", HB_BODY_MAP_LOOKUP),
            ("HB_COUNTER_ENTRIES", HB_COUNTER_ENTRIES),
            ("HB_COUNTER_KEY", HB_COUNTER_KEY),
            ("HB_LOOKUP_ENTRIES", HB_LOOKUP_ENTRIES),
            ("HB_LOOKUP_KEY", HB_LOOKUP_KEY),
            ("HB_VERDICT_ALLOW", HB_VERDICT_ALLOW),
        ] {
            assert_eq!(header_define(HEADER, name), u64::from(v), "{name}");
        }
    }

    #[test]
    fn object_has_every_program_and_map() {
        let names = object_names(OBJECT).expect("open object");
        for b in SockBody::ALL {
            for hook in MeasuredHook::ALL {
                let (name, section) = (hook.prog_name(b), hook.section());
                assert!(
                    names.programs.iter().any(|p| p.0 == name && p.1 == section),
                    "{names:?}"
                );
            }
        }
        for h in ForeignHook::ALL {
            assert!(names.has_program(h.prog_name()), "{names:?}");
        }
        for m in ["hb_counter", "hb_lookup"] {
            assert!(names.maps.iter().any(|n| n == m), "{m}: {names:?}");
        }
    }

    #[test]
    fn cgroup_bpf_instances_load_when_root() {
        if !hookbench_sys::testing::root_or_skip_bpf("cgroup_bpf_instances_load_when_root") {
            return;
        }
        let mut ids = Vec::new();
        let measured = MeasuredHook::ALL
            .into_iter()
            .flat_map(|h| SockBody::ALL.map(move |b| ProgKind::Measured(h, b)));
        for kind in measured.chain(ForeignHook::ALL.map(ProgKind::Foreign)) {
            let p = ProgramInstance::load(kind).expect("load");
            assert!(p.id() > 0 && prog_exists(p.id()), "{p:?}");
            assert_eq!(p.counter().expect("counter"), 0);
            ids.push(p.id());
        }
        // Run statistics can be turned on (root) and a program that never ran counts 0 runs.
        let p = ProgramInstance::load(ProgKind::Measured(MeasuredHook::Getsockname4, SockBody::Null)).expect("load");
        let stats = RunStats::enable().expect("BPF_ENABLE_STATS as root");
        assert_eq!(p.run_count().expect("run_cnt"), 0);
        drop(stats);
        let mut sorted = ids.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), ids.len(), "distinct programs: {ids:?}");
    }
}
