//! `/dev/hookbench`: opening it (with an ABI version check) and one typed wrapper per ioctl of
//! `uapi/hookbench_kmod.h`. A [`Device`] is one session of the module: what is attached
//! through it lives until [`Device::reset`] or until the last holder of the open file closes
//! it (processes that inherit the fd share the session; a second [`Device::open`] is a new,
//! empty one).

use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::str::FromStr;

use nix::errno::Errno;

use crate::abi::*;
use crate::KmodError;

/// A dispatch model of the module (DESIGN.md names).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Model {
    /// Per task, a linked list of every hook's programs, shared across fork; a hook walks it all.
    TaskChain,
    /// Per task, one program array per hook, shared across fork (copy on write).
    TaskHookArray,
    /// Per cgroup v2 cgroup, `effective[hook]` arrays recomputed on attach/detach.
    CgroupEffective,
    /// One global list per hook; every program runs on every fire.
    GlobalFilter,
}

impl Model {
    /// Every model, in DESIGN.md's order.
    pub const ALL: [Model; 4] = [
        Model::TaskChain,
        Model::TaskHookArray,
        Model::CgroupEffective,
        Model::GlobalFilter,
    ];

    /// The DESIGN.md name, e.g. `"task-chain"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Model::TaskChain => "task-chain",
            Model::TaskHookArray => "task-hook-array",
            Model::CgroupEffective => "cgroup-effective",
            Model::GlobalFilter => "global-filter",
        }
    }

    /// The ABI's `HB_KMOD_MODEL_*` value.
    pub fn raw(self) -> u32 {
        match self {
            Model::TaskChain => HB_KMOD_MODEL_TASK_CHAIN,
            Model::TaskHookArray => HB_KMOD_MODEL_TASK_HOOK_ARRAY,
            Model::CgroupEffective => HB_KMOD_MODEL_CGROUP_EFFECTIVE,
            Model::GlobalFilter => HB_KMOD_MODEL_GLOBAL_FILTER,
        }
    }

    /// Whether programs are installed on the calling task (task-chain, task-hook-array).
    pub fn is_per_task(self) -> bool {
        matches!(self, Model::TaskChain | Model::TaskHookArray)
    }

    /// The same model in hookbench-model's naming.
    pub fn kind(self) -> hookbench_model::ModelKind {
        match self {
            Model::TaskChain => hookbench_model::ModelKind::TaskChain,
            Model::TaskHookArray => hookbench_model::ModelKind::TaskHookArray,
            Model::CgroupEffective => hookbench_model::ModelKind::CgroupEffective,
            Model::GlobalFilter => hookbench_model::ModelKind::GlobalFilter,
        }
    }

    /// The module's model for a hookbench-model kind.
    pub fn from_kind(kind: hookbench_model::ModelKind) -> Model {
        match kind {
            hookbench_model::ModelKind::TaskChain => Model::TaskChain,
            hookbench_model::ModelKind::TaskHookArray => Model::TaskHookArray,
            hookbench_model::ModelKind::CgroupEffective => Model::CgroupEffective,
            hookbench_model::ModelKind::GlobalFilter => Model::GlobalFilter,
        }
    }
}

impl std::fmt::Display for Model {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Model {
    type Err = KmodError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Model::ALL
            .into_iter()
            .find(|m| m.as_str() == s)
            .ok_or_else(|| KmodError::InvalidArgument {
                what: format!("model {s:?}"),
                why: "use task-chain, task-hook-array, cgroup-effective or global-filter",
            })
    }
}

/// The program of an attach or detach.
#[derive(Debug, Clone, Copy)]
pub enum ProgRef<'a> {
    /// The module's built-in null body (`prog_fd = -1`): each attachment is a new instance.
    NullBody,
    /// A loaded `BPF_PROG_TYPE_RAW_TRACEPOINT` program (see [`crate::progs::KmodProgram`]).
    Bpf(BorrowedFd<'a>),
    /// Any fd number, passed as is (for checks of the module's argument validation).
    Raw(i32),
}

impl ProgRef<'_> {
    /// The `prog_fd` value.
    pub fn raw(&self) -> i32 {
        match self {
            ProgRef::NullBody => HB_KMOD_PROG_NULL_BODY,
            ProgRef::Bpf(fd) => fd.as_raw_fd(),
            ProgRef::Raw(fd) => *fd,
        }
    }
}

/// Attach flags of cgroup-effective (kernel/bpf/cgroup.c semantics).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AttachFlags {
    /// One program; descendants may not attach.
    None,
    /// One program; a descendant's program replaces it below the descendant.
    AllowOverride,
    /// Up to [`HB_KMOD_MAX_PROGS`]; descendants' programs run before these.
    AllowMulti,
}

impl AttachFlags {
    /// The flags value.
    pub fn raw(self) -> u32 {
        match self {
            AttachFlags::None => 0,
            AttachFlags::AllowOverride => HB_KMOD_F_ALLOW_OVERRIDE,
            AttachFlags::AllowMulti => HB_KMOD_F_ALLOW_MULTI,
        }
    }
}

/// The result of an attach, detach or install, measured in the kernel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Update {
    /// Kernel time of the update proper, ns.
    pub elapsed_ns: u64,
    /// cgroup-effective: effective arrays recomputed (the cgroup and its live descendants).
    pub recomputed: u32,
    /// After the update: programs in the cgroup's effective array / nodes in the task's chain /
    /// programs on the task's hook / programs on the global hook.
    pub count: u32,
}

/// The result of one FIRE.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Fire {
    /// Programs run.
    pub progs_run: u32,
    /// AND of their return values (1 when none ran).
    pub verdict: u32,
    /// The cgroup id the module saw (the caller's cgroup v2 cgroup; its directory's inode).
    pub cgroup_id: u64,
}

/// The totals of one RUN.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RunSummary {
    /// Programs run over all `batch * samples` fires.
    pub progs_run: u64,
    /// Programs run by one (untimed) fire before the loop.
    pub progs_per_fire: u32,
    /// AND over all fires.
    pub verdict: u32,
    /// Sum of the samples, ns.
    pub total_ns: u64,
}

/// The samples and totals of one RUN.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Run {
    /// Nanoseconds of each batch.
    pub samples_ns: Vec<u64>,
    /// Totals.
    pub summary: RunSummary,
}

/// Checks a hook id against [`HB_KMOD_MAX_HOOKS`].
pub fn check_hook(hook: u32) -> Result<(), KmodError> {
    if hook < HB_KMOD_MAX_HOOKS {
        Ok(())
    } else {
        Err(KmodError::InvalidArgument {
            what: format!("hook {hook}"),
            why: "hook ids are 0..16 (HB_KMOD_MAX_HOOKS)",
        })
    }
}

/// Checks RUN's batch and sample counts against the module's bounds.
pub fn check_run(batch: u32, samples: usize) -> Result<(), KmodError> {
    if batch == 0 || batch > HB_KMOD_MAX_BATCH {
        return Err(KmodError::InvalidArgument {
            what: format!("batch {batch}"),
            why: "a batch is 1..=65536 fires (HB_KMOD_MAX_BATCH)",
        });
    }
    if samples == 0 || samples > HB_KMOD_MAX_SAMPLES as usize {
        return Err(KmodError::InvalidArgument {
            what: format!("samples {samples}"),
            why: "a run is 1..=1048576 samples (HB_KMOD_MAX_SAMPLES); split longer runs",
        });
    }
    if u64::from(batch) * samples as u64 > HB_KMOD_MAX_FIRES {
        return Err(KmodError::InvalidArgument {
            what: format!("batch {batch} x samples {samples}"),
            why: "a run is at most 2^28 fires (HB_KMOD_MAX_FIRES); use fewer samples per call",
        });
    }
    Ok(())
}

/// What to tell the user about an ioctl error.
fn hint(op: &'static str, errno: Errno) -> &'static str {
    match (op, errno) {
        (_, Errno::EPROTO) => "the module speaks another ABI version: rebuild and reload hookbench.ko from this tree",
        (_, Errno::ENOTTY) => "not hookbench.ko's ioctl (different ABI struct sizes): reload the module from this tree",
        ("attach", Errno::EPERM) => {
            "an ancestor cgroup has a program without ALLOW_OVERRIDE/ALLOW_MULTI, or this cgroup's programs use \
             other flags"
        }
        ("attach", Errno::E2BIG) | ("install", Errno::E2BIG) => {
            "limit reached: 64 programs per cgroup/global hook, 4096 per task; spread programs over more levels"
        }
        ("run", Errno::E2BIG) => {
            "a batch may do at most HB_KMOD_MAX_BATCH_WORK (2^22) program runs or chain nodes: use a smaller batch"
        }
        ("attach", Errno::EINVAL) => {
            "the program is attached there already, is not a raw_tp program, reads past the context, or the \
             flags are invalid"
        }
        (_, Errno::EBADF) => "the program fd or cgroup fd is not open (cgroup: a directory on a cgroup2 mount)",
        ("detach", Errno::ENOENT) => "nothing of that program is attached there",
        (_, Errno::EOPNOTSUPP) => "a task's programs cannot be detached (as seccomp's); RESET or exit instead",
        (_, Errno::EINTR) => "interrupted by a signal",
        (_, Errno::ENOMEM) => "the kernel is out of memory",
        _ => "see the errors documented in kernels/kmod/uapi/hookbench_kmod.h",
    }
}

/// One open session of `/dev/hookbench`.
#[derive(Debug)]
pub struct Device {
    file: File,
    path: PathBuf,
}

impl AsFd for Device {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.file.as_fd()
    }
}

impl Device {
    /// Opens [`HB_KMOD_DEVICE`] ([`Device::open_path`]).
    pub fn open() -> Result<Device, KmodError> {
        Device::open_path(HB_KMOD_DEVICE)
    }

    /// Opens the device at `path` (close-on-exec) and checks its ABI version. Errors:
    /// [`KmodError::DeviceMissing`] (module not loaded), [`KmodError::DeviceDenied`] (not root),
    /// [`KmodError::Open`], [`KmodError::NotHookbench`], [`KmodError::AbiMismatch`].
    pub fn open_path(path: impl AsRef<Path>) -> Result<Device, KmodError> {
        let path = path.as_ref().to_path_buf();
        let file = match OpenOptions::new().read(true).write(true).open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(KmodError::DeviceMissing { path }),
            Err(e) if matches!(e.raw_os_error(), Some(libc::EACCES | libc::EPERM)) => {
                return Err(KmodError::DeviceDenied { path, source: e })
            }
            Err(e) => return Err(KmodError::Open { path, source: e }),
        };
        Device::checked(file, path)
    }

    /// Takes over an open fd of the device (e.g. inherited by an exec'd worker, which then
    /// shares the session) and checks its ABI version.
    pub fn from_fd(fd: OwnedFd) -> Result<Device, KmodError> {
        let path = PathBuf::from(format!("fd {}", fd.as_raw_fd()));
        Device::checked(File::from(fd), path)
    }

    fn checked(file: File, path: PathBuf) -> Result<Device, KmodError> {
        let dev = Device { file, path };
        let v = match dev.version() {
            Ok(v) => v,
            Err(KmodError::Ioctl {
                errno: Errno::ENOTTY, ..
            }) => return Err(KmodError::NotHookbench { path: dev.path }),
            Err(e) => return Err(e),
        };
        if v.abi_version != HB_KMOD_ABI_VERSION {
            return Err(KmodError::AbiMismatch {
                kernel: v.abi_version,
                ours: HB_KMOD_ABI_VERSION,
            });
        }
        Ok(dev)
    }

    /// The path the device was opened at.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Issues ioctl `request` with `arg`.
    ///
    /// # Safety
    /// `arg` must be 0 or an address the kernel may read and write `_IOC_SIZE(request)` bytes
    /// at (or an address the kernel will refuse: unmapped, read-only, or a kernel address).
    pub unsafe fn ioctl_raw(&self, request: u64, arg: usize) -> Result<(), Errno> {
        // SAFETY: forwarded to the caller; the fd is open while `self` lives.
        let rc = unsafe { libc::ioctl(self.file.as_raw_fd(), request as _, arg) };
        if rc < 0 {
            Err(Errno::last())
        } else {
            Ok(())
        }
    }

    /// Issues ioctl `request` on one of the ABI structs (whose size the request encodes).
    pub(crate) fn ioctl<T: Copy>(&self, request: u64, arg: &mut T) -> Result<(), Errno> {
        debug_assert_eq!(((request >> 16) & 0x1fff) as usize, std::mem::size_of::<T>() & 0x1fff);
        // SAFETY: `arg` is a live, writable T of the size the request encodes.
        unsafe { self.ioctl_raw(request, arg as *mut T as usize) }
    }

    fn call<T: Copy>(&self, op: &'static str, request: u64, arg: &mut T) -> Result<(), KmodError> {
        self.ioctl(request, arg).map_err(|errno| KmodError::Ioctl {
            op,
            errno,
            hint: hint(op, errno),
        })
    }

    /// VERSION: the module's ABI version and limits.
    pub fn version(&self) -> Result<HbKmodVersion, KmodError> {
        let mut v = HbKmodVersion::default();
        self.call("version", HB_KMOD_IOC_VERSION, &mut v)?;
        Ok(v)
    }

    fn attach_req(&self, op: &'static str, request: u64, mut a: HbKmodAttach) -> Result<Update, KmodError> {
        check_hook(a.hook)?;
        a.abi_version = HB_KMOD_ABI_VERSION;
        self.call(op, request, &mut a)?;
        Ok(Update {
            elapsed_ns: a.elapsed_ns,
            recomputed: a.recomputed,
            count: a.count,
        })
    }

    /// ATTACH in cgroup-effective: attaches `prog` at the cgroup whose cgroup2 directory is open
    /// as `cgroup`, on `hook`, with `flags`; recomputes the subtree's effective arrays.
    pub fn attach_cgroup(
        &self,
        cgroup: BorrowedFd<'_>,
        prog: ProgRef<'_>,
        hook: u32,
        flags: AttachFlags,
    ) -> Result<Update, KmodError> {
        let a = HbKmodAttach {
            model: HB_KMOD_MODEL_CGROUP_EFFECTIVE,
            prog_fd: prog.raw(),
            cgroup_fd: cgroup.as_raw_fd(),
            hook,
            flags: flags.raw(),
            ..Default::default()
        };
        self.attach_req("attach", HB_KMOD_IOC_ATTACH, a)
    }

    /// DETACH in cgroup-effective (without ALLOW_MULTI at the cgroup, whatever is attached is
    /// detached, as the kernel does).
    pub fn detach_cgroup(&self, cgroup: BorrowedFd<'_>, prog: ProgRef<'_>, hook: u32) -> Result<Update, KmodError> {
        let a = HbKmodAttach {
            model: HB_KMOD_MODEL_CGROUP_EFFECTIVE,
            prog_fd: prog.raw(),
            cgroup_fd: cgroup.as_raw_fd(),
            hook,
            ..Default::default()
        };
        self.attach_req("detach", HB_KMOD_IOC_DETACH, a)
    }

    /// ATTACH in task-chain or task-hook-array: installs `prog` on the calling task (thread)
    /// for `hook`; children forked afterwards inherit it, existing children do not.
    pub fn install_task(&self, model: Model, prog: ProgRef<'_>, hook: u32) -> Result<Update, KmodError> {
        if !model.is_per_task() {
            return Err(KmodError::InvalidArgument {
                what: format!("install_task in {model}"),
                why: "only task-chain and task-hook-array install on tasks; use attach_cgroup or attach_global",
            });
        }
        let a = HbKmodAttach {
            model: model.raw(),
            prog_fd: prog.raw(),
            cgroup_fd: HB_KMOD_NO_CGROUP,
            hook,
            ..Default::default()
        };
        self.attach_req("install", HB_KMOD_IOC_ATTACH, a)
    }

    /// ATTACH in global-filter: appends `prog` to the session's global list of `hook`.
    pub fn attach_global(&self, prog: ProgRef<'_>, hook: u32) -> Result<Update, KmodError> {
        let a = HbKmodAttach {
            model: HB_KMOD_MODEL_GLOBAL_FILTER,
            prog_fd: prog.raw(),
            cgroup_fd: HB_KMOD_NO_CGROUP,
            hook,
            ..Default::default()
        };
        self.attach_req("attach", HB_KMOD_IOC_ATTACH, a)
    }

    /// DETACH in global-filter: removes the oldest attachment of `prog` from `hook`'s list.
    pub fn detach_global(&self, prog: ProgRef<'_>, hook: u32) -> Result<Update, KmodError> {
        let a = HbKmodAttach {
            model: HB_KMOD_MODEL_GLOBAL_FILTER,
            prog_fd: prog.raw(),
            cgroup_fd: HB_KMOD_NO_CGROUP,
            hook,
            ..Default::default()
        };
        self.attach_req("detach", HB_KMOD_IOC_DETACH, a)
    }

    /// FIRE: fires `hook` once in `model` as the calling task.
    pub fn fire(&self, model: Model, hook: u32) -> Result<Fire, KmodError> {
        check_hook(hook)?;
        let mut f = HbKmodFire {
            abi_version: HB_KMOD_ABI_VERSION,
            model: model.raw(),
            hook,
            ..Default::default()
        };
        self.call("fire", HB_KMOD_IOC_FIRE, &mut f)?;
        Ok(Fire {
            progs_run: f.progs_run,
            verdict: f.verdict,
            cgroup_id: f.cgroup_id,
        })
    }

    /// RUN: the in-kernel timed loop, `samples` batches of `batch` fires; returns the ns of each
    /// batch and the totals.
    pub fn run(&self, model: Model, hook: u32, batch: u32, samples: usize) -> Result<Run, KmodError> {
        check_run(batch, samples)?;
        let mut samples_ns = vec![0u64; samples];
        let summary = self.run_into(model, hook, batch, &mut samples_ns)?;
        Ok(Run { samples_ns, summary })
    }

    /// RUN into a caller's buffer: one sample per element of `out`.
    pub fn run_into(&self, model: Model, hook: u32, batch: u32, out: &mut [u64]) -> Result<RunSummary, KmodError> {
        check_hook(hook)?;
        check_run(batch, out.len())?;
        let mut r = HbKmodRun {
            abi_version: HB_KMOD_ABI_VERSION,
            model: model.raw(),
            hook,
            batch,
            samples: out.len() as u32,
            samples_addr: out.as_mut_ptr() as u64,
            ..Default::default()
        };
        self.call("run", HB_KMOD_IOC_RUN, &mut r)?;
        Ok(RunSummary {
            progs_run: r.progs_run,
            progs_per_fire: r.progs_per_fire,
            verdict: r.verdict,
            total_ns: r.total_ns,
        })
    }

    /// RESET: detaches and frees everything in this session.
    pub fn reset(&self) -> Result<(), KmodError> {
        let mut r = HbKmodReset {
            abi_version: HB_KMOD_ABI_VERSION,
            ..Default::default()
        };
        self.call("reset", HB_KMOD_IOC_RESET, &mut r)
    }

    /// STATS: the session's dispatch metadata (exact counts and bytes) and fork/exit counters.
    pub fn stats(&self) -> Result<HbKmodStats, KmodError> {
        let mut s = HbKmodStats {
            abi_version: HB_KMOD_ABI_VERSION,
            ..Default::default()
        };
        self.call("stats", HB_KMOD_IOC_STATS, &mut s)?;
        Ok(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_names_match_design_and_model_crate() {
        let names: Vec<&str> = Model::ALL.iter().map(|m| m.as_str()).collect();
        assert_eq!(
            names,
            ["task-chain", "task-hook-array", "cgroup-effective", "global-filter"]
        );
        for m in Model::ALL {
            assert_eq!(m.kind().as_str(), m.as_str());
            assert_eq!(Model::from_kind(m.kind()), m);
            assert_eq!(m.as_str().parse::<Model>().expect("parses"), m);
            assert!(m.raw() < HB_KMOD_MODELS);
        }
        let err = "seccomp".parse::<Model>().expect_err("unknown");
        assert!(err.to_string().contains("task-chain, task-hook-array"), "{err}");
    }

    #[test]
    fn run_and_hook_bounds_are_checked_before_the_ioctl() {
        assert!(check_hook(0).is_ok() && check_hook(15).is_ok());
        assert!(check_hook(16).is_err());
        assert!(check_run(1, 1).is_ok());
        assert!(check_run(HB_KMOD_MAX_BATCH, 4096).is_ok());
        assert!(check_run(0, 1).is_err());
        assert!(check_run(HB_KMOD_MAX_BATCH + 1, 1).is_err());
        assert!(check_run(1, 0).is_err());
        assert!(check_run(1, HB_KMOD_MAX_SAMPLES as usize + 1).is_err());
        let e = check_run(HB_KMOD_MAX_BATCH, 4097).expect_err("too many fires");
        assert!(e.to_string().contains("2^28"), "{e}");
    }

    #[test]
    fn missing_device_says_how_to_load_the_module() {
        let dir = tempfile::tempdir().expect("tempdir");
        let err = Device::open_path(dir.path().join("hookbench")).expect_err("no device there");
        assert!(matches!(err, KmodError::DeviceMissing { .. }), "{err:?}");
        let msg = err.to_string();
        assert!(msg.contains("insmod") && msg.contains("hookbench.ko"), "{msg}");
    }

    #[test]
    fn a_file_that_is_not_the_module_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("plain");
        std::fs::write(&path, b"x").expect("write");
        let err = Device::open_path(&path).expect_err("not the device");
        assert!(matches!(err, KmodError::NotHookbench { .. }), "{err:?}");
        assert!(err.to_string().contains("not hookbench.ko"), "{err}");
    }

    #[test]
    fn null_body_is_fd_minus_one() {
        assert_eq!(ProgRef::NullBody.raw(), -1);
        assert_eq!(ProgRef::Raw(7).raw(), 7);
        assert_eq!(AttachFlags::AllowMulti.raw(), 2);
        assert_eq!(AttachFlags::AllowOverride.raw(), 1);
        assert_eq!(AttachFlags::None.raw(), 0);
    }
}
