//! Synthetic runs for the leaderboard benchmark (`bench/leaderboard_scale.py`):
//! `cargo run --release --example synthetic_runs -- OUT_DIR --variants N
//! [--tasks 50] [--docs 500] [--seed 1] [--threads T]`.
//!
//! Writes invented multiple-choice tasks and a suite under `OUT_DIR/tasks/`,
//! one manifest per variant under `OUT_DIR/variants/`, and one run per variant
//! under `OUT_DIR/results/runs/`. The tasks are planned once with assay's own
//! planner and every run is scored and written by the engine and the results
//! writer `assay run` uses, so the files are exactly what real runs leave;
//! only the model's log-likelihoods are made up.
//!
//! The first half of the variants are originals, each with its own skill;
//! every later one derives from a randomly chosen earlier variant and
//! perturbs its log-likelihoods a little, so paired deltas to a base are
//! meaningful. A variant's answers are a pure function of (seed, variant,
//! document), so runs are written in any order, on any number of threads,
//! without keeping any variant's answers in memory.

use assay::stats::paired::SplitMix64;
use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Instant;

use anyhow::{anyhow, bail, Context, Result};
use serde_json::json;

use assay::backend::ModelIdentity;
use assay::engine::{Answers, RequestCounts};
use assay::invocation::Invocation;
use assay::request::Response;
use assay::run::{self, Plan, Record};
use assay::task::Registry;
use assay::variant::Relation;

/// The suite's group name: `OUT_DIR/tasks/suites/bench.yaml`.
const SUITE: &str = "bench";
/// Choices per document.
const CHOICES: usize = 4;

const USAGE: &str =
    "usage: synthetic_runs OUT_DIR --variants N [--tasks 50] [--docs 500] [--seed 1] [--threads T]";

struct Args {
    out: PathBuf,
    variants: usize,
    tasks: usize,
    docs: usize,
    seed: u64,
    threads: usize,
}

fn parse_args() -> Result<Args> {
    let mut out = None;
    let mut variants = None;
    let mut tasks = 50;
    let mut docs = 500;
    let mut seed = 1;
    let mut threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = |flag: &str| -> Result<u64> {
            let v = args.next().ok_or_else(|| anyhow!("{flag} needs a value"))?;
            v.parse()
                .map_err(|_| anyhow!("{flag} {v}: not a non-negative integer"))
        };
        match arg.as_str() {
            "--variants" => variants = Some(value("--variants")? as usize),
            "--tasks" => tasks = value("--tasks")? as usize,
            "--docs" => docs = value("--docs")? as usize,
            "--seed" => seed = value("--seed")?,
            "--threads" => threads = value("--threads")? as usize,
            "-h" | "--help" => bail!("{USAGE}"),
            flag if flag.starts_with('-') => bail!("unknown flag {flag}\n{USAGE}"),
            _ if out.is_none() => out = Some(PathBuf::from(arg)),
            _ => bail!("one OUT_DIR only\n{USAGE}"),
        }
    }
    let (Some(out), Some(variants)) = (out, variants) else {
        bail!("{USAGE}");
    };
    if variants == 0 || tasks == 0 || docs == 0 || threads == 0 {
        bail!("--variants, --tasks, --docs and --threads must be at least 1");
    }
    Ok(Args {
        out,
        variants,
        tasks,
        docs,
        seed,
        threads,
    })
}

/// assay's SplitMix64, keyed: small, fast, and good enough for invented data.
struct Rng(SplitMix64);

impl Rng {
    /// A generator for one purpose, keyed by several numbers.
    fn keyed(parts: &[u64]) -> Rng {
        let mut state = 0x5EED_u64;
        for &p in parts {
            state = SplitMix64(state ^ p).next_u64();
        }
        Rng(SplitMix64(state))
    }

    fn next_u64(&mut self) -> u64 {
        self.0.next_u64()
    }

    /// Uniform in [0, 1).
    fn uniform(&mut self) -> f64 {
        self.0.next_f64()
    }

    fn range(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.uniform()
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    /// Standard normal (Box-Muller).
    fn normal(&mut self) -> f64 {
        let u = 1.0 - self.uniform();
        (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * self.uniform()).cos()
    }
}

/// Purposes of the keyed generators, so no two draw the same stream.
mod stream {
    pub const DOCUMENT: u64 = 1;
    pub const ANSWER: u64 = 2;
    pub const TASK_DIFFICULTY: u64 = 3;
    pub const VARIANT_TASK: u64 = 4;
    pub const LINEAGE: u64 = 5;
}

fn task_name(t: usize, tasks: usize) -> String {
    let width = (tasks.saturating_sub(1)).to_string().len().max(2);
    format!("bench_t{t:0width$}")
}

/// One invented document: a question, four choices and the gold index.
fn document(seed: u64, t: usize, d: usize) -> serde_json::Value {
    let mut rng = Rng::keyed(&[seed, stream::DOCUMENT, t as u64, d as u64]);
    fn distinct(lo: u64, span: u64, rng: &mut Rng) -> Vec<u64> {
        let mut picked: Vec<u64> = Vec::with_capacity(CHOICES);
        while picked.len() < CHOICES {
            let x = lo + rng.next_u64() % span;
            if !picked.contains(&x) {
                picked.push(x);
            }
        }
        picked
    }
    let (question, numbers, label) = match t % 3 {
        0 | 1 => {
            let numbers = distinct(10, 990, &mut rng);
            let largest = t % 3 == 0;
            let best = (0..CHOICES)
                .max_by_key(|&i| {
                    if largest {
                        numbers[i] as i64
                    } else {
                        -(numbers[i] as i64)
                    }
                })
                .unwrap_or(0);
            let which = if largest { "largest" } else { "smallest" };
            let q = format!(
                "Item {d} of task {t}: which is {which}? {}, {}, {} or {}",
                numbers[0], numbers[1], numbers[2], numbers[3]
            );
            (q, numbers, best)
        }
        _ => {
            let (a, b) = (10 + rng.next_u64() % 490, 10 + rng.next_u64() % 490);
            // Distractors near the sum, then the sum at a random place.
            let mut numbers: Vec<u64> = distinct(0, 40, &mut rng)
                .into_iter()
                .map(|k| a + b + 1 + k)
                .take(CHOICES - 1)
                .collect();
            for x in numbers.iter_mut().step_by(2) {
                *x = (2 * (a + b)).saturating_sub(*x).max(1);
            }
            let label = rng.below(CHOICES);
            numbers.insert(label, a + b);
            (
                format!("Item {d} of task {t}: what is {a} + {b}?"),
                numbers,
                label,
            )
        }
    };
    let choices: Vec<String> = numbers.iter().map(u64::to_string).collect();
    json!({"question": question, "choices": choices, "label": label})
}

/// Writes the task configs, their documents and the suite.
fn write_tasks(dir: &Path, args: &Args) -> Result<()> {
    let mut members = String::new();
    let mut leaderboard = String::new();
    for t in 0..args.tasks {
        let name = task_name(t, args.tasks);
        let folder = dir.join(&name);
        std::fs::create_dir_all(&folder).with_context(|| folder.display().to_string())?;
        let mut lines = String::new();
        for d in 0..args.docs {
            writeln!(lines, "{}", document(args.seed, t, d))?;
        }
        let data = folder.join(format!("{name}_test.jsonl"));
        std::fs::write(&data, lines).with_context(|| data.display().to_string())?;
        let config = format!(
            "# Synthetic task {t} for bench/leaderboard_scale.py (examples/synthetic_runs.rs).\n\
             task: {name}\n\
             dataset_path: json\n\
             dataset_kwargs:\n  data_files:\n    test: {name}_test.jsonl\n\
             output_type: multiple_choice\n\
             test_split: test\n\
             num_fewshot: 0\n\
             doc_to_text: \"{{{{question}}}}\\nAnswer:\"\n\
             doc_to_choice: choices\n\
             doc_to_target: label\n\
             metric_list:\n  - metric: acc\n    aggregation: mean\n    higher_is_better: true\n\
             metadata:\n  version: 1.0\n"
        );
        let path = folder.join(format!("{name}.yaml"));
        std::fs::write(&path, config).with_context(|| path.display().to_string())?;
        writeln!(members, "  - {name}")?;
        writeln!(
            leaderboard,
            "    {name}: {{metric: acc, filter: none, baseline: 0.25}}"
        )?;
    }
    let suites = dir.join("suites");
    std::fs::create_dir_all(&suites).with_context(|| suites.display().to_string())?;
    let suite = format!(
        "# The synthetic leaderboard suite of bench/leaderboard_scale.py.\n\
         group: {SUITE}\n\
         task:\n{members}\
         aggregate_metric_list:\n  - metric: acc\n    aggregation: mean\n    weight_by_size: false\n\
         metadata:\n  version: 1.0\n  leaderboard:\n{leaderboard}"
    );
    let path = suites.join(format!("{SUITE}.yaml"));
    std::fs::write(&path, suite).with_context(|| path.display().to_string())?;
    Ok(())
}

/// One synthetic variant and how its answers come about.
struct Variant {
    name: String,
    relation: Relation,
    parent: Option<usize>,
    /// Originals: the chance of knowing an answer, before task difficulty.
    skill: f64,
    /// Derived: added to the gold choice's log-likelihood.
    shift: f64,
    /// Derived: standard deviation of the noise added to every choice.
    noise: f64,
    precision: &'static str,
    bits_per_weight: f64,
    parameters: u64,
}

/// Quantizations: precision, bits per weight, name suffix, noise. Fewer
/// bits, more noise: from a few tenths of a point of accuracy lost (Q8_0)
/// to several points (Q2_K).
const QUANTS: [(&str, f64, &str, f64); 5] = [
    ("Q8_0", 8.5, "q8", 0.03),
    ("Q6_K", 6.6, "q6", 0.06),
    ("Q5_K_M", 5.7, "q5", 0.1),
    ("Q4_K_M", 4.8, "q4", 0.15),
    ("Q2_K", 3.4, "q2", 0.35),
];

/// The variants: originals first, then each derived one from an earlier one.
fn lineage(args: &Args) -> Vec<Variant> {
    let mut rng = Rng::keyed(&[args.seed, stream::LINEAGE]);
    let width = (args.variants.saturating_sub(1)).to_string().len().max(4);
    let originals = args.variants.div_ceil(2);
    let mut out: Vec<Variant> = Vec::with_capacity(args.variants);
    for i in 0..args.variants {
        let id = format!("v{i:0width$}");
        if i < originals {
            let sizes = [
                135_000_000,
                270_000_000,
                1_000_000_000,
                4_000_000_000,
                12_000_000_000,
            ];
            out.push(Variant {
                name: format!("{id}-base"),
                relation: Relation::Original,
                parent: None,
                skill: rng.range(0.3, 0.85),
                shift: 0.0,
                noise: 0.0,
                precision: "bf16",
                bits_per_weight: 16.0,
                parameters: sizes[rng.below(sizes.len())],
            });
            continue;
        }
        let parent = rng.below(i);
        let parameters = out[parent].parameters;
        let roll = rng.uniform();
        let (relation, suffix, precision, bits, shift, noise) = if roll < 0.4 {
            let (precision, bits, suffix, noise) = QUANTS[rng.below(QUANTS.len())];
            let shift = -rng.range(0.0, 0.5 * noise);
            (
                Relation::Quantization,
                suffix,
                precision,
                bits,
                shift,
                noise,
            )
        } else if roll < 0.7 {
            let shift = rng.range(-0.1, 0.9);
            (Relation::FineTune, "ft", "bf16", 16.0, shift, 0.3)
        } else if roll < 0.8 {
            let shift = rng.range(-0.2, 0.8);
            (Relation::Merge, "merge", "bf16", 16.0, shift, 0.4)
        } else {
            let shift = rng.range(0.0, 0.6);
            (Relation::Adapter, "lora", "bf16", 16.0, shift, 0.2)
        };
        out.push(Variant {
            name: format!("{id}-{suffix}"),
            relation,
            parent: Some(parent),
            skill: 0.0,
            shift,
            noise,
            precision,
            bits_per_weight: bits,
            parameters,
        });
    }
    out
}

fn backend_spec(v: &Variant) -> (String, Option<String>) {
    match v.relation {
        Relation::Quantization => (format!("llama:models/{}.gguf", v.name), None),
        _ => (
            "openai-completions:http://127.0.0.1:1/v1".into(),
            Some(v.name.clone()),
        ),
    }
}

/// `variants/<name>.toml`, as a contributor would submit it (no weights hash:
/// there are no weights).
fn manifest(v: &Variant, all: &[Variant], index: usize) -> String {
    let mut m = String::new();
    let _ = writeln!(m, "name = \"{}\"", v.name);
    let display = match v.parent {
        None => format!("Synthetic model {index}"),
        Some(p) => format!(
            "Synthetic model {index}, {} of {}",
            v.relation.name(),
            all[p].name
        ),
    };
    let _ = writeln!(m, "display_name = \"{display}\"");
    if let Some(p) = v.parent {
        let _ = writeln!(m, "base = \"{}\"", all[p].name);
    }
    let _ = writeln!(m, "relation = \"{}\"", v.relation.name());
    let _ = writeln!(m, "contributor = \"synthetic-bench\"");
    let _ = writeln!(m, "license = \"apache-2.0\"");
    let _ = writeln!(m, "parameters = {}", v.parameters);
    let _ = writeln!(m, "precision = \"{}\"", v.precision);
    let _ = writeln!(m, "bits_per_weight = {:?}", v.bits_per_weight);
    let _ = writeln!(
        m,
        "notes = \"invented by examples/synthetic_runs.rs for bench/leaderboard_scale.py; no model was run\""
    );
    let (spec, model) = backend_spec(v);
    let _ = writeln!(m, "\n[backend]\nspec = \"{spec}\"");
    if let Some(model) = model {
        let _ = writeln!(m, "args = {{ model = \"{model}\" }}");
    }
    m
}

/// How the answers are made up.
struct Synth<'a> {
    seed: u64,
    variants: &'a [Variant],
    /// Per task: how much easier (+) or harder (-) than a variant's skill.
    difficulty: Vec<f64>,
}

impl Synth<'_> {
    /// Variant `v`'s log-likelihoods of the choices of document `d` of task
    /// `t`, whose gold choice is `gold`.
    fn loglikelihoods(&self, v: usize, t: usize, d: usize, gold: usize) -> [f64; CHOICES] {
        let variant = &self.variants[v];
        let mut rng = Rng::keyed(&[self.seed, stream::ANSWER, v as u64, t as u64, d as u64]);
        match variant.parent {
            None => {
                let mut lls = [0.0; CHOICES];
                for l in &mut lls {
                    *l = -rng.range(1.0, 6.0);
                }
                let knows = {
                    let mut r = Rng::keyed(&[self.seed, stream::VARIANT_TASK, v as u64, t as u64]);
                    (variant.skill + self.difficulty[t] + 0.05 * r.normal()).clamp(0.02, 0.98)
                };
                if rng.uniform() < knows {
                    let best_other = (0..CHOICES)
                        .filter(|&i| i != gold)
                        .map(|i| lls[i])
                        .fold(f64::NEG_INFINITY, f64::max);
                    lls[gold] = lls[gold].max(best_other + rng.range(0.1, 1.6));
                }
                lls
            }
            Some(parent) => {
                let mut lls = self.loglikelihoods(parent, t, d, gold);
                for l in &mut lls {
                    *l += variant.noise * rng.normal();
                }
                lls[gold] += variant.shift;
                lls
            }
        }
    }
}

/// What every run shares: the plan and, per document, its request hashes
/// and gold index (hashed once here rather than once per variant).
struct Planned {
    plan: Plan,
    invocation: Invocation,
    hashes: Vec<Vec<Vec<String>>>,
    golds: Vec<Vec<usize>>,
    requests: usize,
    seconds: f64,
}

fn plan_tasks(tasks_dir: &Path) -> Result<Planned> {
    let started = Instant::now();
    let registry = Registry::scan(&[tasks_dir.to_path_buf()]);
    if let Some((path, e)) = registry.broken.first() {
        bail!("{}: {e}", path.display());
    }
    let mut invocation = Invocation::new(vec![SUITE.to_string()]);
    invocation.include_path = vec![tasks_dir.to_path_buf()];
    let plan = run::plan(&registry, &invocation, false)?;
    let mut hashes = Vec::new();
    let mut golds = Vec::new();
    let mut requests = 0;
    for task in &plan.tasks {
        let mut task_hashes = Vec::with_capacity(task.docs.len());
        let mut task_golds = Vec::with_capacity(task.docs.len());
        for doc in &task.docs {
            if doc.requests.len() != CHOICES {
                bail!(
                    "task {} document {}: {} requests, expected {CHOICES}",
                    task.config.task,
                    doc.doc_id,
                    doc.requests.len()
                );
            }
            requests += doc.requests.len();
            task_hashes.push(doc.requests.iter().map(|r| r.hash()).collect());
            let gold = doc
                .target
                .as_u64()
                .map(|g| g as usize)
                .filter(|&g| g < CHOICES)
                .ok_or_else(|| {
                    anyhow!(
                        "task {} document {}: target {} is not a choice index",
                        task.config.task,
                        doc.doc_id,
                        doc.target
                    )
                })?;
            task_golds.push(gold);
        }
        hashes.push(task_hashes);
        golds.push(task_golds);
    }
    Ok(Planned {
        plan,
        invocation,
        hashes,
        golds,
        requests,
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// Scores variant `v`'s invented answers and writes its run.
fn write_variant_run(v: usize, synth: &Synth, planned: &Planned, runs_dir: &Path) -> Result<()> {
    let started = Instant::now();
    let variant = &synth.variants[v];
    let mut by_hash = HashMap::with_capacity(planned.requests);
    for (t, (task_hashes, task_golds)) in planned.hashes.iter().zip(&planned.golds).enumerate() {
        for (d, (doc_hashes, &gold)) in task_hashes.iter().zip(task_golds).enumerate() {
            let lls = synth.loglikelihoods(v, t, d, gold);
            let best = (0..CHOICES)
                .max_by(|&a, &b| lls[a].total_cmp(&lls[b]))
                .unwrap_or(0);
            for (i, hash) in doc_hashes.iter().enumerate() {
                by_hash.insert(
                    hash.clone(),
                    Response::Loglikelihood {
                        logprob: lls[i],
                        is_greedy: i == best,
                    },
                );
            }
        }
    }
    let answers = Answers {
        by_hash,
        counts: RequestCounts {
            total: planned.requests,
            sent: planned.requests,
            ..RequestCounts::default()
        },
        seconds: started.elapsed().as_secs_f64(),
        overlong: Vec::new(),
    };
    let (spec, model) = backend_spec(variant);
    let record = Record {
        variant: variant.name.clone(),
        model: ModelIdentity {
            spec,
            fingerprint: format!("synthetic:{}", variant.name),
            details: BTreeMap::new(),
        },
        model_args: model
            .map(|m| ("model".to_string(), m))
            .into_iter()
            .collect(),
        invocation: planned.invocation.clone(),
        counts: answers.counts.clone(),
        skipped_documents: Vec::new(),
        merged_from: Vec::new(),
        seconds_planning: planned.seconds,
        seconds_inference: answers.seconds,
    };
    run::write(&planned.plan, &answers, &record, runs_dir)?;
    Ok(())
}

/// New runs beside old ones would make a mixed data set: refuse.
fn check_out_dir(out: &Path) -> Result<()> {
    for dir in [out.join("results").join("runs"), out.join("variants")] {
        if std::fs::read_dir(&dir).is_ok_and(|mut d| d.next().is_some()) {
            bail!(
                "{} already has files; remove it or choose another OUT_DIR",
                dir.display()
            );
        }
    }
    Ok(())
}

fn run(args: &Args) -> Result<()> {
    let started = Instant::now();
    std::fs::create_dir_all(&args.out).with_context(|| args.out.display().to_string())?;
    let out = std::fs::canonicalize(&args.out).with_context(|| args.out.display().to_string())?;
    let (tasks_dir, variants_dir) = (out.join("tasks"), out.join("variants"));
    let runs_dir = out.join("results").join("runs");
    write_tasks(&tasks_dir, args)?;
    let planned = plan_tasks(&tasks_dir)?;
    println!(
        "{} tasks, {} documents, {} requests planned in {:.2} s",
        planned.plan.tasks.len(),
        planned.golds.iter().map(Vec::len).sum::<usize>(),
        planned.requests,
        planned.seconds
    );
    let variants = lineage(args);
    std::fs::create_dir_all(&variants_dir).with_context(|| variants_dir.display().to_string())?;
    for (i, v) in variants.iter().enumerate() {
        let path = variants_dir.join(format!("{}.toml", v.name));
        std::fs::write(&path, manifest(v, &variants, i))
            .with_context(|| path.display().to_string())?;
    }
    let synth = Synth {
        seed: args.seed,
        variants: &variants,
        difficulty: (0..args.tasks)
            .map(|t| Rng::keyed(&[args.seed, stream::TASK_DIFFICULTY, t as u64]).range(-0.15, 0.15))
            .collect(),
    };
    let next = AtomicUsize::new(0);
    let done = AtomicUsize::new(0);
    let failure: Mutex<Option<anyhow::Error>> = Mutex::new(None);
    let every = (args.variants / 20).max(1);
    let writing = Instant::now();
    std::thread::scope(|scope| {
        for _ in 0..args.threads.min(args.variants) {
            scope.spawn(|| loop {
                let v = next.fetch_add(1, Ordering::Relaxed);
                if v >= variants.len() || failure.lock().map_or(true, |f| f.is_some()) {
                    return;
                }
                if let Err(e) = write_variant_run(v, &synth, &planned, &runs_dir) {
                    let e = e.context(format!("variant {}", variants[v].name));
                    if let Ok(mut f) = failure.lock() {
                        f.get_or_insert(e);
                    }
                    return;
                }
                let n = done.fetch_add(1, Ordering::Relaxed) + 1;
                if n % every == 0 || n == variants.len() {
                    eprintln!(
                        "{n}/{} runs written ({:.1} s)",
                        variants.len(),
                        writing.elapsed().as_secs_f64()
                    );
                }
            });
        }
    });
    if let Some(e) = failure.into_inner().ok().flatten() {
        return Err(e);
    }
    let seconds = started.elapsed().as_secs_f64();
    let originals = variants.iter().filter(|v| v.parent.is_none()).count();
    let summary = json!({
        "variants": args.variants,
        "tasks": args.tasks,
        "docs": args.docs,
        "seed": args.seed,
        "originals": originals,
        "derived": args.variants - originals,
        "seconds": seconds,
    });
    let marker = out.join("synthetic.json");
    std::fs::write(&marker, format!("{summary:#}\n"))
        .with_context(|| marker.display().to_string())?;
    let threads = args.threads.min(args.variants);
    println!(
        "{} runs ({originals} originals, {} derived) x {} tasks x {} documents in {seconds:.1} s; \
         {:.2} s of one thread per run, {threads} threads",
        args.variants,
        args.variants - originals,
        args.tasks,
        args.docs,
        writing.elapsed().as_secs_f64() * threads as f64 / args.variants as f64,
    );
    println!("wrote {}", out.display());
    Ok(())
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    if let Err(e) = check_out_dir(&args.out) {
        eprintln!("error: {e}");
        return ExitCode::from(2);
    }
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(4)
        }
    }
}
