//! The cgroup-effective dispatch scenarios, on hand-built cgroup trees.
//!
//! Those of hookbench-model's cgroup tests, run against kernel/bpf/cgroup.c's rules as the
//! module implements them: ALLOW_MULTI accumulation, NONE blocking, OVERRIDE replacing, detach
//! restoring, the 64-program cap, subtree recompute, removed cgroups, the hook context.

use hookbench_model::{AttachFlags, ModelKind};
use nix::errno::Errno;

use super::fixtures::{attach, attach_refused, detach, null_multi_refused, Cg, TestTree};
use super::{counters, ctx, expect_errno, fire_expect, gettid, load, stats, Check};
use crate::abi::*;
use crate::device::{Device, ProgRef};
use crate::progs::ProgKind;

/// A cgroup-effective scenario on the shared test tree.
type CgroupCheck = fn(&Device, &mut TestTree) -> Check;

/// Every scenario, with its check name under `dispatch/cgroup-effective/`.
pub(super) const CGROUP_CHECKS: [(&str, CgroupCheck); 9] = [
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

/// ALLOW_MULTI: a cgroup runs its own programs, then its ancestors'; recompute counts.
fn cg_multi(dev: &Device, tree: &mut TestTree) -> Check {
    let [r, c1, c2, c3] = Cg::make_all(tree, ["multi", "multi/c1", "multi/c1/c2", "multi/c1/c2/c3"])?;
    let p = counters(4)?;
    let m = AttachFlags::ALLOW_MULTI;
    ensure!(attach(dev, &r, p[0].prog_ref(), 0, m)? == (4, 1), "attach a at the top");
    ensure!(attach(dev, &c1, p[1].prog_ref(), 0, m)? == (3, 2), "attach b at c1");
    ensure!(attach(dev, &c1, p[2].prog_ref(), 0, m)? == (3, 3), "attach c at c1");
    ensure!(attach(dev, &c2, p[3].prog_ref(), 0, m)? == (2, 4), "attach d at c2");
    let cg = ModelKind::CgroupEffective;
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

/// A NONE program blocks attaches below it and is replaced by the next NONE attach.
fn cg_none(dev: &Device, tree: &mut TestTree) -> Check {
    let [x, _x1, x2] = Cg::make_all(tree, ["none", "none/x1", "none/x1/x2"])?;
    let p = counters(3)?;
    attach(dev, &x, p[0].prog_ref(), 0, AttachFlags::NONE)?;
    attach_refused(
        dev,
        "MULTI attach below a NONE program",
        &x2,
        p[1].prog_ref(),
        AttachFlags::ALLOW_MULTI,
        Errno::EPERM,
    )?;
    let cg = ModelKind::CgroupEffective;
    x2.enter()?;
    fire_expect(dev, cg, 0, &p, &[1, 0, 0])?;
    ensure!(
        attach(dev, &x, p[2].prog_ref(), 0, AttachFlags::NONE)? == (3, 1),
        "a NONE attach replaces the program"
    );
    fire_expect(dev, cg, 0, &p, &[0, 0, 1])?;
    attach_refused(
        dev,
        "MULTI on top of NONE",
        &x,
        p[1].prog_ref(),
        AttachFlags::ALLOW_MULTI,
        Errno::EPERM,
    )?;
    let both = AttachFlags::ALLOW_OVERRIDE | AttachFlags::ALLOW_MULTI;
    attach_refused(dev, "OVERRIDE|MULTI", &x, p[1].prog_ref(), both, Errno::EINVAL)?;
    Ok("NONE blocks descendants (EPERM), NONE attach replaces, flags cannot change".into())
}

/// OVERRIDE: a descendant's program replaces the parent's below it; new cgroups inherit.
fn cg_override(dev: &Device, tree: &mut TestTree) -> Check {
    let [y, y1, y2, ys] = Cg::make_all(tree, ["override", "override/y1", "override/y1/y2", "override/ys"])?;
    let p = counters(3)?;
    let o = AttachFlags::ALLOW_OVERRIDE;
    attach(dev, &y, p[0].prog_ref(), 0, o)?;
    ensure!(
        attach(dev, &y1, p[1].prog_ref(), 0, o)?.0 == 2,
        "OVERRIDE at y1 recomputes y1 and y2"
    );
    let cg = ModelKind::CgroupEffective;
    y1.enter()?;
    fire_expect(dev, cg, 0, &p, &[0, 1, 0])?;
    y2.enter()?;
    fire_expect(dev, cg, 0, &p, &[0, 1, 0])?;
    ys.enter()?;
    fire_expect(dev, cg, 0, &p, &[1, 0, 0])?;
    attach(dev, &y2, p[2].prog_ref(), 0, AttachFlags::NONE)?;
    y2.enter()?;
    fire_expect(dev, cg, 0, &p, &[0, 0, 1])?;
    // A cgroup made after the attaches inherits at its first fire (the kernel: at mkdir).
    let y3 = Cg::make(tree, "override/y1/y2/y3")?;
    y3.enter()?;
    fire_expect(dev, cg, 0, &p, &[0, 0, 1])?;
    null_multi_refused(dev, "attach below a NONE program", &y3, Errno::EPERM)?;
    Ok("OVERRIDE replaces the parent's program below; siblings keep it; new cgroups inherit".into())
}

/// A non-MULTI ancestor is left out once something was collected; detach restores exactly.
fn cg_mixed(dev: &Device, tree: &mut TestTree) -> Check {
    let [z, z1, z2, z3] = Cg::make_all(tree, ["mixed", "mixed/z1", "mixed/z1/z2", "mixed/z1/z3"])?;
    let p = counters(4)?;
    let m = AttachFlags::ALLOW_MULTI;
    attach(dev, &z, p[0].prog_ref(), 0, AttachFlags::ALLOW_OVERRIDE)?;
    attach(dev, &z1, p[1].prog_ref(), 0, m)?;
    attach(dev, &z1, p[2].prog_ref(), 0, m)?;
    let cg = ModelKind::CgroupEffective;
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

/// 64 programs per cgroup and hook (E2BIG); the same program twice is EINVAL.
fn cg_cap(dev: &Device, tree: &mut TestTree) -> Check {
    let [w1, w2] = Cg::make_all(tree, ["cap/w1", "cap/w2"])?;
    let p = counters(2)?;
    let m = AttachFlags::ALLOW_MULTI;
    for _ in 0..HB_KMOD_MAX_PROGS {
        attach(dev, &w1, ProgRef::NullBody, 0, m)?;
    }
    null_multi_refused(dev, "65th program", &w1, Errno::E2BIG)?;
    ensure!(detach(dev, &w1, ProgRef::NullBody, 0)?.1 == 63, "detach one null body");
    ensure!(
        attach(dev, &w1, p[0].prog_ref(), 0, m)?.1 == 64,
        "attach into the freed slot"
    );
    attach_refused(dev, "over the cap again", &w1, p[1].prog_ref(), m, Errno::E2BIG)?;
    attach(dev, &w2, p[0].prog_ref(), 0, m)?;
    attach_refused(dev, "same program twice", &w2, p[0].prog_ref(), m, Errno::EINVAL)?;
    w1.enter()?;
    let f = ctx("fire", dev.fire(ModelKind::CgroupEffective, 0))?;
    ensure!(f.progs_run == 64, "ran {}", f.progs_run);
    Ok("64 programs per cgroup and hook (E2BIG), the same program twice is EINVAL".into())
}

/// An attach recomputes the effective arrays of the whole subtree.
fn cg_recompute(dev: &Device, tree: &mut TestTree) -> Check {
    let [v, a, _b, d, _c, _e] = Cg::make_all(tree, ["re", "re/a", "re/a/b", "re/a/b/d", "re/a/c", "re/e"])?;
    let m = AttachFlags::ALLOW_MULTI;
    ensure!(
        attach(dev, &a, ProgRef::NullBody, 0, m)?.0 == 4,
        "attach at a recomputes a, b, d, c"
    );
    ensure!(
        attach(dev, &v, ProgRef::NullBody, 0, m)?.0 == 6,
        "attach at the top recomputes 6"
    );
    d.enter()?;
    let f = ctx("fire", dev.fire(ModelKind::CgroupEffective, 0))?;
    ensure!(f.progs_run == 2, "ran {}", f.progs_run);
    let s = stats(dev)?;
    ensure!(s.cgroup_entries >= 6, "cgroup entries {}", s.cgroup_entries);
    Ok(format!("subtree sizes 4 and 6; {} cgroup entries", s.cgroup_entries))
}

/// A removed cgroup with programs attached gives ENOENT; RESET frees its state.
fn cg_removed(dev: &Device, tree: &mut TestTree) -> Check {
    let q = Cg::make(tree, "removed")?;
    let p = counters(1)?;
    attach(dev, &q, p[0].prog_ref(), 0, AttachFlags::ALLOW_MULTI)?;
    let path = q.path.clone();
    tree.rmdir(&path)?;
    expect_errno(
        "detach at a removed cgroup",
        dev.detach_cgroup(q.fd(), p[0].prog_ref(), 0),
        Errno::ENOENT,
    )?;
    null_multi_refused(dev, "attach at a removed cgroup", &q, Errno::ENOENT)?;
    Ok("rmdir works with programs attached; the removed cgroup gives ENOENT; RESET frees it".into())
}

/// The hook context is {hook, cgroup id (the inode), tid, model}.
fn cg_context(dev: &Device, tree: &mut TestTree) -> Check {
    let r = Cg::make(tree, "ctx")?;
    let rec = load(ProgKind::CtxRecorder)?;
    attach(dev, &r, rec.prog_ref(), 3, AttachFlags::ALLOW_MULTI)?;
    r.enter()?;
    let f = ctx("fire", dev.fire(ModelKind::CgroupEffective, 3))?;
    let ino = TestTree::ino(&r.path)?;
    let got = ctx("recorded context", rec.recorded_ctx())?;
    let want = [3, ino, gettid(), u64::from(HB_KMOD_MODEL_CGROUP_EFFECTIVE)];
    ensure!(f.progs_run == 1 && got == want, "context {got:?}, expected {want:?}");
    ctx("attach", dev.attach_global(rec.prog_ref(), 4))?;
    ctx("fire", dev.fire(ModelKind::GlobalFilter, 4))?;
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

/// The same program attached in all four models runs once per fire in each.
fn cg_every_model(dev: &Device, tree: &mut TestTree) -> Check {
    let r = Cg::make(tree, "every")?;
    let p = counters(1)?;
    ctx("global", dev.attach_global(p[0].prog_ref(), 9))?;
    ctx("chain", dev.install_task(ModelKind::TaskChain, p[0].prog_ref(), 9))?;
    ctx("arrays", dev.install_task(ModelKind::TaskHookArray, p[0].prog_ref(), 9))?;
    attach(dev, &r, p[0].prog_ref(), 9, AttachFlags::ALLOW_MULTI)?;
    r.enter()?;
    for model in ModelKind::ALL {
        fire_expect(dev, model, 9, &p, &[1])?;
    }
    let s = stats(dev)?;
    ensure!(s.attachments == 2, "attachments {}", s.attachments);
    Ok("the same program attached in all four models runs once per fire in each".into())
}
