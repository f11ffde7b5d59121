//! The run tree: a run's own cgroup subtree, planned in a shape, built, entered and torn down.

use std::collections::HashSet;
use std::ffi::CString;
use std::fs;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};
use std::time::{Duration, Instant};

use hookbench_sys::errno::errno_of;
use nix::errno::Errno;

use super::limits::{check_limits, read_stat_key};
use super::teardown::{remove_subtree, remove_subtree_with, TeardownStats};
use super::{
    fresh_dir, mkdir_error, write_file, Cgroup2, CgroupError, HINT_PROCS, HINT_READ, MAX_PATH_BYTES, RUN_PREFIX,
};

/// Shape of the cgroups [`RunTree::build`] creates under the run root.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// Every cgroup is a child of the run root (depth 1).
    Wide,
    /// A chain: each cgroup is the child of the previous one (depth = count).
    Deep,
    /// A complete `fanout`-ary tree filled breadth-first.
    ///
    /// The run root gets `fanout` children, then each of those gets `fanout`, and so on.
    Balanced {
        /// Children per cgroup (at least 1).
        fanout: u32,
    },
    /// A `slice` cgroup of containers with children (depth 3), like systemd's `machine.slice`.
    ///
    /// Each container is followed by its `children_per_container` children. The slice counts
    /// toward `count`; the last container may have fewer children.
    Containers {
        /// Children of each container cgroup (0 makes every container a leaf).
        children_per_container: u32,
    },
}

/// One cgroup to create: its path below the run root, its parent's index, its depth.
///
/// The parent is an index in the plan (`None` = the run root).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Planned {
    pub(super) rel: PathBuf,
    parent: Option<usize>,
    pub(super) depth: u32,
}

/// The cgroups of `shape` with `count` entries, parents before children.
///
/// `tag` makes names unique across builds of one run.
pub(super) fn plan(shape: Shape, count: u32, tag: u32) -> Result<Vec<Planned>, CgroupError> {
    let n = count as usize;
    let mut out: Vec<Planned> = Vec::with_capacity(n);
    let push = |out: &mut Vec<Planned>, name: String, parent: Option<usize>| {
        let (rel, depth) = match parent {
            Some(p) => (out[p].rel.join(name), out[p].depth + 1),
            None => (PathBuf::from(name), 1),
        };
        out.push(Planned { rel, parent, depth });
    };
    match shape {
        Shape::Wide => {
            for i in 0..n {
                push(&mut out, format!("w{tag}_{i}"), None);
            }
        }
        Shape::Deep => {
            for i in 0..n {
                push(&mut out, format!("d{tag}"), i.checked_sub(1));
            }
        }
        Shape::Balanced { fanout } => {
            if fanout == 0 {
                return Err(CgroupError::Invalid {
                    what: "Shape::Balanced fanout = 0".into(),
                    why: "a balanced tree needs at least 1 child per cgroup; use fanout >= 1",
                });
            }
            let f = fanout as usize;
            for i in 0..n {
                let parent = if i < f { None } else { Some(i / f - 1) };
                push(&mut out, format!("b{tag}_{i}"), parent);
            }
        }
        Shape::Containers { children_per_container } => {
            if n > 0 {
                push(&mut out, format!("slice{tag}"), None);
            }
            let mut c = 0u64;
            while out.len() < n {
                let container = out.len();
                push(&mut out, format!("c{c}"), Some(0));
                for j in 0..children_per_container {
                    if out.len() >= n {
                        break;
                    }
                    push(&mut out, format!("t{j}"), Some(container));
                }
                c += 1;
            }
        }
    }
    Ok(out)
}

/// A run's own cgroup subtree, `<mount>/hookbench-<pid>-<nanos>`, removed when dropped.
///
/// Dropping it tears it down (best effort); call [`RunTree::teardown`] to get errors and
/// statistics.
#[derive(Debug)]
pub struct RunTree {
    root: PathBuf,
    created: Vec<PathBuf>,
    builds: u32,
    done: bool,
}

impl RunTree {
    /// Creates the run's subtree root `<mount>/hookbench-<pid>-<nanos>`, the run's only cgroup.
    ///
    /// One `mkdir(2)` in the root cgroup; `nanos` is the wall clock in ns since the Unix epoch.
    /// Errors: [`CgroupError::Sys`] (e.g. `EACCES`: not root), [`CgroupError::Refused`].
    pub fn create(cg: &Cgroup2) -> Result<RunTree, CgroupError> {
        RunTree::create_in(&cg.mount)
    }

    /// `mkdir` of a fresh `<parent>/hookbench-<pid>-<nanos>` as a tree's root.
    fn create_in(parent: &Path) -> Result<RunTree, CgroupError> {
        let root = fresh_dir(parent, "");
        fs::create_dir(&root).map_err(|e| mkdir_error(&root, &e, 0, 1))?;
        Ok(RunTree {
            root,
            created: Vec::new(),
            builds: 0,
            done: false,
        })
    }

    /// Creates a worker's own tree nested in a run's subtree, so that it goes with the run.
    ///
    /// `<parent>/hookbench-<pid>-<nanos>` (one `mkdir(2)`), for a worker that builds and removes
    /// cgroups of its own inside the run. `parent` must lie inside a hookbench run directory (a
    /// component named `hookbench-*`, no `.`/`..`), so the nested tree is removed with the run
    /// whatever happens to the worker. Errors: [`CgroupError::OutsideRun`], and those of
    /// [`RunTree::create`].
    pub fn create_under(parent: &Path) -> Result<RunTree, CgroupError> {
        if !in_run_dir(parent) {
            return Err(CgroupError::OutsideRun {
                path: parent.to_path_buf(),
                root: PathBuf::from(format!("<cgroup2 mount>/{RUN_PREFIX}*")),
            });
        }
        RunTree::create_in(parent)
    }

    /// The run's subtree root.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Creates one named cgroup `<root>/<name>`, e.g. a worker's home `spawner-1`, and records it.
    ///
    /// Recorded like [`RunTree::build`]'s. Errors: [`CgroupError::Invalid`] for a name that is
    /// empty, holds `/` or NUL, is `.`/`..` or starts with `cgroup.` (the kernel's interface
    /// files); the `mkdir` errors of [`RunTree::build`].
    pub fn child(&mut self, name: &str) -> Result<PathBuf, CgroupError> {
        if name.is_empty() || name.contains(['/', '\0']) || name == "." || name == ".." || name.starts_with("cgroup.") {
            return Err(CgroupError::Invalid {
                what: format!("cgroup name {name:?}"),
                why: "use one path component of letters, digits, '-' or '_' (not starting with `cgroup.`)",
            });
        }
        check_limits(&self.root, 1, 1)?;
        let path = self.root.join(name);
        fs::create_dir(&path).map_err(|e| mkdir_error(&path, &e, 0, 1))?;
        self.created.push(path.clone());
        Ok(path)
    }

    /// Every cgroup created by [`RunTree::build`] so far, in creation order (the root excluded).
    pub fn cgroups(&self) -> &[PathBuf] {
        &self.created
    }

    /// Creates `count` cgroups in `shape` under the run root; their paths, parents first.
    ///
    /// One `mkdir(2)` each. Names are unique across builds, so a run may build several shapes
    /// side by side. Before creating anything it checks `cgroup.max.depth` and
    /// `cgroup.max.descendants` (against `cgroup.stat`'s `nr_descendants`) of the run root and
    /// every ancestor up to the mount. Errors: [`CgroupError::Limit`], [`CgroupError::Refused`],
    /// [`CgroupError::Invalid`] (`Balanced { fanout: 0 }`, or a chain whose path would exceed
    /// [`MAX_PATH_BYTES`]). Cgroups created before an error stay recorded and are removed by
    /// tear-down.
    pub fn build(&mut self, shape: Shape, count: u32) -> Result<Vec<PathBuf>, CgroupError> {
        self.build_timed(shape, count).map(|(paths, _)| paths)
    }

    /// [`RunTree::build`], also returning the wall-clock time of the `mkdir` loop alone.
    ///
    /// Planning, limit checks and path building are excluded; the loop is `mkdirat(2)` relative
    /// to a directory fd of the root, as [`mkdir_floor`](super::mkdir_floor) does.
    pub fn build_timed(&mut self, shape: Shape, count: u32) -> Result<(Vec<PathBuf>, Duration), CgroupError> {
        let planned = plan(shape, count, self.builds)?;
        self.builds += 1;
        let max_depth = planned.iter().map(|p| p.depth).max().unwrap_or(0);
        if let Some(longest) = planned.iter().map(|p| p.rel.as_os_str().len()).max() {
            if self.root.as_os_str().len() + 1 + longest > MAX_PATH_BYTES {
                return Err(CgroupError::Invalid {
                    what: format!("{shape:?} with {count} cgroups"),
                    why: "its deepest path would exceed PATH_MAX; use fewer levels (at most ~1300 for Deep)",
                });
            }
        }
        check_limits(&self.root, u64::from(max_depth), u64::from(count))?;
        let paths: Vec<PathBuf> = planned.iter().map(|p| self.root.join(&p.rel)).collect();
        // Relative names from a directory fd of the root, built before the clock starts: the
        // timed loop is mkdirat(2) alone, as in the floor.
        let rels = planned
            .iter()
            .map(|p| CString::new(p.rel.as_os_str().as_bytes()))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|_| CgroupError::Invalid {
                what: format!("{shape:?} cgroup names"),
                why: "a name holds a NUL byte",
            })?;
        let dir = fs::File::open(&self.root).map_err(|e| CgroupError::sys("open", &self.root, &e, HINT_READ))?;
        let fd = std::os::fd::AsRawFd::as_raw_fd(&dir);
        let start = Instant::now();
        let mut failed = None;
        for (i, rel) in rels.iter().enumerate() {
            // SAFETY: `fd` is an open directory for the loop and `rel` a valid C string.
            if unsafe { libc::mkdirat(fd, rel.as_ptr(), 0o755) } != 0 {
                failed = Some((i, io::Error::last_os_error()));
                break;
            }
        }
        let elapsed = start.elapsed();
        let made = failed.as_ref().map_or(paths.len(), |(i, _)| *i);
        self.created.extend(paths[..made].iter().cloned());
        if let Some((i, e)) = failed {
            let errno = errno_of(&e);
            if matches!(errno, Errno::EAGAIN | Errno::ENOSPC) {
                // Name the limit if one explains it (e.g. another run took descendants).
                let remaining = u64::from(count) - i as u64;
                let depth_left = u64::from(max_depth);
                check_limits(&self.root, depth_left, remaining)?;
            }
            return Err(mkdir_error(&paths[i], &e, i as u32, count));
        }
        Ok((paths, elapsed))
    }

    /// The cgroups created so far that have no created child, in creation order.
    pub fn leaves(&self) -> Vec<PathBuf> {
        let parents: HashSet<&Path> = self.created.iter().filter_map(|p| p.parent()).collect();
        self.created
            .iter()
            .filter(|p| !parents.contains(p.as_path()))
            .cloned()
            .collect()
    }

    /// Moves process `pid` (the whole thread group) into `cgroup`, one of this run's.
    ///
    /// Writes the pid to `<cgroup>/cgroup.procs`. `cgroup` must be the run root or lie under it
    /// (checked on the path, `..` refused). Errors: [`CgroupError::OutsideRun`],
    /// [`CgroupError::Sys`] from the write (`ESRCH`: no such process, `EBUSY`/`EOPNOTSUPP`: the
    /// no-internal-process rule).
    pub fn move_pid(&self, pid: u32, cgroup: &Path) -> Result<(), CgroupError> {
        let inside = cgroup.starts_with(&self.root)
            && cgroup
                .components()
                .all(|c| !matches!(c, Component::ParentDir | Component::CurDir));
        if !inside {
            return Err(CgroupError::OutsideRun {
                path: cgroup.to_path_buf(),
                root: self.root.clone(),
            });
        }
        let procs = cgroup.join("cgroup.procs");
        write_file(&procs, pid.to_string().as_bytes(), HINT_PROCS)
    }

    /// Kills every process in the subtree and removes every cgroup in it, the root included.
    ///
    /// See [`remove_subtree`]: `cgroup.kill` or `SIGKILL` per pid of `cgroup.procs`, wait up to
    /// [`KILL_TIMEOUT`](super::KILL_TIMEOUT) for `cgroup.events` `populated 0`, `rmdir` deepest
    /// first. On error the drop retries once, best effort.
    ///
    /// When `cgroup.stat` says the subtree holds exactly the cgroups this tree created, the
    /// recorded list is used instead of walking the directories (each cgroup directory lists
    /// dozens of interface files, so the walk dominates tear-down of thousands of cgroups).
    pub fn teardown(mut self) -> Result<TeardownStats, CgroupError> {
        let known = match read_stat_key(&self.root.join("cgroup.stat"), "nr_descendants") {
            Ok(n) if n == self.created.len() as u64 => {
                let mut list = Vec::with_capacity(self.created.len() + 1);
                list.push(self.root.clone());
                list.extend(self.created.iter().cloned());
                Some(list)
            }
            _ => None,
        };
        let stats = remove_subtree_with(&self.root, true, known)?;
        self.done = true;
        Ok(stats)
    }

    /// Removes a tree known to hold no task at the cost of the kernel's rmdir floor alone.
    ///
    /// For a caller that made the cgroups and has killed and reaped every task it put there:
    /// `rmdir` of every recorded cgroup, deepest first (relative to a directory fd of the root,
    /// no per-cgroup read), then of the root, as in [`mkdir_floor`](super::mkdir_floor). When a
    /// `rmdir` fails (`EBUSY`: a task or a cgroup it did not record is still there), it falls back
    /// to the careful path of [`RunTree::teardown`] (kill, wait, walk, rmdir) for the rest.
    /// Errors: those of [`remove_subtree`].
    pub fn teardown_unpopulated(mut self) -> Result<TeardownStats, CgroupError> {
        let start = Instant::now();
        self.done = true;
        let rels: Vec<CString> = self
            .created
            .iter()
            .rev()
            .filter_map(|c| c.strip_prefix(&self.root).ok())
            .filter_map(|rel| CString::new(rel.as_os_str().as_bytes()).ok())
            .collect();
        let mut removed = 0u64;
        let mut clean = rels.len() == self.created.len();
        if clean {
            match fs::File::open(&self.root) {
                Ok(dir) => {
                    let fd = std::os::fd::AsRawFd::as_raw_fd(&dir);
                    for rel in &rels {
                        // SAFETY: `fd` is an open directory for the loop, `rel` a valid C string.
                        if unsafe { libc::unlinkat(fd, rel.as_ptr(), libc::AT_REMOVEDIR) } == 0 {
                            removed += 1;
                        } else if Errno::last() != Errno::ENOENT {
                            clean = false;
                            break;
                        }
                    }
                }
                Err(_) => clean = false,
            }
        }
        if clean && fs::remove_dir(&self.root).is_ok() {
            return Ok(TeardownStats {
                cgroups_removed: removed + 1,
                processes_killed: 0,
                duration: start.elapsed(),
            });
        }
        let rest = remove_subtree_with(&self.root, true, None)?;
        Ok(TeardownStats {
            cgroups_removed: removed + rest.cgroups_removed,
            processes_killed: rest.processes_killed,
            duration: start.elapsed(),
        })
    }
}

impl Drop for RunTree {
    fn drop(&mut self) {
        if !self.done {
            self.done = true;
            if let Err(e) = remove_subtree(&self.root) {
                eprintln!("hookbench: could not tear down {}: {e}", self.root.display());
            }
        }
    }
}

/// Whether `path` lies inside a hookbench run directory (checked on the path, nothing read).
///
/// Some component is named `hookbench-*` and none is `.` or `..`.
pub fn in_run_dir(path: &Path) -> bool {
    let clean = path
        .components()
        .all(|c| !matches!(c, Component::ParentDir | Component::CurDir));
    clean
        && path.components().any(|c| match c {
            Component::Normal(n) => n.as_bytes().starts_with(RUN_PREFIX.as_bytes()),
            _ => false,
        })
}
