//! The gate's reports: a summary for the terminal, Markdown for a pull
//! request comment (verdict first, a table per task, the documents that
//! flipped from right to wrong), JUnit XML (one test case per task) and JSON.

use std::fmt::Write;

use super::{GateReport, TaskOutcome, Verdict};

fn points(x: f64) -> String {
    format!("{:+.2}", 100.0 * x)
}

fn score(x: f64) -> String {
    format!("{:.2}", 100.0 * x)
}

fn task_line(t: &TaskOutcome) -> String {
    let d = &t.difference;
    format!(
        "{verdict:<12} {task}: {metric} {base} -> {cand} ({diff} points, one-sided bounds [{lo}, {hi}], \
         margin -{margin}, {n} paired documents{flips}{power})",
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

/// The summary printed on stdout.
pub fn summary(report: &GateReport) -> String {
    let mut out = format!(
        "{}: {} vs {} ({})\n",
        report.verdict.name(),
        report.candidate.variant,
        report.baseline.variant,
        report.reason
    );
    for t in &report.tasks {
        let _ = writeln!(out, "  {}", task_line(t));
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
    out.push_str("| task | verdict | baseline | candidate | Δ points | one-sided bounds | margin | documents | detectable | lost / gained | McNemar p |\n");
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
    if let Some(a) = &report.average {
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

fn xml_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// JUnit XML: one test case per task; FAIL is a failure, INCONCLUSIVE is
/// skipped with its reason.
pub fn junit(report: &GateReport) -> String {
    let failures = report
        .tasks
        .iter()
        .filter(|t| t.verdict == Verdict::Fail)
        .count();
    let skipped = report
        .tasks
        .iter()
        .filter(|t| t.verdict == Verdict::Inconclusive)
        .count();
    let mut out = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuite name=\"assay gate {}\" tests=\"{}\" failures=\"{failures}\" skipped=\"{skipped}\">\n",
        xml_escape(&report.candidate.variant),
        report.tasks.len()
    );
    for t in &report.tasks {
        let line = xml_escape(&task_line(t));
        let _ = write!(
            out,
            "  <testcase classname=\"assay.gate\" name=\"{}\">",
            xml_escape(&t.task)
        );
        match t.verdict {
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

/// GitHub Actions workflow commands: an error per failing task, a warning
/// per inconclusive one (values escaped as the runner expects).
pub fn github_annotations(report: &GateReport) -> String {
    let escape = |s: &str| {
        s.replace('%', "%25")
            .replace('\r', "%0D")
            .replace('\n', "%0A")
            .replace(':', "%3A")
            .replace(',', "%2C")
    };
    let mut out = String::new();
    for t in &report.tasks {
        let kind = match t.verdict {
            Verdict::Pass => continue,
            Verdict::Fail => "error",
            Verdict::Inconclusive => "warning",
        };
        let title = escape(&format!(
            "assay gate {} {}",
            report.candidate.variant, t.task
        ));
        let message = task_line(t)
            .replace('%', "%25")
            .replace('\r', "%0D")
            .replace('\n', "%0A");
        let _ = writeln!(out, "::{kind} title={title}::{message}");
    }
    out
}
