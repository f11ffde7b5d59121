//! The root check of root-only tests: skip when not root, or fail when CI says it runs as root.
//!
//! A test that needs root prints `SKIPPED <test>: <why>` and passes when run unprivileged, so a
//! developer's `cargo test` works anywhere. CI runs as root and sets [`REQUIRE_ROOT_ENV`]: there a
//! root-only test that finds itself unprivileged fails instead, so it can never pass silently.

/// The environment variable that turns a root-only test's skip into a failure (value `1`).
pub const REQUIRE_ROOT_ENV: &str = "HOOKBENCH_REQUIRE_ROOT";

/// Whether the calling process is root (effective uid 0).
pub fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// Whether a root-only test may run: `true` as root, else it skips or fails as asked.
///
/// When not root it prints `SKIPPED <test>: <why>` and returns `false`, or panics (failing the
/// test) when [`REQUIRE_ROOT_ENV`] is `1`. For tests only.
pub fn root_or_skip(test: &str, why: &str) -> bool {
    if is_root() {
        return true;
    }
    let required = std::env::var(REQUIRE_ROOT_ENV).is_ok_and(|v| v == "1");
    assert!(!required, "{REQUIRE_ROOT_ENV}=1 but {test} runs unprivileged: {why}");
    eprintln!("SKIPPED {test}: {why}");
    false
}

/// [`root_or_skip`] for a test that loads BPF programs, which only root may do.
pub fn root_or_skip_bpf(test: &str) -> bool {
    root_or_skip(test, "needs root to load BPF programs")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_runs_and_an_unprivileged_test_skips_or_fails_as_asked() {
        if is_root() {
            assert!(root_or_skip("t", "needs root"));
            return;
        }
        if std::env::var(REQUIRE_ROOT_ENV).is_ok_and(|v| v == "1") {
            assert!(std::panic::catch_unwind(|| root_or_skip("t", "needs root")).is_err());
        } else {
            assert!(!root_or_skip("t", "needs root"));
        }
    }
}
