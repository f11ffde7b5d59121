//! `/proc/<pid>/mountinfo` parsed once for every crate: mount entries, cgroup2 mount, layout.
//!
//! The format is proc(5)'s, written by `show_mountinfo` in fs/proc_namespace.c: six fixed
//! fields, optional fields up to a `-` separator, then fstype, source and superblock options.
//! Paths carry the kernel's octal escapes (`\040` space, `\011` tab, `\012` newline, `\134`
//! backslash), undone here. Nothing assumes `/sys/fs/cgroup`: hybrid hosts mount cgroup v2 at
//! `/sys/fs/cgroup/unified`, containers anywhere.

use std::ffi::OsStr;
use std::fmt;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;
use std::str::FromStr;

/// The mount table of this process's mount namespace.
pub const SELF_MOUNTINFO: &str = "/proc/self/mountinfo";

/// One line of `/proc/<pid>/mountinfo`, with the kernel's octal escapes undone in the paths.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountEntry {
    /// Field 4: the root of the mount within its filesystem (`/` for a whole hierarchy).
    pub root: PathBuf,
    /// Field 5: the mount point.
    pub mount_point: PathBuf,
    /// The first field after the ` - ` separator: the filesystem type (`cgroup2`, `cgroup`, ...).
    pub fstype: String,
    /// The third field after the separator: the superblock options; empty when there are none.
    ///
    /// For a cgroup v1 mount, its controllers, e.g. `rw,pids`.
    pub super_options: String,
}

/// The entries of a mountinfo text; lines that do not parse are skipped, not guessed at.
///
/// A line parses when it has the six fixed fields and a ` - ` separator after them followed by
/// at least the fstype. Pure.
pub fn parse_mountinfo(mountinfo: &str) -> impl Iterator<Item = MountEntry> + '_ {
    mountinfo.lines().filter_map(|line| {
        let fields: Vec<&str> = line.split(' ').filter(|f| !f.is_empty()).collect();
        // Fields 7.. are optional fields up to the "-" separator, then fstype, source, options.
        let sep = fields.iter().skip(6).position(|f| *f == "-")? + 6;
        let path = |f: &str| PathBuf::from(OsStr::from_bytes(&unescape_octal(f)));
        Some(MountEntry {
            root: path(fields[3]),
            mount_point: path(fields[4]),
            fstype: (*fields.get(sep + 1)?).to_owned(),
            super_options: fields.get(sep + 3).map(|o| (*o).to_owned()).unwrap_or_default(),
        })
    })
}

/// The cgroup v2 mount point in a mountinfo text, preferring a mount of the hierarchy's root.
///
/// A bind mount of a subtree may come first, so the first `cgroup2` mount whose root is `/`
/// wins, else the first `cgroup2` mount; `None` when there is none. Pure.
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

/// Undoes the octal escapes of mountinfo paths (fs/proc_namespace.c, `seq_escape`); raw bytes.
pub fn unescape_octal(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 3 < b.len() && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c)) {
            let v = u32::from(b[i + 1] - b'0') * 64 + u32::from(b[i + 2] - b'0') * 8 + u32::from(b[i + 3] - b'0');
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

/// How cgroup hierarchies are mounted: decides where cgroup-bpf trees can be built.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CgroupLayout {
    /// Only cgroup v2 (`cgroup2`) is mounted.
    Unified,
    /// cgroup v2 is mounted beside cgroup v1 (`cgroup`) hierarchies.
    ///
    /// E.g. systemd's hybrid mode, v2 at `/sys/fs/cgroup/unified`.
    Hybrid,
    /// Only cgroup v1 hierarchies are mounted.
    Legacy,
    /// No cgroup filesystem is mounted.
    None,
}

impl fmt::Display for CgroupLayout {
    /// The lowercase name (`unified`, `hybrid`, `legacy`, `none`), as recorded in results.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CgroupLayout::Unified => "unified",
            CgroupLayout::Hybrid => "hybrid",
            CgroupLayout::Legacy => "legacy",
            CgroupLayout::None => "none",
        })
    }
}

/// A cgroup layout name that is none of `unified`, `hybrid`, `legacy`, `none`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown cgroup layout {0:?}: expected unified, hybrid, legacy or none")]
pub struct UnknownCgroupLayout(pub String);

impl FromStr for CgroupLayout {
    type Err = UnknownCgroupLayout;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        [
            CgroupLayout::Unified,
            CgroupLayout::Hybrid,
            CgroupLayout::Legacy,
            CgroupLayout::None,
        ]
        .into_iter()
        .find(|l| l.to_string() == s)
        .ok_or_else(|| UnknownCgroupLayout(s.to_owned()))
    }
}

/// The cgroup layout of a mountinfo text: v1 and v2 = hybrid, v2 = unified, v1 = legacy. Pure.
pub fn cgroup_layout(mountinfo: &str) -> CgroupLayout {
    let (mut v1, mut v2) = (false, false);
    for m in parse_mountinfo(mountinfo) {
        match m.fstype.as_str() {
            "cgroup2" => v2 = true,
            "cgroup" => v1 = true,
            _ => {}
        }
    }
    match (v1, v2) {
        (true, true) => CgroupLayout::Hybrid,
        (false, true) => CgroupLayout::Unified,
        (true, false) => CgroupLayout::Legacy,
        (false, false) => CgroupLayout::None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    const HYBRID: &str = "\
22 27 0:21 / /proc rw,nosuid,nodev,noexec,relatime shared:13 - proc proc rw
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime shared:9 - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime shared:10 - cgroup2 cgroup2 rw,nsdelegate
";

    const UNIFIED: &str = "\
25 30 0:23 / /sys rw,nosuid,nodev,noexec,relatime shared:7 - sysfs sysfs rw
26 25 0:24 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:8 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot
";

    const NONE: &str = "\
22 27 0:21 / /proc rw,nosuid,nodev,noexec,relatime shared:13 - proc proc rw
23 27 0:22 / /sys rw,nosuid,nodev,noexec,relatime shared:2 - sysfs sysfs rw
";

    const LEGACY: &str = "\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
";

    fn mount(mi: &str) -> Option<String> {
        find_cgroup2_mount(mi).map(|p| p.to_string_lossy().into_owned())
    }

    #[test]
    fn mountinfo_hybrid() {
        assert_eq!(
            find_cgroup2_mount(HYBRID),
            Some(PathBuf::from("/sys/fs/cgroup/unified"))
        );
        assert_eq!(cgroup_layout(HYBRID), CgroupLayout::Hybrid);
    }

    #[test]
    fn mountinfo_unified() {
        assert_eq!(mount(UNIFIED).as_deref(), Some("/sys/fs/cgroup"));
        assert_eq!(cgroup_layout(UNIFIED), CgroupLayout::Unified);
    }

    #[test]
    fn mountinfo_none_and_legacy() {
        assert_eq!(find_cgroup2_mount(NONE), None);
        assert_eq!(cgroup_layout(NONE), CgroupLayout::None);
        assert_eq!(find_cgroup2_mount(""), None);
        assert_eq!(find_cgroup2_mount(LEGACY), None);
        assert_eq!(cgroup_layout(LEGACY), CgroupLayout::Legacy);
        // A "cgroup2" that is a tmpfs's source, a v1 mount, or a line without fields: no mount.
        let mi = "32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu\n\
                  33 31 0:30 / /cgroup2 rw - tmpfs cgroup2 rw\n";
        assert_eq!(find_cgroup2_mount(mi), None);
        assert_eq!(find_cgroup2_mount("garbage line\n- cgroup2\n"), None);
    }

    #[test]
    fn mountinfo_escaped_spaces_and_many_optional_fields() {
        let mi = "50 23 0:40 / /mnt/my\\040cgroup\\134dir rw,relatime shared:1 master:2 propagate_from:3 - cgroup2 none rw\n";
        assert_eq!(mount(mi).as_deref(), Some("/mnt/my cgroup\\dir"));
        let mi = "50 1 0:40 / /mnt/my\\040cgroups\\134x\\011y rw - cgroup2 none rw\n";
        assert_eq!(find_cgroup2_mount(mi), Some(PathBuf::from("/mnt/my cgroups\\x\ty")));
        // Optional fields (shared:, master:) before the separator do not shift the fstype.
        let mi = "50 1 0:40 / /a rw shared:1 master:2 - cgroup2 cgroup2 rw\n";
        assert_eq!(find_cgroup2_mount(mi), Some(PathBuf::from("/a")));
        // A bind mount of a subtree comes first; the root mount is preferred.
        let mi2 = "\
60 23 0:40 /sub /bound\\011tab rw - cgroup2 cgroup2 rw
61 23 0:40 / /real rw - cgroup2 cgroup2 rw
";
        assert_eq!(mount(mi2).as_deref(), Some("/real"));
        let mi3 = "60 23 0:40 /sub /bound\\011tab rw - cgroup2 cgroup2 rw\n";
        assert_eq!(mount(mi3).as_deref(), Some("/bound\ttab"));
        // Garbage lines are skipped; a "cgroup2" in the source field is not the fstype.
        let mi4 = "garbage\n70 1 0:1 / /x rw - tmpfs cgroup2 rw\n";
        assert_eq!(find_cgroup2_mount(mi4), None);
        // An escape of a value over 255 and a short one stay as they are.
        assert_eq!(unescape_octal("a\\777b\\04"), b"a\\777b\\04".to_vec());
    }

    #[test]
    fn entries_carry_root_fstype_and_super_options() {
        let v1: Vec<MountEntry> = parse_mountinfo(HYBRID).filter(|m| m.fstype == "cgroup").collect();
        assert_eq!(v1.len(), 2);
        assert_eq!(v1[0].mount_point, Path::new("/sys/fs/cgroup/cpu"));
        assert_eq!(v1[0].root, Path::new("/"));
        assert_eq!(v1[0].super_options, "rw,cpu");
        assert_eq!(v1[1].super_options, "rw,name=systemd");
    }

    #[test]
    fn layouts_round_trip_through_their_names() {
        for l in [
            CgroupLayout::Unified,
            CgroupLayout::Hybrid,
            CgroupLayout::Legacy,
            CgroupLayout::None,
        ] {
            assert_eq!(l.to_string().parse::<CgroupLayout>(), Ok(l));
        }
        assert_eq!(
            "Hybrid".parse::<CgroupLayout>(),
            Err(UnknownCgroupLayout("Hybrid".to_owned()))
        );
    }

    #[test]
    fn live_mountinfo_parses() {
        let mi = std::fs::read_to_string(SELF_MOUNTINFO).expect("read /proc/self/mountinfo");
        let entries: Vec<MountEntry> = parse_mountinfo(&mi).collect();
        assert_eq!(
            entries.len(),
            mi.lines().count(),
            "a line of the live table did not parse"
        );
        assert!(entries.iter().any(|m| m.mount_point == Path::new("/")));
    }
}
