//! The eBPF programs hookbench.ko runs, from `src/bpf/kmod.bpf.c`, loaded one instance each.
//!
//! `build.rs` compiles the object; this module loads its programs as
//! `BPF_PROG_TYPE_RAW_TRACEPOINT` programs that are never attached to a tracepoint, or as
//! `BPF_PROG_TYPE_SYSCALL` programs where the loaded module says so ([`BodyProgType`]: kernels
//! without BPF_EVENTS, such as User-Mode Linux): the module gets them by fd
//! ([`KmodProgram::prog_ref`]) and runs them with `bpf_prog_run()`.
//!
//! As in `hookbench-bpf`, and with its [`LoadedProgram`], every [`KmodProgram`] opens the object
//! and loads exactly one of its programs with its own maps: N instances are N distinct kernel
//! programs, one per attachment. Loading needs root (`CAP_BPF` + `CAP_PERFMON`, or
//! `CAP_SYS_ADMIN`).

use std::os::fd::{AsFd, AsRawFd, BorrowedFd};

use hookbench_bpf::{LoadError, LoadedProgram};
use libbpf_rs::{MapCore, MapFlags, ProgramType};

use crate::device::ProgRef;
use crate::KmodError;

pub use hookbench_bpf::{HB_COUNTER_KEY, HB_LOOKUP_ENTRIES, HB_LOOKUP_KEY, HB_VERDICT_ALLOW};
pub use hookbench_model::Body;

hookbench_bpf::embed_object!(OBJECT, skel, "kmod");

/// Where the loaded module says which program type it takes for its bodies.
pub const BODY_PROG_TYPE_PARAM: &str = "/sys/module/hookbench/parameters/body_prog_type";

/// The program type hookbench.ko takes for its bodies: one per kernel, the same for every model.
///
/// `BPF_PROG_TYPE_RAW_TRACEPOINT` needs CONFIG_BPF_EVENTS (perf events), which User-Mode Linux
/// lacks; the module then takes `BPF_PROG_TYPE_SYSCALL`, whose context is a plain buffer too.
/// The verifier takes syscall programs only as sleepable (`BPF_F_SLEEPABLE`); the bodies call no
/// helper that sleeps, and the module runs them under `rcu_read_lock()` as it runs raw_tp ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BodyProgType {
    /// `BPF_PROG_TYPE_RAW_TRACEPOINT` (every distribution kernel).
    RawTracepoint,
    /// `BPF_PROG_TYPE_SYSCALL`, loaded sleepable (kernels without BPF_EVENTS).
    Syscall,
}

impl BodyProgType {
    /// Parses the module parameter's text (`raw_tracepoint` or `syscall`, a newline allowed).
    pub fn parse(text: &str) -> Option<BodyProgType> {
        match text.trim() {
            "raw_tracepoint" => Some(BodyProgType::RawTracepoint),
            "syscall" => Some(BodyProgType::Syscall),
            _ => None,
        }
    }

    /// The loaded module's choice, read from [`BODY_PROG_TYPE_PARAM`].
    ///
    /// raw_tracepoint when the module is not loaded or predates the parameter (those modules
    /// take only raw_tp programs).
    pub fn of_module() -> BodyProgType {
        std::fs::read_to_string(BODY_PROG_TYPE_PARAM)
            .ok()
            .and_then(|t| BodyProgType::parse(&t))
            .unwrap_or(BodyProgType::RawTracepoint)
    }

    /// The name the module parameter and the results use.
    pub fn name(self) -> &'static str {
        match self {
            BodyProgType::RawTracepoint => "raw_tracepoint",
            BodyProgType::Syscall => "syscall",
        }
    }
}

/// Which program of the object an instance loads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ProgKind {
    /// `hb_kmod_null`: returns 1.
    Null,
    /// `hb_kmod_counter`: atomic add on its `hb_counter` entry, returns 1.
    Counter,
    /// `hb_kmod_lookup`: one `bpf_map_lookup_elem` on its `hb_lookup` hash map, returns 1.
    MapLookup,
    /// `hb_kmod_ctx` (checks): records the context's four values in `hb_ctx`, counts, returns 1.
    CtxRecorder,
    /// `hb_kmod_overread` (checks): reads one value past the context; the module must refuse it.
    CtxOverread,
    /// `hb_kmod_socket` (checks): a socket filter; the module must refuse its type.
    WrongType,
}

impl ProgKind {
    /// The program's name in the object.
    pub fn prog_name(self) -> &'static str {
        match self {
            ProgKind::Null => "hb_kmod_null",
            ProgKind::Counter => "hb_kmod_counter",
            ProgKind::MapLookup => "hb_kmod_lookup",
            ProgKind::CtxRecorder => "hb_kmod_ctx",
            ProgKind::CtxOverread => "hb_kmod_overread",
            ProgKind::WrongType => "hb_kmod_socket",
        }
    }

    /// The program of a body (hookbench-model's [`Body`]).
    pub fn from_body(body: Body) -> ProgKind {
        match body {
            Body::Null => ProgKind::Null,
            Body::Counter => ProgKind::Counter,
            Body::MapLookup => ProgKind::MapLookup,
        }
    }

    /// The maps the program uses (the others are not created).
    fn maps(self) -> &'static [&'static str] {
        match self {
            ProgKind::Null | ProgKind::WrongType => &[],
            ProgKind::Counter => &["hb_counter"],
            ProgKind::MapLookup => &["hb_lookup"],
            ProgKind::CtxRecorder => &["hb_counter", "hb_ctx"],
            ProgKind::CtxOverread => &["hb_ctx"],
        }
    }
}

/// One loaded program with its own maps.
///
/// Dropping it closes the program fd; the kernel frees the program once the module holds no
/// attachment of it either.
#[derive(Debug)]
pub struct KmodProgram {
    loaded: LoadedProgram,
    kind: ProgKind,
}

/// A [`LoadError`] as a [`KmodError`] (the step names what failed).
fn kmod_error(e: LoadError) -> KmodError {
    match e {
        LoadError::Libbpf { prog, step, source } => KmodError::Bpf {
            prog,
            what: step.what(),
            source,
        },
        LoadError::Missing { what, name } => KmodError::BpfMissing { what, name },
    }
}

impl KmodProgram {
    /// Loads the program of a body ([`KmodProgram::load_kind`]).
    pub fn load(body: Body) -> Result<KmodProgram, KmodError> {
        KmodProgram::load_kind(ProgKind::from_body(body))
    }

    /// Loads `kind`'s program as the loaded module's [`BodyProgType`] ([`KmodProgram::load_as`]).
    pub fn load_kind(kind: ProgKind) -> Result<KmodProgram, KmodError> {
        KmodProgram::load_as(kind, BodyProgType::of_module())
    }

    /// Loads only `kind`'s program of [`OBJECT`] and the maps it uses, as a `ty` program.
    ///
    /// [`ProgKind::WrongType`] stays a socket filter.
    /// `hb_lookup`, when it has it, is filled with keys `0..HB_LOOKUP_ENTRIES` (value = key)
    /// ([`LoadedProgram::load`]). Errors: [`KmodError::Bpf`] (not root, no BPF support).
    pub fn load_as(kind: ProgKind, ty: BodyProgType) -> Result<KmodProgram, KmodError> {
        let name = kind.prog_name();
        let configure = |open: &mut libbpf_rs::OpenObject| -> Result<(), libbpf_rs::Error> {
            if ty == BodyProgType::Syscall && kind != ProgKind::WrongType {
                for mut p in open.progs_mut() {
                    if p.name() == name {
                        p.set_prog_type(ProgramType::Syscall);
                        // A raw_tp section sets no load flags: the sleepable flag is the only one.
                        p.set_flags(libbpf_rs::libbpf_sys::BPF_F_SLEEPABLE);
                    }
                }
            }
            Ok(())
        };
        let loaded =
            LoadedProgram::load_with(OBJECT, name, |m| kind.maps().contains(&m), configure).map_err(kmod_error)?;
        Ok(KmodProgram { loaded, kind })
    }

    /// The program loaded.
    pub fn kind(&self) -> ProgKind {
        self.kind
    }

    /// The program fd, as a number.
    ///
    /// -1 if the program vanished from the object, which cannot happen after a successful load.
    pub fn raw_fd(&self) -> i32 {
        self.fd().map(|fd| fd.as_raw_fd()).unwrap_or(-1)
    }

    /// The program fd, borrowed.
    pub fn fd(&self) -> Option<BorrowedFd<'_>> {
        self.loaded.fd()
    }

    /// The kernel's program id (`bpf_prog_info.id`), if it can be read.
    pub fn id(&self) -> Option<u32> {
        self.loaded.id()
    }

    /// The program as an ioctl argument.
    pub fn prog_ref(&self) -> ProgRef<'_> {
        match self.fd() {
            Some(fd) => ProgRef::Bpf(fd),
            // A load without the program is refused by `load_kind`; -2 makes the module say EBADF.
            None => ProgRef::Raw(-2),
        }
    }

    /// A map fd of the program, if it has a map: for checks that pass the wrong kind of object.
    pub fn map_fd(&self) -> Option<BorrowedFd<'_>> {
        let name = self.kind.maps().first()?;
        let fd = self.loaded.map(name).ok()?.as_fd().as_raw_fd();
        // SAFETY: the fd is owned by `self.loaded`, which outlives the borrow.
        (fd >= 0).then(|| unsafe { BorrowedFd::borrow_raw(fd) })
    }

    /// The program's run counter, `hb_counter[HB_COUNTER_KEY]`.
    ///
    /// The runs of a counter or context-recorder program, 0 for the others.
    pub fn counter(&self) -> Result<u64, KmodError> {
        if !self.kind.maps().contains(&"hb_counter") {
            return Ok(0);
        }
        self.loaded.counter().map_err(kmod_error)
    }

    /// The last context a [`ProgKind::CtxRecorder`] program was run with.
    ///
    /// Zeros before its first run.
    pub fn recorded_ctx(&self) -> Result<[u64; 4], KmodError> {
        let map = self.loaded.map("hb_ctx").map_err(kmod_error)?;
        let mut out = [0u64; 4];
        for (i, slot) in out.iter_mut().enumerate() {
            let key = i as u32;
            let v = map
                .lookup(&key.to_ne_bytes(), MapFlags::ANY)
                .map_err(|source| KmodError::Bpf {
                    prog: self.kind.prog_name(),
                    what: "reading hb_ctx",
                    source,
                })?;
            *slot = v.and_then(|b| b.try_into().ok()).map(u64::from_ne_bytes).unwrap_or(0);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The programs the module accepts: the bodies and the context recorder.
    const LOADABLE: [ProgKind; 4] = [
        ProgKind::Null,
        ProgKind::Counter,
        ProgKind::MapLookup,
        ProgKind::CtxRecorder,
    ];
    /// The programs the checks load for the module to refuse.
    const REFUSED: [ProgKind; 2] = [ProgKind::CtxOverread, ProgKind::WrongType];

    #[test]
    fn object_has_every_program() {
        let names = hookbench_bpf::object_names(OBJECT).expect("open object");
        for k in LOADABLE.into_iter().chain(REFUSED) {
            assert!(names.has_program(k.prog_name()), "{k:?} in {names:?}");
        }
        for b in Body::ALL {
            assert_ne!(ProgKind::from_body(b).prog_name(), "");
        }
    }

    #[test]
    fn programs_load_when_root() {
        if !hookbench_sys::testing::root_or_skip_bpf("programs_load_when_root") {
            return;
        }
        for k in LOADABLE {
            let p = KmodProgram::load_kind(k).expect("load");
            assert!(p.raw_fd() >= 0);
            assert_eq!(p.counter().expect("counter"), 0);
        }
    }

    #[test]
    fn body_prog_type_parses_the_module_parameter() {
        assert_eq!(BodyProgType::parse("syscall\n"), Some(BodyProgType::Syscall));
        assert_eq!(BodyProgType::parse("raw_tracepoint"), Some(BodyProgType::RawTracepoint));
        assert_eq!(BodyProgType::parse("socket"), None);
        for t in [BodyProgType::RawTracepoint, BodyProgType::Syscall] {
            assert_eq!(BodyProgType::parse(t.name()), Some(t));
        }
    }

    #[test]
    fn bodies_load_as_syscall_programs_when_root() {
        if !hookbench_sys::testing::root_or_skip_bpf("bodies_load_as_syscall_programs_when_root") {
            return;
        }
        for k in LOADABLE {
            let p = KmodProgram::load_as(k, BodyProgType::Syscall).expect("load as a syscall program");
            let info = libbpf_rs::query::ProgInfoIter::default()
                .find(|i| Some(i.id) == p.id())
                .expect("the program is listed");
            assert_eq!(info.ty, ProgramType::Syscall, "{k:?}");
        }
    }
}
