//! Runs hookbench-kmod's in-guest checks against the loaded hookbench.ko and prints the report.
//!
//! Exits 1 if any check failed, 2 on a bad argument. Needs root and `/dev/hookbench`.
//!
//! Usage: `kmod_check [--fuzz-secs N] [--seed S]` (defaults: 10 s, seed 1; `--fuzz-secs 0`
//! skips the fuzz loop).

use std::process::ExitCode;
use std::time::Duration;

use hookbench_kmod::check::{run_all, CheckOptions};

fn main() -> ExitCode {
    let mut opts = CheckOptions::default();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let value = args.next();
        let parsed = match (a.as_str(), value.as_deref()) {
            ("--fuzz-secs", Some(v)) => v.parse::<f64>().ok().map(|s| opts.fuzz = Duration::from_secs_f64(s)),
            ("--seed", Some(v)) => v.parse::<u64>().ok().map(|s| opts.seed = s),
            _ => None,
        };
        if parsed.is_none() {
            eprintln!("usage: kmod_check [--fuzz-secs N] [--seed S]");
            return ExitCode::from(2);
        }
    }
    let report = run_all(&opts);
    println!("{report}");
    if report.passed() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
