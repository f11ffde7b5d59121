//! Global-filter programs on the running kernel: raw tracepoint programs on `sys_enter`.
//!
//! BPF C in `src/bpf/global.bpf.c` (its own object beside `hookbench.bpf.c` and `lsm.bpf.c`),
//! ABI header `src/bpf/global.h`. Each program is `BPF_PROG_TYPE_RAW_TRACEPOINT` on
//! `sys_enter`: no BPF trampoline, so it runs where fentry and lsm programs are refused. Once
//! attached ([`GlobalProgram::attach`]) it runs on every syscall entry of every task of the
//! machine. It returns at once unless the syscall is the measured trigger's
//! ([`GlobalConfig::trigger_nr`]), then finds out whether it applies to the current task in
//! one of two ways ([`Dispatch`]), and runs its body ([`SockBody`], from `hb_bodies.h`) if so:
//!
//! - [`Dispatch::HandleLoop`]: RFC v2 patch 09/10's shape: a loop over the first H entries of a
//!   `BPF_MAP_TYPE_CGROUP_ARRAY` of cgroup handles, `bpf_current_task_under_cgroup` on each
//!   (`bpf_loop`, verified once whatever H), stopping at the first match;
//! - [`Dispatch::CgroupIdMap`]: `bpf_get_current_cgroup_id()` and one lookup in a
//!   `BPF_MAP_TYPE_HASH` of H cgroup ids.
//!
//! Like [`crate::ProgramInstance`], a [`GlobalProgram`] opens the object and loads exactly one
//! of its programs with its own maps. The link [`GlobalProgram::attach`] returns is a bpf_link
//! fd (`BPF_RAW_TRACEPOINT_OPEN`): the program is detached when the link is dropped and by the
//! kernel when the process holding it dies, however it dies.

use std::fs::File;
use std::os::fd::{AsFd as _, AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::fs::MetadataExt as _;

use libbpf_rs::libbpf_sys;
use libbpf_rs::{Link, MapCore, MapFlags};

use crate::{BpfError, LoadError, LoadedProgram, SockBody};

/// The compiled BPF object (ELF) of `src/bpf/global.bpf.c`.
pub static GLOBAL_OBJECT: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/global.bpf.o"));

/// The text of the ABI header `src/bpf/global.h`; the items below mirror it (a unit test checks).
pub const GLOBAL_HEADER: &str = include_str!("bpf/global.h");

/// `HB_GLOBAL_RETURN`: what every global program returns (a raw tracepoint ignores it).
pub const HB_GLOBAL_RETURN: u32 = 0;

/// `HB_GLOBAL_CFG_BYTES`: the size of `struct hb_global_cfg`, the object's whole `.rodata`.
pub const HB_GLOBAL_CFG_BYTES: usize = 16;

/// The raw tracepoint every global program attaches to.
pub const RAW_TRACEPOINT: &str = "sys_enter";

/// Most handles a program takes: `bpf_loop`'s limit (`BPF_MAX_LOOPS`, 1 << 23).
pub const MAX_HANDLES: u32 = 1 << 23;

/// `struct hb_global_cfg` of `global.h`: the read-only configuration set before load.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GlobalConfig {
    /// The syscall number the programs act on (`args[1]` of `sys_enter`); others return at once.
    pub trigger_nr: u64,
    /// H: the handles the loop walks (and the size of either map).
    pub handles: u32,
    /// Padding (0).
    pub pad: u32,
}

const _: () = assert!(std::mem::size_of::<GlobalConfig>() == HB_GLOBAL_CFG_BYTES);

impl GlobalConfig {
    /// The struct's bytes, as `.rodata` holds them.
    fn to_bytes(self) -> [u8; HB_GLOBAL_CFG_BYTES] {
        let mut out = [0u8; HB_GLOBAL_CFG_BYTES];
        out[..8].copy_from_slice(&self.trigger_nr.to_ne_bytes());
        out[8..12].copy_from_slice(&self.handles.to_ne_bytes());
        out[12..].copy_from_slice(&self.pad.to_ne_bytes());
        out
    }
}

/// The object's program names, by dispatch (loop, then map) and body (null, counter, lookup).
///
/// Each fits the kernel's 15 bytes of program name (`BPF_OBJ_NAME_LEN`), so it is also the
/// program's kernel name.
pub const PROG_NAMES: [[&str; 3]; 2] = [
    ["hb_loop_null", "hb_loop_counter", "hb_loop_lookup"],
    ["hb_cgid_null", "hb_cgid_counter", "hb_cgid_lookup"],
];

/// How a global program finds whether it applies to the current task.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Dispatch {
    /// A loop over H cgroup handles (a cgroup array, `bpf_current_task_under_cgroup` on each).
    HandleLoop,
    /// One lookup of the task's cgroup id in a hash map of H ids.
    CgroupIdMap,
}

impl Dispatch {
    /// Both forms.
    pub const ALL: [Dispatch; 2] = [Dispatch::HandleLoop, Dispatch::CgroupIdMap];

    /// The program's name in the object for `body` (a row of [`PROG_NAMES`]).
    pub fn prog_name(self, body: SockBody) -> &'static str {
        body.program_of(match self {
            Dispatch::HandleLoop => PROG_NAMES[0],
            Dispatch::CgroupIdMap => PROG_NAMES[1],
        })
    }

    /// The map of the form: `hb_handles` (cgroup array) or `hb_cgids` (hash of cgroup ids).
    pub fn map_name(self) -> &'static str {
        match self {
            Dispatch::HandleLoop => "hb_handles",
            Dispatch::CgroupIdMap => "hb_cgids",
        }
    }
}

/// Errors of loading, filling and attaching global programs; each names the program.
#[derive(Debug, thiserror::Error)]
pub enum GlobalError {
    /// Opening, configuring or loading the object failed (`EPERM`: not root).
    #[error(transparent)]
    Load(#[from] LoadError),
    /// A map update failed ([`BpfError::Map`]).
    #[error(transparent)]
    Map(#[from] BpfError),
    /// A handle index at or past the program's H.
    #[error("handle {index} of {prog}: the program was loaded for {handles} handles (0..{handles})")]
    Index {
        /// The program.
        prog: &'static str,
        /// The index asked for.
        index: u32,
        /// The program's H.
        handles: u32,
    },
    /// H is over [`MAX_HANDLES`].
    #[error("{handles} handles: bpf_loop walks at most BPF_MAX_LOOPS = {MAX_HANDLES}")]
    TooManyHandles {
        /// The H asked for.
        handles: u32,
    },
    /// Reading a cgroup directory's inode number (its cgroup id) failed.
    #[error("reading the cgroup id (inode number) of a handle of {prog}: {source}")]
    CgroupId {
        /// The program.
        prog: &'static str,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// `BPF_RAW_TRACEPOINT_OPEN` of `sys_enter` failed.
    #[error("attaching {prog} to the raw tracepoint {RAW_TRACEPOINT} failed: {errno}")]
    Attach {
        /// The program.
        prog: &'static str,
        /// The errno (`EPERM`: not root).
        errno: std::io::Error,
    },
}

/// One loaded global program with its own maps, for H handles.
///
/// Dropping it closes the program and map fds; the kernel frees the program once no link
/// holds it.
#[derive(Debug)]
pub struct GlobalProgram {
    loaded: LoadedProgram,
    dispatch: Dispatch,
    body: SockBody,
    handles: u32,
    id: u32,
}

impl GlobalProgram {
    /// Loads the program of `dispatch` and `body` for H = `handles`, acting on `trigger_nr`.
    ///
    /// Opens [`GLOBAL_OBJECT`], creates `hb_counter`, `hb_lookup` (filled by
    /// [`LoadedProgram::load`]), `.rodata` and the form's own map ([`Dispatch::map_name`], with
    /// `max_entries` = max(H, 1)), writes [`GlobalConfig`] into `.rodata` and loads. The form's
    /// map starts empty: [`GlobalProgram::add_cgroup`] fills it. Errors:
    /// [`GlobalError::TooManyHandles`], [`GlobalError::Load`].
    pub fn load(
        dispatch: Dispatch,
        body: SockBody,
        handles: u32,
        trigger_nr: u64,
    ) -> Result<GlobalProgram, GlobalError> {
        if handles > MAX_HANDLES {
            return Err(GlobalError::TooManyHandles { handles });
        }
        let own = dispatch.map_name();
        let create_map = |m: &str| m == "hb_counter" || m == "hb_lookup" || m == own || m.ends_with(".rodata");
        let config = GlobalConfig {
            trigger_nr,
            handles,
            pad: 0,
        };
        let configure = |open: &mut libbpf_rs::OpenObject| -> Result<(), libbpf_rs::Error> {
            for mut m in open.maps_mut() {
                let name = m.name().to_string_lossy().into_owned();
                if name == own {
                    m.set_max_entries(handles.max(1))?;
                } else if name.ends_with(".rodata") {
                    let value = m.initial_value_mut().ok_or_else(|| rodata_error(&name, None))?;
                    if value.len() != HB_GLOBAL_CFG_BYTES {
                        return Err(rodata_error(&name, Some(value.len())));
                    }
                    value.copy_from_slice(&config.to_bytes());
                }
            }
            Ok(())
        };
        let loaded = LoadedProgram::load_with(GLOBAL_OBJECT, dispatch.prog_name(body), create_map, configure)?;
        let id = loaded.id().unwrap_or(0);
        Ok(GlobalProgram {
            loaded,
            dispatch,
            body,
            handles,
            id,
        })
    }

    /// The kernel's program id (`bpf_prog_info.id`; 0 if it could not be read).
    pub fn id(&self) -> u32 {
        self.id
    }

    /// The program's name in the object (also its kernel name: every name fits 15 bytes).
    pub fn name(&self) -> &'static str {
        self.dispatch.prog_name(self.body)
    }

    /// Its dispatch.
    pub fn dispatch(&self) -> Dispatch {
        self.dispatch
    }

    /// H, as loaded.
    pub fn handles(&self) -> u32 {
        self.handles
    }

    /// Makes the cgroup whose directory is open as `cgroup` handle `index` (0..H).
    ///
    /// The loop: `hb_handles[index]` = the directory's fd (the kernel takes a reference to the
    /// cgroup; the fd may be closed afterwards). The map: `hb_cgids[cgroup id]` = `index`, the
    /// id being the directory's inode number (a cgroup2 cgroup's id is its kernfs node id, which
    /// is the inode number on 64-bit kernels). Errors: [`GlobalError::Index`],
    /// [`GlobalError::CgroupId`], [`GlobalError::Map`].
    pub fn add_cgroup(&self, index: u32, cgroup: &File) -> Result<(), GlobalError> {
        let prog = self.name();
        if index >= self.handles {
            return Err(GlobalError::Index {
                prog,
                index,
                handles: self.handles,
            });
        }
        let map_name = self.dispatch.map_name();
        let map = self.loaded.map(map_name)?;
        let result = match self.dispatch {
            Dispatch::HandleLoop => {
                let fd: u32 = cgroup.as_raw_fd().unsigned_abs();
                map.update(&index.to_ne_bytes(), &fd.to_ne_bytes(), MapFlags::ANY)
            }
            Dispatch::CgroupIdMap => {
                let id = cgroup
                    .metadata()
                    .map_err(|source| GlobalError::CgroupId { prog, source })?
                    .ino();
                map.update(&id.to_ne_bytes(), &index.to_ne_bytes(), MapFlags::ANY)
            }
        };
        result.map_err(|source| {
            GlobalError::Map(BpfError::Map {
                op: "update",
                map: map_name,
                prog,
                source,
            })
        })
    }

    /// Attaches the program to the raw tracepoint `sys_enter`, for every task of the machine.
    ///
    /// `bpf_program__attach_raw_tracepoint` -> `BPF_RAW_TRACEPOINT_OPEN`: a link fd; dropping
    /// the link, or the death of the process holding it, detaches the program. Errors:
    /// [`GlobalError::Attach`].
    pub fn attach(&self) -> Result<Link, GlobalError> {
        let tp = c"sys_enter";
        // SAFETY: the program pointer is valid while `self.loaded` lives; `tp` is a C string.
        let ptr = unsafe { libbpf_sys::bpf_program__attach_raw_tracepoint(self.loaded.raw_program(), tp.as_ptr()) };
        crate::link_or_errno(ptr).map_err(|errno| GlobalError::Attach {
            prog: self.name(),
            errno: std::io::Error::from_raw_os_error(errno),
        })
    }

    /// The program's counter (`hb_counter[HB_COUNTER_KEY]`): runs of the counter body, else 0.
    ///
    /// Errors: [`GlobalError::Load`] when the map cannot be read.
    pub fn counter(&self) -> Result<u64, GlobalError> {
        Ok(self.loaded.counter()?)
    }
}

/// The `.rodata` of the object is not one `struct hb_global_cfg` (`len`: its size, if any).
fn rodata_error(map: &str, len: Option<usize>) -> libbpf_rs::Error {
    let what = match len {
        Some(n) => format!("{n} bytes"),
        None => "no initial value".to_string(),
    };
    std::io::Error::new(
        std::io::ErrorKind::InvalidData,
        format!(
            "{map} has {what}, expected struct hb_global_cfg's {HB_GLOBAL_CFG_BYTES} (global.h and global.rs disagree)"
        ),
    )
    .into()
}

/// Ids of the loaded programs whose kernel name is one of [`PROG_NAMES`].
///
/// Walks every program id (`BPF_PROG_GET_NEXT_ID`), opening each to read its name: what a
/// check that no global program outlived its worker compares. Programs freed meanwhile are
/// skipped.
pub fn loaded_global_program_ids() -> Vec<u32> {
    let mut out = Vec::new();
    let mut id = 0u32;
    loop {
        let mut next = 0u32;
        // SAFETY: plain syscall wrapper; `next` outlives the call.
        if unsafe { libbpf_sys::bpf_prog_get_next_id(id, &mut next) } != 0 {
            break;
        }
        id = next;
        // SAFETY: plain syscall wrapper; a returned fd is owned below.
        let fd = unsafe { libbpf_sys::bpf_prog_get_fd_by_id(id) };
        if fd < 0 {
            continue;
        }
        // SAFETY: `fd` is a fresh fd owned by nobody else.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        let Ok(info) = crate::prog_info(fd.as_fd()) else {
            continue;
        };
        let name: Vec<u8> = info.name.iter().take_while(|&&c| c != 0).map(|&c| c as u8).collect();
        if PROG_NAMES.iter().flatten().any(|n| n.as_bytes() == name.as_slice()) {
            out.push(id);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use libbpf_rs::ObjectBuilder;

    #[test]
    fn global_abi_matches_the_header() {
        for define in [
            format!("#define HB_GLOBAL_RETURN {HB_GLOBAL_RETURN}\n"),
            format!("#define HB_GLOBAL_CFG_BYTES {HB_GLOBAL_CFG_BYTES}\n"),
        ] {
            assert!(GLOBAL_HEADER.contains(&define), "global.h lacks {define:?}");
        }
        let fields: Vec<String> = GLOBAL_HEADER
            .split("struct hb_global_cfg {")
            .nth(1)
            .and_then(|s| s.split("};").next())
            .expect("struct hb_global_cfg in global.h")
            .split(';')
            .map(|f| f.split_whitespace().collect::<Vec<_>>().join(" "))
            .filter(|f| !f.is_empty())
            .collect();
        assert_eq!(fields, ["__u64 trigger_nr", "__u32 handles", "__u32 pad"]);
        let c = GlobalConfig {
            trigger_nr: 0x0102_0304_0506_0708,
            handles: 9,
            pad: 0,
        };
        assert_eq!(&c.to_bytes()[..8], &c.trigger_nr.to_ne_bytes());
    }

    #[test]
    fn global_object_has_every_program_and_map() {
        let open = ObjectBuilder::default()
            .open_memory(GLOBAL_OBJECT)
            .expect("open object");
        let text = |s: &std::ffi::OsStr| s.to_string_lossy().into_owned();
        let mut progs: Vec<String> = open
            .progs()
            .map(|p| format!("{} {}", text(p.section()), text(p.name())))
            .collect();
        progs.sort();
        let mut want: Vec<String> = PROG_NAMES
            .iter()
            .flatten()
            .map(|n| format!("raw_tp/sys_enter {n}"))
            .collect();
        want.sort();
        assert_eq!(progs, want);
        let names: Vec<&str> = Dispatch::ALL
            .iter()
            .flat_map(|d| SockBody::ALL.map(|b| d.prog_name(b)))
            .collect();
        assert!(
            names
                .iter()
                .all(|n| n.len() < 16 && want.iter().any(|w| w.ends_with(n))),
            "{names:?}"
        );
        let maps: Vec<(String, usize)> = open
            .maps()
            .map(|m| (text(m.name()), m.initial_value().map_or(0, <[u8]>::len)))
            .collect();
        for m in ["hb_counter", "hb_lookup", "hb_handles", "hb_cgids"] {
            assert!(maps.iter().any(|(n, _)| n == m), "{m}: {maps:?}");
        }
        let rodata: Vec<usize> = maps
            .iter()
            .filter(|(n, _)| n.ends_with(".rodata"))
            .map(|m| m.1)
            .collect();
        assert_eq!(rodata, [HB_GLOBAL_CFG_BYTES], "{maps:?}");
    }

    /// Every program loads (raw tracepoints need no trampoline) for H up to 4096 and beyond.
    #[test]
    fn global_programs_load_for_thousands_of_handles() {
        if !hookbench_sys::testing::root_or_skip_bpf("global_programs_load_for_thousands_of_handles") {
            return;
        }
        let nr = libc::SYS_getppid as u64;
        let mut ids = Vec::new();
        for d in Dispatch::ALL {
            for b in SockBody::ALL {
                for h in [1, 4096, 65_536] {
                    let p = GlobalProgram::load(d, b, h, nr).unwrap_or_else(|e| panic!("{d:?}/{b:?}/H={h}: {e}"));
                    assert!(p.id() > 0 && crate::prog_exists(p.id()), "{p:?}");
                    assert_eq!(p.counter().expect("counter"), 0);
                    ids.push(p.id());
                }
            }
        }
        assert!(matches!(
            GlobalProgram::load(Dispatch::HandleLoop, SockBody::Null, MAX_HANDLES + 1, nr),
            Err(GlobalError::TooManyHandles { .. })
        ));
        let p = GlobalProgram::load(Dispatch::CgroupIdMap, SockBody::Null, 2, nr).expect("load");
        let dir = File::open("/").expect("open /");
        assert!(matches!(
            p.add_cgroup(2, &dir),
            Err(GlobalError::Index { index: 2, .. })
        ));
        p.add_cgroup(1, &dir).expect("any directory's inode is a key");
        drop(p);
        let mut sorted = ids.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), ids.len(), "distinct programs: {ids:?}");
        let alive: Vec<u32> = ids.into_iter().filter(|&id| crate::prog_exists(id)).collect();
        assert!(alive.is_empty(), "closed programs still loaded: {alive:?}");
    }
}
