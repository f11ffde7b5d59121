//! Running a measurement worker process: spawn it with a JSON request argument, collect its output, kill it on timeout and parse the report line it prints.

use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde::de::DeserializeOwned;

/// Largest worker stdout read, in bytes.
const MAX_WORKER_STDOUT: u64 = 64 << 20;

/// Largest worker stderr kept for error messages, in bytes.
const MAX_WORKER_STDERR: u64 = 1 << 20;

/// Characters of stderr kept in [`WorkerFailure::NoReport`].
const STDERR_TAIL_CHARS: usize = 2000;

/// Characters of the report line kept in [`WorkerFailure::BadReport`].
const BAD_LINE_CHARS: usize = 500;

/// A `Command` for a worker process of `exe` that the kernel kills when the process that
/// started it dies (`prctl(PR_SET_DEATHSIG, SIGKILL)` in the child before exec), so a SIGKILLed
/// run leaves no worker behind. Used by every worker kind (seccomp, Landlock, socket).
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

/// How to run one worker and find its report.
pub(crate) struct WorkerRun<'a> {
    /// The worker executable.
    pub exe: &'a Path,
    /// Arguments before the request JSON.
    pub args_prefix: &'a [&'a str],
    /// Extra environment variables for the worker.
    pub envs: &'a [(&'a str, &'a str)],
    /// Longest the worker may run before it is killed.
    pub timeout: Duration,
    /// How often to check whether the worker has exited.
    pub poll: Duration,
    /// The report is the rest of the line after the last occurrence of this marker.
    pub marker: &'a str,
    /// Without a marker line, take the last stdout line starting with `{` as the report.
    pub bare_json_fallback: bool,
}

/// Why a worker produced no readable report; each worker kind maps it into its own error.
#[derive(Debug)]
pub(crate) enum WorkerFailure {
    /// The worker could not be started (`what` = "spawn") or waited for ("wait").
    Io {
        exe: String,
        what: &'static str,
        source: std::io::Error,
    },
    /// The worker ran longer than the timeout and was killed.
    Timeout { exe: String, timeout_ms: u128 },
    /// The worker printed no report; `stderr` is the end of its stderr.
    NoReport {
        exe: String,
        status: String,
        stderr: String,
    },
    /// The report line (truncated) is not valid JSON of the report type.
    BadReport {
        exe: String,
        line: String,
        source: serde_json::Error,
    },
}

/// Runs `exe args_prefix... <request_json>` ([`std::process::Command`]: fork + exec, so no
/// fork-after-threads hazard), waits at most `run.timeout` (killing it when over), and parses
/// its report: the rest of the line after the last `run.marker` on stdout, or else (with
/// `run.bare_json_fallback`) the last stdout line starting with `{`.
pub(crate) fn run_json_worker<Rep: DeserializeOwned>(
    run: &WorkerRun<'_>,
    request_json: &str,
) -> Result<Rep, WorkerFailure> {
    let exe_name = run.exe.display().to_string();
    let io_err = |what: &'static str| {
        let exe = exe_name.clone();
        move |source| WorkerFailure::Io { exe, what, source }
    };
    let mut child = worker_command(run.exe)
        .args(run.args_prefix)
        .arg(request_json)
        .envs(run.envs.iter().copied())
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
            Ok(None) if start.elapsed() > run.timeout => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(WorkerFailure::Timeout {
                    exe: exe_name,
                    timeout_ms: run.timeout.as_millis(),
                });
            }
            Ok(None) => std::thread::sleep(run.poll),
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(io_err("wait")(e));
            }
        }
    };
    let out = join_text(stdout);
    let err = join_text(stderr);
    let marker = run.marker;
    let line = out
        .lines()
        .rev()
        .find_map(|l| l.rfind(marker).map(|i| &l[i + marker.len()..]))
        .or_else(|| {
            run.bare_json_fallback
                .then(|| out.lines().rev().map(str::trim).find(|l| l.starts_with('{')))
                .flatten()
        });
    let Some(line) = line else {
        let chars: Vec<char> = err.chars().collect();
        return Err(WorkerFailure::NoReport {
            exe: exe_name,
            status: status.to_string(),
            stderr: chars[chars.len().saturating_sub(STDERR_TAIL_CHARS)..].iter().collect(),
        });
    };
    serde_json::from_str(line.trim()).map_err(|source| WorkerFailure::BadReport {
        exe: exe_name,
        line: line.chars().take(BAD_LINE_CHARS).collect(),
        source,
    })
}

/// Reads at most `limit` bytes of `r` on a new thread.
fn reader_thread<R: Read + Send + 'static>(r: R, limit: u64) -> JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = r.take(limit).read_to_end(&mut buf);
        buf
    })
}

/// The bytes a [`reader_thread`] read, as (lossy) UTF-8; empty when there was no thread or it
/// panicked.
fn join_text(h: Option<JoinHandle<Vec<u8>>>) -> String {
    h.and_then(|h| h.join().ok())
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default()
}
