//! The gate's reports: a summary for the terminal, Markdown for a pull
//! request comment (verdict first, a table per task, the documents that
//! flipped from right to wrong), JUnit XML (one test case per task) and JSON.

use std::fmt::Write;

use super::{AverageOutcome, GateReport, Mode, Plan, TaskOutcome, Verdict};

fn points(x: f64) -> String {
    format!("{:+.2}", 100.0 * x)
}

fn tasks(n: usize) -> String {
    if n == 1 {
        "1 task".into()
    } else {
        format!("{n} tasks")
    }
}

fn score(x: f64) -> String {
    format!("{:.2}", 100.0 * x)
}

/// What a task's margin is called: its own margin, or its guard.
fn limit(mode: Mode) -> &'static str {
    match mode {
        Mode::Average => "guard",
        Mode::PerTask => "margin",
    }
}

fn task_line(t: &TaskOutcome, mode: Mode) -> String {
    let d = &t.difference;
    format!(
        "{verdict:<12} {task}: {metric} {base} -> {cand} ({diff} points, one-sided bounds [{lo}, {hi}], \
         {limit} -{margin}, {n} paired documents{flips}{power})",
        limit = limit(mode),
        verdict = t.verdict.name(),
        task = t.task,
        metric = t.metric,
        base = score(d.baseline),
        cand = score(d.candidate),
        diff = points(d.mean),
        lo = points(t.lower),
        hi = points(t.upper),
        margin = t.margin,
        n = d.documents,
        flips = d
            .discordant
            .map(|(l, g)| format!(", {l} lost, {g} gained"))
            .unwrap_or_default(),
        power = if t.underpowered && t.verdict == Verdict::Inconclusive {
            format!(
                ", underpowered: detects {:.2} points at best",
                100.0 * t.minimum_detectable_effect
            )
        } else {
            String::new()
        },
    )
}

/// "points", or "normalised points" when the average is normalised.
fn scale(a: &AverageOutcome) -> &'static str {
    if a.normalised {
        "normalised points"
    } else {
        "points"
    }
}

/// The average's line in the summary (mode average).
fn average_line(a: &AverageOutcome) -> String {
    format!(
        "{:<12} average of {}: {} {} (one-sided bounds [{}, {}], margin -{}, {} paired documents{})",
        a.verdict.name(),
        tasks(a.tasks),
        points(a.mean),
        scale(a),
        points(a.lower),
        points(a.upper),
        a.margin,
        a.documents,
        if a.underpowered && a.verdict == Verdict::Inconclusive {
            format!(
                ", underpowered: detects {:.2} points at best",
                100.0 * a.minimum_detectable_effect
            )
        } else {
            String::new()
        }
    )
}

/// The summary printed on stdout.
pub fn summary(report: &GateReport) -> String {
    let mut out = format!(
        "{}: {} vs {} ({})\n",
        report.verdict.name(),
        report.candidate.variant,
        report.baseline.variant,
        report.reason
    );
    if report.mode == Mode::Average {
        if let Some(a) = &report.average {
            let _ = writeln!(out, "  {}", average_line(a));
        }
        out.push_str("  guards (a task that regresses beyond its guard fails the gate):\n");
        for t in &report.tasks {
            let _ = writeln!(out, "  {}", task_line(t, report.mode));
        }
        return out;
    }
    for t in &report.tasks {
        let _ = writeln!(out, "  {}", task_line(t, report.mode));
    }
    if let Some(a) = &report.average {
        let _ = writeln!(
            out,
            "  {:<12} average: {} points (lower bound {}, margin -{})",
            a.verdict.name(),
            points(a.mean),
            points(a.lower),
            a.margin
        );
    }
    out
}

fn markdown_escape(text: &str) -> String {
    text.chars()
        .flat_map(|c| match c {
            '|' | '<' | '>' | '*' | '_' | '`' | '[' | ']' | '\\' => vec!['\\', c],
            c => vec![c],
        })
        .collect()
}

/// A pull-request comment. With `site`, document ids link to the
/// candidate's page of the leaderboard site.
pub fn markdown(report: &GateReport, site: Option<&str>) -> String {
    let icon = match report.verdict {
        Verdict::Pass => "✅",
        Verdict::Fail => "❌",
        Verdict::Inconclusive => "⚠️",
    };
    let mut out = format!(
        "## {icon} {}: {} against {}\n\n{}.\n\n",
        report.verdict.name(),
        markdown_escape(&report.candidate.variant),
        markdown_escape(&report.baseline.variant),
        markdown_escape(&report.reason)
    );
    if report.mode == Mode::Average {
        if let Some(a) = &report.average {
            out.push_str(&average_markdown(report, a));
        }
        out.push_str(
            "### Guards\n\nA task that regresses beyond its guard fails the gate on its own.\n\n",
        );
    }
    let _ = writeln!(
        out,
        "| task | verdict | baseline | candidate | Δ points | one-sided bounds | {} | documents | detectable | lost / gained | McNemar p |",
        limit(report.mode)
    );
    out.push_str("|---|---|---|---|---|---|---|---|---|---|---|\n");
    for t in &report.tasks {
        let d = &t.difference;
        let _ = writeln!(
            out,
            "| {} | {}{} | {} | {} | {} | [{}, {}] | -{} | {} | {:.2} | {} | {} |",
            markdown_escape(&t.task),
            t.verdict.name(),
            if t.underpowered && t.verdict == Verdict::Inconclusive {
                " (underpowered)"
            } else {
                ""
            },
            score(d.baseline),
            score(d.candidate),
            points(d.mean),
            points(t.lower),
            points(t.upper),
            t.margin,
            d.documents,
            100.0 * t.minimum_detectable_effect,
            d.discordant
                .map(|(l, g)| format!("{l} / {g}"))
                .unwrap_or_else(|| "–".into()),
            t.mcnemar_p
                .map(|p| if p < 0.001 {
                    format!("{p:.1e}")
                } else {
                    format!("{p:.3}")
                })
                .unwrap_or_else(|| "–".into()),
        );
    }
    if let (Some(a), Mode::PerTask) = (&report.average, report.mode) {
        let _ = writeln!(
            out,
            "\nAverage over tasks: {} points (lower bound {}, margin -{}): {}.",
            points(a.mean),
            points(a.lower),
            a.margin,
            a.verdict.name()
        );
    }
    let flipped: Vec<&TaskOutcome> = report
        .tasks
        .iter()
        .filter(|t| !t.flipped_to_wrong.is_empty())
        .collect();
    if !flipped.is_empty() {
        out.push_str("\n<details><summary>Documents right in the baseline, wrong in the candidate</summary>\n\n");
        for t in flipped {
            let ids: Vec<String> = t
                .flipped_to_wrong
                .iter()
                .take(50)
                .map(|id| match site {
                    Some(base) => format!(
                        "[{id}]({}/{}#doc-{}-{id})",
                        base.trim_end_matches('/'),
                        crate::leaderboard::variant_page(&report.candidate.variant),
                        t.task
                    ),
                    None => id.to_string(),
                })
                .collect();
            let more = t.flipped_to_wrong.len().saturating_sub(50);
            let _ = writeln!(
                out,
                "- {}: {}{}",
                markdown_escape(&t.task),
                ids.join(", "),
                if more > 0 {
                    format!(" and {more} more")
                } else {
                    String::new()
                }
            );
        }
        out.push_str("\n</details>\n");
    }
    let _ = writeln!(
        out,
        "\n<sub>Paired per document; Holm-corrected at alpha {}. Runs: baseline {}, candidate {}.</sub>",
        report.alpha,
        markdown_escape(&report.baseline.run_id),
        markdown_escape(&report.candidate.run_id)
    );
    out
}

/// The average's section of the Markdown report: its verdict, and what
/// would have to change for a PASS.
fn average_markdown(report: &GateReport, a: &AverageOutcome) -> String {
    let mut out = format!(
        "**Average over {}** ({}{}): {} (one-sided bounds [{}, {}]), margin -{}, \
         {} paired documents: **{}**.\n\n",
        tasks(a.tasks),
        scale(a),
        if a.normalised {
            ", as the leaderboard ranks"
        } else {
            ""
        },
        points(a.mean),
        points(a.lower),
        points(a.upper),
        a.margin,
        a.documents,
        a.verdict.name()
    );
    if a.verdict == Verdict::Pass {
        return out;
    }
    let guards_failed = report
        .tasks
        .iter()
        .any(|t| t.required && t.verdict == Verdict::Fail);
    if a.verdict == Verdict::Inconclusive {
        match a.documents_factor {
            Some(factor) => {
                let mut by_share: Vec<&TaskOutcome> = report
                    .tasks
                    .iter()
                    .filter(|t| t.variance_share.is_some_and(|s| s > 0.0))
                    .collect();
                let share = |t: &TaskOutcome| t.variance_share.unwrap_or_default();
                by_share.sort_by(|x, y| share(y).total_cmp(&share(x)));
                let grown: Vec<String> = by_share
                    .iter()
                    .map(|t| {
                        format!(
                            "{} {} → {} ({:.0}% of the uncertainty)",
                            markdown_escape(&t.task),
                            t.difference.documents,
                            (t.difference.documents as f64 * factor).ceil(),
                            100.0 * t.variance_share.unwrap_or_default()
                        )
                    })
                    .collect();
                let _ = write!(
                    out,
                    "**What would decide:** at the same difference, about {factor:.1} times the \
                     documents (the average can resolve {:.2} points with this many). Per task: {}. \
                     Grow the tasks that carry the most uncertainty first.\n\n",
                    100.0 * a.minimum_detectable_effect,
                    grown.join("; ")
                );
            }
            None => out.push_str(
                "**What would decide:** the measured average is itself at or below the margin, \
                 so more documents would not make it pass; the candidate would have to lose less.\n\n",
            ),
        }
    } else if !guards_failed {
        out.push_str(
            "The regression of the average is established; more documents would not change that.\n\n",
        );
    }
    out
}

fn xml_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The checks a report lists: the average first (mode average), then
/// each task, as (name, verdict, line).
fn checks(report: &GateReport) -> Vec<(String, Verdict, String)> {
    let mut out = Vec::new();
    if let (Mode::Average, Some(a)) = (report.mode, &report.average) {
        out.push(("average".to_string(), a.verdict, average_line(a)));
    }
    for t in &report.tasks {
        out.push((t.task.clone(), t.verdict, task_line(t, report.mode)));
    }
    out
}

/// JUnit XML: one test case per check (the average, then each task);
/// FAIL is a failure, INCONCLUSIVE is skipped with its reason.
pub fn junit(report: &GateReport) -> String {
    let checks = checks(report);
    let count = |v: Verdict| checks.iter().filter(|c| c.1 == v).count();
    let mut out = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuite name=\"assay gate {}\" tests=\"{}\" failures=\"{}\" skipped=\"{}\">\n",
        xml_escape(&report.candidate.variant),
        checks.len(),
        count(Verdict::Fail),
        count(Verdict::Inconclusive)
    );
    for (name, verdict, line) in &checks {
        let line = xml_escape(line);
        let _ = write!(
            out,
            "  <testcase classname=\"assay.gate\" name=\"{}\">",
            xml_escape(name)
        );
        match verdict {
            Verdict::Pass => {}
            Verdict::Fail => {
                let _ = write!(out, "<failure message=\"{line}\">{line}</failure>");
            }
            Verdict::Inconclusive => {
                let _ = write!(out, "<skipped message=\"{line}\"/>");
            }
        }
        out.push_str("</testcase>\n");
    }
    out.push_str("</testsuite>\n");
    out
}

/// GitHub Actions workflow commands: an error per failing check, a warning
/// per inconclusive one that decides (values escaped as the runner
/// expects).
pub fn github_annotations(report: &GateReport) -> String {
    let escape = |s: &str| {
        s.replace('%', "%25")
            .replace('\r', "%0D")
            .replace('\n', "%0A")
            .replace(':', "%3A")
            .replace(',', "%2C")
    };
    let mut out = String::new();
    for (name, verdict, line) in checks(report) {
        let kind = match verdict {
            Verdict::Pass => continue,
            Verdict::Fail => "error",
            // A guard that cannot tell does not decide the default gate.
            Verdict::Inconclusive if report.mode == Mode::Average && name != "average" => continue,
            Verdict::Inconclusive => "warning",
        };
        let title = escape(&format!("assay gate {} {name}", report.candidate.variant));
        let message = line
            .replace('%', "%25")
            .replace('\r', "%0D")
            .replace('\n', "%0A");
        let _ = writeln!(out, "::{kind} title={title}::{message}");
    }
    out
}

/// `assay gate --plan`'s answer.
pub fn plan(plan: &Plan) -> String {
    let basis = match plan.assumed_changed {
        Some(share) => format!(
            "from the baseline's documents, assuming a candidate answers {:.0}% of them anew (--changed)",
            100.0 * share
        ),
        None => "from the two runs' paired documents".to_string(),
    };
    let scale = if plan.normalised {
        "normalised points"
    } else {
        "points"
    };
    let mut out = format!(
        "what the gate can resolve with power {} at alpha {}, {basis}:\n",
        plan.power, plan.alpha
    );
    let count = |n: u64| {
        let digits = n.to_string();
        let mut grouped = String::new();
        for (i, c) in digits.chars().enumerate() {
            if i > 0 && (digits.len() - i) % 3 == 0 {
                grouped.push(',');
            }
            grouped.push(c);
        }
        grouped
    };
    if plan.mode == Mode::Average {
        let _ = writeln!(
            out,
            "  average of {}: resolves a margin of {:.2} {scale}; a {}-point margin needs {}",
            tasks(plan.tasks.iter().filter(|t| t.weight > 0.0).count()),
            100.0 * plan.average_detectable,
            plan.margin,
            if plan.average_factor <= 1.0 {
                "no more documents".to_string()
            } else {
                format!("{:.1} times the documents", plan.average_factor)
            }
        );
    }
    for t in &plan.tasks {
        let alone = format!(
            "{}: {} documents, resolves {:.2} points alone ({} -{}: {})",
            t.task,
            count(t.documents as u64),
            100.0 * t.detectable,
            limit(plan.mode),
            t.margin,
            if t.needed_alone <= t.documents as u64 {
                "enough".to_string()
            } else {
                format!("{} needed", count(t.needed_alone))
            }
        );
        let average = match plan.mode {
            Mode::Average if t.weight > 0.0 && t.needed_for_average > t.documents as u64 => {
                format!(
                    "; for the average at -{}: {}",
                    plan.margin,
                    count(t.needed_for_average)
                )
            }
            Mode::Average if t.weight == 0.0 => "; not counted in the average".to_string(),
            _ => String::new(),
        };
        let _ = writeln!(out, "  {alone}{average}");
    }
    out
}
