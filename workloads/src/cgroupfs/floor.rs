//! The kernel's floor for cgroup set-up and tear-down: a bare mkdirat/unlinkat loop, timed.

use std::ffi::CString;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::{fresh_dir, mkdir_error, CgroupError, HINT_READ, HINT_RMDIR};

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

/// The kernel's floor for cgroup set-up and tear-down: (mkdir time, rmdir time) of `count`.
///
/// Makes a fresh directory `<parent>/hookbench-<pid>-floor<nanos>`, times the simplest loop of
/// `mkdirat(2)` of `count` children (names pre-built, relative to a directory fd), then the
/// loop of `unlinkat(AT_REMOVEDIR)` of them, and removes the directory; wall clock. `parent`
/// should be a cgroup of the run (e.g. [`RunTree::root`](super::RunTree::root)); the directory
/// is removed on every path, errors included. Errors: [`CgroupError::Sys`] /
/// [`CgroupError::Refused`] naming the cgroup that failed.
pub fn mkdir_floor(parent: &Path, count: u32) -> Result<(Duration, Duration), CgroupError> {
    let dir = fresh_dir(parent, "floor");
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
