//! The CPU's cache sizes from sysfs: what a working set must exceed to be cold.
//!
//! Linux describes every cache a CPU sees under `/sys/devices/system/cpu/cpuN/cache/indexM/`
//! (`level`, `type` and `size`, e.g. `2`, `Unified`, `2048K`; Documentation/ABI/testing/
//! sysfs-devices-system-cpu). hookbench reads CPU 0's: the L2 (the largest data or unified
//! cache of level 2) and the last-level cache (the largest data or unified cache of the highest
//! level). [`parse_size`] and [`CacheSizes::from_entries`] are pure; [`CacheSizes::read`] reads
//! the live files.

use std::path::Path;

/// Where CPU 0's cache descriptions live.
pub const CPU0_CACHE_DIR: &str = "/sys/devices/system/cpu/cpu0/cache";

/// One `indexM` directory: the cache's level, type and size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheEntry {
    /// `level`: 1, 2, 3...
    pub level: u32,
    /// `type`: `Data`, `Instruction` or `Unified`.
    pub kind: String,
    /// `size`, in bytes.
    pub size_bytes: u64,
}

/// The cache sizes a working set is held against, bytes (`None` where sysfs does not say).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CacheSizes {
    /// The level-2 data or unified cache of CPU 0.
    pub l2_bytes: Option<u64>,
    /// The last-level cache: the data or unified cache of the highest level CPU 0 has.
    pub llc_bytes: Option<u64>,
}

impl CacheSizes {
    /// The L2 and last-level sizes of `entries`; instruction caches do not count. Pure.
    pub fn from_entries(entries: &[CacheEntry]) -> CacheSizes {
        let data = || entries.iter().filter(|e| e.kind != "Instruction");
        let largest_at = |level: u32| data().filter(|e| e.level == level).map(|e| e.size_bytes).max();
        let top = data().map(|e| e.level).max();
        CacheSizes {
            l2_bytes: largest_at(2),
            llc_bytes: top.and_then(largest_at),
        }
    }

    /// CPU 0's cache sizes from [`CPU0_CACHE_DIR`] (both `None` when it cannot be read).
    pub fn read() -> CacheSizes {
        CacheSizes::from_entries(&read_entries(Path::new(CPU0_CACHE_DIR)))
    }
}

/// A sysfs cache size such as `2048K`, `32M` or `65536` in bytes; `None` when it is not one.
///
/// The kernel writes sizes in KiB with a `K` suffix (`cache_size_show`); `M` and a bare
/// number of bytes are accepted too. Pure.
pub fn parse_size(text: &str) -> Option<u64> {
    let t = text.trim();
    let (digits, unit) = match t.char_indices().find(|(_, c)| !c.is_ascii_digit()) {
        Some((i, _)) => t.split_at(i),
        None => (t, ""),
    };
    let n: u64 = digits.parse().ok()?;
    let scale = match unit.trim() {
        "" => 1,
        "K" | "k" | "KB" | "KiB" => 1 << 10,
        "M" | "MB" | "MiB" => 1 << 20,
        _ => return None,
    };
    n.checked_mul(scale)
}

/// Every readable `index*` entry under `dir` (a CPU's `cache` directory); the rest is skipped.
pub fn read_entries(dir: &Path) -> Vec<CacheEntry> {
    let Ok(list) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let read = |p: &Path, f: &str| std::fs::read_to_string(p.join(f)).ok();
    list.filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().starts_with("index"))
        .filter_map(|e| {
            let p = e.path();
            Some(CacheEntry {
                level: read(&p, "level")?.trim().parse().ok()?,
                kind: read(&p, "type")?.trim().to_string(),
                size_bytes: parse_size(&read(&p, "size")?)?,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(level: u32, kind: &str, size: &str) -> CacheEntry {
        CacheEntry {
            level,
            kind: kind.to_string(),
            size_bytes: parse_size(size).expect("size"),
        }
    }

    #[test]
    fn sizes_parse_in_the_kernels_units() {
        assert_eq!(parse_size("48K\n"), Some(48 << 10));
        assert_eq!(parse_size("491520K"), Some(491_520 << 10));
        assert_eq!(parse_size("32M"), Some(32 << 20));
        assert_eq!(parse_size("65536"), Some(65_536));
        assert_eq!(parse_size("K"), None);
        assert_eq!(parse_size("12G"), None);
        assert_eq!(parse_size(""), None);
    }

    #[test]
    fn l2_and_the_last_level_come_from_data_and_unified_caches() {
        // This project's VM: L1d 48K, L1i 64K (not counted), L2 2048K, L3 491520K.
        let vm = [
            entry(1, "Data", "48K"),
            entry(1, "Instruction", "64K"),
            entry(2, "Unified", "2048K"),
            entry(3, "Unified", "491520K"),
        ];
        let c = CacheSizes::from_entries(&vm);
        assert_eq!(c.l2_bytes, Some(2 << 20));
        assert_eq!(c.llc_bytes, Some(480 << 20));
        // Without an L3 the L2 is the last level; an instruction cache is never one.
        let small = [
            entry(1, "Data", "32K"),
            entry(2, "Unified", "1M"),
            entry(3, "Instruction", "8M"),
        ];
        let c = CacheSizes::from_entries(&small);
        assert_eq!((c.l2_bytes, c.llc_bytes), (Some(1 << 20), Some(1 << 20)));
        assert_eq!(CacheSizes::from_entries(&[]), CacheSizes::default());
    }

    #[test]
    fn the_live_files_read_when_sysfs_has_them() {
        let c = CacheSizes::read();
        if Path::new(CPU0_CACHE_DIR).exists() {
            assert!(c.llc_bytes.is_some_and(|b| b >= c.l2_bytes.unwrap_or(0)), "{c:?}");
        }
    }
}
