//! The static leaderboard site: `index.html` (the table, the score-against-
//! size plot, the lineage view) and `variants/<name>.html` (a page per
//! variant, with a drill-down to per-document results), plus `site.css`
//! and `site.js` beside them. It opens from the file system: no server, no
//! network.
//!
//! Pages are rendered by minijinja templates (`templates/`, built into the
//! binary) with HTML auto-escaping, and the script only ever puts strings
//! into the page as text, so nothing from a manifest or a result can inject
//! markup. Per-document results live in `docs/`: one script per run (its
//! rows) and one per distinct set of prompts (shared by every run that saw
//! the same prompts). A run's file is named by its run id and never changes,
//! so a rebuild writes only the files of new runs.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use minijinja::Environment;
use serde::Serialize;
use serde_json::{json, Value};

use super::{error, write_error, Board, LeaderboardError, Row, Z95};
use crate::hash::sha256_hex;
use sha2::Digest;

use crate::results::{self, DocumentRow, MetricKey};
use crate::variant::{is_safe_name, Variant};

/// Bumped when the drill-down files change shape, so old ones are rewritten.
const DOCS_FORMAT: &str = "d2";

/// How a run's drill-down file starts: the prompt files it needs.
const PROMPTS_LINE: &str = "// prompts:";

/// A name as a file name: itself when safe, else a readable part and a hash.
pub fn file_name(name: &str) -> String {
    if is_safe_name(name) {
        return name.to_string();
    }
    let readable: String = name
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-'))
        .take(40)
        .collect();
    format!("{readable}_{}", &sha256_hex(name.as_bytes())[..12])
}

/// The drill-down files under `<out>/docs/`.
pub struct Documents {
    dir: PathBuf,
    /// Every file the pages of this build refer to; the rest are swept.
    used: Mutex<HashSet<PathBuf>>,
}

/// The file of a run's per-document rows, relative to `docs/`.
fn run_file(row: &Row) -> String {
    format!(
        "{}/{}.{DOCS_FORMAT}.js",
        file_name(&row.name),
        file_name(row.run.run_id())
    )
}

/// What a response shows, for runs that recorded only the filtered
/// response (JSON): the chosen option's index for multiple choice, else the
/// text as the results writer would have recorded it.
fn shown_response(filtered: &str) -> Value {
    match serde_json::from_str::<Value>(filtered) {
        Ok(v) => match results::chosen_option(&v) {
            Some(option) => json!(option),
            None => Value::String(results::shown_text(&v)),
        },
        Err(_) => Value::String(filtered.to_string()),
    }
}

/// A run's drill-down rows, written as its samples are read: per suite
/// task, `[doc_id, value, response]` rows as script text, and a hash of
/// every (document, prompt hash) pair that names the prompt file the rows
/// need (runs that asked the same prompts of the same documents share one;
/// it maps document ids to prompts).
pub struct RunDocuments {
    tasks: Vec<TaskDocuments>,
    /// The prompt-set hashes the run recorded, one per suite task.
    recorded: Option<Vec<String>>,
}

struct TaskDocuments {
    rows: String,
    prompts: sha2::Sha256,
}

impl RunDocuments {
    pub fn new(tasks: usize, recorded: Option<Vec<String>>) -> RunDocuments {
        RunDocuments {
            recorded,
            tasks: (0..tasks)
                .map(|_| TaskDocuments {
                    rows: String::new(),
                    prompts: sha2::Sha256::new(),
                })
                .collect(),
        }
    }

    /// Adds one row of suite task `k`.
    pub fn add(&mut self, k: usize, row: &DocumentRow) {
        let task = &mut self.tasks[k];
        if !task.rows.is_empty() {
            task.rows.push(',');
        }
        let _ = write!(task.rows, "[{},", row.doc_id);
        match row.value {
            Some(v) if v.is_finite() => {
                let _ = write!(task.rows, "{v}");
            }
            _ => task.rows.push_str("null"),
        }
        // Older runs recorded only the filtered response.
        if !row.filtered.is_empty() {
            let _ = write!(task.rows, ",{}]", shown_response(row.filtered));
        } else if let Some(option) = row.chosen {
            let _ = write!(task.rows, ",{option}]");
        } else {
            let _ = write!(task.rows, ",{}]", Value::from(row.shown));
        }
        if self.recorded.is_none() {
            task.prompts.update(row.doc_id.to_le_bytes());
            task.prompts.update(row.prompt_hash.as_bytes());
        }
    }
}

impl Documents {
    pub fn new(out: &Path) -> Result<Documents, LeaderboardError> {
        let dir = out.join("docs");
        std::fs::create_dir_all(dir.join("prompts")).map_err(|e| write_error(&dir, e))?;
        Ok(Documents {
            dir,
            used: Mutex::new(HashSet::new()),
        })
    }

    fn use_file(&self, path: PathBuf) {
        self.used
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(path);
    }

    /// Whether the run's drill-down file is already written (kept if so).
    pub fn has_run(&self, row: &Row) -> bool {
        let path = self.dir.join(run_file(row));
        if !path.is_file() {
            return false;
        }
        // A run file's first line names the prompt files it needs.
        let mut first = String::new();
        let _ = std::fs::File::open(&path)
            .map(std::io::BufReader::new)
            .and_then(|mut r| std::io::BufRead::read_line(&mut r, &mut first));
        let Some(names) = first.trim_end().strip_prefix(PROMPTS_LINE) else {
            return false;
        };
        let prompts: Vec<PathBuf> = names.split_whitespace().map(|p| self.dir.join(p)).collect();
        if !prompts.iter().all(|p| p.is_file()) {
            return false;
        }
        self.use_file(path);
        for p in prompts {
            self.use_file(p);
        }
        true
    }

    /// Writes a run's drill-down file, and the prompt files it needs that
    /// are not there yet.
    pub fn write_run(
        &self,
        row: &Row,
        keys: &[MetricKey],
        documents: RunDocuments,
    ) -> Result<(), LeaderboardError> {
        let samples = row.run.dir.join("samples.parquet");
        let mut tasks: Vec<String> = Vec::new();
        let mut prompt_files = Vec::new();
        let recorded = documents.recorded;
        for (k, (key, task)) in keys.iter().zip(documents.tasks).enumerate() {
            let set_hash = match &recorded {
                Some(hashes) => hashes[k].clone(),
                None => format!("{:x}", task.prompts.finalize()),
            };
            let prompts = format!("prompts/{}-{}.js", file_name(&key.task), &set_hash[..16]);
            let prompts_path = self.dir.join(&prompts);
            if !prompts_path.is_file() {
                let found =
                    results::read_prompts(&samples, &key.task).map_err(|e| error(&samples, e))?;
                let table: serde_json::Map<String, Value> = found
                    .iter()
                    .map(|(id, p)| (id.to_string(), json!([p.prompt, p.choices, p.target])))
                    .collect();
                let text = format!(
                    "assay.prompts({}, {});\n",
                    json!(prompts),
                    Value::Object(table)
                );
                write_atomically(&prompts_path, &text)?;
            }
            self.use_file(prompts_path);
            tasks.push(format!(
                "{}:{{\"prompts\":{},\"rows\":[{}]}}",
                Value::from(key.task.as_str()),
                Value::from(prompts.as_str()),
                task.rows
            ));
            prompt_files.push(prompts);
        }
        let path = self.dir.join(run_file(row));
        let text = format!(
            "{PROMPTS_LINE} {}\nassay.documents({{\"run_id\":{},\"tasks\":{{{}}}}});\n",
            prompt_files.join(" "),
            Value::from(row.run.run_id()),
            tasks.join(",")
        );
        write_atomically(&path, &text)?;
        self.use_file(path);
        Ok(())
    }

    /// Removes drill-down files no page of this build refers to.
    fn sweep(&self) {
        let used = self.used.lock().unwrap_or_else(|e| e.into_inner());
        let mut stack = vec![self.dir.clone()];
        while let Some(dir) = stack.pop() {
            let Ok(entries) = std::fs::read_dir(&dir) else {
                continue;
            };
            for path in entries.flatten().map(|e| e.path()) {
                if path.is_dir() {
                    stack.push(path);
                } else if path.extension().is_some_and(|e| e == "js") && !used.contains(&path) {
                    let _ = std::fs::remove_file(&path);
                }
            }
        }
    }
}

/// Writes a file through a temporary sibling, so a reader never sees half.
fn write_atomically(path: &Path, text: &str) -> Result<(), LeaderboardError> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(|e| write_error(parent, e))?;
    }
    // Two workers may write the same shared file at once: each its own tmp.
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let tmp = path.with_extension(format!("tmp{}-{n}", std::process::id()));
    std::fs::write(&tmp, text).map_err(|e| write_error(&tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| write_error(path, e))
}

fn percent(x: f64) -> String {
    format!("{:.1}", 100.0 * x)
}

fn signed_percent(x: f64) -> String {
    format!("{:+.1}", 100.0 * x)
}

fn parameters_text(n: u64) -> String {
    let n = n as f64;
    match n {
        n if n >= 1e9 => format!("{:.1}B", n / 1e9),
        n if n >= 1e6 => format!("{:.0}M", n / 1e6),
        n if n >= 1e3 => format!("{:.0}K", n / 1e3),
        n => format!("{n}"),
    }
}

/// A table cell: what it shows and the key it sorts by.
#[derive(Serialize, Default)]
struct Cell {
    text: String,
    /// The sort key; empty sorts last.
    key: String,
    title: String,
}

fn sort_key(value: Option<f64>) -> String {
    value.map(|v| v.to_string()).unwrap_or_default()
}

/// The bar behind a score: the point and its 95% interval, in percent of
/// the column's range.
#[derive(Serialize)]
struct Bar {
    point: f64,
    low: f64,
    width: f64,
}

#[derive(Serialize)]
struct RowView {
    name: String,
    page: String,
    display_name: String,
    relation: String,
    base: String,
    base_page: String,
    precision: String,
    contributor: String,
    rank: Cell,
    tie_group: String,
    /// Rows of alternate tie groups are shaded alternately.
    group_class: String,
    parameters: Cell,
    bits: Cell,
    average: Cell,
    bar: Option<Bar>,
    delta: Cell,
    tasks: Vec<Cell>,
    date: String,
    stale: String,
    search: String,
}

fn score_cell(value: Option<f64>, stderr: Option<f64>) -> Cell {
    match value {
        Some(v) => Cell {
            text: percent(v),
            key: sort_key(Some(v)),
            title: match stderr {
                Some(s) => format!("{} ± {} (95%)", percent(v), percent(Z95 * s)),
                None => percent(v),
            },
        },
        None => Cell::default(),
    }
}

/// A paired delta with its interval in the tooltip.
fn interval_cell(d: &super::Delta) -> Cell {
    let (lo, hi) = d.interval();
    Cell {
        text: signed_percent(d.mean),
        key: sort_key(Some(d.mean)),
        title: format!(
            "95% CI [{}, {}] over {} paired documents",
            signed_percent(lo),
            signed_percent(hi),
            d.documents
        ),
    }
}

fn delta_cell(row: &Row) -> Cell {
    match (row.delta, &row.delta_note) {
        (Some(d), _) => interval_cell(&d),
        (None, Some(note)) => Cell {
            text: "n/a".into(),
            key: String::new(),
            title: note.clone(),
        },
        (None, None) => Cell::default(),
    }
}

fn manifest_text(row: &Row, f: impl Fn(&Variant) -> Option<String>) -> String {
    row.manifest.as_ref().and_then(f).unwrap_or_default()
}

fn row_views(board: &Board) -> Vec<RowView> {
    // Every bar shares one scale: the widest interval of any row.
    let intervals: Vec<(f64, f64)> = board
        .rows
        .iter()
        .filter_map(|r| {
            let a = r.average?;
            let e = Z95 * r.average_stderr.unwrap_or(0.0);
            Some((a - e, a + e))
        })
        .collect();
    let lo = intervals.iter().map(|i| i.0).fold(f64::INFINITY, f64::min);
    let hi = intervals
        .iter()
        .map(|i| i.1)
        .fold(f64::NEG_INFINITY, f64::max);
    let scale = |x: f64| {
        if hi > lo {
            100.0 * (x - lo) / (hi - lo)
        } else {
            50.0
        }
    };
    let names: HashSet<&str> = board.rows.iter().map(|r| r.name.as_str()).collect();
    board
        .rows
        .iter()
        .map(|row| {
            let parameters = row.manifest.as_ref().and_then(|m| m.parameters);
            let bits = row.manifest.as_ref().and_then(|m| m.bits_per_weight);
            let base = manifest_text(row, |m| m.base.clone());
            let display_name = manifest_text(row, |m| m.display_name.clone());
            let relation = manifest_text(row, |m| Some(m.relation.name().to_string()));
            let precision = manifest_text(row, |m| m.precision.clone());
            let contributor = manifest_text(row, |m| m.contributor.clone());
            let notes = manifest_text(row, |m| Some(m.notes.clone()));
            let bar = row.average.map(|a| {
                let e = Z95 * row.average_stderr.unwrap_or(0.0);
                Bar {
                    point: scale(a),
                    low: scale(a - e),
                    width: scale(a + e) - scale(a - e),
                }
            });
            RowView {
                page: super::variant_page(&row.name),
                base_page: if names.contains(base.as_str()) {
                    super::variant_page(&base)
                } else {
                    String::new()
                },
                rank: Cell {
                    text: row.rank.map(|r| r.to_string()).unwrap_or_default(),
                    key: sort_key(row.rank.map(f64::from)),
                    title: row
                        .tie_group
                        .map(|g| format!("tie group {g}"))
                        .unwrap_or_default(),
                },
                tie_group: row.tie_group.map(|g| g.to_string()).unwrap_or_default(),
                group_class: row
                    .tie_group
                    .map(|g| format!("group-{}", g % 2))
                    .unwrap_or_default(),
                parameters: Cell {
                    text: parameters.map(parameters_text).unwrap_or_default(),
                    key: sort_key(parameters.map(|p| p as f64)),
                    title: parameters.map(|p| p.to_string()).unwrap_or_default(),
                },
                bits: Cell {
                    text: bits.map(|b| format!("{b:.2}")).unwrap_or_default(),
                    key: sort_key(bits),
                    title: String::new(),
                },
                average: score_cell(row.average, row.average_stderr),
                bar,
                delta: delta_cell(row),
                tasks: board
                    .suite
                    .keys()
                    .map(|t| {
                        let s = row.tasks[t];
                        let mut cell = score_cell(s.map(|s| s.score), s.and_then(|s| s.stderr));
                        if let Some(s) = s {
                            cell.title =
                                format!("{}; normalized {}", cell.title, percent(s.normalized));
                        }
                        if row.stale_tasks.contains(t) {
                            cell.title = format!("{} (stale: the task config changed)", cell.title);
                        }
                        cell
                    })
                    .collect(),
                date: row.run.created().get(..10).unwrap_or_default().to_string(),
                stale: row.stale_tasks.join(", "),
                search: [
                    row.name.as_str(),
                    &display_name,
                    &contributor,
                    &notes,
                    &precision,
                    &base,
                ]
                .join(" ")
                .to_lowercase(),
                name: row.name.clone(),
                display_name,
                relation,
                base,
                precision,
                contributor,
            }
        })
        .collect()
}

/// One scatter plot: score against an x quantity, with 95% error bars and a
/// line from each variant to its base.
#[derive(Serialize)]
struct Plot {
    id: String,
    label: String,
    points: Vec<Point>,
    links: Vec<(f64, f64, f64, f64)>,
    x_ticks: Vec<(f64, String)>,
    y_ticks: Vec<(f64, String)>,
    left_out: usize,
}

#[derive(Serialize)]
struct Point {
    name: String,
    relation: String,
    x: f64,
    y: f64,
    y_low: f64,
    y_high: f64,
    title: String,
}

const PLOT_W: f64 = 640.0;
const PLOT_H: f64 = 320.0;
const MARGIN: f64 = 48.0;

fn plot(
    board: &Board,
    id: &str,
    label: &str,
    x_of: impl Fn(&Row) -> Option<f64>,
    log: bool,
) -> Plot {
    let mut data = Vec::new();
    let mut left_out = 0;
    for row in &board.rows {
        match (x_of(row).filter(|x| !log || *x > 0.0), row.average) {
            (Some(x), Some(y)) => {
                let x = if log { x.log10() } else { x };
                data.push((row, x, y, Z95 * row.average_stderr.unwrap_or(0.0)));
            }
            _ => left_out += 1,
        }
    }
    let range = |v: Vec<f64>| {
        let lo = v.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        if !lo.is_finite() {
            (0.0, 1.0)
        } else if hi - lo < 1e-9 {
            (lo - 0.5, hi + 0.5)
        } else {
            let pad = (hi - lo) * 0.05;
            (lo - pad, hi + pad)
        }
    };
    let (x0, x1) = range(data.iter().map(|d| d.1).collect());
    let (y0, y1) = range(data.iter().flat_map(|d| [d.2 - d.3, d.2 + d.3]).collect());
    let px = |x: f64| MARGIN + (x - x0) / (x1 - x0) * (PLOT_W - 2.0 * MARGIN);
    let py = |y: f64| PLOT_H - MARGIN - (y - y0) / (y1 - y0) * (PLOT_H - 2.0 * MARGIN);
    let position: HashMap<&str, (f64, f64)> = data
        .iter()
        .map(|(r, x, y, _)| (r.name.as_str(), (px(*x), py(*y))))
        .collect();
    let links = data
        .iter()
        .filter_map(|(r, x, y, _)| {
            let b = position.get(r.base()?)?;
            Some((b.0, b.1, px(*x), py(*y)))
        })
        .collect();
    let ticks = |lo: f64, hi: f64, to_px: &dyn Fn(f64) -> f64, text: &dyn Fn(f64) -> String| {
        (0..=4)
            .map(|i| {
                let v = lo + (hi - lo) * f64::from(i) / 4.0;
                (to_px(v), text(v))
            })
            .collect::<Vec<_>>()
    };
    let x_text = |v: f64| {
        if log {
            parameters_text(10f64.powf(v).round() as u64)
        } else {
            format!("{v:.1}")
        }
    };
    Plot {
        id: id.into(),
        label: label.into(),
        x_ticks: ticks(x0, x1, &px, &x_text),
        y_ticks: ticks(y0, y1, &py, &|v| percent(v)),
        points: data
            .iter()
            .map(|(r, x, y, e)| Point {
                name: r.name.clone(),
                relation: manifest_text(r, |m| Some(m.relation.name().to_string())),
                x: px(*x),
                y: py(*y),
                y_low: py(y - e),
                y_high: py(y + e),
                title: format!("{}: {} ± {}", r.name, percent(*y), percent(*e)),
            })
            .collect(),
        links,
        left_out,
    }
}

/// One line of the lineage view: a variant at its depth under its base.
#[derive(Serialize)]
struct LineageItem {
    depth: usize,
    name: String,
    page: String,
    relation: String,
    average: String,
    delta: String,
    delta_title: String,
}

fn lineage(board: &Board) -> Vec<LineageItem> {
    let names: HashSet<&str> = board.rows.iter().map(|r| r.name.as_str()).collect();
    let mut children: BTreeMap<&str, Vec<&Row>> = BTreeMap::new();
    let mut roots = Vec::new();
    for row in &board.rows {
        match row.base().filter(|b| names.contains(b)) {
            Some(b) => children.entry(b).or_default().push(row),
            None => roots.push(row),
        }
    }
    roots.sort_by(|a, b| a.name.cmp(&b.name));
    let mut items = Vec::new();
    let mut seen = HashSet::new();
    let mut stack: Vec<(usize, &Row)> = roots.into_iter().rev().map(|r| (0, r)).collect();
    while let Some((depth, row)) = stack.pop() {
        if !seen.insert(row.name.as_str()) {
            continue;
        }
        let delta = delta_cell(row);
        items.push(LineageItem {
            depth,
            page: super::variant_page(&row.name),
            name: row.name.clone(),
            relation: manifest_text(row, |m| Some(m.relation.name().to_string())),
            average: row.average.map(percent).unwrap_or_default(),
            delta: delta.text,
            delta_title: delta.title,
        });
        if let Some(kids) = children.get(row.name.as_str()) {
            let mut kids = kids.clone();
            kids.sort_by(|a, b| b.name.cmp(&a.name));
            stack.extend(kids.into_iter().map(|k| (depth + 1, k)));
        }
    }
    items
}

#[derive(Serialize)]
struct TaskView {
    name: String,
    metric: String,
    baseline: String,
    score: Cell,
    normalized: String,
    base_score: String,
    delta: Cell,
    stale: bool,
    config_hash: String,
    /// Where the documents came from: local files, or the Hub datasets and
    /// the commits read.
    data: String,
}

#[derive(Serialize)]
struct VariantPage {
    row: RowView,
    notes: String,
    fields: Vec<(String, String)>,
    provenance: Vec<(String, String)>,
    tasks: Vec<TaskView>,
    /// The tasks the drill-down can show: each entry's own, or a group's
    /// leaf tasks.
    document_tasks: Vec<String>,
    documents: String,
    base_documents: String,
}

fn page_view(
    board: &Board,
    i: usize,
    view: RowView,
    base_views: &HashMap<&str, usize>,
) -> VariantPage {
    let row = &board.rows[i];
    let base = row
        .base()
        .and_then(|b| base_views.get(b))
        .map(|&b| &board.rows[b]);
    let m = row.manifest.as_ref();
    let mut fields: Vec<(String, String)> = Vec::new();
    let mut field = |k: &str, v: Option<String>| {
        if let Some(v) = v.filter(|v| !v.is_empty()) {
            fields.push((k.to_string(), v));
        }
    };
    field("display name", m.and_then(|m| m.display_name.clone()));
    field("relation", m.map(|m| m.relation.name().to_string()));
    field("base", m.and_then(|m| m.base.clone()));
    field("contributor", m.and_then(|m| m.contributor.clone()));
    field("license", m.and_then(|m| m.license.clone()));
    // Where a value came from: the contributor's word, or the file.
    let origin = |name: &str, value: Option<String>| {
        value.map(|v| match m.is_some_and(|m| m.from_file.contains(&name)) {
            true => format!("{v} (from the file)"),
            false => format!("{v} (declared)"),
        })
    };
    field(
        "parameters",
        origin(
            "parameters",
            m.and_then(|m| m.parameters.map(|p| p.to_string())),
        ),
    );
    field(
        "precision",
        origin("precision", m.and_then(|m| m.precision.clone())),
    );
    field(
        "bits per weight",
        origin(
            "bits_per_weight",
            m.and_then(|m| m.bits_per_weight.map(|b| b.to_string())),
        ),
    );
    field("weights SHA-256", m.and_then(|m| m.weights_sha256.clone()));
    field("backend", m.map(|m| m.backend.spec.clone()));
    field(
        "chat template",
        m.map(|m| if m.chat_template { "yes" } else { "no" }.to_string()),
    );
    let assay = &row.run.run.assay;
    let text = |v: &str| Some(v.to_string()).filter(|v| !v.is_empty());
    let provenance = [
        ("run id", text(&assay.run_id)),
        ("run date", text(&assay.created_at)),
        ("model", text(&row.run.run.config.model)),
        (
            "model fingerprint",
            assay.model.as_ref().map(|m| m.fingerprint.clone()),
        ),
        ("assay version", text(&assay.version)),
        ("git revision", text(&assay.git_revision)),
        ("requests", serde_json::to_string(&assay.requests).ok()),
        ("run folder", Some(row.run.dir.display().to_string())),
    ]
    .into_iter()
    .filter_map(|(k, v)| v.map(|v| (k.to_string(), v)))
    .collect();
    let tasks = board
        .suite
        .iter()
        .map(|(task, spec)| {
            let s = row.tasks[task];
            TaskView {
                name: task.clone(),
                metric: format!("{} ({})", spec.metric, spec.filter),
                baseline: if spec.subtasks.is_empty() {
                    percent(spec.baseline)
                } else {
                    "per task".into()
                },
                score: score_cell(s.map(|s| s.score), s.and_then(|s| s.stderr)),
                normalized: s.map(|s| percent(s.normalized)).unwrap_or_default(),
                base_score: base
                    .and_then(|b| b.tasks[task])
                    .map(|s| percent(s.score))
                    .unwrap_or_default(),
                delta: row
                    .task_deltas
                    .get(task)
                    .map(interval_cell)
                    .unwrap_or_default(),
                stale: row.stale_tasks.contains(task),
                config_hash: super::entry_hash(&row.run, task).unwrap_or_default(),
                data: data_origin(&row.run.run, task),
            }
        })
        .collect();
    VariantPage {
        notes: manifest_text(row, |m| Some(m.notes.clone())),
        fields,
        provenance,
        tasks,
        document_tasks: board
            .documents
            .iter()
            .map(|(_, k)| k.task.clone())
            .collect(),
        documents: format!("../docs/{}", run_file(row)),
        base_documents: base
            .map(|b| format!("../docs/{}", run_file(b)))
            .unwrap_or_default(),
        row: view,
    }
}

/// The Hub datasets (repo@commit) a suite entry's tasks read, else "local".
fn data_origin(run: &crate::results::Run, entry: &str) -> String {
    let mut origins: Vec<String> = super::leaves(run, entry)
        .iter()
        .filter_map(|t| {
            let d = run.assay.tasks.get(t)?.dataset.as_ref()?;
            let commit = d.commit.as_str();
            Some(format!("{}@{}", d.repo, commit.get(..12).unwrap_or(commit)))
        })
        .collect();
    origins.sort();
    origins.dedup();
    if origins.is_empty() {
        "local files".into()
    } else {
        origins.join(", ")
    }
}

fn environment() -> Result<Environment<'static>, minijinja::Error> {
    let mut env = Environment::new();
    // Templates named *.html are auto-escaped.
    env.add_template("base.html", include_str!("../../templates/base.html"))?;
    env.add_template("index.html", include_str!("../../templates/index.html"))?;
    env.add_template("variant.html", include_str!("../../templates/variant.html"))?;
    Ok(env)
}

/// Writes the site into `out`; the drill-down files of new runs are already
/// written by then.
pub fn write(
    board: &Board,
    out: &Path,
    documents: &Documents,
) -> Result<Vec<PathBuf>, LeaderboardError> {
    let env = environment().map_err(|e| write_error(out, e))?;
    let render = |name: &str, context: Value, path: &Path| -> Result<(), LeaderboardError> {
        let html = env
            .get_template(name)
            .and_then(|t| t.render(minijinja::Value::from(minijinja::value::Serde(&context))))
            .map_err(|e| write_error(path, e))?;
        write_atomically(path, &html)
    };
    std::fs::write(
        out.join("site.css"),
        include_str!("../../templates/site.css"),
    )
    .map_err(|e| write_error(out, e))?;
    std::fs::write(out.join("site.js"), include_str!("../../templates/site.js"))
        .map_err(|e| write_error(out, e))?;
    let views = row_views(board);
    let relations: Vec<String> = unique(views.iter().map(|v| v.relation.clone()));
    let bases: Vec<String> = unique(views.iter().map(|v| v.base.clone()));
    let precisions: Vec<String> = unique(views.iter().map(|v| v.precision.clone()));
    let plots = [
        plot(
            board,
            "plot-parameters",
            "parameters (log scale)",
            |r| r.manifest.as_ref()?.parameters.map(|p| p as f64),
            true,
        ),
        plot(
            board,
            "plot-bits",
            "bits per weight",
            |r| r.manifest.as_ref()?.bits_per_weight,
            false,
        ),
    ];
    let index = out.join("index.html");
    render(
        "index.html",
        json!({
            "root": "",
            "title": "Leaderboard",
            "tasks": board.suite.keys().collect::<Vec<_>>(),
            "rows": views,
            "relations": relations,
            "bases": bases,
            "precisions": precisions,
            "plots": plots,
            "plot_size": [PLOT_W, PLOT_H, MARGIN],
            "lineage": lineage(board),
            "stale": board.rows.iter().filter(|r| r.is_stale()).count(),
            "generated": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        }),
        &index,
    )?;
    let pages = out.join("variants");
    std::fs::create_dir_all(&pages).map_err(|e| write_error(&pages, e))?;
    let positions: HashMap<&str, usize> = board
        .rows
        .iter()
        .enumerate()
        .map(|(i, r)| (r.name.as_str(), i))
        .collect();
    let mut written_pages = HashSet::new();
    for (i, view) in row_views(board).into_iter().enumerate() {
        let path = out.join(&view.page);
        let page = page_view(board, i, view, &positions);
        render(
            "variant.html",
            json!({"root": "../", "title": page.row.name.clone(), "page": page}),
            &path,
        )?;
        written_pages.insert(path);
    }
    // Pages of variants that no longer have a run go.
    if let Ok(entries) = std::fs::read_dir(&pages) {
        for path in entries.flatten().map(|e| e.path()) {
            if path.extension().is_some_and(|e| e == "html") && !written_pages.contains(&path) {
                let _ = std::fs::remove_file(&path);
            }
        }
    }
    documents.sweep();
    Ok(vec![index, pages])
}

fn unique(values: impl Iterator<Item = String>) -> Vec<String> {
    let set: std::collections::BTreeSet<String> = values.filter(|v| !v.is_empty()).collect();
    set.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn responses_show_the_chosen_option_or_the_text() {
        assert_eq!(
            shown_response("[[-5.3,false],[-4.5,true],[-6.0,false]]"),
            json!(1)
        );
        assert_eq!(shown_response("\"42\""), json!("42"));
        assert_eq!(shown_response("[[-122.5]]"), json!("[[-122.5]]"));
        assert_eq!(
            shown_response("[[1e400x,false],[1,true]]"),
            json!("[[1e400x,false],[1,true]]")
        );
    }

    #[test]
    fn unsafe_names_become_safe_file_names() {
        assert_eq!(file_name("gemma-3.q4"), "gemma-3.q4");
        let f = file_name("<script>alert(1)</script>");
        assert!(is_safe_name(&f), "{f}");
        assert_ne!(f, file_name("<script>alert(2)</script>"));
    }
}
