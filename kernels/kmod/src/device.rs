//! `/dev/hookbench`: opening it with an ABI version check, and one typed wrapper per ioctl.
//!
//! The ioctls are those of `uapi/hookbench_kmod.h`. A [`Device`] is one session of the module:
//! what is attached through it lives until [`Device::reset`] or until the last holder of the
//! open file closes it (processes that inherit the fd share the session; a second
//! [`Device::open`] is a new, empty one). Models and attach flags are hookbench-model's
//! [`ModelKind`] and [`AttachFlags`], turned into the ABI's numbers by [`crate::abi`].

use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

use hookbench_model::{AttachFlags, ModelKind};
use nix::errno::Errno;

use crate::abi::*;
use crate::KmodError;

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

/// The result of an attach, detach or install, measured in the kernel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Update {
    /// Kernel time of the update proper, ns.
    pub elapsed_ns: u64,
    /// cgroup-effective: effective arrays recomputed (the cgroup and its live descendants).
    pub recomputed: u32,
    /// What the model has in effect after the update, counted as it counts it.
    ///
    /// Programs in the cgroup's effective array (cgroup-effective), nodes in the task's chain
    /// (task-chain), programs on the task's hook (task-hook-array), programs on the global hook
    /// (global-filter).
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
    /// Bytes of the states fired: W times one state's (the caller's own state's when W is 1).
    pub working_set_bytes: u64,
    /// The module's digest of the states fired, in order ([`crate::abi::states_digest`]).
    pub states_digest: u64,
}

impl From<HbKmodFire> for Fire {
    fn from(f: HbKmodFire) -> Self {
        Fire {
            progs_run: f.progs_run,
            verdict: f.verdict,
            cgroup_id: f.cgroup_id,
        }
    }
}

impl From<HbKmodRun> for RunSummary {
    fn from(r: HbKmodRun) -> Self {
        RunSummary {
            progs_run: r.progs_run,
            progs_per_fire: r.progs_per_fire,
            verdict: r.verdict,
            total_ns: r.total_ns,
            working_set_bytes: r.working_set_bytes,
            states_digest: r.states_digest,
        }
    }
}

/// A RUN's working set: `states` copies of the caller's state fired in turn, in a seeded order.
///
/// See the uapi header's RUN: each fire uses the next state of a permutation of the states that
/// `seed` draws ([`crate::abi::working_set_permutation`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WorkingSet {
    /// W: 1 (the caller's own state, no copies) ..= [`HB_KMOD_MAX_WORKING_SET`].
    pub states: u32,
    /// Seed of the order; 0 when `states` is 1.
    pub seed: u64,
}

impl WorkingSet {
    /// The caller's own state alone (ABI 1's behaviour).
    pub const ONE: WorkingSet = WorkingSet { states: 1, seed: 0 };

    /// W states in the order `seed` draws; the seed is dropped for W = 1, which has no order.
    pub fn new(states: u32, seed: u64) -> WorkingSet {
        WorkingSet {
            states,
            seed: if states == 1 { 0 } else { seed },
        }
    }
}

/// Checks a working set against the module's bounds (the bytes are checked by the module).
pub fn check_working_set(ws: WorkingSet) -> Result<(), KmodError> {
    if ws.states == 0 || ws.states > HB_KMOD_MAX_WORKING_SET {
        return Err(KmodError::InvalidArgument {
            what: format!("working set {}", ws.states),
            why: "a working set is 1..=65536 states (HB_KMOD_MAX_WORKING_SET)",
        });
    }
    if ws.states == 1 && ws.seed != 0 {
        return Err(KmodError::InvalidArgument {
            what: format!("seed {} with a working set of 1", ws.seed),
            why: "one state has no order to draw: pass seed 0 (WorkingSet::new does)",
        });
    }
    Ok(())
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
            "a batch may do at most HB_KMOD_MAX_BATCH_WORK (2^22) program runs or chain nodes (use a smaller \
             batch), and a working set at most 65536 states and 256 MiB (use fewer states or programs)"
        }
        ("run", Errno::ENOMEM) => {
            "the kernel is out of memory, or the working set's states would take more than half of its \
             available memory: use fewer states or programs"
        }
        ("run", Errno::EAGAIN) => "the caller moved to another cgroup while RUN built its working set: retry",
        ("run", Errno::EINVAL) => {
            "bad RUN arguments: a working set > 1 in global-filter (it has no per-task or per-cgroup state), a \
             seed with a working set of 1, or a zero count"
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

/// Which ioctl an update is, for [`Device`]'s one update helper and its messages.
#[derive(Debug, Clone, Copy)]
enum UpdateOp {
    /// ATTACH at a cgroup or on a global hook.
    Attach,
    /// DETACH.
    Detach,
    /// ATTACH on the calling task.
    Install,
}

impl UpdateOp {
    /// The operation's name in errors and the ioctl request.
    fn name_and_request(self) -> (&'static str, u64) {
        match self {
            UpdateOp::Attach => ("attach", HB_KMOD_IOC_ATTACH),
            UpdateOp::Detach => ("detach", HB_KMOD_IOC_DETACH),
            UpdateOp::Install => ("install", HB_KMOD_IOC_ATTACH),
        }
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

    /// Takes over an open fd of the device and checks its ABI version.
    ///
    /// E.g. an fd inherited by an exec'd worker, which then shares the session.
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

    /// Sends `arg`, stamped with this ABI's version, as ioctl `request`; the module's answer.
    fn exchange<T: Request>(&self, op: &'static str, request: u64, mut arg: T) -> Result<T, KmodError> {
        *arg.abi_version_mut() = HB_KMOD_ABI_VERSION;
        self.call(op, request, &mut arg)?;
        Ok(arg)
    }

    /// VERSION: the module's ABI version and limits.
    pub fn version(&self) -> Result<HbKmodVersion, KmodError> {
        let mut v = HbKmodVersion::default();
        self.call("version", HB_KMOD_IOC_VERSION, &mut v)?;
        Ok(v)
    }

    /// ATTACH or DETACH (`op`) of `prog` on `hook` in `model`, with the update's results.
    ///
    /// All models but cgroup-effective take [`HB_KMOD_NO_CGROUP`] and no flags.
    fn update(
        &self,
        op: UpdateOp,
        model: ModelKind,
        prog: ProgRef<'_>,
        cgroup_fd: i32,
        hook: u32,
        flags: u32,
    ) -> Result<Update, KmodError> {
        check_hook(hook)?;
        let a = HbKmodAttach {
            model: model_raw(model),
            prog_fd: prog.raw(),
            cgroup_fd,
            hook,
            flags,
            ..Default::default()
        };
        let (name, request) = op.name_and_request();
        let a = self.exchange(name, request, a)?;
        Ok(Update {
            elapsed_ns: a.elapsed_ns,
            recomputed: a.recomputed,
            count: a.count,
        })
    }

    /// ATTACH in cgroup-effective: attaches `prog` at the cgroup open as `cgroup`, on `hook`.
    ///
    /// `cgroup` is a cgroup2 directory; `flags` are kernel/bpf/cgroup.c's. The module
    /// recomputes the effective arrays of the cgroup's subtree.
    pub fn attach_cgroup(
        &self,
        cgroup: BorrowedFd<'_>,
        prog: ProgRef<'_>,
        hook: u32,
        flags: AttachFlags,
    ) -> Result<Update, KmodError> {
        let flags = attach_flags_raw(flags);
        let cg = cgroup.as_raw_fd();
        self.update(UpdateOp::Attach, ModelKind::CgroupEffective, prog, cg, hook, flags)
    }

    /// DETACH in cgroup-effective: detaches `prog` from the cgroup open as `cgroup`.
    ///
    /// Without ALLOW_MULTI at the cgroup, whatever is attached is detached, as the kernel does.
    pub fn detach_cgroup(&self, cgroup: BorrowedFd<'_>, prog: ProgRef<'_>, hook: u32) -> Result<Update, KmodError> {
        let cg = cgroup.as_raw_fd();
        self.update(UpdateOp::Detach, ModelKind::CgroupEffective, prog, cg, hook, 0)
    }

    /// ATTACH in task-chain or task-hook-array: installs `prog` on the calling task for `hook`.
    ///
    /// The calling thread, that is; children forked afterwards inherit it, existing children do
    /// not.
    pub fn install_task(&self, model: ModelKind, prog: ProgRef<'_>, hook: u32) -> Result<Update, KmodError> {
        if !matches!(model, ModelKind::TaskChain | ModelKind::TaskHookArray) {
            return Err(KmodError::InvalidArgument {
                what: format!("install_task in {model}"),
                why: "only task-chain and task-hook-array install on tasks; use attach_cgroup or attach_global",
            });
        }
        self.update(UpdateOp::Install, model, prog, HB_KMOD_NO_CGROUP, hook, 0)
    }

    /// ATTACH in global-filter: appends `prog` to the session's global list of `hook`.
    pub fn attach_global(&self, prog: ProgRef<'_>, hook: u32) -> Result<Update, KmodError> {
        self.update(
            UpdateOp::Attach,
            ModelKind::GlobalFilter,
            prog,
            HB_KMOD_NO_CGROUP,
            hook,
            0,
        )
    }

    /// DETACH in global-filter: removes the oldest attachment of `prog` from `hook`'s list.
    pub fn detach_global(&self, prog: ProgRef<'_>, hook: u32) -> Result<Update, KmodError> {
        self.update(
            UpdateOp::Detach,
            ModelKind::GlobalFilter,
            prog,
            HB_KMOD_NO_CGROUP,
            hook,
            0,
        )
    }

    /// FIRE: fires `hook` once in `model` as the calling task.
    pub fn fire(&self, model: ModelKind, hook: u32) -> Result<Fire, KmodError> {
        check_hook(hook)?;
        let f = HbKmodFire {
            model: model_raw(model),
            hook,
            ..Default::default()
        };
        self.exchange("fire", HB_KMOD_IOC_FIRE, f).map(Fire::from)
    }

    /// RUN: the in-kernel timed loop of `samples` batches of `batch` fires.
    ///
    /// Returns the ns of each batch and the totals.
    pub fn run(&self, model: ModelKind, hook: u32, batch: u32, samples: usize) -> Result<Run, KmodError> {
        self.run_working_set(model, hook, batch, samples, WorkingSet::ONE)
    }

    /// RUN into a caller's buffer: one sample per element of `out`.
    pub fn run_into(&self, model: ModelKind, hook: u32, batch: u32, out: &mut [u64]) -> Result<RunSummary, KmodError> {
        self.run_working_set_into(model, hook, batch, WorkingSet::ONE, out)
    }

    /// RUN over a working set of W copies of the caller's state, fired in the seed's order.
    ///
    /// As [`Device::run`] otherwise; global-filter takes only [`WorkingSet::ONE`].
    pub fn run_working_set(
        &self,
        model: ModelKind,
        hook: u32,
        batch: u32,
        samples: usize,
        ws: WorkingSet,
    ) -> Result<Run, KmodError> {
        check_run(batch, samples)?;
        let mut samples_ns = vec![0u64; samples];
        let summary = self.run_working_set_into(model, hook, batch, ws, &mut samples_ns)?;
        Ok(Run { samples_ns, summary })
    }

    /// [`Device::run_working_set`] into a caller's buffer: one sample per element of `out`.
    pub fn run_working_set_into(
        &self,
        model: ModelKind,
        hook: u32,
        batch: u32,
        ws: WorkingSet,
        out: &mut [u64],
    ) -> Result<RunSummary, KmodError> {
        check_hook(hook)?;
        check_run(batch, out.len())?;
        check_working_set(ws)?;
        let r = HbKmodRun {
            model: model_raw(model),
            hook,
            batch,
            samples: out.len() as u32,
            samples_addr: out.as_mut_ptr() as u64,
            working_set: ws.states,
            seed: ws.seed,
            ..Default::default()
        };
        self.exchange("run", HB_KMOD_IOC_RUN, r).map(RunSummary::from)
    }

    /// RESET: detaches and frees everything in this session.
    pub fn reset(&self) -> Result<(), KmodError> {
        self.exchange("reset", HB_KMOD_IOC_RESET, HbKmodReset::default())
            .map(drop)
    }

    /// STATS: the session's dispatch metadata (exact counts and bytes) and fork/exit counters.
    pub fn stats(&self) -> Result<HbKmodStats, KmodError> {
        self.exchange("stats", HB_KMOD_IOC_STATS, HbKmodStats::default())
    }
}

/// An ioctl argument a caller sends: [`Device::exchange`] stamps its ABI version.
trait Request: Copy {
    /// The struct's `abi_version` field.
    fn abi_version_mut(&mut self) -> &mut u32;
}

/// [`Request`] for the structs of the ioctls that read `abi_version`.
macro_rules! impl_request {
    ($($t:ty),*) => {
        $(impl Request for $t {
            fn abi_version_mut(&mut self) -> &mut u32 {
                &mut self.abi_version
            }
        })*
    };
}
impl_request!(HbKmodAttach, HbKmodFire, HbKmodRun, HbKmodReset, HbKmodStats);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_task_models_install_on_tasks() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("plain"), b"x").expect("write");
        // No device is needed: the model is refused before any ioctl.
        let file = std::fs::File::open(dir.path().join("plain")).expect("open");
        let dev = Device {
            file,
            path: dir.path().join("plain"),
        };
        for m in [ModelKind::CgroupEffective, ModelKind::GlobalFilter] {
            let e = dev.install_task(m, ProgRef::NullBody, 0).expect_err("not a task model");
            assert!(matches!(e, KmodError::InvalidArgument { .. }), "{e:?}");
        }
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
    fn working_sets_are_checked_before_the_ioctl() {
        assert!(check_working_set(WorkingSet::ONE).is_ok());
        assert!(check_working_set(WorkingSet::new(HB_KMOD_MAX_WORKING_SET, 7)).is_ok());
        assert_eq!(WorkingSet::new(1, 7), WorkingSet::ONE, "W = 1 drops the seed");
        for bad in [
            WorkingSet { states: 0, seed: 0 },
            WorkingSet {
                states: HB_KMOD_MAX_WORKING_SET + 1,
                seed: 1,
            },
            WorkingSet { states: 1, seed: 3 },
        ] {
            let e = check_working_set(bad).expect_err("out of bounds");
            assert!(
                e.to_string().contains("working set") || e.to_string().contains("seed"),
                "{e}"
            );
        }
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
    }
}
