//! Golden-file tests of the renderers over a fixed results file (`tests/data/results-smoke.json`,
//! a trimmed smoke run of both backends): `evidence.txt` must match its snapshot byte for byte
//! (`tests/snapshots/`, reviewed with `cargo insta review`), keep every line within 72 ASCII
//! columns, carry the header fields and a verdict line for every claim on every backend;
//! `report.html` must be self-contained with at least six charts.

use hookbench_reports::evidence::{render, MAX_COLUMNS};
use hookbench_reports::schema::Results;
use std::path::Path;

fn fixture() -> Results {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/results-smoke.json");
    Results::read(&path).expect("the fixture is a results file of this schema")
}

#[test]
fn evidence_matches_the_golden_file() {
    insta::assert_snapshot!("evidence-smoke", render(&fixture()));
}

#[test]
fn evidence_is_narrow_ascii_with_the_header_fields_and_every_verdict() {
    let r = fixture();
    let text = render(&r);
    for (i, line) in text.lines().enumerate() {
        assert!(line.is_ascii(), "line {} is not ASCII: {line}", i + 1);
        assert!(line.chars().count() <= MAX_COLUMNS, "line {} too long: {line}", i + 1);
    }
    for field in [
        "kernel: ",
        "config: ",
        "cpu: ",
        "mitigations: ",
        "governor: ",
        "bpf jit: ",
        "clock: ",
        "hookbench: ",
        "command: ",
    ] {
        assert!(text.lines().any(|l| l.starts_with(field)), "header lacks '{field}'");
    }
    assert!(text.contains("config: BPF_LSM=y"), "config options are listed");
    for backend in ["kernel", "model"] {
        for id in 1..=7 {
            let claim = text
                .split(&format!("== claim {id}: "))
                .nth(1)
                .unwrap_or_else(|| panic!("no section for claim {id}"));
            let section = claim.split("\n== ").next().unwrap_or("");
            let verdict = r
                .claims
                .iter()
                .find(|c| c.id == id && c.backend == backend)
                .expect("the fixture has every claim on both backends");
            let expected = format!("verdict [{backend}]: {}:", verdict.verdict.as_str().to_uppercase());
            assert!(section.contains(&expected), "claim {id} lacks '{expected}':\n{section}");
        }
    }
    let reproduce = text.split("== reproduce").nth(1).expect("a reproduce section");
    assert!(
        reproduce.contains("hookbench run --backend auto --profile smoke"),
        "{reproduce}"
    );
}

#[test]
fn claim_tables_show_every_fit_of_the_claims_suites_with_its_slope() {
    let r = fixture();
    let text = render(&r);
    let claim1 = text
        .split("== claim 1: ")
        .nth(1)
        .expect("claim 1")
        .split("\n== ")
        .next()
        .unwrap_or("");
    for f in r.fits.iter().filter(|f| f.suite == "foreign") {
        let row = claim1
            .lines()
            .find(|l| l.trim_start().starts_with(&f.mechanism))
            .unwrap_or_else(|| panic!("claim 1 has no row for {}:\n{claim1}", f.mechanism));
        let slope = hookbench_reports::evidence::fmt_num(Some(f.slope));
        assert!(
            row.contains(&slope),
            "row for {} lacks slope {slope}: {row}",
            f.mechanism
        );
    }
    // The seccomp split appears under claim 7 for the kernel's argument-loading filters.
    let claim7 = text.split("== claim 7: ").nth(1).expect("claim 7");
    assert!(claim7.contains("seccomp-arg-load: native"), "{claim7}");
}

#[test]
fn report_html_is_self_contained_with_six_charts() {
    let html = hookbench_reports::html::render(&fixture());
    let charts = html.matches("<svg").count();
    assert!(charts >= 6, "{charts} charts");
    assert!(html.contains("Summary: verdicts"));
    for attr in ["src=", "href="] {
        for (i, _) in html.match_indices(attr) {
            let value = &html[i + attr.len()..html.len().min(i + attr.len() + 12)];
            assert!(
                !value.contains("http") && !value.contains("//"),
                "external reference at {i}: {value}"
            );
        }
    }
}

#[test]
fn an_emulated_guest_is_marked_in_both_renderings() {
    let mut r = fixture();
    assert!(!render(&r).contains("emulated:"), "the fixture is not emulated");
    r.environment["emulated"] = serde_json::json!("qemu tcg (hookbench rig guest)");
    assert!(render(&r).contains("emulated: qemu tcg (hookbench rig guest) (timings not comparable"));
    assert!(hookbench_reports::html::render(&r).contains("<b>Emulated CPU</b>: qemu tcg"));
}
