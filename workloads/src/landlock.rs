//! Landlock domains on the running kernel: the per-task `task-chain` family as it shipped.
//!
//! A domain is a per-task stack of layers, for filesystem access control.
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
//! exec'd worker process ([`LandlockWorker`], `hookbench worker landlock`),
//! exactly like [`crate::seccomp`]'s workers, never in the harness itself. The worker (not the
//! parent) creates its directory chain under `root` before restricting itself; the parent creates
//! `root` (an empty temporary directory) and removes it with everything in it afterwards.
//!
//! Foreign layers (claim 1): a layer whose ruleset handles only network rights
//! (`LANDLOCK_ACCESS_NET_BIND_TCP | LANDLOCK_ACCESS_NET_CONNECT_TCP`, ABI 4+) never decides an
//! `open()`, yet it sits in the same domain. What `hook_file_open` does with it (Linux 6.15 to
//! 6.18): `landlock_get_applicable_subject` (`cred.h`) walks the domain's per-layer
//! `access_masks[]` from the youngest layer down and stops at the first that handles any
//! filesystem right, returning early only when none does (a network-only domain costs the open
//! nothing more); with filesystem layers present, network-only layers stacked *above* them are
//! each tested once there. Then `landlock_init_layer_masks` (`ruleset.c`) loops over *all*
//! `num_layers` layers, reading each one's filesystem mask (0 for a network-only layer) and
//! testing it against the requested rights. The path walk (`is_access_to_paths_allowed`) never
//! waits for them: their bits are never set in the layer masks, and they have no inode rules. So
//! by the code each foreign layer adds two mask tests per `open()` and no rule lookup; the cost
//! measured per layer (README, `landlock-foreign-net`) is larger than that, not yet explained.
//! [`install_net_layers_ns`] stacks them after the filesystem layers (the youngest), the case
//! where both loops see them.
//!
//! Rulesets are built with the `landlock` crate at [`TARGET_ABI`] (Landlock ABI 7, Linux 6.15,
//! the newest ABI this code is tested on; filesystem rights do not change until ABI 9) in its
//! default best-effort mode, so an older kernel enforces the subset it knows.

use std::ffi::CString;
use std::os::fd::FromRawFd;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use ::landlock::{
    Access, AccessFs, AccessNet, CompatLevel, Compatible, PathBeneath, PathFd, RestrictSelfError, RulesetAttr,
    RulesetCreatedAttr, RulesetError, RulesetStatus, ABI,
};
use nix::errno::Errno;
use serde::{Deserialize, Serialize};

/// Most layers a Landlock domain can stack; `landlock_restrict_self` returns `E2BIG` beyond it.
///
/// `LANDLOCK_MAX_NUM_LAYERS` of `security/landlock/limits.h`.
pub const LANDLOCK_MAX_NUM_LAYERS: u32 = 16;

/// Landlock ABI the rulesets are written for (ABI 7, Linux 6.15).
///
/// Handled rights are `AccessFs::from_all(TARGET_ABI)`, allowed ones
/// `AccessFs::from_read(TARGET_ABI)`. Best-effort compatibility drops what an older kernel does
/// not know.
pub const TARGET_ABI: ABI = ABI::V7;

/// Deepest directory chain a [`LandlockRequest`] may ask for, in levels.
///
/// Each level adds 2 to 4 bytes to the path, which stays far below `PATH_MAX` = 4096.
pub const MAX_DIR_DEPTH: u32 = 256;

/// Name of the file at the bottom of the directory chain ([`chain_file_path`]).
pub const CHAIN_FILE_NAME: &str = "hookbench-landlock-file";

/// The file the worker tries to create under `root` once restricted, to prove the restriction.
///
/// Creating it must fail with `EACCES`.
pub const PROBE_FILE_NAME: &str = "hookbench-landlock-probe";

/// First Landlock ABI with network rights (`LANDLOCK_ACCESS_NET_*`, Linux 6.7).
pub const NET_ABI: i32 = 4;

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
    /// The kernel refused a layer with `E2BIG`: the domain was full of inherited layers.
    ///
    /// The task must have inherited layers from its parent.
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
        /// The errno: `ENOSYS` or `EOPNOTSUPP`.
        ///
        /// Anything else means a seccomp filter or similar blocks the syscall.
        errno: Errno,
    },
    /// The best-effort ruleset ended up enforcing nothing.
    ///
    /// Not expected when [`landlock_abi`] succeeds.
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
        /// The errno: `EPERM` (neither no_new_privs nor `CAP_SYS_ADMIN`) or `EINVAL`.
        ///
        /// `EINVAL` means a bad ruleset or bad flags.
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
    /// `/proc/thread-self/status` (the task's speculation state) could not be opened.
    #[error("cannot open /proc/thread-self/status: {source} (is /proc mounted?)")]
    Status {
        /// The error.
        #[source]
        source: std::io::Error,
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
    /// The probe file could be created once the layers were installed: the task is not restricted.
    ///
    /// (Or creating it failed with another errno than `EACCES`.) Nothing is measured then.
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
    /// Network-only layers were asked for on a kernel whose Landlock ABI has no network rights.
    #[error(
        "network-only Landlock layers need Landlock ABI >= {NET_ABI} (Linux 6.7, LANDLOCK_ACCESS_NET_BIND_TCP); \
         this kernel reports ABI {abi}: foreign Landlock layers cannot be measured here"
    )]
    NoNetworkRights {
        /// The kernel's ABI version.
        abi: i32,
    },
    /// A TCP `bind()` under the network-only layers did not fail with `EACCES`.
    ///
    /// Either they do not restrict (or the socket could not be made): nothing measured.
    #[error(
        "after {layers} network-only Landlock layers, bind() of a TCP socket to 127.0.0.1:0 should fail with \
         EACCES (LANDLOCK_ACCESS_NET_BIND_TCP handled, no port allowed) but {outcome}; nothing measured"
    )]
    NetNotRestricted {
        /// Network-only layers installed.
        layers: u32,
        /// What happened instead.
        outcome: String,
    },
    /// A network-only domain denied a filesystem right it does not handle.
    #[error(
        "with {layers} network-only Landlock layers and no filesystem layer, creating {probe:?} should succeed \
         (no layer handles LANDLOCK_ACCESS_FS_MAKE_REG) but {outcome}"
    )]
    FsRestrictedByNetLayers {
        /// Network-only layers installed.
        layers: u32,
        /// The probe path.
        probe: PathBuf,
        /// What happened instead.
        outcome: String,
    },
    /// The domain holds another number of layers than the worker stacked.
    ///
    /// Counted after the timed opens by stacking layers until the kernel says `E2BIG`.
    #[error(
        "the worker stacked {expected} Landlock layers, but the kernel took {room} more before E2BIG, so the \
         domain held {} (LANDLOCK_MAX_NUM_LAYERS = {LANDLOCK_MAX_NUM_LAYERS}); nothing measured",
        LANDLOCK_MAX_NUM_LAYERS.saturating_sub(*room)
    )]
    DomainLayers {
        /// Layers the worker stacked in all (pre-stacked, filesystem, network-only).
        expected: u32,
        /// Layers the kernel took afterwards before refusing one with `E2BIG`.
        room: u32,
    },
    /// Timing the trigger failed (pinning, the sampler's configuration).
    #[error(transparent)]
    Trigger(#[from] crate::trigger::TriggerError),
}

/// The running kernel's Landlock ABI version: 7 on Linux 6.15+.
///
/// It is `landlock_create_ruleset(NULL, 0, LANDLOCK_CREATE_RULESET_VERSION)`
/// (`security/landlock/syscalls.c`).
///
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

/// Creates the directories of [`chain_file_path`]`(root, dir_depth)` and a file at the bottom.
///
/// The file holds 10 bytes; returns its path. Existing directories and an existing file are kept
/// as they are (so a parent may pre-create the chain, and a worker already restricted to reading
/// under `root` can still use it).
///
/// Errors: [`LandlockError::Setup`] with the path and the I/O error.
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

/// Stacks `n` Landlock layers on the calling thread; the time of each `restrict_self`, ns.
///
/// Each layer is a ruleset that handles `AccessFs::from_all(`[`TARGET_ABI`]`)` (read and write
/// rights) and allows `AccessFs::from_read(`[`TARGET_ABI`]`)` beneath `root` (one `PathBeneath`
/// rule), so files under `root` stay readable and everything else is denied. Sets no_new_privs
/// once (`prctl(PR_SET_NO_NEW_PRIVS, 1)`), then per layer builds the ruleset
/// (`landlock_create_ruleset`, `landlock_add_rule`, untimed) and times the
/// `landlock_restrict_self` call alone. The layers apply to the calling thread and the tasks it
/// creates afterwards, and can never be removed: call this only in a worker process. `n = 0`
/// does nothing.
///
/// Errors: [`LandlockError::TooManyLayers`] when `n` > [`LANDLOCK_MAX_NUM_LAYERS`] (nothing
/// installed); [`LandlockError::Unavailable`]; [`LandlockError::LayerLimit`] when the kernel says
/// `E2BIG` (inherited layers filled the domain); [`LandlockError::RestrictSelf`],
/// [`LandlockError::Ruleset`], [`LandlockError::RuleRoot`], [`LandlockError::NoNewPrivs`],
/// [`LandlockError::NotEnforced`].
pub fn install_layers_ns(clock: &hookbench_measure::Clock, root: &Path, n: u32) -> Result<Vec<f64>, LandlockError> {
    stack_layers_ns(clock, n, || {
        let dir = PathFd::new(root).map_err(|source| RulesetStep::Root(root.to_path_buf(), source))?;
        ::landlock::Ruleset::default()
            .set_compatibility(CompatLevel::BestEffort)
            .handle_access(AccessFs::from_all(TARGET_ABI))
            .map_err(RulesetStep::at("handle_access"))?
            .create()
            .map_err(RulesetStep::at("landlock_create_ruleset"))?
            .add_rule(PathBeneath::new(dir, AccessFs::from_read(TARGET_ABI)))
            .map_err(RulesetStep::at("landlock_add_rule"))
    })
}

/// Stacks `n` network-only Landlock layers (claim 1's foreign layers); the time of each, ns.
///
/// Each layer's ruleset handles `LANDLOCK_ACCESS_NET_BIND_TCP | LANDLOCK_ACCESS_NET_CONNECT_TCP`
/// and nothing else, with no rule: TCP bind and connect are denied, and no filesystem right is
/// handled, so the layer never decides an `open()`. Built as a hard requirement (ABI >=
/// [`NET_ABI`]); otherwise as [`install_layers_ns`].
///
/// Errors: [`LandlockError::NoNetworkRights`] when the kernel's ABI is below [`NET_ABI`] (nothing
/// installed), and those of [`install_layers_ns`].
pub fn install_net_layers_ns(clock: &hookbench_measure::Clock, n: u32) -> Result<Vec<f64>, LandlockError> {
    if n > 0 {
        let abi = landlock_abi()?;
        if abi < NET_ABI {
            return Err(LandlockError::NoNetworkRights { abi });
        }
    }
    stack_layers_ns(clock, n, || {
        ::landlock::Ruleset::default()
            .set_compatibility(CompatLevel::HardRequirement)
            .handle_access(AccessNet::BindTcp | AccessNet::ConnectTcp)
            .map_err(RulesetStep::at("handle_access"))?
            .create()
            .map_err(RulesetStep::at("landlock_create_ruleset"))
    })
}

/// How many more layers the calling thread's domain takes before the kernel says `E2BIG`.
///
/// Stacks network-only layers (ABI >= [`NET_ABI`]) until `landlock_restrict_self` refuses one:
/// the domain then holds [`LANDLOCK_MAX_NUM_LAYERS`] layers, so it held that many minus the
/// count before. Changes the domain for good: call it last, in a worker.
///
/// Errors: those of [`install_net_layers_ns`], except `E2BIG`, which is the answer.
pub fn layer_room(clock: &hookbench_measure::Clock) -> Result<u32, LandlockError> {
    match install_net_layers_ns(clock, LANDLOCK_MAX_NUM_LAYERS) {
        Ok(_) => Ok(LANDLOCK_MAX_NUM_LAYERS),
        Err(LandlockError::LayerLimit { installed, .. }) => Ok(installed),
        Err(e) => Err(e),
    }
}

/// A failed step of building one layer's ruleset, before its layer number is known.
enum RulesetStep {
    /// A ruleset call failed (`what`: handle_access, landlock_create_ruleset, landlock_add_rule).
    Call(&'static str, RulesetError),
    /// Opening the rule's directory failed.
    Root(PathBuf, ::landlock::PathFdError),
}

impl RulesetStep {
    /// Maps a ruleset error of step `what`.
    fn at<E: Into<RulesetError>>(what: &'static str) -> impl Fn(E) -> RulesetStep {
        move |e| RulesetStep::Call(what, e.into())
    }
}

/// Stacks `n` layers built by `build()` on the calling thread; each `restrict_self`'s ns.
///
/// Sets no_new_privs once, then per layer builds the ruleset (untimed) and times
/// `landlock_restrict_self` alone (see [`install_layers_ns`] for the errors).
fn stack_layers_ns(
    clock: &hookbench_measure::Clock,
    n: u32,
    build: impl Fn() -> Result<::landlock::RulesetCreated, RulesetStep>,
) -> Result<Vec<f64>, LandlockError> {
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
        let created = match build() {
            Ok(created) => created.no_new_privs(false),
            Err(RulesetStep::Call(what, source)) => return Err(ruleset_err(what)(source)),
            Err(RulesetStep::Root(root, source)) => return Err(LandlockError::RuleRoot { root, source }),
        };
        let t0 = clock.now();
        let outcome = created.restrict_self();
        let t1 = clock.now();
        let elapsed = (clock.elapsed_ns(t0, t1) - clock.overhead_ns()).max(0.0);
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

/// Checks that the calling thread is restricted: creating a file under `root` must be denied.
///
/// Creating `root/`[`PROBE_FILE_NAME`] (`O_WRONLY|O_CREAT|O_EXCL`) must fail with `EACCES`, as
/// every layer handles `LANDLOCK_ACCESS_FS_MAKE_REG` and none allows it.
///
/// Errors: [`LandlockError::NotRestricted`] (a file that was created is removed again).
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

/// Checks that network-only layers restrict: TCP `bind()` to 127.0.0.1:0 must fail, `EACCES`.
///
/// Every such layer handles `LANDLOCK_ACCESS_NET_BIND_TCP` and allows no port
/// (`security/landlock/net.c: hook_socket_bind`).
///
/// Errors: [`LandlockError::NetNotRestricted`] with what happened instead.
pub fn verify_net_restricted(layers: u32) -> Result<(), LandlockError> {
    let not_restricted = |outcome: String| LandlockError::NetNotRestricted { layers, outcome };
    // SAFETY: plain socket(2); the descriptor is owned (and closed) by `fd`.
    let raw = unsafe { libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0) };
    if raw < 0 {
        return Err(not_restricted(format!(
            "socket(AF_INET, SOCK_STREAM) failed with {}",
            Errno::last()
        )));
    }
    // SAFETY: `raw` was just returned by socket(2) and nothing else owns it.
    let fd = unsafe { std::os::fd::OwnedFd::from_raw_fd(raw) };
    let rc = crate::trigger::raw_bind_loopback(std::os::fd::AsRawFd::as_raw_fd(&fd));
    match (rc, Errno::last()) {
        (0, _) => Err(not_restricted("it succeeded".into())),
        (_, Errno::EACCES) => Ok(()),
        (_, e) => Err(not_restricted(format!("it failed with {e}"))),
    }
}

/// Checks that a domain of network-only layers leaves the filesystem alone.
///
/// Creating `root/`[`PROBE_FILE_NAME`] must succeed (and the file is removed again): no layer
/// handles `LANDLOCK_ACCESS_FS_MAKE_REG`.
///
/// Errors: [`LandlockError::FsRestrictedByNetLayers`].
pub fn verify_fs_unrestricted(root: &Path, layers: u32) -> Result<(), LandlockError> {
    let probe = root.join(PROBE_FILE_NAME);
    let created = std::fs::OpenOptions::new().write(true).create_new(true).open(&probe);
    match created {
        Ok(_) => std::fs::remove_file(&probe).map_err(|e| LandlockError::FsRestrictedByNetLayers {
            layers,
            probe: probe.clone(),
            outcome: format!("removing it again failed with {e}"),
        }),
        Err(e) => Err(LandlockError::FsRestrictedByNetLayers {
            layers,
            probe,
            outcome: format!("it failed with {e}"),
        }),
    }
}

/// Times `open(path, O_RDONLY|O_CLOEXEC)` on the calling thread as `timing` asks.
///
/// One open per sample, its `close` outside the timed interval (the Landlock check runs on open:
/// `hook_file_open`). `status` is this thread's `/proc/thread-self/status`, opened before the
/// layers (which may forbid opening it now), for the speculation state.
///
/// Errors: [`LandlockError::Open`] at the first failing open (`layers` is only used in the
/// message); [`LandlockError::Trigger`] when pinning or the sampler fails.
pub fn measure_open(
    path: &Path,
    layers: u32,
    timing: &hookbench_measure::TimingRequest,
    status: &mut std::fs::File,
) -> Result<hookbench_measure::SampleSet, LandlockError> {
    use crate::trigger::TriggerError;
    let open_err = |errno| LandlockError::Open {
        path: path.to_path_buf(),
        layers,
        errno,
    };
    let c = CString::new(path.as_os_str().as_bytes()).map_err(|_| open_err(Errno::EINVAL))?;
    timing.pin().map_err(|source| TriggerError::Pin {
        cpu: timing.cpu,
        source,
    })?;
    let clock = timing.clock();
    let mut failed: Option<Errno> = None;
    let fd = std::cell::Cell::new(-1);
    let m = hookbench_measure::measure_each_config(
        &clock,
        &timing.sampler_config(),
        || {
            // SAFETY: `c` is a valid NUL-terminated path; the fd is closed by the undo.
            fd.set(unsafe { libc::open(c.as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC) });
            fd.get() as u64
        },
        || {
            if fd.get() < 0 {
                failed.get_or_insert_with(Errno::last);
            } else {
                // SAFETY: `fd` was opened just before and is closed once.
                unsafe { libc::close(fd.get()) };
            }
            fd.set(-1);
        },
    )
    .map_err(TriggerError::from)?;
    if let Some(errno) = failed {
        return Err(open_err(errno));
    }
    Ok(hookbench_measure::SampleSet::from_measurement(
        &m,
        hookbench_measure::Speculation::read_from(status),
    ))
}

/// What a Landlock worker is asked: a directory chain, layers over it, and opens to time.
///
/// The worker builds a chain of `dir_depth` directories under `root` with a file at the bottom
/// ([`prepare_chain`]), stacks `layers` layers allowing reads beneath `root`
/// ([`install_layers_ns`]), checks it is restricted ([`verify_restricted`]), then times opens of
/// the file ([`measure_open`]) unless `installs_only`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LandlockRequest {
    /// Layers to stack, 0..=[`LANDLOCK_MAX_NUM_LAYERS`] (0 = the unrestricted baseline).
    pub layers: u32,
    /// Directory levels between `root` and the file, 0..=[`MAX_DIR_DEPTH`].
    pub dir_depth: u32,
    /// An existing, writable directory given as an absolute path, made (and removed afterwards)
    /// by the parent; the worker creates its chain inside.
    pub root: PathBuf,
    /// How to time the opens (and the clock the installs are timed with).
    pub timing: hookbench_measure::TimingRequest,
    /// Time only the installs, no open (attach cells).
    #[serde(default)]
    pub installs_only: bool,
    /// Layers stacked untimed before the request's own (tests reach the kernel's `E2BIG` with it).
    #[serde(default)]
    pub prestack: u32,
    /// Network-only layers ([`install_net_layers_ns`]) stacked above the `layers` filesystem ones.
    ///
    /// Claim 1's foreign layers; `layers + foreign_net` <= [`LANDLOCK_MAX_NUM_LAYERS`].
    #[serde(default)]
    pub foreign_net: u32,
    /// After the timed opens, count the domain's layers ([`layer_room`]) and check them.
    #[serde(default)]
    pub count_layers: bool,
}

/// What a Landlock worker reports.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LandlockReport {
    /// The opens' samples, when the request timed them.
    pub samples: Option<hookbench_measure::SampleSet>,
    /// Time of each `landlock_restrict_self`, in ns, in order (layer 1 first).
    pub install_ns: Vec<f64>,
    /// The kernel's Landlock ABI version ([`landlock_abi`]).
    pub abi: Option<i32>,
    /// Layers the domain held, counted after the opens by stacking until `E2BIG`, if asked.
    #[serde(default)]
    pub domain_layers: Option<u32>,
}

/// Checks a request without touching the system, naming the first bad field.
///
/// `layers + foreign_net` <= [`LANDLOCK_MAX_NUM_LAYERS`] ([`LandlockError::TooManyLayers`]), `dir_depth` <=
/// [`MAX_DIR_DEPTH`] ([`LandlockError::InvalidRequest`]), `root` absolute and without NUL bytes
/// ([`LandlockError::InvalidRoot`]).
pub fn validate_landlock_request(req: &LandlockRequest) -> Result<(), LandlockError> {
    let total = req.layers.saturating_add(req.foreign_net);
    if total > LANDLOCK_MAX_NUM_LAYERS {
        return Err(LandlockError::TooManyLayers { requested: total });
    }
    if req.dir_depth > MAX_DIR_DEPTH {
        return Err(LandlockError::InvalidRequest {
            field: "dir_depth",
            value: u64::from(req.dir_depth),
            why: "use 0..=256",
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

crate::worker::worker_kind! {
    /// The Landlock worker (`hookbench worker landlock`): stacks layers on itself and times opens.
    pub struct LandlockWorker("landlock", LandlockRequest => LandlockReport, Duration::from_secs(120)) = run_landlock;
}

/// The Landlock worker's body: stacks the layers on this thread and measures under them.
///
/// Validates `req`, builds the chain, stacks the pre-stacked, then the requested filesystem and
/// network-only layers (they cannot be removed: this process exits afterwards), verifies each
/// kind restricts what it handles and nothing else, measures, and counts the layers if asked.
fn run_landlock(req: &LandlockRequest) -> Result<LandlockReport, LandlockError> {
    validate_landlock_request(req)?;
    let abi = landlock_abi().ok();
    // Opened before the layers: they allow reads beneath `root` only.
    let mut status =
        std::fs::File::open("/proc/thread-self/status").map_err(|source| LandlockError::Status { source })?;
    let file = prepare_chain(&req.root, req.dir_depth)?;
    let clock = req.timing.clock();
    install_layers_ns(&clock, &req.root, req.prestack)?;
    let install_ns = install_layers_ns(&clock, &req.root, req.layers)?;
    install_net_layers_ns(&clock, req.foreign_net)?;
    if req.layers > 0 {
        verify_restricted(&req.root, req.layers)?;
    } else if req.foreign_net > 0 {
        verify_fs_unrestricted(&req.root, req.foreign_net)?;
    }
    if req.foreign_net > 0 {
        verify_net_restricted(req.foreign_net)?;
    }
    let samples = if req.installs_only {
        None
    } else {
        Some(measure_open(
            &file,
            req.layers + req.foreign_net,
            &req.timing,
            &mut status,
        )?)
    };
    let domain_layers = if req.count_layers {
        let expected = req.prestack + req.layers + req.foreign_net;
        let room = layer_room(&clock)?;
        if expected + room != LANDLOCK_MAX_NUM_LAYERS {
            return Err(LandlockError::DomainLayers { expected, room });
        }
        Some(LANDLOCK_MAX_NUM_LAYERS - room)
    } else {
        None
    };
    Ok(LandlockReport {
        samples,
        install_ns,
        abi,
        domain_layers,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::{spawn_test, Scratch};
    use crate::worker::WorkerError;
    use hookbench_measure::{Clock, TimingRequest};

    /// Serializes the tests that spawn workers, so measurements do not compete for CPUs.
    static WORKER_LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());

    /// The report of a worker running `base` with `foreign_net` network-only layers on top.
    ///
    /// The worker counts the domain's layers afterwards.
    fn with_foreign_net(foreign_net: u32, base: LandlockRequest) -> LandlockReport {
        let req = LandlockRequest {
            foreign_net,
            count_layers: true,
            ..base
        };
        spawn_test::<LandlockWorker>(&req).expect("worker ran")
    }

    fn request(layers: u32, dir_depth: u32, samples: usize, root: &Path) -> LandlockRequest {
        LandlockRequest {
            layers,
            dir_depth,
            root: root.to_path_buf(),
            timing: TimingRequest {
                warmup_ns: 1_000_000,
                ..TimingRequest::new(Clock::detect().info(), None, samples.max(1), 0)
            },
            installs_only: samples == 0,
            prestack: 0,
            foreign_net: 0,
            count_layers: false,
        }
    }

    /// Why a worker refused `req(root)`, with `root` a new scratch directory `tag` (printed).
    fn refusal(tag: &str, req: impl FnOnce(&Path) -> LandlockRequest) -> String {
        let _guard = WORKER_LOCK.lock().unwrap_or_else(|e| e.into_inner());
        let root = Scratch::new(&format!("landlock-{tag}"));
        match spawn_test::<LandlockWorker>(&req(root.path())) {
            Err(WorkerError::Refused(why)) => {
                eprintln!("landlock {tag}: {why}");
                why
            }
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    #[test]
    fn request_validation_is_pure_and_names_values() {
        let ok = request(16, MAX_DIR_DEPTH, 1, Path::new("/tmp/x"));
        validate_landlock_request(&ok).expect("valid");
        let err = validate_landlock_request(&request(17, 4, 1, Path::new("/tmp/x"))).expect_err("17 layers");
        assert!(matches!(err, LandlockError::TooManyLayers { requested: 17 }), "{err}");
        let msg = err.to_string();
        assert!(
            msg.contains("LANDLOCK_MAX_NUM_LAYERS = 16") && msg.contains("17"),
            "{msg}"
        );
        let err =
            validate_landlock_request(&request(1, MAX_DIR_DEPTH + 1, 1, Path::new("/tmp/x"))).expect_err("too deep");
        assert!(err.to_string().contains("dir_depth = 257"), "{err}");
        let err = validate_landlock_request(&request(1, 1, 1, Path::new("tmp/x"))).expect_err("relative");
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
        let err = install_layers_ns(&Clock::monotonic_raw(), Path::new("/nonexistent"), 17).expect_err("limit");
        assert!(matches!(err, LandlockError::TooManyLayers { requested: 17 }), "{err}");
    }

    #[test]
    fn landlock_is_available_with_abi_7_or_later() {
        let abi = landlock_abi().expect("Landlock available on this kernel");
        eprintln!("landlock: kernel ABI {abi}");
        assert!(abi >= 7, "ABI {abi}");
    }

    #[test]
    fn worker_over_the_layer_limit_reports_it() {
        let err = refusal("limit", |root| request(17, 4, 1, root));
        assert!(err.contains("LANDLOCK_MAX_NUM_LAYERS = 16"), "{err}");
        assert!(err.contains("asked for 17"), "{err}");
    }

    #[test]
    fn kernel_e2big_is_mapped_to_the_layer_limit() {
        // 4 layers stacked before the request's own 16: the kernel refuses the 13th.
        let err = refusal("e2big", |root| LandlockRequest {
            prestack: 4,
            ..request(16, 1, 1, root)
        });
        assert!(err.contains("refused layer 13 of 16 with E2BIG"), "{err}");
        assert!(err.contains("inherited 4"), "{err}");
    }

    #[test]
    fn foreign_network_layers_fill_the_domain_and_restrict_only_the_network() {
        let _guard = WORKER_LOCK.lock().unwrap_or_else(|e| e.into_inner());
        let scratch = Scratch::new("landlock-foreign");
        let root = scratch.path();
        // 4 filesystem + 12 network-only layers: the kernel's 16, counted by E2BIG afterwards;
        // the worker checked that bind() is denied and the file beneath root still opens.
        let report = with_foreign_net(12, request(4, 2, 20, root));
        assert_eq!(report.domain_layers, Some(16));
        assert_eq!(report.install_ns.len(), 4, "only the filesystem layers are timed");
        assert!(report.samples.expect("timed").values_ns.len() >= 20);
        assert!(!root.join(PROBE_FILE_NAME).exists(), "the fs layers denied the probe");
        // Network-only layers alone leave the filesystem alone: the probe is created (and
        // removed) by the worker, and the domain holds just them.
        let report = with_foreign_net(3, request(0, 1, 5, root));
        assert_eq!(report.domain_layers, Some(3));
        // One more than the domain takes is refused before any layer, naming the limit.
        let err = validate_landlock_request(&LandlockRequest {
            foreign_net: 13,
            ..request(4, 1, 1, root)
        })
        .expect_err("17 layers");
        assert!(matches!(err, LandlockError::TooManyLayers { requested: 17 }), "{err}");
        // A count that differs names both figures.
        let err = LandlockError::DomainLayers { expected: 16, room: 1 }.to_string();
        assert!(err.contains("stacked 16") && err.contains("domain held 15"), "{err}");
    }

    #[test]
    fn worker_is_really_restricted_and_times_opens() {
        let _guard = WORKER_LOCK.lock().unwrap_or_else(|e| e.into_inner());
        let scratch = Scratch::new("landlock-probe");
        let root = scratch.path();
        let report = spawn_test::<LandlockWorker>(&request(1, 2, 50, root)).expect("worker ran");
        assert_eq!(report.install_ns.len(), 1);
        let set = report.samples.expect("timed");
        assert_eq!(set.batch_k, 1, "one open per sample, the close untimed");
        assert!(set.values_ns.len() >= 50);
        assert!(report.abi.is_some_and(|a| a >= 1));
        // The worker's probe was denied, so nothing was created; the unrestricted parent can.
        assert!(!root.join(PROBE_FILE_NAME).exists());
        assert!(chain_file_path(root, 2).exists());
        // Install-only requests time no open.
        let report = spawn_test::<LandlockWorker>(&request(3, 2, 0, root)).expect("worker ran");
        assert_eq!(report.install_ns.len(), 3);
        assert!(report.samples.is_none());
    }
}
