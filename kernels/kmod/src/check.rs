//! In-guest checks of hookbench.ko: run as root with the module loaded (in CI, inside the qemu
//! guest). Each function returns a [`CheckReport`] instead of panicking, so a CLI can print it
//! and exit non-zero on failure.
//!
//! - [`check_dispatch`]: every model runs exactly the expected programs: per-program counters
//!   (each program is its own instance with its own counter map) and the module's
//!   programs-run counts, on hand-built cgroup trees (the scenarios of hookbench-model's
//!   cgroup tests: ALLOW_MULTI accumulation, NONE blocking, OVERRIDE replacing, detach
//!   restoring, the 64-program cap, subtree recompute) and on forked tasks (a child inherits
//!   its parent's chain; a later install in the parent does not reach it; exit releases it),
//!   plus the hook context, sessions, and program references dropped on RESET and close.
//! - [`check_bad_args`]: every ioctl with a wrong ABI version, non-zero reserved fields,
//!   unknown models and hooks, bad fds and flags, oversized counts and bad addresses returns
//!   the documented errno, and the module stays usable after each.
//! - [`check_fuzz`]: random (seeded) ioctls, forks, cgroup moves and sessions for a bounded
//!   time; afterwards the module must still work and the kernel must not be tainted by a
//!   warning, oops or lockup.
//!
//! Cgroups are created in a private subtree of the cgroup2 mount found in
//! `/proc/self/mountinfo` (one is mounted on a temporary directory if there is none) and
//! removed afterwards; the process is moved back to its own cgroup; every forked child is
//! reaped.

use std::collections::BTreeMap;
use std::fmt;
use std::fs;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::sys::signal::{kill, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag};
use nix::unistd::{fork, pipe2, ForkResult, Pid};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use crate::abi::*;
use crate::device::{AttachFlags, Device, Model, ProgRef};
use crate::progs::{KmodProgram, ProgKind};
use crate::KmodError;

/// Options of [`run_all`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CheckOptions {
    /// How long [`check_fuzz`] runs (zero skips it).
    pub fuzz: Duration,
    /// The fuzz loop's seed.
    pub seed: u64,
}

impl Default for CheckOptions {
    fn default() -> Self {
        CheckOptions {
            fuzz: Duration::from_secs(10),
            seed: 1,
        }
    }
}

/// One check's outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckResult {
    /// What was checked, e.g. `dispatch/task-chain`.
    pub name: String,
    /// Whether it passed.
    pub passed: bool,
    /// What was seen (on failure: what differed).
    pub detail: String,
    /// How long it took.
    pub elapsed: Duration,
}

/// The outcomes of a group of checks.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CheckReport {
    /// Every check, in the order run.
    pub results: Vec<CheckResult>,
}

impl CheckReport {
    /// Whether every check passed (an empty report passes).
    pub fn passed(&self) -> bool {
        self.results.iter().all(|r| r.passed)
    }

    /// The failed checks.
    pub fn failures(&self) -> impl Iterator<Item = &CheckResult> {
        self.results.iter().filter(|r| !r.passed)
    }

    /// Appends another report's results.
    pub fn extend(&mut self, other: CheckReport) {
        self.results.extend(other.results);
    }

    /// Runs `f` as check `name` and records its outcome.
    fn record(&mut self, name: &str, f: impl FnOnce() -> Result<String, String>) {
        let start = Instant::now();
        let (passed, detail) = match f() {
            Ok(d) => (true, d),
            Err(d) => (false, d),
        };
        self.results.push(CheckResult {
            name: name.to_string(),
            passed,
            detail,
            elapsed: start.elapsed(),
        });
    }
}

impl fmt::Display for CheckReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for r in &self.results {
            writeln!(
                f,
                "{} {} ({:.2} s): {}",
                if r.passed { "PASS" } else { "FAIL" },
                r.name,
                r.elapsed.as_secs_f64(),
                r.detail
            )?;
        }
        let failed = self.failures().count();
        write!(
            f,
            "{} checks, {} passed, {} failed",
            self.results.len(),
            self.results.len() - failed,
            failed
        )
    }
}

type Check = Result<String, String>;

/// A cgroup-effective scenario on the shared test tree.
type CgroupCheck = fn(&Device, &mut TestTree) -> Check;

macro_rules! ensure {
    ($cond:expr, $($fmt:tt)+) => {
        if !$cond {
            return Err(format!($($fmt)+));
        }
    };
}

/// Taint bits that mean something went wrong in the kernel: D (oops, 1 << 7), W (warning,
/// 1 << 9), L (soft lockup, 1 << 14), B (bad page, 1 << 5), M (machine check, 1 << 4).
pub const BAD_TAINT: u64 = (1 << 4) | (1 << 5) | (1 << 7) | (1 << 9) | (1 << 14);

/// `/proc/sys/kernel/tainted`, if readable.
pub fn kernel_taint() -> Option<u64> {
    fs::read_to_string("/proc/sys/kernel/tainted").ok()?.trim().parse().ok()
}

/// Runs every check: [`check_dispatch`], [`check_bad_args`], [`check_fuzz`] (unless
/// `opts.fuzz` is zero), then whether the kernel picked up a warning, oops or lockup taint.
pub fn run_all(opts: &CheckOptions) -> CheckReport {
    let taint0 = kernel_taint();
    let mut report = check_dispatch();
    report.extend(check_bad_args());
    if !opts.fuzz.is_zero() {
        report.extend(check_fuzz(opts.fuzz, opts.seed));
    }
    report.record("kernel/taint", || taint_unchanged(taint0));
    report
}

fn taint_unchanged(before: Option<u64>) -> Check {
    match (before, kernel_taint()) {
        (Some(b), Some(a)) => {
            let new = (a & !b) & BAD_TAINT;
            ensure!(
                new == 0,
                "/proc/sys/kernel/tainted went from {b:#x} to {a:#x}: new bits {new:#x} (warning, oops or lockup; see dmesg)"
            );
            Ok(format!("no new warning/oops/lockup taint (tainted = {a:#x})"))
        }
        _ => Ok("/proc/sys/kernel/tainted not readable; not checked".into()),
    }
}

// ----------------------------------------------------------------------------------------------
// Helpers.

fn open_device() -> Result<Device, String> {
    Device::open().map_err(|e| e.to_string())
}

fn ctx<T>(what: &str, r: Result<T, KmodError>) -> Result<T, String> {
    r.map_err(|e| format!("{what}: {e}"))
}

fn expect_errno<T: fmt::Debug>(what: &str, r: Result<T, KmodError>, want: Errno) -> Result<(), String> {
    match r {
        Err(KmodError::Ioctl { errno, .. }) if errno == want => Ok(()),
        Err(e) => Err(format!("{what}: expected {want}, got error {e}")),
        Ok(v) => Err(format!("{what}: expected {want}, got success {v:?}")),
    }
}

fn load(kind: ProgKind) -> Result<KmodProgram, String> {
    KmodProgram::load_kind(kind).map_err(|e| e.to_string())
}

fn counters(n: usize) -> Result<Vec<KmodProgram>, String> {
    (0..n).map(|_| load(ProgKind::Counter)).collect()
}

fn counts(progs: &[KmodProgram]) -> Result<Vec<u64>, String> {
    progs.iter().map(|p| p.counter().map_err(|e| e.to_string())).collect()
}

/// Fires and checks the programs run and, with `progs`, which counters moved (by exactly
/// `deltas`).
fn fire_expect(dev: &Device, model: Model, hook: u32, progs: &[KmodProgram], deltas: &[u64]) -> Result<u32, String> {
    let before = counts(progs)?;
    let f = ctx(&format!("fire {model} hook {hook}"), dev.fire(model, hook))?;
    let after = counts(progs)?;
    let got: Vec<u64> = after.iter().zip(&before).map(|(a, b)| a - b).collect();
    let want: u64 = deltas.iter().sum();
    ensure!(
        u64::from(f.progs_run) == want,
        "fire {model} hook {hook}: {} programs ran, expected {want}",
        f.progs_run
    );
    ensure!(
        got == deltas,
        "fire {model} hook {hook}: per-program runs {got:?}, expected {deltas:?}"
    );
    ensure!(
        f.verdict == HB_KMOD_VERDICT_ALLOW,
        "fire {model} hook {hook}: verdict {}",
        f.verdict
    );
    Ok(f.progs_run)
}

fn stats(dev: &Device) -> Result<HbKmodStats, String> {
    ctx("stats", dev.stats())
}

/// Waits up to 5 s for `cond` (deferred frees run after an RCU grace period).
fn eventually(what: &str, mut cond: impl FnMut() -> Result<bool, String>) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        if cond()? {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(format!("{what}: still not true after 5 s"));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn gettid() -> u64 {
    // SAFETY: gettid has no arguments and cannot fail.
    unsafe { libc::syscall(libc::SYS_gettid) as u64 }
}

// ----------------------------------------------------------------------------------------------
// Cgroups.

/// The first cgroup2 mount point in a mountinfo text (proc(5) format, octal escapes decoded).
pub fn find_cgroup2_mount(mountinfo: &str) -> Option<PathBuf> {
    mountinfo.lines().find_map(|line| {
        let fields: Vec<&str> = line.split(' ').collect();
        let sep = fields.iter().position(|f| *f == "-")?;
        if sep < 5 || fields.get(sep + 1).copied() != Some("cgroup2") {
            return None;
        }
        Some(PathBuf::from(unescape_octal(fields[4])))
    })
}

fn unescape_octal(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 3 < b.len() && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c)) {
            let v = u32::from(b[i + 1] - b'0') * 64 + u32::from(b[i + 2] - b'0') * 8 + u32::from(b[i + 3] - b'0');
            if let Ok(byte) = u8::try_from(v) {
                out.push(byte);
                i += 4;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A private cgroup subtree `<mount>/hookbench-kmod-check-<pid>-<tag>`; dropping it moves the
/// process home, removes every cgroup it made and unmounts a cgroup2 it mounted.
struct TestTree {
    root: PathBuf,
    created: Vec<PathBuf>,
    home: PathBuf,
    mounted: Option<PathBuf>,
}

impl TestTree {
    fn new(tag: &str) -> Result<TestTree, String> {
        let mi = fs::read_to_string("/proc/self/mountinfo").map_err(|e| format!("reading mountinfo: {e}"))?;
        let (mount, mounted) = match find_cgroup2_mount(&mi) {
            Some(m) => (m, None),
            None => {
                let dir = std::env::temp_dir().join(format!("hookbench-kmod-cgroup2-{}", std::process::id()));
                fs::create_dir_all(&dir).map_err(|e| format!("mkdir {}: {e}", dir.display()))?;
                nix::mount::mount(
                    Some("none"),
                    &dir,
                    Some("cgroup2"),
                    nix::mount::MsFlags::empty(),
                    None::<&str>,
                )
                .map_err(|e| format!("no cgroup2 mount, and mounting one on {} failed: {e}", dir.display()))?;
                (dir.clone(), Some(dir))
            }
        };
        let own = fs::read_to_string("/proc/self/cgroup").map_err(|e| format!("reading /proc/self/cgroup: {e}"))?;
        let rel = own
            .lines()
            .find_map(|l| l.strip_prefix("0::"))
            .ok_or("/proc/self/cgroup has no cgroup v2 line (0::)")?;
        let home = mount.join(rel.trim_start_matches('/'));
        let root = mount.join(format!("hookbench-kmod-check-{}-{tag}", std::process::id()));
        let mut t = TestTree {
            root: root.clone(),
            created: Vec::new(),
            home,
            mounted,
        };
        fs::create_dir(&root).map_err(|e| format!("mkdir {}: {e} (run as root)", root.display()))?;
        t.created.push(root);
        Ok(t)
    }

    /// Creates `rel` (and any missing parents) under the subtree root.
    fn mkdir(&mut self, rel: &str) -> Result<PathBuf, String> {
        let mut p = self.root.clone();
        for part in rel.split('/') {
            p = p.join(part);
            if !p.exists() {
                fs::create_dir(&p).map_err(|e| format!("mkdir {}: {e}", p.display()))?;
                self.created.push(p.clone());
            }
        }
        Ok(p)
    }

    fn rmdir(&mut self, path: &Path) -> Result<(), String> {
        fs::remove_dir(path).map_err(|e| format!("rmdir {}: {e}", path.display()))?;
        self.created.retain(|c| c != path);
        Ok(())
    }

    fn open(path: &Path) -> Result<OwnedFd, String> {
        fs::File::open(path)
            .map(OwnedFd::from)
            .map_err(|e| format!("open {}: {e}", path.display()))
    }

    /// Moves this process into `path`.
    fn enter(path: &Path) -> Result<(), String> {
        let procs = path.join("cgroup.procs");
        fs::write(&procs, std::process::id().to_string()).map_err(|e| format!("write {}: {e}", procs.display()))
    }

    fn leave(&self) -> Result<(), String> {
        TestTree::enter(&self.home)
    }

    fn ino(path: &Path) -> Result<u64, String> {
        fs::metadata(path)
            .map(|m| m.ino())
            .map_err(|e| format!("stat {}: {e}", path.display()))
    }
}

impl Drop for TestTree {
    fn drop(&mut self) {
        let _ = self.leave();
        for p in self.created.iter().rev() {
            let _ = fs::remove_dir(p);
        }
        if let Some(m) = &self.mounted {
            let _ = nix::mount::umount(m);
            let _ = fs::remove_dir(m);
        }
    }
}

/// A cgroup directory open for attach/detach.
struct Cg {
    path: PathBuf,
    fd: OwnedFd,
}

impl Cg {
    fn make(tree: &mut TestTree, rel: &str) -> Result<Cg, String> {
        let path = tree.mkdir(rel)?;
        let fd = TestTree::open(&path)?;
        Ok(Cg { path, fd })
    }

    fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    fn enter(&self) -> Result<(), String> {
        TestTree::enter(&self.path)
    }
}

fn attach(dev: &Device, cg: &Cg, prog: ProgRef<'_>, hook: u32, flags: AttachFlags) -> Result<(u32, u32), String> {
    let u = ctx(
        &format!("attach at {} hook {hook} {flags:?}", cg.path.display()),
        dev.attach_cgroup(cg.fd(), prog, hook, flags),
    )?;
    Ok((u.recomputed, u.count))
}

fn detach(dev: &Device, cg: &Cg, prog: ProgRef<'_>, hook: u32) -> Result<(u32, u32), String> {
    let u = ctx(
        &format!("detach at {} hook {hook}", cg.path.display()),
        dev.detach_cgroup(cg.fd(), prog, hook),
    )?;
    Ok((u.recomputed, u.count))
}

// ----------------------------------------------------------------------------------------------
// Forked children that fire on request (async-signal-safe: read, ioctl, write, _exit only).

struct Firer {
    pid: Pid,
    cmd: OwnedFd,
    reply: OwnedFd,
    done: bool,
}

impl Firer {
    /// Forks a child of the calling task that shares the session (it inherits the fd).
    fn spawn(dev: &Device, model: Model, hook: u32) -> Result<Firer, String> {
        let (cmd_r, cmd_w) = pipe2(OFlag::O_CLOEXEC).map_err(|e| format!("pipe: {e}"))?;
        let (rep_r, rep_w) = pipe2(OFlag::O_CLOEXEC).map_err(|e| format!("pipe: {e}"))?;
        let template = HbKmodFire {
            abi_version: HB_KMOD_ABI_VERSION,
            model: model.raw(),
            hook,
            ..Default::default()
        };
        let dev_fd = dev.as_fd().as_raw_fd();
        let (cr, rw) = (cmd_r.as_raw_fd(), rep_w.as_raw_fd());
        // SAFETY: the child only calls async-signal-safe functions (read, ioctl, write, _exit).
        match unsafe { fork() }.map_err(|e| format!("fork: {e}"))? {
            ForkResult::Child => {
                let mut byte = 0u8;
                loop {
                    // SAFETY: reading one byte into a local.
                    let n = unsafe { libc::read(cr, (&mut byte as *mut u8).cast(), 1) };
                    if n != 1 || byte != b'f' {
                        // SAFETY: _exit is always safe.
                        unsafe { libc::_exit(0) };
                    }
                    let mut f = template;
                    // SAFETY: `f` is a live HbKmodFire of the size HB_KMOD_IOC_FIRE encodes.
                    let rc = unsafe { libc::ioctl(dev_fd, HB_KMOD_IOC_FIRE as _, &mut f as *mut HbKmodFire) };
                    let errno = if rc < 0 { Errno::last_raw() as u32 } else { 0 };
                    let mut out = [0u8; 8];
                    out[..4].copy_from_slice(&f.progs_run.to_ne_bytes());
                    out[4..].copy_from_slice(&errno.to_ne_bytes());
                    // SAFETY: writing 8 bytes from a local.
                    unsafe { libc::write(rw, out.as_ptr().cast(), 8) };
                }
            }
            ForkResult::Parent { child } => {
                drop(cmd_r);
                drop(rep_w);
                Ok(Firer {
                    pid: child,
                    cmd: cmd_w,
                    reply: rep_r,
                    done: false,
                })
            }
        }
    }

    /// Has the child fire once; returns the programs it ran.
    fn fire(&self) -> Result<u32, String> {
        nix::unistd::write(&self.cmd, b"f").map_err(|e| format!("writing to the child: {e}"))?;
        let mut buf = [0u8; 8];
        let mut got = 0;
        while got < 8 {
            let n = nix::unistd::read(&self.reply, &mut buf[got..]).map_err(|e| format!("reading the child: {e}"))?;
            ensure!(n > 0, "the child {} exited early", self.pid);
            got += n;
        }
        let ran = u32::from_ne_bytes([buf[0], buf[1], buf[2], buf[3]]);
        let errno = u32::from_ne_bytes([buf[4], buf[5], buf[6], buf[7]]);
        ensure!(errno == 0, "the child's FIRE failed: errno {errno}");
        Ok(ran)
    }

    /// Tells the child to exit and reaps it.
    fn finish(mut self) -> Result<(), String> {
        let _ = nix::unistd::write(&self.cmd, b"q");
        self.done = true;
        waitpid(self.pid, None).map_err(|e| format!("waitpid {}: {e}", self.pid))?;
        Ok(())
    }
}

impl Drop for Firer {
    fn drop(&mut self) {
        if !self.done {
            let _ = kill(self.pid, Signal::SIGKILL);
            let _ = waitpid(self.pid, None);
        }
    }
}

// ----------------------------------------------------------------------------------------------
// (a) Dispatch.

/// Every model dispatches exactly the expected programs (see the module docs).
pub fn check_dispatch() -> CheckReport {
    let mut report = CheckReport::default();
    let dev = match open_device() {
        Ok(d) => d,
        Err(e) => {
            report.record("dispatch/open", || Err(e));
            return report;
        }
    };
    report.record("dispatch/version", || check_version(&dev));
    report.record("dispatch/baseline", || check_baseline(&dev));
    report.record("dispatch/global-filter", || check_global(&dev));
    for model in [Model::TaskChain, Model::TaskHookArray] {
        report.record(&format!("dispatch/{model}"), || check_task_model(&dev, model));
        report.record(&format!("dispatch/{model}-limit"), || check_task_limit(&dev, model));
    }
    let mut tree = match TestTree::new("dispatch") {
        Ok(t) => t,
        Err(e) => {
            report.record("dispatch/cgroup-tree", || Err(e));
            return report;
        }
    };
    let cgroup_checks: [(&str, CgroupCheck); 9] = [
        ("multi-accumulates-own-first", cg_multi),
        ("none-parent-blocks-and-replaces", cg_none),
        ("override-child-replaces-parent", cg_override),
        ("mixed-and-detach-restores", cg_mixed),
        ("cap-and-duplicate", cg_cap),
        ("recompute-whole-subtree", cg_recompute),
        ("removed-cgroup", cg_removed),
        ("context", cg_context),
        ("one-program-every-model", cg_every_model),
    ];
    for (name, f) in cgroup_checks {
        report.record(&format!("dispatch/cgroup-effective/{name}"), || {
            let r = f(&dev, &mut tree);
            let back = tree.leave();
            let reset = ctx("reset", dev.reset());
            let out = r?;
            back?;
            reset?;
            Ok(out)
        });
    }
    drop(tree);
    report.record("dispatch/run-stops-on-kill", check_run_killed);
    report.record("dispatch/sessions", || check_sessions(&dev));
    report.record("dispatch/references-dropped", || check_references(&dev));
    report.record("dispatch/reset-frees-all", || check_reset_frees(&dev));
    report
}

fn check_version(dev: &Device) -> Check {
    let v = ctx("version", dev.version())?;
    let want = HbKmodVersion {
        abi_version: HB_KMOD_ABI_VERSION,
        models: HB_KMOD_MODELS,
        max_hooks: HB_KMOD_MAX_HOOKS,
        max_progs: HB_KMOD_MAX_PROGS,
        max_task_progs: HB_KMOD_MAX_TASK_PROGS,
        max_batch: HB_KMOD_MAX_BATCH,
        max_samples: HB_KMOD_MAX_SAMPLES,
        ctx_args: HB_KMOD_CTX_ARGS,
        max_fires: HB_KMOD_MAX_FIRES,
        max_batch_work: HB_KMOD_MAX_BATCH_WORK,
    };
    ensure!(v == want, "VERSION returned {v:?}, expected {want:?}");
    Ok(format!("ABI {} with the header's limits", v.abi_version))
}

fn check_baseline(dev: &Device) -> Check {
    ctx("reset", dev.reset())?;
    for model in Model::ALL {
        fire_expect(dev, model, 0, &[], &[])?;
        let run = ctx(&format!("run {model}"), dev.run(model, 0, 4, 4))?;
        ensure!(
            run.samples_ns.len() == 4 && run.summary.progs_per_fire == 0 && run.summary.progs_run == 0,
            "{model}: RUN with nothing attached gave {:?}",
            run.summary
        );
        ensure!(
            run.summary.verdict == HB_KMOD_VERDICT_ALLOW,
            "{model}: verdict {}",
            run.summary.verdict
        );
        ensure!(
            run.summary.total_ns == run.samples_ns.iter().sum::<u64>(),
            "{model}: total_ns {} is not the sum of the samples",
            run.summary.total_ns
        );
    }
    Ok("no programs: every model runs 0 programs, verdict allow, RUN returns 4 samples".into())
}

fn check_global(dev: &Device) -> Check {
    ctx("reset", dev.reset())?;
    let p = counters(3)?;
    let g = Model::GlobalFilter;
    ensure!(
        ctx("attach", dev.attach_global(p[0].prog_ref(), 0))?.count == 1,
        "count after the first attach"
    );
    ensure!(
        ctx("attach", dev.attach_global(p[1].prog_ref(), 0))?.count == 2,
        "count after the second attach"
    );
    ensure!(
        ctx("attach", dev.attach_global(ProgRef::NullBody, 0))?.count == 3,
        "count after the null body"
    );
    ensure!(
        ctx("attach", dev.attach_global(p[2].prog_ref(), 5))?.count == 1,
        "count on hook 5"
    );
    let before = counts(&p)?;
    let f = ctx("fire", dev.fire(g, 0))?;
    let d: Vec<u64> = counts(&p)?.iter().zip(&before).map(|(a, b)| a - b).collect();
    ensure!(
        f.progs_run == 3 && d == [1, 1, 0],
        "hook 0: ran {} with runs {d:?}",
        f.progs_run
    );
    fire_expect(dev, g, 5, &p, &[0, 0, 1])?;
    expect_errno(
        "same program twice",
        dev.attach_global(p[0].prog_ref(), 0),
        Errno::EINVAL,
    )?;
    ensure!(
        ctx("detach", dev.detach_global(p[1].prog_ref(), 0))?.count == 2,
        "count after detach"
    );
    expect_errno("detach again", dev.detach_global(p[1].prog_ref(), 0), Errno::ENOENT)?;
    ensure!(
        ctx("detach null", dev.detach_global(ProgRef::NullBody, 0))?.count == 1,
        "count after null detach"
    );
    fire_expect(dev, g, 0, &p, &[1, 0, 0])?;
    let before = counts(&p)?;
    let run = ctx("run", dev.run(g, 0, 8, 3))?;
    let d0 = counts(&p)?[0] - before[0];
    ensure!(
        run.summary.progs_per_fire == 1 && run.summary.progs_run == 24 && d0 == 25,
        "RUN: {:?}, program ran {d0} times (expected 24 + 1 untimed)",
        run.summary
    );
    for i in 0..HB_KMOD_MAX_PROGS {
        ctx(
            &format!("null body {i} on hook 7"),
            dev.attach_global(ProgRef::NullBody, 7),
        )?;
    }
    expect_errno("65th program", dev.attach_global(ProgRef::NullBody, 7), Errno::E2BIG)?;
    let f = ctx("fire hook 7", dev.fire(g, 7))?;
    ensure!(f.progs_run == 64, "hook 7 ran {}", f.progs_run);
    Ok("lists per hook, duplicates refused, detach, RUN counts, 64-program cap".into())
}

fn check_task_model(dev: &Device, model: Model) -> Check {
    ctx("reset", dev.reset())?;
    let chain = model == Model::TaskChain;
    let p = counters(4)?;
    let s0 = stats(dev)?;
    let install = |i: usize, hook: u32| ctx(&format!("install {i}"), dev.install_task(model, p[i].prog_ref(), hook));
    let want = if chain { [1, 2, 3] } else { [1, 1, 2] };
    for (k, (i, hook)) in [(0usize, 0u32), (1, 1), (2, 0)].into_iter().enumerate() {
        let u = install(i, hook)?;
        ensure!(
            u.count == want[k],
            "install {i}: count {} expected {}",
            u.count,
            want[k]
        );
    }
    fire_expect(dev, model, 0, &p, &[1, 0, 1, 0])?;
    fire_expect(dev, model, 1, &p, &[0, 1, 0, 0])?;
    fire_expect(dev, model, 2, &p, &[0, 0, 0, 0])?;
    let s = stats(dev)?;
    ensure!(s.task_entries == 1, "task entries {}", s.task_entries);
    if chain {
        ensure!(s.chain_nodes == 3, "chain nodes {}", s.chain_nodes);
    } else {
        ensure!(
            s.task_arrays == 1,
            "array sets {} (the replaced ones must be freed)",
            s.task_arrays
        );
    }
    expect_errno(
        "detach a task's program",
        detach_task(dev, model, &p[0]),
        Errno::EOPNOTSUPP,
    )?;

    let child = Firer::spawn(dev, model, 0)?;
    let s = stats(dev)?;
    ensure!(
        s.task_entries == 2 && s.forks_shared == s0.forks_shared + 1,
        "after fork: {} task entries, {} forks shared",
        s.task_entries,
        s.forks_shared
    );
    ensure!(
        if chain { s.chain_nodes == 3 } else { s.task_arrays == 1 },
        "fork copied state instead of sharing it: {s:?}"
    );
    let before = counts(&p)?;
    let ran = child.fire()?;
    let d: Vec<u64> = counts(&p)?.iter().zip(&before).map(|(a, b)| a - b).collect();
    ensure!(
        ran == 2 && d == [1, 0, 1, 0],
        "the child inherited the wrong programs: ran {ran}, runs {d:?}"
    );
    let u = install(3, 0)?;
    ensure!(
        u.count == if chain { 4 } else { 3 },
        "install in the parent: count {}",
        u.count
    );
    fire_expect(dev, model, 0, &p, &[1, 0, 1, 1])?;
    let before = counts(&p)?;
    let ran = child.fire()?;
    let d: Vec<u64> = counts(&p)?.iter().zip(&before).map(|(a, b)| a - b).collect();
    ensure!(
        ran == 2 && d == [1, 0, 1, 0],
        "a later install in the parent reached the child: ran {ran}, runs {d:?}"
    );
    let s = stats(dev)?;
    ensure!(
        if chain { s.chain_nodes == 4 } else { s.task_arrays == 2 },
        "after the parent's install: {s:?}"
    );
    child.finish()?;
    let s = stats(dev)?;
    ensure!(
        s.task_entries == 1 && s.exits_released == s0.exits_released + 1,
        "the child's exit did not release its state: {s:?}"
    );
    ensure!(
        if chain { s.chain_nodes == 4 } else { s.task_arrays == 1 },
        "after the child's exit: {s:?}"
    );
    ensure!(s.forks_nomem == 0, "{} forks could not share state", s.forks_nomem);
    Ok(
        "install counts, per-hook dispatch, fork shares (no copy), later installs stay in the parent, exit releases"
            .into(),
    )
}

fn detach_task(dev: &Device, model: Model, p: &KmodProgram) -> Result<(), KmodError> {
    let mut a = HbKmodAttach {
        abi_version: HB_KMOD_ABI_VERSION,
        model: model.raw(),
        prog_fd: p.raw_fd(),
        cgroup_fd: HB_KMOD_NO_CGROUP,
        ..Default::default()
    };
    dev.ioctl(HB_KMOD_IOC_DETACH, &mut a).map_err(|errno| KmodError::Ioctl {
        op: "detach",
        errno,
        hint: "",
    })
}

fn check_task_limit(dev: &Device, model: Model) -> Check {
    ctx("reset", dev.reset())?;
    for i in 0..HB_KMOD_MAX_TASK_PROGS {
        ctx(&format!("install {i}"), dev.install_task(model, ProgRef::NullBody, 2))?;
    }
    expect_errno(
        "install past HB_KMOD_MAX_TASK_PROGS",
        dev.install_task(model, ProgRef::NullBody, 2),
        Errno::E2BIG,
    )?;
    let f = ctx("fire", dev.fire(model, 2))?;
    ensure!(f.progs_run == HB_KMOD_MAX_TASK_PROGS, "fire ran {}", f.progs_run);
    // A batch's work is bounded: 4096 programs per fire allow at most 1024 fires per batch.
    let max_batch = (HB_KMOD_MAX_BATCH_WORK / u64::from(HB_KMOD_MAX_TASK_PROGS)) as u32;
    expect_errno(
        "RUN over HB_KMOD_MAX_BATCH_WORK",
        dev.run(model, 2, max_batch + 1, 1),
        Errno::E2BIG,
    )?;
    let run = ctx("RUN", dev.run(model, 2, 2, 2))?;
    ensure!(
        run.summary.progs_per_fire == HB_KMOD_MAX_TASK_PROGS && run.summary.progs_run == 4 * 4096,
        "RUN: {:?}",
        run.summary
    );
    // task-chain walks every node: a chain of 4096 nodes for another hook bounds the batch too.
    if model == Model::TaskChain {
        expect_errno(
            "RUN on an empty hook of a long chain",
            dev.run(model, 3, max_batch + 1, 1),
            Errno::E2BIG,
        )?;
    }
    ctx("reset", dev.reset())?;
    Ok(format!("{HB_KMOD_MAX_TASK_PROGS} installs, then E2BIG"))
}

fn cg_multi(dev: &Device, tree: &mut TestTree) -> Check {
    let r = Cg::make(tree, "multi")?;
    let c1 = Cg::make(tree, "multi/c1")?;
    let c2 = Cg::make(tree, "multi/c1/c2")?;
    let c3 = Cg::make(tree, "multi/c1/c2/c3")?;
    let p = counters(4)?;
    let m = AttachFlags::AllowMulti;
    ensure!(attach(dev, &r, p[0].prog_ref(), 0, m)? == (4, 1), "attach a at the top");
    ensure!(attach(dev, &c1, p[1].prog_ref(), 0, m)? == (3, 2), "attach b at c1");
    ensure!(attach(dev, &c1, p[2].prog_ref(), 0, m)? == (3, 3), "attach c at c1");
    ensure!(attach(dev, &c2, p[3].prog_ref(), 0, m)? == (2, 4), "attach d at c2");
    let cg = Model::CgroupEffective;
    c3.enter()?;
    fire_expect(dev, cg, 0, &p, &[1, 1, 1, 1])?;
    fire_expect(dev, cg, 1, &p, &[0, 0, 0, 0])?;
    let f = ctx("fire", dev.fire(cg, 0))?;
    let ino = TestTree::ino(&c3.path)?;
    ensure!(
        f.cgroup_id == ino,
        "the module saw cgroup id {}, the cgroup's inode is {ino}",
        f.cgroup_id
    );
    let run = ctx("run", dev.run(cg, 0, 16, 4))?;
    ensure!(
        run.summary.progs_per_fire == 4 && run.summary.progs_run == 4 * 16 * 4,
        "RUN in c3: {:?}",
        run.summary
    );
    c1.enter()?;
    fire_expect(dev, cg, 0, &p, &[1, 1, 1, 0])?;
    r.enter()?;
    fire_expect(dev, cg, 0, &p, &[1, 0, 0, 0])?;
    Ok("own programs then the ancestors' under ALLOW_MULTI; recompute counts 4/3/3/2".into())
}

fn cg_none(dev: &Device, tree: &mut TestTree) -> Check {
    let x = Cg::make(tree, "none")?;
    let _x1 = Cg::make(tree, "none/x1")?;
    let x2 = Cg::make(tree, "none/x1/x2")?;
    let p = counters(3)?;
    attach(dev, &x, p[0].prog_ref(), 0, AttachFlags::None)?;
    expect_errno(
        "MULTI attach below a NONE program",
        dev.attach_cgroup(x2.fd(), p[1].prog_ref(), 0, AttachFlags::AllowMulti),
        Errno::EPERM,
    )?;
    let cg = Model::CgroupEffective;
    x2.enter()?;
    fire_expect(dev, cg, 0, &p, &[1, 0, 0])?;
    ensure!(
        attach(dev, &x, p[2].prog_ref(), 0, AttachFlags::None)? == (3, 1),
        "a NONE attach replaces the program"
    );
    fire_expect(dev, cg, 0, &p, &[0, 0, 1])?;
    expect_errno(
        "MULTI on top of NONE",
        dev.attach_cgroup(x.fd(), p[1].prog_ref(), 0, AttachFlags::AllowMulti),
        Errno::EPERM,
    )?;
    let mut a = HbKmodAttach {
        abi_version: HB_KMOD_ABI_VERSION,
        model: HB_KMOD_MODEL_CGROUP_EFFECTIVE,
        prog_fd: p[1].raw_fd(),
        cgroup_fd: x.fd().as_raw_fd(),
        flags: HB_KMOD_F_ALLOW_OVERRIDE | HB_KMOD_F_ALLOW_MULTI,
        ..Default::default()
    };
    let r = dev.ioctl(HB_KMOD_IOC_ATTACH, &mut a);
    ensure!(r == Err(Errno::EINVAL), "OVERRIDE|MULTI gave {r:?}");
    Ok("NONE blocks descendants (EPERM), NONE attach replaces, flags cannot change".into())
}

fn cg_override(dev: &Device, tree: &mut TestTree) -> Check {
    let y = Cg::make(tree, "override")?;
    let y1 = Cg::make(tree, "override/y1")?;
    let y2 = Cg::make(tree, "override/y1/y2")?;
    let ys = Cg::make(tree, "override/ys")?;
    let p = counters(3)?;
    let o = AttachFlags::AllowOverride;
    attach(dev, &y, p[0].prog_ref(), 0, o)?;
    ensure!(
        attach(dev, &y1, p[1].prog_ref(), 0, o)?.0 == 2,
        "OVERRIDE at y1 recomputes y1 and y2"
    );
    let cg = Model::CgroupEffective;
    y1.enter()?;
    fire_expect(dev, cg, 0, &p, &[0, 1, 0])?;
    y2.enter()?;
    fire_expect(dev, cg, 0, &p, &[0, 1, 0])?;
    ys.enter()?;
    fire_expect(dev, cg, 0, &p, &[1, 0, 0])?;
    attach(dev, &y2, p[2].prog_ref(), 0, AttachFlags::None)?;
    y2.enter()?;
    fire_expect(dev, cg, 0, &p, &[0, 0, 1])?;
    // A cgroup made after the attaches inherits at its first fire (the kernel: at mkdir).
    let y3 = Cg::make(tree, "override/y1/y2/y3")?;
    y3.enter()?;
    fire_expect(dev, cg, 0, &p, &[0, 0, 1])?;
    expect_errno(
        "attach below a NONE program",
        dev.attach_cgroup(y3.fd(), ProgRef::NullBody, 0, AttachFlags::AllowMulti),
        Errno::EPERM,
    )?;
    Ok("OVERRIDE replaces the parent's program below; siblings keep it; new cgroups inherit".into())
}

fn cg_mixed(dev: &Device, tree: &mut TestTree) -> Check {
    let z = Cg::make(tree, "mixed")?;
    let z1 = Cg::make(tree, "mixed/z1")?;
    let z2 = Cg::make(tree, "mixed/z1/z2")?;
    let z3 = Cg::make(tree, "mixed/z1/z3")?;
    let p = counters(4)?;
    let m = AttachFlags::AllowMulti;
    attach(dev, &z, p[0].prog_ref(), 0, AttachFlags::AllowOverride)?;
    attach(dev, &z1, p[1].prog_ref(), 0, m)?;
    attach(dev, &z1, p[2].prog_ref(), 0, m)?;
    let cg = Model::CgroupEffective;
    let expect_all = |want: [&[u64]; 4]| -> Result<(), String> {
        for (c, w) in [&z, &z1, &z2, &z3].into_iter().zip(want) {
            c.enter()?;
            fire_expect(dev, cg, 0, &p, w).map_err(|e| format!("in {}: {e}", c.path.display()))?;
        }
        Ok(())
    };
    let before: [&[u64]; 4] = [&[1, 0, 0, 0], &[0, 1, 1, 0], &[0, 1, 1, 0], &[0, 1, 1, 0]];
    expect_all(before)?;
    ensure!(attach(dev, &z2, p[3].prog_ref(), 0, m)? == (1, 3), "attach at z2");
    expect_all([&[1, 0, 0, 0], &[0, 1, 1, 0], &[0, 1, 1, 1], &[0, 1, 1, 0]])?;
    ensure!(detach(dev, &z2, p[3].prog_ref(), 0)? == (1, 2), "detach at z2");
    expect_all(before)?;
    detach(dev, &z1, p[1].prog_ref(), 0)?;
    ensure!(
        detach(dev, &z1, p[2].prog_ref(), 0)?.0 == 3,
        "the last detach at z1 recomputes 3"
    );
    z2.enter()?;
    fire_expect(dev, cg, 0, &p, &[1, 0, 0, 0])?;
    expect_errno(
        "detach again",
        dev.detach_cgroup(z1.fd(), p[1].prog_ref(), 0),
        Errno::ENOENT,
    )?;
    detach(dev, &z, p[0].prog_ref(), 0)?;
    fire_expect(dev, cg, 0, &p, &[0, 0, 0, 0])?;
    Ok("a non-MULTI ancestor is left out once something was collected; detach restores exactly".into())
}

fn cg_cap(dev: &Device, tree: &mut TestTree) -> Check {
    let w1 = Cg::make(tree, "cap/w1")?;
    let w2 = Cg::make(tree, "cap/w2")?;
    let p = counters(2)?;
    let m = AttachFlags::AllowMulti;
    for _ in 0..HB_KMOD_MAX_PROGS {
        attach(dev, &w1, ProgRef::NullBody, 0, m)?;
    }
    expect_errno(
        "65th program",
        dev.attach_cgroup(w1.fd(), ProgRef::NullBody, 0, m),
        Errno::E2BIG,
    )?;
    ensure!(detach(dev, &w1, ProgRef::NullBody, 0)?.1 == 63, "detach one null body");
    ensure!(
        attach(dev, &w1, p[0].prog_ref(), 0, m)?.1 == 64,
        "attach into the freed slot"
    );
    expect_errno(
        "over the cap again",
        dev.attach_cgroup(w1.fd(), p[1].prog_ref(), 0, m),
        Errno::E2BIG,
    )?;
    attach(dev, &w2, p[0].prog_ref(), 0, m)?;
    expect_errno(
        "same program twice",
        dev.attach_cgroup(w2.fd(), p[0].prog_ref(), 0, m),
        Errno::EINVAL,
    )?;
    w1.enter()?;
    let f = ctx("fire", dev.fire(Model::CgroupEffective, 0))?;
    ensure!(f.progs_run == 64, "ran {}", f.progs_run);
    Ok("64 programs per cgroup and hook (E2BIG), the same program twice is EINVAL".into())
}

fn cg_recompute(dev: &Device, tree: &mut TestTree) -> Check {
    let v = Cg::make(tree, "re")?;
    let a = Cg::make(tree, "re/a")?;
    let _b = Cg::make(tree, "re/a/b")?;
    let d = Cg::make(tree, "re/a/b/d")?;
    let _c = Cg::make(tree, "re/a/c")?;
    let _e = Cg::make(tree, "re/e")?;
    let m = AttachFlags::AllowMulti;
    ensure!(
        attach(dev, &a, ProgRef::NullBody, 0, m)?.0 == 4,
        "attach at a recomputes a, b, d, c"
    );
    ensure!(
        attach(dev, &v, ProgRef::NullBody, 0, m)?.0 == 6,
        "attach at the top recomputes 6"
    );
    d.enter()?;
    let f = ctx("fire", dev.fire(Model::CgroupEffective, 0))?;
    ensure!(f.progs_run == 2, "ran {}", f.progs_run);
    let s = stats(dev)?;
    ensure!(s.cgroup_entries >= 6, "cgroup entries {}", s.cgroup_entries);
    Ok(format!("subtree sizes 4 and 6; {} cgroup entries", s.cgroup_entries))
}

fn cg_removed(dev: &Device, tree: &mut TestTree) -> Check {
    let q = Cg::make(tree, "removed")?;
    let p = counters(1)?;
    attach(dev, &q, p[0].prog_ref(), 0, AttachFlags::AllowMulti)?;
    let path = q.path.clone();
    tree.rmdir(&path)?;
    expect_errno(
        "detach at a removed cgroup",
        dev.detach_cgroup(q.fd(), p[0].prog_ref(), 0),
        Errno::ENOENT,
    )?;
    expect_errno(
        "attach at a removed cgroup",
        dev.attach_cgroup(q.fd(), ProgRef::NullBody, 0, AttachFlags::AllowMulti),
        Errno::ENOENT,
    )?;
    Ok("rmdir works with programs attached; the removed cgroup gives ENOENT; RESET frees it".into())
}

fn cg_context(dev: &Device, tree: &mut TestTree) -> Check {
    let r = Cg::make(tree, "ctx")?;
    let rec = load(ProgKind::CtxRecorder)?;
    attach(dev, &r, rec.prog_ref(), 3, AttachFlags::AllowMulti)?;
    r.enter()?;
    let f = ctx("fire", dev.fire(Model::CgroupEffective, 3))?;
    let ino = TestTree::ino(&r.path)?;
    let got = ctx("recorded context", rec.recorded_ctx())?;
    let want = [3, ino, gettid(), u64::from(HB_KMOD_MODEL_CGROUP_EFFECTIVE)];
    ensure!(f.progs_run == 1 && got == want, "context {got:?}, expected {want:?}");
    ctx("attach", dev.attach_global(rec.prog_ref(), 4))?;
    ctx("fire", dev.fire(Model::GlobalFilter, 4))?;
    let got = ctx("recorded context", rec.recorded_ctx())?;
    let want = [4, ino, gettid(), u64::from(HB_KMOD_MODEL_GLOBAL_FILTER)];
    ensure!(got == want, "context {got:?}, expected {want:?}");
    ensure!(
        ctx("counter", rec.counter())? == 2,
        "the recorder ran {} times",
        ctx("c", rec.counter())?
    );
    Ok("ctx = {hook, cgroup id (= inode), tid, model}".into())
}

fn cg_every_model(dev: &Device, tree: &mut TestTree) -> Check {
    let r = Cg::make(tree, "every")?;
    let p = counters(1)?;
    ctx("global", dev.attach_global(p[0].prog_ref(), 9))?;
    ctx("chain", dev.install_task(Model::TaskChain, p[0].prog_ref(), 9))?;
    ctx("arrays", dev.install_task(Model::TaskHookArray, p[0].prog_ref(), 9))?;
    attach(dev, &r, p[0].prog_ref(), 9, AttachFlags::AllowMulti)?;
    r.enter()?;
    for model in Model::ALL {
        fire_expect(dev, model, 9, &p, &[1])?;
    }
    let s = stats(dev)?;
    ensure!(s.attachments == 2, "attachments {}", s.attachments);
    Ok("the same program attached in all four models runs once per fire in each".into())
}

/// A RUN of 2^28 fires in a child (its own session) stops within seconds of SIGKILL: the loop
/// checks for signals between batches, and the session is freed when the child dies.
fn check_run_killed() -> Check {
    let mut samples = vec![0u64; 4096];
    let mut run = HbKmodRun {
        abi_version: HB_KMOD_ABI_VERSION,
        model: HB_KMOD_MODEL_GLOBAL_FILTER,
        hook: 0,
        batch: HB_KMOD_MAX_BATCH,
        samples: 4096,
        samples_addr: samples.as_mut_ptr() as u64,
        ..Default::default()
    };
    let path = c"/dev/hookbench";
    // SAFETY: the child only calls open, ioctl and _exit on memory it already has.
    let child = match unsafe { fork() }.map_err(|e| format!("fork: {e}"))? {
        ForkResult::Child => {
            // SAFETY: a NUL-terminated path; `run` and `samples` are live in the child's copy.
            unsafe {
                let fd = libc::open(path.as_ptr(), libc::O_RDWR | libc::O_CLOEXEC);
                if fd >= 0 {
                    let mut n = 0u32;
                    while n < 1000 {
                        libc::ioctl(fd, HB_KMOD_IOC_RUN as _, &mut run as *mut HbKmodRun);
                        n += 1;
                    }
                }
                libc::_exit(0)
            }
        }
        ForkResult::Parent { child } => child,
    };
    std::thread::sleep(Duration::from_millis(300));
    let sent = Instant::now();
    kill(child, Signal::SIGKILL).map_err(|e| format!("kill: {e}"))?;
    let deadline = sent + Duration::from_secs(20);
    loop {
        match waitpid(child, Some(WaitPidFlag::WNOHANG)) {
            Ok(nix::sys::wait::WaitStatus::StillAlive) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(10))
            }
            Ok(nix::sys::wait::WaitStatus::Signaled(_, Signal::SIGKILL, _)) => break,
            Ok(other) => {
                let _ = waitpid(child, None);
                return Err(format!("the child running RUN: {other:?} 20 s after SIGKILL"));
            }
            Err(e) => return Err(format!("waitpid: {e}")),
        }
    }
    drop(samples);
    Ok(format!(
        "killed during RUN, gone after {:.0} ms",
        sent.elapsed().as_secs_f64() * 1e3
    ))
}

fn check_sessions(dev: &Device) -> Check {
    ctx("reset", dev.reset())?;
    let d2 = open_device()?;
    ctx("attach in the second session", d2.attach_global(ProgRef::NullBody, 0))?;
    ctx(
        "install in the second session",
        d2.install_task(Model::TaskChain, ProgRef::NullBody, 0),
    )?;
    ensure!(
        ctx("fire", dev.fire(Model::GlobalFilter, 0))?.progs_run == 0,
        "sessions share state"
    );
    ensure!(
        ctx("fire", dev.fire(Model::TaskChain, 0))?.progs_run == 0,
        "sessions share task state"
    );
    ensure!(
        ctx("fire", d2.fire(Model::GlobalFilter, 0))?.progs_run == 1,
        "second session lost its program"
    );
    ensure!(
        ctx("fire", d2.fire(Model::TaskChain, 0))?.progs_run == 1,
        "second session lost its task program"
    );
    let s2 = stats(&d2)?;
    ensure!(
        s2.chain_nodes == 1 && s2.attachments == 1,
        "second session stats {s2:?}"
    );
    drop(d2);
    let d3 = open_device()?;
    ensure!(
        ctx("fire", d3.fire(Model::GlobalFilter, 0))?.progs_run == 0,
        "a new session is not empty"
    );
    Ok("each open file is its own session; closing it frees it".into())
}

/// The module drops its program references on RESET and on close (the kernel then frees the
/// programs).
fn check_references(dev: &Device) -> Check {
    let mut out = Vec::new();
    for via_close in [false, true] {
        if !via_close {
            ctx("reset", dev.reset())?;
        }
        let d2 = if via_close { Some(open_device()?) } else { None };
        let sess = d2.as_ref().unwrap_or(dev);
        let p = load(ProgKind::Counter)?;
        let id = p.id().ok_or("no program id")?;
        let tree_cg = TestTree::new(if via_close { "refs-close" } else { "refs-reset" })?;
        let cgfd = TestTree::open(&tree_cg.root)?;
        ctx("global", sess.attach_global(p.prog_ref(), 1))?;
        ctx("chain", sess.install_task(Model::TaskChain, p.prog_ref(), 1))?;
        ctx("arrays", sess.install_task(Model::TaskHookArray, p.prog_ref(), 1))?;
        ctx(
            "cgroup",
            sess.attach_cgroup(cgfd.as_fd(), p.prog_ref(), 1, AttachFlags::AllowMulti),
        )?;
        drop(p);
        std::thread::sleep(Duration::from_millis(50));
        ensure!(
            hookbench_bpf::prog_exists(id),
            "program {id} freed while still attached"
        );
        if d2.is_some() {
            drop(d2);
        } else {
            ctx("reset", dev.reset())?;
        }
        drop(cgfd);
        drop(tree_cg);
        eventually(&format!("program {id} freed"), || Ok(!hookbench_bpf::prog_exists(id)))?;
        out.push(if via_close { "close" } else { "RESET" });
    }
    Ok(format!("program references dropped on {}", out.join(" and ")))
}

fn check_reset_frees(dev: &Device) -> Check {
    ctx("reset", dev.reset())?;
    let s = stats(dev)?;
    let live = [
        s.task_entries,
        s.cgroup_entries,
        s.chain_nodes,
        s.task_arrays,
        s.prog_arrays,
        s.attachments,
        s.bytes,
    ];
    ensure!(live == [0; 7], "after RESET the session still accounts {s:?}");
    Ok(format!(
        "0 entries, nodes, arrays, attachments and bytes; {} forks shared, {} exits released",
        s.forks_shared, s.exits_released
    ))
}

// ----------------------------------------------------------------------------------------------
// (b) Bad arguments.

struct Case {
    name: String,
    got: Result<(), Errno>,
    want: Result<(), Errno>,
}

/// A read-only and an unmapped page for address checks.
struct Pages {
    ro: usize,
    unmapped: usize,
}

impl Pages {
    fn new() -> Result<Pages, String> {
        let map = |prot| {
            // SAFETY: a fresh anonymous private mapping, no existing memory involved.
            let p = unsafe {
                libc::mmap(
                    std::ptr::null_mut(),
                    4096,
                    prot,
                    libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                    -1,
                    0,
                )
            };
            if p == libc::MAP_FAILED {
                Err(format!("mmap: {}", Errno::last()))
            } else {
                Ok(p as usize)
            }
        };
        let ro = map(libc::PROT_READ)?;
        let unmapped = map(libc::PROT_READ | libc::PROT_WRITE)?;
        // SAFETY: unmapping the page mapped just above, which nothing references.
        unsafe { libc::munmap(unmapped as *mut libc::c_void, 4096) };
        Ok(Pages { ro, unmapped })
    }
}

impl Drop for Pages {
    fn drop(&mut self) {
        // SAFETY: the read-only page mapped in `new`, which nothing references any more.
        unsafe { libc::munmap(self.ro as *mut libc::c_void, 4096) };
    }
}

/// A kernel address: access_ok() refuses it.
const KERNEL_ADDR: usize = 0xffff_8880_0000_0000;

/// Bad arguments give the documented errnos and leave the module usable.
pub fn check_bad_args() -> CheckReport {
    let mut report = CheckReport::default();
    let dev = match open_device() {
        Ok(d) => d,
        Err(e) => {
            report.record("bad-args/open", || Err(e));
            return report;
        }
    };
    let mut tree = match TestTree::new("badargs") {
        Ok(t) => t,
        Err(e) => {
            report.record("bad-args/cgroup-tree", || Err(e));
            return report;
        }
    };
    let fixtures = (|| -> Result<_, String> {
        let cg = Cg::make(&mut tree, "a")?;
        let prog = load(ProgKind::Counter)?;
        let over = load(ProgKind::CtxOverread)?;
        let wrong = load(ProgKind::WrongType)?;
        let devnull = fs::File::open("/dev/null").map_err(|e| format!("/dev/null: {e}"))?;
        let pages = Pages::new()?;
        Ok((cg, prog, over, wrong, OwnedFd::from(devnull), pages))
    })();
    let (cg, prog, over, wrong, devnull, pages) = match fixtures {
        Ok(f) => f,
        Err(e) => {
            report.record("bad-args/fixtures", || Err(e));
            return report;
        }
    };
    let _ = dev.reset();
    let groups: [(&str, Vec<Case>); 6] = [
        ("abi-version", bad_version(&dev, &cg)),
        (
            "attach",
            bad_attach(&dev, &cg, &prog, &over, &wrong, devnull.as_raw_fd()),
        ),
        ("fire", bad_fire(&dev)),
        ("run", bad_run(&dev, &pages)),
        ("reset-stats", bad_reset_stats(&dev)),
        ("ioctl-numbers-and-addresses", bad_requests(&dev, &pages)),
    ];
    for (name, cases) in groups {
        report.record(&format!("bad-args/{name}"), || {
            let bad: Vec<String> = cases
                .iter()
                .filter(|c| c.got != c.want)
                .map(|c| format!("{}: got {:?}, expected {:?}", c.name, c.got, c.want))
                .collect();
            ensure!(bad.is_empty(), "{}", bad.join("; "));
            Ok(format!(
                "{} cases, each followed by a working VERSION and FIRE",
                cases.len()
            ))
        });
    }
    report.record("bad-args/still-usable", || {
        let _ = dev.reset();
        ctx("attach", dev.attach_global(prog.prog_ref(), 0))?;
        fire_expect(&dev, Model::GlobalFilter, 0, std::slice::from_ref(&prog), &[1])?;
        cg.enter()?;
        attach(&dev, &cg, prog.prog_ref(), 0, AttachFlags::AllowMulti)?;
        fire_expect(&dev, Model::CgroupEffective, 0, std::slice::from_ref(&prog), &[1])?;
        tree.leave()?;
        ctx("reset", dev.reset())?;
        Ok("attach and fire work after every bad call".into())
    });
    report
}

/// Runs `f`, then checks the module still answers VERSION and FIRE.
fn case(dev: &Device, name: impl Into<String>, want: Result<(), Errno>, f: impl FnOnce() -> Result<(), Errno>) -> Case {
    let name = name.into();
    let got = f();
    let usable = dev.version().is_ok() && dev.fire(Model::GlobalFilter, 0).is_ok();
    if usable {
        Case { name, got, want }
    } else {
        Case {
            name: format!("{name} (module unusable afterwards)"),
            got: Err(Errno::EIO),
            want,
        }
    }
}

fn attach_template(model: u32, prog_fd: i32, cgroup_fd: i32) -> HbKmodAttach {
    HbKmodAttach {
        abi_version: HB_KMOD_ABI_VERSION,
        model,
        prog_fd,
        cgroup_fd,
        hook: 0,
        flags: if model == HB_KMOD_MODEL_CGROUP_EFFECTIVE {
            HB_KMOD_F_ALLOW_MULTI
        } else {
            0
        },
        ..Default::default()
    }
}

fn fire_template() -> HbKmodFire {
    HbKmodFire {
        abi_version: HB_KMOD_ABI_VERSION,
        model: HB_KMOD_MODEL_TASK_CHAIN,
        ..Default::default()
    }
}

fn bad_version(dev: &Device, cg: &Cg) -> Vec<Case> {
    let mut v = Vec::new();
    for abi in [0, HB_KMOD_ABI_VERSION + 1, u32::MAX] {
        let want = Err(Errno::EPROTO);
        let mut a = attach_template(HB_KMOD_MODEL_CGROUP_EFFECTIVE, -1, cg.fd().as_raw_fd());
        a.abi_version = abi;
        v.push(case(dev, format!("ATTACH abi {abi}"), want, || {
            dev.ioctl(HB_KMOD_IOC_ATTACH, &mut a)
        }));
        let mut a = attach_template(HB_KMOD_MODEL_GLOBAL_FILTER, -1, -1);
        a.abi_version = abi;
        v.push(case(dev, format!("DETACH abi {abi}"), want, || {
            dev.ioctl(HB_KMOD_IOC_DETACH, &mut a)
        }));
        let mut f = fire_template();
        f.abi_version = abi;
        v.push(case(dev, format!("FIRE abi {abi}"), want, || {
            dev.ioctl(HB_KMOD_IOC_FIRE, &mut f)
        }));
        let mut buf = [0u64; 1];
        let mut r = HbKmodRun {
            abi_version: abi,
            batch: 1,
            samples: 1,
            samples_addr: buf.as_mut_ptr() as u64,
            ..Default::default()
        };
        v.push(case(dev, format!("RUN abi {abi}"), want, || {
            dev.ioctl(HB_KMOD_IOC_RUN, &mut r)
        }));
        let mut r = HbKmodReset {
            abi_version: abi,
            ..Default::default()
        };
        v.push(case(dev, format!("RESET abi {abi}"), want, || {
            dev.ioctl(HB_KMOD_IOC_RESET, &mut r)
        }));
        let mut s = HbKmodStats {
            abi_version: abi,
            ..Default::default()
        };
        v.push(case(dev, format!("STATS abi {abi}"), want, || {
            dev.ioctl(HB_KMOD_IOC_STATS, &mut s)
        }));
    }
    let mut ver = HbKmodVersion {
        abi_version: 77,
        ..Default::default()
    };
    v.push(case(dev, "VERSION ignores its input", Ok(()), || {
        dev.ioctl(HB_KMOD_IOC_VERSION, &mut ver)
    }));
    v
}

fn bad_attach(
    dev: &Device,
    cg: &Cg,
    prog: &KmodProgram,
    over: &KmodProgram,
    wrong: &KmodProgram,
    devnull: i32,
) -> Vec<Case> {
    let cgfd = cg.fd().as_raw_fd();
    let mut v = Vec::new();
    let mut run = |name: String, req: u64, a: HbKmodAttach, want: Result<(), Errno>| {
        let mut a = a;
        let c = case(dev, name, want, || dev.ioctl(req, &mut a));
        let _ = dev.reset();
        v.push(c);
    };
    let (att, det) = (HB_KMOD_IOC_ATTACH, HB_KMOD_IOC_DETACH);
    let cgm = HB_KMOD_MODEL_CGROUP_EFFECTIVE;
    let gm = HB_KMOD_MODEL_GLOBAL_FILTER;
    // The valid templates work.
    run(
        "valid cgroup attach".into(),
        att,
        attach_template(cgm, prog.raw_fd(), cgfd),
        Ok(()),
    );
    run("valid global attach".into(), att, attach_template(gm, -1, -1), Ok(()));
    run(
        "valid task install".into(),
        att,
        attach_template(HB_KMOD_MODEL_TASK_HOOK_ARRAY, -1, -1),
        Ok(()),
    );
    for (req, rn) in [(att, "ATTACH"), (det, "DETACH")] {
        for model in [HB_KMOD_MODELS, 77, u32::MAX] {
            run(
                format!("{rn} model {model}"),
                req,
                attach_template(model, -1, -1),
                Err(Errno::EINVAL),
            );
        }
        for hook in [HB_KMOD_MAX_HOOKS, 1000, u32::MAX] {
            let mut a = attach_template(gm, -1, -1);
            a.hook = hook;
            run(format!("{rn} hook {hook}"), req, a, Err(Errno::EINVAL));
        }
        for reserved in [1u64, 1 << 63] {
            let mut a = attach_template(gm, -1, -1);
            a.reserved = reserved;
            run(format!("{rn} reserved {reserved:#x}"), req, a, Err(Errno::EINVAL));
        }
        for cg_bad in [3, devnull, 100_000] {
            run(
                format!("{rn} global with cgroup_fd {cg_bad}"),
                req,
                attach_template(gm, -1, cg_bad),
                Err(Errno::EINVAL),
            );
        }
        for fd in [-2, i32::MIN, 100_000] {
            run(
                format!("{rn} prog_fd {fd}"),
                req,
                attach_template(gm, fd, -1),
                Err(Errno::EBADF),
            );
        }
        run(
            format!("{rn} prog_fd /dev/null"),
            req,
            attach_template(gm, devnull, -1),
            Err(Errno::EINVAL),
        );
        if let Some(mfd) = prog.map_fd() {
            run(
                format!("{rn} prog_fd is a map"),
                req,
                attach_template(gm, mfd.as_raw_fd(), -1),
                Err(Errno::EINVAL),
            );
        }
        run(
            format!("{rn} socket-filter program"),
            req,
            attach_template(gm, wrong.raw_fd(), -1),
            Err(Errno::EINVAL),
        );
        run(
            format!("{rn} program reading past the context"),
            req,
            attach_template(gm, over.raw_fd(), -1),
            Err(Errno::EINVAL),
        );
        // DETACH takes no flags.
        let flags = if req == att { HB_KMOD_F_ALLOW_MULTI } else { 0 };
        for cfd in [-1, -5, 100_000, devnull] {
            run(
                format!("{rn} cgroup_fd {cfd}"),
                req,
                HbKmodAttach {
                    flags,
                    ..attach_template(cgm, -1, cfd)
                },
                Err(Errno::EBADF),
            );
        }
    }
    for flags in [3, 4, 0x8000_0000, u32::MAX] {
        let mut a = attach_template(cgm, -1, cgfd);
        a.flags = flags;
        run(format!("cgroup ATTACH flags {flags:#x}"), att, a, Err(Errno::EINVAL));
    }
    for flags in [1, 2] {
        let mut a = attach_template(cgm, -1, cgfd);
        a.flags = flags;
        run(format!("cgroup DETACH flags {flags}"), det, a, Err(Errno::EINVAL));
        run(
            format!("global ATTACH flags {flags}"),
            att,
            HbKmodAttach {
                flags,
                ..attach_template(gm, -1, -1)
            },
            Err(Errno::EINVAL),
        );
        run(
            format!("task ATTACH flags {flags}"),
            att,
            HbKmodAttach {
                flags,
                ..attach_template(HB_KMOD_MODEL_TASK_CHAIN, -1, -1)
            },
            Err(Errno::EINVAL),
        );
    }
    for model in [HB_KMOD_MODEL_TASK_CHAIN, HB_KMOD_MODEL_TASK_HOOK_ARRAY] {
        run(
            format!("DETACH in model {model}"),
            det,
            attach_template(model, -1, -1),
            Err(Errno::EOPNOTSUPP),
        );
    }
    run(
        "global DETACH of nothing".into(),
        det,
        attach_template(gm, -1, -1),
        Err(Errno::ENOENT),
    );
    run(
        "cgroup DETACH of nothing".into(),
        det,
        HbKmodAttach {
            flags: 0,
            ..attach_template(cgm, -1, cgfd)
        },
        Err(Errno::ENOENT),
    );
    v
}

fn bad_fire(dev: &Device) -> Vec<Case> {
    let mut v = Vec::new();
    let mut run = |name: String, f: HbKmodFire, want| {
        let mut f = f;
        v.push(case(dev, name, want, || dev.ioctl(HB_KMOD_IOC_FIRE, &mut f)));
    };
    run("valid".into(), fire_template(), Ok(()));
    for model in [HB_KMOD_MODELS, u32::MAX] {
        run(
            format!("model {model}"),
            HbKmodFire {
                model,
                ..fire_template()
            },
            Err(Errno::EINVAL),
        );
    }
    for hook in [HB_KMOD_MAX_HOOKS, u32::MAX] {
        run(
            format!("hook {hook}"),
            HbKmodFire {
                hook,
                ..fire_template()
            },
            Err(Errno::EINVAL),
        );
    }
    run(
        "flags 1".into(),
        HbKmodFire {
            flags: 1,
            ..fire_template()
        },
        Err(Errno::EINVAL),
    );
    run(
        "reserved".into(),
        HbKmodFire {
            reserved: 1,
            ..fire_template()
        },
        Err(Errno::EINVAL),
    );
    v
}

fn bad_run(dev: &Device, pages: &Pages) -> Vec<Case> {
    let mut buf = vec![0u64; 8];
    let addr = buf.as_mut_ptr() as u64;
    let valid = HbKmodRun {
        abi_version: HB_KMOD_ABI_VERSION,
        model: HB_KMOD_MODEL_CGROUP_EFFECTIVE,
        hook: 0,
        batch: 2,
        samples: 8,
        samples_addr: addr,
        ..Default::default()
    };
    let mut v = Vec::new();
    let mut run = |name: &str, r: HbKmodRun, want| {
        let mut r = r;
        v.push(case(dev, name, want, || dev.ioctl(HB_KMOD_IOC_RUN, &mut r)));
    };
    run("valid", valid, Ok(()));
    run("batch 0", HbKmodRun { batch: 0, ..valid }, Err(Errno::EINVAL));
    run("samples 0", HbKmodRun { samples: 0, ..valid }, Err(Errno::EINVAL));
    run(
        "batch > HB_KMOD_MAX_BATCH",
        HbKmodRun {
            batch: HB_KMOD_MAX_BATCH + 1,
            ..valid
        },
        Err(Errno::E2BIG),
    );
    run(
        "batch u32::MAX",
        HbKmodRun {
            batch: u32::MAX,
            ..valid
        },
        Err(Errno::E2BIG),
    );
    run(
        "samples > HB_KMOD_MAX_SAMPLES",
        HbKmodRun {
            samples: HB_KMOD_MAX_SAMPLES + 1,
            ..valid
        },
        Err(Errno::E2BIG),
    );
    run(
        "batch x samples > HB_KMOD_MAX_FIRES",
        HbKmodRun {
            batch: HB_KMOD_MAX_BATCH,
            samples: 4097,
            ..valid
        },
        Err(Errno::E2BIG),
    );
    run("model 4", HbKmodRun { model: 4, ..valid }, Err(Errno::EINVAL));
    run("hook 16", HbKmodRun { hook: 16, ..valid }, Err(Errno::EINVAL));
    run("flags 1", HbKmodRun { flags: 1, ..valid }, Err(Errno::EINVAL));
    run("reserved", HbKmodRun { reserved: 9, ..valid }, Err(Errno::EINVAL));
    run(
        "samples_addr 0",
        HbKmodRun {
            samples_addr: 0,
            ..valid
        },
        Err(Errno::EFAULT),
    );
    run(
        "samples_addr in the kernel",
        HbKmodRun {
            samples_addr: KERNEL_ADDR as u64,
            ..valid
        },
        Err(Errno::EFAULT),
    );
    run(
        "samples_addr read-only",
        HbKmodRun {
            samples_addr: pages.ro as u64,
            ..valid
        },
        Err(Errno::EFAULT),
    );
    run(
        "samples_addr unmapped",
        HbKmodRun {
            samples_addr: pages.unmapped as u64,
            ..valid
        },
        Err(Errno::EFAULT),
    );
    run(
        "samples run past the end of the address space",
        HbKmodRun {
            samples_addr: u64::MAX - 8,
            ..valid
        },
        Err(Errno::EFAULT),
    );
    drop(buf);
    v
}

fn bad_reset_stats(dev: &Device) -> Vec<Case> {
    let mut v = Vec::new();
    for (flags, reserved) in [(1u32, 0u64), (0, 1), (u32::MAX, u64::MAX)] {
        let mut r = HbKmodReset {
            abi_version: HB_KMOD_ABI_VERSION,
            flags,
            reserved,
        };
        v.push(case(
            dev,
            format!("RESET flags {flags:#x} reserved {reserved:#x}"),
            Err(Errno::EINVAL),
            || dev.ioctl(HB_KMOD_IOC_RESET, &mut r),
        ));
        let mut s = HbKmodStats {
            abi_version: HB_KMOD_ABI_VERSION,
            flags,
            reserved,
            ..Default::default()
        };
        v.push(case(
            dev,
            format!("STATS flags {flags:#x} reserved {reserved:#x}"),
            Err(Errno::EINVAL),
            || dev.ioctl(HB_KMOD_IOC_STATS, &mut s),
        ));
    }
    v
}

fn bad_requests(dev: &Device, pages: &Pages) -> Vec<Case> {
    let mut v = Vec::new();
    let mut buf = [0u8; 256];
    let b = buf.as_mut_ptr() as usize;
    let magic = u64::from(HB_KMOD_IOC_MAGIC) << 8;
    let requests: [(&str, u64); 6] = [
        ("unknown nr 7", iowr(7, 48)),
        ("ATTACH nr with FIRE's size", iowr(1, 40)),
        ("FIRE nr with a 256-byte size", iowr(3, 256)),
        ("other magic", (HB_KMOD_IOC_ATTACH & !0xff00) | (0xBA << 8)),
        ("_IO (no direction)", magic | 3),
        ("zero", 0),
    ];
    for (name, req) in requests {
        // SAFETY: `buf` is 256 writable bytes, more than any of these requests encodes.
        v.push(case(dev, name, Err(Errno::ENOTTY), || unsafe { dev.ioctl_raw(req, b) }));
    }
    for (name, addr) in [
        ("NULL", 0usize),
        ("kernel address", KERNEL_ADDR),
        ("unmapped", pages.unmapped),
    ] {
        for (rn, req) in IOCTLS {
            // SAFETY: the kernel refuses these addresses (copy_{from,to}_user fault).
            v.push(case(dev, format!("{rn} at {name}"), Err(Errno::EFAULT), || unsafe {
                dev.ioctl_raw(req, addr)
            }));
        }
    }
    // SAFETY: the page is read-only; the kernel's write faults.
    v.push(case(
        dev,
        "VERSION into a read-only page",
        Err(Errno::EFAULT),
        || unsafe { dev.ioctl_raw(HB_KMOD_IOC_VERSION, pages.ro) },
    ));
    v
}

// ----------------------------------------------------------------------------------------------
// (c) Fuzz.

/// What the fuzz loop may touch.
struct FuzzPools {
    prog_fds: Vec<i32>,
    cgroup_fds: Vec<i32>,
    cgroup_paths: Vec<PathBuf>,
    junk_fds: Vec<i32>,
}

const FUZZ_OK_ERRNOS: [Errno; 10] = [
    Errno::EPROTO,
    Errno::EINVAL,
    Errno::EBADF,
    Errno::EPERM,
    Errno::E2BIG,
    Errno::ENOENT,
    Errno::EOPNOTSUPP,
    Errno::EFAULT,
    Errno::ENOTTY,
    Errno::ENOMEM,
];

fn pick<T: Copy>(rng: &mut SmallRng, v: &[T]) -> T {
    v[rng.random_range(0..v.len())]
}

fn fuzz_u32(rng: &mut SmallRng, valid_below: u32, p_valid: f64) -> u32 {
    if rng.random_bool(p_valid) {
        rng.random_range(0..valid_below)
    } else {
        let r = rng.random();
        pick(rng, &[valid_below, valid_below + 1, u32::MAX, r])
    }
}

fn fuzz_attach(rng: &mut SmallRng, pools: &FuzzPools) -> HbKmodAttach {
    let model = fuzz_u32(rng, HB_KMOD_MODELS, 0.92);
    let mut prog_pool = pools.prog_fds.clone();
    prog_pool.extend([-1, -1, -1, rng.random()]);
    prog_pool.extend(&pools.junk_fds);
    let cgroup_fd = if model == HB_KMOD_MODEL_CGROUP_EFFECTIVE || rng.random_bool(0.05) {
        let mut p = pools.cgroup_fds.clone();
        p.extend([-1, rng.random()]);
        p.extend(&pools.junk_fds);
        pick(rng, &p)
    } else {
        -1
    };
    HbKmodAttach {
        abi_version: if rng.random_bool(0.95) {
            HB_KMOD_ABI_VERSION
        } else {
            rng.random()
        },
        model,
        prog_fd: pick(rng, &prog_pool),
        cgroup_fd,
        hook: if rng.random_bool(0.7) {
            rng.random_range(0..4)
        } else {
            fuzz_u32(rng, HB_KMOD_MAX_HOOKS, 0.8)
        },
        flags: if rng.random_bool(0.9) {
            rng.random_range(0..3)
        } else {
            rng.random()
        },
        elapsed_ns: rng.random(),
        recomputed: rng.random(),
        count: rng.random(),
        reserved: if rng.random_bool(0.97) { 0 } else { rng.random() },
    }
}

fn fuzz_fire(rng: &mut SmallRng) -> HbKmodFire {
    HbKmodFire {
        abi_version: if rng.random_bool(0.95) {
            HB_KMOD_ABI_VERSION
        } else {
            rng.random()
        },
        model: fuzz_u32(rng, HB_KMOD_MODELS, 0.92),
        hook: if rng.random_bool(0.7) {
            rng.random_range(0..4)
        } else {
            fuzz_u32(rng, HB_KMOD_MAX_HOOKS, 0.8)
        },
        flags: if rng.random_bool(0.95) { 0 } else { rng.random() },
        progs_run: rng.random(),
        verdict: rng.random(),
        cgroup_id: rng.random(),
        reserved: if rng.random_bool(0.97) { 0 } else { rng.random() },
    }
}

/// A bounded RUN: valid counts stay small (at most 1024 x 64 fires).
fn fuzz_run(rng: &mut SmallRng, buf: &mut [u64]) -> HbKmodRun {
    let f = fuzz_fire(rng);
    let batch = if rng.random_bool(0.9) {
        rng.random_range(1..=1024)
    } else {
        pick(rng, &[0, HB_KMOD_MAX_BATCH + 1, u32::MAX])
    };
    let samples = if rng.random_bool(0.9) {
        rng.random_range(1..=buf.len() as u32)
    } else {
        pick(rng, &[0, HB_KMOD_MAX_SAMPLES + 1, u32::MAX])
    };
    let addr = if rng.random_bool(0.9) {
        buf.as_mut_ptr() as u64
    } else {
        pick(rng, &[0, KERNEL_ADDR as u64, u64::MAX - 7])
    };
    HbKmodRun {
        abi_version: f.abi_version,
        model: f.model,
        hook: f.hook,
        batch,
        samples,
        flags: f.flags,
        samples_addr: addr,
        progs_run: rng.random(),
        progs_per_fire: rng.random(),
        verdict: rng.random(),
        total_ns: rng.random(),
        reserved: f.reserved,
    }
}

/// The fuzz loop's tally.
#[derive(Default)]
struct Tally {
    calls: u64,
    outcomes: BTreeMap<String, u64>,
    unexpected: Vec<String>,
    forks: u64,
    moves: u64,
    sessions: u64,
    concurrent: u64,
}

impl Tally {
    fn note(&mut self, what: &str, r: Result<(), Errno>) {
        self.calls += 1;
        let key = match r {
            Ok(()) => "ok".to_string(),
            Err(e) => e.to_string(),
        };
        if let Err(e) = r {
            if !FUZZ_OK_ERRNOS.contains(&e) && self.unexpected.len() < 20 {
                self.unexpected.push(format!("{what}: {e}"));
            }
        }
        *self.outcomes.entry(key).or_default() += 1;
    }
}

/// One random ioctl on `dev`.
fn fuzz_one(dev: &Device, rng: &mut SmallRng, pools: &FuzzPools, run_buf: &mut [u64], tally: &mut Tally) {
    match rng.random_range(0..100) {
        0..=29 => {
            let mut a = fuzz_attach(rng, pools);
            tally.note("ATTACH", dev.ioctl(HB_KMOD_IOC_ATTACH, &mut a));
        }
        30..=42 => {
            let mut a = fuzz_attach(rng, pools);
            tally.note("DETACH", dev.ioctl(HB_KMOD_IOC_DETACH, &mut a));
        }
        43..=67 => {
            let mut f = fuzz_fire(rng);
            tally.note("FIRE", dev.ioctl(HB_KMOD_IOC_FIRE, &mut f));
        }
        68..=77 => {
            let mut r = fuzz_run(rng, run_buf);
            tally.note("RUN", dev.ioctl(HB_KMOD_IOC_RUN, &mut r));
        }
        78..=79 => {
            let mut r = HbKmodReset {
                abi_version: HB_KMOD_ABI_VERSION,
                ..Default::default()
            };
            tally.note("RESET", dev.ioctl(HB_KMOD_IOC_RESET, &mut r));
        }
        80..=83 => {
            let mut s = HbKmodStats {
                abi_version: HB_KMOD_ABI_VERSION,
                flags: if rng.random_bool(0.9) { 0 } else { rng.random() },
                ..Default::default()
            };
            tally.note("STATS", dev.ioctl(HB_KMOD_IOC_STATS, &mut s));
        }
        84..=91 => {
            // Random bytes under a real request number (mostly EPROTO, sometimes through).
            let mut raw = [0u8; 128];
            rng.fill(&mut raw[..]);
            if rng.random_bool(0.5) {
                raw[..4].copy_from_slice(&HB_KMOD_ABI_VERSION.to_ne_bytes());
            }
            let (name, req) = pick(rng, &IOCTLS);
            if req == HB_KMOD_IOC_RUN {
                // keep RUN bounded: batch <= 1024, samples within the buffer, a valid address
                let batch = u32::from_ne_bytes([raw[12], raw[13], raw[14], raw[15]]) % 1025;
                raw[12..16].copy_from_slice(&batch.to_ne_bytes());
                let samples = u32::from_ne_bytes([raw[16], raw[17], raw[18], raw[19]]) % (run_buf.len() as u32 + 1);
                raw[16..20].copy_from_slice(&samples.to_ne_bytes());
                raw[24..32].copy_from_slice(&(run_buf.as_mut_ptr() as u64).to_ne_bytes());
            }
            // SAFETY: `raw` is 128 writable bytes, more than any hookbench request encodes.
            tally.note(name, unsafe { dev.ioctl_raw(req, raw.as_mut_ptr() as usize) });
        }
        _ => {
            let mut raw = [0u8; 256];
            let req = u64::from(rng.random::<u32>());
            if IOCTLS.iter().any(|(_, r)| *r == req) {
                return;
            }
            // SAFETY: `raw` is 256 writable bytes; unknown requests are refused before any copy.
            tally.note("unknown request", unsafe {
                dev.ioctl_raw(req, raw.as_mut_ptr() as usize)
            });
        }
    }
}

/// Forks a child that issues `calls` pre-generated random ioctls on the session (it inherits
/// the fd), then exits: async-signal-safe calls only.
fn fuzz_fork(dev: &Device, rng: &mut SmallRng, pools: &FuzzPools) -> Result<Pid, String> {
    let mut calls: Vec<(u64, [u8; 64])> = Vec::with_capacity(16);
    for _ in 0..rng.random_range(1..16) {
        let mut buf = [0u8; 64];
        let req = match rng.random_range(0..3) {
            0 => {
                let a = fuzz_attach(rng, pools);
                // SAFETY: HbKmodAttach is 48 plain bytes.
                buf[..48]
                    .copy_from_slice(unsafe { std::slice::from_raw_parts((&a as *const HbKmodAttach).cast(), 48) });
                HB_KMOD_IOC_ATTACH
            }
            _ => {
                let f = fuzz_fire(rng);
                // SAFETY: HbKmodFire is 40 plain bytes.
                buf[..40].copy_from_slice(unsafe { std::slice::from_raw_parts((&f as *const HbKmodFire).cast(), 40) });
                HB_KMOD_IOC_FIRE
            }
        };
        calls.push((req, buf));
    }
    let fd = dev.as_fd().as_raw_fd();
    // SAFETY: the child only calls ioctl and _exit on memory it already has.
    match unsafe { fork() }.map_err(|e| format!("fork: {e}"))? {
        ForkResult::Child => {
            for (req, buf) in calls.iter_mut() {
                // SAFETY: `buf` is 64 writable bytes, more than the request encodes.
                unsafe { libc::ioctl(fd, *req as _, buf.as_mut_ptr()) };
            }
            // SAFETY: _exit is always safe.
            unsafe { libc::_exit(0) }
        }
        ForkResult::Parent { child } => Ok(child),
    }
}

/// The fuzz loop proper (the calling thread): random ioctls on the session and on a second
/// session opened and closed at random, forks whose children issue ioctls, cgroup moves.
fn fuzz_main(
    dev: &Device,
    home: &Path,
    pools: &FuzzPools,
    seed: u64,
    duration: Duration,
    tally: &mut Tally,
) -> Result<(), String> {
    let mut rng = SmallRng::seed_from_u64(seed);
    let mut run_buf = vec![0u64; 64];
    let mut children: Vec<Pid> = Vec::new();
    let mut extra: Option<Device> = None;
    let deadline = Instant::now() + duration;
    let mut result = Ok(());
    while Instant::now() < deadline && result.is_ok() {
        match rng.random_range(0..1000) {
            0..=19 => {
                let to = if rng.random_bool(0.8) {
                    pools.cgroup_paths[rng.random_range(0..pools.cgroup_paths.len())].clone()
                } else {
                    home.to_path_buf()
                };
                result = TestTree::enter(&to);
                tally.moves += 1;
            }
            20..=29 if children.len() < 8 => match fuzz_fork(dev, &mut rng, pools) {
                Ok(pid) => {
                    children.push(pid);
                    tally.forks += 1;
                }
                Err(e) => result = Err(e),
            },
            30..=34 => {
                extra = if extra.is_some() {
                    None
                } else {
                    match open_device() {
                        Ok(d) => Some(d),
                        Err(e) => {
                            result = Err(e);
                            None
                        }
                    }
                };
                tally.sessions += 1;
            }
            35..=134 => {
                if let Some(d) = &extra {
                    fuzz_one(d, &mut rng, pools, &mut run_buf, tally);
                }
            }
            _ => fuzz_one(dev, &mut rng, pools, &mut run_buf, tally),
        }
        children.retain(|&pid| {
            !matches!(
                waitpid(pid, Some(WaitPidFlag::WNOHANG)),
                Ok(nix::sys::wait::WaitStatus::Exited(..) | nix::sys::wait::WaitStatus::Signaled(..)) | Err(_)
            )
        });
    }
    for pid in children {
        let _ = waitpid(pid, None);
    }
    result
}

/// Valid FIRE and RUN calls in random models from a second thread while the fuzz loop
/// attaches, detaches, resets and moves the process: returns the calls made and the errors
/// seen (none are expected).
fn concurrent_firer(dev: &Device, stop: &AtomicBool, seed: u64) -> (u64, Vec<String>) {
    let mut rng = SmallRng::seed_from_u64(seed ^ 0x5eed_f1e5);
    let mut buf = [0u64; 8];
    let mut calls = 0u64;
    let mut errors = Vec::new();
    while !stop.load(Ordering::Relaxed) {
        let model = Model::ALL[rng.random_range(0..Model::ALL.len())];
        let hook = rng.random_range(0..4);
        let r = if rng.random_bool(0.7) {
            dev.fire(model, hook).map(|_| ())
        } else {
            let n = rng.random_range(1..=buf.len());
            let batch = rng.random_range(1..=64);
            dev.run_into(model, hook, batch, &mut buf[..n]).map(|_| ())
        };
        calls += 1;
        if let Err(e) = r {
            if errors.len() < 10 {
                errors.push(format!("{model} hook {hook}: {e}"));
            }
        }
    }
    (calls, errors)
}

/// Random ioctls, forks, cgroup moves and extra sessions for `duration`, with valid fires from
/// a second thread all along, then the module must still dispatch correctly.
pub fn check_fuzz(duration: Duration, seed: u64) -> CheckReport {
    let mut report = CheckReport::default();
    let taint0 = kernel_taint();
    let mut tally = Tally::default();
    let mut progs: Vec<KmodProgram> = Vec::new();
    let mut loop_result: Result<(), String> = Ok(());
    report.record(
        &format!("fuzz/loop (seed {seed}, {:.0} s)", duration.as_secs_f64()),
        || {
            let dev = open_device()?;
            let mut tree = TestTree::new("fuzz")?;
            let mut cgs = Vec::new();
            for rel in ["f", "f/a", "f/a/b", "f/c", "g"] {
                cgs.push(Cg::make(&mut tree, rel)?);
            }
            for k in [
                ProgKind::Counter,
                ProgKind::Counter,
                ProgKind::Null,
                ProgKind::MapLookup,
                ProgKind::Counter,
            ] {
                progs.push(load(k)?);
            }
            let over = load(ProgKind::CtxOverread)?;
            let wrong = load(ProgKind::WrongType)?;
            let devnull = OwnedFd::from(fs::File::open("/dev/null").map_err(|e| format!("/dev/null: {e}"))?);
            let mut junk = vec![devnull.as_raw_fd(), over.raw_fd(), wrong.raw_fd()];
            if let Some(m) = progs[0].map_fd() {
                junk.push(m.as_raw_fd());
            }
            let pools = FuzzPools {
                prog_fds: progs.iter().map(|p| p.raw_fd()).collect(),
                cgroup_fds: cgs.iter().map(|c| c.fd().as_raw_fd()).collect(),
                cgroup_paths: cgs.iter().map(|c| c.path.clone()).collect(),
                junk_fds: junk,
            };
            let stop = AtomicBool::new(false);
            let (main, firer) = std::thread::scope(|sc| {
                let firer = sc.spawn(|| concurrent_firer(&dev, &stop, seed));
                let main = fuzz_main(&dev, &tree.home, &pools, seed, duration, &mut tally);
                stop.store(true, Ordering::Relaxed);
                (main, firer.join())
            });
            main?;
            let (fired, firer_errors) = firer.map_err(|_| "the concurrent firing thread panicked".to_string())?;
            ensure!(
                firer_errors.is_empty(),
                "valid FIRE/RUN calls failed in the concurrent thread: {}",
                firer_errors.join("; ")
            );
            tally.concurrent = fired;
            tree.leave()?;
            ctx("reset", dev.reset())?;
            drop(cgs);
            drop(tree);
            let summary: Vec<String> = tally.outcomes.iter().map(|(k, v)| format!("{k} {v}")).collect();
            ensure!(
                tally.unexpected.is_empty(),
                "unexpected errnos: {}",
                tally.unexpected.join("; ")
            );
            Ok(format!(
                "{} ioctls ({}), {} forks, {} cgroup moves, {} session opens/closes; {} concurrent FIRE/RUN in a \
                 second thread",
                tally.calls,
                summary.join(", "),
                tally.forks,
                tally.moves,
                tally.sessions,
                tally.concurrent
            ))
        },
    );
    if let Some(r) = report.results.last() {
        if !r.passed {
            loop_result = Err(r.detail.clone());
        }
    }
    report.record("fuzz/still-dispatches", || {
        let dev = open_device()?;
        let p = counters(1)?;
        let mut tree = TestTree::new("postfuzz")?;
        let cg = Cg::make(&mut tree, "x")?;
        ctx("attach", dev.attach_global(p[0].prog_ref(), 0))?;
        fire_expect(&dev, Model::GlobalFilter, 0, &p, &[1])?;
        ctx("install", dev.install_task(Model::TaskChain, p[0].prog_ref(), 1))?;
        fire_expect(&dev, Model::TaskChain, 1, &p, &[1])?;
        attach(&dev, &cg, p[0].prog_ref(), 2, AttachFlags::AllowMulti)?;
        cg.enter()?;
        fire_expect(&dev, Model::CgroupEffective, 2, &p, &[1])?;
        tree.leave()?;
        ctx("reset", dev.reset())?;
        let s = stats(&dev)?;
        ensure!(s.bytes == 0 && s.task_entries == 0, "after RESET: {s:?}");
        Ok(if loop_result.is_ok() {
            "global, task-chain and cgroup dispatch exact after the fuzz loop".into()
        } else {
            "dispatch exact (the loop itself reported a failure)".into()
        })
    });
    report.record("fuzz/kernel-taint", || taint_unchanged(taint0));
    report
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mountinfo_cgroup2_with_escapes() {
        let mi = "24 30 0:22 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw\n\
                  25 30 0:23 / /a\\040b rw - cgroup2 none rw\n";
        assert_eq!(find_cgroup2_mount(mi), Some(PathBuf::from("/sys/fs/cgroup")));
        let mi = "25 30 0:23 / /a\\040b rw shared:1 - cgroup2 none rw\n";
        assert_eq!(find_cgroup2_mount(mi), Some(PathBuf::from("/a b")));
        assert_eq!(find_cgroup2_mount("1 2 0:1 / / rw - ext4 /dev/sda rw\n"), None);
    }

    #[test]
    fn report_passes_only_without_failures() {
        let mut r = CheckReport::default();
        assert!(r.passed());
        r.record("a", || Ok("fine".into()));
        assert!(r.passed());
        r.record("b", || Err("broken".into()));
        assert!(!r.passed());
        assert_eq!(r.failures().count(), 1);
        let text = r.to_string();
        assert!(text.contains("PASS a") && text.contains("FAIL b") && text.ends_with("2 checks, 1 passed, 1 failed"));
    }

    #[test]
    fn fuzz_structs_stay_bounded() {
        let pools = FuzzPools {
            prog_fds: vec![5, 6],
            cgroup_fds: vec![7],
            cgroup_paths: vec![],
            junk_fds: vec![8],
        };
        let mut rng = SmallRng::seed_from_u64(3);
        let mut buf = vec![0u64; 64];
        let mut valid_runs = 0;
        for _ in 0..10_000 {
            let r = fuzz_run(&mut rng, &mut buf);
            if r.batch >= 1 && r.batch <= HB_KMOD_MAX_BATCH && r.samples >= 1 && r.samples <= HB_KMOD_MAX_SAMPLES {
                assert!(r.batch <= 1024 && r.samples <= 64, "{r:?}");
                valid_runs += 1;
            }
            let a = fuzz_attach(&mut rng, &pools);
            assert!(a.model != HB_KMOD_MODEL_CGROUP_EFFECTIVE || a.cgroup_fd != 0);
        }
        assert!(valid_runs > 5000);
    }

    #[test]
    fn checks_report_a_missing_module_instead_of_panicking() {
        if std::path::Path::new(HB_KMOD_DEVICE).exists() {
            eprintln!("SKIPPED: {HB_KMOD_DEVICE} exists on this host");
            return;
        }
        let r = check_dispatch();
        assert!(!r.passed());
        assert!(r.results[0].detail.contains("insmod"), "{}", r.results[0].detail);
    }
}
