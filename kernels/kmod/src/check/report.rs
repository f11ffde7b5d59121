//! The outcome of the checks: one [`CheckResult`] per check, gathered in a [`CheckReport`].

use std::fmt;
use std::time::{Duration, Instant};

/// One check's outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckResult {
    /// What was checked, e.g. `dispatch/task-chain`.
    pub name: String,
    /// Whether it passed.
    pub passed: bool,
    /// What was seen (on failure: what differed).
    pub detail: String,
    /// How long it took.
    pub elapsed: Duration,
}

/// The outcomes of a group of checks.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CheckReport {
    /// Every check, in the order run.
    pub results: Vec<CheckResult>,
}

impl CheckReport {
    /// Whether every check passed (an empty report passes).
    pub fn passed(&self) -> bool {
        self.results.iter().all(|r| r.passed)
    }

    /// The failed checks.
    pub fn failures(&self) -> impl Iterator<Item = &CheckResult> {
        self.results.iter().filter(|r| !r.passed)
    }

    /// Appends another report's results.
    pub fn extend(&mut self, other: CheckReport) {
        self.results.extend(other.results);
    }

    /// The value a group of checks needs; on an error, `None`, and check `name` fails with it.
    pub(super) fn setup<T>(&mut self, name: &str, r: Result<T, String>) -> Option<T> {
        match r {
            Ok(v) => Some(v),
            Err(e) => {
                self.record(name, || Err(e));
                None
            }
        }
    }

    /// Runs `f` as check `name` and records its outcome.
    pub(super) fn record(&mut self, name: &str, f: impl FnOnce() -> Result<String, String>) {
        let start = Instant::now();
        let (passed, detail) = match f() {
            Ok(d) => (true, d),
            Err(d) => (false, d),
        };
        self.results.push(CheckResult {
            name: name.to_string(),
            passed,
            detail,
            elapsed: start.elapsed(),
        });
    }
}

impl fmt::Display for CheckReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for r in &self.results {
            writeln!(
                f,
                "{} {} ({:.2} s): {}",
                if r.passed { "PASS" } else { "FAIL" },
                r.name,
                r.elapsed.as_secs_f64(),
                r.detail
            )?;
        }
        let failed = self.failures().count();
        write!(
            f,
            "{} checks, {} passed, {} failed",
            self.results.len(),
            self.results.len() - failed,
            failed
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_passes_only_without_failures() {
        let mut r = CheckReport::default();
        assert!(r.passed());
        r.record("a", || Ok("fine".into()));
        assert!(r.passed());
        r.record("b", || Err("broken".into()));
        assert!(!r.passed());
        assert_eq!(r.failures().count(), 1);
        let text = r.to_string();
        assert!(text.contains("PASS a") && text.contains("FAIL b") && text.ends_with("2 checks, 1 passed, 1 failed"));
    }
}
