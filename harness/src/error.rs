//! Error kinds that decide hookbench's exit code: bad input exits 2, any other failure exits 1.

/// Bad input from the user; `main` exits with code 2 when the error chain holds one of these.
///
/// For example an unknown suite, malformed TOML, absurd sizes, an `--out` that is a file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct UsageError {
    /// What is wrong, naming the bad value, and what to do instead.
    pub message: String,
}

impl UsageError {
    /// A usage error with `message`.
    pub fn new(message: impl Into<String>) -> UsageError {
        UsageError {
            message: message.into(),
        }
    }
}

/// Exit code for bad input.
pub const EXIT_USAGE: i32 = 2;
/// Exit code for any other failure.
pub const EXIT_FAILURE: i32 = 1;

/// The exit code for an error chain, from the kinds of error it holds.
///
/// [`EXIT_USAGE`] if any cause is a [`UsageError`], [`EXIT_INTERRUPTED`] if it is an
/// [`Interrupted`], else [`EXIT_FAILURE`].
pub fn exit_code(err: &anyhow::Error) -> i32 {
    if err.chain().any(|c| c.downcast_ref::<UsageError>().is_some()) {
        EXIT_USAGE
    } else if err.chain().any(|c| c.downcast_ref::<Interrupted>().is_some()) {
        EXIT_INTERRUPTED
    } else {
        EXIT_FAILURE
    }
}

/// The run was stopped by SIGINT or SIGTERM; what was measured before is saved.
///
/// `main` exits with [`EXIT_INTERRUPTED`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("interrupted by a signal; the cells measured so far are saved in {dir} (results.json has \"complete\": false)")]
pub struct Interrupted {
    /// The run directory.
    pub dir: String,
}

/// Exit code after SIGINT or SIGTERM (128 + SIGINT, as shells report it).
pub const EXIT_INTERRUPTED: i32 = 130;
