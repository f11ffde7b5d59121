//! The bad-argument checks: every refused ioctl gives its documented errno, and no harm.
//!
//! Wrong ABI versions, non-zero reserved fields, unknown models and hooks, bad fds and flags,
//! oversized counts, bad request numbers and bad addresses; after each case the module must
//! still answer VERSION and FIRE.

use std::fs;
use std::os::fd::{AsRawFd, OwnedFd};

use hookbench_model::{AttachFlags, ModelKind};
use nix::errno::Errno;

use super::fixtures::{attach, Cg, TestTree};
use super::report::CheckReport;
use super::{ctx, fire_expect, load, open_device};
use crate::abi::*;
use crate::device::Device;
use crate::progs::{KmodProgram, ProgKind};

/// What an ioctl returned, or what a case expects it to return.
type Want = Result<(), Errno>;

const OK: Want = Ok(());
const EINVAL: Want = Err(Errno::EINVAL);
const EBADF: Want = Err(Errno::EBADF);
const E2BIG: Want = Err(Errno::E2BIG);
const EFAULT: Want = Err(Errno::EFAULT);

/// One bad call: what it returned and what it should have.
struct Case {
    name: String,
    got: Want,
    want: Want,
}

/// A read-only and an unmapped page for address checks.
pub(super) struct Pages {
    pub(super) ro: usize,
    unmapped: usize,
}

impl Pages {
    /// Maps the read-only page, and maps and unmaps the other.
    pub(super) fn new() -> Result<Pages, String> {
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
pub(super) const KERNEL_ADDR: usize = 0xffff_8880_0000_0000;

/// Bad arguments give the documented errnos and leave the module usable.
pub fn check_bad_args() -> CheckReport {
    let mut report = CheckReport::default();
    let Some(dev) = report.setup("bad-args/open", open_device()) else {
        return report;
    };
    let Some(mut tree) = report.setup("bad-args/cgroup-tree", TestTree::new("badargs")) else {
        return report;
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
    let Some((cg, prog, over, wrong, devnull, pages)) = report.setup("bad-args/fixtures", fixtures) else {
        return report;
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
        fire_expect(&dev, ModelKind::GlobalFilter, 0, std::slice::from_ref(&prog), &[1])?;
        cg.enter()?;
        attach(&dev, &cg, prog.prog_ref(), 0, AttachFlags::ALLOW_MULTI)?;
        fire_expect(&dev, ModelKind::CgroupEffective, 0, std::slice::from_ref(&prog), &[1])?;
        tree.leave()?;
        ctx("reset", dev.reset())?;
        Ok("attach and fire work after every bad call".into())
    });
    report
}

/// Runs `f`, then checks the module still answers VERSION and FIRE.
fn case(dev: &Device, name: impl Into<String>, want: Want, f: impl FnOnce() -> Want) -> Case {
    let name = name.into();
    let got = f();
    let usable = dev.version().is_ok() && dev.fire(ModelKind::GlobalFilter, 0).is_ok();
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

/// The [`case`] of ioctl `request` on a copy of `arg`, one of the ABI structs.
fn ioctl_case<T: Copy>(dev: &Device, name: impl Into<String>, request: u64, arg: T, want: Want) -> Case {
    let mut arg = arg;
    case(dev, name, want, || dev.ioctl(request, &mut arg))
}

/// `base` with `change` made: one bad field of an otherwise valid argument.
fn with<T: Copy>(base: T, change: impl FnOnce(&mut T)) -> T {
    let mut v = base;
    change(&mut v);
    v
}

/// A valid ATTACH of `model` on hook 0 (ALLOW_MULTI for cgroup-effective).
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

/// A valid FIRE of task-chain on hook 0.
fn fire_template() -> HbKmodFire {
    HbKmodFire {
        abi_version: HB_KMOD_ABI_VERSION,
        model: HB_KMOD_MODEL_TASK_CHAIN,
        ..Default::default()
    }
}

/// Every ioctl but VERSION refuses another ABI version with EPROTO.
fn bad_version(dev: &Device, cg: &Cg) -> Vec<Case> {
    let mut v = Vec::new();
    let mut buf = [0u64; 1];
    let run = HbKmodRun {
        batch: 1,
        samples: 1,
        samples_addr: buf.as_mut_ptr() as u64,
        working_set: 1,
        ..Default::default()
    };
    let cgroup = attach_template(HB_KMOD_MODEL_CGROUP_EFFECTIVE, -1, cg.fd().as_raw_fd());
    let global = attach_template(HB_KMOD_MODEL_GLOBAL_FILTER, -1, -1);
    for abi in [0, HB_KMOD_ABI_VERSION + 1, u32::MAX] {
        let want = Err(Errno::EPROTO);
        let name = |rn: &str| format!("{rn} abi {abi}");
        let a = with(cgroup, |a| a.abi_version = abi);
        v.push(ioctl_case(dev, name("ATTACH"), HB_KMOD_IOC_ATTACH, a, want));
        let a = with(global, |a| a.abi_version = abi);
        v.push(ioctl_case(dev, name("DETACH"), HB_KMOD_IOC_DETACH, a, want));
        let f = with(fire_template(), |f| f.abi_version = abi);
        v.push(ioctl_case(dev, name("FIRE"), HB_KMOD_IOC_FIRE, f, want));
        let r = with(run, |r| r.abi_version = abi);
        v.push(ioctl_case(dev, name("RUN"), HB_KMOD_IOC_RUN, r, want));
        let r = with(HbKmodReset::default(), |r| r.abi_version = abi);
        v.push(ioctl_case(dev, name("RESET"), HB_KMOD_IOC_RESET, r, want));
        let s = with(HbKmodStats::default(), |s| s.abi_version = abi);
        v.push(ioctl_case(dev, name("STATS"), HB_KMOD_IOC_STATS, s, want));
    }
    let version = with(HbKmodVersion::default(), |v| v.abi_version = 77);
    v.push(ioctl_case(
        dev,
        "VERSION ignores its input",
        HB_KMOD_IOC_VERSION,
        version,
        OK,
    ));
    v
}

/// ATTACH and DETACH refuse bad models, hooks, reserved fields, fds, programs and flags.
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
    // Each case starts from an empty session.
    let mut run = |name: String, req: u64, a: HbKmodAttach, want: Want| {
        v.push(ioctl_case(dev, name, req, a, want));
        let _ = dev.reset();
    };
    let (att, det) = (HB_KMOD_IOC_ATTACH, HB_KMOD_IOC_DETACH);
    let cgm = HB_KMOD_MODEL_CGROUP_EFFECTIVE;
    let gm = HB_KMOD_MODEL_GLOBAL_FILTER;
    let global = attach_template(gm, -1, -1);
    // The valid templates work.
    run(
        "valid cgroup attach".into(),
        att,
        attach_template(cgm, prog.raw_fd(), cgfd),
        OK,
    );
    run("valid global attach".into(), att, global, OK);
    let task = attach_template(HB_KMOD_MODEL_TASK_HOOK_ARRAY, -1, -1);
    run("valid task install".into(), att, task, OK);
    for (req, rn) in [(att, "ATTACH"), (det, "DETACH")] {
        for model in [HB_KMOD_MODELS, 77, u32::MAX] {
            run(
                format!("{rn} model {model}"),
                req,
                attach_template(model, -1, -1),
                EINVAL,
            );
        }
        for hook in [HB_KMOD_MAX_HOOKS, 1000, u32::MAX] {
            run(
                format!("{rn} hook {hook}"),
                req,
                with(global, |a| a.hook = hook),
                EINVAL,
            );
        }
        for reserved in [1u64, 1 << 63] {
            let a = with(global, |a| a.reserved = reserved);
            run(format!("{rn} reserved {reserved:#x}"), req, a, EINVAL);
        }
        for cg_bad in [3, devnull, 100_000] {
            let a = attach_template(gm, -1, cg_bad);
            run(format!("{rn} global with cgroup_fd {cg_bad}"), req, a, EINVAL);
        }
        for fd in [-2, i32::MIN, 100_000] {
            run(format!("{rn} prog_fd {fd}"), req, attach_template(gm, fd, -1), EBADF);
        }
        run(
            format!("{rn} prog_fd /dev/null"),
            req,
            attach_template(gm, devnull, -1),
            EINVAL,
        );
        if let Some(mfd) = prog.map_fd() {
            let a = attach_template(gm, mfd.as_raw_fd(), -1);
            run(format!("{rn} prog_fd is a map"), req, a, EINVAL);
        }
        let a = attach_template(gm, wrong.raw_fd(), -1);
        run(format!("{rn} socket-filter program"), req, a, EINVAL);
        let a = attach_template(gm, over.raw_fd(), -1);
        run(format!("{rn} program reading past the context"), req, a, EINVAL);
        // DETACH takes no flags.
        let flags = if req == att { HB_KMOD_F_ALLOW_MULTI } else { 0 };
        for cfd in [-1, -5, 100_000, devnull] {
            let a = with(attach_template(cgm, -1, cfd), |a| a.flags = flags);
            run(format!("{rn} cgroup_fd {cfd}"), req, a, EBADF);
        }
    }
    let cgroup = attach_template(cgm, -1, cgfd);
    for flags in [3, 4, 0x8000_0000, u32::MAX] {
        let a = with(cgroup, |a| a.flags = flags);
        run(format!("cgroup ATTACH flags {flags:#x}"), att, a, EINVAL);
    }
    for flags in [1, 2] {
        run(
            format!("cgroup DETACH flags {flags}"),
            det,
            with(cgroup, |a| a.flags = flags),
            EINVAL,
        );
        run(
            format!("global ATTACH flags {flags}"),
            att,
            with(global, |a| a.flags = flags),
            EINVAL,
        );
        let task = attach_template(HB_KMOD_MODEL_TASK_CHAIN, -1, -1);
        run(
            format!("task ATTACH flags {flags}"),
            att,
            with(task, |a| a.flags = flags),
            EINVAL,
        );
    }
    for model in [HB_KMOD_MODEL_TASK_CHAIN, HB_KMOD_MODEL_TASK_HOOK_ARRAY] {
        let a = attach_template(model, -1, -1);
        run(format!("DETACH in model {model}"), det, a, Err(Errno::EOPNOTSUPP));
    }
    run("global DETACH of nothing".into(), det, global, Err(Errno::ENOENT));
    let a = with(cgroup, |a| a.flags = 0);
    run("cgroup DETACH of nothing".into(), det, a, Err(Errno::ENOENT));
    v
}

/// FIRE refuses bad models, hooks, flags and reserved fields.
fn bad_fire(dev: &Device) -> Vec<Case> {
    let valid = fire_template();
    let mut cases = vec![("valid".to_string(), valid, OK)];
    for model in [HB_KMOD_MODELS, u32::MAX] {
        cases.push((format!("model {model}"), with(valid, |f| f.model = model), EINVAL));
    }
    for hook in [HB_KMOD_MAX_HOOKS, u32::MAX] {
        cases.push((format!("hook {hook}"), with(valid, |f| f.hook = hook), EINVAL));
    }
    cases.push(("flags 1".into(), with(valid, |f| f.flags = 1), EINVAL));
    cases.push(("reserved".into(), with(valid, |f| f.reserved = 1), EINVAL));
    cases
        .into_iter()
        .map(|(name, f, want)| ioctl_case(dev, name, HB_KMOD_IOC_FIRE, f, want))
        .collect()
}

/// RUN refuses bad counts (EINVAL, E2BIG), models, hooks, flags and sample addresses.
fn bad_run(dev: &Device, pages: &Pages) -> Vec<Case> {
    let mut buf = vec![0u64; 8];
    let valid = HbKmodRun {
        abi_version: HB_KMOD_ABI_VERSION,
        model: HB_KMOD_MODEL_CGROUP_EFFECTIVE,
        hook: 0,
        batch: 2,
        samples: 8,
        samples_addr: buf.as_mut_ptr() as u64,
        working_set: 1,
        ..Default::default()
    };
    let addr = |a: u64| with(valid, |r| r.samples_addr = a);
    let ws = |w: u32, seed: u64| with(valid, |r| (r.working_set, r.seed) = (w, seed));
    let cases: [(&str, HbKmodRun, Want); 23] = [
        ("valid", valid, OK),
        ("valid working set 2", ws(2, 5), OK),
        ("working set 0", ws(0, 0), EINVAL),
        ("seed with working set 1", ws(1, 5), EINVAL),
        (
            "working set > HB_KMOD_MAX_WORKING_SET",
            ws(HB_KMOD_MAX_WORKING_SET + 1, 5),
            E2BIG,
        ),
        ("working set u32::MAX", ws(u32::MAX, 5), E2BIG),
        (
            "working set 2 in global-filter",
            with(ws(2, 5), |r| r.model = HB_KMOD_MODEL_GLOBAL_FILTER),
            EINVAL,
        ),
        ("reserved2", with(valid, |r| r.reserved2 = 1), EINVAL),
        ("batch 0", with(valid, |r| r.batch = 0), EINVAL),
        ("samples 0", with(valid, |r| r.samples = 0), EINVAL),
        (
            "batch > HB_KMOD_MAX_BATCH",
            with(valid, |r| r.batch = HB_KMOD_MAX_BATCH + 1),
            E2BIG,
        ),
        ("batch u32::MAX", with(valid, |r| r.batch = u32::MAX), E2BIG),
        (
            "samples > HB_KMOD_MAX_SAMPLES",
            with(valid, |r| r.samples = HB_KMOD_MAX_SAMPLES + 1),
            E2BIG,
        ),
        (
            "batch x samples > HB_KMOD_MAX_FIRES",
            with(valid, |r| (r.batch, r.samples) = (HB_KMOD_MAX_BATCH, 4097)),
            E2BIG,
        ),
        ("model 4", with(valid, |r| r.model = 4), EINVAL),
        ("hook 16", with(valid, |r| r.hook = 16), EINVAL),
        ("flags 1", with(valid, |r| r.flags = 1), EINVAL),
        ("reserved", with(valid, |r| r.reserved = 9), EINVAL),
        ("samples_addr 0", addr(0), EFAULT),
        ("samples_addr in the kernel", addr(KERNEL_ADDR as u64), EFAULT),
        ("samples_addr read-only", addr(pages.ro as u64), EFAULT),
        ("samples_addr unmapped", addr(pages.unmapped as u64), EFAULT),
        (
            "samples run past the end of the address space",
            addr(u64::MAX - 8),
            EFAULT,
        ),
    ];
    let v = cases
        .into_iter()
        .map(|(name, r, want)| ioctl_case(dev, name, HB_KMOD_IOC_RUN, r, want))
        .collect();
    drop(buf);
    v
}

/// RESET and STATS refuse flags and reserved fields.
fn bad_reset_stats(dev: &Device) -> Vec<Case> {
    let mut v = Vec::new();
    for (flags, reserved) in [(1u32, 0u64), (0, 1), (u32::MAX, u64::MAX)] {
        let what = format!("flags {flags:#x} reserved {reserved:#x}");
        let r = HbKmodReset {
            abi_version: HB_KMOD_ABI_VERSION,
            flags,
            reserved,
        };
        v.push(ioctl_case(dev, format!("RESET {what}"), HB_KMOD_IOC_RESET, r, EINVAL));
        let s = HbKmodStats {
            abi_version: HB_KMOD_ABI_VERSION,
            flags,
            reserved,
            ..Default::default()
        };
        v.push(ioctl_case(dev, format!("STATS {what}"), HB_KMOD_IOC_STATS, s, EINVAL));
    }
    v
}

/// Unknown request numbers give ENOTTY; bad addresses give EFAULT for every request.
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
            v.push(case(dev, format!("{rn} at {name}"), EFAULT, || unsafe {
                dev.ioctl_raw(req, addr)
            }));
        }
    }
    // SAFETY: the page is read-only; the kernel's write faults.
    v.push(case(dev, "VERSION into a read-only page", EFAULT, || unsafe {
        dev.ioctl_raw(HB_KMOD_IOC_VERSION, pages.ro)
    }));
    v
}
