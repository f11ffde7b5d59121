//! `/proc/vmallocinfo` summed by caller, for the vmalloc'd part of kernel objects (BPF programs).
//!
//! Each live area is one line (`mm/vmalloc.c: vmalloc_info_show`): its address range, its size
//! (guard page included), the caller that made it and, for page-backed areas, `pages=N`. Lazily
//! freed areas show as `unpurged vm_area` lines without a caller and are not counted. The bytes
//! of memory behind the areas of a caller are `pages x page size`. Readable by root only (the
//! file is 0400).

use std::path::PathBuf;

/// The file read by [`read_vmallocinfo`].
pub const VMALLOCINFO: &str = "/proc/vmallocinfo";

/// One live vmalloc area.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VmArea {
    /// The area's size in bytes, guard page included.
    pub size_bytes: u64,
    /// The caller that made it without its offset, e.g. `bpf_prog_alloc_no_stats`.
    pub caller: String,
    /// Pages of memory behind it (`pages=`; 0 for areas that map no pages of their own).
    pub pages: u64,
}

/// The live areas of a vmallocinfo text; lines without a caller (unpurged areas) are skipped.
///
/// Pure.
pub fn parse_vmallocinfo(text: &str) -> impl Iterator<Item = VmArea> + '_ {
    text.lines().filter_map(|line| {
        let mut fields = line.split_whitespace();
        let _range = fields.next()?;
        let size_bytes = fields.next()?.parse().ok()?;
        let caller = fields.next()?;
        if caller == "unpurged" || caller.starts_with("pages=") {
            return None;
        }
        let caller = caller.split('+').next().unwrap_or(caller).to_string();
        let pages = fields
            .find_map(|f| f.strip_prefix("pages="))
            .and_then(|p| p.parse().ok())
            .unwrap_or(0);
        Some(VmArea {
            size_bytes,
            caller,
            pages,
        })
    })
}

/// Bytes of the pages behind the live areas whose caller `keep` accepts: `pages x page_bytes`.
///
/// Pure.
pub fn page_bytes_where(text: &str, page_bytes: u64, keep: impl Fn(&str) -> bool) -> u64 {
    parse_vmallocinfo(text)
        .filter(|a| keep(&a.caller))
        .map(|a| a.pages * page_bytes)
        .sum()
}

/// Whether `caller` allocates BPF programs (`bpf_prog_alloc_no_stats`, `bpf_prog_realloc`, ...).
///
/// Every vmalloc of `kernel/bpf/core.c` for a program's instructions and JIT images has a caller
/// named `bpf_*` (the JIT's `bpf_jit_alloc_exec` included).
pub fn is_bpf_caller(caller: &str) -> bool {
    caller.starts_with("bpf_")
}

/// The text of [`VMALLOCINFO`] (root only).
///
/// Errors: the read's, with the path and a hint that it needs root.
pub fn read_vmallocinfo() -> Result<String, std::io::Error> {
    std::fs::read_to_string(VMALLOCINFO).map_err(|e| {
        std::io::Error::new(
            e.kind(),
            format!("cannot read {}: {e} (needs root)", PathBuf::from(VMALLOCINFO).display()),
        )
    })
}

/// The page size in bytes (`sysconf(_SC_PAGESIZE)`, 4096 when it cannot be read).
pub fn page_size_bytes() -> u64 {
    // SAFETY: sysconf(3) takes a plain name and reads no memory of ours.
    let n = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    u64::try_from(n).ok().filter(|n| *n > 0).unwrap_or(4096)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Lines of a real vmallocinfo (kernel 6.18, hashed addresses), trimmed.
    const FIXTURE: &str = "\
0x000000004479fe90-0x00000000be1dbeea    8192 bpf_prog_alloc_no_stats+0x39/0x230 pages=1 vmalloc N0=1
0x00000000e5ddf049-0x000000003fc5b4b1   12288 bpf_prog_realloc+0x1f/0xd0 pages=2 vmalloc N0=2
0x00000000182f5afa-0x0000000024c267a3   20480 alloc_thread_stack_node+0x6e/0x1b0 pages=4 vmalloc N0=4
0x0000000011111111-0x0000000022222222    8192 unpurged vm_area
0x0000000033333333-0x0000000044444444 2101248 bpf_prog_pack_alloc+0x1c/0x2f0 pages=512 vmalloc vpages N0=512
0x0000000055555555-0x0000000066666666    8192 pci_iomap+0x10/0x20 phys=0x00000000fe000000 ioremap
";

    #[test]
    fn parses_live_areas_with_their_callers_and_pages() {
        let areas: Vec<VmArea> = parse_vmallocinfo(FIXTURE).collect();
        assert_eq!(areas.len(), 5, "the unpurged line is not a live area");
        assert_eq!(
            areas[0],
            VmArea {
                size_bytes: 8192,
                caller: "bpf_prog_alloc_no_stats".to_string(),
                pages: 1
            }
        );
        assert_eq!(areas[4].pages, 0, "ioremap maps no pages of its own");
    }

    #[test]
    fn sums_the_pages_of_bpf_callers() {
        assert_eq!(page_bytes_where(FIXTURE, 4096, is_bpf_caller), (1 + 2 + 512) * 4096);
        assert_eq!(
            page_bytes_where(FIXTURE, 4096, |c| c == "alloc_thread_stack_node"),
            4 * 4096
        );
        assert_eq!(page_bytes_where("", 4096, |_| true), 0);
        assert!(page_size_bytes() >= 4096);
    }
}
