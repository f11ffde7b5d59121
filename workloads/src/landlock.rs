//! Landlock domains on the running kernel: a per-task stack of layers, the `task-chain` family as
//! it shipped for filesystem access control.
//!
//! Each `landlock_restrict_self(2)` stacks one new layer onto the calling thread's domain
//! (`security/landlock/syscalls.c: sys_landlock_restrict_self` -> `ruleset.c:
//! landlock_merge_ruleset`, which copies the parent domain's rules and adds the new layer's
//! access masks to them). A domain holds at most [`LANDLOCK_MAX_NUM_LAYERS`] layers
//! (`security/landlock/limits.h`); one more makes `landlock_restrict_self` fail with `E2BIG`.
//! On every `open(2)` Landlock's `hook_file_open` (`security/landlock/fs.c`) initialises one
//! access mask per layer (`landlock_init_layer_masks`), then walks the opened file's path upwards
//! one directory at a time (`is_access_to_paths_allowed`), looking each directory up in the
//! domain's rule tree (`find_rule` -> `landlock_find_rule`, `ruleset.c`) and clearing the layers a
//! rule there grants (`landlock_unmask_layers`, a loop over the rule's layers), until every layer
//! has granted the access. With one rule per layer on a directory `root`, opening a file
//! `dir_depth` levels beneath `root` therefore visits every level and every layer.
//!
//! Domains are inherited across fork and can never be removed, so measurements happen in a freshly
//! exec'd worker process ([`spawn_landlock_worker`] runs it, [`run_landlock_worker`] is its body),
//! exactly like [`crate::seccomp`]'s workers, never in the harness itself. The worker (not the
//! parent) creates its directory chain under `root` before restricting itself; the parent creates
//! `root` (an empty temporary directory) and removes it with everything in it afterwards.
//!
//! Rulesets are built with the `landlock` crate at [`TARGET_ABI`] (Landlock ABI 7, Linux 6.15,
//! the newest ABI this code is tested on; filesystem rights do not change until ABI 9) in its
//! default best-effort mode, so an older kernel enforces the subset it knows.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use ::landlock::{
    Access, AccessFs, CompatLevel, Compatible, PathBeneath, PathFd, RestrictSelfError, RulesetAttr, RulesetCreatedAttr,
    RulesetError, RulesetStatus, ABI,
};
use nix::errno::Errno;
use serde::{Deserialize, Serialize};

use crate::seccomp::{MAX_WORKER_BATCH, MAX_WORKER_SAMPLES, WORKER_TIMEOUT_SECS};
use crate::worker::{run_json_worker, WorkerFailure, WorkerRun};

/// Most layers a Landlock domain can stack (`LANDLOCK_MAX_NUM_LAYERS` of
/// `security/landlock/limits.h`); `landlock_restrict_self` returns `E2BIG` beyond it.
pub const LANDLOCK_MAX_NUM_LAYERS: u32 = 16;

/// Landlock ABI the rulesets are written for (ABI 7, Linux 6.15): handled rights are
/// `AccessFs::from_all(TARGET_ABI)`, allowed ones `AccessFs::from_read(TARGET_ABI)`. Best-effort
/// compatibility drops what an older kernel does not know.
pub const TARGET_ABI: ABI = ABI::V7;

/// Deepest directory chain a [`LandlockWorkerRequest`] may ask for, in levels (each level adds
/// 2 to 4 bytes to the path, which stays far below `PATH_MAX` = 4096).
pub const MAX_DIR_DEPTH: u32 = 256;

/// Marker that prefixes the worker's JSON report on its stdout line
/// ([`format_landlock_report_line`]), distinct from seccomp's so reports cannot be mixed up.
pub const LANDLOCK_REPORT_MARKER: &str = "HOOKBENCH-LANDLOCK-REPORT ";

/// Name of the file at the bottom of the directory chain ([`chain_file_path`]).
pub const CHAIN_FILE_NAME: &str = "hookbench-landlock-file";

/// Name of the file the worker tries to create under `root` after restricting itself, to prove
/// the restriction is in force (it must fail with `EACCES`).
pub const PROBE_FILE_NAME: &str = "hookbench-landlock-probe";

/// `LANDLOCK_CREATE_RULESET_VERSION` of `include/uapi/linux/landlock.h`.
const CREATE_RULESET_VERSION: libc::c_uint = 1;

/// Errors of building the chain, stacking layers, measuring and running workers.
#[derive(Debug, thiserror::Error)]
pub enum LandlockError {
    /// A worker request field is out of range.
    #[error("Landlock worker request {field} = {value} is invalid: {why}")]
    InvalidRequest {
        /// The field.
        field: &'static str,
        /// Its value.
        value: u64,
        /// The accepted range.
        why: &'static str,
    },
    /// The request's `root` is not usable.
    #[error("Landlock worker request root {root:?} is invalid: {why}")]
    InvalidRoot {
        /// The root given.
        root: PathBuf,
        /// What is wrong and what to pass instead.
        why: &'static str,
    },
    /// More layers were asked for than a domain can hold (checked before any is installed).
    #[error(
        "asked for {requested} Landlock layers, but a domain stacks at most LANDLOCK_MAX_NUM_LAYERS = \
         {LANDLOCK_MAX_NUM_LAYERS} (security/landlock/limits.h; landlock_restrict_self fails with E2BIG \
         beyond); ask for layers <= {LANDLOCK_MAX_NUM_LAYERS}"
    )]
    TooManyLayers {
        /// Layers asked for.
        requested: u32,
    },
    /// The kernel refused a layer with `E2BIG`: the domain was full, so the task must have
    /// inherited layers from its parent.
    #[error(
        "landlock_restrict_self refused layer {} of {requested} with {errno}: the domain already holds \
         LANDLOCK_MAX_NUM_LAYERS = {LANDLOCK_MAX_NUM_LAYERS} layers, so the worker inherited {} from its \
         parent; run the worker from an unrestricted process or ask for layers <= {installed}",
        installed + 1,
        LANDLOCK_MAX_NUM_LAYERS.saturating_sub(*installed)
    )]
    LayerLimit {
        /// Layers asked for.
        requested: u32,
        /// Layers this call installed before the refusal.
        installed: u32,
        /// The errno (`E2BIG`).
        errno: Errno,
    },
    /// Landlock is not usable on this kernel.
    #[error(
        "Landlock is not available on this kernel: landlock_create_ruleset(LANDLOCK_CREATE_RULESET_VERSION) \
         failed with {errno} (ENOSYS: not built in, enable CONFIG_SECURITY_LANDLOCK; EOPNOTSUPP: built in \
         but disabled, add \"landlock\" to the lsm= boot parameter); Landlock layers cannot be measured here"
    )]
    Unavailable {
        /// The errno (`ENOSYS` or `EOPNOTSUPP`; anything else means a seccomp filter or similar
        /// blocks the syscall).
        errno: Errno,
    },
    /// The best-effort ruleset ended up enforcing nothing (not expected when [`landlock_abi`]
    /// succeeds).
    #[error(
        "Landlock layer {layer} of {requested} was not enforced (status {status}); the kernel reports ABI \
         {abi:?}, check that Landlock is enabled"
    )]
    NotEnforced {
        /// 1-based layer number.
        layer: u32,
        /// Layers asked for.
        requested: u32,
        /// The crate's `RestrictionStatus`, as debug text.
        status: String,
        /// The kernel's ABI version, if known.
        abi: Option<i32>,
    },
    /// Building a ruleset (create, add rule) failed.
    #[error("Landlock layer {layer} of {requested}: {what} failed: {source}")]
    Ruleset {
        /// 1-based layer number.
        layer: u32,
        /// Layers asked for.
        requested: u32,
        /// The step that failed.
        what: &'static str,
        /// The crate's error (with the errno of the failing syscall).
        #[source]
        source: RulesetError,
    },
    /// `landlock_restrict_self` failed with an errno other than `E2BIG`.
    #[error("landlock_restrict_self of layer {layer} of {requested} failed: {errno}")]
    RestrictSelf {
        /// 1-based layer number.
        layer: u32,
        /// Layers asked for.
        requested: u32,
        /// The errno (`EPERM`: no_new_privs not set and no `CAP_SYS_ADMIN`; `EINVAL`: bad
        /// ruleset or flags).
        errno: Errno,
    },
    /// Opening `root` for the rule failed.
    #[error("cannot open the rule directory {root:?} (O_PATH): {source}")]
    RuleRoot {
        /// The directory.
        root: PathBuf,
        /// The crate's error (with the errno).
        #[source]
        source: ::landlock::PathFdError,
    },
    /// `prctl(PR_SET_NO_NEW_PRIVS, 1)` failed.
    #[error("prctl(PR_SET_NO_NEW_PRIVS, 1) failed: {errno}")]
    NoNewPrivs {
        /// The errno.
        errno: Errno,
    },
    /// Creating the directory chain or its file failed.
    #[error("cannot create {path:?} ({what}): {source}; check that root exists and is writable")]
    Setup {
        /// The path being created.
        path: PathBuf,
        /// What was being created.
        what: &'static str,
        /// The I/O error (with its errno).
        #[source]
        source: std::io::Error,
    },
    /// The probe file could be created (or failed with another errno than `EACCES`) after the
    /// layers were installed: the task is not restricted as asked, so nothing is measured.
    #[error(
        "after {layers} Landlock layers, creating {probe:?} should fail with EACCES (write rights are \
         handled, not allowed) but {outcome}; the task is not restricted, nothing measured"
    )]
    NotRestricted {
        /// Layers installed.
        layers: u32,
        /// The probe path.
        probe: PathBuf,
        /// What happened instead.
        outcome: String,
    },
    /// An `open` of the measured file failed.
    #[error(
        "open({path:?}, O_RDONLY|O_CLOEXEC) failed with {errno} under {layers} Landlock layers (EACCES means \
         the read rule beneath root did not apply)"
    )]
    Open {
        /// The file.
        path: PathBuf,
        /// Layers installed.
        layers: u32,
        /// The errno.
        errno: Errno,
    },
    /// The request could not be serialized (not expected).
    #[error("cannot serialize the Landlock worker request: {0}")]
    Serialize(#[source] serde_json::Error),
    /// The worker could not be started or waited for.
    #[error("Landlock worker {exe}: {what}: {source}")]
    WorkerIo {
        /// The worker executable.
        exe: String,
        /// What failed.
        what: &'static str,
        /// The I/O error (with its errno).
        #[source]
        source: std::io::Error,
    },
    /// The worker ran longer than the timeout and was killed.
    #[error("Landlock worker {exe} ran over {timeout_ms} ms and was killed; ask for fewer samples or a smaller batch")]
    WorkerTimeout {
        /// The worker executable.
        exe: String,
        /// The timeout, in ms.
        timeout_ms: u128,
    },
    /// The worker printed no report.
    #[error(
        "Landlock worker {exe} exited with {status} without a {LANDLOCK_REPORT_MARKER:?} line or JSON \
         report; stderr tail: {stderr}"
    )]
    NoReport {
        /// The worker executable.
        exe: String,
        /// Its exit status.
        status: String,
        /// The end of its stderr.
        stderr: String,
    },
    /// The worker's report is not valid JSON of a [`LandlockWorkerReport`].
    #[error("Landlock worker {exe} printed an unreadable report ({source}): {line}")]
    BadReport {
        /// The worker executable.
        exe: String,
        /// The report line (truncated).
        line: String,
        /// The parse error.
        #[source]
        source: serde_json::Error,
    },
}

/// The running kernel's Landlock ABI version (`landlock_create_ruleset(NULL, 0,
/// LANDLOCK_CREATE_RULESET_VERSION)`, `security/landlock/syscalls.c`): 7 on Linux 6.15+.
/// Errors: [`LandlockError::Unavailable`] with the errno (`ENOSYS`: not built in;
/// `EOPNOTSUPP`: disabled at boot).
pub fn landlock_abi() -> Result<i32, LandlockError> {
    // SAFETY: with a NULL attr, size 0 and the VERSION flag the kernel reads no memory.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_landlock_create_ruleset,
            std::ptr::null::<libc::c_void>(),
            0 as libc::size_t,
            CREATE_RULESET_VERSION,
        )
    };
    if rc < 0 {
        return Err(LandlockError::Unavailable { errno: Errno::last() });
    }
    Ok(i32::try_from(rc).unwrap_or(i32::MAX))
}

/// Path of the file at the bottom of a chain of `dir_depth` directories under `root`:
/// `root/d0/d1/.../d{dir_depth-1}/`[`CHAIN_FILE_NAME`] (`root/`[`CHAIN_FILE_NAME`] for depth 0).
/// Pure.
pub fn chain_file_path(root: &Path, dir_depth: u32) -> PathBuf {
    let mut path = root.to_path_buf();
    for level in 0..dir_depth {
        path.push(format!("d{level}"));
    }
    path.push(CHAIN_FILE_NAME);
    path
}

/// Creates the directories of [`chain_file_path`]`(root, dir_depth)` and a 10-byte file at the
/// bottom; returns the file's path. Existing directories and an existing file are kept as they
/// are (so a parent may pre-create the chain, and a worker already restricted to reading under
/// `root` can still use it). Errors:
/// [`LandlockError::Setup`] with the path and the I/O error.
pub fn prepare_chain(root: &Path, dir_depth: u32) -> Result<PathBuf, LandlockError> {
    let file = chain_file_path(root, dir_depth);
    if let Some(dir) = file.parent() {
        std::fs::create_dir_all(dir).map_err(|source| LandlockError::Setup {
            path: dir.to_path_buf(),
            what: "directory chain",
            source,
        })?;
    }
    let created = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&file)
        .and_then(|mut f| std::io::Write::write_all(&mut f, b"hookbench\n"));
    match created {
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(file),
        Err(source) => Err(LandlockError::Setup {
            path: file,
            what: "file at the bottom of the chain",
            source,
        }),
        Ok(()) => Ok(file),
    }
}

/// Stacks `n` Landlock layers onto the calling thread's domain, each a ruleset that handles
/// `AccessFs::from_all(`[`TARGET_ABI`]`)` (read and write rights) and allows
/// `AccessFs::from_read(`[`TARGET_ABI`]`)` beneath `root` (one `PathBeneath` rule), so files
/// under `root` stay readable and everything else is denied. Sets no_new_privs once
/// (`prctl(PR_SET_NO_NEW_PRIVS, 1)`), then per layer builds the ruleset
/// (`landlock_create_ruleset`, `landlock_add_rule`, untimed) and times the
/// `landlock_restrict_self` call alone. Returns the time of each restrict_self, in ns, in order.
/// The layers apply to the calling thread and the tasks it creates afterwards, and can never be
/// removed: call this only in a worker process. `n = 0` does nothing.
///
/// Errors: [`LandlockError::TooManyLayers`] when `n` > [`LANDLOCK_MAX_NUM_LAYERS`] (nothing
/// installed); [`LandlockError::Unavailable`]; [`LandlockError::LayerLimit`] when the kernel says
/// `E2BIG` (inherited layers filled the domain); [`LandlockError::RestrictSelf`],
/// [`LandlockError::Ruleset`], [`LandlockError::RuleRoot`], [`LandlockError::NoNewPrivs`],
/// [`LandlockError::NotEnforced`].
pub fn install_layers(root: &Path, n: u32) -> Result<Vec<f64>, LandlockError> {
    if n > LANDLOCK_MAX_NUM_LAYERS {
        return Err(LandlockError::TooManyLayers { requested: n });
    }
    if n == 0 {
        return Ok(Vec::new());
    }
    let abi = landlock_abi()?;
    nix::sys::prctl::set_no_new_privs().map_err(|errno| LandlockError::NoNewPrivs { errno })?;
    let mut install_ns = Vec::with_capacity(n as usize);
    for index in 0..n {
        let layer = index + 1;
        let ruleset_err = |what: &'static str| {
            move |source| LandlockError::Ruleset {
                layer,
                requested: n,
                what,
                source,
            }
        };
        let dir = PathFd::new(root).map_err(|source| LandlockError::RuleRoot {
            root: root.to_path_buf(),
            source,
        })?;
        let created = ::landlock::Ruleset::default()
            .set_compatibility(CompatLevel::BestEffort)
            .handle_access(AccessFs::from_all(TARGET_ABI))
            .map_err(ruleset_err("handle_access"))?
            .create()
            .map_err(ruleset_err("landlock_create_ruleset"))?
            .add_rule(PathBeneath::new(dir, AccessFs::from_read(TARGET_ABI)))
            .map_err(ruleset_err("landlock_add_rule"))?
            .no_new_privs(false);
        let start = Instant::now();
        let outcome = created.restrict_self();
        let elapsed = start.elapsed().as_nanos() as f64;
        match outcome {
            Ok(status) if status.ruleset == RulesetStatus::NotEnforced => {
                return Err(LandlockError::NotEnforced {
                    layer,
                    requested: n,
                    status: format!("{status:?}"),
                    abi: Some(abi),
                });
            }
            Ok(_) => install_ns.push(elapsed),
            Err(RulesetError::RestrictSelf(RestrictSelfError::RestrictSelfCall { source, .. })) => {
                let errno = Errno::from_raw(source.raw_os_error().unwrap_or(libc::EINVAL));
                return Err(if errno == Errno::E2BIG {
                    LandlockError::LayerLimit {
                        requested: n,
                        installed: index,
                        errno,
                    }
                } else {
                    LandlockError::RestrictSelf {
                        layer,
                        requested: n,
                        errno,
                    }
                });
            }
            Err(source) => return Err(ruleset_err("landlock_restrict_self")(source)),
        }
    }
    Ok(install_ns)
}

/// Checks that the calling thread is restricted: creating `root/`[`PROBE_FILE_NAME`]
/// (`O_WRONLY|O_CREAT|O_EXCL`) must fail with `EACCES`, as every layer handles
/// `LANDLOCK_ACCESS_FS_MAKE_REG` and none allows it. Errors: [`LandlockError::NotRestricted`]
/// (a file that was created is removed again).
pub fn verify_restricted(root: &Path, layers: u32) -> Result<(), LandlockError> {
    let probe = root.join(PROBE_FILE_NAME);
    let not_restricted = |outcome: String| LandlockError::NotRestricted {
        layers,
        probe: probe.clone(),
        outcome,
    };
    let c = CString::new(probe.as_os_str().as_bytes()).map_err(|_| not_restricted("the path has a NUL byte".into()))?;
    // SAFETY: `c` is a valid NUL-terminated path; the mode is passed as the variadic argument.
    let fd = unsafe {
        libc::open(
            c.as_ptr(),
            libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL | libc::O_CLOEXEC,
            0o600 as libc::c_uint,
        )
    };
    if fd >= 0 {
        // SAFETY: `fd` was just opened by this function.
        unsafe { libc::close(fd) };
        let _ = std::fs::remove_file(&probe);
        return Err(not_restricted("it was created".into()));
    }
    match Errno::last() {
        Errno::EACCES => Ok(()),
        errno => Err(not_restricted(format!("it failed with {errno}"))),
    }
}

/// Times `open(path, O_RDONLY|O_CLOEXEC)` + `close` on the calling thread: after one untimed
/// warm-up batch, `n_samples` samples of `batch` pairs, timed with [`std::time::Instant`]
/// (`CLOCK_MONOTONIC` through the vDSO). Returns one value per sample: elapsed ns / `batch`, i.e.
/// ns per open+close, loop overhead included. `batch = 0` is taken as 1. Errors:
/// [`LandlockError::Open`] at the first failing open (`layers` is only used in the message).
pub fn measure_open(path: &Path, layers: u32, n_samples: usize, batch: u64) -> Result<Vec<f64>, LandlockError> {
    let batch = batch.max(1);
    let open_err = |errno| LandlockError::Open {
        path: path.to_path_buf(),
        layers,
        errno,
    };
    let c = CString::new(path.as_os_str().as_bytes()).map_err(|_| open_err(Errno::EINVAL))?;
    let run = || -> Result<(), LandlockError> {
        for _ in 0..batch {
            // SAFETY: `c` is a valid NUL-terminated path.
            let fd = unsafe { libc::open(c.as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC) };
            if fd < 0 {
                return Err(open_err(Errno::last()));
            }
            // SAFETY: `fd` was just opened here and is closed once.
            unsafe { libc::close(std::hint::black_box(fd)) };
        }
        Ok(())
    };
    run()?;
    let mut samples = Vec::with_capacity(n_samples);
    for _ in 0..n_samples {
        let start = Instant::now();
        run()?;
        samples.push(start.elapsed().as_nanos() as f64 / batch as f64);
    }
    Ok(samples)
}

/// What a Landlock worker process is asked to do: build a chain of `dir_depth` directories under
/// `root` with a file at the bottom ([`prepare_chain`]), stack `layers` layers allowing reads
/// beneath `root` ([`install_layers`]), check it is restricted ([`verify_restricted`]), then take
/// `samples` samples of `batch` open+close pairs of the file ([`measure_open`]). Serialized as
/// JSON on the worker's command line, e.g.
/// `{"layers":8,"dir_depth":4,"samples":200,"batch":1000,"root":"/tmp/hb-1"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LandlockWorkerRequest {
    /// Layers to stack, 0..=[`LANDLOCK_MAX_NUM_LAYERS`] (0 = the unrestricted baseline).
    pub layers: u32,
    /// Directory levels between `root` and the file, 0..=[`MAX_DIR_DEPTH`].
    pub dir_depth: u32,
    /// Samples to take, 1..=[`MAX_WORKER_SAMPLES`].
    pub samples: usize,
    /// open+close pairs per sample, 1..=[`MAX_WORKER_BATCH`].
    pub batch: u64,
    /// An existing, writable directory given as an absolute path, made (and removed afterwards)
    /// by the parent; the worker creates its chain inside.
    pub root: PathBuf,
}

/// What a Landlock worker reports, as one JSON line on its stdout
/// ([`format_landlock_report_line`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LandlockWorkerReport {
    /// The layers requested.
    pub layers: u32,
    /// The directory depth requested.
    pub dir_depth: u32,
    /// Per-sample ns per open+close ([`measure_open`]); empty when `error` is set.
    pub samples_ns: Vec<f64>,
    /// Time of each `landlock_restrict_self`, in ns, in order (layer 1 first); empty when the
    /// install failed (the error then says how many layers were installed).
    pub install_ns: Vec<f64>,
    /// The kernel's Landlock ABI version ([`landlock_abi`]); `None` when Landlock is unavailable.
    pub abi: Option<i32>,
    /// Why the worker could not measure (a [`LandlockError`] message), if it could not.
    pub error: Option<String>,
}

/// Checks a request without touching the system: `layers` <= [`LANDLOCK_MAX_NUM_LAYERS`]
/// ([`LandlockError::TooManyLayers`]), `dir_depth` <= [`MAX_DIR_DEPTH`], `samples` in
/// 1..=[`MAX_WORKER_SAMPLES`], `batch` in 1..=[`MAX_WORKER_BATCH`]
/// ([`LandlockError::InvalidRequest`]), `root` absolute and without NUL bytes
/// ([`LandlockError::InvalidRoot`]).
pub fn validate_landlock_request(req: &LandlockWorkerRequest) -> Result<(), LandlockError> {
    if req.layers > LANDLOCK_MAX_NUM_LAYERS {
        return Err(LandlockError::TooManyLayers { requested: req.layers });
    }
    if req.dir_depth > MAX_DIR_DEPTH {
        return Err(LandlockError::InvalidRequest {
            field: "dir_depth",
            value: u64::from(req.dir_depth),
            why: "use 0..=256",
        });
    }
    if req.samples == 0 || req.samples > MAX_WORKER_SAMPLES {
        return Err(LandlockError::InvalidRequest {
            field: "samples",
            value: req.samples as u64,
            why: "use 1..=1000000",
        });
    }
    if req.batch == 0 || req.batch > MAX_WORKER_BATCH {
        return Err(LandlockError::InvalidRequest {
            field: "batch",
            value: req.batch,
            why: "use 1..=100000000",
        });
    }
    if !req.root.is_absolute() {
        return Err(LandlockError::InvalidRoot {
            root: req.root.clone(),
            why: "pass the absolute path of an existing, writable directory",
        });
    }
    if req.root.as_os_str().as_bytes().contains(&0) {
        return Err(LandlockError::InvalidRoot {
            root: req.root.clone(),
            why: "the path contains a NUL byte",
        });
    }
    Ok(())
}

/// The worker's body: validates `req` ([`validate_landlock_request`]), builds the chain
/// ([`prepare_chain`]), stacks the layers on the *current* thread ([`install_layers`]; they also
/// bind the tasks it creates afterwards), verifies the restriction when `layers > 0`
/// ([`verify_restricted`]) and measures ([`measure_open`]). Never fails: errors are in the
/// report's `error`. Call it only in a freshly exec'd process that will exit afterwards (the
/// layers cannot be removed), such as `hookbench worker landlock '<json>'`, on the thread that
/// measures.
pub fn run_landlock_worker(req: &LandlockWorkerRequest) -> LandlockWorkerReport {
    let abi = landlock_abi().ok();
    let mut install_ns = Vec::new();
    let outcome = (|| {
        validate_landlock_request(req)?;
        let file = prepare_chain(&req.root, req.dir_depth)?;
        install_ns = install_layers(&req.root, req.layers)?;
        if req.layers > 0 {
            verify_restricted(&req.root, req.layers)?;
        }
        measure_open(&file, req.layers, req.samples, req.batch)
    })();
    let (samples_ns, error) = match outcome {
        Ok(samples) => (samples, None),
        Err(e) => (Vec::new(), Some(e.to_string())),
    };
    LandlockWorkerReport {
        layers: req.layers,
        dir_depth: req.dir_depth,
        samples_ns,
        install_ns,
        abi,
        error,
    }
}

/// The line a worker prints on stdout: [`LANDLOCK_REPORT_MARKER`] followed by the report as JSON
/// (no trailing newline). If serializing failed, the line carries a report with no samples and
/// the serialization error in `error`.
pub fn format_landlock_report_line(report: &LandlockWorkerReport) -> String {
    let json = serde_json::to_string(report).unwrap_or_else(|e| {
        let fallback = LandlockWorkerReport {
            layers: report.layers,
            dir_depth: report.dir_depth,
            samples_ns: Vec::new(),
            install_ns: Vec::new(),
            abi: report.abi,
            error: Some(format!("cannot serialize the report: {e}")),
        };
        serde_json::to_string(&fallback).unwrap_or_default()
    });
    format!("{LANDLOCK_REPORT_MARKER}{json}")
}

/// Runs `exe args_prefix... <request JSON>` (fork + exec through [`std::process::Command`]),
/// waits at most [`WORKER_TIMEOUT_SECS`] s (killing it when over) and parses its report: the rest
/// of the line after the last [`LANDLOCK_REPORT_MARKER`] on stdout, or else the last stdout line
/// starting with `{`. A report whose `error` is set is returned as `Ok`: the caller decides.
/// Errors: [`LandlockError::WorkerIo`], [`LandlockError::WorkerTimeout`],
/// [`LandlockError::NoReport`], [`LandlockError::BadReport`], [`LandlockError::Serialize`].
pub fn spawn_landlock_worker(
    exe: &Path,
    args_prefix: &[&str],
    req: &LandlockWorkerRequest,
) -> Result<LandlockWorkerReport, LandlockError> {
    spawn_landlock_worker_with(exe, args_prefix, &[], req, Duration::from_secs(WORKER_TIMEOUT_SECS))
}

/// [`spawn_landlock_worker`] with extra environment variables `envs` for the worker and a
/// `timeout`.
pub fn spawn_landlock_worker_with(
    exe: &Path,
    args_prefix: &[&str],
    envs: &[(&str, &str)],
    req: &LandlockWorkerRequest,
    timeout: Duration,
) -> Result<LandlockWorkerReport, LandlockError> {
    let json = serde_json::to_string(req).map_err(LandlockError::Serialize)?;
    let run = WorkerRun {
        exe,
        args_prefix,
        envs,
        timeout,
        poll: Duration::from_millis(5),
        marker: LANDLOCK_REPORT_MARKER,
        bare_json_fallback: true,
    };
    run_json_worker(&run, &json).map_err(worker_error)
}

/// Maps a worker failure into the matching [`LandlockError`] variant.
fn worker_error(f: WorkerFailure) -> LandlockError {
    match f {
        WorkerFailure::Io { exe, what, source } => LandlockError::WorkerIo { exe, what, source },
        WorkerFailure::Timeout { exe, timeout_ms } => LandlockError::WorkerTimeout { exe, timeout_ms },
        WorkerFailure::NoReport { exe, status, stderr } => LandlockError::NoReport { exe, status, stderr },
        WorkerFailure::BadReport { exe, line, source } => LandlockError::BadReport { exe, line, source },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Env var that turns [`worker_entry`] into a worker.
    const WORKER_ENV: &str = "HOOKBENCH_LANDLOCK_WORKER";
    /// Env var asking [`worker_entry`] to stack this many layers before running the worker (to
    /// make the kernel's own `E2BIG` limit reachable).
    const PRESTACK_ENV: &str = "HOOKBENCH_LANDLOCK_PRESTACK";

    /// Serializes the tests that spawn workers, so measurements do not compete for CPUs.
    static WORKER_LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());

    /// The worker mode of this test binary: with `HOOKBENCH_LANDLOCK_WORKER` set, reads the
    /// request JSON from the last argument, runs the worker and prints its report line. Without
    /// it, does nothing (so a normal test run never restricts the test process).
    #[test]
    fn worker_entry() {
        if std::env::var_os(WORKER_ENV).is_none() {
            return;
        }
        let req = std::env::args()
            .next_back()
            .map(|a| serde_json::from_str::<LandlockWorkerRequest>(&a));
        let report = match req {
            Some(Ok(req)) => {
                let prestack: u32 = std::env::var(PRESTACK_ENV)
                    .ok()
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0);
                // The chain is made before the pre-stacked layers forbid writing under root.
                match prepare_chain(&req.root, req.dir_depth).and_then(|_| install_layers(&req.root, prestack)) {
                    Ok(_) => run_landlock_worker(&req),
                    Err(e) => LandlockWorkerReport {
                        layers: req.layers,
                        dir_depth: req.dir_depth,
                        samples_ns: Vec::new(),
                        install_ns: Vec::new(),
                        abi: None,
                        error: Some(format!("prestack: {e}")),
                    },
                }
            }
            other => LandlockWorkerReport {
                layers: 0,
                dir_depth: 0,
                samples_ns: Vec::new(),
                install_ns: Vec::new(),
                abi: None,
                error: Some(format!("bad request argument: {other:?}")),
            },
        };
        println!("\n{}", format_landlock_report_line(&report));
    }

    /// A temporary directory removed (with its contents) on drop.
    struct TempRoot(PathBuf);

    impl TempRoot {
        fn new(tag: &str) -> TempRoot {
            static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
            let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let dir = std::env::temp_dir().join(format!("hookbench-landlock-{}-{tag}-{n}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).expect("create temp root");
            TempRoot(dir)
        }
    }

    impl Drop for TempRoot {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn request(layers: u32, dir_depth: u32, samples: usize, batch: u64, root: &Path) -> LandlockWorkerRequest {
        LandlockWorkerRequest {
            layers,
            dir_depth,
            samples,
            batch,
            root: root.to_path_buf(),
        }
    }

    fn spawn_test_worker_env(req: &LandlockWorkerRequest, envs: &[(&str, &str)]) -> LandlockWorkerReport {
        let exe = std::env::current_exe().expect("current_exe");
        let mut all = vec![(WORKER_ENV, "1")];
        all.extend_from_slice(envs);
        spawn_landlock_worker_with(
            &exe,
            &[
                "--exact",
                "landlock::tests::worker_entry",
                "--nocapture",
                "--test-threads=1",
            ],
            &all,
            req,
            Duration::from_secs(WORKER_TIMEOUT_SECS),
        )
        .expect("worker ran")
    }

    fn spawn_test_worker(req: &LandlockWorkerRequest) -> LandlockWorkerReport {
        spawn_test_worker_env(req, &[])
    }

    fn mean(v: &[f64]) -> f64 {
        v.iter().sum::<f64>() / v.len() as f64
    }

    /// Ordinary least squares through every (x, sample) pair: (intercept, slope).
    fn least_squares(points: &[(u32, Vec<f64>)]) -> (f64, f64) {
        let (xs, ys): (Vec<f64>, Vec<f64>) = points
            .iter()
            .flat_map(|(x, s)| s.iter().map(move |&y| (f64::from(*x), y)))
            .unzip();
        let (xm, ym) = (mean(&xs), mean(&ys));
        let sxx: f64 = xs.iter().map(|x| (x - xm).powi(2)).sum();
        let sxy: f64 = xs.iter().zip(&ys).map(|(x, y)| (x - xm) * (y - ym)).sum();
        let slope = sxy / sxx;
        (ym - slope * xm, slope)
    }

    #[test]
    fn request_validation_is_pure_and_names_values() {
        let ok = request(16, MAX_DIR_DEPTH, 1, 1, Path::new("/tmp/x"));
        validate_landlock_request(&ok).expect("valid");
        let err = validate_landlock_request(&request(17, 4, 1, 1, Path::new("/tmp/x"))).expect_err("17 layers");
        assert!(matches!(err, LandlockError::TooManyLayers { requested: 17 }), "{err}");
        let msg = err.to_string();
        assert!(
            msg.contains("LANDLOCK_MAX_NUM_LAYERS = 16") && msg.contains("17"),
            "{msg}"
        );
        let err =
            validate_landlock_request(&request(1, MAX_DIR_DEPTH + 1, 1, 1, Path::new("/tmp/x"))).expect_err("too deep");
        assert!(err.to_string().contains("dir_depth = 257"), "{err}");
        let err = validate_landlock_request(&request(1, 1, 0, 1, Path::new("/tmp/x"))).expect_err("samples");
        assert!(err.to_string().contains("samples = 0"), "{err}");
        let err = validate_landlock_request(&request(1, 1, 1, 0, Path::new("/tmp/x"))).expect_err("batch");
        assert!(err.to_string().contains("batch = 0"), "{err}");
        let err = validate_landlock_request(&request(1, 1, 1, 1, Path::new("tmp/x"))).expect_err("relative");
        assert!(matches!(err, LandlockError::InvalidRoot { .. }), "{err}");
        assert_eq!(
            chain_file_path(Path::new("/r"), 3),
            Path::new("/r/d0/d1/d2").join(CHAIN_FILE_NAME)
        );
        assert_eq!(
            chain_file_path(Path::new("/r"), 0),
            Path::new("/r").join(CHAIN_FILE_NAME)
        );
        // More layers than the kernel allows are refused before any syscall, even in the test
        // process (nothing is installed).
        let err = install_layers(Path::new("/nonexistent"), 17).expect_err("limit");
        assert!(matches!(err, LandlockError::TooManyLayers { requested: 17 }), "{err}");
        let line = format_landlock_report_line(&LandlockWorkerReport {
            layers: 2,
            dir_depth: 3,
            samples_ns: vec![1.5],
            install_ns: vec![2.0, 3.0],
            abi: Some(7),
            error: None,
        });
        assert!(line.starts_with(LANDLOCK_REPORT_MARKER), "{line}");
    }

    #[test]
    fn landlock_is_available_with_abi_7_or_later() {
        let abi = landlock_abi().expect("Landlock available on this kernel");
        eprintln!("landlock: kernel ABI {abi}");
        assert!(abi >= 7, "ABI {abi}");
    }

    #[test]
    fn worker_over_the_layer_limit_reports_it() {
        let _guard = WORKER_LOCK.lock().unwrap_or_else(|e| e.into_inner());
        let root = TempRoot::new("limit");
        let report = spawn_test_worker(&request(17, 4, 1, 1, &root.0));
        let err = report.error.expect("limit error");
        eprintln!("landlock limit: {err}");
        assert!(err.contains("LANDLOCK_MAX_NUM_LAYERS = 16"), "{err}");
        assert!(err.contains("asked for 17"), "{err}");
        assert!(report.samples_ns.is_empty() && report.install_ns.is_empty());
    }

    #[test]
    fn kernel_e2big_is_mapped_to_the_layer_limit() {
        let _guard = WORKER_LOCK.lock().unwrap_or_else(|e| e.into_inner());
        let root = TempRoot::new("e2big");
        // 4 layers stacked before the worker runs, then 16 more: the kernel refuses the 13th.
        let report = spawn_test_worker_env(&request(16, 1, 1, 1, &root.0), &[(PRESTACK_ENV, "4")]);
        let err = report.error.expect("E2BIG");
        eprintln!("landlock E2BIG: {err}");
        assert!(err.contains("refused layer 13 of 16 with E2BIG"), "{err}");
        assert!(err.contains("inherited 4"), "{err}");
        assert_eq!(
            report.install_ns.len(),
            0,
            "the partial install is reported in the error"
        );
    }

    #[test]
    fn worker_is_really_restricted() {
        let _guard = WORKER_LOCK.lock().unwrap_or_else(|e| e.into_inner());
        let root = TempRoot::new("probe");
        let report = spawn_test_worker(&request(1, 2, 2, 10, &root.0));
        assert_eq!(report.error, None, "{report:?}");
        assert_eq!(report.install_ns.len(), 1);
        assert_eq!(report.samples_ns.len(), 2);
        // The worker's probe was denied, so nothing was created; the unrestricted parent can.
        assert!(!root.0.join(PROBE_FILE_NAME).exists());
        assert!(chain_file_path(&root.0, 2).exists());
    }

    #[test]
    fn open_cost_grows_with_layers() {
        let _guard = WORKER_LOCK.lock().unwrap_or_else(|e| e.into_inner());
        const LAYERS: [u32; 5] = [0, 1, 4, 8, 16];
        const ROUNDS: usize = 10;
        const SAMPLES_PER_ROUND: usize = 20;
        const BATCH: u64 = 1000;
        let root = TempRoot::new("layers");
        let mut points: Vec<(u32, Vec<f64>)> = LAYERS.iter().map(|&n| (n, Vec::new())).collect();
        let mut install: Vec<f64> = Vec::new();
        let mut install_by_position: Vec<Vec<f64>> = Vec::new();
        // Rounds interleave every configuration, so drift over time does not bias the slope.
        for _ in 0..ROUNDS {
            for (i, &layers) in LAYERS.iter().enumerate() {
                let req = request(layers, 4, SAMPLES_PER_ROUND, BATCH, &root.0);
                let report = spawn_test_worker(&req);
                assert_eq!(report.error, None, "{req:?}");
                assert_eq!((report.layers, report.dir_depth), (layers, 4));
                assert_eq!(report.samples_ns.len(), SAMPLES_PER_ROUND);
                assert_eq!(report.install_ns.len(), layers as usize);
                assert!(report.abi.is_some_and(|a| a >= 1), "{report:?}");
                install.extend(report.install_ns.iter().copied());
                if layers == 16 {
                    install_by_position.push(report.install_ns.clone());
                }
                points[i].1.extend(report.samples_ns);
            }
        }
        let (intercept, slope) = least_squares(&points);
        for (n, s) in &points {
            eprintln!("landlock depth 4: {n:>2} layers: mean {:.1} ns per open+close", mean(s));
        }
        for position in [0usize, 1, 3, 7, 15] {
            let mut at: Vec<f64> = install_by_position
                .iter()
                .filter_map(|v| v.get(position).copied())
                .collect();
            at.sort_by(f64::total_cmp);
            eprintln!(
                "landlock restrict_self of layer {:>2}: median {:.0} ns over {} installs",
                position + 1,
                at[at.len() / 2],
                at.len()
            );
        }
        let mut sorted = install.clone();
        sorted.sort_by(f64::total_cmp);
        eprintln!(
            "landlock depth 4: {slope:.2} ns per layer (least squares), intercept {intercept:.1} ns; \
             restrict_self: mean {:.0} ns, median {:.0} ns over {} installs",
            mean(&install),
            sorted[sorted.len() / 2],
            install.len()
        );
        if let Ok(d) = crate::seccomp::decompose(&points) {
            eprintln!(
                "landlock depth 4: no domain {:.1} ns, domain entry {:.1} ns, per layer {:.2} ns [{:.2}, {:.2}] (95% CI)",
                d.native_ns, d.entry_ns, d.per_filter_ns, d.per_filter_ci95.0, d.per_filter_ci95.1
            );
        }
        assert!(slope > 0.0, "slope {slope}");
        assert!(mean(&points[4].1) > mean(&points[0].1), "{points:?}");
    }

    #[test]
    fn deeper_paths_cost_more() {
        let _guard = WORKER_LOCK.lock().unwrap_or_else(|e| e.into_inner());
        const ROUNDS: usize = 10;
        const SAMPLES_PER_ROUND: usize = 20;
        const BATCH: u64 = 1000;
        // (layers, dir_depth); the 0-layer pairs separate the VFS's own per-level cost.
        const CONFIGS: [(u32, u32); 4] = [(8, 1), (8, 16), (0, 1), (0, 16)];
        let root = TempRoot::new("depth");
        let mut samples: Vec<Vec<f64>> = vec![Vec::new(); CONFIGS.len()];
        for _ in 0..ROUNDS {
            for (i, &(layers, depth)) in CONFIGS.iter().enumerate() {
                let req = request(layers, depth, SAMPLES_PER_ROUND, BATCH, &root.0);
                let report = spawn_test_worker(&req);
                assert_eq!(report.error, None, "{req:?}");
                samples[i].extend(report.samples_ns);
            }
        }
        let m: Vec<f64> = samples.iter().map(|s| mean(s)).collect();
        for ((layers, depth), m) in CONFIGS.iter().zip(&m) {
            eprintln!("landlock {layers:>2} layers, depth {depth:>2}: mean {m:.1} ns per open+close");
        }
        let per_level_8 = (m[1] - m[0]) / 15.0;
        let per_level_0 = (m[3] - m[2]) / 15.0;
        eprintln!(
            "landlock per directory level: {per_level_8:.2} ns at 8 layers, {per_level_0:.2} ns at 0 layers, \
             Landlock's share {:.2} ns",
            per_level_8 - per_level_0
        );
        assert!(m[1] > m[0], "depth 16 {} ns vs depth 1 {} ns at 8 layers", m[1], m[0]);
    }

    #[test]
    fn spawn_reports_missing_report_and_timeout() {
        let req = request(0, 0, 1, 1, Path::new("/tmp"));
        let err = spawn_landlock_worker(Path::new("/bin/true"), &[], &req).expect_err("no report");
        assert!(matches!(err, LandlockError::NoReport { .. }), "{err}");
        let err = spawn_landlock_worker_with(
            Path::new("/bin/sh"),
            &["-c", "sleep 5"],
            &[],
            &req,
            Duration::from_millis(200),
        )
        .expect_err("timeout");
        assert!(matches!(err, LandlockError::WorkerTimeout { .. }), "{err}");
    }
}
