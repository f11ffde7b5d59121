//! System facts every hookbench crate reads the same way: mounts, LSMs, kernel release, errno.
//!
//! A leaf crate (it depends on no other hookbench crate), so that the harness's environment
//! probe, the workloads' cgroup trees and LSM checks, and the kmod checks share one parser each
//! instead of keeping copies. Each parser takes the text of its file, so that tests can feed it
//! hand-written input; the reader beside it reads the live file.
//!
//! - [`mountinfo`]: `/proc/self/mountinfo` lines, the cgroup2 mount, the cgroup layout.
//! - [`lsm`]: the active LSMs (`<securityfs>/lsm`, else the `lsm_list_modules` syscall).
//! - [`release`]: `uname` and the `(major, minor)` of a kernel release.
//! - [`errno`]: `EPERM (Operation not permitted)`-style text for messages.
//! - [`kconfig`]: the running kernel's `.config` (`/proc/config.gz` or `/boot/config-<release>`).
//! - [`testing`]: the root check of root-only tests (`HOOKBENCH_REQUIRE_ROOT`).
//! - [`cache`]: CPU 0's L2 and last-level cache sizes (sysfs), what a cold working set exceeds.
//! - [`slabinfo`]: `/proc/slabinfo` per cache, deltas of chosen caches, SLUB's `shrink`.
//! - [`vmallocinfo`]: `/proc/vmallocinfo` pages summed by caller.

pub mod cache;
pub mod errno;
pub mod kconfig;
pub mod lsm;
pub mod mountinfo;
pub mod release;
pub mod slabinfo;
pub mod testing;
pub mod vmallocinfo;
