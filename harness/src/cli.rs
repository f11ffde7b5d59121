//! The `hookbench` command line: its subcommands, each input checked before anything is written.
//!
//! `run`, `list`, `doctor`, `cleanup`, `kmod-check`, `compare`, `merge`, `report`, `export` and the
//! internal `worker`; bad input exits with code 2 and names the bad value.

use crate::backend::Backend;
use crate::env::Environment;
use crate::error::UsageError;
use crate::kernel::{KernelBackend, KernelSupport};
use crate::measure::clock::Clock;
use crate::model_backend::ModelBackend;
use crate::output::{self, RunDir};
use crate::runner::{self, RunConfig};
use crate::suite::{self, Suite};
use anyhow::Context as _;
use clap::{Parser, Subcommand, ValueEnum};
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

/// hookbench: per-task chains against per-cgroup effective arrays of kernel security hooks.
///
/// It measures both ways of finding the programs of a hook and writes results a kernel
/// developer can paste into a reply.
#[derive(Debug, Parser)]
#[command(name = "hookbench", version, about, long_about = None)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run suites and write results.json, cells.jsonl, evidence(-full).txt and report.html.
    Run(RunArgs),
    /// List the suites, backends and scenario axes.
    List,
    /// Show what this machine offers hookbench, from root to the clock.
    ///
    /// Root, cgroup v2, seccomp, Landlock, BPF, trampolines, perf counters, mitigations,
    /// governor, clock.
    Doctor {
        /// Print the probe as JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Remove what killed runs left behind: their cgroup subtrees and worker processes.
    Cleanup,
    /// Test the loaded hookbench.ko (root, /dev/hookbench); exit 1 when a check fails.
    ///
    /// Every model dispatches the expected programs on hand-built cgroup trees and forked tasks,
    /// bad ioctl arguments are refused and leave it usable, and a seeded fuzz loop of random
    /// ioctls runs.
    KmodCheck {
        /// Seconds of the random-ioctl fuzz loop (0 skips it).
        #[arg(long, value_name = "SECS", default_value_t = 10.0)]
        fuzz_secs: f64,
        /// Seed of the fuzz loop.
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
    /// Compare runs: did NEW regress against BASE? Exit 1 regressed, 0 not, 2 bad input.
    ///
    /// Each cell is taken against its own run's interleaved baseline and judged against the
    /// noise between runs: `regressed`, `improved`, `noisy` (the noise is larger than the
    /// threshold) or `unchanged`, per cell, per mechanism, and for the whole comparison.
    /// `compare BASE NEW`, `compare BASE... -- NEW...` or `--base DIR... --new DIR...`; with 3 or
    /// more runs a side the runs' ranges must separate (as the kernel test robot asks).
    Compare {
        /// `BASE NEW`, or BASE runs followed by `--` and NEW runs (directories or results.json).
        runs: Vec<PathBuf>,
        /// The NEW runs, after `--`.
        #[arg(last = true, value_name = "NEW")]
        after_dashes: Vec<PathBuf>,
        /// A BASE run (repeat for several); with `--new` instead of positional runs.
        #[arg(long = "base", value_name = "DIR")]
        base: Vec<PathBuf>,
        /// A NEW run (repeat for several); with `--base`.
        #[arg(long = "new", value_name = "DIR")]
        new: Vec<PathBuf>,
        /// Smallest change that counts (the minimum effect size), percent of BASE's raw median.
        ///
        /// A cell or mechanism whose noise is larger is `noisy`.
        #[arg(long = "threshold", value_name = "PCT", default_value_t = crate::compare::DEFAULT_THRESHOLD_PCT)]
        threshold_pct: f64,
        /// Print JSON instead of the text table.
        #[arg(long, conflicts_with = "format")]
        json: bool,
        /// What to print: the table, a robot-style regression mail, or markdown for CI summaries.
        #[arg(long, value_enum, default_value_t = CompareFormat::Text)]
        format: CompareFormat,
        /// Also write the comparison as a self-contained HTML page to FILE.
        ///
        /// FILE is a new file, or a page hookbench wrote (which is replaced).
        #[arg(long, value_name = "FILE")]
        html: Option<PathBuf>,
        /// Exit codes for `git bisect run`: 0 good, 1 bad, 125 too noisy or incompatible.
        ///
        /// 125 (skip) when the runs are too noisy or incompatible to decide; a bad command line
        /// exits 128, which aborts the bisection.
        #[arg(long)]
        bisect: bool,
        /// Compare runs of different host classes anyway.
        ///
        /// A host class is the architecture, CPU model and count, and bare metal or virtualized.
        #[arg(long)]
        allow_host_mismatch: bool,
    },
    /// Merge runs of several hosts, kernels or commits into one set, report and evidence.
    ///
    /// Writes merged.json (schema hookbench.merged/1), report.html (claims x (host class,
    /// kernel) verdicts, slopes across kernels per claim) and evidence.txt into DIR. Runs are
    /// compared only within a host class. Exit 2 for a bad or duplicate input.
    Merge {
        /// The runs: run directories or their results.json files.
        #[arg(required = true, value_name = "RUN")]
        runs: Vec<PathBuf>,
        /// Directory for the merged set, created; an existing one must be empty.
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
    },
    /// Re-render evidence.txt, evidence-full.txt and report.html of a run from its results.json.
    Report {
        /// The run directory.
        dir: PathBuf,
    },
    /// Print a run in the format of a benchmark service or kernel test engine.
    ///
    /// Cells as Bencher Metric Format (bmf) or github-action-benchmark's customSmallerIsBetter
    /// (gab); fits as lkp-tests stats (lkp); claims as LAVA test cases (lava); claims and fits as
    /// a KCIDB submission (kcidb).
    Export {
        /// Output format.
        #[arg(long, value_enum)]
        format: crate::export::ExportFormat,
        /// The run: a run directory or its results.json.
        run: PathBuf,
    },
    /// Internal: a worker process started by `hookbench run`; not for direct use.
    ///
    /// It installs per-task state, measures, and prints a report line.
    #[command(hide = true)]
    Worker {
        /// Worker kind: seccomp, landlock, sock, attach, kmod, model or tasks.
        ///
        /// The kinds are `hookbench_workloads::worker::KINDS`.
        kind: String,
        /// The request, as JSON.
        request: String,
    },
}

/// Which backend(s) to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum BackendChoice {
    /// Every backend this machine can run: the userspace model, and the kernel backend.
    Auto,
    /// The userspace model of every dispatch model; unprivileged, runs anywhere.
    Model,
    /// The running kernel's mechanisms: seccomp filter stacks, Landlock domains, cgroup-bpf.
    Kernel,
    /// Every dispatch model inside the kernel, in hookbench.ko (root, /dev/hookbench).
    ///
    /// The module must be loaded: `auto` includes this backend only then.
    Kmod,
}

/// The profiles.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Profile {
    /// The whole default suite in under 30 s.
    Smoke,
    /// The default: under 3 minutes on 2 cores.
    Quick,
    /// Bare-metal runners: thousands of tasks and cgroups, up to 100,000 in the model.
    Full,
}

impl Profile {
    /// The profile's name in suite files.
    pub fn as_str(self) -> &'static str {
        match self {
            Profile::Smoke => "smoke",
            Profile::Quick => "quick",
            Profile::Full => "full",
        }
    }
}

/// Arguments of `hookbench run`.
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// Backend to run.
    #[arg(long, value_enum, default_value_t = BackendChoice::Auto)]
    pub backend: BackendChoice,
    /// A shipped suite's name (see `hookbench list`) or a suite TOML file.
    ///
    /// Default: every shipped suite.
    #[arg(long, value_name = "NAME|FILE")]
    pub suite: Option<String>,
    /// Profile of the suites' sweeps.
    #[arg(long, value_enum, default_value_t = Profile::Quick)]
    pub profile: Profile,
    /// Run directory, created; an existing one must be empty.
    ///
    /// Default: results/<timestamp>-<host>/.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Never draw progress bars (they are drawn only when stderr is a terminal anyway).
    #[arg(long)]
    pub no_progress: bool,
    /// Seed of the measurement order, saved in results.json as `order_seed`.
    ///
    /// The points of every sweep are measured in a random order drawn from it. Default: from
    /// the clock.
    #[arg(long, value_name = "N")]
    pub seed: Option<u64>,
}

/// What `hookbench compare` prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CompareFormat {
    /// One row per cell, then the mechanisms and a summary line.
    Text,
    /// A regression report in the kernel test robot's manner: subject, changes, reproduce.
    Mail,
    /// GitHub-flavoured markdown, for `$GITHUB_STEP_SUMMARY`.
    Markdown,
}

/// `compare --bisect` exit code for a revision that cannot be judged: `git bisect run` skips it.
pub const EXIT_BISECT_SKIP: i32 = 125;
/// `compare --bisect` exit code for a bad command line: `git bisect run` aborts (above 127).
pub const EXIT_BISECT_ABORT: i32 = 128;

/// Parses the command line and runs it. Errors carry a [`UsageError`] for bad input (exit 2).
pub fn main() -> anyhow::Result<()> {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        // Help and version print and exit 0; parse errors print and exit 2 (128 for `compare
        // --bisect`, so that `git bisect run` stops instead of marking the revision bad).
        Err(e) => {
            let argv: Vec<String> = std::env::args().collect();
            if e.use_stderr() && argv.iter().any(|a| a == "compare") && argv.iter().any(|a| a == "--bisect") {
                let _ = e.print();
                std::process::exit(EXIT_BISECT_ABORT);
            }
            e.exit()
        }
    };
    match cli.command {
        Command::Run(args) => run(&args),
        Command::List => emit(&list_text()?),
        Command::Doctor { json } => doctor(json),
        Command::Worker { kind, request } => worker(&kind, &request),
        Command::Cleanup => cleanup(),
        Command::KmodCheck { fuzz_secs, seed } => kmod_check(fuzz_secs, seed),
        Command::Compare {
            runs,
            after_dashes,
            base,
            new,
            threshold_pct,
            json,
            format,
            html,
            bisect,
            allow_host_mismatch,
        } => {
            let how = CompareHow {
                opts: crate::compare::Options {
                    threshold_pct,
                    allow_host_mismatch,
                },
                json,
                format,
                html,
                bisect,
            };
            compare(runs, after_dashes, base, new, &how)
        }
        Command::Merge { runs, out } => merge(&runs, &out),
        Command::Report { dir } => {
            let results = crate::compare::read_run(&dir)?;
            let dir = if dir.is_dir() {
                dir
            } else {
                dir.parent().map(PathBuf::from).unwrap_or_default()
            };
            output::check_rerender_dir(&dir)?;
            output::render_reports(&dir, &results)?;
            emit(&format!(
                "report:   {}\nevidence: {} (in full: {})\n",
                dir.join(output::REPORT_HTML).display(),
                dir.join(output::EVIDENCE_TXT).display(),
                dir.join(output::EVIDENCE_FULL_TXT).display()
            ))
        }
        Command::Export { format, run } => {
            let results = crate::compare::read_run(&run)?;
            emit(&crate::export::export(&results, format))
        }
    }
}

/// Validates every input of `run` without writing anything: suites, profile, CPUs, run directory.
///
/// Errors: [`UsageError`] naming the bad value.
pub fn validate(args: &RunArgs, allowed_cpus: usize) -> Result<(Vec<Suite>, PathBuf), UsageError> {
    let suites = suite::resolve(args.suite.as_deref())?;
    for s in &suites {
        let plan = s.plan(args.profile.as_str())?;
        // A shipped suite's multi-CPU points are skipped at run time (with the reason) on a
        // smaller machine; a user's suite asking for more CPUs than there are is an input error.
        if s.source.starts_with("embedded:") {
            continue;
        }
        if let Some(p) = plan.points.iter().find(|p| p.cpus as usize > allowed_cpus) {
            return Err(UsageError::new(format!(
                "suite '{}' asks for cpus = {} but this process may run on {allowed_cpus} CPU(s): lower cpus in the suite",
                s.name, p.cpus
            )));
        }
    }
    let dir = match &args.out {
        Some(d) => d.clone(),
        None => output::default_dir(chrono::Utc::now(), &host_name()),
    };
    output::check_dir(&dir)?;
    Ok((suites, dir))
}

fn run(args: &RunArgs) -> anyhow::Result<()> {
    let allowed = crate::measure::pin::allowed_cpus().map(|c| c.len()).unwrap_or(1).max(1);
    let (suites, dir) = validate(args, allowed)?;
    let clock = Clock::detect();
    let env = Environment::probe();
    let mut environment = serde_json::to_value(&env).context("cannot encode the environment")?;
    if let Some(map) = environment.as_object_mut() {
        let info = clock.info();
        map.insert("clock".into(), serde_json::Value::from(clock.kind().name()));
        map.insert("clock_overhead_ns".into(), serde_json::Value::from(clock.overhead_ns()));
        map.insert(
            "clock_info".into(),
            serde_json::to_value(info).context("cannot encode the clock")?,
        );
    }
    let exe = std::env::current_exe().context("cannot find this hookbench binary to start workers")?;
    let available = |probe: &crate::env::Probe, what: &str| {
        if probe.available {
            Ok(())
        } else {
            Err(probe
                .reason
                .clone()
                .unwrap_or_else(|| format!("{what} is not available")))
        }
    };
    let support = KernelSupport {
        seccomp: available(&env.seccomp, "seccomp"),
        landlock: available(&env.landlock_abi, "Landlock"),
        cgroup_bpf: env.cgroup_bpf_support(),
        trampolines: available(&env.bpf_trampolines, "BPF trampolines"),
    };
    let timing = crate::backend::Timing::new(clock.info());
    let mut backends: Vec<Box<dyn Backend>> = Vec::new();
    if matches!(args.backend, BackendChoice::Auto | BackendChoice::Model) {
        backends.push(Box::new(ModelBackend::new(exe.clone(), timing)));
    }
    if matches!(args.backend, BackendChoice::Auto | BackendChoice::Kernel) {
        // A user's suite whose rings go beyond this machine's limits is refused before any run.
        crate::kernel::check_working_set_plans(&suites, args.profile.as_str())?;
        backends.push(Box::new(KernelBackend::new(exe.clone(), support, timing)));
    }
    // The environment probe already opened /dev/hookbench (Environment::kmod).
    let kmod = match env.kmod.value_if_available() {
        Some(v) => Ok(v.to_string()),
        None => Err(env.kmod.reason.clone().unwrap_or_else(|| env.kmod.to_string())),
    };
    match (&kmod, args.backend) {
        (_, BackendChoice::Kmod) | (Ok(_), BackendChoice::Auto) => {
            backends.push(Box::new(crate::kmod_backend::KmodBackend::new(exe, kmod, timing)));
        }
        _ => {}
    }
    let config = RunConfig {
        suites,
        profile: args.profile.as_str().to_string(),
        command_line: std::env::args_os().map(|a| a.to_string_lossy().into_owned()).collect(),
        environment,
        progress: !args.no_progress,
        stop: stop_on_signals()?,
        order_seed: args.seed.unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(0)
        }),
    };
    let mut run_dir = RunDir::create(&dir)?;
    eprintln!(
        "hookbench: running {} suite(s), profile {}, into {}",
        config.suites.len(),
        config.profile,
        dir.display()
    );
    let results = runner::run(&config, &mut backends, &mut run_dir)?;
    emit(&format!(
        "hookbench: {} cells, {} fits, {} skipped\nreport:   {}\nresults:  {}\nevidence: {} (in full: {})\n\
         journal:  {}\n",
        results.cells.len(),
        results.fits.len(),
        results.skipped.len(),
        run_dir.file(output::REPORT_HTML).display(),
        run_dir.file(output::RESULTS_JSON).display(),
        run_dir.file(output::EVIDENCE_TXT).display(),
        run_dir.file(output::EVIDENCE_FULL_TXT).display(),
        run_dir.file(output::CELLS_JSONL).display()
    ))
}

/// The text of `hookbench list`: suites, backends, and the scenario axes with their ranges.
///
/// A suite is listed with its claim, metric, mechanisms, fit axes and cells per profile.
pub fn list_text() -> Result<String, UsageError> {
    use std::fmt::Write as _;
    let mut s = String::new();
    let _ = writeln!(s, "suites (the default suite runs them all; files in suites/):");
    for suite in suite::embedded()? {
        let sizes: Vec<String> = suite
            .profiles
            .iter()
            .map(|(name, plan)| {
                format!(
                    "{name} {}",
                    suite
                        .mechanisms
                        .values()
                        .flatten()
                        .map(|m| plan.points.iter().filter(|p| m.admits(p)).count())
                        .sum::<usize>()
                )
            })
            .collect();
        let _ = writeln!(
            s,
            "  {:<15} claim {}  {}  x: {}",
            suite.name,
            suite.claim.map(|c| c.to_string()).unwrap_or_else(|| "-".into()),
            suite.metric.as_str(),
            suite
                .fits
                .iter()
                .map(|f| f.label.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        );
        let _ = writeln!(s, "      {}", suite.hypothesis);
        for (backend, list) in &suite.mechanisms {
            let names: Vec<String> = list.iter().map(|m| format!("{} ({})", m.name, m.model)).collect();
            let _ = writeln!(s, "      {backend}: {}", names.join(", "));
        }
        // Attach suites give an attach and a detach cell per run, set-up suites four.
        let _ = writeln!(s, "      points x mechanisms: {}", sizes.join(", "));
    }
    let _ = writeln!(s, "\nbackends and their mechanisms (crate::mechanism::REGISTRY):");
    let width = crate::mechanism::REGISTRY
        .iter()
        .map(|m| m.name.len())
        .max()
        .unwrap_or(0);
    for backend in crate::mechanism::BackendKind::ALL {
        let _ = writeln!(s, "  {}", backend.as_str());
        for m in crate::mechanism::REGISTRY.iter().filter(|m| m.backend == backend) {
            let _ = writeln!(s, "    {:<width$} {:<17} {}", m.name, m.model.as_str(), m.times);
        }
    }
    let _ = writeln!(s, "\naxes:");
    let meaning = [
        ("programs", "N programs in effect on the measured hook"),
        ("foreign", "programs attached for other hooks"),
        ("hooks", "H distinct hooks in use"),
        ("depth", "cgroup nesting of the measured task"),
        ("cgroups", "C cgroups in the hierarchy (0 = what the other axes need)"),
        ("tasks", "T tasks alive (0 = one per working-set slot)"),
        ("working_set", "W tasks or cgroups a CPU rotates through"),
        ("cpus", "P concurrent triggering CPUs"),
    ];
    for (axis, what) in meaning {
        let (lo, hi) = suite::axis_range(axis);
        let _ = writeln!(s, "  {axis:<12} {lo}..={hi:<9} {what}");
    }
    let _ = writeln!(s, "  {:<12} {:<14} program body", "body", "null|counter|map-lookup");
    Ok(s)
}

fn doctor(json: bool) -> anyhow::Result<()> {
    let env = Environment::probe();
    let clock = Clock::detect();
    if json {
        let mut v = serde_json::to_value(&env).context("cannot encode the environment")?;
        if let Some(map) = v.as_object_mut() {
            map.insert(
                "clock".into(),
                serde_json::to_value(clock.info()).context("cannot encode the clock")?,
            );
        }
        let text = serde_json::to_string_pretty(&v).context("cannot encode the environment")?;
        return emit(&format!("{text}\n"));
    }
    let mut lines = env.doctor_lines();
    lines.push((
        "clock".to_string(),
        format!(
            "{} (overhead {:.1} ns per read)",
            clock.kind().name(),
            clock.overhead_ns()
        ),
    ));
    let width = lines.iter().map(|(l, _)| l.len()).max().unwrap_or(0);
    let text: String = lines
        .iter()
        .map(|(label, value)| format!("{label:<width$}  {value}\n"))
        .collect();
    emit(&text)
}

/// Installs SIGINT and SIGTERM handlers that set the returned flag, so a run stops cleanly.
///
/// The runner stops before the next cell and saves what it has; a second signal ends the
/// process at once with exit code 130.
fn stop_on_signals() -> anyhow::Result<Arc<AtomicBool>> {
    use signal_hook::consts::{SIGINT, SIGTERM};
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [SIGINT, SIGTERM] {
        signal_hook::flag::register_conditional_shutdown(sig, crate::error::EXIT_INTERRUPTED, Arc::clone(&stop))
            .context("cannot install the signal handlers")?;
        signal_hook::flag::register(sig, Arc::clone(&stop)).context("cannot install the signal handlers")?;
    }
    Ok(stop)
}

/// `hookbench cleanup`: removes what killed runs left behind.
///
/// That is their `hookbench-<pid>-*` cgroup subtrees with the processes in them, and their
/// scratch directories. BPF programs were attached through links, which the kernel detaches
/// when the process that held them dies.
fn cleanup() -> anyhow::Result<()> {
    use hookbench_workloads::cgroupfs::{cleanup_stale, Cgroup2};
    let cg = Cgroup2::detect().context("cannot find the cgroup v2 mount")?;
    let removed = cleanup_stale(&cg).context("cannot remove stale hookbench cgroups")?;
    let tmp = std::env::temp_dir();
    let scratch = hookbench_workloads::cgroupfs::cleanup_stale_scratch(&tmp)
        .with_context(|| format!("cannot remove stale hookbench scratch directories in {}", tmp.display()))?;
    let mut text = String::new();
    for path in removed.iter().chain(&scratch) {
        text.push_str(&format!("removed {}\n", path.display()));
    }
    text.push_str(&format!(
        "hookbench cleanup: {} stale run(s) removed under {}\n",
        removed.len(),
        cg.mount().display()
    ));
    emit(&text)
}

/// How `hookbench compare` judges and what it prints.
struct CompareHow {
    opts: crate::compare::Options,
    json: bool,
    format: CompareFormat,
    html: Option<PathBuf>,
    bisect: bool,
}

/// The BASE and NEW runs of `compare`'s three ways of naming them.
///
/// Errors: a [`UsageError`] when they are mixed or a side is missing.
fn compare_sides(
    runs: Vec<PathBuf>,
    after_dashes: Vec<PathBuf>,
    base: Vec<PathBuf>,
    new: Vec<PathBuf>,
) -> Result<(Vec<PathBuf>, Vec<PathBuf>), UsageError> {
    let named = !base.is_empty() || !new.is_empty();
    match (named, runs.len(), after_dashes.is_empty()) {
        (true, 0, true) if !base.is_empty() && !new.is_empty() => Ok((base, new)),
        (true, _, _) => Err(UsageError::new(
            "give runs either as `--base DIR... --new DIR...` (both, at least one each) or positionally, not both",
        )),
        (false, n, false) if n >= 1 => Ok((runs, after_dashes)),
        (false, 2, true) => {
            let mut runs = runs;
            let new = runs.split_off(1);
            Ok((runs, new))
        }
        (false, n, _) => Err(UsageError::new(format!(
            "compare needs BASE and NEW runs: `compare BASE NEW`, `compare BASE... -- NEW...` or `--base DIR --new \
             DIR` ({n} run(s) given before `--`)"
        ))),
    }
}

/// `hookbench compare`: exit 1 when NEW regressed; with `--bisect`, `git bisect run`'s codes.
fn compare(
    runs: Vec<PathBuf>,
    after_dashes: Vec<PathBuf>,
    base: Vec<PathBuf>,
    new: Vec<PathBuf>,
    how: &CompareHow,
) -> anyhow::Result<()> {
    use crate::compare::Outcome;
    // A bad command line: under --bisect, stop the bisection rather than mark a revision.
    let abort = |e: UsageError| -> anyhow::Error {
        if how.bisect {
            eprintln!("hookbench: {e} (compare --bisect: aborting the bisection)");
            std::process::exit(EXIT_BISECT_ABORT);
        }
        e.into()
    };
    let t = how.opts.threshold_pct;
    if !t.is_finite() || t < 0.0 {
        return Err(abort(UsageError::new(format!(
            "--threshold {t} must be a percentage >= 0"
        ))));
    }
    let (base, new) = compare_sides(runs, after_dashes, base, new).map_err(abort)?;
    if let Some(path) = &how.html {
        check_html_target(path).map_err(abort)?;
    }
    // Runs that cannot be judged: under --bisect, skip this revision.
    let skip = |e: UsageError| -> anyhow::Error {
        if how.bisect {
            eprintln!("hookbench: {e} (compare --bisect: skipping this revision, exit {EXIT_BISECT_SKIP})");
            std::process::exit(EXIT_BISECT_SKIP);
        }
        e.into()
    };
    let read = |paths: &[PathBuf]| -> Result<Vec<crate::compare::Run>, UsageError> {
        paths
            .iter()
            .map(|p| {
                Ok(crate::compare::Run {
                    path: p.display().to_string(),
                    results: crate::compare::read_run(p)?,
                })
            })
            .collect()
    };
    let base_runs = read(&base).map_err(skip)?;
    let new_runs = read(&new).map_err(skip)?;
    let c = crate::compare::compare(&base_runs, &new_runs, &how.opts).map_err(skip)?;
    if let Some(path) = &how.html {
        std::fs::write(path, crate::compare::render_html(&c)).map_err(|e| {
            UsageError::new(format!(
                "--html {}: cannot write the page: {e} (pick a writable file path)",
                path.display()
            ))
        })?;
    }
    if how.json {
        emit(&format!(
            "{}\n",
            serde_json::to_string_pretty(&c).context("cannot encode the comparison")?
        ))?;
    } else {
        emit(&match how.format {
            CompareFormat::Text => crate::compare::render_text(&c),
            CompareFormat::Mail => crate::compare::render_mail(&c),
            CompareFormat::Markdown => crate::compare::render_markdown(&c),
        })?;
    }
    match c.verdict {
        Outcome::Regressed => std::process::exit(crate::error::EXIT_FAILURE),
        Outcome::Noisy if how.bisect => std::process::exit(EXIT_BISECT_SKIP),
        _ => Ok(()),
    }
}

/// `hookbench merge`: reads every run, merges them and writes merged.json and its reports.
///
/// Errors: a [`UsageError`] naming the run that is missing, unreadable or of another schema, the
/// run given twice, or an `--out` that is not a new or empty directory.
fn merge(runs: &[PathBuf], out: &std::path::Path) -> anyhow::Result<()> {
    use hookbench_reports::merged;
    output::check_dir(out)?;
    let mut read = Vec::with_capacity(runs.len());
    for path in runs {
        let results = crate::compare::read_run(path)
            .map_err(|e| UsageError::new(format!("merge: run {}: {}", path.display(), e.message)))?;
        read.push((path.display().to_string(), results));
    }
    let set = merged::merge(read).map_err(|e| UsageError::new(format!("merge: {e}")))?;
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    let json = serde_json::to_string_pretty(&set).context("cannot encode the merged set")?;
    output::write_atomic(&out.join(MERGED_JSON), format!("{json}\n").as_bytes())?;
    output::write_atomic(&out.join(output::REPORT_HTML), merged::render_html(&set).as_bytes())?;
    output::write_atomic(
        &out.join(output::EVIDENCE_TXT),
        merged::render_evidence(&set).as_bytes(),
    )?;
    let beyond = set.differences.iter().filter(|d| d.exceeds_ci).count();
    let mut text = format!(
        "hookbench merge: {} run(s) in {} host class(es), {} slope difference(s) between kernels beyond their CI\n",
        set.runs.len(),
        set.groups.len(),
        beyond
    );
    for w in &set.warnings {
        text.push_str(&format!("warning: {w}\n"));
    }
    text.push_str(&format!(
        "merged:   {}\nreport:   {}\nevidence: {}\n",
        out.join(MERGED_JSON).display(),
        out.join(output::REPORT_HTML).display(),
        out.join(output::EVIDENCE_TXT).display()
    ));
    emit(&text)
}

/// The merged set's file in `hookbench merge --out DIR`.
pub const MERGED_JSON: &str = "merged.json";

/// Checks that `compare --html FILE` may write `path`: it is new, or a page hookbench wrote.
///
/// A page hookbench wrote is recognised by [`hookbench_reports::html::is_hookbench_page`]; any
/// other file is refused, as `--out` refuses one.
///
/// Errors: a [`UsageError`] naming the path when it is a directory, not a regular file, under a
/// file, or a file that is not a hookbench page.
fn check_html_target(path: &std::path::Path) -> Result<(), UsageError> {
    use hookbench_reports::html::{is_hookbench_page, PAGE_HEAD_BYTES};
    use std::io::Read as _;
    if let Some(file) = output::file_in_the_way(path) {
        return Err(UsageError::new(format!(
            "--html {}: {} is a file, not a directory: give a file path under a directory",
            path.display(),
            file.display()
        )));
    }
    let meta = match std::fs::metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => {
            return Err(UsageError::new(format!(
                "--html {}: cannot inspect it ({e}): give a new file path",
                path.display()
            )))
        }
    };
    if !meta.is_file() {
        return Err(UsageError::new(format!(
            "--html {} exists and is not a regular file: give a new file path",
            path.display()
        )));
    }
    let mut head = Vec::with_capacity(PAGE_HEAD_BYTES);
    let read = std::fs::File::open(path).and_then(|f| f.take(PAGE_HEAD_BYTES as u64).read_to_end(&mut head));
    if read.is_err() || !is_hookbench_page(&String::from_utf8_lossy(&head)) {
        return Err(UsageError::new(format!(
            "--html {} exists and is not a page hookbench wrote: it is not replaced; give a new file path or \
             remove it first",
            path.display()
        )));
    }
    Ok(())
}

/// `hookbench kmod-check`: runs hookbench-kmod's checks against the loaded module.
///
/// Prints one PASS/FAIL line per check. Errors: a bad `--fuzz-secs` ([`UsageError`]); any
/// failed check (exit 1, after the report).
fn kmod_check(fuzz_secs: f64, seed: u64) -> anyhow::Result<()> {
    if !fuzz_secs.is_finite() || !(0.0..=3600.0).contains(&fuzz_secs) {
        return Err(UsageError::new(format!("--fuzz-secs {fuzz_secs} must be 0..=3600 seconds")).into());
    }
    if let Err(reason) = crate::kmod_backend::probe() {
        anyhow::bail!("hookbench.ko is not usable: {reason}");
    }
    let opts = hookbench_kmod::check::CheckOptions {
        fuzz: std::time::Duration::from_secs_f64(fuzz_secs),
        seed,
    };
    let report = hookbench_kmod::check::run_all(&opts);
    emit(&format!("{report}\n"))?;
    if !report.passed() {
        anyhow::bail!("{} kmod check(s) failed", report.failures().count());
    }
    Ok(())
}

/// Runs a timed worker in this freshly exec'd, single-threaded process and prints its report.
///
/// The worker runs through the one worker protocol ([`hookbench_workloads::worker::dispatch`]).
///
/// Errors: an unknown kind or a request that is not valid JSON ([`UsageError`]).
fn worker(kind: &str, request: &str) -> anyhow::Result<()> {
    let line = hookbench_workloads::worker::dispatch(kind, request).map_err(|e| UsageError::new(e.to_string()))?;
    emit(&format!("{line}\n"))
}

/// Writes `text` to stdout, where a closed pipe is not an error.
///
/// A closed pipe (`hookbench list | head -1`) means the reader has what it wanted. Any other
/// write error (a full disk) is an error, with exit code 1.
fn emit(text: &str) -> anyhow::Result<()> {
    use std::io::Write as _;
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => other.context("cannot write to standard output"),
    }
}

fn host_name() -> String {
    hostname::get()
        .ok()
        .and_then(|h| h.into_string().ok())
        .unwrap_or_else(|| "localhost".to_string())
}
