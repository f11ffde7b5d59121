//! The fleet templates under `ci/` checked as far as this machine allows, on real results.
//!
//! The GitHub Actions workflow parses and has its matrix, per-host concurrency, artifacts and
//! gate, and its compare step fails on a regression (run with a stand-in hookbench); the LAVA
//! test definition's steps run (with stand-ins for the LAVA helpers) and report every claim;
//! lkp-tests' `run` passes the job's parameters and `parse` turns a real results.json into
//! stats that the index covers; `export --format kcidb` meets the KCIDB schema's rules. Every
//! `scripts/...` and `hookbench SUBCOMMAND --flag` the templates run must be documented in the
//! README and exist in `hookbench --help`.

mod common;

use common::{hookbench, run_smoke};
use hookbench_reports::Results;
use regex::Regex;
use serde_yaml_ng::Value as Yaml;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The repository's root.
fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// A file of the repository as text.
fn read(rel: &str) -> String {
    std::fs::read_to_string(repo().join(rel)).unwrap_or_else(|e| panic!("cannot read {rel}: {e}"))
}

/// A YAML file of the repository, parsed.
fn yaml(rel: &str) -> Yaml {
    serde_yaml_ng::from_str(&read(rel)).unwrap_or_else(|e| panic!("{rel} is not YAML: {e}"))
}

/// The trimmed real smoke run the reports tests use.
const SMOKE: &str = "reports/tests/data/results-smoke.json";

fn smoke() -> Results {
    Results::read(&repo().join(SMOKE)).expect("the smoke results read")
}

/// `v[key]` as a string, or "" when absent.
fn s<'a>(v: &'a Yaml, key: &str) -> &'a str {
    v.get(key).and_then(Yaml::as_str).unwrap_or("")
}

/// The strings of a YAML sequence (non-strings left out).
fn strings(v: Option<&Yaml>) -> Vec<String> {
    v.and_then(Yaml::as_sequence)
        .map(|seq| seq.iter().filter_map(|x| x.as_str().map(str::to_string)).collect())
        .unwrap_or_default()
}

/// What the README documents: scripts (any code block) and hookbench subcommands (CLI block).
struct Documented {
    /// `scripts/NAME` of every fenced code block.
    scripts: BTreeSet<String>,
    /// Each subcommand of the CLI block with the text of its entry (options, values, comments).
    commands: Vec<(String, String)>,
}

fn readme() -> Documented {
    let text = read("README.md");
    let script = Regex::new(r"scripts/[A-Za-z0-9_.-]+").expect("regex");
    let mut scripts = BTreeSet::new();
    let mut commands: Vec<(String, String)> = Vec::new();
    let (mut in_block, mut section) = (false, String::new());
    for line in text.lines() {
        if let Some(h) = line.strip_prefix("## ") {
            section = h.trim().to_string();
        }
        if line.trim_start().starts_with("```") {
            in_block = !in_block;
            continue;
        }
        if !in_block {
            continue;
        }
        scripts.extend(script.find_iter(line).map(|m| m.as_str().to_string()));
        if section == "CLI" {
            if let Some(rest) = line.strip_prefix("hookbench ") {
                let name = rest.split_whitespace().next().unwrap_or("").to_string();
                commands.push((name, line.to_string()));
            } else if let Some((_, entry)) = commands.last_mut() {
                entry.push('\n');
                entry.push_str(line);
            }
        }
    }
    assert!(
        scripts.contains("scripts/run"),
        "the README's code blocks name scripts/run"
    );
    assert!(
        commands.iter().any(|(c, _)| c == "run"),
        "the README's CLI block documents hookbench run"
    );
    Documented { scripts, commands }
}

/// One `hookbench SUBCOMMAND` call in a template: its options and their values.
#[derive(Debug)]
struct Call {
    /// Where it was found.
    file: String,
    subcommand: String,
    /// `--flag` with the value after it when that is a plain word (`--format markdown`).
    options: Vec<(String, Option<String>)>,
}

/// The hookbench calls of `text`: `target/release/hookbench SUB ...` or `"$hookbench" SUB ...`.
fn calls(file: &str, text: &str) -> Vec<Call> {
    let call = Regex::new(r#"(?:target/release/hookbench|"\$hookbench")\s+([a-z][a-z-]*)([^|;&>\n]*)"#).expect("regex");
    let option = Regex::new(r"--([a-z][a-z-]*)(?:\s+([A-Za-z][A-Za-z0-9_-]*))?").expect("regex");
    call.captures_iter(text)
        .map(|c| Call {
            file: file.to_string(),
            subcommand: c[1].to_string(),
            options: option
                .captures_iter(&c[2])
                .map(|o| (o[1].to_string(), o.get(2).map(|v| v.as_str().to_string())))
                .collect(),
        })
        .collect()
}

/// The `scripts/...` the text runs.
fn scripts_in(text: &str) -> BTreeSet<String> {
    let script = Regex::new(r"scripts/[A-Za-z0-9_.-]+").expect("regex");
    script.find_iter(text).map(|m| m.as_str().to_string()).collect()
}

/// The shell text a YAML template runs: a workflow's step `run`s or a LAVA definition's steps.
fn shell_of(doc: &Yaml) -> String {
    let mut out = String::new();
    if let Some(jobs) = doc.get("jobs").and_then(Yaml::as_mapping) {
        for job in jobs.values() {
            for step in job.get("steps").and_then(Yaml::as_sequence).into_iter().flatten() {
                out.push_str(s(step, "run"));
                out.push('\n');
            }
        }
    }
    for step in strings(doc.get("run").and_then(|r| r.get("steps"))) {
        out.push_str(&step);
        out.push('\n');
    }
    out
}

/// The shell scripts' text without their comment lines.
fn script_text(rel: &str) -> String {
    read(rel)
        .lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .collect::<Vec<_>>()
        .join("\n")
}

/// `hookbench ARGS --help`'s output.
fn help(args: &[&str]) -> String {
    let out = hookbench().args(args).arg("--help").output().expect("hookbench runs");
    assert!(out.status.success(), "hookbench {args:?} --help failed");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn every_command_the_templates_run_is_documented_and_exists() {
    let doc = readme();
    let top = help(&[]);
    let mut all = Vec::new();
    let mut scripts = BTreeSet::new();
    for (file, text) in [
        ("ci/github/hookbench.yml", shell_of(&yaml("ci/github/hookbench.yml"))),
        ("ci/lava/hookbench.yaml", shell_of(&yaml("ci/lava/hookbench.yaml"))),
        (
            "ci/lkp/programs/hookbench/run",
            script_text("ci/lkp/programs/hookbench/run"),
        ),
        (
            "ci/lkp/programs/hookbench/parse",
            script_text("ci/lkp/programs/hookbench/parse"),
        ),
    ] {
        all.extend(calls(file, &text));
        scripts.extend(scripts_in(&text));
    }
    // The templates call what they are for: a regex that found nothing would check nothing.
    let names: BTreeSet<(&str, &str)> = all.iter().map(|c| (c.file.as_str(), c.subcommand.as_str())).collect();
    for want in [
        ("ci/github/hookbench.yml", "merge"),
        ("ci/github/hookbench.yml", "compare"),
        ("ci/lava/hookbench.yaml", "export"),
        ("ci/lkp/programs/hookbench/parse", "export"),
    ] {
        assert!(names.contains(&want), "{want:?} not found among {names:?}");
    }
    assert!(scripts.contains("scripts/run"), "{scripts:?}");
    for s in &scripts {
        assert!(
            doc.scripts.contains(s),
            "{s} is run by a template but no README code block shows it"
        );
    }
    // Every problem is collected, so one run names them all.
    let mut problems = Vec::new();
    let subcommand_list = top.split("Commands:").nth(1).unwrap_or("");
    for c in &all {
        let entry = doc
            .commands
            .iter()
            .find(|(name, _)| *name == c.subcommand)
            .map(|(_, e)| e.as_str());
        if entry.is_none() {
            problems.push(format!(
                "{}: hookbench {} is not in the README's CLI block",
                c.file, c.subcommand
            ));
        }
        if !subcommand_list
            .lines()
            .any(|l| l.split_whitespace().next() == Some(c.subcommand.as_str()))
        {
            problems.push(format!(
                "{}: hookbench {} is not a subcommand of hookbench --help",
                c.file, c.subcommand
            ));
            continue;
        }
        let sub_help = help(&[&c.subcommand]);
        for (flag, value) in &c.options {
            let flag = format!("--{flag}");
            if !entry.unwrap_or("").contains(&flag) {
                problems.push(format!(
                    "{}: hookbench {} {flag}: the README's entry does not document it",
                    c.file, c.subcommand
                ));
            }
            if !sub_help.contains(&flag) {
                problems.push(format!("{}: hookbench {} has no {flag}", c.file, c.subcommand));
                continue;
            }
            // A value named in the README (a format) must be one; paths and variables are not.
            if let Some(v) = value.as_deref().filter(|_| flag == "--format") {
                if !entry.unwrap_or("").contains(v) {
                    problems.push(format!(
                        "{}: hookbench {} {flag} {v}: the README does not list {v}",
                        c.file, c.subcommand
                    ));
                }
                // clap lists values as `- NAME: doc` lines, or `[possible values: a, b]`.
                let listed = sub_help.lines().any(|l| {
                    l.trim_start().starts_with(&format!("- {v}:"))
                        || (l.contains("possible values")
                            && l.split(|ch: char| !ch.is_ascii_alphanumeric() && ch != '-')
                                .any(|w| w == v))
                });
                if !listed {
                    problems.push(format!(
                        "{}: hookbench {} {flag} {v}: not a value in its --help",
                        c.file, c.subcommand
                    ));
                }
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// The steps of `job` that `pick` accepts.
fn steps(job: &Yaml, pick: impl Fn(&Yaml) -> bool) -> Vec<&Yaml> {
    job.get("steps")
        .and_then(Yaml::as_sequence)
        .map(|seq| seq.iter().filter(|st| pick(st)).collect())
        .unwrap_or_default()
}

#[test]
fn the_workflow_runs_one_job_per_host_and_gates_on_the_comparison() {
    let wf = yaml("ci/github/hookbench.yml");
    let jobs = wf.get("jobs").expect("jobs");
    let run = jobs.get("run").expect("a run job");
    let include = run
        .get("strategy")
        .and_then(|s| s.get("matrix"))
        .and_then(|m| m.get("include"))
        .and_then(Yaml::as_sequence)
        .expect("matrix.include");
    assert!(!include.is_empty());
    for entry in include {
        for key in ["host", "class", "arch"] {
            assert!(!s(entry, key).is_empty(), "matrix entry {entry:?} lacks {key}");
        }
    }
    let hosts: BTreeSet<&str> = include.iter().map(|e| s(e, "host")).collect();
    assert_eq!(hosts.len(), include.len(), "one matrix entry per host");
    let runs_on = strings(run.get("runs-on"));
    for label in [
        "self-hosted",
        "${{ matrix.arch }}",
        "${{ matrix.class }}",
        "${{ matrix.host }}",
    ] {
        assert!(runs_on.iter().any(|l| l == label), "runs-on {runs_on:?} lacks {label}");
    }
    let conc = run.get("concurrency").expect("per-host concurrency");
    assert!(s(conc, "group").contains("${{ matrix.host }}"), "{conc:?}");
    assert_eq!(conc.get("cancel-in-progress").and_then(Yaml::as_bool), Some(false));

    let run_steps = steps(run, |st| s(st, "run").contains("scripts/run"));
    assert_eq!(run_steps.len(), 1, "one step runs scripts/run");
    let out_expr = "${{ steps.name.outputs.dir }}";
    assert!(
        s(run_steps[0], "run").contains(&format!("--out \"{out_expr}\"")),
        "{run_steps:?}"
    );
    let upload = steps(run, |st| s(st, "uses").starts_with("actions/upload-artifact@"));
    assert_eq!(upload.len(), 1);
    let with = upload[0].get("with").expect("with");
    assert_eq!(s(with, "path"), out_expr, "the run directory is uploaded");
    let artifact = s(with, "name");
    assert!(
        artifact.starts_with("hookbench-run-")
            && artifact.contains("${{ matrix.host }}")
            && artifact.contains("${{ steps.name.outputs.kernel }}"),
        "{artifact}"
    );
    assert_eq!(
        s(upload[0], "if"),
        "always()",
        "a failed run's results are uploaded too"
    );
    let naming = steps(run, |st| s(st, "id") == "name");
    assert!(s(naming[0], "run").contains("kernel=$(uname -r)"));

    let gate = jobs.get("gate").expect("a gate job");
    assert_eq!(s(gate, "needs"), "run");
    let downloads = steps(gate, |st| s(st, "uses").starts_with("actions/download-artifact@"));
    let pattern = |st: &Yaml| st.get("with").map(|w| s(w, "pattern").to_string()).unwrap_or_default();
    assert!(
        downloads.iter().all(|d| pattern(d) == "hookbench-run-*"),
        "{downloads:?}"
    );
    assert!(
        downloads
            .iter()
            .any(|d| d.get("with").is_some_and(|w| !s(w, "run-id").is_empty())),
        "the baseline comes from another run: {downloads:?}"
    );
    let base = steps(gate, |st| s(st, "id") == "base");
    let base_run = s(base[0], "run");
    assert!(
        base_run.contains("git merge-base") && base_run.contains("branch=main"),
        "{base_run}"
    );
    assert_eq!(
        steps(gate, |st| s(st, "run").contains("hookbench merge runs/new/")).len(),
        1
    );
    let compare = steps(gate, |st| s(st, "run").contains("hookbench compare"));
    assert_eq!(compare.len(), 1);
    let script = s(compare[0], "run");
    assert!(
        script.contains("--format markdown >> \"$GITHUB_STEP_SUMMARY\""),
        "{script}"
    );
    check_compare_step(script);
}

/// Runs the gate's compare step with a stand-in hookbench exiting `rc`: its status and summary.
fn run_compare_step(script: &str, rc: i32, with_base: bool) -> (i32, String) {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    for p in ["runs/new/hookbench-run-h1-6.1.0", "target/release"] {
        std::fs::create_dir_all(d.join(p)).expect("mkdir");
    }
    std::fs::write(d.join("runs/new/hookbench-run-h1-6.1.0/results.json"), "{}").expect("write");
    if with_base {
        std::fs::create_dir_all(d.join("runs/base/hookbench-run-h1-6.1.0")).expect("mkdir");
        std::fs::write(d.join("runs/base/hookbench-run-h1-6.1.0/results.json"), "{}").expect("write");
    }
    let fake = d.join("target/release/hookbench");
    std::fs::write(
        &fake,
        format!("#!/bin/sh\necho \"| fake compare of $3 against $2 ($4 $5) |\"\nexit {rc}\n"),
    )
    .expect("write");
    std::fs::set_permissions(&fake, std::os::unix::fs::PermissionsExt::from_mode(0o755)).expect("chmod");
    assert!(
        !script.contains("${{"),
        "expressions belong in the step's env: {script}"
    );
    let summary = d.join("summary.md");
    let status = Command::new("bash")
        .args(["-e", "-c", script])
        .current_dir(d)
        .env("GITHUB_STEP_SUMMARY", &summary)
        .env("BASE_SHA", "0123abc")
        .status()
        .expect("bash runs");
    (
        status.code().unwrap_or(-1),
        std::fs::read_to_string(&summary).unwrap_or_default(),
    )
}

fn check_compare_step(script: &str) {
    let (code, summary) = run_compare_step(script, 0, true);
    assert_eq!(code, 0, "{summary}");
    assert!(
        summary.contains("fake compare of runs/new/hookbench-run-h1-6.1.0/ against runs/base/hookbench-run-h1-6.1.0 (--format markdown)"),
        "{summary}"
    );
    assert!(summary.contains("against 0123abc"), "{summary}");
    let (code, _) = run_compare_step(script, 1, true);
    assert_eq!(code, 1, "a regression fails the gate");
    let (code, _) = run_compare_step(script, 2, true);
    assert_eq!(code, 1, "runs that cannot be compared fail the gate");
    let (code, summary) = run_compare_step(script, 1, false);
    assert_eq!(code, 0, "no baseline is not a failure");
    assert!(summary.contains("No baseline"), "{summary}");
}

/// A stand-in for a command on `PATH`: a shell script `name` in `dir`.
fn stand_in(dir: &Path, name: &str, body: &str) {
    let path = dir.join(name);
    std::fs::write(&path, format!("#!/bin/bash\n{body}\n")).expect("write");
    std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o755)).expect("chmod");
}

#[test]
fn the_lava_definition_reports_every_claim_with_its_deciding_slope() {
    let def = yaml("ci/lava/hookbench.yaml");
    let meta = def.get("metadata").expect("metadata");
    assert_eq!(s(meta, "format"), "Lava-Test Test Definition 1.0");
    assert_eq!(s(meta, "name"), "hookbench");
    assert!(!s(meta, "description").is_empty());
    let params = def.get("params").expect("params");
    let steps = strings(def.get("run").and_then(|r| r.get("steps")));
    assert!(steps.len() >= 3, "{steps:?}");

    // The checkout as LAVA sees it: scripts/run (a stand-in that writes a real run's results)
    // and target/release/hookbench (this build); lava-test-case logs what it is given.
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let (root, bin) = (d.join("checkout"), d.join("bin"));
    for p in [root.join("scripts"), root.join("target/release"), bin.clone()] {
        std::fs::create_dir_all(p).expect("mkdir");
    }
    let smoke_json = repo().join(SMOKE);
    stand_in(
        &root.join("scripts"),
        "run",
        &format!(
            "echo \"$*\" > \"{0}/run-args\"\nwhile [ $# -gt 0 ]; do [ \"$1\" = --out ] && out=$2; shift; done\n\
             mkdir -p \"$out\" && cp '{1}' \"$out/results.json\" && echo evidence > \"$out/evidence.txt\"",
            d.display(),
            smoke_json.display()
        ),
    );
    std::os::unix::fs::symlink(
        assert_cmd::cargo::cargo_bin("hookbench"),
        root.join("target/release/hookbench"),
    )
    .expect("symlink");
    stand_in(
        &bin,
        "lava-test-case",
        &format!(
            "echo \"$*\" >> '{}/cases'\nif [ \"$2\" = --shell ]; then shift 2; \"$@\"; fi",
            d.display()
        ),
    );
    let mut cmd = Command::new("bash");
    cmd.args(["-e", "-c", &steps.join("\n")]).current_dir(&root).env(
        "PATH",
        format!("{}:{}", bin.display(), std::env::var("PATH").unwrap_or_default()),
    );
    for (k, v) in params.as_mapping().expect("params is a map") {
        cmd.env(k.as_str().expect("a name"), v.as_str().unwrap_or(""));
    }
    cmd.env("OUT", d.join("out")).env("PROFILE", "smoke");
    let out = cmd.output().expect("bash runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let run_args = std::fs::read_to_string(d.join("run-args")).expect("scripts/run ran");
    assert!(
        run_args.starts_with("--profile smoke --backend auto --no-progress --out "),
        "{run_args}"
    );
    let cases = std::fs::read_to_string(d.join("cases")).expect("cases were reported");
    let lines: Vec<&str> = cases.lines().collect();
    assert!(lines[0].starts_with("hookbench-run --shell scripts/run "), "{cases}");
    let r = smoke();
    assert_eq!(lines.len(), 1 + r.claims.len(), "{cases}");
    let case = Regex::new(
        r"^claim-([1-7])-(model|kernel|kmod) --result (pass|fail|skip|unknown)(?: --measurement (-?[0-9]+(?:\.[0-9]+)?) --units ([a-z]+/[a-z-]+))?$",
    )
    .expect("regex");
    for (line, claim) in lines[1..].iter().zip(&r.claims) {
        let c = case.captures(line).unwrap_or_else(|| panic!("malformed case: {line}"));
        assert_eq!((&c[1], &c[2]), (claim.id.to_string().as_str(), claim.backend.as_str()));
        let want = hookbench::export::lava_result(claim.verdict);
        assert_eq!(&c[3], want, "{line}");
        let measured = c.get(4).map(|m| m.as_str().parse::<f64>().expect("a number"));
        let deciding = hookbench_reports::claims::deciding(&r, claim);
        match (measured, deciding) {
            (Some(m), Some(d)) => assert_eq!(m, d.value, "{line}"),
            (None, None) => assert_eq!(want, "skip", "{line}"),
            other => panic!("{line}: measurement and deciding figure disagree: {other:?}"),
        }
    }
}

#[test]
fn lkp_run_passes_the_job_parameters_and_the_job_names_only_those() {
    let dir = tempfile::tempdir().expect("tempdir");
    let src = dir.path().join("src");
    std::fs::create_dir_all(src.join("scripts")).expect("mkdir");
    stand_in(
        &src.join("scripts"),
        "run",
        &format!("echo \"$*\" > '{}/args'", dir.path().display()),
    );
    let status = Command::new(repo().join("ci/lkp/programs/hookbench/run"))
        .env("HOOKBENCH_SRC", &src)
        .env("RESULT_ROOT", dir.path())
        .env("profile", "smoke")
        .env("suite", "programs")
        .env_remove("backend")
        .env_remove("LKP_SRC")
        .status()
        .expect("run runs");
    assert!(status.success());
    let args = std::fs::read_to_string(dir.path().join("args")).expect("scripts/run ran");
    assert_eq!(
        args.trim(),
        format!(
            "--profile smoke --backend auto --no-progress --suite programs --out {}/hookbench-run",
            dir.path().display()
        )
    );
    // The parameters run reads (its `# - NAME` header) are those of meta.yaml and the job.
    let declared: BTreeSet<String> = read("ci/lkp/programs/hookbench/run")
        .lines()
        .filter_map(|l| l.strip_prefix("# - ").map(str::to_string))
        .collect();
    assert_eq!(
        declared,
        ["backend", "profile", "suite"].map(String::from).into(),
        "run's header"
    );
    let meta = yaml("ci/lkp/programs/hookbench/meta.yaml");
    let meta_params: BTreeSet<String> = meta
        .get("parameters")
        .and_then(Yaml::as_mapping)
        .expect("parameters")
        .keys()
        .filter_map(|k| k.as_str().map(str::to_string))
        .collect();
    assert_eq!(meta_params, declared);
    let job = yaml("ci/lkp/programs/hookbench/jobs/hookbench.yaml");
    assert_eq!((s(&job, "suite"), s(&job, "testcase")), ("hookbench", "hookbench"));
    for k in job
        .get("hookbench")
        .and_then(Yaml::as_mapping)
        .expect("the job's hookbench parameters")
        .keys()
    {
        assert!(declared.contains(k.as_str().unwrap_or("")), "job parameter {k:?}");
    }
}

/// lkp's index of `ci/lkp/etc/index-perf-all.yaml`: each stat pattern with its direction.
fn lkp_index() -> Vec<(Regex, i64)> {
    yaml("ci/lkp/etc/index-perf-all.yaml")
        .as_mapping()
        .expect("the index is a map")
        .iter()
        .map(|(k, v)| {
            let pattern = k.as_str().expect("a pattern");
            (
                Regex::new(&format!("^(?:{pattern})$")).expect("a regex"),
                v.as_i64().expect("a direction"),
            )
        })
        .collect()
}

/// Runs lkp's `parse` on the run directory `dir`: its stat lines.
fn lkp_parse(dir: &Path) -> Vec<String> {
    let out = Command::new(repo().join("ci/lkp/programs/hookbench/parse"))
        .env("HOOKBENCH", assert_cmd::cargo::cargo_bin("hookbench"))
        .env("RESULT_ROOT", dir.parent().expect("a parent"))
        .arg(dir)
        .output()
        .expect("parse runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

/// Checks lkp stat lines of `results`: format, one slope and intercept per fit, index coverage.
fn check_lkp_stats(lines: &[String], results: &Results) {
    let stat =
        Regex::new(r"^([A-Za-z0-9_-]+)\.([A-Za-z0-9_-]+)\.([A-Za-z0-9_-]+)\.((?:slope|intercept)_[a-z_]+): (\S+)$")
            .expect("regex");
    let index = lkp_index();
    assert_eq!(lines.len(), 2 * results.fits.len(), "{lines:#?}");
    for line in lines {
        let c = stat.captures(line).unwrap_or_else(|| panic!("malformed stat: {line}"));
        let value: f64 = c[5].parse().unwrap_or_else(|_| panic!("not a number: {line}"));
        assert!(value.is_finite());
        let fit = results
            .fits
            .iter()
            .find(|f| {
                f.suite == c[1]
                    && f.mechanism == c[2]
                    && c[3].starts_with(f.x.as_str())
                    && c[4].ends_with(f.metric.as_str())
                    && (if c[4].starts_with("slope") {
                        f.slope
                    } else {
                        f.intercept
                    }) == value
            })
            .unwrap_or_else(|| panic!("no fit gives {line}"));
        assert!(c[4].ends_with(&fit.metric));
        let name = format!("hookbench.{}", line.split(':').next().unwrap_or(""));
        let directions: Vec<i64> = index
            .iter()
            .filter(|(re, _)| re.is_match(&name))
            .map(|(_, d)| *d)
            .collect();
        assert_eq!(directions, [-1], "{name}: lower is better, said once");
    }
}

#[test]
fn lkp_parse_turns_real_results_into_indexed_stats() {
    let dir = tempfile::tempdir().expect("tempdir");
    let run = dir.path().join("hookbench-run");
    std::fs::create_dir_all(&run).expect("mkdir");
    std::fs::copy(repo().join(SMOKE), run.join("results.json")).expect("copy");
    let lines = lkp_parse(&run);
    let r = smoke();
    check_lkp_stats(&lines, &r);
    for want in [
        "seccomp.seccomp-nr-only.programs.slope_hook_latency_ns: -0.006241237223993667",
        "working-set.chain-walk.programs-working_set2048.slope_hook_latency_ns: 7.8980405184041995",
        "attach.cgroup-bpf.descendants.slope_attach_latency_ns: 182.69316241621104",
    ] {
        assert!(lines.iter().any(|l| l == want), "{want} not in {lines:#?}");
    }
    // And on a run made now: a model smoke run of the programs suite.
    let fresh = dir.path().join("fresh");
    run_smoke("model", "programs", &fresh);
    let r = Results::read(&fresh.join("results.json")).expect("the run's results");
    assert!(!r.fits.is_empty());
    check_lkp_stats(&lkp_parse(&fresh), &r);
}

/// The rules of KCIDB I/O schema v4.4 that a submission must meet, as the schema states them.
///
/// Source: kernelci/kcidb-io, kcidb_io/schema/v04_04.py (with the id and origin patterns of
/// v03_00.py it inherits): each object's required and allowed properties (every object has
/// `"additionalProperties": False`), and the patterns and enums our output uses. The schema
/// itself (GPL-2.0-or-later) is not copied into this repository.
mod kcidb_v4_4 {
    pub const TOP: &[&str] = &["version", "checkouts", "builds", "tests", "issues", "incidents"];
    pub const CHECKOUT_REQUIRED: &[&str] = &["id", "origin"];
    pub const CHECKOUT: &[&str] = &[
        "_timestamp",
        "comment",
        "contacts",
        "git_commit_hash",
        "git_commit_name",
        "git_repository_branch",
        "git_repository_url",
        "id",
        "log_excerpt",
        "log_url",
        "message_id",
        "misc",
        "origin",
        "patchset_files",
        "patchset_hash",
        "start_time",
        "tree_name",
        "valid",
    ];
    pub const BUILD_REQUIRED: &[&str] = &["checkout_id", "id", "origin"];
    pub const BUILD: &[&str] = &[
        "_timestamp",
        "architecture",
        "checkout_id",
        "command",
        "comment",
        "compiler",
        "config_name",
        "config_url",
        "duration",
        "id",
        "input_files",
        "log_excerpt",
        "log_url",
        "misc",
        "origin",
        "output_files",
        "start_time",
        "valid",
    ];
    pub const TEST_REQUIRED: &[&str] = &["build_id", "id", "origin"];
    pub const TEST: &[&str] = &[
        "_timestamp",
        "build_id",
        "comment",
        "duration",
        "environment",
        "id",
        "log_excerpt",
        "log_url",
        "misc",
        "number",
        "origin",
        "output_files",
        "path",
        "start_time",
        "status",
        "waived",
    ];
    pub const ENVIRONMENT: &[&str] = &["comment", "compatible", "misc"];
    pub const NUMBER_REQUIRED: &[&str] = &["value"];
    pub const NUMBER: &[&str] = &["value", "unit", "prefix"];
    pub const PREFIX: &[&str] = &["metric", "binary"];
    pub const STATUS: &[&str] = &["FAIL", "ERROR", "MISS", "PASS", "DONE", "SKIP"];
    pub const ORIGIN: &str = "^[a-z0-9_]+$";
    pub const ORIGIN_ID: &str = "^[a-z0-9_]+:.*$";
    pub const PATH: &str = "^[.a-zA-Z0-9_-]*$";
    pub const ARCHITECTURE: &str = "^[a-z0-9_]*$";
}

/// Checks `obj` has the `required` members and no member outside `allowed`.
fn check_members(what: &str, obj: &serde_json::Value, required: &[&str], allowed: &[&str]) {
    let map = obj
        .as_object()
        .unwrap_or_else(|| panic!("{what} is not an object: {obj}"));
    for r in required {
        assert!(map.contains_key(*r), "{what} lacks the required {r}: {obj}");
    }
    for k in map.keys() {
        assert!(
            allowed.contains(&k.as_str()),
            "{what} has {k}, which the schema does not allow"
        );
    }
}

/// No member anywhere is null (the schema: "no properties can be null").
fn check_no_null(v: &serde_json::Value, at: &str) {
    match v {
        serde_json::Value::Null => panic!("{at} is null"),
        serde_json::Value::Object(m) => m.iter().for_each(|(k, v)| check_no_null(v, &format!("{at}.{k}"))),
        serde_json::Value::Array(a) => a.iter().for_each(|v| check_no_null(v, &format!("{at}[]"))),
        _ => {}
    }
}

/// `hookbench export --format kcidb RUN`, parsed.
fn kcidb_of(run: &Path) -> serde_json::Value {
    let out = hookbench()
        .args(["export", "--format", "kcidb"])
        .arg(run)
        .output()
        .expect("export runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("the submission is JSON")
}

/// Checks a submission against the schema's rules; its tests are returned.
fn check_kcidb(doc: &serde_json::Value) -> Vec<serde_json::Value> {
    use kcidb_v4_4 as k;
    check_no_null(doc, "$");
    check_members("the submission", doc, &["version"], k::TOP);
    let (major, minor) = (doc["version"]["major"].as_u64(), doc["version"]["minor"].as_u64());
    assert_eq!(major, Some(4));
    assert!(minor.is_some_and(|m| m >= 4), "number {{value, unit}} needs 4.4");
    let re = |p: &str| Regex::new(p).expect("regex");
    let (origin, id, path, arch) = (re(k::ORIGIN), re(k::ORIGIN_ID), re(k::PATH), re(k::ARCHITECTURE));
    let str_of =
        |v: &serde_json::Value, key: &str| v[key].as_str().unwrap_or_else(|| panic!("{key} of {v}")).to_string();
    let mut checkouts = BTreeSet::new();
    for c in doc["checkouts"].as_array().expect("checkouts") {
        check_members("a checkout", c, k::CHECKOUT_REQUIRED, k::CHECKOUT);
        assert!(
            id.is_match(&str_of(c, "id")) && origin.is_match(&str_of(c, "origin")),
            "{c}"
        );
        assert!(checkouts.insert(str_of(c, "id")), "duplicate checkout id");
    }
    let mut builds = BTreeSet::new();
    for b in doc["builds"].as_array().expect("builds") {
        check_members("a build", b, k::BUILD_REQUIRED, k::BUILD);
        assert!(
            id.is_match(&str_of(b, "id")) && origin.is_match(&str_of(b, "origin")),
            "{b}"
        );
        assert!(arch.is_match(&str_of(b, "architecture")), "{b}");
        assert!(checkouts.contains(&str_of(b, "checkout_id")), "{b} names no checkout");
        assert!(builds.insert(str_of(b, "id")), "duplicate build id");
    }
    let tests = doc["tests"].as_array().expect("tests");
    let mut ids = BTreeSet::new();
    for t in tests {
        check_members("a test", t, k::TEST_REQUIRED, k::TEST);
        check_members("an environment", &t["environment"], &[], k::ENVIRONMENT);
        assert!(
            id.is_match(&str_of(t, "id")) && origin.is_match(&str_of(t, "origin")),
            "{t}"
        );
        assert!(path.is_match(&str_of(t, "path")), "{t}");
        assert!(k::STATUS.contains(&str_of(t, "status").as_str()), "{t}");
        assert!(builds.contains(&str_of(t, "build_id")), "{t} names no build");
        assert!(ids.insert(str_of(t, "id")), "duplicate test id {}", t["id"]);
        if let Some(st) = t.get("start_time") {
            let st = st.as_str().unwrap_or("");
            assert!(
                chrono::DateTime::parse_from_rfc3339(st).is_ok(),
                "start_time {st} is not a date-time"
            );
        }
        if let Some(n) = t.get("number") {
            check_members("a number", n, k::NUMBER_REQUIRED, k::NUMBER);
            assert!(n["value"].is_number(), "{n}");
            assert!(n.get("unit").is_none_or(serde_json::Value::is_string), "{n}");
            if let Some(p) = n.get("prefix") {
                assert!(k::PREFIX.contains(&p.as_str().unwrap_or("")), "{n}");
            }
        }
    }
    tests.clone()
}

#[test]
fn kcidb_export_meets_the_schema_rules() {
    let doc = kcidb_of(&repo().join(SMOKE));
    let tests = check_kcidb(&doc);
    // What it holds: every claim and every fit of the run, the verdicts as statuses.
    let r = smoke();
    assert_eq!(tests.len(), r.claims.len() + r.fits.len());
    let by_path = |p: &str| {
        tests
            .iter()
            .find(|t| t["path"] == p)
            .unwrap_or_else(|| panic!("no test {p}"))
    };
    let c2 = by_path("hookbench.claim2.kernel");
    assert_eq!(c2["status"], "FAIL");
    assert_eq!(c2["number"]["value"].as_f64(), Some(14.152833758912877));
    assert_eq!(c2["number"]["unit"], "ns/program");
    let c1 = by_path("hookbench.claim1.kernel");
    assert_eq!(c1["status"], "SKIP");
    assert!(c1.get("number").is_none());
    assert_eq!(by_path("hookbench.claim7.kernel")["status"], "PASS");
    let fit = by_path("hookbench.seccomp.seccomp-arg-load.programs.hook_latency_ns");
    assert_eq!(fit["status"], "DONE");
    assert_eq!(fit["number"]["value"].as_f64(), Some(25.736597131755204));
    assert_eq!(
        c2["environment"]["misc"]["kernel_release"],
        hookbench_reports::host::kernel_release(&r)
    );
}

/// Runs shellcheck on every step script of the YAML templates, when shellcheck is installed.
///
/// GitHub Actions runs `run:` with `bash -e`; a LAVA test shell runs its steps with `sh`.
/// `${{ ... }}` expressions are replaced by a word first, as GitHub does before the shell runs.
#[test]
fn the_templates_step_scripts_pass_shellcheck() {
    if Command::new("shellcheck").arg("--version").output().is_err() {
        assert!(
            std::env::var_os("HOOKBENCH_REQUIRE_ROOT").is_none(),
            "shellcheck is missing on CI (.ci/run installs it)"
        );
        println!("SKIPPED: shellcheck is not installed");
        return;
    }
    let expr = Regex::new(r"\$\{\{[^}]*\}\}").expect("regex");
    let wf = yaml("ci/github/hookbench.yml");
    let mut scripts: Vec<(String, &str, String)> = Vec::new();
    for (name, job) in wf.get("jobs").and_then(Yaml::as_mapping).expect("jobs") {
        for (i, step) in steps(job, |st| !s(st, "run").is_empty()).into_iter().enumerate() {
            let body = expr.replace_all(s(step, "run"), "expr").into_owned();
            scripts.push((format!("workflow job {name:?} step {i}"), "bash", body));
        }
    }
    let lava = strings(yaml("ci/lava/hookbench.yaml").get("run").and_then(|r| r.get("steps")));
    scripts.push(("the LAVA steps".to_string(), "sh", lava.join("\n")));
    for (what, shell, body) in scripts {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("step.sh");
        std::fs::write(&file, format!("#!/bin/{shell}\n{body}\n")).expect("write");
        let out = Command::new("shellcheck")
            .args(["--shell", shell, "--exclude", "SC2154"])
            .arg(&file)
            .output()
            .expect("shellcheck runs");
        assert!(
            out.status.success(),
            "{what}:\n{body}\n{}",
            String::from_utf8_lossy(&out.stdout)
        );
    }
}

#[test]
fn kcidb_export_of_a_run_made_now_meets_the_schema_rules() {
    let dir = tempfile::tempdir().expect("tempdir");
    let run = dir.path().join("run");
    run_smoke("model", "attach", &run);
    let r = Results::read(&run.join("results.json")).expect("the run's results");
    let tests = check_kcidb(&kcidb_of(&run));
    assert_eq!(tests.len(), r.claims.len() + r.fits.len());
    assert!(
        tests.iter().all(|t| t.get("start_time").is_some()),
        "the run's start is recorded"
    );
}
