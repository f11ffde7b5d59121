//! The run directory: the one place that builds output paths, and the writers of a run.
//!
//! The writers save results as they are measured.
//!
//! Layout of a run directory:
//! - `cells.jsonl`: one JSON cell per line, appended and flushed (fsync) after every finished cell;
//! - `results.json`: the whole run, rewritten atomically (temp file + rename) after every cell with
//!   `"complete": false`, and a last time with `"complete": true`;
//! - `evidence.txt`: plain text for a mailing-list reply (at most 80 lines of 72 columns: the
//!   verdicts and what decided them), rendered from `results.json` at the end;
//! - `evidence-full.txt`: the same in full (every fit table, split, drift, cell and flag);
//! - `report.html`: one self-contained HTML file with the verdicts and inline SVG charts.

use crate::error::UsageError;
use anyhow::Context as _;
use hookbench_reports::{Cell, Results};
use std::fs::{File, OpenOptions};
use std::io::Write as _;
use std::path::{Path, PathBuf};

/// File name of the per-cell journal.
pub const CELLS_JSONL: &str = "cells.jsonl";
/// File name of the whole-run results.
pub const RESULTS_JSON: &str = "results.json";
/// File name of the plain-text evidence, short enough for a mailing-list reply.
pub const EVIDENCE_TXT: &str = "evidence.txt";
/// File name of the full plain-text evidence, which `evidence.txt` points to.
pub const EVIDENCE_FULL_TXT: &str = hookbench_reports::evidence::FULL_FILE;
/// File name of the self-contained HTML report.
pub const REPORT_HTML: &str = "report.html";

/// The default run directory: `results/<UTC timestamp>-<host>/` under the current directory.
pub fn default_dir(now: chrono::DateTime<chrono::Utc>, host: &str) -> PathBuf {
    let host: String = host
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect();
    PathBuf::from("results").join(format!("{}-{host}", now.format("%Y%m%dT%H%M%SZ")))
}

/// Checks that `dir` can become a run directory, without creating anything.
///
/// It must not be a file, must not lie under a file, and must be new or empty (a directory that
/// already holds a run's `results.json` or `cells.jsonl` is named as such; any other content
/// would be mixed with the run and its `evidence.txt` or `report.html` overwritten).
///
/// Errors: a [`UsageError`] naming the path and what to do.
pub fn check_dir(dir: &Path) -> Result<(), UsageError> {
    if dir.exists() && !dir.is_dir() {
        return Err(UsageError::new(format!(
            "--out {} is a file, not a directory: give a new or empty directory",
            dir.display()
        )));
    }
    if let Some(file) = file_in_the_way(dir) {
        return Err(UsageError::new(format!(
            "--out {}: {} is a file, not a directory, so nothing can be created under it: give a path under a \
             directory",
            dir.display(),
            file.display()
        )));
    }
    for name in [RESULTS_JSON, CELLS_JSONL] {
        if dir.join(name).exists() {
            return Err(UsageError::new(format!(
                "--out {} already holds a run ({name}); give a new directory or remove the old run",
                dir.display()
            )));
        }
    }
    let first = std::fs::read_dir(dir)
        .ok()
        .and_then(|mut entries| entries.next())
        .and_then(Result::ok);
    if let Some(entry) = first {
        return Err(UsageError::new(format!(
            "--out {} is not empty (it has {}, ...) and is not a hookbench run: the run's files would be mixed \
             with yours and any {EVIDENCE_TXT} or {REPORT_HTML} there overwritten; give a new or empty directory",
            dir.display(),
            entry.file_name().to_string_lossy()
        )));
    }
    Ok(())
}

/// The nearest existing ancestor of `path` that is not a directory, if any.
///
/// For example `/etc/hostname` for `/etc/hostname/sub`: nothing can be created under it
/// (`ENOTDIR`).
pub fn file_in_the_way(path: &Path) -> Option<PathBuf> {
    for ancestor in path.ancestors().skip(1) {
        if ancestor.as_os_str().is_empty() {
            break;
        }
        match std::fs::metadata(ancestor) {
            Ok(meta) if meta.is_dir() => return None,
            Ok(_) => return Some(ancestor.to_path_buf()),
            // Missing, or under a file itself (ENOTDIR): look further up.
            Err(_) => continue,
        }
    }
    None
}

/// Checks that `dir` is a hookbench run that `hookbench report` may re-render.
///
/// It must hold a `results.json` of this schema (so its `evidence.txt` and `report.html` are
/// the run's own).
///
/// Errors: a [`UsageError`] naming the directory and what to give instead.
pub fn check_rerender_dir(dir: &Path) -> Result<(), UsageError> {
    let results = dir.join(RESULTS_JSON);
    hookbench_reports::Results::read(&results).map(|_| ()).map_err(|e| {
        UsageError::new(format!(
            "report: {} is not a hookbench run directory ({e}); report writes {EVIDENCE_TXT} and {REPORT_HTML} \
             only beside a run's own {RESULTS_JSON}: give the run directory",
            dir.display()
        ))
    })
}

/// An open run directory.
#[derive(Debug)]
pub struct RunDir {
    dir: PathBuf,
    cells: File,
}

impl RunDir {
    /// Creates `dir` (and parents) after [`check_dir`], and opens `cells.jsonl` for appending.
    ///
    /// Errors: a [`UsageError`] from [`check_dir`]; I/O errors naming the path.
    pub fn create(dir: &Path) -> anyhow::Result<RunDir> {
        check_dir(dir)?;
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create the run directory {}", dir.display()))?;
        let path = dir.join(CELLS_JSONL);
        let cells = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .with_context(|| format!("cannot open {}", path.display()))?;
        Ok(RunDir {
            dir: dir.to_path_buf(),
            cells,
        })
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// Path of a file of the run.
    pub fn file(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// Appends one cell to `cells.jsonl` and flushes it to disk, so a killed run keeps it.
    pub fn append_cell(&mut self, cell: &Cell) -> anyhow::Result<()> {
        let mut line = serde_json::to_string(cell).context("cannot encode a cell")?;
        line.push('\n');
        self.cells
            .write_all(line.as_bytes())
            .and_then(|()| self.cells.sync_data())
            .with_context(|| format!("cannot write {}", self.file(CELLS_JSONL).display()))
    }

    /// Writes `results.json` atomically (temp file, fsync, rename).
    pub fn write_results(&self, results: &Results) -> anyhow::Result<()> {
        let text = serde_json::to_string_pretty(results).context("cannot encode results")?;
        write_atomic(&self.file(RESULTS_JSON), text.as_bytes())
    }

    /// Renders `evidence.txt`, `evidence-full.txt` and `report.html` of `results` into this run.
    pub fn write_reports(&self, results: &Results) -> anyhow::Result<()> {
        render_reports(&self.dir, results)
    }
}

/// Renders `evidence.txt`, `evidence-full.txt` and `report.html` of `results` into `dir`.
///
/// Each is written atomically.
///
/// The one place reports are written from, used at the end of a run and by `hookbench report
/// DIR`.
pub fn render_reports(dir: &Path, results: &Results) -> anyhow::Result<()> {
    write_atomic(
        &dir.join(EVIDENCE_TXT),
        hookbench_reports::evidence::render(results).as_bytes(),
    )?;
    write_atomic(
        &dir.join(EVIDENCE_FULL_TXT),
        hookbench_reports::evidence::render_full(results).as_bytes(),
    )?;
    write_atomic(
        &dir.join(REPORT_HTML),
        hookbench_reports::html::render(results).as_bytes(),
    )
}

/// Writes `bytes` to `path` so that a reader never sees a half-written file.
///
/// It writes a temporary file in the same directory and renames it over `path`.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let tmp = path.with_extension("tmp");
    let mut f = File::create(&tmp).with_context(|| format!("cannot create {}", tmp.display()))?;
    f.write_all(bytes)
        .and_then(|()| f.sync_all())
        .with_context(|| format!("cannot write {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("cannot rename {} to {}", tmp.display(), path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_dir_has_timestamp_and_sanitised_host() {
        let t = chrono::DateTime::from_timestamp(0, 0).expect("epoch");
        assert_eq!(
            default_dir(t, "my host/x"),
            PathBuf::from("results/19700101T000000Z-my_host_x")
        );
    }

    #[test]
    fn check_dir_refuses_files_and_previous_runs() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let file = tmp.path().join("f");
        std::fs::write(&file, "x").expect("write");
        assert!(check_dir(&file).expect_err("file").message.contains("is a file"));
        assert!(check_dir(&tmp.path().join("new")).is_ok());
        std::fs::write(tmp.path().join(RESULTS_JSON), "{}").expect("write");
        assert!(check_dir(tmp.path())
            .expect_err("old run")
            .message
            .contains("already holds a run"));
    }

    #[test]
    fn check_dir_refuses_a_directory_with_foreign_files_and_accepts_an_empty_one() {
        let tmp = tempfile::tempdir().expect("tempdir");
        assert!(check_dir(tmp.path()).is_ok(), "an empty directory is fine");
        std::fs::write(tmp.path().join(EVIDENCE_TXT), "mine").expect("write");
        let e = check_dir(tmp.path()).expect_err("not empty").message;
        assert!(
            e.contains(&tmp.path().display().to_string()) && e.contains("not empty (it has evidence.txt"),
            "{e}"
        );
    }

    #[test]
    fn a_path_under_a_file_names_the_file_in_the_way() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let file = tmp.path().join("f");
        std::fs::write(&file, "x").expect("write");
        assert_eq!(file_in_the_way(&file.join("a/b")), Some(file.clone()));
        assert_eq!(file_in_the_way(&tmp.path().join("new/a")), None);
        assert_eq!(file_in_the_way(Path::new("relative/new")), None);
        let e = check_dir(&file.join("sub")).expect_err("under a file").message;
        assert!(e.contains(&format!("{} is a file", file.display())), "{e}");
    }

    #[test]
    fn only_a_run_directory_is_re_rendered() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let e = check_rerender_dir(tmp.path()).expect_err("no results.json").message;
        assert!(e.contains("not a hookbench run directory"), "{e}");
        std::fs::write(tmp.path().join(RESULTS_JSON), "{\"schema\": \"other\"}").expect("write");
        assert!(check_rerender_dir(tmp.path()).is_err(), "another schema is not a run");
    }
}
