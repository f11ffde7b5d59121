//! cgroup-bpf on the running kernel: the `cgroup-effective` dispatch model as it shipped.
//!
//! [`CgroupBpfTree::build`] creates a chain of `depth` cgroups inside a [`RunTree`] and attaches
//! `programs` distinct programs on the measured hook ([`MeasuredHook`]: `cgroup/getsockname4`,
//! `BPF_CGROUP_INET4_GETSOCKNAME`, or `cgroup/sock_create`, `BPF_CGROUP_INET_SOCK_CREATE`) with
//! `BPF_F_ALLOW_MULTI` semantics, program `i` at level `i % depth` (level 0 = the top of the
//! chain, `depth - 1` = the leaf), plus `foreign` programs on other attach types
//! ([`ForeignHook::ALL`] round-robin, foreign program `j` at level `j % depth`). Every
//! attachment is a bpf_link (`libbpf_rs::Link`): detached when dropped, and by the kernel when
//! this process dies, so a killed run leaves nothing attached.
//!
//! Kernel side (`kernel/bpf/cgroup.c`): each attach goes through `__cgroup_bpf_attach`, which
//! refuses a 65th program per cgroup and attach type (`BPF_CGROUP_MAX_PROGS`, `-E2BIG`) and then
//! calls `update_effective_progs`, which recomputes the effective array
//! (`cgrp->bpf.effective[atype]`: the cgroup's own programs after its ancestors', flat and
//! NULL-terminated) of the cgroup **and every descendant** (`css_for_each_descendant_pre`). A
//! `getsockname()` on an AF_INET socket runs `BPF_CGROUP_RUN_SA_PROG(...,
//! CGROUP_INET4_GETSOCKNAME)` from `inet_getname()`, and a `socket(AF_INET, ...)` runs
//! `BPF_CGROUP_RUN_PROG_INET_SOCK` from `inet_create()`; both walk the socket's cgroup
//! (`sk->sk_cgrp_data`, the cgroup of the task that created it) `-> bpf.effective[atype]` and run
//! every program of the leaf's array (all `programs` of the chain, none of the foreign).
//!
//! The foreign attach types (`cgroup/sysctl`, `cgroup/getsockopt`, `cgroup/dev`) fire neither on
//! `getsockname()` nor on `socket()`, nor anywhere else in a measuring worker. `cgroup/sock_create`
//! is not among them for a getsockname measurement: the worker's one socket, created before
//! timing, would run it once per worker (not per timed call, but it would run, and the check
//! that foreign programs never run would fail for a reason that is not a dispatch error).
//!
//! Measurements never move the calling process: the socket worker (`crate::sock_worker`,
//! `hookbench worker sock '<json>'`) moves *itself* into the requested cgroup and times the
//! trigger there. Update cost: [`wide_subtree`] builds a cgroup with K child cgroups, and
//! [`AttachBench`] attaches ([`AttachBench::attach_one_at`]) and detaches
//! ([`AttachBench::detach_last`]) one program there, for any [`CgroupProgram`] (cgroup-bpf's and
//! the BPF LSM's `lsm_cgroup` programs); the attach worker (`crate::attach_worker`) times it.
//!
//! The same socket worker measures BPF LSM programs (`crate::lsm`): `lsm_cgroup` programs are
//! attached along the path by the caller like cgroup-bpf ones, and global `lsm` programs are
//! attached by the worker itself for as long as it measures.

use std::fs::File;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Component, Path, PathBuf};

use hookbench_bpf::libbpf_rs::Link;
use hookbench_bpf::lsm::{LsmAttach, LsmProgram};
use hookbench_bpf::{
    link_create_cgroup, link_detach, query_cgroup, AttachType, BpfError, ForeignHook, MeasuredHook, ProgKind,
    ProgramInstance, SockBody, BPF_CGROUP_MAX_PROGS,
};
use hookbench_model::Body;

use crate::cgroupfs::{Cgroup2, CgroupError, RunTree, Shape, RUN_PREFIX};

/// Largest cgroup chain [`CgroupBpfTree::build`] accepts.
pub const MAX_DEPTH: u32 = 256;

/// Largest K of [`wide_subtree`].
pub const MAX_WIDE: u32 = 100_000;

/// Errors of building trees, attaching, and running socket workers.
#[derive(Debug, thiserror::Error)]
pub enum CgroupBpfError {
    /// A cgroup operation failed.
    #[error(transparent)]
    Cgroup(#[from] CgroupError),
    /// Loading, attaching or querying a program failed at `cgroup`.
    #[error("{cgroup}: {source}")]
    Bpf {
        /// The cgroup involved (the run root when none is).
        cgroup: PathBuf,
        /// The error.
        #[source]
        source: BpfError,
    },
    /// The layout would put more than `BPF_CGROUP_MAX_PROGS` programs of one type on one cgroup.
    #[error(
        "{asked} {attach_type} programs on one cgroup (level {level} of {depth}) exceed the kernel's \
         BPF_CGROUP_MAX_PROGS = {BPF_CGROUP_MAX_PROGS} per cgroup and attach type: use depth >= {min_depth}"
    )]
    MaxProgs {
        /// The attach type.
        attach_type: AttachType,
        /// The level (0 = top).
        level: u32,
        /// The chain's depth.
        depth: u32,
        /// Programs that level would hold.
        asked: usize,
        /// Smallest depth that fits.
        min_depth: usize,
    },
    /// A parameter is out of range.
    #[error("{what} = {value} is invalid: {why}")]
    Invalid {
        /// The parameter.
        what: &'static str,
        /// Its value.
        value: u64,
        /// The accepted range.
        why: &'static str,
    },
    /// A cgroup directory could not be opened, or a cgroup file written.
    #[error("{op} {path} failed: {source}")]
    Io {
        /// `open`, `mkdir` or `write`.
        op: &'static str,
        /// The path.
        path: PathBuf,
        /// The error (with its errno).
        #[source]
        source: std::io::Error,
    },
    /// The socket worker was asked to join a cgroup outside any hookbench run directory.
    #[error(
        "{path} is not inside a {RUN_PREFIX}* run directory of the cgroup2 mount {mount}: the socket worker only \
         joins hookbench's own cgroups"
    )]
    OutsideRun {
        /// The path refused.
        path: PathBuf,
        /// The cgroup2 mount.
        mount: PathBuf,
    },
    /// Timing the trigger failed (a `socket()` that a program denied, pinning, the sampler).
    #[error(transparent)]
    Trigger(crate::trigger::TriggerError),
    /// Loading, attaching or marking global BPF LSM programs failed (`crate::lsm::GlobalLsm`).
    #[error("global BPF LSM programs: {0}")]
    Global(#[source] BpfError),
    /// The socket worker's thread has no pidfd, so the global programs cannot tell it is theirs.
    ///
    /// They are told the task they apply to by `crate::lsm::GlobalLsm::mark_current`, which needs a
    /// pidfd naming the thread.
    #[error(
        "cannot mark thread {tid} for the global BPF LSM programs: pidfd_open{} failed: {source} (task storage \
         belongs to a thread, and a pidfd names a thread other than the main one only from Linux 6.9: measure on \
         the process's main thread, as `hookbench worker sock` does)",
        if *main { "" } else { "(PIDFD_THREAD)" }
    )]
    MarkThread {
        /// The thread.
        tid: libc::pid_t,
        /// Whether it is the process's main thread.
        main: bool,
        /// The errno.
        #[source]
        source: std::io::Error,
    },
}

pub(crate) fn bpf_err(cgroup: &Path) -> impl FnOnce(BpfError) -> CgroupBpfError + '_ {
    move |source| CgroupBpfError::Bpf {
        cgroup: cgroup.to_path_buf(),
        source,
    }
}

pub(crate) fn open_dir(path: &Path) -> Result<File, CgroupBpfError> {
    File::open(path).map_err(|source| CgroupBpfError::Io {
        op: "open",
        path: path.to_path_buf(),
        source,
    })
}

/// The BPF program body for a model body.
pub fn sock_body(body: Body) -> SockBody {
    match body {
        Body::Null => SockBody::Null,
        Body::Counter => SockBody::Counter,
        Body::MapLookup => SockBody::MapLookup,
    }
}

/// A loaded program that attaches to a cgroup with a bpf_link (`ALLOW_MULTI` semantics).
///
/// These are cgroup-bpf's [`ProgramInstance`] (on a [`MeasuredHook`]) and the BPF LSM's
/// `lsm_cgroup` [`LsmProgram`]. [`CgroupBpfTree`], [`crate::lsm::LsmCgroupTree`] and
/// [`AttachBench`] are built over it.
pub trait CgroupProgram: std::fmt::Debug + Sized {
    /// Which hook a program of this type is loaded for.
    ///
    /// [`MeasuredHook`] for cgroup-bpf, `()` for `lsm_cgroup` (one hook, `socket_create`).
    type Hook: Copy + std::fmt::Debug;
    /// Loads one measured program of `body` on `hook` (its own object, maps and kernel program).
    fn load_for(hook: Self::Hook, body: Body) -> Result<Self, BpfError>;
    /// Attaches the program to the cgroup open as `cgroup`; dropping the link detaches it.
    fn attach_cgroup(&self, cgroup: BorrowedFd<'_>) -> Result<Link, BpfError>;
    /// The kernel's program id (0 if it could not be read).
    fn id(&self) -> u32;
    /// The program's fd, `None` when the object has no such program.
    fn fd(&self) -> Option<BorrowedFd<'_>>;
    /// The cgroup attach type the program is loaded for.
    fn attach_type(&self) -> AttachType;
    /// The program's name, for messages.
    fn prog_name(&self) -> &'static str;

    /// The program fd and its cgroup attach type, for a raw `BPF_LINK_CREATE`.
    ///
    /// See [`hookbench_bpf::link_create_cgroup`]. Errors: [`BpfError::Missing`] without an fd.
    fn raw_attach(&self) -> Result<(BorrowedFd<'_>, AttachType), BpfError> {
        let fd = self.fd().ok_or(BpfError::Missing {
            what: "program",
            name: self.prog_name(),
        })?;
        Ok((fd, self.attach_type()))
    }
}

/// The [`CgroupProgram`] methods that the program type `$t` has as inherent methods.
macro_rules! inherent_program_methods {
    ($t:ty) => {
        fn attach_cgroup(&self, cgroup: BorrowedFd<'_>) -> Result<Link, BpfError> {
            <$t>::attach_cgroup(self, cgroup)
        }
        fn id(&self) -> u32 {
            <$t>::id(self)
        }
        fn fd(&self) -> Option<BorrowedFd<'_>> {
            <$t>::fd(self)
        }
    };
}

impl CgroupProgram for ProgramInstance {
    type Hook = MeasuredHook;
    fn load_for(hook: MeasuredHook, body: Body) -> Result<Self, BpfError> {
        ProgramInstance::load(ProgKind::Measured(hook, sock_body(body)))
    }
    inherent_program_methods!(ProgramInstance);
    fn attach_type(&self) -> AttachType {
        self.kind().attach_type()
    }
    fn prog_name(&self) -> &'static str {
        self.kind().prog_name()
    }
}

impl CgroupProgram for LsmProgram {
    type Hook = ();
    /// An `lsm_cgroup/socket_create` program ([`LsmAttach::Cgroup`]).
    fn load_for((): (), body: Body) -> Result<Self, BpfError> {
        LsmProgram::load(LsmAttach::Cgroup, sock_body(body))
    }
    inherent_program_methods!(LsmProgram);
    fn attach_type(&self) -> AttachType {
        AttachType::LsmCgroup
    }
    fn prog_name(&self) -> &'static str {
        self.name()
    }
}

/// One attachment: the link (detached on drop) and its level.
#[derive(Debug)]
struct Attachment {
    /// Held for its Drop, which detaches it.
    _link: Link,
    level: u32,
}

/// Refuses a chain `depth` of 0 or over [`MAX_DEPTH`].
pub(crate) fn check_depth(depth: u32) -> Result<(), CgroupBpfError> {
    if depth == 0 || depth > MAX_DEPTH {
        return Err(CgroupBpfError::Invalid {
            what: "depth",
            value: u64::from(depth),
            why: "use 1..=256",
        });
    }
    Ok(())
}

/// A chain of cgroups with measured programs attached along it, program `i` at level `i % depth`.
///
/// What [`CgroupBpfTree`] and [`crate::lsm::LsmCgroupTree`] share. Dropping it detaches every
/// link (links first, then the programs are closed); the cgroups belong to the [`RunTree`] and go
/// with its tear-down.
#[derive(Debug)]
pub(crate) struct CgroupChain<P> {
    // Field order is drop order: links before programs.
    links: Vec<Attachment>,
    programs: Vec<P>,
    path: Vec<PathBuf>,
}

impl<P: CgroupProgram> CgroupChain<P> {
    /// Builds `depth` nested cgroups in `run` (`Shape::Deep`, parents first), loads `programs`
    /// distinct programs of `body` on `hook` ([`CgroupProgram::load_for`]) and attaches program `i`
    /// at level `i % depth`. Returns the chain and its levels' open directories (for more
    /// attachments, [`attach_spread`]). Check the depth ([`check_depth`]) and the caps first.
    /// Errors: [`CgroupBpfError::Cgroup`], [`CgroupBpfError::Io`], [`CgroupBpfError::Bpf`] naming
    /// the cgroup. On error, what was attached is detached again.
    pub(crate) fn build(
        run: &mut RunTree,
        hook: P::Hook,
        depth: u32,
        programs: u32,
        body: Body,
    ) -> Result<(CgroupChain<P>, Vec<File>), CgroupBpfError> {
        let path = run.build(Shape::Deep, depth)?;
        let dirs = path.iter().map(|p| open_dir(p)).collect::<Result<Vec<File>, _>>()?;
        let mut chain = CgroupChain {
            links: Vec::with_capacity(programs as usize),
            programs: Vec::with_capacity(programs as usize),
            path,
        };
        attach_spread(
            &chain.path,
            &dirs,
            programs,
            &mut chain.links,
            &mut chain.programs,
            |_| P::load_for(hook, body),
        )?;
        Ok((chain, dirs))
    }

    /// The deepest cgroup (where the measured task goes).
    pub(crate) fn leaf(&self) -> &Path {
        // `check_depth` refuses depth 0, so the chain is never empty.
        self.path.last().map(PathBuf::as_path).unwrap_or(Path::new(""))
    }

    /// The chain, top first.
    pub(crate) fn path(&self) -> &[PathBuf] {
        &self.path
    }

    /// The measured programs, in attach order.
    pub(crate) fn programs(&self) -> &[P] {
        &self.programs
    }

    /// Attachments (links) held at `level` (0 = top).
    pub(crate) fn links_at(&self, level: u32) -> usize {
        self.links.iter().filter(|a| a.level == level).count()
    }

    /// Kernel ids of the measured programs.
    pub(crate) fn program_ids(&self) -> impl Iterator<Item = u32> + '_ {
        self.programs.iter().map(P::id)
    }

    /// `BPF_PROG_QUERY` of `attach_type` at `level`: the programs in effect or attached there.
    ///
    /// With `effective`, the programs in the level's effective array; else those attached there
    /// itself.
    pub(crate) fn query_count(
        &self,
        level: u32,
        attach_type: AttachType,
        effective: bool,
    ) -> Result<usize, CgroupBpfError> {
        let cg = self.path.get(level as usize).ok_or(CgroupBpfError::Invalid {
            what: "level",
            value: u64::from(level),
            why: "use 0..depth",
        })?;
        let dir = open_dir(cg)?;
        query_cgroup(dir.as_fd(), attach_type, effective)
            .map(|ids| ids.len())
            .map_err(bpf_err(cg))
    }
}

/// Loads `count` programs into `out` and attaches program `i` at level `i % depth` of `path`.
///
/// Program `i` is `load(i)`; `path` is open as `dirs`; the links go onto `links`.
fn attach_spread<Q: CgroupProgram>(
    path: &[PathBuf],
    dirs: &[File],
    count: u32,
    links: &mut Vec<Attachment>,
    out: &mut Vec<Q>,
    mut load: impl FnMut(u32) -> Result<Q, BpfError>,
) -> Result<(), CgroupBpfError> {
    let depth = path.len() as u32;
    for i in 0..count {
        let level = i % depth;
        let cg = &path[level as usize];
        let prog = load(i).map_err(bpf_err(cg))?;
        let link = prog.attach_cgroup(dirs[level as usize].as_fd()).map_err(bpf_err(cg))?;
        links.push(Attachment { _link: link, level });
        out.push(prog);
    }
    Ok(())
}

/// A chain of cgroups with cgroup-bpf programs attached along it, measured and foreign.
///
/// Dropping it detaches every link (links first, then the programs are closed); the cgroups
/// belong to the [`RunTree`] and go with its tear-down.
#[derive(Debug)]
pub struct CgroupBpfTree {
    // Field order is drop order: the chain (with every link, foreign ones too) first.
    chain: CgroupChain<ProgramInstance>,
    foreign: Vec<ProgramInstance>,
    hook: MeasuredHook,
    body: SockBody,
}

impl CgroupBpfTree {
    /// Builds `depth` nested cgroups in `run` (`Shape::Deep`, parents first), loads `programs`
    /// distinct programs of `body` on `hook` ([`ProgramInstance::load`]: one object, two maps and
    /// one program each) and attaches program `i` at level `i % depth`, then loads `foreign`
    /// programs and attaches foreign program `j` (hook `ForeignHook::ALL[j % 3]`) at level
    /// `j % depth`. All attachments are bpf_links (ALLOW_MULTI semantics).
    ///
    /// Errors: [`CgroupBpfError::Invalid`] (`depth` 0 or over [`MAX_DEPTH`]);
    /// [`CgroupBpfError::MaxProgs`] when a level would hold more than 64 programs of one attach
    /// type (checked before anything is created); [`CgroupBpfError::Cgroup`];
    /// [`CgroupBpfError::Io`]; [`CgroupBpfError::Bpf`] naming the cgroup (a kernel `E2BIG`
    /// there is [`BpfError::MaxProgs`]). On error, what was attached is detached again.
    pub fn build(
        run: &mut RunTree,
        hook: MeasuredHook,
        depth: u32,
        programs: u32,
        foreign: u32,
        body: Body,
    ) -> Result<CgroupBpfTree, CgroupBpfError> {
        check_depth(depth)?;
        check_cap(hook.attach_type(), programs as usize, depth)?;
        for (h, hook) in ForeignHook::ALL.iter().enumerate() {
            // Foreign program j goes to hook j % 3 and level j % depth.
            let on_hook = (0..foreign as usize).filter(|j| j % ForeignHook::ALL.len() == h);
            let mut per_level = vec![0usize; depth as usize];
            for j in on_hook {
                per_level[j % depth as usize] += 1;
            }
            if let Some((level, &asked)) = per_level.iter().enumerate().find(|(_, &n)| n > BPF_CGROUP_MAX_PROGS) {
                return Err(CgroupBpfError::MaxProgs {
                    attach_type: ProgKind::Foreign(*hook).attach_type(),
                    level: level as u32,
                    depth,
                    asked,
                    min_depth: asked * depth as usize / BPF_CGROUP_MAX_PROGS + 1,
                });
            }
        }
        let (chain, dirs) = CgroupChain::build(run, hook, depth, programs, body)?;
        let mut tree = CgroupBpfTree {
            chain,
            foreign: Vec::with_capacity(foreign as usize),
            hook,
            body: sock_body(body),
        };
        attach_spread(
            &tree.chain.path,
            &dirs,
            foreign,
            &mut tree.chain.links,
            &mut tree.foreign,
            |j| ProgramInstance::load(ProgKind::Foreign(ForeignHook::ALL[j as usize % ForeignHook::ALL.len()])),
        )?;
        Ok(tree)
    }

    /// The deepest cgroup (where the measured task goes).
    pub fn leaf(&self) -> &Path {
        self.chain.leaf()
    }

    /// The chain, top first.
    pub fn path(&self) -> &[PathBuf] {
        self.chain.path()
    }

    /// The body of the measured programs.
    pub fn body(&self) -> SockBody {
        self.body
    }

    /// The hook the measured programs are attached to.
    pub fn hook(&self) -> MeasuredHook {
        self.hook
    }

    /// The measured programs, in attach order (program `i` at level `i % depth`).
    pub fn programs(&self) -> &[ProgramInstance] {
        self.chain.programs()
    }

    /// The foreign programs, in attach order.
    pub fn foreign(&self) -> &[ProgramInstance] {
        &self.foreign
    }

    /// Runs of the counter bodies so far, measured and foreign programs summed apart.
    ///
    /// The foreign sum must stay 0: they are on other attach types. Meaningful only with the
    /// counter body (other bodies count nothing).
    ///
    /// Errors: [`CgroupBpfError::Bpf`] when a program's count map cannot be read.
    pub fn counter_sums(&self) -> Result<(u64, u64), CgroupBpfError> {
        self.sums(ProgramInstance::counter)
    }

    /// Runs counted by the kernel's run statistics so far, measured and foreign summed apart.
    ///
    /// It reads `bpf_prog_info.run_cnt`, which only grows while statistics are on
    /// ([`hookbench_bpf::RunStats`]), whatever the body.
    ///
    /// Errors: [`CgroupBpfError::Bpf`] when a program's info cannot be read.
    pub fn run_count_sums(&self) -> Result<(u64, u64), CgroupBpfError> {
        self.sums(ProgramInstance::run_count)
    }

    /// `read` of every measured program summed, and of every foreign program summed.
    fn sums(&self, read: fn(&ProgramInstance) -> Result<u64, BpfError>) -> Result<(u64, u64), CgroupBpfError> {
        let sum = |ps: &[ProgramInstance]| -> Result<u64, CgroupBpfError> {
            ps.iter().map(|p| read(p).map_err(bpf_err(self.leaf()))).sum()
        };
        Ok((sum(self.programs())?, sum(self.foreign())?))
    }

    /// Attachments (links) held at `level` (0 = top), measured and foreign.
    pub fn links_at(&self, level: u32) -> usize {
        self.chain.links_at(level)
    }

    /// Kernel ids of every program (measured, then foreign).
    pub fn program_ids(&self) -> Vec<u32> {
        self.chain
            .program_ids()
            .chain(self.foreign.iter().map(ProgramInstance::id))
            .collect()
    }

    /// `BPF_PROG_QUERY` of `attach_type` at `level`: the programs in effect or attached there.
    ///
    /// With `effective`, the programs in the level's effective array; else those attached there
    /// itself.
    pub fn query_count(&self, level: u32, attach_type: AttachType, effective: bool) -> Result<usize, CgroupBpfError> {
        self.chain.query_count(level, attach_type, effective)
    }
}

/// Foreign attach types a [`CgroupBpfTree`] spreads its `foreign` programs over, round-robin.
///
/// Program `j` goes on `ForeignHook::ALL[j % 3]`, at level `j % depth`: with the depth, this
/// bounds `foreign` under [`BPF_CGROUP_MAX_PROGS`] per cgroup and attach type.
pub const FOREIGN_ATTACH_TYPES: u32 = ForeignHook::ALL.len() as u32;

/// Refuses `n` programs of `attach_type` over `depth` levels when one level would hold too many.
///
/// Program `i` goes at level `i % depth`; a level may hold at most [`BPF_CGROUP_MAX_PROGS`].
pub(crate) fn check_cap(attach_type: AttachType, n: usize, depth: u32) -> Result<(), CgroupBpfError> {
    // Program i at level i % depth: level 0 holds the most, ceil(n / depth).
    let asked = n.div_ceil(depth as usize);
    if asked > BPF_CGROUP_MAX_PROGS {
        return Err(CgroupBpfError::MaxProgs {
            attach_type,
            level: 0,
            depth,
            asked,
            min_depth: n.div_ceil(BPF_CGROUP_MAX_PROGS),
        });
    }
    Ok(())
}

/// A cgroup of the run with `descendants` child cgroups, for update-cost benches.
#[derive(Debug)]
pub struct WideSubtree {
    /// The attach point.
    pub top: PathBuf,
    /// Its children (all leaves).
    pub descendants: u32,
}

/// Creates one cgroup in `run` (`Shape::Deep`, 1) and `k` child cgroups under it (`mkdir(2)`
/// each, named `0..k`), so that an attach at `top` recomputes `k + 1` effective arrays. The
/// children live inside the run and go with its tear-down. Errors:
/// [`CgroupBpfError::Invalid`] for `k` over [`MAX_WIDE`], [`CgroupBpfError::Cgroup`],
/// [`CgroupBpfError::Io`] (mkdir; `EAGAIN`: `cgroup.max.descendants`).
pub fn wide_subtree(run: &mut RunTree, k: u32) -> Result<WideSubtree, CgroupBpfError> {
    if k > MAX_WIDE {
        return Err(CgroupBpfError::Invalid {
            what: "descendants",
            value: u64::from(k),
            why: "use 0..=100000",
        });
    }
    let top = run.build(Shape::Deep, 1)?.pop().ok_or(CgroupBpfError::Invalid {
        what: "cgroups built",
        value: 0,
        why: "RunTree::build(Deep, 1) returned no cgroup",
    })?;
    for i in 0..k {
        let p = top.join(i.to_string());
        std::fs::create_dir(&p).map_err(|source| CgroupBpfError::Io {
            op: "mkdir",
            path: p,
            source,
        })?;
    }
    Ok(WideSubtree { top, descendants: k })
}

/// Attaches and detaches one preloaded program at cgroups, for the update cost; times nothing.
///
/// The program is on a [`MeasuredHook`] ([`ProgramInstance`], the default) or an
/// `lsm_cgroup/socket_create` one ([`crate::lsm::LsmAttachBench`]), attached with raw
/// `BPF_LINK_CREATE` and `BPF_LINK_DETACH` (no libbpf link object: the syscalls the C attach
/// floor makes). The attach worker (`crate::attach_worker`) times [`AttachBench::attach_at`] and
/// [`AttachBench::detach_last`] with the measurement crate's sampler. Links it holds are link
/// fds, detached when it is dropped (closing an unpinned link's last fd detaches it).
#[derive(Debug)]
pub struct AttachBench<P: CgroupProgram = ProgramInstance> {
    // Field order is drop order: every link before the program.
    links: Vec<OwnedFd>,
    /// Links already detached (`BPF_LINK_DETACH`) whose fds are still open.
    ///
    /// Closing them is not part of a detach ([`AttachBench::release_detached`]).
    detached: Vec<OwnedFd>,
    keepers: Vec<OwnedFd>,
    program: P,
}

impl<P: CgroupProgram> AttachBench<P> {
    /// Loads one program of `body` on `hook` ([`CgroupProgram::load_for`]). Errors:
    /// [`CgroupBpfError::Bpf`].
    pub fn new(hook: P::Hook, body: Body) -> Result<AttachBench<P>, CgroupBpfError> {
        let program = P::load_for(hook, body).map_err(bpf_err(Path::new("")))?;
        Ok(AttachBench {
            links: Vec::with_capacity(BPF_CGROUP_MAX_PROGS),
            detached: Vec::with_capacity(BPF_CGROUP_MAX_PROGS),
            keepers: Vec::new(),
            program,
        })
    }

    /// One raw `BPF_LINK_CREATE` of the program at the cgroup open as `cgroup` (named `what`).
    fn link(&self, cgroup: BorrowedFd<'_>, what: &Path) -> Result<OwnedFd, CgroupBpfError> {
        let (prog, attach_type) = self.program.raw_attach().map_err(bpf_err(what))?;
        link_create_cgroup(prog, cgroup, attach_type, self.program.prog_name()).map_err(bpf_err(what))
    }

    /// Attaches the program once more at the cgroup open as `cgroup` (`what` names it in errors).
    ///
    /// One more link (ALLOW_MULTI; the same program may be linked several times), one
    /// `BPF_LINK_CREATE`, which runs `__cgroup_bpf_attach` and `update_effective_progs` over the
    /// cgroup and all its descendants. When no other program of the attach type is attached
    /// anywhere, it includes the kernel's one-off work of a first program (see
    /// [`AttachBench::keep_attached_at`]).
    ///
    /// Errors: [`CgroupBpfError::Bpf`] (`BpfError::MaxProgs` after 64 outstanding attaches).
    pub fn attach_at(&mut self, cgroup: BorrowedFd<'_>, what: &Path) -> Result<(), CgroupBpfError> {
        let link = self.link(cgroup, what)?;
        self.links.push(link);
        Ok(())
    }

    /// [`AttachBench::attach_at`] at the cgroup directory `cgroup`, opened first. Errors:
    /// [`CgroupBpfError::Io`], [`CgroupBpfError::Bpf`].
    pub fn attach_one_at(&mut self, cgroup: &Path) -> Result<(), CgroupBpfError> {
        let dir = open_dir(cgroup)?;
        self.attach_at(dir.as_fd(), cgroup)
    }

    /// Detaches the most recent outstanding attach (`BPF_LINK_DETACH`: `cgroup_bpf_detach_link`
    /// -> `update_effective_progs` again); its fd stays open until
    /// [`AttachBench::release_detached`], so a timed detach does not include the close. `None`
    /// when nothing is outstanding; `Some(Err)` when the kernel refused (the fd is kept with the
    /// detached ones and closed with them, which detaches it).
    pub fn detach_last(&mut self) -> Option<Result<(), CgroupBpfError>> {
        let link = self.links.pop()?;
        let r = link_detach(link.as_fd());
        self.detached.push(link);
        Some(r.map_err(|source| CgroupBpfError::Io {
            op: "BPF_LINK_DETACH",
            path: PathBuf::new(),
            source,
        }))
    }

    /// Closes the fds of the links [`AttachBench::detach_last`] detached.
    pub fn release_detached(&mut self) {
        self.detached.clear();
    }

    /// Attaches the program once at `cgroup` for the bench's life, keeping one-off work out.
    ///
    /// This link is outside the outstanding attaches, so that measured attaches and detaches do not
    /// include the kernel's one-off work of a hook's first program and its undoing after the last.
    /// Use a cgroup outside the measured subtree. For cgroup-bpf that work is flipping the
    /// `cgroup_bpf_enabled_key[atype]` static key (`static_branch_inc` / `_dec`: code patching,
    /// tens of µs, on the 0 <-> 1 transitions); for `lsm_cgroup` it is linking the hook's shim
    /// into the BPF trampoline and regenerating it (`bpf_trampoline_link_cgroup_shim`).
    ///
    /// Errors: as [`AttachBench::attach_one_at`].
    pub fn keep_attached_at(&mut self, cgroup: &Path) -> Result<(), CgroupBpfError> {
        let dir = open_dir(cgroup)?;
        let link = self.link(dir.as_fd(), cgroup)?;
        self.keepers.push(link);
        Ok(())
    }

    /// Attaches outstanding.
    pub fn outstanding(&self) -> usize {
        self.links.len()
    }

    /// The program's kernel id.
    pub fn program_id(&self) -> u32 {
        self.program.id()
    }
}

/// Checks that `cgroup` is a directory under `<mount>/hookbench-*` and returns it resolved.
///
/// No `..` is allowed, and the check is made after resolving symlinks.
pub(crate) fn check_in_run(cgroup: &Path) -> Result<PathBuf, CgroupBpfError> {
    let cg = Cgroup2::detect()?;
    let mount = cg.mount().canonicalize().unwrap_or_else(|_| cg.mount().to_path_buf());
    let refuse = || CgroupBpfError::OutsideRun {
        path: cgroup.to_path_buf(),
        mount: mount.clone(),
    };
    if cgroup.components().any(|c| c == Component::ParentDir) {
        return Err(refuse());
    }
    let real = cgroup.canonicalize().map_err(|source| CgroupBpfError::Io {
        op: "open",
        path: cgroup.to_path_buf(),
        source,
    })?;
    let rel = real.strip_prefix(&mount).map_err(|_| refuse())?;
    match rel.components().next() {
        Some(Component::Normal(first)) if first.to_string_lossy().starts_with(RUN_PREFIX) => Ok(real),
        _ => Err(refuse()),
    }
}

/// Moves this whole process into `cgroup`, which must be a cgroup of a hookbench run.
///
/// Errors: [`CgroupBpfError::OutsideRun`] (see [`check_in_run`]); [`CgroupBpfError::Io`] when
/// writing its `cgroup.procs` fails.
pub(crate) fn join_run_cgroup(cgroup: &Path) -> Result<(), CgroupBpfError> {
    let procs = check_in_run(cgroup)?.join("cgroup.procs");
    std::fs::write(&procs, std::process::id().to_string()).map_err(|source| CgroupBpfError::Io {
        op: "write",
        path: procs,
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::attach_worker::AttachProgram;
    use crate::test_support::teardown_unloads;
    use crate::test_support::{median, slope, spawn_fire, spawn_sock, spawn_sock_with};
    use crate::trigger::Trigger;
    use hookbench_bpf::prog_exists;

    /// Serializes the root tests (they measure and check the mount for leftovers).
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());

    /// [`LOCK`], the cgroup2 mount and a new run tree for root test `test`, if it can run.
    ///
    /// `None` after saying why it is skipped.
    fn root_run(test: &str) -> Option<(std::sync::MutexGuard<'static, ()>, Cgroup2, RunTree)> {
        crate::test_support::root_run(&LOCK, test, NEEDS)
    }

    /// What the root tests need root for.
    const NEEDS: &str = "needs root (cgroups and BPF programs)";

    #[test]
    fn cgroup_bpf_effective_counts_runs_and_cleanup() {
        let Some((_g, _, mut run)) = root_run("cgroup_bpf_effective_counts_runs_and_cleanup") else {
            return;
        };
        let tree = CgroupBpfTree::build(&mut run, MeasuredHook::SockCreate, 3, 6, 4, Body::Counter).expect("build");
        let ids = tree.program_ids();
        assert_eq!(ids.len(), 10);
        assert!(ids.iter().all(|&id| id > 0 && prog_exists(id)), "{ids:?}");
        let sc = AttachType::SockCreate;
        assert_eq!(tree.query_count(2, sc, true).expect("query"), 6, "leaf effective");
        assert_eq!(tree.query_count(0, sc, true).expect("query"), 2, "top effective");
        assert_eq!(tree.query_count(2, sc, false).expect("query"), 2, "leaf own");
        // Foreign j: hook j % 3, level j % 3 -> sysctl at 0 and 0 (j = 0, 3), getsockopt at 1, dev at 2.
        assert_eq!(tree.query_count(2, AttachType::Sysctl, true).expect("query"), 2);
        assert_eq!(tree.query_count(2, AttachType::Getsockopt, true).expect("query"), 1);
        assert_eq!(tree.query_count(2, AttachType::Device, true).expect("query"), 1);
        assert_eq!((tree.links_at(0), tree.links_at(1), tree.links_at(2)), (4, 3, 3));

        let report = spawn_sock(tree.leaf(), 100, None).expect("worker ran");
        assert!(report.calls >= 100, "{} calls", report.calls);
        let counters: Vec<u64> = tree.programs().iter().map(|p| p.counter().expect("counter")).collect();
        eprintln!(
            "cgroup_bpf: {} socket() calls in the leaf, per-program counters {counters:?}",
            report.calls
        );
        assert!(counters.iter().all(|&c| c == report.calls), "{counters:?}");
        assert_eq!(counters.iter().sum::<u64>(), 6 * report.calls);
        let foreign: Vec<u64> = tree.foreign().iter().map(|p| p.counter().expect("counter")).collect();
        assert!(
            foreign.iter().all(|&c| c == 0),
            "foreign programs ran on socket(): {foreign:?}"
        );

        teardown_unloads(run, tree, &ids);
    }

    /// The cheap trigger: getsockname() is batched, and its programs run once per call.
    ///
    /// Every getsockname4 program of the leaf's effective array runs exactly once per call, foreign
    /// programs never; run statistics count the same runs (any body) only while they are on; and
    /// the programs follow the socket's cgroup, not the caller's.
    #[test]
    fn getsockname4_programs_run_once_per_call_and_foreign_never() {
        let Some((_g, _, mut run)) = root_run("getsockname4_programs_run_once_per_call_and_foreign_never") else {
            return;
        };
        let gs = MeasuredHook::Getsockname4;
        let tree = CgroupBpfTree::build(&mut run, gs, 2, 4, 6, Body::Counter).expect("build");
        assert_eq!(tree.query_count(1, AttachType::Getsockname4, true).expect("query"), 4);
        assert_eq!(tree.query_count(1, AttachType::SockCreate, true).expect("query"), 0);
        let report = spawn_sock_with(tree.leaf(), Trigger::Getsockname, 300, None).expect("worker ran");
        assert!(
            report.samples.batch_k > 1,
            "getsockname() is batched: K = {}",
            report.samples.batch_k
        );
        let counters: Vec<u64> = tree.programs().iter().map(|p| p.counter().expect("counter")).collect();
        let foreign: Vec<u64> = tree.foreign().iter().map(|p| p.counter().expect("counter")).collect();
        eprintln!(
            "getsockname4: {} calls (K = {}), counters {counters:?}, foreign {foreign:?}",
            report.calls, report.samples.batch_k
        );
        assert!(
            counters.iter().all(|&c| c == report.calls),
            "{counters:?} vs {}",
            report.calls
        );
        assert!(foreign.iter().all(|&c| c == 0), "foreign programs ran: {foreign:?}");

        // Null bodies count nothing themselves: run statistics do, and only while held.
        let null = CgroupBpfTree::build(&mut run, gs, 2, 3, 3, Body::Null).expect("build");
        let sysctl_on = hookbench_bpf::stats_sysctl_enabled() == Some(true);
        let before = null.run_count_sums().expect("run_cnt");
        spawn_sock_with(null.leaf(), Trigger::Getsockname, 50, None).expect("timed worker");
        let unheld = null.run_count_sums().expect("run_cnt");
        if !sysctl_on {
            assert_eq!(unheld, before, "run_cnt grew with statistics off");
        }
        let stats = hookbench_bpf::RunStats::enable().expect("BPF_ENABLE_STATS as root");
        let fired = spawn_fire(null.leaf(), Trigger::Getsockname, 1000).expect("fire worker");
        drop(stats);
        let after = null.run_count_sums().expect("run_cnt");
        assert_eq!(fired.calls, 1000);
        assert!(fired.samples.values_ns.is_empty());
        assert_eq!(after.0 - unheld.0, 3 * 1000, "each null program ran once per call");
        assert_eq!(after.1 - unheld.1, 0, "foreign programs never ran");

        // A worker in another cgroup of the run: its socket is not the leaf's, nothing runs.
        let elsewhere = run.build(crate::cgroupfs::Shape::Deep, 1).expect("cgroup").remove(0);
        let stats = hookbench_bpf::RunStats::enable().expect("BPF_ENABLE_STATS");
        spawn_fire(&elsewhere, Trigger::Getsockname, 100).expect("fire elsewhere");
        drop(stats);
        assert_eq!(null.run_count_sums().expect("run_cnt"), after);

        let ids: Vec<u32> = tree.program_ids().into_iter().chain(null.program_ids()).collect();
        teardown_unloads(run, (tree, null), &ids);
    }

    #[test]
    fn cgroup_bpf_cap_is_named() {
        let Some((_g, _, mut run)) = root_run("cgroup_bpf_cap_is_named") else {
            return;
        };
        let e = CgroupBpfTree::build(&mut run, MeasuredHook::Getsockname4, 1, 65, 0, Body::Null)
            .expect_err("65 on one cgroup");
        assert!(e.to_string().contains("BPF_CGROUP_MAX_PROGS"), "{e}");
        assert!(
            matches!(
                e,
                CgroupBpfError::MaxProgs {
                    asked: 65,
                    min_depth: 2,
                    ..
                }
            ),
            "{e:?}"
        );
        // The kernel's own E2BIG: 64 via the tree, one more via AttachBench.
        let tree = CgroupBpfTree::build(&mut run, MeasuredHook::Getsockname4, 1, 64, 0, Body::Null).expect("64 fit");
        let mut bench: AttachBench = AttachBench::new(MeasuredHook::Getsockname4, Body::Null).expect("load");
        let e = bench.attach_one_at(tree.leaf()).expect_err("65th");
        assert!(
            matches!(
                e,
                CgroupBpfError::Bpf {
                    source: BpfError::MaxProgs { .. },
                    ..
                }
            ),
            "{e:?}"
        );
        assert!(e.to_string().contains("BPF_CGROUP_MAX_PROGS"), "{e}");
        drop((bench, tree));
        run.teardown().expect("teardown");
    }

    #[test]
    fn cgroup_bpf_worker_refuses_foreign_cgroups() {
        let Some((_g, cg)) = crate::test_support::root_test(&LOCK, "cgroup_bpf_worker_refuses_foreign_cgroups", NEEDS)
        else {
            return;
        };
        for p in [
            cg.mount().to_path_buf(),
            cg.mount().join(format!("{RUN_PREFIX}x/../..")),
        ] {
            let e = spawn_sock(&p, 1, None).expect_err("refused").to_string();
            assert!(e.contains("not inside a hookbench-") || e.contains("open"), "{e}");
        }
        let e = spawn_sock(Path::new("/tmp"), 1, None).expect_err("refused").to_string();
        assert!(e.contains("not inside"), "{e}");
    }

    #[test]
    fn cgroup_bpf_per_program_slope() {
        let Some((_g, cg)) = crate::test_support::root_test(&LOCK, "cgroup_bpf_per_program_slope", NEEDS) else {
            return;
        };
        const COUNTS: [u32; 4] = [0, 8, 16, 32];
        for (hook, trigger, body) in [
            (MeasuredHook::Getsockname4, Trigger::Getsockname, Body::Null),
            (MeasuredHook::SockCreate, Trigger::Socket, Body::Counter),
        ] {
            let mut means = vec![Vec::new(); COUNTS.len()];
            for _round in 0..3 {
                for (i, &n) in COUNTS.iter().enumerate() {
                    let mut run = RunTree::create(&cg).expect("run tree");
                    let tree = CgroupBpfTree::build(&mut run, hook, 2, n, 0, body).expect("build");
                    let r = spawn_sock_with(tree.leaf(), trigger, 2000, None).expect("worker ran");
                    means[i].extend(r.samples.values_ns.iter().copied());
                    drop(tree);
                    run.teardown().expect("teardown");
                }
            }
            // A line through the medians: a VM's preempted samples (milliseconds among
            // microseconds) would swing a line through the raw samples either way.
            let medians: Vec<(f64, f64)> = COUNTS
                .iter()
                .zip(&mut means)
                .map(|(n, v)| (f64::from(*n), median(v)))
                .collect();
            let s = slope(&medians);
            let m: Vec<String> = medians.iter().map(|(n, v)| format!("N={n}: {v:.1} ns")).collect();
            eprintln!(
                "cgroup_bpf {} {body}: {}() median {}; slope of the medians {s:.2} ns/program",
                hook.section(),
                trigger.name(),
                m.join(", ")
            );
            assert!(s > 0.0, "{body}: slope {s}");
        }
    }

    #[test]
    fn cgroup_bpf_attach_latency_grows_with_descendants() {
        if let Some((_g, _, run)) = root_run("cgroup_bpf_attach_latency_grows_with_descendants") {
            crate::test_support::check_attach_grows(run, AttachProgram::Getsockname4, 1000, 3, 21, true);
        }
    }
}
