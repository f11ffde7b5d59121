//! Null-body programs loaded without an object, for cells that need thousands of programs.
//!
//! A [`crate::ProgramInstance`] opens the whole ELF object and creates two maps per program:
//! right for a few programs, too heavy for a working set of thousands of cgroups with N
//! programs each (tens of thousands of programs, and fds). [`load_null`] loads the null body
//! alone with one raw `BPF_PROG_LOAD` (no ELF, no BTF, no map): `r0 = HB_VERDICT_ALLOW; exit`,
//! the two instructions clang makes of `hb_getsockname_null` and `hb_sock_null` in
//! `hookbench.bpf.c`, so the kernel runs the same program. Whether such a program ran is read
//! by id ([`run_count_by_id`]), so the loader need not keep its fd once a link holds it.

use std::os::fd::{BorrowedFd, FromRawFd, OwnedFd};

use libbpf_rs::libbpf_sys;

use crate::{prog_info, BpfError, MeasuredHook, HB_VERDICT_ALLOW};

/// `BPF_ALU64 | BPF_MOV | BPF_K`: `dst = imm`.
const MOV64_IMM: u8 = 0xb7;
/// `BPF_JMP | BPF_EXIT`.
const EXIT: u8 = 0x95;

/// One instruction with `r0` as the destination (the only register the null body writes).
fn insn(code: u8, imm: i32) -> libbpf_sys::bpf_insn {
    libbpf_sys::bpf_insn {
        code,
        _bitfield_align_1: [],
        _bitfield_1: libbpf_sys::bpf_insn::new_bitfield_1(0, 0),
        off: 0,
        imm,
    }
}

/// The null body: `r0 = HB_VERDICT_ALLOW; exit` (allow, for every attach type used).
pub fn null_body() -> [libbpf_sys::bpf_insn; 2] {
    [insn(MOV64_IMM, HB_VERDICT_ALLOW as i32), insn(EXIT, 0)]
}

/// The program type of `hook`'s programs (`enum bpf_prog_type`).
fn prog_type(hook: MeasuredHook) -> libbpf_sys::bpf_prog_type {
    match hook {
        MeasuredHook::Getsockname4 => libbpf_sys::BPF_PROG_TYPE_CGROUP_SOCK_ADDR,
        MeasuredHook::SockCreate => libbpf_sys::BPF_PROG_TYPE_CGROUP_SOCK,
    }
}

/// Loads one null-body program for `hook` and returns its fd.
///
/// One `BPF_PROG_LOAD` of [`null_body`] with the hook's program type and expected attach type,
/// license GPL. Attach it with [`crate::link_create_cgroup`]; the program lives as long as its
/// fd or a link holds it.
///
/// Errors: [`BpfError::Load`] with the errno (`EPERM` without `CAP_BPF` and `CAP_NET_ADMIN`).
pub fn load_null(hook: MeasuredHook) -> Result<OwnedFd, BpfError> {
    let insns = null_body();
    let opts = libbpf_sys::bpf_prog_load_opts {
        sz: std::mem::size_of::<libbpf_sys::bpf_prog_load_opts>() as libbpf_sys::size_t,
        expected_attach_type: hook.attach_type().raw(),
        ..Default::default()
    };
    let mut opts = opts;
    // SAFETY: the name and license are NUL-terminated statics, `insns` and `opts` outlive the
    // call; a returned fd is owned below.
    let fd = unsafe {
        libbpf_sys::bpf_prog_load(
            prog_type(hook),
            c"hb_null".as_ptr(),
            c"GPL".as_ptr(),
            insns.as_ptr(),
            insns.len() as libbpf_sys::size_t,
            &mut opts,
        )
    };
    if fd < 0 {
        return Err(BpfError::Load {
            prog: "hb_null (raw)",
            source: libbpf_rs::Error::from_raw_os_error(-fd),
        });
    }
    // SAFETY: `fd` is a fresh fd owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// The kernel's id of the program open as `fd` (`bpf_prog_info.id`), `None` if unreadable.
pub fn program_id(fd: BorrowedFd<'_>) -> Option<u32> {
    prog_info(fd).ok().map(|i| i.id)
}

/// `bpf_prog_info.run_cnt` of the program with id `id`: its runs while statistics were on.
///
/// It opens the program by id (`BPF_PROG_GET_FD_BY_ID`, root) for one
/// `BPF_OBJ_GET_INFO_BY_FD`. Errors: the errno (`ENOENT`: no such program any more).
pub fn run_count_by_id(id: u32) -> Result<u64, std::io::Error> {
    // SAFETY: plain syscall wrapper; a returned fd is owned below.
    let fd = unsafe { libbpf_sys::bpf_prog_get_fd_by_id(id) };
    if fd < 0 {
        return Err(std::io::Error::from_raw_os_error(-fd));
    }
    // SAFETY: `fd` is a fresh fd owned by nobody else.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    prog_info(std::os::fd::AsFd::as_fd(&fd)).map(|i| i.run_cnt)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_null_body_returns_allow() {
        let [mov, exit] = null_body();
        assert_eq!((mov.code, mov.dst_reg(), mov.src_reg(), mov.imm), (0xb7, 0, 0, 1));
        assert_eq!(exit.code, 0x95);
    }

    #[test]
    fn raw_null_programs_load_and_count_by_id() {
        if !hookbench_sys::testing::root_or_skip_bpf("raw_null_programs_load_and_count_by_id") {
            return;
        }
        for hook in MeasuredHook::ALL {
            let fd = load_null(hook).expect("load");
            let id = program_id(std::os::fd::AsFd::as_fd(&fd)).expect("id");
            assert!(id > 0);
            assert!(run_count_by_id(id).is_ok(), "{hook:?}");
            drop(fd);
            assert!(!crate::prog_exists(id) || run_count_by_id(id).is_ok());
        }
    }
}
