//! How often `assay gate` gives the wrong verdict, by simulation through the
//! gate's own decision code (`assay::gate::judge`).
//!
//! Each simulated gate pairs two runs of one task over 1,000 documents:
//! the baseline is right on each document with probability 0.6; a share of
//! the documents (6% by default) flips between the runs, split between
//! right-to-wrong and wrong-to-right so that the true difference is what
//! the case says. The policy is the default one (margin 1 point, alpha
//! 0.05). Three cases, 2,000 gates each:
//!
//! - true difference = -margin: PASS must come at most alpha of the time;
//! - true difference = 0: FAIL must come at most alpha of the time;
//! - true difference = -3 points: FAIL must come at least 80% of the time.
//!
//! Run: `cargo run --release --example gate_simulation [-- GATES [SEED]]`.

use assay::gate::{judge, Policy, TaskPairs, Verdict};
use assay::stats::paired::SplitMix64;

const DOCUMENTS: usize = 1000;
const ACCURACY: f64 = 0.6;
const FLIPPING: f64 = 0.06;

/// One simulated pair of runs whose true difference is `difference`.
fn simulate(rng: &mut SplitMix64, difference: f64, policy: &Policy) -> Verdict {
    // P(lost) + P(gained) = FLIPPING; P(gained) - P(lost) = difference.
    let lost = (FLIPPING - difference) / 2.0;
    let gained = (FLIPPING + difference) / 2.0;
    let mut baseline = Vec::with_capacity(DOCUMENTS);
    let mut candidate = Vec::with_capacity(DOCUMENTS);
    for _ in 0..DOCUMENTS {
        let right = rng.next_f64() < ACCURACY;
        let flips = if right {
            rng.next_f64() < lost / ACCURACY
        } else {
            rng.next_f64() < gained / (1.0 - ACCURACY)
        };
        baseline.push(f64::from(u8::from(right)));
        candidate.push(f64::from(u8::from(right != flips)));
    }
    let pairs = vec![TaskPairs {
        task: "t".into(),
        metric: "acc".into(),
        filter: "none".into(),
        rules: policy.task("t"),
        baseline,
        candidate,
        ids: (0..DOCUMENTS as u32).collect(),
        clusters: None,
        same_model: false,
    }];
    judge(pairs, policy).expect("a judgement").verdict
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let gates: usize = args.first().and_then(|a| a.parse().ok()).unwrap_or(2000);
    let seed: u64 = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(20261127);
    let policy = Policy::default();
    let margin = policy.default.margin / 100.0;
    let alpha = policy.default.alpha;
    println!(
        "{gates} gates per case: {DOCUMENTS} documents, baseline accuracy {ACCURACY}, \
         {:.0}% flipping, margin {} point, alpha {alpha}",
        FLIPPING * 100.0,
        policy.default.margin
    );
    println!(
        "{:<34} {:>7} {:>7} {:>13}  check",
        "case", "PASS", "FAIL", "INCONCLUSIVE"
    );
    let mut rng = SplitMix64(seed);
    let mut all_ok = true;
    let cases: [(&str, f64, Verdict, bool, f64); 3] = [
        (
            "true difference = -margin",
            -margin,
            Verdict::Pass,
            false,
            alpha,
        ),
        ("true difference = 0", 0.0, Verdict::Fail, false, alpha),
        (
            "true difference = -3 points",
            -0.03,
            Verdict::Fail,
            true,
            0.8,
        ),
    ];
    for (name, difference, watched, at_least, bound) in cases {
        let mut counts = [0usize; 3];
        for _ in 0..gates {
            let i = match simulate(&mut rng, difference, &policy) {
                Verdict::Pass => 0,
                Verdict::Fail => 1,
                Verdict::Inconclusive => 2,
            };
            counts[i] += 1;
        }
        let rate = |n: usize| n as f64 / gates as f64;
        let watched_rate = rate(counts[if watched == Verdict::Pass { 0 } else { 1 }]);
        let ok = if at_least {
            watched_rate >= bound
        } else {
            watched_rate <= bound
        };
        all_ok &= ok;
        println!(
            "{name:<34} {:>7.4} {:>7.4} {:>13.4}  {} rate {watched_rate:.4} {} {bound}: {}",
            rate(counts[0]),
            rate(counts[1]),
            rate(counts[2]),
            watched.name(),
            if at_least { ">=" } else { "<=" },
            if ok { "ok" } else { "NOT MET" }
        );
    }
    if !all_ok {
        std::process::exit(1);
    }
}
