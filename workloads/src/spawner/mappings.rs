//! The mappings of the spawner that its children never touch, marked not to be inherited.

use std::path::Path;

/// Marks `MADV_DONTFORK` what idle children never touch, so a clone copies no more than in C.
///
/// So that a clone copies (and an exit tears down) no more than a small C program's: the mappings
/// of shared libraries other than libc and the dynamic loader (hookbench links libelf, zlib, libm
/// and libgcc_s, 20 mappings a plain C program does not have: each is one more VMA to duplicate,
/// with its file's `i_mmap` tree insert, at fork, and to remove at exit; see `dup_mmap` in
/// kernel/fork.c, which skips `VM_DONTCOPY` VMAs) and the brk heap. The children run only raw
/// syscalls through libc's wrappers on their copy of the stack (`crate::taskpool`), so they keep
/// the executable, libc, the loader, the stack and every anonymous mapping (TLS). Returns the
/// ranges marked; [`inherit_mappings`] undoes it (before a fork that runs Rust code in the child,
/// such as `Command::spawn`'s). Linux-only; best effort (a mapping that cannot be marked stays
/// inherited).
pub fn trim_inherited_mappings() -> Vec<(usize, usize)> {
    let maps = std::fs::read_to_string("/proc/self/maps").unwrap_or_default();
    let exe = std::fs::read_link("/proc/self/exe").unwrap_or_default();
    dontfork_ranges(&maps, &exe)
        .into_iter()
        .filter(|&range| set_inherited(range, false))
        .collect()
}

/// Makes the `ranges` of [`trim_inherited_mappings`] inherited again (`MADV_DOFORK`), or not.
pub fn inherit_mappings(ranges: &[(usize, usize)], inherited: bool) {
    for &range in ranges {
        set_inherited(range, inherited);
    }
}

/// `madvise(MADV_DOFORK or MADV_DONTFORK)` of one range; whether it took.
fn set_inherited((start, end): (usize, usize), inherited: bool) -> bool {
    let advice = if inherited {
        libc::MADV_DOFORK
    } else {
        libc::MADV_DONTFORK
    };
    // SAFETY: madvise(2) on a range this process mapped; MADV_DONTFORK/MADV_DOFORK only change
    // what a later fork copies, never this process's own view of the memory.
    unsafe { libc::madvise(start as *mut libc::c_void, end - start, advice) == 0 }
}

/// The address ranges of `maps` (/proc/self/maps) that [`trim_inherited_mappings`] marks.
///
/// File mappings of other shared libraries than libc and the loader, and `[heap]`; never the
/// executable `exe`, the stack, vdso/vvar or anonymous mappings. Pure.
pub fn dontfork_ranges(maps: &str, exe: &Path) -> Vec<(usize, usize)> {
    maps.lines()
        .filter_map(|line| {
            let mut f = line.split_whitespace();
            let range = f.next()?;
            let path = f.nth(4)?;
            let (a, b) = range.split_once('-')?;
            let (start, end) = (usize::from_str_radix(a, 16).ok()?, usize::from_str_radix(b, 16).ok()?);
            let name = Path::new(path).file_name()?.to_string_lossy().into_owned();
            let keep = Path::new(path) == exe
                || name.starts_with("libc.so")
                || name.starts_with("libc-")
                || name.starts_with("ld-linux")
                || name.starts_with("ld64.so")
                || name.starts_with("ld-musl")
                || !path.starts_with('/');
            let drop = path == "[heap]" || (!keep && path.starts_with('/') && name.contains(".so"));
            (drop && start < end).then_some((start, end))
        })
        .collect()
}
