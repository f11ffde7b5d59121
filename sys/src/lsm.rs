//! The active LSMs, in order: needed to tell whether BPF LSM programs would ever run.
//!
//! Read from `<securityfs>/lsm` (securityfs found in mountinfo), else from the
//! `lsm_list_modules` syscall (security/lsm_syscalls.c, Linux 6.8+), whose LSM ids are named
//! after include/uapi/linux/lsm.h.

use crate::errno::{errno_text, io_text, last_errno};
use crate::mountinfo::{parse_mountinfo, SELF_MOUNTINFO};

/// `lsm_list_modules` syscall number (same in the generic and x86_64 tables since 6.8).
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
const SYS_LSM_LIST_MODULES: libc::c_long = 461;

/// The active LSMs of this machine, comma-separated, in order; `Err` says why not.
///
/// `Err` says why neither source (securityfs, the syscall) could tell.
pub fn lsm_list() -> Result<String, String> {
    match std::fs::read_to_string(SELF_MOUNTINFO) {
        Ok(mountinfo) => lsm_list_in(&mountinfo),
        Err(e) => from_syscall(format!(
            "cannot read {SELF_MOUNTINFO} to find securityfs: {}",
            io_text(&e)
        )),
    }
}

/// [`lsm_list`] with securityfs looked up in `mountinfo` (the text of `/proc/self/mountinfo`).
pub fn lsm_list_in(mountinfo: &str) -> Result<String, String> {
    let securityfs = parse_mountinfo(mountinfo)
        .find(|m| m.fstype == "securityfs")
        .map(|m| m.mount_point);
    let file_reason = match securityfs {
        Some(mp) => {
            let path = mp.join("lsm");
            match std::fs::read_to_string(&path) {
                Ok(t) => return Ok(t.trim().to_owned()),
                Err(e) => format!("cannot read {}: {}", path.display(), io_text(&e)),
            }
        }
        None => "securityfs not mounted (no securityfs line in /proc/self/mountinfo)".to_owned(),
    };
    from_syscall(file_reason)
}

/// The syscall's list, else both reasons: the file's (`file_reason`) and the syscall's.
fn from_syscall(file_reason: String) -> Result<String, String> {
    lsm_list_syscall().map_err(|sys_reason| format!("{file_reason}; {sys_reason}"))
}

/// Whether `bpf` is among the active LSMs of `list` (the text of `<securityfs>/lsm`). Pure.
pub fn lsm_list_has_bpf(list: &str) -> bool {
    list.split(',').any(|m| m.trim() == "bpf")
}

/// The name of an LSM id (include/uapi/linux/lsm.h), `lsm-id-<n>` for one unknown here.
pub fn lsm_name(id: u64) -> String {
    match id {
        100 => "capability",
        101 => "selinux",
        102 => "smack",
        103 => "tomoyo",
        104 => "apparmor",
        105 => "yama",
        106 => "loadpin",
        107 => "safesetid",
        108 => "lockdown",
        109 => "bpf",
        110 => "landlock",
        111 => "ima",
        112 => "evm",
        113 => "ipe",
        other => return format!("lsm-id-{other}"),
    }
    .to_owned()
}

/// The active LSMs from the `lsm_list_modules` syscall, comma-separated; `Err` says why not.
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
pub fn lsm_list_syscall() -> Result<String, String> {
    let mut ids = [0u64; 32];
    let mut size: u32 = std::mem::size_of_val(&ids) as u32;
    // SAFETY: ids has `size` writable bytes; size is a valid u32 the kernel updates.
    let r = unsafe { libc::syscall(SYS_LSM_LIST_MODULES, ids.as_mut_ptr(), &mut size as *mut u32, 0u32) };
    if r < 0 {
        let e = last_errno();
        let meaning = if e == libc::ENOSYS {
            " (kernel older than 6.8)"
        } else {
            ""
        };
        return Err(format!("lsm_list_modules failed: {}{meaning}", errno_text(e)));
    }
    let n = usize::try_from(r).unwrap_or(0).min(ids.len());
    Ok(ids[..n].iter().map(|&id| lsm_name(id)).collect::<Vec<_>>().join(","))
}

/// The active LSMs from the `lsm_list_modules` syscall: its number is not known here.
#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
pub fn lsm_list_syscall() -> Result<String, String> {
    Err("lsm_list_modules syscall number not known for this architecture".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_lsm_lists() {
        assert!(lsm_list_has_bpf("lockdown,capability,landlock,yama,apparmor,bpf"));
        assert!(lsm_list_has_bpf("bpf"));
        assert!(!lsm_list_has_bpf("lockdown,capability,landlock,yama,apparmor"));
        assert!(!lsm_list_has_bpf("bpf2,xbpf"));
        assert_eq!(lsm_name(109), "bpf");
        assert_eq!(lsm_name(7), "lsm-id-7");
    }

    #[test]
    fn without_securityfs_the_reason_says_so() {
        match lsm_list_in("") {
            // The syscall (6.8+) still knows.
            Ok(list) => assert!(list.contains("capability"), "{list}"),
            Err(why) => assert!(
                why.starts_with("securityfs not mounted") && why.contains("lsm_list_modules"),
                "{why}"
            ),
        }
    }

    #[test]
    fn live_list_or_a_reason() {
        match lsm_list() {
            Ok(list) => assert!(!list.is_empty() && !list.contains('\n'), "{list:?}"),
            Err(why) => assert!(!why.is_empty()),
        }
    }
}
