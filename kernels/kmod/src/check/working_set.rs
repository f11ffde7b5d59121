//! The working-set checks: RUN over W copies of the caller's state (see the uapi header's RUN).
//!
//! Per model with per-task or per-cgroup state: every counter program runs exactly once per
//! fire across the W states, a foreign one never; the module's digest of the states fired is
//! the one the seed's permutation gives ([`crate::abi::states_digest`], so the permutation was
//! followed and every state was found); the states' bytes are W times one state's; and the
//! session's STATS are unchanged afterwards. Then the refusals (bytes over the cap), the free on
//! the EFAULT and signal exits, and an ABI 1 caller's RUN.

use hookbench_model::{AttachFlags, ModelKind};
use nix::errno::Errno;
use nix::sys::signal::{kill, Signal};
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::{fork, ForkResult};
use std::time::Duration;

use super::bad_args::Pages;
use super::fixtures::{attach, Cg, TestTree};
use super::{counters, ctx, expect_errno, fire_expect, stats, with_deltas, Check};
use crate::abi::*;
use crate::device::{Device, ProgRef, WorkingSet};
use crate::progs::KmodProgram;

/// Batch and samples of the checked RUNs: 40 timed fires.
const BATCH: u32 = 8;
/// See [`BATCH`].
const SAMPLES: usize = 5;

/// Attaches `progs` on hook 0 and `foreign` on hook 1 in `model` (cgroup-effective: at `cg`).
fn attach_all(
    dev: &Device,
    model: ModelKind,
    cg: Option<&Cg>,
    progs: &[KmodProgram],
    foreign: &KmodProgram,
) -> Result<(), String> {
    let one = |p: ProgRef<'_>, hook: u32| -> Result<(), String> {
        match (model, cg) {
            (ModelKind::CgroupEffective, Some(cg)) => attach(dev, cg, p, hook, AttachFlags::ALLOW_MULTI).map(|_| ()),
            _ => ctx("install", dev.install_task(model, p, hook)).map(|_| ()),
        }
    };
    one(foreign.prog_ref(), 1)?;
    for p in progs {
        one(p.prog_ref(), 0)?;
    }
    Ok(())
}

/// RUN over working sets of 2, 37 and 256 states in `model` (see the module docs).
pub(super) fn check_model(dev: &Device, model: ModelKind, tree: &mut TestTree) -> Check {
    ctx("reset", dev.reset())?;
    let cg = if model == ModelKind::CgroupEffective {
        let cg = Cg::make(tree, &format!("wset-{model}"))?;
        cg.enter()?;
        Some(cg)
    } else {
        None
    };
    let progs = counters(3)?;
    let foreign = counters(1)?;
    attach_all(dev, model, cg.as_ref(), &progs, &foreign[0])?;
    let before = stats(dev)?;
    let one = ctx("RUN W=1", dev.run(model, 0, BATCH, SAMPLES))?.summary;
    ensure!(
        one.working_set_bytes > 0 && one.states_digest == 0,
        "{model}: RUN with W = 1 reported {} bytes and digest {}",
        one.working_set_bytes,
        one.states_digest
    );
    let fires = u64::from(BATCH) * SAMPLES as u64;
    let mut seen = Vec::new();
    for w in [2u32, 37, 256] {
        let seed = 0x5eed ^ u64::from(w);
        let ws = WorkingSet::new(w, seed);
        let (run, d) = with_deltas(&progs, || {
            ctx(&format!("RUN W={w}"), dev.run_working_set(model, 0, BATCH, SAMPLES, ws))
        })?;
        let s = run.summary;
        // every program once per timed fire, plus RUN's one untimed fire of the caller's state
        ensure!(
            d.iter().all(|&c| c == fires + 1),
            "{model} W={w}: counters moved by {d:?}, expected {} each",
            fires + 1
        );
        let f = foreign[0].counter().map_err(|e| e.to_string())?;
        ensure!(f == 0, "{model} W={w}: the foreign program ran {f} times");
        ensure!(
            s.progs_per_fire == 3 && s.progs_run == 3 * fires && s.verdict == HB_KMOD_VERDICT_ALLOW,
            "{model} W={w}: {s:?}"
        );
        let want = states_digest(&working_set_permutation(w, seed), fires);
        ensure!(
            s.states_digest == want,
            "{model} W={w}: digest {:#x}, the permutation of seed {seed} gives {want:#x}: the states were not \
             fired in the seed's order",
            s.states_digest
        );
        ensure!(
            s.working_set_bytes == u64::from(w) * one.working_set_bytes,
            "{model} W={w}: {} bytes, expected W x {} (one state)",
            s.working_set_bytes,
            one.working_set_bytes
        );
        let after = stats(dev)?;
        ensure!(
            after == before,
            "{model} W={w}: the session's STATS changed: before {before:?}, after {after:?}"
        );
        seen.push(format!("W={w}: {} B", s.working_set_bytes));
    }
    fire_expect(dev, model, 0, &progs, &[1, 1, 1])?;
    if cg.is_some() {
        tree.leave()?;
    }
    ctx("reset", dev.reset())?;
    Ok(format!(
        "every program {fires} times per RUN across the states, digest of the seed's order, bytes W x {} ({}), \
         STATS unchanged",
        one.working_set_bytes,
        seen.join(", ")
    ))
}

/// Refusals: bytes over HB_KMOD_MAX_WORKING_SET_BYTES; the EFAULT exit frees the states.
pub(super) fn check_limits(dev: &Device) -> Check {
    let tc = ModelKind::TaskChain;
    ctx("reset", dev.reset())?;
    for _ in 0..128 {
        ctx("install", dev.install_task(tc, ProgRef::NullBody, 0))?;
    }
    let before = stats(dev)?;
    // 128 chain nodes per state: 65536 states need far more than 256 MiB
    expect_errno(
        "RUN W=65536 with 128 nodes per state",
        dev.run_working_set(tc, 0, 1, 1, WorkingSet::new(HB_KMOD_MAX_WORKING_SET, 1)),
        Errno::E2BIG,
    )?;
    let pages = Pages::new()?;
    let mut r = HbKmodRun {
        abi_version: HB_KMOD_ABI_VERSION,
        model: model_raw(tc),
        batch: 4,
        samples: 4,
        samples_addr: pages.ro as u64,
        working_set: 64,
        seed: 3,
        ..Default::default()
    };
    let got = dev.ioctl(HB_KMOD_IOC_RUN, &mut r);
    ensure!(
        got == Err(Errno::EFAULT),
        "RUN W=64 into a read-only page: {got:?}, expected EFAULT"
    );
    let after = stats(dev)?;
    ensure!(
        after == before,
        "the refused and failed RUNs left state: before {before:?}, after {after:?}"
    );
    ctx("reset", dev.reset())?;
    Ok("E2BIG past 256 MiB of states; EFAULT after the build leaves STATS unchanged".into())
}

/// A RUN over 4096 states interrupted by a signal frees its states (checked by a child).
pub(super) fn check_interrupted() -> Check {
    // Everything the child uses is made before the fork: it calls only open, ioctl,
    // sigaction and _exit.
    let path = c"/dev/hookbench";
    let mut buf = vec![0u64; 4096];
    let install = HbKmodAttach {
        abi_version: HB_KMOD_ABI_VERSION,
        model: HB_KMOD_MODEL_TASK_CHAIN,
        prog_fd: HB_KMOD_PROG_NULL_BODY,
        cgroup_fd: HB_KMOD_NO_CGROUP,
        ..Default::default()
    };
    let run = HbKmodRun {
        abi_version: HB_KMOD_ABI_VERSION,
        model: HB_KMOD_MODEL_TASK_CHAIN,
        batch: 1024,
        samples: 4096,
        samples_addr: buf.as_mut_ptr() as u64,
        working_set: 4096,
        seed: 9,
        ..Default::default()
    };
    let stats0 = HbKmodStats {
        abi_version: HB_KMOD_ABI_VERSION,
        ..Default::default()
    };
    extern "C" fn on_usr1(_: libc::c_int) {}
    // SAFETY: the child only calls async-signal-safe functions on memory it already has.
    let child = match unsafe { fork() }.map_err(|e| format!("fork: {e}"))? {
        ForkResult::Child => unsafe {
            let mut code = 10;
            let fd = libc::open(path.as_ptr(), libc::O_RDWR | libc::O_CLOEXEC);
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = on_usr1 as *const () as usize;
            libc::sigaction(libc::SIGUSR1, &sa, std::ptr::null_mut());
            let (mut a, mut before, mut after) = (install, stats0, stats0);
            let mut ok = fd >= 0;
            for _ in 0..4 {
                ok &= libc::ioctl(fd, HB_KMOD_IOC_ATTACH as _, &mut a as *mut HbKmodAttach) == 0;
            }
            ok &= libc::ioctl(fd, HB_KMOD_IOC_STATS as _, &mut before as *mut HbKmodStats) == 0;
            if ok {
                code = 11;
                for _ in 0..100 {
                    let mut r = run;
                    if libc::ioctl(fd, HB_KMOD_IOC_RUN as _, &mut r as *mut HbKmodRun) < 0 {
                        code = if Errno::last() == Errno::EINTR { 0 } else { 12 };
                        break;
                    }
                }
                if code == 0 {
                    let got = libc::ioctl(fd, HB_KMOD_IOC_STATS as _, &mut after as *mut HbKmodStats);
                    if got != 0 || after != before {
                        code = 13;
                    }
                }
            }
            libc::_exit(code)
        },
        ForkResult::Parent { child } => child,
    };
    std::thread::sleep(Duration::from_millis(500));
    kill(child, Signal::SIGUSR1).map_err(|e| format!("kill: {e}"))?;
    let status = waitpid(child, None).map_err(|e| format!("waitpid: {e}"))?;
    drop(buf);
    match status {
        WaitStatus::Exited(_, 0) => Ok("SIGUSR1 stopped a RUN over 4096 states with EINTR; STATS unchanged".into()),
        WaitStatus::Exited(_, 10) => Err("the child could not open, install or read STATS".into()),
        WaitStatus::Exited(_, 11) => Err("100 RUNs ended before the signal came: make them longer".into()),
        WaitStatus::Exited(_, 12) => Err("a RUN failed with another error than EINTR".into()),
        WaitStatus::Exited(_, 13) => Err("after EINTR the session's STATS differ: states left behind".into()),
        other => Err(format!("the child: {other:?}")),
    }
}

/// An ABI 1 caller's RUN (HB_KMOD_IOC_RUN_V1, 64 bytes) runs W = 1 and writes only its bytes.
pub(super) fn check_abi1(dev: &Device) -> Check {
    let tc = ModelKind::TaskChain;
    ctx("reset", dev.reset())?;
    let progs = counters(2)?;
    for p in &progs {
        ctx("install", dev.install_task(tc, p.prog_ref(), 0))?;
    }
    let mut buf = [0u64; 3];
    let sentinel = 0xa5a5_a5a5_a5a5_a5a5u64;
    let v1 = HbKmodRun {
        abi_version: 1,
        model: model_raw(tc),
        batch: 4,
        samples: 3,
        samples_addr: buf.as_mut_ptr() as u64,
        working_set: 0xa5a5_a5a5,
        reserved2: 0xa5a5_a5a5,
        seed: sentinel,
        working_set_bytes: sentinel,
        states_digest: sentinel,
        ..Default::default()
    };
    let raw = |req: u64, r: &mut HbKmodRun| {
        // SAFETY: `r` is a live HbKmodRun, 96 writable bytes, at least what `req` encodes.
        unsafe { dev.ioctl_raw(req, r as *mut HbKmodRun as usize) }
    };
    let mut r = v1;
    let (got, d) = with_deltas(&progs, || Ok(raw(HB_KMOD_IOC_RUN_V1, &mut r)))?;
    ensure!(got.is_ok(), "RUN_V1 with ABI 1: {got:?}");
    ensure!(
        r.progs_run == 2 * 12 && r.progs_per_fire == 2 && d == [13, 13],
        "RUN_V1: {r:?}, counters {d:?}"
    );
    ensure!(
        (r.working_set, r.reserved2, r.seed, r.working_set_bytes, r.states_digest)
            == (0xa5a5_a5a5, 0xa5a5_a5a5, sentinel, sentinel, sentinel),
        "RUN_V1 wrote past its 64 bytes: {r:?}"
    );
    let mut r = HbKmodRun { abi_version: 2, ..v1 };
    ensure!(
        raw(HB_KMOD_IOC_RUN_V1, &mut r) == Err(Errno::EPROTO),
        "RUN_V1 with ABI 2 was not refused with EPROTO"
    );
    let mut r = HbKmodRun {
        working_set: 1,
        reserved2: 0,
        seed: 0,
        ..v1
    };
    ensure!(
        raw(HB_KMOD_IOC_RUN, &mut r) == Err(Errno::EPROTO),
        "RUN (ABI 2's struct) with ABI 1 was not refused with EPROTO"
    );
    let mut f = HbKmodFire {
        abi_version: 1,
        model: model_raw(tc),
        ..Default::default()
    };
    let got = dev.ioctl(HB_KMOD_IOC_FIRE, &mut f);
    ensure!(
        got.is_ok() && f.progs_run == 2,
        "FIRE with ABI 1: {got:?}, {} programs",
        f.progs_run
    );
    ctx("reset", dev.reset())?;
    Ok("ABI 1: RUN_V1 runs W = 1 and writes 64 bytes; FIRE served; the other RUN size refused".into())
}
