//! The fuzz check: seeded random ioctls, forks, cgroup moves and sessions for a bounded time.
//!
//! Afterwards the module must still dispatch exactly and the kernel must not be tainted by a
//! warning, oops or lockup.

use std::collections::BTreeMap;
use std::fs;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use hookbench_model::{AttachFlags, ModelKind};
use nix::errno::Errno;
use nix::sys::wait::{waitpid, WaitPidFlag};
use nix::unistd::{fork, ForkResult, Pid};
use rand::distr::{Distribution, StandardUniform};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use super::bad_args::KERNEL_ADDR;
use super::fixtures::{attach, Cg, TestTree};
use super::report::CheckReport;
use super::{counters, ctx, fire_expect, kernel_taint, load, open_device, stats, taint_unchanged};
use crate::abi::*;
use crate::device::Device;
use crate::progs::{KmodProgram, ProgKind};

/// What the fuzz loop may touch.
struct FuzzPools {
    prog_fds: Vec<i32>,
    cgroup_fds: Vec<i32>,
    cgroup_paths: Vec<PathBuf>,
    junk_fds: Vec<i32>,
}

const FUZZ_OK_ERRNOS: [Errno; 11] = [
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
    // RUN with a working set while the process moves between cgroups
    Errno::EAGAIN,
];

/// One element of `v`, at random.
fn pick<T: Copy>(rng: &mut SmallRng, v: &[T]) -> T {
    v[rng.random_range(0..v.len())]
}

/// With probability `p_valid` a value below `valid_below`, else one at or past it or random.
fn fuzz_u32(rng: &mut SmallRng, valid_below: u32, p_valid: f64) -> u32 {
    if rng.random_bool(p_valid) {
        rng.random_range(0..valid_below)
    } else {
        let r = rng.random();
        pick(rng, &[valid_below, valid_below + 1, u32::MAX, r])
    }
}

/// `usual` with probability `p`, else a random value of its type.
fn mostly<T>(rng: &mut SmallRng, p: f64, usual: T) -> T
where
    StandardUniform: Distribution<T>,
{
    if rng.random_bool(p) {
        usual
    } else {
        rng.random()
    }
}

/// A hook id: mostly one of the first four, else [`fuzz_u32`]'s.
fn fuzz_hook(rng: &mut SmallRng) -> u32 {
    if rng.random_bool(0.7) {
        rng.random_range(0..4)
    } else {
        fuzz_u32(rng, HB_KMOD_MAX_HOOKS, 0.8)
    }
}

/// A random ATTACH or DETACH argument over the pools' fds, mostly valid.
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
        abi_version: mostly(rng, 0.95, HB_KMOD_ABI_VERSION),
        model,
        prog_fd: pick(rng, &prog_pool),
        cgroup_fd,
        hook: fuzz_hook(rng),
        flags: if rng.random_bool(0.9) {
            rng.random_range(0..3)
        } else {
            rng.random()
        },
        elapsed_ns: rng.random(),
        recomputed: rng.random(),
        count: rng.random(),
        reserved: mostly(rng, 0.97, 0),
    }
}

/// A random FIRE argument, mostly valid.
fn fuzz_fire(rng: &mut SmallRng) -> HbKmodFire {
    HbKmodFire {
        abi_version: mostly(rng, 0.95, HB_KMOD_ABI_VERSION),
        model: fuzz_u32(rng, HB_KMOD_MODELS, 0.92),
        hook: fuzz_hook(rng),
        flags: mostly(rng, 0.95, 0),
        progs_run: rng.random(),
        verdict: rng.random(),
        cgroup_id: rng.random(),
        reserved: mostly(rng, 0.97, 0),
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
    let working_set = if rng.random_bool(0.85) {
        1
    } else {
        pick(rng, &[0, 2, 3, 8, HB_KMOD_MAX_WORKING_SET + 1, u32::MAX])
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
        // mostly 1 (and seed 0); else small working sets, 0 and values past the bound
        working_set,
        reserved2: mostly(rng, 0.97, 0),
        seed: if working_set == 1 {
            mostly(rng, 0.9, 0)
        } else {
            rng.random()
        },
        working_set_bytes: rng.random(),
        states_digest: rng.random(),
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
    /// Counts one call's outcome; keeps the first 20 errnos the module must not return.
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
            if req == HB_KMOD_IOC_RUN || req == HB_KMOD_IOC_RUN_V1 {
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

/// Forks a child that issues pre-generated random ioctls on the session, then exits.
///
/// The child inherits the session's fd and makes async-signal-safe calls only.
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

/// The fuzz loop proper, on the calling thread, until `duration` has passed.
///
/// Random ioctls on the session and on a second session opened and closed at random, forks
/// whose children issue ioctls, cgroup moves.
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

/// Valid FIRE and RUN calls in random models from a second thread until `stop`.
///
/// Meanwhile the fuzz loop attaches, detaches, resets and moves the process. Returns the calls
/// made and the errors seen (none are expected).
fn concurrent_firer(dev: &Device, stop: &AtomicBool, seed: u64) -> (u64, Vec<String>) {
    let mut rng = SmallRng::seed_from_u64(seed ^ 0x5eed_f1e5);
    let mut buf = [0u64; 8];
    let mut calls = 0u64;
    let mut errors = Vec::new();
    while !stop.load(Ordering::Relaxed) {
        let model = ModelKind::ALL[rng.random_range(0..ModelKind::ALL.len())];
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

/// Random ioctls, forks, cgroup moves and sessions for `duration`; then dispatch must be exact.
///
/// Valid fires run from a second thread all along.
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
            let cgs = Cg::make_all(&mut tree, ["f", "f/a", "f/a/b", "f/c", "g"])?;
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
        fire_expect(&dev, ModelKind::GlobalFilter, 0, &p, &[1])?;
        ctx("install", dev.install_task(ModelKind::TaskChain, p[0].prog_ref(), 1))?;
        fire_expect(&dev, ModelKind::TaskChain, 1, &p, &[1])?;
        attach(&dev, &cg, p[0].prog_ref(), 2, AttachFlags::ALLOW_MULTI)?;
        cg.enter()?;
        fire_expect(&dev, ModelKind::CgroupEffective, 2, &p, &[1])?;
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
}
