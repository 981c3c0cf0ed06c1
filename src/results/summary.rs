//! lm-eval's summary table of a run (Markdown), printed when a run ends.

use super::{MetricBlock, Run};
use crate::python::value::py_str;

/// The table: each task in the order it ran, then each group.
pub fn markdown(run: &Run) -> String {
    let mut rows: Vec<[String; 9]> = Vec::new();
    let fmt = |x: f64| format!("{x:.4}");
    let mut push = |name: &str,
                    version: String,
                    n_shot: String,
                    block: &MetricBlock,
                    hib: &dyn Fn(&str) -> bool| {
        let mut first = true;
        for (key, s) in &block.scores {
            let (metric, filter) = key.split_once(',').unwrap_or((key, "none"));
            let once = |text: &str| {
                if first {
                    text.to_string()
                } else {
                    String::new()
                }
            };
            rows.push([
                once(name),
                once(&version),
                filter.to_string(),
                once(&n_shot),
                metric.to_string(),
                if hib(metric) { "↑" } else { "↓" }.to_string(),
                fmt(s.value),
                "±".to_string(),
                s.stderr.map_or("N/A".into(), fmt),
            ]);
            first = false;
        }
    };
    for task in run.configs.keys() {
        let Some(block) = run.results.get(task) else {
            continue;
        };
        let version = run.versions.get(task).map(py_str).unwrap_or_default();
        let n_shot = run
            .n_shot
            .get(task)
            .map(|n| n.to_string())
            .unwrap_or_default();
        let directions = run.higher_is_better.get(task);
        let hib = |metric: &str| {
            directions
                .and_then(|d| d.get(metric))
                .copied()
                .unwrap_or(true)
        };
        push(task, version, n_shot, block, &hib);
    }
    for (group, block) in &run.groups {
        push(group, String::new(), String::new(), block, &|_| true);
    }
    let header = [
        "Tasks", "Version", "Filter", "n-shot", "Metric", "", "Value", "", "Stderr",
    ];
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for r in &rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |cells: Vec<String>| -> String {
        let mut s = String::from("|");
        for (c, w) in cells.iter().zip(&widths) {
            s.push_str(&format!("{c:<w$}|", w = *w));
        }
        s.push('\n');
        s
    };
    let mut out = line(header.iter().map(|h| h.to_string()).collect());
    out.push_str(&line(widths.iter().map(|w| "-".repeat(*w)).collect()));
    for r in rows {
        out.push_str(&line(r.to_vec()));
    }
    out
}
