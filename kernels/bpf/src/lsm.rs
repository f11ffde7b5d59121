//! hookbench's BPF LSM programs, on the `socket_create` hook: per cgroup and global.
//!
//! BPF C in `src/bpf/lsm.bpf.c` (its own object and skeleton beside `hookbench.bpf.c`) with the
//! ABI header `src/bpf/lsm.h` (plus `hookbench.h`'s body codes and map layouts).
//!
//! Both kinds run on the LSM hook `socket_create` (`security_socket_create()`, called by
//! `__sock_create()` on every `socket(2)`), through a BPF trampoline on the BPF LSM's stub
//! `bpf_lsm_socket_create` (kernel/bpf/bpf_lsm.c). They only run when `bpf` is one of the
//! active LSMs (`lsm=` on the kernel command line, `CONFIG_LSM`), and they need a kernel that
//! allows trampolines (`CONFIG_BPF_LSM`, BTF, a JIT with trampoline support, no lockdown or
//! policy refusing them):
//!
//! - [`LsmAttach::Cgroup`]: `lsm_cgroup/socket_create` (`BPF_LSM_CGROUP`, kernel >= 6.0),
//!   attached to a cgroup with a link ([`LsmProgram::attach_cgroup`]). The first attach of the
//!   hook links a shim program into the trampoline (`bpf_trampoline_link_cgroup_shim`); the
//!   shim (`__cgroup_bpf_run_lsm_current`, since the hook's first argument is not a socket)
//!   runs `current`'s cgroup's effective array of the hook, recomputed on attach with
//!   ALLOW_MULTI semantics as for cgroup-bpf. At most [`crate::BPF_CGROUP_MAX_PROGS`] per
//!   cgroup and hook. Programs return [`HB_LSM_CGROUP_VERDICT_ALLOW`].
//! - [`LsmAttach::Global`]: `lsm/socket_create` (`BPF_LSM_MAC`), attached globally
//!   ([`LsmProgram::attach_global`]): each program is one more entry of the trampoline, run for
//!   every task of the machine. Each checks whether it applies to the current task (its
//!   `hb_task` task storage, [`LsmProgram::mark_task`]) before running its body. At most
//!   [`BPF_MAX_TRAMP_LINKS`] programs per hook (`-E2BIG`, [`BpfError::MaxTrampolineLinks`]).
//!   Programs return [`HB_LSM_VERDICT_ALLOW`].
//!
//! Like [`crate::ProgramInstance`], an [`LsmProgram`] opens the object and loads exactly one
//! of its programs with its own maps, so N instances are N distinct kernel programs. Links
//! detach when dropped and when the owning process dies.

use std::os::fd::{AsRawFd, BorrowedFd};

use libbpf_rs::libbpf_sys;
use libbpf_rs::{AsRawLibbpf, Link, MapCore, MapFlags, Program};

use crate::{AttachType, BpfError, LoadedProgram, SockBody, BPF_CGROUP_MAX_PROGS};

crate::embed_object!(LSM_OBJECT, skel, "lsm");

/// The text of the ABI header `src/bpf/lsm.h`, which the constants below mirror.
///
/// A unit test checks every one.
pub const LSM_HEADER: &str = include_str!("bpf/lsm.h");

/// `HB_LSM_VERDICT_ALLOW`: what a global `lsm` program returns to allow (0; an errno denies).
pub const HB_LSM_VERDICT_ALLOW: u32 = 0;
/// `HB_LSM_CGROUP_VERDICT_ALLOW`: what an `lsm_cgroup` program returns to allow (1; 0 denies).
pub const HB_LSM_CGROUP_VERDICT_ALLOW: u32 = 1;
/// `HB_TASK_MARK_APPLIES`: the `hb_task` value of a task the global programs apply to.
pub const HB_TASK_MARK_APPLIES: u64 = 1;

/// Most programs one trampoline holds, i.e. most global `lsm/socket_create` programs.
///
/// fentry + fexit + lsm/fmod_ret links of one kernel function: `BPF_MAX_TRAMP_LINKS` of
/// include/linux/bpf.h, 38 on every arch but s390x's 27; `bpf_trampoline_link_prog` returns
/// `E2BIG` past it.
pub const BPF_MAX_TRAMP_LINKS: usize = if cfg!(target_arch = "s390x") { 27 } else { 38 };

/// The kernel function whose trampoline runs both kinds of program.
///
/// The BPF LSM's stub for the `socket_create` hook.
pub const LSM_HOOK_FUNC: &str = "bpf_lsm_socket_create";

/// How an LSM program is attached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LsmAttach {
    /// `lsm_cgroup/socket_create` (`BPF_LSM_CGROUP`): per cgroup, effective arrays.
    Cgroup,
    /// `lsm/socket_create` (`BPF_LSM_MAC`): global, checks task storage first.
    Global,
}

impl LsmAttach {
    /// Both kinds.
    pub const ALL: [LsmAttach; 2] = [LsmAttach::Cgroup, LsmAttach::Global];

    /// The program's name in the object for `body`.
    pub fn prog_name(self, body: SockBody) -> &'static str {
        body.program_of(match self {
            LsmAttach::Cgroup => ["hb_lsmcg_null", "hb_lsmcg_counter", "hb_lsmcg_lookup"],
            LsmAttach::Global => ["hb_lsm_null", "hb_lsm_counter", "hb_lsm_lookup"],
        })
    }

    /// The section prefix, e.g. `"lsm_cgroup"`.
    pub fn section(self) -> &'static str {
        match self {
            LsmAttach::Cgroup => "lsm_cgroup",
            LsmAttach::Global => "lsm",
        }
    }
}

/// One loaded LSM program: its own libbpf object with only that program loaded, and its own maps.
///
/// The maps are `hb_counter`, `hb_lookup`, and for global programs `hb_task`. Dropping it closes
/// the program fd; the kernel frees the program once no link holds it.
#[derive(Debug)]
pub struct LsmProgram {
    loaded: LoadedProgram,
    attach: LsmAttach,
    body: SockBody,
    id: u32,
}

impl LsmProgram {
    /// Loads the program of `attach` and `body` alone from [`LSM_OBJECT`], with its own maps.
    ///
    /// As [`LoadedProgram::load`]: every other program is marked not to autoload (and, for
    /// [`LsmAttach::Cgroup`], the unused `hb_task` map not to be created); libbpf resolves
    /// `bpf_lsm_socket_create` in the kernel's BTF, the verifier checks the program against the
    /// hook, and `hb_lookup` gets keys `0..HB_LOOKUP_ENTRIES` (value = key). Errors:
    /// [`BpfError::Open`], [`BpfError::LoadLsm`] (`EPERM` where the kernel refuses trampolines or
    /// without root; `EINVAL`/`ESRCH` where it lacks `CONFIG_BPF_LSM` or, for `lsm_cgroup`, is older
    /// than 6.0), [`BpfError::Missing`], [`BpfError::Map`].
    pub fn load(attach: LsmAttach, body: SockBody) -> Result<LsmProgram, BpfError> {
        let create_map = |m: &str| attach != LsmAttach::Cgroup || m != "hb_task";
        let loaded =
            LoadedProgram::load(LSM_OBJECT, attach.prog_name(body), create_map).map_err(|e| e.into_bpf(true))?;
        let id = loaded.id().unwrap_or(0);
        Ok(LsmProgram {
            loaded,
            attach,
            body,
            id,
        })
    }

    /// How the program attaches.
    pub fn attach_kind(&self) -> LsmAttach {
        self.attach
    }

    /// The program's body.
    pub fn body(&self) -> SockBody {
        self.body
    }

    /// The kernel's program id (`bpf_prog_info.id`; 0 if it could not be read).
    pub fn id(&self) -> u32 {
        self.id
    }

    /// The program's name in the object.
    pub fn name(&self) -> &'static str {
        self.attach.prog_name(self.body)
    }

    /// The program fd, borrowed (`None` only if libbpf lost it).
    pub fn fd(&self) -> Option<BorrowedFd<'_>> {
        self.loaded.fd()
    }

    fn program(&self) -> Result<Program<'_>, BpfError> {
        self.loaded.program().map_err(|e| e.into_bpf(true))
    }

    /// Attaches an [`LsmAttach::Cgroup`] program to the cgroup open as `cgroup`, with a link.
    ///
    /// `bpf_program__attach_cgroup` -> `BPF_LINK_CREATE` with `BPF_LSM_CGROUP`, ALLOW_MULTI
    /// semantics; `__cgroup_bpf_attach` links the hook's shim into the trampoline when it is the
    /// hook's first program anywhere, then recomputes the effective arrays of the cgroup and its
    /// descendants. Dropping the link detaches it. Errors: [`BpfError::MaxProgs`] on `E2BIG`,
    /// [`BpfError::Attach`] with the errno otherwise (also for a global program: `EINVAL`).
    pub fn attach_cgroup(&self, cgroup: BorrowedFd<'_>) -> Result<Link, BpfError> {
        if self.attach != LsmAttach::Cgroup {
            return Err(self.attach_error(libc::EINVAL));
        }
        // SAFETY: the program pointer is valid while `self.loaded` lives.
        let ptr = unsafe { libbpf_sys::bpf_program__attach_cgroup(self.loaded.raw_program(), cgroup.as_raw_fd()) };
        crate::link_or_errno(ptr).map_err(|errno| self.attach_error(errno))
    }

    /// Attaches an [`LsmAttach::Global`] program to its hook, for every task.
    ///
    /// `bpf_program__attach_lsm` -> `BPF_LINK_CREATE` / `BPF_RAW_TRACEPOINT_OPEN`;
    /// `bpf_trampoline_link_prog` regenerates the trampoline of `bpf_lsm_socket_create` with one
    /// more program. Dropping the link detaches it. Errors: [`BpfError::MaxTrampolineLinks`] on
    /// `E2BIG`, [`BpfError::AttachLsm`] with the errno otherwise (also for an `lsm_cgroup`
    /// program: `EINVAL`).
    pub fn attach_global(&self) -> Result<Link, BpfError> {
        let prog = self.program()?;
        if self.attach != LsmAttach::Global {
            return Err(self.attach_error(libc::EINVAL));
        }
        // SAFETY: as in `attach_cgroup`.
        let ptr = unsafe { libbpf_sys::bpf_program__attach_lsm(prog.as_libbpf_object().as_ptr()) };
        crate::link_or_errno(ptr).map_err(|errno| self.attach_error(errno))
    }

    fn attach_error(&self, errno: i32) -> BpfError {
        match (errno, self.attach) {
            (libc::E2BIG, LsmAttach::Cgroup) => BpfError::MaxProgs {
                attach_type: AttachType::LsmCgroup,
            },
            (libc::E2BIG, LsmAttach::Global) => BpfError::MaxTrampolineLinks { prog: self.name() },
            (_, LsmAttach::Cgroup) => BpfError::Attach {
                prog: self.name(),
                attach_type: AttachType::LsmCgroup,
                errno: std::io::Error::from_raw_os_error(errno),
            },
            (_, LsmAttach::Global) => BpfError::AttachLsm {
                prog: self.name(),
                errno: std::io::Error::from_raw_os_error(errno),
            },
        }
    }

    /// Marks the task whose pidfd is `pidfd` as one this global program applies to.
    ///
    /// Writes [`HB_TASK_MARK_APPLIES`] into its `hb_task` task storage (`BPF_MAP_UPDATE_ELEM` keyed
    /// by the pidfd; the storage is freed with the task or the map). Errors: [`BpfError::Map`],
    /// [`BpfError::Missing`] (an `lsm_cgroup` program has no `hb_task`).
    pub fn mark_task(&self, pidfd: BorrowedFd<'_>) -> Result<(), BpfError> {
        let map = self.loaded.map("hb_task").map_err(|e| e.into_bpf(true))?;
        let key: libc::c_int = pidfd.as_raw_fd();
        map.update(&key.to_ne_bytes(), &HB_TASK_MARK_APPLIES.to_ne_bytes(), MapFlags::ANY)
            .map_err(|source| BpfError::Map {
                op: "update",
                map: "hb_task",
                prog: self.name(),
                source,
            })
    }

    /// The program's counter, `hb_counter[HB_COUNTER_KEY]`.
    ///
    /// The body's runs for the counter body (for a global program: on marked tasks only), 0 for the
    /// others. Errors: [`BpfError::Map`], [`BpfError::Missing`].
    pub fn counter(&self) -> Result<u64, BpfError> {
        self.loaded.counter().map_err(|e| e.into_bpf(true))
    }
}

/// Whether `error` (of [`LsmProgram::load`]) is the kernel refusing the load with `EPERM`
/// (trampolines refused, or not root).
pub fn is_permission_denied(error: &BpfError) -> bool {
    matches!(error, BpfError::LoadLsm { source, .. } if source.kind() == libbpf_rs::ErrorKind::PermissionDenied)
}

// The cgroup cap is shared with cgroup-bpf (one effective array per cgroup and LSM hook).
const _: () = assert!(BPF_CGROUP_MAX_PROGS == 64 && BPF_MAX_TRAMP_LINKS < BPF_CGROUP_MAX_PROGS);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lsm_abi_constants_match_the_header() {
        for (name, v) in [
            ("HB_LSM_VERDICT_ALLOW", u64::from(HB_LSM_VERDICT_ALLOW)),
            ("HB_LSM_CGROUP_VERDICT_ALLOW", u64::from(HB_LSM_CGROUP_VERDICT_ALLOW)),
            ("HB_TASK_MARK_APPLIES", HB_TASK_MARK_APPLIES),
        ] {
            assert_eq!(crate::tests::header_define(LSM_HEADER, name), v, "{name}");
        }
    }

    #[test]
    fn lsm_object_has_every_program_and_map() {
        let crate::ObjectNames { programs: progs, maps } = crate::object_names(LSM_OBJECT).expect("open object");
        for attach in LsmAttach::ALL {
            for body in SockBody::ALL {
                let name = attach.prog_name(body);
                let sec = format!("{}/socket_create", attach.section());
                assert!(
                    progs.iter().any(|(n, s)| n == name && *s == sec),
                    "{name} in {sec}: {progs:?}"
                );
            }
        }
        assert_eq!(progs.len(), 6, "{progs:?}");
        for m in ["hb_counter", "hb_lookup", "hb_task"] {
            assert!(maps.iter().any(|n| n == m), "{m}: {maps:?}");
        }
    }

    /// Every LSM program loads as a distinct program, or every load is refused with EPERM.
    ///
    /// EPERM where the kernel refuses trampolines (this project's development host: before the
    /// verifier runs).
    #[test]
    fn lsm_programs_load_or_are_refused_with_eperm() {
        if !hookbench_sys::testing::root_or_skip_bpf("lsm_programs_load_or_are_refused_with_eperm") {
            return;
        }
        let mut ids = Vec::new();
        for attach in LsmAttach::ALL {
            for body in SockBody::ALL {
                match LsmProgram::load(attach, body) {
                    Ok(p) => {
                        assert!(p.id() > 0 && crate::prog_exists(p.id()), "{p:?}");
                        assert_eq!(p.counter().expect("counter"), 0);
                        ids.push(p.id());
                    }
                    Err(e) if is_permission_denied(&e) => {
                        eprintln!("{attach:?}/{body:?}: refused with EPERM (trampolines refused here): {e}");
                    }
                    Err(e) => panic!("{attach:?}/{body:?}: {e}"),
                }
            }
        }
        let mut sorted = ids.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), ids.len(), "distinct programs: {ids:?}");
        assert!(ids.is_empty() || ids.len() == 6, "all or none load: {ids:?}");
    }
}
