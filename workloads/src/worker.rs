//! The one worker protocol: each timed worker is an exec'd `hookbench worker KIND '<json>'`.
//!
//! Such a process runs one request and prints one report line.
//!
//! Timed work never runs in the harness nor in a fork of it: the harness starts a fresh process
//! of its own binary ([`spawn`]: fork + exec, with `PR_SET_PDEATHSIG = SIGKILL`, so a killed
//! run leaves no worker), the worker runs [`Worker::run`] on the request given as the last
//! argument, and prints [`REPORT_MARKER`] followed by a JSON [`Envelope`]: the report, or the
//! reason it could not measure (a limit the kernel enforces, a program it refused). The harness
//! reads the last marker line of the worker's stdout, so other output (libtest's, in tests)
//! does not matter. Each kind is a type implementing [`Worker`], declared with `worker_kind!`
//! beside its body; [`dispatch`] finds it by name ([`KINDS`]) for the CLI's `hookbench worker
//! KIND`, and the tests use the same dispatch from their own test binary
//! (`crate::test_support`).

use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// The prefix of the one report line a worker prints on stdout.
pub const REPORT_MARKER: &str = "HOOKBENCH-REPORT ";

/// Largest worker stdout read, in bytes.
const MAX_WORKER_STDOUT: u64 = 64 << 20;

/// Largest worker stderr kept for error messages, in bytes.
const MAX_WORKER_STDERR: u64 = 1 << 20;

/// Characters of stderr kept in [`WorkerError::NoReport`].
const STDERR_TAIL_CHARS: usize = 2000;

/// Characters of the report line kept in [`WorkerError::BadReport`].
const BAD_LINE_CHARS: usize = 500;

/// How often [`spawn`] checks whether the worker has exited.
const POLL: Duration = Duration::from_millis(2);

/// One kind of worker: its name on the command line, its request and report, and its body.
pub trait Worker {
    /// The kind's name: `hookbench worker NAME`.
    const KIND: &'static str;
    /// Longest a worker of this kind may run before it is killed.
    const TIMEOUT: Duration;
    /// What the worker is asked (JSON on its command line).
    type Request: Serialize + DeserializeOwned;
    /// What it sends back (JSON after [`REPORT_MARKER`]).
    type Report: Serialize + DeserializeOwned;
    /// Runs `req` in this fresh, single-threaded process, which exits afterwards.
    ///
    /// A worker may install seccomp filters or Landlock layers, or move itself into a cgroup. `Err`
    /// is the reason it could not measure, in words a user can act on.
    fn run(req: &Self::Request) -> Result<Self::Report, String>;
}

/// Declares a worker kind: a unit type implementing [`Worker`] around the kind's body.
///
/// ```text
/// worker_kind! {
///     /// The seccomp worker ...
///     pub struct SeccompWorker("seccomp", SeccompRequest => SeccompReport, TIMEOUT) = run_seccomp;
/// }
/// ```
///
/// declares `SeccompWorker` with that [`Worker::KIND`] and [`Worker::TIMEOUT`], whose
/// [`Worker::run`] calls the body (a function or closure of the request) and words its error (any
/// `Display`) as the reason the worker could not measure. Every kind is declared this way, so the
/// protocol's side of a kind is written once, here.
macro_rules! worker_kind {
    (
        $(#[$doc:meta])*
        $vis:vis struct $name:ident($kind:literal, $req:ty => $rep:ty, $timeout:expr) = $body:expr;
    ) => {
        $(#[$doc])*
        $vis struct $name;

        impl $crate::worker::Worker for $name {
            const KIND: &'static str = $kind;
            const TIMEOUT: std::time::Duration = $timeout;
            type Request = $req;
            type Report = $rep;

            fn run(req: &$req) -> Result<$rep, String> {
                ($body)(req).map_err(|e| e.to_string())
            }
        }
    };
}
pub(crate) use worker_kind;

/// What a worker prints after [`REPORT_MARKER`]: its report, or why it has none.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Envelope<R> {
    /// The worker measured.
    Report(R),
    /// The worker could not measure; the reason.
    Refused(String),
}

/// Why a worker gave no report; the harness skips a cell on `Refused` and stops the run on others.
#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    /// The request given to `hookbench worker KIND` is not valid JSON for the kind.
    #[error("worker {kind}: bad request {request:?}: {source}")]
    BadRequest {
        /// The worker kind.
        kind: String,
        /// The request text (truncated).
        request: String,
        /// The parse error.
        #[source]
        source: serde_json::Error,
    },
    /// `hookbench worker KIND` with a kind that does not exist.
    #[error("unknown worker kind '{kind}': expected one of {known}")]
    UnknownKind {
        /// The kind given.
        kind: String,
        /// The kinds there are.
        known: String,
    },
    /// The request could not be encoded (not expected).
    #[error("cannot encode the {kind} worker request: {source}")]
    Serialize {
        /// The worker kind.
        kind: &'static str,
        /// The cause.
        #[source]
        source: serde_json::Error,
    },
    /// The worker could not be started (`what` = "spawn") or waited for ("wait").
    #[error("worker {exe}: {what}: {source}")]
    Io {
        /// The executable.
        exe: String,
        /// What failed.
        what: &'static str,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The worker ran longer than its timeout and was killed.
    #[error("worker {exe} ran over {timeout:?} and was killed")]
    Timeout {
        /// The executable.
        exe: String,
        /// The timeout.
        timeout: Duration,
    },
    /// The worker printed no report line; `stderr` is the end of its stderr.
    #[error("worker {exe} exited with {status} without a {REPORT_MARKER:?} line; stderr tail: {stderr}")]
    NoReport {
        /// The executable.
        exe: String,
        /// Its exit status.
        status: String,
        /// The end of its stderr.
        stderr: String,
    },
    /// The report line (truncated) is not valid JSON of the report type.
    #[error("worker {exe} printed an unreadable report ({source}): {line}")]
    BadReport {
        /// The executable.
        exe: String,
        /// The line (truncated).
        line: String,
        /// The parse error.
        #[source]
        source: serde_json::Error,
    },
    /// The worker ran and could not measure: the reason (a kernel limit, a refused program).
    #[error("{0}")]
    Refused(String),
}

/// Where and how to start a worker: the executable, arguments before the kind, environment.
#[derive(Debug, Clone, Copy)]
pub struct Launch<'a> {
    /// The executable (the harness's own binary, or a test binary).
    pub exe: &'a Path,
    /// Arguments before the request JSON (`["worker", KIND]` for the harness binary).
    pub args_prefix: &'a [&'a str],
    /// Extra environment variables.
    pub envs: &'a [(&'a str, &'a str)],
    /// Overrides [`Worker::TIMEOUT`] when set.
    pub timeout: Option<Duration>,
}

/// A `Command` for a worker process of `exe` that dies with the process that started it.
///
/// `prctl(PR_SET_PDEATHSIG, SIGKILL)` runs in the child before exec, so a SIGKILLed run leaves
/// no worker behind.
pub fn worker_command(exe: &Path) -> Command {
    use std::os::unix::process::CommandExt as _;
    let mut cmd = Command::new(exe);
    // SAFETY: the closure runs in the forked child before exec and only calls prctl(2), which
    // is async-signal-safe; it allocates nothing.
    unsafe {
        cmd.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    cmd
}

/// Starts `hookbench worker W::KIND '<req>'` from `exe` (the harness's binary); its report.
///
/// See [`spawn_with`].
///
/// Errors: see [`WorkerError`].
pub fn spawn<W: Worker>(exe: &Path, req: &W::Request) -> Result<W::Report, WorkerError> {
    spawn_with::<W>(
        &Launch {
            exe,
            args_prefix: &["worker", W::KIND],
            envs: &[],
            timeout: None,
        },
        req,
    )
}

/// Runs `exe args_prefix... <request JSON>` and reads the [`Envelope`] it prints.
///
/// Fork + exec: no fork-after-threads hazard. Waits at most the timeout (killing it when over),
/// and reads the envelope after the last [`REPORT_MARKER`] of its stdout.
///
/// Errors: [`WorkerError::Refused`] when the worker says why it could not measure; the other
/// variants when it could not be run or gave no readable report.
pub fn spawn_with<W: Worker>(launch: &Launch<'_>, req: &W::Request) -> Result<W::Report, WorkerError> {
    let json = serde_json::to_string(req).map_err(|source| WorkerError::Serialize { kind: W::KIND, source })?;
    let timeout = launch.timeout.unwrap_or(W::TIMEOUT);
    let exe = launch.exe.display().to_string();
    let io_err = |what: &'static str| {
        let exe = exe.clone();
        move |source| WorkerError::Io { exe, what, source }
    };
    let mut child = worker_command(launch.exe)
        .args(launch.args_prefix)
        .arg(&json)
        .envs(launch.envs.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(io_err("spawn"))?;
    let stdout = child.stdout.take().map(|s| reader_thread(s, MAX_WORKER_STDOUT));
    let stderr = child.stderr.take().map(|s| reader_thread(s, MAX_WORKER_STDERR));
    let start = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if start.elapsed() > timeout => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(WorkerError::Timeout { exe, timeout });
            }
            Ok(None) => std::thread::sleep(POLL),
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(io_err("wait")(e));
            }
        }
    };
    let out = join_text(stdout);
    parse_report::<W::Report>(&exe, &out, status, || join_text(stderr))
}

/// The report of a worker that exited with `status`, from the stdout it printed.
///
/// It is the envelope after the last [`REPORT_MARKER`] of `stdout`. `stderr` is read only when
/// there is no report line.
///
/// Errors: [`WorkerError::NoReport`], [`WorkerError::BadReport`], [`WorkerError::Refused`].
pub fn parse_report<R: DeserializeOwned>(
    exe: &str,
    stdout: &str,
    status: std::process::ExitStatus,
    stderr: impl FnOnce() -> String,
) -> Result<R, WorkerError> {
    let Some(line) = stdout
        .lines()
        .rev()
        .find_map(|l| l.rfind(REPORT_MARKER).map(|i| &l[i + REPORT_MARKER.len()..]))
    else {
        let err = stderr();
        let chars: Vec<char> = err.chars().collect();
        return Err(WorkerError::NoReport {
            exe: exe.to_string(),
            status: status.to_string(),
            stderr: chars[chars.len().saturating_sub(STDERR_TAIL_CHARS)..].iter().collect(),
        });
    };
    match serde_json::from_str::<Envelope<R>>(line.trim()) {
        Ok(Envelope::Report(r)) => Ok(r),
        Ok(Envelope::Refused(why)) => Err(WorkerError::Refused(why)),
        Err(source) => Err(WorkerError::BadReport {
            exe: exe.to_string(),
            line: line.chars().take(BAD_LINE_CHARS).collect(),
            source,
        }),
    }
}

/// The report line of an envelope: [`REPORT_MARKER`] + JSON.
pub fn report_line<R: Serialize>(envelope: &Envelope<R>) -> String {
    let json = serde_json::to_string(envelope).unwrap_or_else(|e| {
        serde_json::to_string(&Envelope::<()>::Refused(format!("cannot encode the report: {e}"))).unwrap_or_default()
    });
    format!("{REPORT_MARKER}{json}")
}

/// The body of `hookbench worker W::KIND '<request>'`: the report line to print.
///
/// Parses the request and runs it.
///
/// Errors: [`WorkerError::BadRequest`] when `request` is not the kind's JSON.
pub fn serve<W: Worker>(request: &str) -> Result<String, WorkerError> {
    let req: W::Request = serde_json::from_str(request).map_err(|source| WorkerError::BadRequest {
        kind: W::KIND.to_string(),
        request: request.chars().take(BAD_LINE_CHARS).collect(),
        source,
    })?;
    Ok(match W::run(&req) {
        Ok(report) => report_line(&Envelope::Report(report)),
        Err(why) => report_line(&Envelope::<W::Report>::Refused(why)),
    })
}

/// A worker kind's entry: its request text in, its report line out ([`serve`] of the kind).
pub type ServeFn = fn(&str) -> Result<String, WorkerError>;

/// The registry entry of kind `W`: its name and its [`serve`].
const fn entry<W: Worker>() -> (&'static str, ServeFn) {
    (W::KIND, serve::<W>)
}

/// Every worker kind by name, the one registry that `hookbench worker KIND` and the tests use.
pub const KINDS: [(&str, ServeFn); 11] = [
    entry::<crate::seccomp::SeccompWorker>(),
    entry::<crate::landlock::LandlockWorker>(),
    entry::<crate::sock_worker::SockWorker>(),
    entry::<crate::kmod::KmodWorker>(),
    entry::<crate::attach_worker::AttachWorker>(),
    entry::<crate::model_worker::ModelWorker>(),
    entry::<crate::spawner::SpawnerWorker>(),
    entry::<crate::rawtp::RawTpWorker>(),
    entry::<crate::ring::RingWorker>(),
    entry::<crate::metadata::MetadataWorker>(),
    entry::<crate::cpus::CpusWorker>(),
];

/// Runs the worker `kind` on `request` and returns the report line to print.
///
/// Errors: [`WorkerError::UnknownKind`], [`WorkerError::BadRequest`].
pub fn dispatch(kind: &str, request: &str) -> Result<String, WorkerError> {
    match KINDS.iter().find(|(k, _)| *k == kind) {
        Some((_, serve)) => serve(request),
        None => Err(WorkerError::UnknownKind {
            kind: kind.to_string(),
            known: KINDS.map(|(k, _)| k).join(", "),
        }),
    }
}

/// Reads at most `limit` bytes of `r` on a new thread.
fn reader_thread<R: Read + Send + 'static>(r: R, limit: u64) -> JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = r.take(limit).read_to_end(&mut buf);
        buf
    })
}

/// The bytes a [`reader_thread`] read, as (lossy) UTF-8.
///
/// Empty when there was no thread or it panicked.
fn join_text(h: Option<JoinHandle<Vec<u8>>>) -> String {
    h.and_then(|h| h.join().ok())
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The body of [`Echo`]: refuses 0, answers anything else plus one.
    fn echo(req: &u32) -> Result<u32, &'static str> {
        if *req == 0 {
            Err("zero refused")
        } else {
            Ok(req + 1)
        }
    }

    worker_kind! {
        /// A worker kind for the protocol's own tests.
        struct Echo("echo", u32 => u32, Duration::from_secs(5)) = echo;
    }

    #[test]
    fn serve_wraps_reports_and_refusals_and_names_bad_requests() {
        let line = serve::<Echo>("41").expect("served");
        assert_eq!(line, format!("{REPORT_MARKER}{{\"report\":42}}"));
        let line = serve::<Echo>("0").expect("served");
        assert_eq!(line, format!("{REPORT_MARKER}{{\"refused\":\"zero refused\"}}"));
        let err = serve::<Echo>("{nope").expect_err("bad request");
        assert!(err.to_string().contains("{nope"), "{err}");
        let err = dispatch("nonesuch", "1").expect_err("unknown kind");
        assert!(
            err.to_string().contains("'nonesuch'") && err.to_string().contains("seccomp"),
            "{err}"
        );
    }

    #[test]
    fn spawn_reads_the_last_marker_line_and_reports_failures() {
        // A shell "worker" that prints noise, a stale line and the real report.
        let sh = Path::new("/bin/sh");
        let script =
            format!("echo noise; echo '{REPORT_MARKER}{{\"report\":1}}'; echo '{REPORT_MARKER}{{\"report\":7}}'");
        let launch = Launch {
            exe: sh,
            args_prefix: &["-c", &script],
            envs: &[],
            timeout: None,
        };
        assert_eq!(spawn_with::<Echo>(&launch, &3).expect("report"), 7);
        let script = format!("echo '{REPORT_MARKER}{{\"refused\":\"limit reached\"}}'");
        let launch = Launch {
            args_prefix: &["-c", &script],
            ..launch
        };
        match spawn_with::<Echo>(&launch, &3) {
            Err(WorkerError::Refused(why)) => assert_eq!(why, "limit reached"),
            other => panic!("{other:?}"),
        }
        let launch = Launch {
            args_prefix: &["-c", "echo oops >&2; exit 3"],
            ..launch
        };
        match spawn_with::<Echo>(&launch, &3) {
            Err(WorkerError::NoReport { stderr, status, .. }) => {
                assert!(stderr.contains("oops") && status.contains('3'), "{stderr} {status}")
            }
            other => panic!("{other:?}"),
        }
        let launch = Launch {
            args_prefix: &["-c", "sleep 5"],
            timeout: Some(Duration::from_millis(200)),
            ..launch
        };
        assert!(matches!(
            spawn_with::<Echo>(&launch, &3),
            Err(WorkerError::Timeout { .. })
        ));
        let launch = Launch {
            exe: Path::new("/nonexistent/hookbench"),
            ..launch
        };
        assert!(matches!(
            spawn_with::<Echo>(&launch, &3),
            Err(WorkerError::Io { what: "spawn", .. })
        ));
    }
}
