//! The one figure that decides a claim's verdict, for exports that carry one number per claim.
//!
//! A "grows, flat" claim (1, 3, 4, 5, 7) is decided by the flat side's slope, tested against the
//! margin by TOST; claim 2 by the difference of the two per-program slopes, also tested against
//! the margin; claim 6 by how much more the chain's slope rises than the array's. The claims
//! engine saves these under their names in [`ClaimResult::numbers`]: the figure tested for
//! equivalence is the one with a `_ci90_lo` entry (its value under `NAME_slope`, or `NAME` for a
//! difference); claim 6's is `rise_difference`. LAVA test cases and KCIDB tests report it.

use crate::schema::{ClaimResult, Results};

/// The figure that decided a claim, with its 95% interval and unit.
#[derive(Debug, Clone, PartialEq)]
pub struct Deciding {
    /// Its name among the claim's numbers, e.g. `number-only filters`, `difference`.
    pub name: String,
    /// The figure, in `unit`.
    pub value: f64,
    /// Its 95% confidence interval, when the claim saved one.
    pub ci95: Option<[f64; 2]>,
    /// The fits' unit per unit of their x axis, e.g. `ns/program`, `bytes/cgroup`.
    pub unit: String,
}

/// Claim 6's figure: the chain's rise less the array's, per program.
const RISE_DIFFERENCE: &str = "rise_difference";

/// The figure that decided `claim` of `results`, or `None` when the claim was not run.
pub fn deciding(results: &Results, claim: &ClaimResult) -> Option<Deciding> {
    let n = &claim.numbers;
    let name = n
        .keys()
        .find_map(|k| k.strip_suffix("_ci90_lo"))
        .or_else(|| n.contains_key(RISE_DIFFERENCE).then_some(RISE_DIFFERENCE))?;
    let value = n.get(&format!("{name}_slope")).or_else(|| n.get(name)).copied()?;
    let ci95 = match (n.get(&format!("{name}_ci95_lo")), n.get(&format!("{name}_ci95_hi"))) {
        (Some(&lo), Some(&hi)) => Some([lo, hi]),
        _ => None,
    };
    Some(Deciding {
        name: name.to_string(),
        value,
        ci95,
        unit: unit_of(results, claim),
    })
}

/// The unit of a claim's slopes: its first compared fit's cell unit per unit of the fit's x.
///
/// `ns` per `programs` reads `ns/program`; without a matching cell the metric's name is used.
fn unit_of(results: &Results, claim: &ClaimResult) -> String {
    let Some(c) = claim.compared.first() else {
        return "1".to_string();
    };
    let metric = results.fits.iter().find(|f| c.is_over(f)).map(|f| f.metric.as_str());
    let unit = results
        .cells
        .iter()
        .find(|cell| {
            cell.suite == c.suite
                && cell.backend == c.backend
                && cell.mechanism == c.mechanism
                && metric.is_none_or(|m| cell.metric == m)
        })
        .map(|cell| cell.unit.clone())
        .or_else(|| metric.map(str::to_string))
        .unwrap_or_else(|| "1".to_string());
    let per = c.x.strip_suffix('s').unwrap_or(&c.x);
    format!("{unit}/{per}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::Verdict;

    fn smoke() -> Results {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/results-smoke.json");
        Results::read(std::path::Path::new(path)).expect("the smoke results read")
    }

    fn claim<'a>(r: &'a Results, id: u32, backend: &str) -> &'a ClaimResult {
        r.claims
            .iter()
            .find(|c| c.id == id && c.backend == backend)
            .expect("the claim is in the smoke run")
    }

    #[test]
    fn each_kind_of_claim_is_decided_by_its_tested_figure() {
        let r = smoke();
        // Claim 7: the number-only filters' slope, flat within the margin.
        let d = deciding(&r, claim(&r, 7, "kernel")).expect("claim 7 ran");
        assert_eq!(
            (d.name.as_str(), d.unit.as_str()),
            ("number-only filters", "ns/program")
        );
        assert!((d.value - -0.006241237223993667).abs() < 1e-15, "{d:?}");
        let ci = d.ci95.expect("an interval");
        assert!(ci[0] < d.value && d.value < ci[1], "{d:?}");
        // Claim 2: the difference of the two slopes (refuted on this kernel).
        let c2 = claim(&r, 2, "kernel");
        assert_eq!(c2.verdict, Verdict::Refuted);
        let d = deciding(&r, c2).expect("claim 2 ran");
        assert_eq!(d.name, "difference");
        assert!((d.value - 14.152833758912877).abs() < 1e-12, "{d:?}");
        // Claim 4: task install's slope per descendant.
        let d = deciding(&r, claim(&r, 4, "model")).expect("claim 4 ran");
        assert_eq!((d.name.as_str(), d.unit.as_str()), ("task install", "ns/descendant"));
        // Claim 6: the difference of the rises.
        let d = deciding(&r, claim(&r, 6, "model")).expect("claim 6 ran");
        assert_eq!((d.name.as_str(), d.unit.as_str()), (RISE_DIFFERENCE, "ns/program"));
        assert!((d.value - 1.7005828079368674).abs() < 1e-12, "{d:?}");
        // A claim that did not run has no figure.
        assert_eq!(deciding(&r, claim(&r, 1, "kernel")), None);
    }
}
