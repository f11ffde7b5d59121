//! The dispatch checks: every model runs exactly the expected programs (see the module docs).
//!
//! The cgroup-effective scenarios are in `cgroup.rs`; this file runs them on one test tree,
//! between the checks of the other models, sessions and program references.

use std::os::fd::AsFd;
use std::time::{Duration, Instant};

use hookbench_model::{AttachFlags, ModelKind};
use nix::errno::Errno;
use nix::sys::signal::{kill, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag};
use nix::unistd::{fork, ForkResult};

use super::cgroup::CGROUP_CHECKS;
use super::fixtures::{Firer, TestTree};
use super::report::CheckReport;
use super::working_set;
use super::{counters, ctx, eventually, expect_errno, fire_expect, load, open_device, stats, with_deltas, Check};
use crate::abi::*;
use crate::device::{Device, ProgRef};
use crate::progs::{KmodProgram, ProgKind};
use crate::KmodError;

/// Runs `check` on the test tree, then leaves its cgroups and RESETs the session in any case.
///
/// The check's own error comes first, then the leave's, then the reset's.
fn in_tree(dev: &Device, tree: &mut TestTree, check: impl FnOnce(&Device, &mut TestTree) -> Check) -> Check {
    let r = check(dev, tree);
    let back = tree.leave();
    let reset = ctx("reset", dev.reset());
    let out = r?;
    back?;
    reset?;
    Ok(out)
}

/// Every model dispatches exactly the expected programs (see the module docs).
pub fn check_dispatch() -> CheckReport {
    let mut report = CheckReport::default();
    let Some(dev) = report.setup("dispatch/open", open_device()) else {
        return report;
    };
    report.record("dispatch/version", || check_version(&dev));
    report.record("dispatch/baseline", || check_baseline(&dev));
    report.record("dispatch/global-filter", || check_global(&dev));
    for model in [ModelKind::TaskChain, ModelKind::TaskHookArray] {
        report.record(&format!("dispatch/{model}"), || check_task_model(&dev, model));
        report.record(&format!("dispatch/{model}-limit"), || check_task_limit(&dev, model));
    }
    let Some(mut tree) = report.setup("dispatch/cgroup-tree", TestTree::new("dispatch")) else {
        return report;
    };
    for (name, f) in CGROUP_CHECKS {
        report.record(&format!("dispatch/cgroup-effective/{name}"), || {
            in_tree(&dev, &mut tree, f)
        });
    }
    for model in [
        ModelKind::TaskChain,
        ModelKind::TaskHookArray,
        ModelKind::CgroupEffective,
    ] {
        report.record(&format!("dispatch/working-set/{model}"), || {
            in_tree(&dev, &mut tree, |dev, tree| working_set::check_model(dev, model, tree))
        });
    }
    drop(tree);
    report.record("dispatch/working-set/limits", || working_set::check_limits(&dev));
    report.record("dispatch/working-set/interrupted", working_set::check_interrupted);
    report.record("dispatch/abi-1-caller", || working_set::check_abi1(&dev));
    report.record("dispatch/run-stops-on-kill", check_run_killed);
    report.record("dispatch/sessions", || check_sessions(&dev));
    report.record("dispatch/references-dropped", || check_references(&dev));
    report.record("dispatch/reset-frees-all", || check_reset_frees(&dev));
    report
}

/// VERSION returns the header's ABI version and limits.
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

/// With nothing attached every model runs no program and allows.
fn check_baseline(dev: &Device) -> Check {
    ctx("reset", dev.reset())?;
    for model in ModelKind::ALL {
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

/// global-filter: per-hook lists, duplicates refused, detach, RUN's counts, the 64-program cap.
fn check_global(dev: &Device) -> Check {
    ctx("reset", dev.reset())?;
    let p = counters(3)?;
    let g = ModelKind::GlobalFilter;
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
    let (f, d) = with_deltas(&p, || ctx("fire", dev.fire(g, 0)))?;
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
    let (run, d) = with_deltas(&p, || ctx("run", dev.run(g, 0, 8, 3)))?;
    let d0 = d[0];
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

/// A task model: per-hook dispatch, fork shares state, later installs stay in the parent.
fn check_task_model(dev: &Device, model: ModelKind) -> Check {
    ctx("reset", dev.reset())?;
    let chain = model == ModelKind::TaskChain;
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
    let (ran, d) = with_deltas(&p, || child.fire())?;
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
    let (ran, d) = with_deltas(&p, || child.fire())?;
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

/// DETACH in a task model, which the module refuses (the wrapper has no such call).
fn detach_task(dev: &Device, model: ModelKind, p: &KmodProgram) -> Result<(), KmodError> {
    let mut a = HbKmodAttach {
        abi_version: HB_KMOD_ABI_VERSION,
        model: model_raw(model),
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

/// A task model's cap of `HB_KMOD_MAX_TASK_PROGS` and RUN's bound on a batch's work.
fn check_task_limit(dev: &Device, model: ModelKind) -> Check {
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
    if model == ModelKind::TaskChain {
        expect_errno(
            "RUN on an empty hook of a long chain",
            dev.run(model, 3, max_batch + 1, 1),
            Errno::E2BIG,
        )?;
    }
    ctx("reset", dev.reset())?;
    Ok(format!("{HB_KMOD_MAX_TASK_PROGS} installs, then E2BIG"))
}

/// A RUN of 2^28 fires in a child (its own session) stops within seconds of SIGKILL.
///
/// The loop checks for signals between batches, and the session is freed when the child dies.
fn check_run_killed() -> Check {
    let mut samples = vec![0u64; 4096];
    let mut run = HbKmodRun {
        abi_version: HB_KMOD_ABI_VERSION,
        model: HB_KMOD_MODEL_GLOBAL_FILTER,
        hook: 0,
        batch: HB_KMOD_MAX_BATCH,
        samples: 4096,
        samples_addr: samples.as_mut_ptr() as u64,
        working_set: 1,
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

/// Each open file is its own session; closing it frees it.
fn check_sessions(dev: &Device) -> Check {
    ctx("reset", dev.reset())?;
    let d2 = open_device()?;
    ctx("attach in the second session", d2.attach_global(ProgRef::NullBody, 0))?;
    ctx(
        "install in the second session",
        d2.install_task(ModelKind::TaskChain, ProgRef::NullBody, 0),
    )?;
    let fires = [
        (dev, ModelKind::GlobalFilter, 0, "sessions share state"),
        (dev, ModelKind::TaskChain, 0, "sessions share task state"),
        (&d2, ModelKind::GlobalFilter, 1, "second session lost its program"),
        (&d2, ModelKind::TaskChain, 1, "second session lost its task program"),
    ];
    for (session, model, want, what) in fires {
        ensure!(ctx("fire", session.fire(model, 0))?.progs_run == want, "{what}");
    }
    let s2 = stats(&d2)?;
    ensure!(
        s2.chain_nodes == 1 && s2.attachments == 1,
        "second session stats {s2:?}"
    );
    drop(d2);
    let d3 = open_device()?;
    ensure!(
        ctx("fire", d3.fire(ModelKind::GlobalFilter, 0))?.progs_run == 0,
        "a new session is not empty"
    );
    Ok("each open file is its own session; closing it frees it".into())
}

/// The module drops its program references on RESET and on close; the kernel then frees them.
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
        ctx("chain", sess.install_task(ModelKind::TaskChain, p.prog_ref(), 1))?;
        ctx("arrays", sess.install_task(ModelKind::TaskHookArray, p.prog_ref(), 1))?;
        ctx(
            "cgroup",
            sess.attach_cgroup(cgfd.as_fd(), p.prog_ref(), 1, AttachFlags::ALLOW_MULTI),
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

/// After RESET the session accounts nothing.
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

#[cfg(test)]
mod tests {
    use super::*;

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
