//! Real cgroup v2 trees for the `kernel` backend: finding the cgroup2 mount, building a run's own
//! subtree in a given shape, moving processes in, and tearing everything down again.
//!
//! Every run owns exactly one directory directly under the cgroup2 mount,
//! `<mount>/hookbench-<pid>-<nanos>` ([`RunTree`]); nothing outside it is ever written, and the
//! root cgroup is only touched to `mkdir`/`rmdir` that directory. Tear-down kills every process in
//! the subtree (`cgroup.kill` on 5.14+, else `SIGKILL` to each pid of every `cgroup.procs`), waits
//! for `cgroup.events` to say `populated 0`, then `rmdir`s bottom-up. A tree known to hold no
//! task ([`RunTree::teardown_unpopulated`]) is removed by the `rmdir` loop alone, as fast as the
//! kernel's floor. Subtrees left behind by crashed runs are collected by [`cleanup_stale`], which
//! only touches `hookbench-<pid>-*` directories whose `<pid>` is no longer alive.
//!
//! Workers of a run may make trees of their own inside the run's subtree
//! ([`RunTree::create_under`]): `<run>/.../hookbench-<worker pid>-<nanos>`, removed with the run.
//!
//! Kernel interfaces used: `/proc/self/mountinfo`, `mkdir(2)`/`rmdir(2)`/`unlinkat(2)` on
//! cgroupfs, `cgroup.procs`, `cgroup.kill`, `cgroup.events`, `cgroup.stat` (`nr_descendants`,
//! `nr_dying_descendants`), `cgroup.max.depth`, `cgroup.max.descendants`, `kill(2)`,
//! `/proc/<pid>`.

use std::collections::HashSet;
use std::ffi::CString;
use std::fs;
use std::io::{self, Write};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use nix::errno::Errno;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

/// Prefix of every directory hookbench creates directly under the cgroup2 mount.
pub const RUN_PREFIX: &str = "hookbench-";

/// How long tear-down waits for killed processes to leave the subtree (`cgroup.events` reporting
/// `populated 0`) and for `rmdir` to stop returning `EBUSY`: 5 s.
pub const KILL_TIMEOUT: Duration = Duration::from_secs(5);

/// Longest cgroup path (bytes) [`RunTree::build`] will create: paths are passed to `mkdir(2)`
/// whole, and the kernel refuses paths of `PATH_MAX` (4096) bytes or more.
pub const MAX_PATH_BYTES: usize = 4000;

/// Why a cgroup operation failed. Every variant names the path involved and what to do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CgroupError {
    /// No `cgroup2` filesystem in the mount table.
    #[error(
        "no cgroup v2 mount found in {mountinfo}: mount one with `mount -t cgroup2 none /sys/fs/cgroup/unified` \
         (or boot with systemd.unified_cgroup_hierarchy=1)"
    )]
    NoMount {
        /// The mount table that was read.
        mountinfo: PathBuf,
    },
    /// A system call on a path failed.
    #[error("{op} {path} failed: {errno}; {hint}")]
    Sys {
        /// The operation (`mkdir`, `rmdir`, `read`, `write`, `open`, `kill`).
        op: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The errno the kernel returned.
        errno: Errno,
        /// What to do about it.
        hint: &'static str,
    },
    /// The tree asked for exceeds a hierarchy limit of an ancestor cgroup.
    #[error(
        "{limit} of {ancestor} is {max}, but the tree needs {asked}: ask for fewer or shallower cgroups, or raise it \
         with `echo max > {ancestor}/{limit}` (only if that cgroup is yours)"
    )]
    Limit {
        /// `cgroup.max.depth` or `cgroup.max.descendants`.
        limit: &'static str,
        /// The ancestor cgroup whose limit is exceeded.
        ancestor: PathBuf,
        /// The limit's value.
        max: u64,
        /// The depth below `ancestor` (for `cgroup.max.depth`) or the number of descendants of
        /// `ancestor` (for `cgroup.max.descendants`) the tree would need.
        asked: u64,
    },
    /// `mkdir` was refused with `EAGAIN` or `ENOSPC` and no readable limit explains it.
    #[error(
        "mkdir {path} failed: {errno} after {created} of {asked} cgroups: the kernel refused more cgroups \
         (cgroup.max.depth / cgroup.max.descendants of an ancestor outside the run, or out of cgroup ids or \
         memory); ask for fewer cgroups or free some"
    )]
    Refused {
        /// The cgroup that could not be created.
        path: PathBuf,
        /// `EAGAIN` or `ENOSPC`.
        errno: Errno,
        /// Cgroups of this build created before the failure.
        created: u32,
        /// Cgroups this build asked for.
        asked: u32,
    },
    /// A path outside the run's own subtree was given.
    #[error(
        "{path} is not inside the run's cgroup subtree {root}: hookbench only touches its own cgroups; pass a \
         path returned by RunTree::build or RunTree::root"
    )]
    OutsideRun {
        /// The path refused.
        path: PathBuf,
        /// The run's root.
        root: PathBuf,
    },
    /// A shape or count that cannot be built.
    #[error("{what} is invalid: {why}")]
    Invalid {
        /// The parameter and its value.
        what: String,
        /// Why, and what to use instead.
        why: &'static str,
    },
    /// A cgroup file held something unexpected.
    #[error("{path} holds {content:?}, which is not what the kernel writes there; is {path} on a cgroup2 mount?")]
    Parse {
        /// The file.
        path: PathBuf,
        /// What it held (trimmed).
        content: String,
    },
    /// Killed processes did not leave the subtree in time.
    #[error(
        "{remaining} process(es) still in {path} after {waited:?} of SIGKILL: they may be in uninterruptible \
         sleep (D state, see `cat {path}/cgroup.procs` and /proc/<pid>/stack); retry later with cleanup_stale"
    )]
    StillPopulated {
        /// The subtree's root.
        path: PathBuf,
        /// How long tear-down waited.
        waited: Duration,
        /// Processes still listed in the subtree's `cgroup.procs` files.
        remaining: usize,
    },
}

impl CgroupError {
    fn sys(op: &'static str, path: &Path, err: &io::Error, hint: &'static str) -> Self {
        CgroupError::Sys {
            op,
            path: path.to_path_buf(),
            errno: errno_of(err),
            hint,
        }
    }
}

fn errno_of(err: &io::Error) -> Errno {
    Errno::from_raw(err.raw_os_error().unwrap_or(libc::EIO))
}

const HINT_ROOT: &str = "run as root (or with CAP_SYS_ADMIN and write access to the cgroup2 mount)";
const HINT_READ: &str = "check that the path is a cgroup on a cgroup2 mount and that you may read it";
const HINT_PROCS: &str = "check that the pid is alive, that you are root, and that the cgroup has no controllers \
                          enabled in cgroup.subtree_control (no-internal-process rule)";
const HINT_RMDIR: &str = "the cgroup may still hold processes or children; see its cgroup.procs and retry \
                          cleanup_stale";

/// One line of `/proc/<pid>/mountinfo` (proc(5); written by `show_mountinfo` in
/// fs/proc_namespace.c), with the kernel's octal escapes undone in the paths.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountEntry {
    /// Field 4: the root of the mount within its filesystem (`/` for a whole hierarchy).
    pub root: PathBuf,
    /// Field 5: the mount point.
    pub mount_point: PathBuf,
    /// The first field after the ` - ` separator: the filesystem type (`cgroup2`, `cgroup`, ...).
    pub fstype: String,
    /// The third field after the separator: the superblock options (for a cgroup v1 mount, its
    /// controllers, e.g. `rw,pids`); empty when the line has none.
    pub super_options: String,
}

/// The entries of `mountinfo` (the text of `/proc/<pid>/mountinfo`); lines that do not parse
/// (fewer than the fixed fields, no ` - ` separator after the optional fields) are skipped. Pure.
pub fn parse_mountinfo(mountinfo: &str) -> impl Iterator<Item = MountEntry> + '_ {
    mountinfo.lines().filter_map(|line| {
        let fields: Vec<&str> = line.split(' ').filter(|f| !f.is_empty()).collect();
        // Fields 7.. are optional fields up to the "-" separator, then fstype, source, options.
        let sep = fields.iter().skip(6).position(|f| *f == "-")? + 6;
        let path = |f: &str| PathBuf::from(std::ffi::OsStr::from_bytes(&unescape_octal(f)));
        Some(MountEntry {
            root: path(fields[3]),
            mount_point: path(fields[4]),
            fstype: (*fields.get(sep + 1)?).to_owned(),
            super_options: fields.get(sep + 3).map(|o| (*o).to_owned()).unwrap_or_default(),
        })
    })
}

/// Returns the mount point of the cgroup v2 hierarchy in `mountinfo` (fstype `cgroup2`), with
/// the kernel's octal escapes (`\040` space, `\011` tab, `\012` newline, `\134` backslash)
/// decoded: the first mount of the hierarchy's root (`/`) when there is one (a bind mount of a
/// subtree may come first), else the first `cgroup2` mount; `None` when there is none. Never
/// assumes `/sys/fs/cgroup`. Pure.
pub fn find_cgroup2_mount(mountinfo: &str) -> Option<PathBuf> {
    let mut first = None;
    for m in parse_mountinfo(mountinfo).filter(|m| m.fstype == "cgroup2") {
        if m.root.as_os_str() == "/" {
            return Some(m.mount_point);
        }
        first.get_or_insert(m.mount_point);
    }
    first
}

/// Undoes the octal escapes (`\040` space, `\011` tab, `\012` newline, `\134` backslash) that
/// the kernel applies to paths in /proc/self/mountinfo (fs/proc_namespace.c, `seq_escape`).
pub fn unescape_octal(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 3 < b.len() && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c)) {
            let v = (b[i + 1] - b'0') as u32 * 64 + (b[i + 2] - b'0') as u32 * 8 + (b[i + 3] - b'0') as u32;
            if let Ok(byte) = u8::try_from(v) {
                out.push(byte);
                i += 4;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    out
}

/// A cgroup v2 (unified hierarchy) mount.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cgroup2 {
    mount: PathBuf,
}

impl Cgroup2 {
    /// Finds the cgroup2 mount of this process's mount namespace from `/proc/self/mountinfo`
    /// (works on unified and hybrid hosts alike, e.g. `/sys/fs/cgroup/unified`). Errors:
    /// [`CgroupError::Sys`] if the mount table cannot be read, [`CgroupError::NoMount`] if it has
    /// no `cgroup2` entry.
    pub fn detect() -> Result<Cgroup2, CgroupError> {
        let mi = Path::new("/proc/self/mountinfo");
        let text = fs::read_to_string(mi).map_err(|e| CgroupError::sys("read", mi, &e, "is /proc mounted?"))?;
        find_cgroup2_mount(&text)
            .map(|mount| Cgroup2 { mount })
            .ok_or_else(|| CgroupError::NoMount {
                mountinfo: mi.to_path_buf(),
            })
    }

    /// Uses `mount` as the cgroup2 mount point without checking it (e.g. one found by
    /// [`find_cgroup2_mount`] on another mount table).
    pub fn at(mount: impl Into<PathBuf>) -> Cgroup2 {
        Cgroup2 { mount: mount.into() }
    }

    /// The mount point (the root cgroup's directory).
    pub fn mount(&self) -> &Path {
        &self.mount
    }
}

/// Shape of the cgroups [`RunTree::build`] creates under the run root.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// Every cgroup is a child of the run root (depth 1).
    Wide,
    /// A chain: each cgroup is the child of the previous one (depth = count).
    Deep,
    /// A complete `fanout`-ary tree filled breadth-first: the run root gets `fanout` children,
    /// then each of those gets `fanout`, and so on.
    Balanced {
        /// Children per cgroup (at least 1).
        fanout: u32,
    },
    /// A `slice` cgroup under the run root holding containers, each followed by its
    /// `children_per_container` children (depth 3), like systemd's `machine.slice`. The slice
    /// counts toward `count`; the last container may have fewer children.
    Containers {
        /// Children of each container cgroup (0 makes every container a leaf).
        children_per_container: u32,
    },
}

/// One cgroup to create: its path relative to the run root and its parent's index in the plan
/// (`None` = the run root).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Planned {
    rel: PathBuf,
    parent: Option<usize>,
    depth: u32,
}

/// The cgroups of `shape` with `count` entries, parents before children. `tag` makes names
/// unique across builds of one run.
fn plan(shape: Shape, count: u32, tag: u32) -> Result<Vec<Planned>, CgroupError> {
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

/// What a tear-down did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TeardownStats {
    /// Cgroup directories removed, the subtree's root included.
    pub cgroups_removed: u64,
    /// Processes found in the subtree's `cgroup.procs` files and killed.
    pub processes_killed: u64,
    /// Wall-clock time of the whole tear-down (kill, wait, rmdir).
    pub duration: Duration,
}

/// A run's own cgroup subtree, `<mount>/hookbench-<pid>-<nanos>`. Dropping it tears it down
/// (best effort); call [`RunTree::teardown`] to get errors and statistics.
#[derive(Debug)]
pub struct RunTree {
    root: PathBuf,
    created: Vec<PathBuf>,
    builds: u32,
    done: bool,
}

impl RunTree {
    /// Creates the run's subtree root `<mount>/hookbench-<pid>-<nanos>` (one `mkdir(2)` in the
    /// root cgroup; `nanos` is the wall clock in ns since the Unix epoch). Errors:
    /// [`CgroupError::Sys`] (e.g. `EACCES`: not root), [`CgroupError::Refused`] on
    /// `EAGAIN`/`ENOSPC`.
    pub fn create(cg: &Cgroup2) -> Result<RunTree, CgroupError> {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let root = cg.mount.join(format!("{RUN_PREFIX}{}-{nanos}", std::process::id()));
        fs::create_dir(&root).map_err(|e| mkdir_error(&root, &e, 0, 1))?;
        Ok(RunTree {
            root,
            created: Vec::new(),
            builds: 0,
            done: false,
        })
    }

    /// Creates a tree nested in a run's subtree: `<parent>/hookbench-<pid>-<nanos>` (one
    /// `mkdir(2)`), for a worker that builds and removes cgroups of its own inside the run.
    /// `parent` must lie inside a hookbench run directory (a component named `hookbench-*`, no
    /// `.`/`..`), so the nested tree is removed with the run whatever happens to the worker.
    /// Errors: [`CgroupError::OutsideRun`], and those of [`RunTree::create`].
    pub fn create_under(parent: &Path) -> Result<RunTree, CgroupError> {
        if !in_run_dir(parent) {
            return Err(CgroupError::OutsideRun {
                path: parent.to_path_buf(),
                root: PathBuf::from(format!("<cgroup2 mount>/{RUN_PREFIX}*")),
            });
        }
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let root = parent.join(format!("{RUN_PREFIX}{}-{nanos}", std::process::id()));
        fs::create_dir(&root).map_err(|e| mkdir_error(&root, &e, 0, 1))?;
        Ok(RunTree {
            root,
            created: Vec::new(),
            builds: 0,
            done: false,
        })
    }

    /// The run's subtree root.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Creates one cgroup `<root>/<name>` (a leaf, e.g. a worker's home `spawner-1`) and records
    /// it like [`RunTree::build`]'s. Errors: [`CgroupError::Invalid`] for a name that is empty,
    /// holds `/` or NUL, is `.`/`..` or starts with `cgroup.` (the kernel's interface files);
    /// the `mkdir` errors of [`RunTree::build`].
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

    /// Creates `count` cgroups under the run root in `shape` (one `mkdir(2)` each) and returns
    /// their paths in creation order, parents before children. Names are unique across builds,
    /// so a run may build several shapes side by side. Before creating anything it checks
    /// `cgroup.max.depth` and `cgroup.max.descendants` (against `cgroup.stat`'s `nr_descendants`)
    /// of the run root and every ancestor up to the mount. Errors: [`CgroupError::Limit`] naming
    /// the limit, its value and what the tree needs; [`CgroupError::Refused`] on `EAGAIN`/`ENOSPC`
    /// from `mkdir`; [`CgroupError::Invalid`] for `Balanced { fanout: 0 }` or a chain whose path
    /// would exceed [`MAX_PATH_BYTES`]. Cgroups created before an error stay recorded and are
    /// removed by tear-down.
    pub fn build(&mut self, shape: Shape, count: u32) -> Result<Vec<PathBuf>, CgroupError> {
        self.build_timed(shape, count).map(|(paths, _)| paths)
    }

    /// [`RunTree::build`], also returning the wall-clock time of the `mkdir` loop alone
    /// (planning, limit checks and path building excluded; `mkdirat(2)` relative to a directory
    /// fd of the root, as [`mkdir_floor`] does).
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

    /// Moves process `pid` (the whole thread group) into `cgroup` by writing it to
    /// `<cgroup>/cgroup.procs`. `cgroup` must be the run root or lie under it (checked on the
    /// path, `..` refused). Errors: [`CgroupError::OutsideRun`], [`CgroupError::Sys`] from the
    /// write (`ESRCH`: no such process, `EBUSY`/`EOPNOTSUPP`: the no-internal-process rule).
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

    /// Kills every process in the subtree and removes every cgroup in it, the root included
    /// (see [`remove_subtree`]: `cgroup.kill` or `SIGKILL` per pid of `cgroup.procs`, wait up to
    /// [`KILL_TIMEOUT`] for `cgroup.events` `populated 0`, `rmdir` deepest first). On error the
    /// drop retries once, best effort.
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

    /// Removes the tree when the caller knows it holds no task (it made the cgroups and has
    /// killed and reaped every task it put there): `rmdir` of every recorded cgroup, deepest
    /// first (relative to a directory fd of the root, no per-cgroup read), then of the root;
    /// the cost of the kernel's rmdir floor ([`mkdir_floor`]). When a `rmdir` fails (`EBUSY`: a
    /// task or a cgroup it did not record is still there), it falls back to the careful path of
    /// [`RunTree::teardown`] (kill, wait, walk, rmdir) for the rest. Errors: those of
    /// [`remove_subtree`].
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

/// Whether `path` lies inside a hookbench run directory: some component is named
/// `hookbench-*` and none is `.` or `..` (checked on the path, nothing read).
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

/// Waits until `<cgroup>/cgroup.stat` reports `nr_dying_descendants 0` (the kernel has freed
/// every cgroup removed below it: `css_release_work_fn`, after an RCU grace period, in
/// kernel/cgroup/cgroup.c), polling every millisecond for at most `timeout`. Call it between
/// timed phases, so that one phase's rmdirs do not leave work in the kernel's workqueues that
/// the next phase pays for. Returns the dying descendants left (0 when settled). Errors:
/// reading the file ([`CgroupError::Sys`], [`CgroupError::Parse`]).
pub fn settle_dying(cgroup: &Path, timeout: Duration) -> Result<u64, CgroupError> {
    let stat = cgroup.join("cgroup.stat");
    let deadline = Instant::now() + timeout;
    loop {
        let dying = read_stat_key(&stat, "nr_dying_descendants")?;
        if dying == 0 || Instant::now() >= deadline {
            return Ok(dying);
        }
        std::thread::sleep(Duration::from_millis(1));
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

fn mkdir_error(path: &Path, e: &io::Error, created: u32, asked: u32) -> CgroupError {
    let errno = errno_of(e);
    match errno {
        Errno::EAGAIN | Errno::ENOSPC => CgroupError::Refused {
            path: path.to_path_buf(),
            errno,
            created,
            asked,
        },
        Errno::EACCES | Errno::EPERM | Errno::EROFS => CgroupError::sys("mkdir", path, e, HINT_ROOT),
        Errno::ENAMETOOLONG => CgroupError::sys("mkdir", path, e, "the path is too long; build a shallower tree"),
        _ => CgroupError::sys("mkdir", path, e, "check that the parent is a cgroup on a cgroup2 mount"),
    }
}

fn read_file(path: &Path) -> Result<String, CgroupError> {
    fs::read_to_string(path).map_err(|e| CgroupError::sys("read", path, &e, HINT_READ))
}

fn write_file(path: &Path, data: &[u8], hint: &'static str) -> Result<(), CgroupError> {
    let mut f = fs::OpenOptions::new()
        .write(true)
        .open(path)
        .map_err(|e| CgroupError::sys("open", path, &e, hint))?;
    f.write_all(data).map_err(|e| CgroupError::sys("write", path, &e, hint))
}

/// Reads a `cgroup.max.*` file: `None` for `max`.
fn read_limit(path: &Path) -> Result<Option<u64>, CgroupError> {
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

fn read_stat_key(path: &Path, key: &str) -> Result<u64, CgroupError> {
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

/// Checks that `count` more cgroups, the deepest `depth` levels below `root`, fit the limits of
/// `root` and each of its ancestors that is a cgroup (has `cgroup.max.depth`). The kernel's rule
/// (`cgroup_check_hierarchy_limits`): for an ancestor A, the new cgroup's depth below A must be at
/// most A's `cgroup.max.depth`, and A's live descendants must stay at most its
/// `cgroup.max.descendants`.
fn check_limits(root: &Path, depth: u64, count: u64) -> Result<(), CgroupError> {
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
        if let Some(max) = read_limit(&depth_file)? {
            if above + depth > max {
                return Err(CgroupError::Limit {
                    limit: "cgroup.max.depth",
                    ancestor: a.to_path_buf(),
                    max,
                    asked: above + depth,
                });
            }
        }
        if let Some(max) = read_limit(&a.join("cgroup.max.descendants"))? {
            let have = read_stat_key(&a.join("cgroup.stat"), "nr_descendants")?;
            if have + count > max {
                return Err(CgroupError::Limit {
                    limit: "cgroup.max.descendants",
                    ancestor: a.to_path_buf(),
                    max,
                    asked: have + count,
                });
            }
        }
        above += 1;
        dir = a.parent();
    }
    Ok(())
}

/// Every cgroup directory of the subtree at `root`, `root` first, parents before children
/// (iterative pre-order, so arbitrarily deep chains do not overflow the stack).
fn walk(root: &Path) -> Result<Vec<PathBuf>, CgroupError> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let rd = match fs::read_dir(&dir) {
            Ok(rd) => rd,
            // Removed concurrently (e.g. by the run's own Drop): nothing below it.
            Err(e) if e.kind() == io::ErrorKind::NotFound && dir != root => continue,
            Err(e) => return Err(CgroupError::sys("open", &dir, &e, HINT_READ)),
        };
        for entry in rd {
            let entry = entry.map_err(|e| CgroupError::sys("read", &dir, &e, HINT_READ))?;
            if entry.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                stack.push(entry.path());
            }
        }
        out.push(dir);
    }
    Ok(out)
}

fn read_pids(cgroup: &Path) -> Result<Vec<i32>, CgroupError> {
    let path = cgroup.join("cgroup.procs");
    match fs::read_to_string(&path) {
        Ok(s) => Ok(s.lines().filter_map(|l| l.trim().parse().ok()).collect()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(CgroupError::sys("read", &path, &e, HINT_READ)),
    }
}

fn populated(root: &Path, cgroups: &[PathBuf]) -> Result<bool, CgroupError> {
    let events = root.join("cgroup.events");
    match fs::read_to_string(&events) {
        Ok(s) => Ok(s.lines().any(|l| l.trim() == "populated 1")),
        Err(_) => {
            for c in cgroups {
                if !read_pids(c)?.is_empty() {
                    return Ok(true);
                }
            }
            Ok(false)
        }
    }
}

/// Kills every process in the cgroup subtree at `root` and removes all its cgroups, deepest
/// first, `root` included. Kill: writes `1` to `<root>/cgroup.kill` when the file exists (Linux
/// 5.14+, race-free against forks), else sends `SIGKILL` to every pid in every `cgroup.procs`,
/// repeatedly until empty; then waits up to [`KILL_TIMEOUT`] for `<root>/cgroup.events` to read
/// `populated 0`, and retries `rmdir` on `EBUSY` within the same bound. Refuses (with
/// [`CgroupError::Invalid`]) a `root` whose name does not start with [`RUN_PREFIX`], so it can
/// never remove anything hookbench did not create. Processes are not reaped: a parent still has
/// to `wait` for its killed children.
pub fn remove_subtree(root: &Path) -> Result<TeardownStats, CgroupError> {
    remove_subtree_with(root, true, None)
}

/// [`remove_subtree`]; `prefer_kill_file: false` forces the pre-5.14 `SIGKILL` loop; `known` is
/// the subtree's cgroups with every parent before its children (root first), when the caller
/// knows them all, else the directories are walked.
fn remove_subtree_with(
    root: &Path,
    prefer_kill_file: bool,
    known: Option<Vec<PathBuf>>,
) -> Result<TeardownStats, CgroupError> {
    let start = Instant::now();
    let named = root
        .file_name()
        .map(|n| n.as_bytes().starts_with(RUN_PREFIX.as_bytes()))
        .unwrap_or(false);
    if !named {
        return Err(CgroupError::Invalid {
            what: format!("subtree {}", root.display()),
            why: "hookbench only removes cgroups named hookbench-*; remove others by hand",
        });
    }
    if !root.exists() {
        return Ok(TeardownStats {
            duration: start.elapsed(),
            ..TeardownStats::default()
        });
    }
    let cgroups = match known {
        Some(list) => list,
        None => walk(root)?,
    };
    let deadline = start + KILL_TIMEOUT;

    // Kill.
    let mut seen: HashSet<i32> = HashSet::new();
    if populated(root, &cgroups)? {
        for c in &cgroups {
            seen.extend(read_pids(c)?);
        }
    }
    let kill_file = root.join("cgroup.kill");
    let use_kill_file =
        prefer_kill_file && !seen.is_empty() && kill_file.exists() && write_file(&kill_file, b"1", HINT_ROOT).is_ok();
    let mut sleep = Duration::from_micros(200);
    loop {
        // One read of the root's cgroup.events first: an empty tree needs no per-cgroup read.
        if !populated(root, &cgroups)? {
            break;
        }
        if !use_kill_file {
            for c in &cgroups {
                for pid in read_pids(c)? {
                    seen.insert(pid);
                    match kill(Pid::from_raw(pid), Signal::SIGKILL) {
                        Ok(()) | Err(Errno::ESRCH) => {}
                        Err(errno) => {
                            return Err(CgroupError::Sys {
                                op: "kill",
                                path: c.join("cgroup.procs"),
                                errno,
                                hint: "run as root to kill the run's processes",
                            })
                        }
                    }
                }
            }
        }
        if Instant::now() >= deadline {
            let mut remaining = 0;
            for c in &cgroups {
                remaining += read_pids(c)?.len();
            }
            return Err(CgroupError::StillPopulated {
                path: root.to_path_buf(),
                waited: start.elapsed(),
                remaining,
            });
        }
        std::thread::sleep(sleep);
        sleep = (sleep * 2).min(Duration::from_millis(20));
    }

    // Remove bottom-up: the reverse of a pre-order has every descendant before its ancestor.
    let mut removed = 0u64;
    for c in cgroups.iter().rev() {
        loop {
            match fs::remove_dir(c) {
                Ok(()) => {
                    removed += 1;
                    break;
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => break,
                Err(e) if errno_of(&e) == Errno::EBUSY && Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(1));
                }
                Err(e) => return Err(CgroupError::sys("rmdir", c, &e, HINT_RMDIR)),
            }
        }
    }
    Ok(TeardownStats {
        cgroups_removed: removed,
        processes_killed: seen.len() as u64,
        duration: start.elapsed(),
    })
}

fn pid_alive(pid: u32) -> bool {
    Path::new("/proc").join(pid.to_string()).exists()
}

/// The `<pid>` of a run directory name `hookbench-<pid>-<rest>` (`rest` non-empty).
fn run_dir_pid(name: &[u8]) -> Option<u32> {
    let rest = name.strip_prefix(RUN_PREFIX.as_bytes())?;
    let dash = rest.iter().position(|&b| b == b'-')?;
    let (pid, tail) = (&rest[..dash], &rest[dash + 1..]);
    if pid.is_empty() || tail.is_empty() || !pid.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(pid).ok()?.parse().ok()
}

/// Removes every `hookbench-<pid>-*` directory directly under the cgroup2 mount whose `<pid>` is
/// not a live process (no `/proc/<pid>`), killing its processes and removing its cgroups
/// bottom-up ([`remove_subtree`]); returns the run roots removed. Directories of live runs (this
/// one included) and anything not named `hookbench-<digits>-…` are never touched. A stale
/// directory whose pid has been reused by an unrelated process is left alone (conservative).
/// Caveat: in a PID namespace, runs of other namespaces look dead. Errors: the first failure
/// (reading the mount, or tearing down one directory; earlier removals are done).
pub fn cleanup_stale(cg: &Cgroup2) -> Result<Vec<PathBuf>, CgroupError> {
    let stale = stale_run_dirs(&cg.mount).map_err(|e| CgroupError::sys("read", &cg.mount, &e, HINT_READ))?;
    let mut removed = Vec::new();
    for dir in stale {
        remove_subtree(&dir)?;
        removed.push(dir);
    }
    Ok(removed)
}

/// The `hookbench-<pid>-*` directories directly under `parent` whose `<pid>` is neither this
/// process nor a live one, sorted: what runs that were killed left (run subtrees under the
/// cgroup2 mount, scratch directories under the temporary directory). Errors: reading `parent`.
pub fn stale_run_dirs(parent: &Path) -> io::Result<Vec<PathBuf>> {
    let mut stale = Vec::new();
    for entry in fs::read_dir(parent)? {
        let entry = entry?;
        if !entry.file_type().map(|t| t.is_dir()).unwrap_or(false) {
            continue;
        }
        if let Some(pid) = run_dir_pid(entry.file_name().as_bytes()) {
            if pid != std::process::id() && !pid_alive(pid) {
                stale.push(entry.path());
            }
        }
    }
    stale.sort();
    Ok(stale)
}

/// Removes the scratch directories (`hookbench-<pid>-*` under `tmp`, e.g. the kernel backend's
/// Landlock file trees) of runs that are no longer alive; returns what it removed. Errors:
/// reading `tmp` or removing one directory (earlier removals are done).
pub fn cleanup_stale_scratch(tmp: &Path) -> io::Result<Vec<PathBuf>> {
    let mut removed = Vec::new();
    for dir in stale_run_dirs(tmp)? {
        fs::remove_dir_all(&dir)?;
        removed.push(dir);
    }
    Ok(removed)
}

/// Removes a directory made by [`mkdir_floor`] and its numbered children on every exit path.
struct FloorGuard {
    dir: PathBuf,
    made: u32,
    armed: bool,
}

impl Drop for FloorGuard {
    fn drop(&mut self) {
        if self.armed {
            for i in (0..self.made).rev() {
                let _ = fs::remove_dir(self.dir.join(i.to_string()));
            }
            let _ = fs::remove_dir(&self.dir);
        }
    }
}

/// The kernel's floor for cgroup set-up and tear-down: makes a fresh directory
/// `<parent>/hookbench-<pid>-floor<nanos>`, times the simplest loop of `mkdirat(2)` of `count`
/// children (names pre-built, relative to a directory fd), then the loop of
/// `unlinkat(AT_REMOVEDIR)` of them, and removes the directory. Returns (mkdir time, rmdir
/// time), wall clock. `parent` should be a cgroup of the run (e.g. [`RunTree::root`]); the
/// directory is removed on every path, errors included. Errors: [`CgroupError::Sys`] /
/// [`CgroupError::Refused`] naming the cgroup that failed.
pub fn mkdir_floor(parent: &Path, count: u32) -> Result<(Duration, Duration), CgroupError> {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let dir = parent.join(format!("{RUN_PREFIX}{}-floor{nanos}", std::process::id()));
    fs::create_dir(&dir).map_err(|e| mkdir_error(&dir, &e, 0, count))?;
    let mut guard = FloorGuard {
        dir,
        made: 0,
        armed: true,
    };
    let dir_file = fs::File::open(&guard.dir).map_err(|e| CgroupError::sys("open", &guard.dir, &e, HINT_READ))?;
    let fd = std::os::fd::AsRawFd::as_raw_fd(&dir_file);
    let mut names = Vec::with_capacity(count as usize);
    for i in 0..count {
        names.push(CString::new(i.to_string()).map_err(|_| CgroupError::Invalid {
            what: format!("cgroup name {i}"),
            why: "contains a NUL byte",
        })?);
    }
    let start = Instant::now();
    for name in &names {
        // SAFETY: `fd` is an open directory for the whole loop and `name` a valid C string.
        if unsafe { libc::mkdirat(fd, name.as_ptr(), 0o755) } != 0 {
            let e = io::Error::last_os_error();
            return Err(mkdir_error(
                &guard.dir.join(name.to_string_lossy().as_ref()),
                &e,
                guard.made,
                count,
            ));
        }
        guard.made += 1;
    }
    let made = start.elapsed();
    let start = Instant::now();
    for name in names.iter().rev() {
        // SAFETY: as above.
        if unsafe { libc::unlinkat(fd, name.as_ptr(), libc::AT_REMOVEDIR) } != 0 {
            let e = io::Error::last_os_error();
            return Err(CgroupError::sys(
                "rmdir",
                &guard.dir.join(name.to_string_lossy().as_ref()),
                &e,
                HINT_RMDIR,
            ));
        }
        guard.made -= 1;
    }
    let removed = start.elapsed();
    drop(dir_file);
    guard.armed = false;
    fs::remove_dir(&guard.dir).map_err(|e| CgroupError::sys("rmdir", &guard.dir, &e, HINT_RMDIR))?;
    Ok((made, removed))
}

/// For tests that need root and a cgroup2 mount: the mount, or `None` after printing
/// `SKIPPED <test>: <needs_root>` (not root) or `SKIPPED <test>: <why>` (no mount) on stderr.
#[cfg(test)]
pub(crate) fn cgroup2_or_skip(test: &str, needs_root: &str) -> Option<Cgroup2> {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("SKIPPED {test}: {needs_root}");
        return None;
    }
    match Cgroup2::detect() {
        Ok(cg) => Some(cg),
        Err(e) => {
            eprintln!("SKIPPED {test}: {e}");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::process::ExitStatusExt;
    use std::process::{Child, Command};

    const HYBRID: &str = "\
22 1 0:21 / /proc rw,nosuid,nodev,noexec,relatime shared:12 - proc proc rw
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime shared:9 - cgroup2 cgroup2 rw,nsdelegate
";

    #[test]
    fn mountinfo_hybrid() {
        assert_eq!(
            find_cgroup2_mount(HYBRID),
            Some(PathBuf::from("/sys/fs/cgroup/unified"))
        );
    }

    #[test]
    fn mountinfo_unified() {
        let mi = "25 19 0:23 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 \
                  rw,nsdelegate,memory_recursiveprot\n";
        assert_eq!(find_cgroup2_mount(mi), Some(PathBuf::from("/sys/fs/cgroup")));
    }

    #[test]
    fn mountinfo_none() {
        let mi = "32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu\n\
                  33 31 0:30 / /cgroup2 rw - tmpfs cgroup2 rw\n";
        assert_eq!(find_cgroup2_mount(mi), None);
        assert_eq!(find_cgroup2_mount(""), None);
        assert_eq!(find_cgroup2_mount("garbage line\n- cgroup2\n"), None);
    }

    #[test]
    fn mountinfo_escaped() {
        let mi = "50 1 0:40 / /mnt/my\\040cgroups\\134x\\011y rw - cgroup2 none rw\n";
        assert_eq!(find_cgroup2_mount(mi), Some(PathBuf::from("/mnt/my cgroups\\x\ty")));
        // Optional fields (shared:, master:) before the separator do not shift the fstype.
        let mi = "50 1 0:40 / /a rw shared:1 master:2 - cgroup2 cgroup2 rw\n";
        assert_eq!(find_cgroup2_mount(mi), Some(PathBuf::from("/a")));
    }

    #[test]
    fn run_dir_names() {
        assert_eq!(run_dir_pid(b"hookbench-123-456"), Some(123));
        assert_eq!(run_dir_pid(b"hookbench-123-floor9"), Some(123));
        assert_eq!(run_dir_pid(b"hookbench-123-"), None);
        assert_eq!(run_dir_pid(b"hookbench-12a-4"), None);
        assert_eq!(run_dir_pid(b"hookbench--4"), None);
        assert_eq!(run_dir_pid(b"other-123-4"), None);
        assert_eq!(run_dir_pid(b"hookbench-123"), None);
    }

    #[test]
    fn plan_shapes() {
        let p = plan(Shape::Balanced { fanout: 4 }, 50, 0).expect("plan");
        let per_level = |d| p.iter().filter(|x| x.depth == d).count();
        assert_eq!((per_level(1), per_level(2), per_level(3), per_level(4)), (4, 16, 30, 0));
        let p = plan(Shape::Deep, 50, 0).expect("plan");
        assert_eq!(p.last().map(|x| x.depth), Some(50));
        let p = plan(
            Shape::Containers {
                children_per_container: 4,
            },
            12,
            0,
        )
        .expect("plan");
        let rels: Vec<String> = p.iter().map(|x| x.rel.display().to_string()).collect();
        assert_eq!(
            rels,
            [
                "slice0",
                "slice0/c0",
                "slice0/c0/t0",
                "slice0/c0/t1",
                "slice0/c0/t2",
                "slice0/c0/t3",
                "slice0/c1",
                "slice0/c1/t0",
                "slice0/c1/t1",
                "slice0/c1/t2",
                "slice0/c1/t3",
                "slice0/c2"
            ]
        );
        assert!(plan(Shape::Balanced { fanout: 0 }, 3, 0).is_err());
        assert!(plan(Shape::Wide, 0, 0).expect("plan").is_empty());
    }

    /// The cgroup2 mount when running as root with one, else an explanation on stderr.
    fn v2_or_skip(test: &str) -> Option<Cgroup2> {
        crate::cgroupfs::cgroup2_or_skip(test, "needs root to create cgroups")
    }

    /// Kills and reaps a child on every exit path.
    struct ChildGuard(Child);
    impl Drop for ChildGuard {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }

    /// Removes a hand-made subtree on every exit path.
    struct DirGuard(PathBuf);
    impl Drop for DirGuard {
        fn drop(&mut self) {
            let _ = remove_subtree(&self.0);
        }
    }

    fn sleeper() -> ChildGuard {
        ChildGuard(Command::new("sleep").arg("30").spawn().expect("spawn sleep"))
    }

    fn depth_below(root: &Path, p: &Path) -> usize {
        p.strip_prefix(root).expect("under root").components().count()
    }

    #[test]
    fn shapes_build_move_teardown() {
        let Some(cg) = v2_or_skip("shapes_build_move_teardown") else {
            return;
        };
        for shape in [
            Shape::Wide,
            Shape::Deep,
            Shape::Balanced { fanout: 4 },
            Shape::Containers {
                children_per_container: 4,
            },
        ] {
            let mut run = RunTree::create(&cg).expect("create run tree");
            let root = run.root().to_path_buf();
            let paths = run.build(shape, 50).expect("build");
            assert_eq!(paths.len(), 50, "{shape:?}");
            for (i, p) in paths.iter().enumerate() {
                assert!(p.is_dir(), "{}", p.display());
                let parent = p.parent().expect("parent");
                assert!(
                    parent == root || paths[..i].iter().any(|q| q == parent),
                    "parent first: {}",
                    p.display()
                );
            }
            let depths: Vec<usize> = paths.iter().map(|p| depth_below(&root, p)).collect();
            let level = |d| depths.iter().filter(|&&x| x == d).count();
            match shape {
                Shape::Wide => assert_eq!(level(1), 50),
                Shape::Deep => assert_eq!(depths.iter().max(), Some(&50)),
                Shape::Balanced { .. } => assert_eq!((level(1), level(2), level(3)), (4, 16, 30)),
                Shape::Containers { .. } => {
                    assert_eq!((level(1), level(2), level(3)), (1, 10, 39));
                }
            }
            let leaves = run.leaves();
            match shape {
                Shape::Wide => assert_eq!(leaves.len(), 50),
                Shape::Deep => assert_eq!(leaves, vec![paths[49].clone()]),
                Shape::Balanced { .. } => assert_eq!(leaves.len(), 38), // parents: all 4 of level 1, 8 of level 2
                Shape::Containers { .. } => assert_eq!(leaves.len(), 39),
            }
            let mut child = sleeper();
            let leaf = leaves.last().expect("a leaf").clone();
            run.move_pid(child.0.id(), &leaf).expect("move pid");
            let procs = fs::read_to_string(leaf.join("cgroup.procs")).expect("read procs");
            assert_eq!(procs.trim(), child.0.id().to_string());
            let stats = run.teardown().expect("teardown");
            assert_eq!(stats.cgroups_removed, 51, "{shape:?}");
            assert_eq!(stats.processes_killed, 1);
            assert!(!root.exists(), "{} still exists", root.display());
            let status = child.0.wait().expect("reap");
            assert_eq!(status.signal(), Some(libc::SIGKILL), "{shape:?}: child was not killed");
        }
    }

    #[test]
    fn move_pid_refuses_outside() {
        let Some(cg) = v2_or_skip("move_pid_refuses_outside") else {
            return;
        };
        let run = RunTree::create(&cg).expect("create run tree");
        let me = std::process::id();
        for p in [
            cg.mount().to_path_buf(),
            run.root().join(".."),
            run.root().join("../other"),
        ] {
            match run.move_pid(me, &p) {
                Err(CgroupError::OutsideRun { .. }) => {}
                other => panic!("{} accepted: {other:?}", p.display()),
            }
        }
        run.teardown().expect("teardown");
    }

    #[test]
    fn limits_are_named() {
        let Some(cg) = v2_or_skip("limits_are_named") else {
            return;
        };
        let mut run = RunTree::create(&cg).expect("create run tree");
        // The run root's own limit files are the run's to set.
        fs::write(run.root().join("cgroup.max.depth"), "2").expect("set max.depth");
        match run.build(Shape::Deep, 5) {
            Err(CgroupError::Limit {
                limit: "cgroup.max.depth",
                max: 2,
                asked: 5,
                ..
            }) => {}
            other => panic!("expected a depth limit error, got {other:?}"),
        }
        fs::write(run.root().join("cgroup.max.descendants"), "3").expect("set max.descendants");
        let e = run.build(Shape::Wide, 5).expect_err("over max.descendants");
        assert!(e.to_string().contains("cgroup.max.descendants"), "{e}");
        assert!(matches!(e, CgroupError::Limit { max: 3, asked: 5, .. }), "{e:?}");
        assert_eq!(run.build(Shape::Wide, 3).expect("within limits").len(), 3);
        assert_eq!(run.teardown().expect("teardown").cgroups_removed, 4);
    }

    #[test]
    fn cleanup_stale_spares_live_runs() {
        let Some(cg) = v2_or_skip("cleanup_stale_spares_live_runs") else {
            return;
        };
        // A pid that is certainly dead: a reaped child's.
        let mut t = Command::new("true").spawn().expect("spawn true");
        let dead = t.id();
        t.wait().expect("reap true");
        assert!(!pid_alive(dead));
        let stale = DirGuard(cg.mount().join(format!("hookbench-{dead}-1")));
        let live = DirGuard(cg.mount().join(format!("hookbench-{}-2", std::process::id())));
        for g in [&stale, &live] {
            fs::create_dir(&g.0).expect("mkdir run dir");
            fs::create_dir(g.0.join("child")).expect("mkdir child");
        }
        let mut child = sleeper();
        fs::write(stale.0.join("child/cgroup.procs"), child.0.id().to_string()).expect("move sleeper");
        let removed = cleanup_stale(&cg).expect("cleanup_stale");
        assert!(removed.contains(&stale.0), "{removed:?}");
        assert!(!removed.iter().any(|p| p == &live.0));
        assert!(!stale.0.exists());
        assert!(live.0.join("child").is_dir(), "live run disturbed");
        let status = child.0.wait().expect("reap");
        assert_eq!(status.signal(), Some(libc::SIGKILL));
        let stats = remove_subtree(&live.0).expect("remove live dir");
        assert_eq!(stats.cgroups_removed, 2);
        assert!(!live.0.exists());
    }

    #[test]
    fn teardown_without_cgroup_kill() {
        let Some(cg) = v2_or_skip("teardown_without_cgroup_kill") else {
            return;
        };
        let mut run = RunTree::create(&cg).expect("create run tree");
        let paths = run.build(Shape::Balanced { fanout: 2 }, 7).expect("build");
        let mut kids = [sleeper(), sleeper(), sleeper()];
        for (k, p) in kids.iter().zip([&paths[1], &paths[5], &paths[6]]) {
            run.move_pid(k.0.id(), p).expect("move pid");
        }
        let root = run.root().to_path_buf();
        let stats = remove_subtree_with(&root, false, None).expect("SIGKILL teardown");
        assert_eq!((stats.cgroups_removed, stats.processes_killed), (8, 3));
        assert!(!root.exists());
        for k in &mut kids {
            assert_eq!(k.0.wait().expect("reap").signal(), Some(libc::SIGKILL));
        }
    }

    #[test]
    fn run_dir_paths() {
        assert!(in_run_dir(Path::new("/sys/fs/cgroup/unified/hookbench-1-2/w0_0")));
        assert!(in_run_dir(Path::new("/sys/fs/cgroup/unified/hookbench-1-2")));
        assert!(!in_run_dir(Path::new("/sys/fs/cgroup/unified/hookbench-1-2/../x")));
        assert!(!in_run_dir(Path::new("./hookbench-1-2/x")));
        assert!(!in_run_dir(Path::new("/sys/fs/cgroup/unified/system.slice")));
    }

    /// Nested trees (a worker's, inside the run), named leaves, the tear-down without reads of
    /// a tree known to be empty, its fallback when a task is still there, and settling.
    #[test]
    fn nested_trees_and_unpopulated_teardown() {
        let Some(cg) = v2_or_skip("nested_trees_and_unpopulated_teardown") else {
            return;
        };
        let mut run = RunTree::create(&cg).expect("create run tree");
        let home = run.child("spawner-1").expect("named leaf");
        assert_eq!(home, run.root().join("spawner-1"));
        assert!(home.is_dir());
        for bad in ["", "a/b", "..", ".", "cgroup.procs", "x\0y"] {
            assert!(
                matches!(run.child(bad), Err(CgroupError::Invalid { .. })),
                "{bad:?} accepted"
            );
        }
        assert!(matches!(
            RunTree::create_under(cg.mount()),
            Err(CgroupError::OutsideRun { .. })
        ));
        // Known empty: removed by the rmdir loop alone.
        let mut nested = RunTree::create_under(run.root()).expect("nested tree");
        let nested_root = nested.root().to_path_buf();
        assert!(nested_root.starts_with(run.root()) && in_run_dir(&nested_root));
        let shape = Shape::Containers {
            children_per_container: 3,
        };
        assert_eq!(nested.build(shape, 50).expect("build").len(), 50);
        let stats = nested.teardown_unpopulated().expect("unpopulated teardown");
        assert_eq!((stats.cgroups_removed, stats.processes_killed), (51, 0));
        assert!(!nested_root.exists());
        assert_eq!(settle_dying(run.root(), KILL_TIMEOUT).expect("settle"), 0);
        // Not empty after all: the careful path takes over and kills what is there.
        let mut nested = RunTree::create_under(run.root()).expect("nested tree");
        let leaves = nested.build(shape, 9).expect("build");
        let mut child = sleeper();
        nested.move_pid(child.0.id(), &leaves[8]).expect("move pid");
        let stats = nested.teardown_unpopulated().expect("fallback teardown");
        assert_eq!((stats.processes_killed, stats.cgroups_removed), (1, 10));
        assert_eq!(child.0.wait().expect("reap").signal(), Some(libc::SIGKILL));
        // The run keeps only what it recorded.
        let stats = run.teardown().expect("teardown");
        assert_eq!((stats.cgroups_removed, stats.processes_killed), (2, 0));
    }

    #[test]
    fn mkdir_floor_200() {
        let Some(cg) = v2_or_skip("mkdir_floor_200") else {
            return;
        };
        let run = RunTree::create(&cg).expect("create run tree");
        let (mk, rm) = mkdir_floor(run.root(), 200).expect("mkdir_floor");
        assert!(mk > Duration::ZERO && rm > Duration::ZERO);
        eprintln!("mkdir_floor(200): mkdir {mk:?}, rmdir {rm:?}");
        assert_eq!(
            walk(run.root()).expect("walk").len(),
            1,
            "mkdir_floor left cgroups behind"
        );
        assert_eq!(run.teardown().expect("teardown").cgroups_removed, 1);
    }

    #[test]
    fn wide_10k_timing() {
        let Some(cg) = v2_or_skip("wide_10k_timing") else {
            return;
        };
        let mut run = RunTree::create(&cg).expect("create run tree");
        let root = run.root().to_path_buf();
        let (paths, build) = run.build_timed(Shape::Wide, 10_000).expect("build 10k");
        assert_eq!(paths.len(), 10_000);
        let stats = run.teardown().expect("teardown");
        assert_eq!(stats.cgroups_removed, 10_001);
        assert!(!root.exists());
        let floor_run = RunTree::create(&cg).expect("create run tree");
        let (fmk, frm) = mkdir_floor(floor_run.root(), 10_000).expect("mkdir_floor 10k");
        floor_run.teardown().expect("teardown");
        eprintln!(
            "10,000 Wide cgroups: build {build:?}, teardown {:?}; mkdir_floor: mkdir {fmk:?}, rmdir {frm:?}",
            stats.duration
        );
    }
}
