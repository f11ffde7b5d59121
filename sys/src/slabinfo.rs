//! `/proc/slabinfo` read per cache, so kernel memory deltas count objects instead of kB totals.
//!
//! Each line of slabinfo 2.1 (`mm/slab_common.c: cache_show`) gives a cache's name, active and
//! total objects, object size, objects per slab and pages per slab; the bytes a cache holds are
//! `active_objs x objsize`. A delta of two readings, summed over the caches a caller chooses
//! ([`SlabInfo::delta`]), is kernel memory to the object, where `/proc/meminfo`'s `Slab:` is a
//! kB total of every cache.
//!
//! SLUB counts an object of a CPU's active or per-CPU partial slab as active whether or not it
//! is allocated (`count_partial` sees only the node's partial lists), so `active_objs` moves by
//! whole slabs until those slabs are flushed. [`shrink`] flushes them (the cache's sysfs
//! `shrink`: `flush_all` then discarding empty slabs), after which `active_objs` is exact: a
//! reading taken right after a shrink counts allocated objects. Reading slabinfo and shrinking
//! need root.

use std::collections::BTreeMap;
use std::path::PathBuf;

/// The file read by [`SlabInfo::read`].
pub const SLABINFO: &str = "/proc/slabinfo";

/// The directory of SLUB's per-cache sysfs files ([`shrink`] writes `<dir>/<cache>/shrink`).
pub const SYS_SLAB: &str = "/sys/kernel/slab";

/// The slabinfo format version this parser reads (`slabinfo - version: 2.1`).
const VERSION: &str = "2.1";

/// Why slabinfo could not be read or parsed, or a cache not shrunk.
#[derive(Debug, thiserror::Error)]
pub enum SlabInfoError {
    /// The file could not be read or written (`/proc/slabinfo` is root's only).
    #[error("cannot {op} {path}: {source} (needs root)")]
    Io {
        /// "read" or "write".
        op: &'static str,
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The first line is not `slabinfo - version: 2.1`.
    #[error("{SLABINFO}: version line {found:?}, expected 'slabinfo - version: {VERSION}'")]
    Version {
        /// The first line as found.
        found: String,
    },
    /// A cache line does not have the six leading fields of slabinfo 2.1.
    #[error("{SLABINFO} line {line_no}: {why}: {line:?}")]
    Line {
        /// 1-based line number.
        line_no: usize,
        /// The line.
        line: String,
        /// What is wrong with it.
        why: &'static str,
    },
}

/// One cache of slabinfo: its name and counts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlabCache {
    /// The cache's name, e.g. `kmalloc-64` (a merged cache shows under one of its names).
    pub name: String,
    /// Objects counted as in use (SLUB: every object of the CPU slabs, see the module doc).
    pub active_objs: u64,
    /// Objects of every slab of the cache.
    pub num_objs: u64,
    /// Bytes per object, including the cache's metadata and alignment.
    pub objsize_bytes: u64,
    /// Objects per slab.
    pub objs_per_slab: u64,
    /// Pages per slab.
    pub pages_per_slab: u64,
}

impl SlabCache {
    /// Bytes of the active objects: `active_objs x objsize`.
    pub fn active_bytes(&self) -> u64 {
        self.active_objs * self.objsize_bytes
    }
}

/// One reading of slabinfo: every cache by name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SlabInfo {
    caches: BTreeMap<String, SlabCache>,
}

/// The change of the chosen caches between two readings.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SlabDelta {
    /// Sum over the chosen caches of (after - before) active bytes.
    pub bytes: i64,
    /// The chosen caches whose active bytes changed, with the change, largest change first.
    pub by_cache: Vec<(String, i64)>,
}

impl SlabInfo {
    /// Parses the text of `/proc/slabinfo` (format 2.1). Pure.
    ///
    /// Errors: [`SlabInfoError::Version`] for another format, [`SlabInfoError::Line`] for a
    /// cache line without six numbers after its name.
    pub fn parse(text: &str) -> Result<SlabInfo, SlabInfoError> {
        let mut lines = text.lines().enumerate();
        let first = lines.next().map(|(_, l)| l).unwrap_or_default();
        if first.trim() != format!("slabinfo - version: {VERSION}") {
            return Err(SlabInfoError::Version {
                found: first.to_string(),
            });
        }
        let mut caches = BTreeMap::new();
        for (i, line) in lines {
            if line.starts_with('#') || line.trim().is_empty() {
                continue;
            }
            let bad = |why| SlabInfoError::Line {
                line_no: i + 1,
                line: line.to_string(),
                why,
            };
            let mut fields = line.split_whitespace();
            let name = fields.next().ok_or_else(|| bad("no cache name"))?;
            let mut n = [0u64; 5];
            for v in &mut n {
                *v = fields
                    .next()
                    .ok_or_else(|| bad("fewer than five counts after the name"))?
                    .parse()
                    .map_err(|_| bad("a count is not a number"))?;
            }
            let [active_objs, num_objs, objsize_bytes, objs_per_slab, pages_per_slab] = n;
            caches.insert(
                name.to_string(),
                SlabCache {
                    name: name.to_string(),
                    active_objs,
                    num_objs,
                    objsize_bytes,
                    objs_per_slab,
                    pages_per_slab,
                },
            );
        }
        Ok(SlabInfo { caches })
    }

    /// Reads and parses [`SLABINFO`] (root only). Errors: see [`SlabInfoError`].
    pub fn read() -> Result<SlabInfo, SlabInfoError> {
        let text = std::fs::read_to_string(SLABINFO).map_err(|source| SlabInfoError::Io {
            op: "read",
            path: PathBuf::from(SLABINFO),
            source,
        })?;
        SlabInfo::parse(&text)
    }

    /// Every cache, by name.
    pub fn caches(&self) -> impl Iterator<Item = &SlabCache> {
        self.caches.values()
    }

    /// The cache named `name`, if there is one.
    pub fn get(&self, name: &str) -> Option<&SlabCache> {
        self.caches.get(name)
    }

    /// Active bytes of the caches whose name `keep` accepts.
    pub fn active_bytes(&self, keep: impl Fn(&str) -> bool) -> u64 {
        self.caches()
            .filter(|c| keep(&c.name))
            .map(SlabCache::active_bytes)
            .sum()
    }

    /// What changed from `before` to this reading in the caches `keep` accepts.
    ///
    /// A cache present in one reading only counts as 0 in the other (a cache made or destroyed
    /// in between). Pure.
    pub fn delta(&self, before: &SlabInfo, keep: impl Fn(&str) -> bool) -> SlabDelta {
        let bytes_in = |info: &SlabInfo, name: &str| info.get(name).map_or(0, |c| c.active_bytes() as i64);
        let names: std::collections::BTreeSet<&str> = self
            .caches
            .keys()
            .chain(before.caches.keys())
            .map(String::as_str)
            .filter(|n| keep(n))
            .collect();
        let mut by_cache: Vec<(String, i64)> = names
            .into_iter()
            .map(|n| (n.to_string(), bytes_in(self, n) - bytes_in(before, n)))
            .filter(|(_, d)| *d != 0)
            .collect();
        by_cache.sort_by_key(|(n, d)| (std::cmp::Reverse(d.unsigned_abs()), n.clone()));
        SlabDelta {
            bytes: by_cache.iter().map(|(_, d)| d).sum(),
            by_cache,
        }
    }
}

/// Whether `name` is one of the kernel's general-purpose kmalloc caches.
///
/// That is `kmalloc-<size>`, its memcg-accounted twin `kmalloc-cg-<size>` (`__GFP_ACCOUNT`) or a
/// `kmalloc-rnd-NN-<size>` copy (`CONFIG_RANDOM_KMALLOC_CACHES`), as `mm/slab_common.c` names
/// them. The reclaimable (`kmalloc-rcl-`) and DMA (`dma-kmalloc-`) caches are not: nothing
/// hookbench measures allocates with `__GFP_RECLAIMABLE` or `GFP_DMA`.
pub fn is_kmalloc(name: &str) -> bool {
    let Some(rest) = name.strip_prefix("kmalloc-") else {
        return false;
    };
    let rest = rest.strip_prefix("cg-").unwrap_or(rest);
    let rest = match rest.strip_prefix("rnd-") {
        Some(r) => match r.split_once('-') {
            Some((nn, size)) if !nn.is_empty() && nn.bytes().all(|b| b.is_ascii_digit()) => size,
            _ => return false,
        },
        None => rest,
    };
    let digits = rest.strip_suffix('k').unwrap_or(rest);
    !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())
}

/// Flushes the per-CPU slabs of each cache in `names` and frees its empty slabs (SLUB, root).
///
/// Writes `1` to `/sys/kernel/slab/<name>/shrink` (`kmem_cache_shrink`), after which the
/// cache's `active_objs` counts allocated objects exactly (see the module doc). Harmless to the
/// kernel: the cache refills its CPU slabs on the next allocations.
///
/// Errors: [`SlabInfoError::Io`] for the first cache that could not be shrunk (the others are
/// still tried).
pub fn shrink<'a>(names: impl IntoIterator<Item = &'a str>) -> Result<(), SlabInfoError> {
    let mut first = None;
    for name in names {
        let path = PathBuf::from(SYS_SLAB).join(name).join("shrink");
        if let Err(source) = std::fs::write(&path, "1") {
            first.get_or_insert(SlabInfoError::Io {
                op: "write",
                path,
                source,
            });
        }
    }
    first.map_or(Ok(()), Err)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Lines of a real slabinfo (kernel 6.18, this project's VM), trimmed.
    const FIXTURE: &str = "slabinfo - version: 2.1
# name            <active_objs> <num_objs> <objsize> <objperslab> <pagesperslab> : tunables <limit> <batchcount> <sharedfactor> : slabdata <active_slabs> <num_slabs> <sharedavail>
vmap_area          16041  25928     72   56    1 : tunables    0    0    0 : slabdata    463    463      0
kmalloc-cg-256       144    144    256   16    1 : tunables    0    0    0 : slabdata      9      9      0
dma-kmalloc-64         0      0     64   64    1 : tunables    0    0    0 : slabdata      0      0      0
kmalloc-rcl-128    41056  41056    128   32    1 : tunables    0    0    0 : slabdata   1283   1283      0
kmalloc-8k            36     36   8192    4    8 : tunables    0    0    0 : slabdata      9      9      0
kmalloc-64          2607   5376     64   64    1 : tunables    0    0    0 : slabdata     84     84      0
";

    #[test]
    fn parses_slabinfo_2_1_per_cache() {
        let info = SlabInfo::parse(FIXTURE).expect("parses");
        assert_eq!(info.caches().count(), 6);
        let k64 = info.get("kmalloc-64").expect("kmalloc-64");
        assert_eq!((k64.active_objs, k64.num_objs, k64.objsize_bytes), (2607, 5376, 64));
        assert_eq!((k64.objs_per_slab, k64.pages_per_slab), (64, 1));
        assert_eq!(k64.active_bytes(), 2607 * 64);
        assert_eq!(info.get("kmalloc-8k").map(SlabCache::active_bytes), Some(36 * 8192));
        assert_eq!(
            info.active_bytes(is_kmalloc),
            2607 * 64 + 144 * 256 + 36 * 8192,
            "kmalloc-, kmalloc-cg-, not rcl, dma or vmap_area"
        );
    }

    #[test]
    fn refuses_other_versions_and_broken_lines() {
        let e = SlabInfo::parse("slabinfo - version: 1.1\n").expect_err("old version");
        assert!(e.to_string().contains("version: 1.1"), "{e}");
        let e = SlabInfo::parse("").expect_err("empty");
        assert!(matches!(e, SlabInfoError::Version { .. }), "{e}");
        let text = "slabinfo - version: 2.1\nkmalloc-64 12 x 64 64 1\n";
        let e = SlabInfo::parse(text).expect_err("bad count");
        assert!(
            e.to_string().contains("line 2") && e.to_string().contains("not a number"),
            "{e}"
        );
        let e = SlabInfo::parse("slabinfo - version: 2.1\nkmalloc-64 12 14\n").expect_err("short");
        assert!(e.to_string().contains("fewer than five"), "{e}");
    }

    #[test]
    fn delta_sums_the_chosen_caches_and_lists_what_changed() {
        let before = SlabInfo::parse(FIXTURE).expect("before");
        // 4,096 effective arrays of 64 bytes, one new 8k object, one fewer vmap_area, a new cache.
        let after_text = FIXTURE
            .replace("kmalloc-64          2607", "kmalloc-64          6703")
            .replace("kmalloc-8k            36", "kmalloc-8k            37")
            .replace("vmap_area          16041", "vmap_area          16040")
            + "kmalloc-cg-16       10     256     16  256    1 : tunables    0    0    0 : slabdata 1 1 0\n";
        let after = SlabInfo::parse(&after_text).expect("after");
        let d = after.delta(&before, is_kmalloc);
        assert_eq!(d.bytes, 4096 * 64 + 8192 + 10 * 16);
        assert_eq!(
            d.by_cache,
            [
                ("kmalloc-64".to_string(), 4096 * 64),
                ("kmalloc-8k".to_string(), 8192),
                ("kmalloc-cg-16".to_string(), 160)
            ]
        );
        let all = after.delta(&before, |_| true);
        assert_eq!(all.bytes, d.bytes - 72);
        assert_eq!(before.delta(&after, is_kmalloc).bytes, -d.bytes, "a delta has a sign");
        assert_eq!(after.delta(&after, |_| true), SlabDelta::default());
    }

    #[test]
    fn kmalloc_names_follow_slab_common() {
        for yes in [
            "kmalloc-64",
            "kmalloc-8k",
            "kmalloc-cg-192",
            "kmalloc-rnd-03-96",
            "kmalloc-cg-1k",
        ] {
            assert!(is_kmalloc(yes), "{yes}");
        }
        for no in [
            "kmalloc-rcl-64",
            "dma-kmalloc-64",
            "kmalloc_buckets",
            "kmalloc-",
            "kmalloc-rnd--64",
            "vmap_area",
            "kmalloc-cg-",
        ] {
            assert!(!is_kmalloc(no), "{no}");
        }
    }

    /// The live file parses and names kmalloc-64 (root only: the file is 0400).
    #[test]
    fn reads_the_live_file_as_root() {
        if !crate::testing::root_or_skip("reads_the_live_file_as_root", "/proc/slabinfo is root's only") {
            return;
        }
        let info = SlabInfo::read().expect("reads");
        assert!(info.caches().any(|c| is_kmalloc(&c.name)), "no kmalloc cache");
    }
}
