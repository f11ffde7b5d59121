//! One program of an embedded BPF object, loaded alone with its own maps: the shared loader.
//!
//! Shared by [`crate::ProgramInstance`], [`crate::lsm::LsmProgram`] and hookbench-kmod's
//! `KmodProgram`. [`LoadedProgram::load`] opens the object, marks every program but the named one
//! not to autoload and every map the caller does not want not to be created, loads
//! (`BPF_MAP_CREATE` per map kept, one `BPF_PROG_LOAD`) and fills `hb_lookup` (when kept) with
//! keys `0..HB_LOOKUP_ENTRIES` (value = key). Every object that includes `src/bpf/hb_bodies.h`
//! has the maps `hb_counter` and `hb_lookup`; [`LoadedProgram::counter`] reads the first.
//! [`object_names`] lists what an object holds, for build checks.

use std::os::fd::{AsFd, BorrowedFd};

use libbpf_rs::{AsRawLibbpf as _, MapCore, MapFlags, Object, ObjectBuilder, OpenObject, Program};

use crate::{BpfError, HB_COUNTER_KEY, HB_LOOKUP_ENTRIES};

/// The step of [`LoadedProgram`] that failed in libbpf.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoadStep {
    /// Opening (parsing) the embedded object.
    Open,
    /// Marking maps not to be created.
    ConfigureMaps,
    /// `BPF_MAP_CREATE` / `BPF_PROG_LOAD`.
    Load,
    /// Filling `hb_lookup`.
    FillLookup,
    /// Reading `hb_counter`.
    ReadCounter,
}

impl LoadStep {
    /// What the step does, for messages: e.g. `"opening the object"`.
    pub fn what(self) -> &'static str {
        match self {
            LoadStep::Open => "opening the object",
            LoadStep::ConfigureMaps => "configuring maps",
            LoadStep::Load => "loading (BPF_PROG_LOAD; run as root)",
            LoadStep::FillLookup => "filling hb_lookup",
            LoadStep::ReadCounter => "reading hb_counter",
        }
    }
}

/// An error of [`LoadedProgram`]; each user turns it into its own error type.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// A libbpf call failed.
    #[error("{} of BPF program {prog} failed: {source}", step.what())]
    Libbpf {
        /// The program.
        prog: &'static str,
        /// The step.
        step: LoadStep,
        /// libbpf's error.
        #[source]
        source: libbpf_rs::Error,
    },
    /// The object has no program or map of that name (a build bug).
    #[error("the BPF object has no {what} named {name}")]
    Missing {
        /// "program" or "map".
        what: &'static str,
        /// The name.
        name: &'static str,
    },
}

impl LoadError {
    /// As a [`BpfError`], by the step that failed (`lsm`: the program is a BPF LSM program).
    ///
    /// A failed open is [`BpfError::Open`], a failed configuration or load [`BpfError::LoadLsm`]
    /// for a BPF LSM program and [`BpfError::Load`] otherwise, a failed map access
    /// [`BpfError::Map`], a missing name [`BpfError::Missing`].
    pub(crate) fn into_bpf(self, lsm: bool) -> BpfError {
        match self {
            LoadError::Libbpf { prog, step, source } => match step {
                LoadStep::Open => BpfError::Open { prog, source },
                LoadStep::ConfigureMaps | LoadStep::Load if lsm => BpfError::LoadLsm { prog, source },
                LoadStep::ConfigureMaps | LoadStep::Load => BpfError::Load { prog, source },
                LoadStep::FillLookup => BpfError::Map {
                    op: "update",
                    map: "hb_lookup",
                    prog,
                    source,
                },
                LoadStep::ReadCounter => BpfError::Map {
                    op: "lookup",
                    map: "hb_counter",
                    prog,
                    source,
                },
            },
            LoadError::Missing { what, name } => BpfError::Missing { what, name },
        }
    }
}

/// What a BPF object holds, by name: [`object_names`]'s answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectNames {
    /// Every program as (name, section), e.g. `("hb_sock_null", "cgroup/sock_create")`.
    pub programs: Vec<(String, String)>,
    /// Every map's name.
    pub maps: Vec<String>,
}

impl ObjectNames {
    /// Whether the object has a program `name` (in any section).
    pub fn has_program(&self, name: &str) -> bool {
        self.programs.iter().any(|(n, _)| n == name)
    }
}

/// The programs and maps of the BPF object `elf`, by name, as libbpf opens it.
///
/// For checks that a build put every expected program and map into an object; nothing is loaded.
/// Errors: libbpf's, when the ELF does not parse.
pub fn object_names(elf: &[u8]) -> Result<ObjectNames, libbpf_rs::Error> {
    let open = ObjectBuilder::default().open_memory(elf)?;
    let text = |s: &std::ffi::OsStr| s.to_string_lossy().into_owned();
    Ok(ObjectNames {
        programs: open.progs().map(|p| (text(p.name()), text(p.section()))).collect(),
        maps: open.maps().map(|m| text(m.name())).collect(),
    })
}

/// One program of a BPF object, loaded alone in its own libbpf object, with its own maps.
///
/// Dropping it closes the program and map fds.
pub struct LoadedProgram {
    object: Object,
    name: &'static str,
    /// The program inside `object`, found once at load so that a timed attach does not search.
    ///
    /// libbpf's `struct bpf_program`, owned by the object's C allocation, so stable while `object`
    /// lives.
    raw: std::ptr::NonNull<libbpf_rs::libbpf_sys::bpf_program>,
}

// SAFETY: `raw` points into `object`, which is Send and Sync; it is only read, and passed to
// libbpf calls that are as thread-safe as the object's own.
unsafe impl Send for LoadedProgram {}
// SAFETY: as above.
unsafe impl Sync for LoadedProgram {}

impl std::fmt::Debug for LoadedProgram {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoadedProgram").field("name", &self.name).finish()
    }
}

impl LoadedProgram {
    /// Loads program `name` of the BPF object `elf` alone, with the maps `create_map` wants.
    ///
    /// Every other program is marked not to autoload and every map for which `create_map` says
    /// `false` not to be created; after the load `hb_lookup`, when created, gets keys
    /// `0..HB_LOOKUP_ENTRIES` (value = key). Errors: [`LoadError`].
    pub fn load(
        elf: &'static [u8],
        name: &'static str,
        create_map: impl Fn(&str) -> bool,
    ) -> Result<LoadedProgram, LoadError> {
        LoadedProgram::load_with(elf, name, create_map, |_| Ok(()))
    }

    /// [`LoadedProgram::load`] with `configure` run on the opened object just before it is loaded.
    ///
    /// For what must be set before `BPF_PROG_LOAD`: a map's `max_entries`, the values of
    /// `.rodata` the verifier then sees as constants. Its error is a [`LoadStep::ConfigureMaps`]
    /// failure.
    pub fn load_with(
        elf: &'static [u8],
        name: &'static str,
        create_map: impl Fn(&str) -> bool,
        configure: impl FnOnce(&mut OpenObject) -> Result<(), libbpf_rs::Error>,
    ) -> Result<LoadedProgram, LoadError> {
        let err = |step| {
            move |source| LoadError::Libbpf {
                prog: name,
                step,
                source,
            }
        };
        let mut open = ObjectBuilder::default().open_memory(elf).map_err(err(LoadStep::Open))?;
        let mut found = false;
        for mut p in open.progs_mut() {
            let me = p.name() == name;
            found |= me;
            p.set_autoload(me);
        }
        if !found {
            return Err(LoadError::Missing { what: "program", name });
        }
        for mut m in open.maps_mut() {
            let keep = m.name().to_str().is_some_and(&create_map);
            m.set_autocreate(keep).map_err(err(LoadStep::ConfigureMaps))?;
        }
        configure(&mut open).map_err(err(LoadStep::ConfigureMaps))?;
        let object = open.load().map_err(err(LoadStep::Load))?;
        let raw = object
            .progs()
            .find(|p| p.name() == name)
            .map(|p| p.as_libbpf_object())
            .ok_or(LoadError::Missing { what: "program", name })?;
        let loaded = LoadedProgram { object, name, raw };
        if create_map("hb_lookup") {
            let lookup = loaded.map("hb_lookup")?;
            for k in 0..HB_LOOKUP_ENTRIES {
                lookup
                    .update(&k.to_ne_bytes(), &u64::from(k).to_ne_bytes(), MapFlags::ANY)
                    .map_err(err(LoadStep::FillLookup))?;
            }
        }
        Ok(loaded)
    }

    /// The program's name in the object.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// The program. Errors: [`LoadError::Missing`] (cannot happen after a successful load).
    pub fn program(&self) -> Result<Program<'_>, LoadError> {
        let name = self.name;
        self.object
            .progs()
            .find(|p| p.name() == name)
            .ok_or(LoadError::Missing { what: "program", name })
    }

    /// libbpf's `struct bpf_program` of the program, for `bpf_program__attach_*` calls.
    ///
    /// Valid while `self` lives.
    pub fn raw_program(&self) -> *mut libbpf_rs::libbpf_sys::bpf_program {
        self.raw.as_ptr()
    }

    /// The map `name` of the object. Errors: [`LoadError::Missing`].
    pub fn map(&self, name: &'static str) -> Result<libbpf_rs::Map<'_>, LoadError> {
        self.object
            .maps()
            .find(|m| m.name() == name)
            .ok_or(LoadError::Missing { what: "map", name })
    }

    /// The program fd, borrowed.
    ///
    /// `None` if the program vanished from the object, which cannot happen after a successful load.
    pub fn fd(&self) -> Option<BorrowedFd<'_>> {
        // O(1) from the cached `bpf_program` (timed attach loops call this): no search of the
        // object's programs by name.
        // SAFETY: `self.raw` points at a program of `self.object`, which outlives `self`.
        let fd = unsafe { libbpf_rs::libbpf_sys::bpf_program__fd(self.raw.as_ptr()) };
        // SAFETY: the fd is owned by `self.object`, which outlives the borrow.
        (fd >= 0).then(|| unsafe { BorrowedFd::borrow_raw(fd) })
    }

    /// The kernel's program id (`bpf_prog_info.id`), if it can be read.
    pub fn id(&self) -> Option<u32> {
        crate::prog_id(self.program().ok()?.as_fd())
    }

    /// The program's counter, `hb_counter[HB_COUNTER_KEY]`.
    ///
    /// 0 when the entry cannot be read as a `u64`. Errors: [`LoadError::Missing`] without
    /// `hb_counter`, [`LoadError::Libbpf`] when the lookup fails.
    pub fn counter(&self) -> Result<u64, LoadError> {
        let v = self
            .map("hb_counter")?
            .lookup(&HB_COUNTER_KEY.to_ne_bytes(), MapFlags::ANY)
            .map_err(|source| LoadError::Libbpf {
                prog: self.name,
                step: LoadStep::ReadCounter,
                source,
            })?;
        Ok(v.and_then(|b| b.try_into().ok()).map(u64::from_ne_bytes).unwrap_or(0))
    }
}
