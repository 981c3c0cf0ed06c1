//! The command line's types (clap): flags, subcommands and their help.
//! Flags keep lm-eval's meaning where lm-eval has the same flag.

use std::collections::BTreeMap;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::invocation::{parse_fewshot_seed, parse_shard, Invocation, Limit};
use crate::ports::python::HookMode;
use crate::run::CachePlace;

#[derive(Parser)]
#[command(
    name = "assay",
    version,
    about = "Score language-model variants on lm-evaluation-harness tasks"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
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
    /// Start a hub: variants/, tasks/, suites/hub.yaml, gate.toml, CI
    /// workflows and a README (files already there are kept).
    Init {
        /// Where the hub goes (default: the current folder).
        #[arg(default_value = ".")]
        dir: PathBuf,
    },
    /// Gate a candidate run against a baseline, paired per document (exit 0
    /// pass, 1 fail, 3 inconclusive when the policy counts that as failure).
    Gate(GateArgs),
}

#[derive(Args)]
pub struct GateArgs {
    /// The reference: a run folder or a variant name (its latest complete run).
    #[arg(long)]
    pub baseline: String,
    /// The run to gate: a run folder or a variant name.
    #[arg(long, required_unless_present = "plan")]
    pub candidate: Option<String>,
    /// The policy file (TOML); without one: margin 1 point, alpha 0.05.
    #[arg(long)]
    pub policy: Option<PathBuf>,
    /// The allowed regression in points (overrides the policy's default).
    #[arg(long)]
    pub margin: Option<f64>,
    /// Where variant names are looked up: `<results>/runs/<name>/`.
    #[arg(long, default_value = "results")]
    pub results: PathBuf,
    /// Gate only a suite's tasks, each on the metric the suite ranks it by:
    /// a suite's name (tasks/suites/NAME.yaml) or a suite file.
    #[arg(long)]
    pub suite: Option<String>,
    /// Write a Markdown report (a pull-request comment) here.
    #[arg(long)]
    pub markdown: Option<PathBuf>,
    /// Write a JUnit XML report here.
    #[arg(long)]
    pub junit: Option<PathBuf>,
    /// Write the full result as JSON here.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// The published leaderboard's URL, for links to documents in Markdown.
    #[arg(long)]
    pub site_url: Option<String>,
    /// Under GitHub Actions: add the Markdown report to the job summary
    /// ($GITHUB_STEP_SUMMARY) and emit ::error / ::warning annotations.
    #[arg(long)]
    pub github: bool,
    /// Instead of gating: which margin the average and each task can
    /// resolve with the policy's power, and how many documents --margin
    /// needs; from the paired differences with --candidate, else from the
    /// baseline's own variance (see --changed).
    #[arg(long)]
    pub plan: bool,
    /// With --plan and no --candidate: the share of documents a candidate
    /// is assumed to answer anew, in (0, 1] (1: an unrelated model).
    #[arg(long, requires = "plan", value_name = "SHARE")]
    pub changed: Option<f64>,
}

#[derive(Args)]
pub struct LeaderboardArgs {
    /// The results folder; runs are read from `<results>/runs/`.
    #[arg(long, default_value = "results")]
    pub results: PathBuf,
    /// Where the tables go (default `<results>/leaderboard`).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// The variant manifests.
    #[arg(long, default_value = "variants")]
    pub variants: PathBuf,
    /// The suite whose tasks count: a name (tasks/suites/NAME.yaml) or a
    /// suite file.
    #[arg(long, default_value = "default")]
    pub suite: String,
    /// More task configs: where the suite's tasks are, if not built in
    /// (their current configs tell which runs are stale).
    #[arg(long)]
    pub include_path: Vec<PathBuf>,
}

#[derive(Subcommand)]
pub enum VariantsCommand {
    /// Fetch the weights of variants (all in --variants, or these names)
    /// into the cache ahead of scoring: Hub files download, local files
    /// must be there and match their weights_sha256.
    Fetch {
        names: Vec<String>,
        /// The folder of manifests.
        #[arg(long, default_value = "variants")]
        variants: PathBuf,
    },
    /// Check manifests (files or folders; default `variants/`): every field,
    /// names, bases, lineage cycles and weights hashes. One line per problem.
    Validate {
        #[arg(value_name = "PATH")]
        paths: Vec<PathBuf>,
    },
}

#[derive(Args)]
pub struct ScoreArgs {
    /// The variant's manifest, e.g. variants/my-variant.toml.
    pub manifest: PathBuf,
    /// The suite: a built-in suite's name (tasks/suites/NAME.yaml) or a
    /// suite file (a group config).
    #[arg(long, default_value = "default")]
    pub suite: String,
    /// Folders (or files) of the suite's task configs, beside the built-in
    /// ones; later ones win on name clashes.
    #[arg(long = "include-path")]
    pub include_path: Vec<PathBuf>,
    /// Score only shard K of N (documents with doc_id % N == K); merge the
    /// shards' runs with `assay merge`.
    #[arg(long)]
    pub shard: Option<String>,
    /// Documents per task (for a quick look; a leaderboard wants all).
    #[arg(long)]
    pub limit: Option<f64>,
    /// Where runs go: `<out>/<variant>/<run-id>/`.
    #[arg(long, default_value = "results/runs")]
    pub out: PathBuf,
    #[command(flatten)]
    pub cache: CacheArgs,
    #[arg(long)]
    pub quiet: bool,
    /// Run the Python functions (`!function`) of tasks that have no
    /// native port, as lm-eval would (needs Python with lm-eval; runs code
    /// from the task folder). `--python-hooks=all`: Python for every hook.
    #[arg(long = "python-hooks", num_args = 0..=1, require_equals = true, default_missing_value = "", value_name = "all")]
    pub python_hooks: Option<String>,
}

#[derive(Args)]
pub struct MergeArgs {
    /// The run folders of every shard.
    #[arg(required = true, value_name = "RUN_DIR")]
    pub runs: Vec<PathBuf>,
    /// Where the merged run goes: `<out>/<variant>/<run-id>/`.
    #[arg(long, default_value = "results/runs")]
    pub out: PathBuf,
    /// Hide progress bars.
    #[arg(long)]
    pub quiet: bool,
    /// Run the Python functions (`!function`) of tasks that have no
    /// native port, as lm-eval would (needs Python with lm-eval; runs code
    /// from the task folder). `--python-hooks=all`: Python for every hook.
    #[arg(long = "python-hooks", num_args = 0..=1, require_equals = true, default_missing_value = "", value_name = "all")]
    pub python_hooks: Option<String>,
}

#[derive(Args, Clone)]
pub struct TaskArgs {
    /// Comma-separated task, group or tag names.
    #[arg(long, value_delimiter = ',', required = true)]
    pub tasks: Vec<String>,
    /// Extra folders (or files) of task configs; later ones win on name clashes.
    #[arg(long = "include-path")]
    pub include_path: Vec<PathBuf>,
    /// Few-shot examples per document (overrides the configs' num_fewshot).
    #[arg(long = "num-fewshot")]
    pub num_fewshot: Option<usize>,
    /// Documents per task: a count, or a fraction below 1.0.
    #[arg(long)]
    pub limit: Option<f64>,
    /// Seeds as lm-eval takes them: one integer for all, or
    /// `python,numpy,torch,fewshot`; only the few-shot seed affects prompts.
    #[arg(long, default_value = "0,1234,1234,1234")]
    pub seed: String,
    /// Text prepended to every prompt, before the description.
    #[arg(long = "system-instruction")]
    pub system_instruction: Option<String>,
    /// Run only shard K of N (documents with doc_id % N == K), written `K/N`.
    #[arg(long)]
    pub shard: Option<String>,
    /// Render prompts with the model's chat template.
    #[arg(long = "apply-chat-template")]
    pub apply_chat_template: bool,
    /// With a chat template: few-shot examples as separate turns (on by
    /// default with --apply-chat-template, as in lm-eval; `false` turns it off).
    #[arg(long = "fewshot-as-multiturn", num_args = 0..=1, default_missing_value = "true")]
    pub fewshot_as_multiturn: Option<bool>,
    /// Run the Python functions (`!function`) of tasks that have no
    /// native port, as lm-eval would (needs Python with lm-eval; runs code
    /// from the task folder). `--python-hooks=all`: Python for every hook.
    #[arg(long = "python-hooks", num_args = 0..=1, require_equals = true, default_missing_value = "", value_name = "all")]
    pub python_hooks: Option<String>,
}

/// Where a run keeps its answers.
#[derive(Args)]
pub struct CacheArgs {
    /// The response cache (SQLite). Default: responses.sqlite under
    /// $ASSAY_CACHE_DIR, else ~/.cache/assay.
    #[arg(long, value_name = "PATH")]
    pub cache: Option<PathBuf>,
    /// Neither read nor write the response cache.
    #[arg(long = "no-cache", conflicts_with = "cache")]
    pub no_cache: bool,
}

#[derive(Args)]
pub struct RequestsArgs {
    #[command(flatten)]
    pub task: TaskArgs,
    /// Only for --apply-chat-template: the model whose template to use.
    #[arg(long)]
    pub model: Option<String>,
    #[arg(long = "model-arg")]
    pub model_arg: Vec<String>,
}

#[derive(Args)]
pub struct RunArgs {
    /// The backend and its target, e.g. `llama:models/x.gguf`.
    #[arg(long)]
    pub model: String,
    /// Backend options, `key=value`; repeatable.
    #[arg(long = "model-arg")]
    pub model_arg: Vec<String>,
    #[command(flatten)]
    pub task: TaskArgs,
    /// The variant name the run is filed under (default: the model file's stem).
    #[arg(long)]
    pub variant: Option<String>,
    /// Where runs go: `<out>/<variant>/<run-id>/`.
    #[arg(long, default_value = "results/runs")]
    pub out: PathBuf,
    /// Accepted for lm-eval compatibility: assay always writes per-document samples.
    #[arg(long = "log-samples")]
    pub log_samples: bool,
    /// Leave out (and record in run.json) documents with a request longer
    /// than the model's context, instead of stopping with an error. Nothing
    /// is ever truncated.
    #[arg(long = "skip-overlong")]
    pub skip_overlong: bool,
    #[command(flatten)]
    pub cache: CacheArgs,
    /// Hide progress bars.
    #[arg(long)]
    pub quiet: bool,
}

#[derive(Subcommand)]
pub enum TasksCommand {
    /// List the known tasks, groups and tags: for each task, whether its
    /// Python hooks have native ports, whether its data is cached, where the
    /// data comes from and which file defines it.
    List {
        /// Only these names (default: all).
        names: Vec<String>,
        #[arg(long = "include-path")]
        include_path: Vec<PathBuf>,
        /// Show `python` for tasks whose hooks would run in Python.
        #[arg(long = "python-hooks", num_args = 0..=1, require_equals = true, default_missing_value = "", value_name = "all")]
        python_hooks: Option<String>,
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
        /// Folders of task configs that the checked configs name (e.g. a
        /// suite's tasks); they are not checked themselves.
        #[arg(long = "include-path")]
        include_path: Vec<PathBuf>,
        /// Run hooks without a native port in Python.
        #[arg(long = "python-hooks", num_args = 0..=1, require_equals = true, default_missing_value = "", value_name = "all")]
        python_hooks: Option<String>,
    },
}

impl TaskArgs {
    /// What the flags ask for, checked.
    pub fn invocation(&self) -> Result<Invocation, String> {
        Ok(Invocation {
            tasks: self.tasks.clone(),
            include_path: self.include_path.clone(),
            num_fewshot: self.num_fewshot,
            limit: self.limit.map(Limit::from_arg).transpose()?,
            fewshot_seed: parse_fewshot_seed(&self.seed)?,
            system_instruction: self.system_instruction.clone(),
            chat_template: None,
            fewshot_as_multiturn: self
                .fewshot_as_multiturn
                .unwrap_or(self.apply_chat_template),
            apply_chat_template: self.apply_chat_template,
            shard: self.shard.as_deref().map(parse_shard).transpose()?,
            python_hooks: HookMode::from_flag(self.python_hooks.as_deref())?,
        })
    }
}

impl CacheArgs {
    pub fn place(&self) -> CachePlace {
        match (&self.cache, self.no_cache) {
            (_, true) => CachePlace::Off,
            (Some(path), false) => CachePlace::At(path.clone()),
            (None, false) => CachePlace::Default,
        }
    }
}

/// `--model-arg key=value` flags, each possibly several pairs separated by
/// commas (as lm-eval's `--model_args`).
pub fn model_args(args: &[String]) -> Result<BTreeMap<String, String>, String> {
    let mut out = BTreeMap::new();
    for a in args {
        for part in a.split(',').filter(|p| !p.is_empty()) {
            let (k, v) = part
                .split_once('=')
                .ok_or_else(|| format!("--model-arg {part}: write key=value"))?;
            out.insert(k.trim().to_string(), v.trim().to_string());
        }
    }
    Ok(out)
}
