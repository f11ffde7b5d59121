//! Hierarchy limits (`cgroup.max.depth`, `cgroup.max.descendants`) checked before a build.

use std::path::Path;

use super::{read_file, CgroupError};

/// Reads a `cgroup.max.*` file: `None` for `max`.
pub(super) fn read_limit(path: &Path) -> Result<Option<u64>, CgroupError> {
    let s = read_file(path)?;
    let t = s.trim();
    if t == "max" {
        return Ok(None);
    }
    t.parse().map(Some).map_err(|_| CgroupError::Parse {
        path: path.to_path_buf(),
        content: t.to_string(),
    })
}

/// The value of `key` in a flat-keyed cgroup file such as `cgroup.stat`.
pub(super) fn read_stat_key(path: &Path, key: &str) -> Result<u64, CgroupError> {
    let s = read_file(path)?;
    s.lines()
        .find_map(|l| {
            l.strip_prefix(key)
                .and_then(|v| v.strip_prefix(' '))
                .and_then(|v| v.trim().parse().ok())
        })
        .ok_or_else(|| CgroupError::Parse {
            path: path.to_path_buf(),
            content: s.trim().to_string(),
        })
}

/// Checks that `count` more cgroups, `depth` levels below `root`, fit every ancestor's limits.
///
/// The ancestors are `root` and each cgroup above it (has `cgroup.max.depth`). The kernel's rule
/// (`cgroup_check_hierarchy_limits`): for an ancestor A, the new cgroup's depth below A must be at
/// most A's `cgroup.max.depth`, and A's live descendants must stay at most its
/// `cgroup.max.descendants`.
pub(super) fn check_limits(root: &Path, depth: u64, count: u64) -> Result<(), CgroupError> {
    if count == 0 {
        return Ok(());
    }
    let mut above = 0u64;
    let mut dir = Some(root);
    while let Some(a) = dir {
        let depth_file = a.join("cgroup.max.depth");
        if !depth_file.exists() {
            break; // above the mount
        }
        let fits = |limit: &'static str, max: u64, asked: u64| {
            if asked <= max {
                return Ok(());
            }
            Err(CgroupError::Limit {
                limit,
                ancestor: a.to_path_buf(),
                max,
                asked,
            })
        };
        if let Some(max) = read_limit(&depth_file)? {
            fits("cgroup.max.depth", max, above + depth)?;
        }
        if let Some(max) = read_limit(&a.join("cgroup.max.descendants"))? {
            let have = read_stat_key(&a.join("cgroup.stat"), "nr_descendants")?;
            fits("cgroup.max.descendants", max, have + count)?;
        }
        above += 1;
        dir = a.parent();
    }
    Ok(())
}
