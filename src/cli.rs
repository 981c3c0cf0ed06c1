//! Command-line arguments and the mapping of subcommands to library calls.
//!
//! Flags keep lm-eval's meaning where lm-eval has the same flag. Every error
//! becomes one line on stderr and an exit code: 2 for bad input (nothing was
//! run), 4 when a run could not finish.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::time::Instant;

use clap::{Args, Parser, Subcommand};

use crate::backend;
use crate::engine::{self, score, EngineError, Limit, TaskOptions};
use crate::prompt::chat::ChatTemplate;
use crate::results::{self, RunInfo};
use crate::task::registry::{builtin_tasks_dir, EntryKind, Node};
use crate::task::{Registry, TaskConfig, TaskError};

/// Exit codes shared by every command.
pub mod exit {
    pub const OK: i32 = 0;
    pub const GATE_FAIL: i32 = 1;
    pub const BAD_INPUT: i32 = 2;
    pub const GATE_INCONCLUSIVE: i32 = 3;
    pub const NOT_FINISHED: i32 = 4;
}

#[derive(Parser)]
#[command(
    name = "assay",
    version,
    about = "Score language-model variants on lm-evaluation-harness tasks"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Evaluate a model on tasks and write a run under --out.
    Run(RunArgs),
    /// Print the requests a run would send, as JSON lines (needs no model).
    Requests(RequestsArgs),
    /// List, show or validate task configs.
    #[command(subcommand)]
    Tasks(TasksCommand),
    /// Combine the shards of a run (`run --shard K/N`) into one run.
    Merge(MergeArgs),
    /// Score a variant manifest on a suite (a run under results/runs/NAME/).
    Score(ScoreArgs),
    /// Check variant manifests.
    #[command(subcommand)]
    Variants(VariantsCommand),
    /// Rebuild the leaderboard tables from every variant's latest run.
    Leaderboard(LeaderboardArgs),
    /// Gate a candidate run against a baseline, paired per document (exit 0
    /// pass, 1 fail, 3 inconclusive when the policy counts that as failure).
    Gate(GateArgs),
}

#[derive(Args)]
struct GateArgs {
    /// The reference: a run folder or a variant name (its latest complete run).
    #[arg(long)]
    baseline: String,
    /// The run to gate: a run folder or a variant name.
    #[arg(long, required_unless_present = "plan")]
    candidate: Option<String>,
    /// The policy file (TOML); without one: margin 1 point, alpha 0.05.
    #[arg(long)]
    policy: Option<PathBuf>,
    /// The allowed regression in points (overrides the policy's default).
    #[arg(long)]
    margin: Option<f64>,
    /// Where variant names are looked up: `<results>/runs/<name>/`.
    #[arg(long, default_value = "results")]
    results: PathBuf,
    /// Write a Markdown report (a pull-request comment) here.
    #[arg(long)]
    markdown: Option<PathBuf>,
    /// Write a JUnit XML report here.
    #[arg(long)]
    junit: Option<PathBuf>,
    /// Write the full result as JSON here.
    #[arg(long)]
    json: Option<PathBuf>,
    /// The published leaderboard's URL, for links to documents in Markdown.
    #[arg(long)]
    site_url: Option<String>,
    /// Under GitHub Actions: add the Markdown report to the job summary
    /// ($GITHUB_STEP_SUMMARY) and emit ::error / ::warning annotations.
    #[arg(long)]
    github: bool,
    /// Instead of gating: how many documents each task needs to detect a
    /// regression of --margin points, from the baseline's own variance.
    #[arg(long)]
    plan: bool,
}

#[derive(Args)]
struct LeaderboardArgs {
    /// The results folder; runs are read from `<results>/runs/`.
    #[arg(long, default_value = "results")]
    results: PathBuf,
    /// Where the tables go (default `<results>/leaderboard`).
    #[arg(long)]
    out: Option<PathBuf>,
    /// The variant manifests.
    #[arg(long, default_value = "variants")]
    variants: PathBuf,
    /// The suite whose tasks count: a name (tasks/suites/NAME.yaml) or a
    /// suite file.
    #[arg(long, default_value = "default")]
    suite: String,
    /// More task configs: where the suite's tasks are, if not built in
    /// (their current configs tell which runs are stale).
    #[arg(long)]
    include_path: Vec<PathBuf>,
}

#[derive(Subcommand)]
enum VariantsCommand {
    /// Check manifests (files or folders; default `variants/`): every field,
    /// names, bases, lineage cycles and weights hashes. One line per problem.
    Validate {
        #[arg(value_name = "PATH")]
        paths: Vec<PathBuf>,
    },
}

#[derive(Args)]
struct ScoreArgs {
    /// The variant's manifest, e.g. variants/my-variant.toml.
    manifest: PathBuf,
    /// The suite: a group config in tasks/suites/ (default: `default`).
    #[arg(long, default_value = "default")]
    suite: String,
    /// Documents per task (for a quick look; a leaderboard wants all).
    #[arg(long)]
    limit: Option<f64>,
    /// Where runs go: `<out>/<variant>/<run-id>/`.
    #[arg(long, default_value = "results/runs")]
    out: PathBuf,
    #[command(flatten)]
    cache: CacheArgs,
    #[arg(long)]
    quiet: bool,
}

#[derive(Args)]
struct MergeArgs {
    /// The run folders of every shard.
    #[arg(required = true, value_name = "RUN_DIR")]
    runs: Vec<PathBuf>,
    /// Where the merged run goes: `<out>/<variant>/<run-id>/`.
    #[arg(long, default_value = "results/runs")]
    out: PathBuf,
    /// Hide progress bars.
    #[arg(long)]
    quiet: bool,
}

#[derive(Args, Clone)]
struct TaskArgs {
    /// Comma-separated task, group or tag names.
    #[arg(long, value_delimiter = ',', required = true)]
    tasks: Vec<String>,
    /// Extra folders (or files) of task configs; later ones win on name clashes.
    #[arg(long = "include-path")]
    include_path: Vec<PathBuf>,
    /// Few-shot examples per document (overrides the configs' num_fewshot).
    #[arg(long = "num-fewshot")]
    num_fewshot: Option<usize>,
    /// Documents per task: a count, or a fraction below 1.0.
    #[arg(long)]
    limit: Option<f64>,
    /// Seeds as lm-eval takes them: one integer for all, or
    /// `python,numpy,torch,fewshot`; only the few-shot seed affects prompts.
    #[arg(long, default_value = "0,1234,1234,1234")]
    seed: String,
    /// Text prepended to every prompt, before the description.
    #[arg(long = "system-instruction")]
    system_instruction: Option<String>,
    /// Run only shard K of N (documents with doc_id % N == K), written `K/N`.
    #[arg(long)]
    shard: Option<String>,
    /// Render prompts with the model's chat template.
    #[arg(long = "apply-chat-template")]
    apply_chat_template: bool,
    /// With a chat template: few-shot examples as separate turns (on by
    /// default with --apply-chat-template, as in lm-eval; `false` turns it off).
    #[arg(long = "fewshot-as-multiturn", num_args = 0..=1, default_missing_value = "true")]
    fewshot_as_multiturn: Option<bool>,
}

/// Where a run keeps its answers.
#[derive(Args)]
struct CacheArgs {
    /// The response cache (SQLite). Default: responses.sqlite under
    /// $ASSAY_CACHE_DIR, else ~/.cache/assay.
    #[arg(long, value_name = "PATH")]
    cache: Option<PathBuf>,
    /// Neither read nor write the response cache.
    #[arg(long = "no-cache", conflicts_with = "cache")]
    no_cache: bool,
}

#[derive(Args)]
struct RequestsArgs {
    #[command(flatten)]
    task: TaskArgs,
    /// Only for --apply-chat-template: the model whose template to use.
    #[arg(long)]
    model: Option<String>,
    #[arg(long = "model-arg")]
    model_arg: Vec<String>,
}

#[derive(Args)]
struct RunArgs {
    /// The backend and its target, e.g. `llama:models/x.gguf`.
    #[arg(long)]
    model: String,
    /// Backend options, `key=value`; repeatable.
    #[arg(long = "model-arg")]
    model_arg: Vec<String>,
    #[command(flatten)]
    task: TaskArgs,
    /// The variant name the run is filed under (default: the model file's stem).
    #[arg(long)]
    variant: Option<String>,
    /// Where runs go: `<out>/<variant>/<run-id>/`.
    #[arg(long, default_value = "results/runs")]
    out: PathBuf,
    /// Accepted for lm-eval compatibility: assay always writes per-document samples.
    #[arg(long = "log-samples")]
    log_samples: bool,
    /// Leave out (and record in run.json) documents with a request longer
    /// than the model's context, instead of stopping with an error. Nothing
    /// is ever truncated.
    #[arg(long = "skip-overlong")]
    skip_overlong: bool,
    #[command(flatten)]
    cache: CacheArgs,
    /// Hide progress bars.
    #[arg(long)]
    quiet: bool,
}

#[derive(Subcommand)]
enum TasksCommand {
    /// List the known tasks, groups and tags: for each task, whether its
    /// Python hooks have native ports, whether its data is cached, where the
    /// data comes from and which file defines it.
    List {
        /// Only these names (default: all).
        names: Vec<String>,
        #[arg(long = "include-path")]
        include_path: Vec<PathBuf>,
    },
    /// Download the Hub datasets of tasks or groups into the cache, so later
    /// runs work offline (HF_HUB_OFFLINE=1).
    Fetch {
        #[arg(required = true, value_delimiter = ',')]
        names: Vec<String>,
        #[arg(long = "include-path")]
        include_path: Vec<PathBuf>,
    },
    /// Print one task's merged config as JSON.
    Show {
        name: String,
        #[arg(long = "include-path")]
        include_path: Vec<PathBuf>,
    },
    /// Check config files: syntax, fields, data, and every document's prompt.
    Validate {
        #[arg(required = true)]
        paths: Vec<PathBuf>,
    },
}

/// Any failure a command reports, with its exit code.
#[derive(Debug, thiserror::Error)]
enum CliError {
    #[error("{0}")]
    Input(String),
    #[error("{0}")]
    NotFinished(String),
}

impl From<EngineError> for CliError {
    fn from(e: EngineError) -> Self {
        if e.is_input() {
            CliError::Input(e.to_string())
        } else {
            CliError::NotFinished(e.to_string())
        }
    }
}

impl From<TaskError> for CliError {
    fn from(e: TaskError) -> Self {
        CliError::Input(e.to_string())
    }
}

pub fn main() -> i32 {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() {
                exit::BAD_INPUT
            } else {
                exit::OK
            };
            let _ = e.print();
            return code;
        }
    };
    let outcome = match cli.command {
        Command::Run(args) => run(args),
        Command::Requests(args) => requests(args),
        Command::Tasks(cmd) => tasks(cmd),
        Command::Merge(args) => merge(args),
        Command::Score(args) => score_variant(args),
        Command::Variants(VariantsCommand::Validate { paths }) => validate_variants(paths),
        Command::Leaderboard(args) => leaderboard(args),
        Command::Gate(args) => return gate(args),
    };
    match outcome {
        Ok(()) => exit::OK,
        Err(CliError::Input(msg)) => {
            eprintln!("error: {msg}");
            exit::BAD_INPUT
        }
        Err(CliError::NotFinished(msg)) => {
            eprintln!("error: {msg}");
            exit::NOT_FINISHED
        }
    }
}

fn registry(include_paths: &[PathBuf]) -> Result<Registry, CliError> {
    let mut roots: Vec<PathBuf> = builtin_tasks_dir().into_iter().collect();
    for p in include_paths {
        if !p.exists() {
            return Err(CliError::Input(format!(
                "--include-path {}: no such file or folder",
                p.display()
            )));
        }
        roots.push(p.clone());
    }
    Ok(Registry::scan(&roots))
}

fn parse_seed(seed: &str) -> Result<u64, CliError> {
    let parts: Vec<&str> = seed.split(',').map(str::trim).collect();
    let fewshot = match parts.as_slice() {
        [one] => one,
        [_, _, _, fewshot] => fewshot,
        _ => {
            return Err(CliError::Input(format!(
                "--seed {seed}: give one integer or four comma-separated integers"
            )))
        }
    };
    fewshot.parse::<u64>().map_err(|_| {
        CliError::Input(format!(
            "--seed {seed}: `{fewshot}` is not a non-negative integer"
        ))
    })
}

fn task_options(args: &TaskArgs, show_progress: bool) -> Result<TaskOptions, CliError> {
    let limit = match args.limit {
        None => None,
        Some(x) if x <= 0.0 || !x.is_finite() => {
            return Err(CliError::Input(format!(
                "--limit {x}: must be a positive count or a fraction in (0, 1)"
            )))
        }
        Some(x) if x < 1.0 => Some(Limit::Fraction(x)),
        Some(x) if x.fract() == 0.0 => Some(Limit::Count(x as usize)),
        Some(x) => {
            return Err(CliError::Input(format!(
                "--limit {x}: a count must be a whole number"
            )))
        }
    };
    let shard = match &args.shard {
        None => None,
        Some(s) => {
            let parsed = s.split_once('/').and_then(|(k, n)| {
                Some((
                    k.trim().parse::<usize>().ok()?,
                    n.trim().parse::<usize>().ok()?,
                ))
            });
            match parsed {
                Some((k, n)) if n > 0 && k < n => Some((k, n)),
                _ => {
                    return Err(CliError::Input(format!(
                        "--shard {s}: write K/N with 0 <= K < N, e.g. 0/4"
                    )))
                }
            }
        }
    };
    Ok(TaskOptions {
        num_fewshot: args.num_fewshot,
        limit,
        fewshot_seed: parse_seed(&args.seed)?,
        system_instruction: args.system_instruction.clone(),
        shard,
        show_progress,
        chat_template: None,
        fewshot_as_multiturn: args
            .fewshot_as_multiturn
            .unwrap_or(args.apply_chat_template),
    })
}

fn requests(args: RequestsArgs) -> Result<(), CliError> {
    let RequestsArgs {
        task: args,
        model,
        model_arg,
    } = args;
    let registry = registry(&args.include_path)?;
    let mut options = task_options(&args, false)?;
    if args.apply_chat_template {
        let spec = model.ok_or_else(|| {
            CliError::Input(
                "--apply-chat-template needs --model: the template is the model's".into(),
            )
        })?;
        let opened = open_backend(&spec, &parse_model_args(&model_arg)?)?;
        options.chat_template = Some(chat_template(opened.as_ref(), &spec)?);
    }
    let plan = engine::plan(&registry, &args.tasks, &options)?;
    report_skipped(&plan);
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    for task in &plan.tasks {
        for doc in &task.docs {
            for (idx, request) in doc.requests.iter().enumerate() {
                let line = serde_json::json!({
                    "task": task.config.task,
                    "doc_id": doc.doc_id,
                    "request_type": request.kind(),
                    "idx": idx,
                    "arguments": request.arguments(),
                });
                writeln!(out, "{line}")
                    .map_err(|e| CliError::NotFinished(format!("writing to stdout: {e}")))?;
            }
        }
    }
    out.flush()
        .map_err(|e| CliError::NotFinished(format!("writing to stdout: {e}")))?;
    Ok(())
}

fn open_backend(
    spec: &str,
    args: &BTreeMap<String, String>,
) -> Result<Box<dyn backend::Backend>, CliError> {
    backend::open(spec, args).map_err(|e| match e {
        backend::BackendError::Failed(m) => CliError::NotFinished(m),
        other => CliError::Input(other.to_string()),
    })
}

/// The model's chat template, compiled.
fn chat_template(
    model: &dyn backend::Backend,
    spec: &str,
) -> Result<std::sync::Arc<ChatTemplate>, CliError> {
    if model.chat_messages() {
        return Ok(std::sync::Arc::new(ChatTemplate::messages_json()));
    }
    let t = model.chat_template().ok_or_else(|| {
        CliError::Input(format!(
            "--apply-chat-template: the model {spec} has no chat template"
        ))
    })?;
    ChatTemplate::new(&t.template, &t.bos_token, &t.eos_token)
        .map(std::sync::Arc::new)
        .map_err(|e| CliError::Input(format!("--apply-chat-template: {e}")))
}

fn report_skipped(plan: &engine::Plan) {
    for (name, why) in plan.skipped() {
        eprintln!("warning: skipped task `{name}`: {why}");
    }
}

fn parse_model_args(args: &[String]) -> Result<BTreeMap<String, String>, CliError> {
    let mut out = BTreeMap::new();
    for a in args {
        for part in a.split(',').filter(|p| !p.is_empty()) {
            let (k, v) = part
                .split_once('=')
                .ok_or_else(|| CliError::Input(format!("--model-arg {part}: write key=value")))?;
            out.insert(k.trim().to_string(), v.trim().to_string());
        }
    }
    Ok(out)
}

fn run(args: RunArgs) -> Result<(), CliError> {
    let started = Instant::now();
    let registry = registry(&args.task.include_path)?;
    let mut options = task_options(&args.task, !args.quiet)?;
    let model_args = parse_model_args(&args.model_arg)?;
    let variant = match &args.variant {
        Some(v) => v.clone(),
        None => backend::default_variant_name(&args.model),
    };
    if variant.is_empty() || variant.contains(['/', '\\']) || variant.starts_with('.') {
        return Err(CliError::Input(format!(
            "--variant {variant:?}: use a plain name (letters, digits, - _ .)"
        )));
    }
    // The chat template comes from the model, so then it is opened first.
    let mut model = None;
    if args.task.apply_chat_template {
        let opened = open_backend(&args.model, &model_args)?;
        options.chat_template = Some(chat_template(opened.as_ref(), &args.model)?);
        model = Some(opened);
    }
    let mut plan = engine::plan(&registry, &args.task.tasks, &options)?;
    report_skipped(&plan);
    let planning = started.elapsed().as_secs_f64();
    let mut model = match model {
        Some(m) => m,
        None => open_backend(&args.model, &model_args)?,
    };
    let overlong = match args.skip_overlong {
        true => engine::Overlong::Skip,
        false => engine::Overlong::Fail,
    };
    let cache = open_cache(&args.cache, model.identity())?;
    let answers = engine::execute(
        &plan,
        model.as_mut(),
        &engine::ExecuteOptions {
            show_progress: !args.quiet,
            overlong,
            cache: cache.as_ref(),
        },
    )?;
    let skipped_documents = engine::drop_overlong(&mut plan, &answers);
    for doc in &skipped_documents {
        eprintln!(
            "warning: task `{}`, document {} left out: {}",
            doc.task, doc.doc_id, doc.reason
        );
    }
    let invocation = engine::plan::Invocation {
        tasks: args.task.tasks.clone(),
        include_path: args.task.include_path.clone(),
        num_fewshot: options.num_fewshot,
        limit: options.limit,
        fewshot_seed: options.fewshot_seed,
        system_instruction: options.system_instruction.clone(),
        chat_template: options
            .chat_template
            .as_deref()
            .map(engine::plan::ChatTemplateRecord::of),
        fewshot_as_multiturn: options.fewshot_as_multiturn,
    };
    let info = RunInfo {
        variant,
        model: model.identity().clone(),
        model_args,
        fewshot_seed: options.fewshot_seed,
        limit: args.task.limit.map(|l| l.to_string()),
        shard: options.shard,
        counts: answers.counts.clone(),
        skipped_documents,
        invocation,
        merged_from: Vec::new(),
        seconds_planning: planning,
        seconds_inference: answers.seconds,
    };
    write_and_report(&plan, &answers, &info, &args.out)
}

/// Scores a run's answers, writes the run folder and prints the summary.
fn write_and_report(
    plan: &engine::Plan,
    answers: &engine::Answers,
    info: &RunInfo,
    out: &std::path::Path,
) -> Result<(), CliError> {
    let mut scored = Vec::new();
    for task in &plan.tasks {
        scored.push(score::score_task(task, answers)?);
    }
    let groups = score::score_groups(&plan.tree, &scored);
    let run_id = results::new_run_id(&info.variant);
    let run_json = results::run_json(plan, &scored, &groups, info, &run_id);
    let dir = out.join(&info.variant).join(&run_id);
    results::write_run(&dir, &run_json, plan, &scored)
        .map_err(|e| CliError::NotFinished(e.to_string()))?;
    print!("{}", summary_table(plan, &scored, &groups));
    println!("\nwrote {}", dir.display());
    Ok(())
}

/// A suite's file: `tasks/suites/<name>.yaml`, or the file itself.
fn suite_file(name: &str) -> Result<PathBuf, CliError> {
    let path = PathBuf::from(name);
    if name.ends_with(".yaml") || name.ends_with(".yml") {
        return if path.is_file() {
            Ok(path)
        } else {
            Err(CliError::Input(format!("--suite {name}: no such file")))
        };
    }
    builtin_tasks_dir()
        .map(|d| d.join("suites").join(format!("{name}.yaml")))
        .filter(|p| p.is_file())
        .ok_or_else(|| {
            CliError::Input(format!(
                "--suite {name}: there is no tasks/suites/{name}.yaml"
            ))
        })
}

/// `assay gate`: its exit code says the verdict.
fn gate(args: GateArgs) -> i32 {
    match gate_verdict(args) {
        Ok(code) => code,
        Err(message) => {
            eprintln!("error: {message}");
            exit::BAD_INPUT
        }
    }
}

fn gate_verdict(args: GateArgs) -> Result<i32, String> {
    use crate::gate::{self, policy::Inconclusive, report, Policy, Verdict};
    let mut policy = match &args.policy {
        Some(path) => Policy::read(path).map_err(|e| e.to_string())?,
        None => Policy::default(),
    };
    if let Some(m) = args.margin {
        policy = policy.with_margin(m);
        policy.check().map_err(|e| format!("--margin: {e}"))?;
    }
    let runs = args.results.join("runs");
    let baseline = gate::find_run(&args.baseline, &runs).map_err(|e| e.to_string())?;
    if args.plan {
        let margin = policy.default.margin;
        let plan = gate::plan(&baseline, &policy, margin).map_err(|e| e.to_string())?;
        println!(
            "documents needed to detect a {margin}-point regression (alpha {}, power {}):",
            policy.default.alpha, policy.default.power
        );
        for (task, (have, need)) in plan {
            let verdict = if have as u64 >= need {
                "enough"
            } else {
                "too few"
            };
            println!("  {task}: {need} needed, {have} in the run ({verdict})");
        }
        return Ok(exit::OK);
    }
    let candidate_spec = args.candidate.as_deref().unwrap_or_default();
    let candidate = gate::find_run(candidate_spec, &runs).map_err(|e| e.to_string())?;
    let result = gate::gate(&baseline, &candidate, &policy).map_err(|e| e.to_string())?;
    let write = |path: &Option<PathBuf>, text: String| -> Result<(), String> {
        match path {
            Some(p) => std::fs::write(p, text).map_err(|e| format!("{}: {e}", p.display())),
            None => Ok(()),
        }
    };
    write(
        &args.markdown,
        report::markdown(&result, args.site_url.as_deref()),
    )?;
    write(&args.junit, report::junit(&result))?;
    write(
        &args.json,
        serde_json::to_string_pretty(&result).unwrap_or_default(),
    )?;
    print!("{}", report::summary(&result));
    if args.github {
        if let Some(path) = std::env::var_os("GITHUB_STEP_SUMMARY") {
            use std::io::Write as _;
            let text = report::markdown(&result, args.site_url.as_deref());
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)
                .and_then(|mut f| f.write_all(text.as_bytes()))
                .map_err(|e| format!("GITHUB_STEP_SUMMARY: {e}"))?;
        }
        print!("{}", report::github_annotations(&result));
    }
    Ok(match result.verdict {
        Verdict::Pass => exit::OK,
        Verdict::Fail => exit::GATE_FAIL,
        Verdict::Inconclusive if policy.default.inconclusive == Inconclusive::Fail => {
            exit::GATE_INCONCLUSIVE
        }
        Verdict::Inconclusive => exit::OK,
    })
}

/// Each suite task's config hash as the task configs are now.
fn current_config_hashes(
    suite: &std::path::Path,
    include_paths: &[PathBuf],
) -> Result<BTreeMap<String, String>, CliError> {
    let entries =
        crate::leaderboard::read_suite(suite).map_err(|e| CliError::Input(e.to_string()))?;
    // The suite's tasks as the suite runs them (its per-entry overrides,
    // such as shot counts, are part of each task's config).
    let group = std::fs::read_to_string(suite)
        .ok()
        .and_then(|text| crate::task::yaml::parse(&text, suite).ok())
        .and_then(|v| v.get("group").and_then(|g| g.as_str()).map(str::to_string));
    let mut registry = registry(include_paths)?;
    if let (Some(name), Some(folder)) = (&group, suite.parent()) {
        if registry.get(name).is_none() {
            let mut paths = include_paths.to_vec();
            paths.push(folder.to_path_buf());
            registry = self::registry(&paths)?;
        }
    }
    let mut found: BTreeMap<String, String> = BTreeMap::new();
    if let Some(name) = &group {
        if let Ok(tree) = registry.select(std::slice::from_ref(name)) {
            fn walk(node: &Node, found: &mut BTreeMap<String, String>) {
                match node {
                    Node::Task(t) => {
                        found.insert(t.task.clone(), t.config_hash());
                    }
                    Node::Group { config, children } => {
                        let leaves = node.tasks();
                        let hashes: Vec<(String, String)> = leaves
                            .iter()
                            .map(|t| (t.task.clone(), t.config_hash()))
                            .collect();
                        found.insert(
                            config.group.clone(),
                            crate::leaderboard::combine_hashes(
                                hashes.iter().map(|(a, b)| (a.as_str(), b.as_str())),
                            ),
                        );
                        children.iter().for_each(|c| walk(c, found));
                    }
                    Node::Skipped { .. } => {}
                }
            }
            tree.iter().for_each(|n| walk(n, &mut found));
        }
    }
    let mut hashes = BTreeMap::new();
    for entry in entries.keys() {
        if let Some(h) = found.get(entry) {
            hashes.insert(entry.clone(), h.clone());
            continue;
        }
        // An entry outside the suite's group: its own config.
        let selection = registry.select(std::slice::from_ref(entry)).map_err(|e| {
            CliError::Input(format!(
                "{}: suite task {entry}: {e}; give --include-path for its config",
                suite.display()
            ))
        })?;
        if let Some(config) = selection
            .iter()
            .flat_map(|n| n.tasks())
            .find(|c| &c.task == entry)
        {
            hashes.insert(entry.clone(), config.config_hash());
        }
    }
    Ok(hashes)
}

fn leaderboard(args: LeaderboardArgs) -> Result<(), CliError> {
    let suite = suite_file(&args.suite)?;
    let out = args.out.unwrap_or_else(|| args.results.join("leaderboard"));
    let hashes = current_config_hashes(&suite, &args.include_path)?;
    let inputs = crate::leaderboard::Inputs {
        results: &args.results,
        variants: &args.variants,
        suite: &suite,
        config_hashes: Some(&hashes),
    };
    let written = crate::leaderboard::build(&inputs, &out).map_err(|e| match e.kind {
        crate::leaderboard::ErrorKind::Input => CliError::Input(e.to_string()),
        crate::leaderboard::ErrorKind::Output => CliError::NotFinished(e.to_string()),
    })?;
    println!("{} variant(s)", written.variants);
    if written.stale > 0 {
        println!(
            "{} variant(s) have stale runs (a suite task's config changed): flagged, not ranked; score them again",
            written.stale
        );
    }
    for file in &written.files {
        println!("wrote {}", file.display());
    }
    Ok(())
}

fn validate_variants(paths: Vec<PathBuf>) -> Result<(), CliError> {
    let paths = if paths.is_empty() {
        vec![PathBuf::from("variants")]
    } else {
        paths
    };
    let (variants, mut problems) = crate::variant::read_all(&paths);
    problems.extend(crate::variant::validate(&variants));
    if problems.is_empty() {
        println!("{} manifest(s) valid", variants.len());
        return Ok(());
    }
    for p in &problems {
        eprintln!("error: {p}");
    }
    Err(CliError::Input(format!(
        "{} problem(s) in {} manifest(s)",
        problems.len(),
        variants.len()
    )))
}

/// `assay score`: a run of the suite with the manifest's backend, filed
/// under the variant's name, after its manifest (and its lineage among the
/// manifests beside it) and its weights check out.
fn score_variant(args: ScoreArgs) -> Result<(), CliError> {
    use crate::variant::{self, WeightsCheck};
    let folder = args
        .manifest
        .parent()
        .unwrap_or(std::path::Path::new("."))
        .to_path_buf();
    let variant = variant::read(&args.manifest).map_err(|p| CliError::Input(p.to_string()))?;
    let (all, _) = variant::read_all(&[folder]);
    // Every manifest beside it, for the lineage; only its own weights are read.
    let mut problems: Vec<variant::Problem> = variant::validate_fields(&all)
        .into_iter()
        .filter(|p| p.path == variant.path)
        .collect();
    if !all.iter().any(|v| v.path == variant.path) {
        problems.extend(variant::validate_fields(std::slice::from_ref(&variant)));
    }
    if let Some(p) = problems.first() {
        return Err(CliError::Input(p.to_string()));
    }
    match variant::check_weights(&variant) {
        WeightsCheck::Missing(path) => {
            return Err(CliError::Input(format!(
                "{}: the weights file {} is not there; fetch it before scoring",
                args.manifest.display(),
                path.display()
            )))
        }
        WeightsCheck::Mismatch { path, actual } => {
            return Err(CliError::Input(format!(
                "{}: the weights {} have SHA-256 {actual}, not the manifest's",
                args.manifest.display(),
                path.display()
            )))
        }
        WeightsCheck::Matches | WeightsCheck::Unchecked => {}
    }
    let model = match variant::weights_file(&variant) {
        Some(path) => format!("llama:{}", path.display()),
        None => variant.backend.spec.clone(),
    };
    if suite_file(&args.suite)?.as_path() == std::path::Path::new(&args.suite) {
        return Err(CliError::Input(format!(
            "--suite {}: give a suite's name (tasks/suites/NAME.yaml), not a file",
            args.suite
        )));
    }
    run(RunArgs {
        model,
        model_arg: variant
            .backend
            .args
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect(),
        task: TaskArgs {
            tasks: vec![args.suite.clone()],
            include_path: Vec::new(),
            num_fewshot: None,
            limit: args.limit,
            seed: "0,1234,1234,1234".into(),
            system_instruction: None,
            shard: None,
            apply_chat_template: variant.chat_template,
            fewshot_as_multiturn: None,
        },
        variant: Some(variant.name.clone()),
        out: args.out,
        log_samples: false,
        skip_overlong: false,
        cache: args.cache,
        quiet: args.quiet,
    })
}

fn merge(args: MergeArgs) -> Result<(), CliError> {
    let registry_for = |paths: &[PathBuf]| {
        registry(paths).map_err(|e| match e {
            CliError::Input(m) | CliError::NotFinished(m) => EngineError::Input(m),
        })
    };
    let merged = engine::merge::merge(&args.runs, registry_for, !args.quiet)?;
    let info = RunInfo {
        variant: merged.variant,
        model: merged.model,
        model_args: merged.model_args,
        fewshot_seed: merged.invocation.fewshot_seed,
        limit: merged.invocation.limit.map(|l| match l {
            Limit::Count(n) => n.to_string(),
            Limit::Fraction(f) => f.to_string(),
        }),
        shard: None,
        counts: merged.answers.counts.clone(),
        skipped_documents: merged.skipped_documents,
        invocation: merged.invocation,
        merged_from: merged.run_ids,
        seconds_planning: merged.seconds_planning,
        seconds_inference: merged.answers.seconds,
    };
    write_and_report(&merged.plan, &merged.answers, &info, &args.out)
}

/// The response cache a run uses, bound to its model; none with --no-cache.
fn open_cache(
    args: &CacheArgs,
    model: &backend::ModelIdentity,
) -> Result<Option<crate::cache::Cache>, CliError> {
    if args.no_cache {
        return Ok(None);
    }
    let path =
        match args.cache.clone().or_else(crate::cache::default_path) {
            Some(path) => path,
            None => return Err(CliError::Input(
                "no place for the response cache: set HOME or ASSAY_CACHE_DIR, give --cache PATH, \
                 or run with --no-cache"
                    .into(),
            )),
        };
    crate::cache::Cache::open(&path, &model.cache_key())
        .map(Some)
        .map_err(|e| CliError::Input(format!("{e}; or run with --no-cache")))
}

/// lm-eval's summary table (Markdown).
fn summary_table(
    plan: &engine::Plan,
    tasks: &[score::TaskScores],
    groups: &[score::GroupScores],
) -> String {
    let mut rows: Vec<[String; 9]> = Vec::new();
    let fmt = |x: f64| format!("{x:.4}");
    for (planned, scored) in plan.tasks.iter().zip(tasks) {
        let mut first = true;
        for (key, s) in &scored.scores {
            let (metric, filter) = key.split_once(',').unwrap_or((key, "none"));
            let hib = planned
                .metrics
                .iter()
                .find(|m| m.name == metric)
                .map(|m| m.higher_is_better)
                .unwrap_or(true);
            rows.push([
                if first {
                    planned.config.task.clone()
                } else {
                    String::new()
                },
                if first {
                    crate::prompt::pyvalue::py_str(&planned.config.version())
                } else {
                    String::new()
                },
                filter.to_string(),
                if first {
                    planned.num_fewshot.to_string()
                } else {
                    String::new()
                },
                metric.to_string(),
                if hib { "↑" } else { "↓" }.to_string(),
                fmt(s.value),
                "±".to_string(),
                s.stderr.map_or("N/A".into(), fmt),
            ]);
            first = false;
        }
    }
    for g in groups {
        for (key, s) in &g.scores {
            let (metric, filter) = key.split_once(',').unwrap_or((key, "none"));
            rows.push([
                g.group.clone(),
                String::new(),
                filter.to_string(),
                String::new(),
                metric.to_string(),
                "↑".into(),
                fmt(s.value),
                "±".into(),
                s.stderr.map_or("N/A".into(), fmt),
            ]);
        }
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

fn tasks(cmd: TasksCommand) -> Result<(), CliError> {
    match cmd {
        TasksCommand::List {
            names,
            include_path,
        } => {
            let registry = registry(&include_path)?;
            let settings = crate::data::hub::HubSettings::from_env();
            let builtin =
                crate::task::registry::builtin_tasks_dir().and_then(|d| d.canonicalize().ok());
            use std::fmt::Write as _;
            let mut out = String::new();
            let _ = writeln!(
                out,
                "{:<40} {:<8} {:<10} {:<8} {:<44} source",
                "name", "kind", "hooks", "cached", "data"
            );
            for e in registry.entries() {
                if !names.is_empty() && !names.contains(&e.name) {
                    continue;
                }
                let kind = match &e.kind {
                    EntryKind::Task => "task".to_string(),
                    EntryKind::Group => "group".to_string(),
                    EntryKind::PythonTask => "python".to_string(),
                    EntryKind::Tag(m) => format!("tag({})", m.len()),
                };
                let source = e.path.as_ref().map_or(String::new(), |p| {
                    let inside = builtin
                        .as_ref()
                        .zip(p.canonicalize().ok())
                        .is_some_and(|(b, p)| p.starts_with(b));
                    format!("{}{}", if inside { "built-in: " } else { "" }, p.display())
                });
                let (hooks, cached, data) = match registry.task_config(&e.name) {
                    Some(Ok(t)) => task_status(&t, &settings),
                    Some(Err(TaskError::PythonHook { .. })) => {
                        ("missing".into(), "-".into(), "-".into())
                    }
                    Some(Err(err)) => ("error".into(), "-".into(), first_words(&err.to_string())),
                    None if matches!(e.kind, EntryKind::Group) && !names.is_empty() => {
                        group_status(&registry, &e.name, &settings)
                    }
                    None => ("-".into(), "-".into(), "-".into()),
                };
                let _ = writeln!(
                    out,
                    "{:<40} {:<8} {:<10} {:<8} {:<44} {source}",
                    e.name, kind, hooks, cached, data
                );
            }
            // A closed pipe (`| head`) ends the listing quietly.
            let _ = std::io::Write::write_all(&mut std::io::stdout().lock(), out.as_bytes());
            for (path, err) in &registry.broken {
                eprintln!("warning: {}: not loaded: {err}", path.display());
            }
            Ok(())
        }
        TasksCommand::Fetch {
            names,
            include_path,
        } => {
            let registry = registry(&include_path)?;
            let selection = registry.select(&names)?;
            let mut seen = std::collections::BTreeSet::new();
            for node in &selection {
                for t in node.tasks() {
                    if !seen.insert(t.task.clone()) {
                        continue;
                    }
                    let dataset = crate::data::load(
                        t.dataset_path.as_deref(),
                        t.dataset_name.as_deref(),
                        &t.dataset_kwargs,
                        &t.source,
                        &crate::engine::plan::needed_splits(t),
                    )
                    .map_err(|e| CliError::Input(e.to_string()))?;
                    let docs: usize = dataset.splits.values().map(Vec::len).sum();
                    let origin = dataset
                        .source
                        .as_ref()
                        .map(|s| {
                            format!(
                                "{}@{}",
                                s["repo"].as_str().unwrap_or(""),
                                s["commit"].as_str().unwrap_or("")
                            )
                        })
                        .unwrap_or_else(|| "local files".into());
                    println!(
                        "{}: {origin}: {} file(s), {docs} documents in {}",
                        t.task,
                        dataset.files.len(),
                        dataset.split_names()
                    );
                }
            }
            Ok(())
        }
        TasksCommand::Show { name, include_path } => {
            let registry = registry(&include_path)?;
            let selection = registry.select(std::slice::from_ref(&name))?;
            for node in &selection {
                for t in node.tasks() {
                    println!(
                        "{}",
                        serde_json::to_string_pretty(&serde_json::Value::Object(t.raw.clone()))
                            .unwrap_or_default()
                    );
                }
            }
            Ok(())
        }
        TasksCommand::Validate { paths } => validate(&paths),
    }
}

/// A task's row in `assay tasks list`: hook ports, cache state, data origin.
fn task_status(
    t: &crate::task::TaskConfig,
    settings: &crate::data::hub::HubSettings,
) -> (String, String, String) {
    use crate::data::hub::{cache_state, CacheState};
    let hooks = t.hooks();
    let hooks = if hooks.is_empty() {
        "-".to_string()
    } else {
        match hooks.iter().find_map(|(f, h)| t.port(f, h).err()) {
            None => "native".to_string(),
            Some(TaskError::HookDiffers { .. }) => "differs".to_string(),
            Some(_) => "missing".to_string(),
        }
    };
    let path = t.dataset_path.as_deref().unwrap_or("");
    match crate::data::hub_ref(path, t.dataset_name.as_deref(), &t.dataset_kwargs) {
        Some(r) => {
            let state = cache_state(settings, &r, &crate::engine::plan::needed_splits(t));
            let cached = match state {
                CacheState::Complete => "yes",
                CacheState::Partial => "partial",
                CacheState::Absent => "no",
            };
            let data = format!(
                "hf:{}{}@{}",
                r.repo,
                r.config
                    .as_ref()
                    .map(|c| format!(":{c}"))
                    .unwrap_or_default(),
                r.revision
            );
            (hooks, cached.to_string(), data)
        }
        None => {
            let files = match t.dataset_kwargs.get("data_files") {
                Some(serde_json::Value::String(f)) => f.clone(),
                Some(serde_json::Value::Object(m)) => m
                    .values()
                    .flat_map(|v| match v {
                        serde_json::Value::String(s) => vec![s.clone()],
                        serde_json::Value::Array(a) => a
                            .iter()
                            .filter_map(|x| x.as_str().map(str::to_string))
                            .collect(),
                        _ => vec![],
                    })
                    .collect::<Vec<_>>()
                    .join(","),
                _ => String::new(),
            };
            (hooks, "local".to_string(), format!("{path}:{files}"))
        }
    }
}

/// A named group's row: its tasks' hooks and cache state together.
fn group_status(
    registry: &Registry,
    name: &str,
    settings: &crate::data::hub::HubSettings,
) -> (String, String, String) {
    let tree = match registry.select(&[name.to_string()]) {
        Ok(tree) => tree,
        Err(e) => return ("error".into(), "-".into(), first_words(&e.to_string())),
    };
    let tasks: Vec<&TaskConfig> = tree.iter().flat_map(|n| n.tasks()).collect();
    let skipped = tree.iter().map(skipped_count).sum::<usize>();
    let rows: Vec<(String, String, String)> =
        tasks.iter().map(|t| task_status(t, settings)).collect();
    let hooks = if skipped > 0 || rows.iter().any(|r| r.0 == "missing") {
        "missing"
    } else if rows.iter().any(|r| r.0 == "native") {
        "native"
    } else {
        "-"
    };
    let ready = rows
        .iter()
        .filter(|r| r.1 == "yes" || r.1 == "local")
        .count();
    let cached = match ready {
        n if n == rows.len() => "yes",
        0 => "no",
        _ => "partial",
    };
    let data = format!(
        "{} tasks{}",
        rows.len(),
        if skipped > 0 {
            format!(", {skipped} skipped (hooks)")
        } else {
            String::new()
        }
    );
    (hooks.into(), cached.into(), data)
}

fn skipped_count(node: &Node) -> usize {
    match node {
        Node::Skipped { .. } => 1,
        Node::Group { children, .. } => children.iter().map(skipped_count).sum(),
        Node::Task(_) => 0,
    }
}

fn first_words(s: &str) -> String {
    let s = s.rsplit(": ").next().unwrap_or(s);
    s.chars().take(44).collect()
}

fn validate(paths: &[PathBuf]) -> Result<(), CliError> {
    let mut failures: Vec<String> = Vec::new();
    let mut checked = 0;
    // A task in several groups is planned once per distinct config.
    let mut planned: std::collections::HashSet<(String, String)> = Default::default();
    for path in paths {
        let registry = Registry::scan(std::slice::from_ref(path));
        for (file, err) in &registry.broken {
            let _ = file;
            failures.push(err.to_string());
        }
        let names: Vec<String> = registry
            .entries()
            .filter(|e| matches!(e.kind, EntryKind::Task | EntryKind::Group))
            .map(|e| e.name.clone())
            .collect();
        if names.is_empty() && registry.broken.is_empty() {
            failures.push(format!("{}: no task or group config found", path.display()));
        }
        for name in names {
            checked += 1;
            let options = TaskOptions::default();
            let outcome = registry
                .select(std::slice::from_ref(&name))
                .map_err(EngineError::from)
                .and_then(|sel| {
                    let configs: Vec<TaskConfig> = sel
                        .iter()
                        .flat_map(|n| n.tasks().into_iter().cloned())
                        .collect();
                    for c in configs {
                        if planned.insert((c.task.clone(), c.config_hash())) {
                            engine::plan::plan_task(c, &options)?;
                        }
                    }
                    Ok(())
                });
            if let Err(e) = outcome {
                let message = e.to_string();
                if !failures.contains(&message) {
                    failures.push(message);
                }
            }
        }
    }
    if failures.is_empty() {
        println!("ok: {checked} task and group configs are valid");
        Ok(())
    } else {
        for f in &failures[1..] {
            eprintln!("error: {f}");
        }
        Err(CliError::Input(failures[0].clone()))
    }
}
