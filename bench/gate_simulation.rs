//! How often `assay gate` gives each verdict, by simulation through the
//! gate's own decision code (`assay::gate::judge`).
//!
//! A simulated gate pairs two runs of a suite: on every task the baseline
//! is right on each document with probability 0.6, and a share of the
//! documents (6% by default, more where a case needs it) flips between the
//! runs, split between right-to-wrong and wrong-to-right so that the true
//! difference is what the case says.
//!
//! The default policy (mode average: the suite's average at a 1-point
//! margin, a 5-point guard per task, alpha 0.05), no suite file, so the
//! margin is in raw points of accuracy. Suites of 4 and 6 tasks with 200,
//! 1,000, 2,000 and 5,000 documents each, four cases:
//!
//! - equal: no true difference anywhere (PASS is wanted);
//! - at the margin: every task 1 point worse, so the average is exactly at
//!   the margin (PASS must come at most alpha of the time);
//! - average -3: every task 3 points worse (FAIL is wanted);
//! - one task -10: one task 10 points worse, the others unchanged (FAIL is
//!   wanted).
//!
//! Then today's per-task policy (`mode = "per-task"`) on one task of 1,000
//! documents, as before: at the margin, no difference, 3 points worse.
//!
//! Run: `cargo run --release --example gate_simulation [-- GATES [SEED]]`.
//! It exits non-zero if a check in the table is not met.

use assay::gate::{judge, Mode, Policy, TaskPairs, Verdict};
use assay::stats::paired::SplitMix64;

const ACCURACY: f64 = 0.6;
const FLIPPING: f64 = 0.06;

/// One task's paired runs with true difference `difference`.
fn task(rng: &mut SplitMix64, name: &str, documents: usize, difference: f64) -> TaskPairs {
    // P(lost) + P(gained) = flipping; P(gained) - P(lost) = difference.
    let flipping = FLIPPING.max(difference.abs() + 0.02);
    let lost = (flipping - difference) / 2.0;
    let gained = (flipping + difference) / 2.0;
    let mut baseline = Vec::with_capacity(documents);
    let mut candidate = Vec::with_capacity(documents);
    for _ in 0..documents {
        let right = rng.next_f64() < ACCURACY;
        let flips = if right {
            rng.next_f64() < lost / ACCURACY
        } else {
            rng.next_f64() < gained / (1.0 - ACCURACY)
        };
        baseline.push(f64::from(u8::from(right)));
        candidate.push(f64::from(u8::from(right != flips)));
    }
    TaskPairs {
        task: name.to_string(),
        metric: "acc".into(),
        filter: "none".into(),
        rules: Policy::default().task(name),
        baseline,
        candidate,
        ids: (0..documents as u32).collect(),
        clusters: None,
        same_model: false,
        entry: name.to_string(),
        scale: 1.0,
    }
}

/// A check on one verdict's rate.
#[derive(Clone, Copy)]
struct Check {
    verdict: Verdict,
    at_least: bool,
    bound: f64,
}

/// One case: every gate's task differences, and what is checked.
struct Case {
    name: String,
    mode: Mode,
    documents: usize,
    differences: Vec<f64>,
    check: Option<Check>,
}

/// The share of PASS, FAIL and INCONCLUSIVE over `gates` gates.
fn rates(rng: &mut SplitMix64, case: &Case, policy: &Policy, gates: usize) -> [f64; 3] {
    let mut counts = [0usize; 3];
    for _ in 0..gates {
        let pairs = case
            .differences
            .iter()
            .enumerate()
            .map(|(i, d)| task(rng, &format!("t{i}"), case.documents, *d))
            .collect();
        let i = match judge(pairs, policy).expect("a judgement").verdict {
            Verdict::Pass => 0,
            Verdict::Fail => 1,
            Verdict::Inconclusive => 2,
        };
        counts[i] += 1;
    }
    counts.map(|n| n as f64 / gates as f64)
}

fn cases(margin: f64) -> Vec<Case> {
    let mut out = Vec::new();
    let check = |verdict, at_least, bound| {
        Some(Check {
            verdict,
            at_least,
            bound,
        })
    };
    for tasks in [4usize, 6] {
        for documents in [200usize, 1000, 2000, 5000] {
            let all = |d: f64| vec![d; tasks];
            let mut one = vec![0.0; tasks];
            one[0] = -0.10;
            let size = format!("{tasks} x {documents}");
            out.push(Case {
                name: format!("{size}: equal"),
                mode: Mode::Average,
                documents,
                differences: all(0.0),
                check: if tasks == 4 && documents == 2000 {
                    check(Verdict::Pass, true, 0.8)
                } else {
                    None
                },
            });
            out.push(Case {
                name: format!("{size}: at the margin"),
                mode: Mode::Average,
                documents,
                differences: all(-margin),
                check: check(Verdict::Pass, false, 0.05),
            });
            out.push(Case {
                name: format!("{size}: average -3"),
                mode: Mode::Average,
                documents,
                differences: all(-0.03),
                check: if documents >= 1000 {
                    check(Verdict::Fail, true, 0.8)
                } else {
                    None
                },
            });
            out.push(Case {
                name: format!("{size}: one task -10"),
                mode: Mode::Average,
                documents,
                differences: one,
                check: if documents >= 1000 {
                    check(Verdict::Fail, true, 0.8)
                } else {
                    None
                },
            });
        }
    }
    for (name, difference, c) in [
        (
            "per-task 1 x 1000: at the margin",
            -margin,
            check(Verdict::Pass, false, 0.05),
        ),
        (
            "per-task 1 x 1000: equal",
            0.0,
            check(Verdict::Fail, false, 0.05),
        ),
        (
            "per-task 1 x 1000: -3",
            -0.03,
            check(Verdict::Fail, true, 0.8),
        ),
    ] {
        out.push(Case {
            name: name.into(),
            mode: Mode::PerTask,
            documents: 1000,
            differences: vec![difference],
            check: c,
        });
    }
    out
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let gates: usize = args.first().and_then(|a| a.parse().ok()).unwrap_or(4000);
    let seed: u64 = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(20261203);
    let average = Policy::default();
    let mut per_task = Policy::default();
    per_task.default.mode = Mode::PerTask;
    let margin = average.default.margin / 100.0;
    println!(
        "{gates} gates per case; baseline accuracy {ACCURACY}, {:.0}% of documents flipping \
         (more where a task moves further); margin {} raw point(s), guard {} points, alpha {}",
        FLIPPING * 100.0,
        average.default.margin,
        average.default.guard,
        average.default.alpha
    );
    println!(
        "{:<34} {:>7} {:>7} {:>13}  check",
        "case (tasks x documents)", "PASS", "FAIL", "INCONCLUSIVE"
    );
    let mut rng = SplitMix64(seed);
    let mut all_ok = true;
    for case in cases(margin) {
        let policy = match case.mode {
            Mode::Average => &average,
            Mode::PerTask => &per_task,
        };
        let r = rates(&mut rng, &case, policy, gates);
        let verdict = match &case.check {
            Some(c) => {
                let rate = r[if c.verdict == Verdict::Pass { 0 } else { 1 }];
                let ok = if c.at_least {
                    rate >= c.bound
                } else {
                    rate <= c.bound
                };
                all_ok &= ok;
                format!(
                    "{} {} {}: {}",
                    c.verdict.name(),
                    if c.at_least { ">=" } else { "<=" },
                    c.bound,
                    if ok { "ok" } else { "NOT MET" }
                )
            }
            None => String::new(),
        };
        println!(
            "{:<34} {:>7.4} {:>7.4} {:>13.4}  {verdict}",
            case.name, r[0], r[1], r[2]
        );
    }
    if !all_ok {
        std::process::exit(1);
    }
}
