//! The run directory: the one place that builds output paths, and the writers that save results as they are measured.
//!
//! Layout of a run directory:
//! - `cells.jsonl`: one JSON cell per line, appended and flushed (fsync) after every finished cell;
//! - `results.json`: the whole run, rewritten atomically (temp file + rename) after every cell with
//!   `"complete": false`, and a last time with `"complete": true`;
//! - `evidence.txt`: plain text for a mailing-list reply, rendered from `results.json` at the end;
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
/// File name of the plain-text evidence.
pub const EVIDENCE_TXT: &str = "evidence.txt";
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

/// Checks that `dir` can become a run directory, without creating anything: it must not be a file
/// and must not already hold a run's `results.json` or `cells.jsonl`.
///
/// Errors: a [`UsageError`] naming the path and what to do.
pub fn check_dir(dir: &Path) -> Result<(), UsageError> {
    if dir.exists() && !dir.is_dir() {
        return Err(UsageError::new(format!(
            "--out {} is a file, not a directory: give a new or empty directory",
            dir.display()
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
    Ok(())
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

    /// Renders `evidence.txt` and `report.html` of `results` into this directory.
    pub fn write_reports(&self, results: &Results) -> anyhow::Result<()> {
        render_reports(&self.dir, results)
    }
}

/// Renders `evidence.txt` and `report.html` from `results` into `dir` (atomically each): the one
/// place reports are written from, used at the end of a run and by `hookbench report DIR`.
pub fn render_reports(dir: &Path, results: &Results) -> anyhow::Result<()> {
    write_atomic(
        &dir.join(EVIDENCE_TXT),
        hookbench_reports::evidence::render(results).as_bytes(),
    )?;
    write_atomic(
        &dir.join(REPORT_HTML),
        hookbench_reports::html::render(results).as_bytes(),
    )
}

/// Writes `bytes` to `path` through a temporary file in the same directory and a rename, so a
/// reader never sees a half-written file.
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
}
