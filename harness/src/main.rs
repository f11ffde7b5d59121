//! Entry point of the `hookbench` binary: runs the CLI and turns an error into its exit code.
//!
//! It prints the error chain and exits 1 (failure), 2 (bad input) or 130 (interrupted).

fn main() {
    if let Err(err) = hookbench::cli::main() {
        eprintln!("hookbench: error: {err}");
        for cause in err.chain().skip(1) {
            eprintln!("  caused by: {cause}");
        }
        std::process::exit(hookbench::error::exit_code(&err));
    }
}
