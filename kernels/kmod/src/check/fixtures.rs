//! What the checks build: a private cgroup subtree, cgroups open for attach, firing children.
//!
//! [`TestTree`] finds the cgroup2 mount with `hookbench_sys::mountinfo` and cleans up after
//! itself; [`Firer`] is a forked child that fires on request with async-signal-safe calls only.

use std::fs;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use hookbench_model::{AttachFlags, ModelKind};
use hookbench_sys::mountinfo::{find_cgroup2_mount, SELF_MOUNTINFO};
use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::sys::signal::{kill, Signal};
use nix::sys::wait::waitpid;
use nix::unistd::{fork, pipe2, ForkResult, Pid};

use super::{ctx, expect_errno};
use crate::abi::{model_raw, HbKmodFire, HB_KMOD_ABI_VERSION, HB_KMOD_IOC_FIRE};
use crate::device::{Device, ProgRef};
/// A private cgroup subtree `<mount>/hookbench-kmod-check-<pid>-<tag>`, removed when dropped.
///
/// Dropping it moves the process home, removes every cgroup it made and unmounts a cgroup2 it
/// mounted.
pub(super) struct TestTree {
    /// The subtree's top.
    pub(super) root: PathBuf,
    created: Vec<PathBuf>,
    /// The process's own cgroup, where it goes back to.
    pub(super) home: PathBuf,
    mounted: Option<PathBuf>,
}

impl TestTree {
    /// Makes the subtree on the cgroup2 mount (mounting one when there is none).
    pub(super) fn new(tag: &str) -> Result<TestTree, String> {
        let mi = fs::read_to_string(SELF_MOUNTINFO).map_err(|e| format!("reading {SELF_MOUNTINFO}: {e}"))?;
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
    pub(super) fn mkdir(&mut self, rel: &str) -> Result<PathBuf, String> {
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

    /// Removes the cgroup `path` now (it is not removed again on drop).
    pub(super) fn rmdir(&mut self, path: &Path) -> Result<(), String> {
        fs::remove_dir(path).map_err(|e| format!("rmdir {}: {e}", path.display()))?;
        self.created.retain(|c| c != path);
        Ok(())
    }

    /// Opens the cgroup directory `path`, as ATTACH takes it.
    pub(super) fn open(path: &Path) -> Result<OwnedFd, String> {
        fs::File::open(path)
            .map(OwnedFd::from)
            .map_err(|e| format!("open {}: {e}", path.display()))
    }

    /// Moves this process into `path`.
    pub(super) fn enter(path: &Path) -> Result<(), String> {
        let procs = path.join("cgroup.procs");
        fs::write(&procs, std::process::id().to_string()).map_err(|e| format!("write {}: {e}", procs.display()))
    }

    /// Moves this process back to its own cgroup.
    pub(super) fn leave(&self) -> Result<(), String> {
        TestTree::enter(&self.home)
    }

    /// The inode of `path`: for a cgroup directory, the cgroup id.
    pub(super) fn ino(path: &Path) -> Result<u64, String> {
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
pub(super) struct Cg {
    /// The directory.
    pub(super) path: PathBuf,
    fd: OwnedFd,
}

impl Cg {
    /// Creates `rel` under the tree (see [`TestTree::mkdir`]) and opens it.
    pub(super) fn make(tree: &mut TestTree, rel: &str) -> Result<Cg, String> {
        let path = tree.mkdir(rel)?;
        let fd = TestTree::open(&path)?;
        Ok(Cg { path, fd })
    }

    /// Creates and opens every cgroup of `rels`, in order ([`Cg::make`]).
    pub(super) fn make_all<const N: usize>(tree: &mut TestTree, rels: [&str; N]) -> Result<[Cg; N], String> {
        let cgs = rels
            .into_iter()
            .map(|rel| Cg::make(tree, rel))
            .collect::<Result<Vec<Cg>, String>>()?;
        cgs.try_into().map_err(|_| format!("expected {N} cgroups"))
    }

    /// The open directory.
    pub(super) fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// Moves this process into the cgroup.
    pub(super) fn enter(&self) -> Result<(), String> {
        TestTree::enter(&self.path)
    }
}

/// Attaches at `cg`; returns (effective arrays recomputed, programs in `cg`'s array).
pub(super) fn attach(
    dev: &Device,
    cg: &Cg,
    prog: ProgRef<'_>,
    hook: u32,
    flags: AttachFlags,
) -> Result<(u32, u32), String> {
    let u = ctx(
        &format!("attach at {} hook {hook} {flags:?}", cg.path.display()),
        dev.attach_cgroup(cg.fd(), prog, hook, flags),
    )?;
    Ok((u.recomputed, u.count))
}

/// An attach at `cg` (hook 0) that the module must refuse with `want`; `what` names the case.
pub(super) fn attach_refused(
    dev: &Device,
    what: &str,
    cg: &Cg,
    prog: ProgRef<'_>,
    flags: AttachFlags,
    want: Errno,
) -> Result<(), String> {
    expect_errno(what, dev.attach_cgroup(cg.fd(), prog, 0, flags), want)
}

/// A MULTI attach of the null body at `cg` (the cheapest attach there is) fails with `want`.
pub(super) fn null_multi_refused(dev: &Device, what: &str, cg: &Cg, want: Errno) -> Result<(), String> {
    attach_refused(dev, what, cg, ProgRef::NullBody, AttachFlags::ALLOW_MULTI, want)
}

/// Detaches at `cg`; returns (effective arrays recomputed, programs in `cg`'s array).
pub(super) fn detach(dev: &Device, cg: &Cg, prog: ProgRef<'_>, hook: u32) -> Result<(u32, u32), String> {
    let u = ctx(
        &format!("detach at {} hook {hook}", cg.path.display()),
        dev.detach_cgroup(cg.fd(), prog, hook),
    )?;
    Ok((u.recomputed, u.count))
}

// ----------------------------------------------------------------------------------------------
// Forked children that fire on request (async-signal-safe: read, ioctl, write, _exit only).

/// A forked child of the calling task that shares the session and fires when told to.
pub(super) struct Firer {
    pid: Pid,
    cmd: OwnedFd,
    reply: OwnedFd,
    done: bool,
}

impl Firer {
    /// Forks a child of the calling task that shares the session (it inherits the fd).
    pub(super) fn spawn(dev: &Device, model: ModelKind, hook: u32) -> Result<Firer, String> {
        let (cmd_r, cmd_w) = pipe2(OFlag::O_CLOEXEC).map_err(|e| format!("pipe: {e}"))?;
        let (rep_r, rep_w) = pipe2(OFlag::O_CLOEXEC).map_err(|e| format!("pipe: {e}"))?;
        let template = HbKmodFire {
            abi_version: HB_KMOD_ABI_VERSION,
            model: model_raw(model),
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
    pub(super) fn fire(&self) -> Result<u32, String> {
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
    pub(super) fn finish(mut self) -> Result<(), String> {
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
