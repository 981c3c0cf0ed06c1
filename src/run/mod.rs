//! The pipeline: an [`Invocation`] is planned (tasks, documents, prompts,
//! requests), its requests are answered by a backend (`engine`), the answers
//! are scored, and the run is written (`results`).
//!
//! The command line, `assay score`, `assay merge`, the tests and the
//! examples all come through here, so the steps are sequenced once. The
//! functions return typed values and errors; printing is the caller's.

pub mod catalog;
pub mod merge;
pub mod plan;
mod record;
pub mod score;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use crate::backend::{self, Backend, BackendError, ModelIdentity};
use crate::cache::Cache;
use crate::data::DataError;
use crate::engine::{self, Answers, EngineError, Overlong, RequestCounts, SkippedDocument};
use crate::error::ErrorKind;
use crate::prompt::chat::ChatTemplate;
use crate::prompt::PromptError;
use crate::results::{self, ResultsError, Run};
use crate::task::{Registry, TaskError};
use crate::variant::{self, WeightsCheck};

pub use crate::invocation::{ChatTemplateRecord, Invocation, Limit};
pub use plan::{plan, Plan, PlannedTask};

/// Why a run could not be planned, finished or written.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Task(#[from] TaskError),
    #[error(transparent)]
    Data(#[from] DataError),
    #[error(transparent)]
    Prompt(#[from] PromptError),
    /// Opening the backend.
    #[error(transparent)]
    Backend(#[from] BackendError),
    /// Answering the requests.
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error(transparent)]
    Results(#[from] ResultsError),
    #[error("scoring task `{task}`: {message}")]
    Scoring { task: String, message: String },
    #[error(transparent)]
    Weights(#[from] crate::variant::WeightsError),
    /// What the user gave is wrong (a flag, a manifest, shards to merge).
    #[error("{0}")]
    Input(String),
    /// Output could not be written (stdout, a report).
    #[error("{0}")]
    Output(String),
}

impl Error {
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::Task(e) => e.kind(),
            Error::Data(e) => e.kind(),
            Error::Backend(e) => e.kind(),
            Error::Engine(e) => e.kind(),
            Error::Results(e) => e.kind(),
            Error::Weights(e) => e.kind(),
            Error::Prompt(_) | Error::Scoring { .. } | Error::Input(_) => ErrorKind::Input,
            Error::Output(_) => ErrorKind::NotFinished,
        }
    }
}

/// The backend a run uses: a spec (`kind:target`) and its options, each
/// value as given (a manifest's values may hold commas).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Model {
    pub spec: String,
    pub args: BTreeMap<String, String>,
}

impl Model {
    pub fn open(&self) -> Result<Box<dyn Backend>, Error> {
        Ok(backend::open(&self.spec, &self.args)?)
    }
}

/// Where a run keeps its answers.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum CachePlace {
    /// responses.sqlite under `$ASSAY_CACHE_DIR`, else `~/.cache/assay`.
    #[default]
    Default,
    At(PathBuf),
    /// Neither read nor write a cache.
    Off,
}

/// Everything one run needs.
#[derive(Debug, Clone)]
pub struct Job {
    pub invocation: Invocation,
    pub model: Model,
    /// The name the run is filed under (default: the model file's stem).
    pub variant: Option<String>,
    /// Runs go to `<out>/<variant>/<run-id>/`.
    pub out: PathBuf,
    pub overlong: Overlong,
    pub cache: CachePlace,
    pub show_progress: bool,
    /// Told of tasks and documents left out, as they are found.
    pub on_warning: fn(&str),
}

impl Job {
    /// A run of `invocation` on `model` with the defaults: filed under the
    /// model's name in `out`, the default cache, quiet.
    pub fn new(invocation: Invocation, model: Model, out: PathBuf) -> Job {
        Job {
            invocation,
            model,
            variant: None,
            out,
            overlong: Overlong::Fail,
            cache: CachePlace::Default,
            show_progress: false,
            on_warning: |_| {},
        }
    }
}

/// What produced a run, beyond its plan and answers.
#[derive(Debug, Clone)]
pub struct Record {
    pub variant: String,
    pub model: ModelIdentity,
    pub model_args: BTreeMap<String, String>,
    pub invocation: Invocation,
    pub counts: RequestCounts,
    /// Documents left out because a request did not fit the context.
    pub skipped_documents: Vec<SkippedDocument>,
    /// The run ids of the shards this run was merged from.
    pub merged_from: Vec<String>,
    pub seconds_planning: f64,
    pub seconds_inference: f64,
}

/// A run as written.
#[derive(Debug, Clone)]
pub struct Written {
    pub dir: PathBuf,
    pub run: Run,
}

/// Plans `job`'s invocation, answers its requests with the backend its
/// model names, scores and writes the run. The backend is opened after
/// planning (a task error shows before a model loads), unless the chat
/// template, which is the model's, is needed to plan.
pub fn run(job: Job) -> Result<Written, Error> {
    pipeline(job, None)
}

/// [`run`] with a backend already open (a test's, an example's).
pub fn run_on(job: Job, backend: &mut dyn Backend) -> Result<Written, Error> {
    pipeline(job, Some(backend))
}

fn pipeline(job: Job, given: Option<&mut dyn Backend>) -> Result<Written, Error> {
    let started = Instant::now();
    let Job {
        mut invocation,
        model,
        variant,
        out,
        overlong,
        cache,
        show_progress,
        on_warning,
    } = job;
    let plain =
        |name: &str| !name.is_empty() && !name.contains(['/', '\\']) && !name.starts_with('.');
    let variant = match variant {
        Some(name) if !plain(&name) => {
            return Err(Error::Input(format!(
                "--variant {name:?}: use a plain name (letters, digits, - _ .)"
            )))
        }
        Some(name) => name,
        None => {
            let name = backend::default_variant_name(&model.spec, &model.args);
            if !plain(&name) {
                return Err(Error::Input(format!(
                    "--model {}: no run name follows from it; name the model after the colon \
                     (e.g. llama:model.gguf, lm-eval:hf), or give --variant NAME",
                    model.spec
                )));
            }
            name
        }
    };
    let registry = registry(&invocation.include_path, invocation.python_hooks)?;
    // The backend is opened once, when first needed: before planning only
    // if the chat template, which is the model's, shapes the prompts.
    let mut owned: Option<Box<dyn Backend>> = None;
    if invocation.apply_chat_template {
        let backend: &dyn Backend = match &given {
            Some(b) => &**b,
            None => &**owned.insert(model.open()?),
        };
        let template = chat_template(backend, &model.spec)?;
        invocation.chat_template = Some(ChatTemplateRecord::of(&template));
    }
    let mut plan = plan(&registry, &invocation, show_progress)?;
    for (name, why) in plan.skipped() {
        on_warning(&format!("skipped task `{name}`: {why}"));
    }
    let seconds_planning = started.elapsed().as_secs_f64();
    let backend: &mut dyn Backend = match given {
        Some(b) => b,
        None => match owned {
            Some(ref mut b) => &mut **b,
            None => &mut **owned.insert(model.open()?),
        },
    };
    let cache = open_cache(&cache, backend.identity())?;
    let answers = answer(
        &plan,
        backend,
        &engine::ExecuteOptions {
            show_progress,
            overlong,
            cache: cache.as_ref(),
        },
    )?;
    let skipped_documents = plan.drop_overlong(&answers);
    for doc in &skipped_documents {
        on_warning(&format!(
            "task `{}`, document {} left out: {}",
            doc.task, doc.doc_id, doc.reason
        ));
    }
    let record = Record {
        variant,
        model: backend.identity().clone(),
        model_args: model.args,
        invocation,
        counts: answers.counts.clone(),
        skipped_documents,
        merged_from: Vec::new(),
        seconds_planning,
        seconds_inference: answers.seconds,
    };
    write(&plan, &answers, &record, &out)
}

/// Answers every request of `plan` with `backend` (through the cache, if
/// the options give one).
pub fn answer(
    plan: &Plan,
    backend: &mut dyn Backend,
    options: &engine::ExecuteOptions,
) -> Result<Answers, Error> {
    Ok(engine::execute(&plan.requests(), backend, options)?)
}

/// A plan's scores: each task's, then each group's.
#[derive(Debug, Clone)]
pub struct Scored {
    pub tasks: Vec<score::TaskScores>,
    pub groups: Vec<score::GroupScores>,
}

/// Scores the answers to a plan's requests.
pub fn score(plan: &Plan, answers: &Answers) -> Result<Scored, Error> {
    let tasks = plan
        .tasks
        .iter()
        .map(|task| score::score_task(task, answers))
        .collect::<Result<Vec<_>, _>>()?;
    let groups = score::score_groups(&plan.tree, &tasks);
    Ok(Scored { tasks, groups })
}

/// Plans an invocation without running it (`assay requests`): the chat
/// template, if asked for, comes from `model`.
pub fn plan_only(
    mut invocation: Invocation,
    model: Option<&Model>,
    show_progress: bool,
) -> Result<Plan, Error> {
    let registry = registry(&invocation.include_path, invocation.python_hooks)?;
    if invocation.apply_chat_template {
        let model = model.ok_or_else(|| {
            Error::Input("--apply-chat-template needs --model: the template is the model's".into())
        })?;
        let backend = model.open()?;
        let template = chat_template(backend.as_ref(), &model.spec)?;
        invocation.chat_template = Some(ChatTemplateRecord::of(&template));
    }
    plan(&registry, &invocation, show_progress)
}

/// Scores a plan's answers and writes the run folder.
pub fn write(
    plan: &Plan,
    answers: &Answers,
    record: &Record,
    out: &Path,
) -> Result<Written, Error> {
    let scored = score(plan, answers)?;
    let run_id = results::new_run_id(&record.variant);
    let (run, samples) = record::build(plan, &scored.tasks, &scored.groups, record, &run_id);
    let dir = out.join(&record.variant).join(&run_id);
    results::write_run(&dir, &run, &samples)?;
    Ok(Written { dir, run })
}

/// Merges the shards in `dirs` into one run under `out`.
pub fn merge_shards(
    dirs: &[PathBuf],
    out: &Path,
    show_progress: bool,
    python_hooks: crate::ports::python::HookMode,
) -> Result<Written, Error> {
    let merged = merge::merge(dirs, show_progress, python_hooks)?;
    write(&merged.plan, &merged.answers, &merged.record, out)
}

/// The built-in tasks and `include_path`, with hooks run in Python as
/// `python_hooks` allows.
pub fn registry(
    include_path: &[PathBuf],
    python_hooks: crate::ports::python::HookMode,
) -> Result<Registry, crate::task::TaskError> {
    let registry = Registry::with_builtin(include_path)?;
    Ok(match python_hooks {
        crate::ports::python::HookMode::Native => registry,
        mode => registry.with_python_hooks(mode, crate::ports::python::PythonHooks::new()),
    })
}

/// A variant's run on a suite (`assay score`): checks its manifest (and its
/// lineage among the manifests beside it) and its weights, and builds the
/// job that scores it, filed under the variant's name. `suite` is a built-in
/// suite's name or a suite file (a group config, found with its tasks in
/// `include_paths`).
pub fn variant_job(
    manifest: &Path,
    suite: &str,
    include_paths: &[PathBuf],
    out: PathBuf,
) -> Result<Job, Error> {
    let folder = manifest.parent().unwrap_or(Path::new(".")).to_path_buf();
    let variant = variant::read(manifest).map_err(|p| Error::Input(p.to_string()))?;
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
        return Err(Error::Input(p.to_string()));
    }
    match variant::check_weights(&variant) {
        WeightsCheck::Missing(path) => {
            return Err(Error::Input(format!(
                "{}: the weights file {} is not there; fetch it before scoring",
                manifest.display(),
                path.display()
            )))
        }
        WeightsCheck::Mismatch { path, actual } => {
            return Err(Error::Input(format!(
                "{}: the weights {} have SHA-256 {actual}, not the manifest's",
                manifest.display(),
                path.display()
            )))
        }
        WeightsCheck::Matches | WeightsCheck::Unchecked => {}
    }
    // Weights from the Hub come now (checked against weights_sha256).
    if variant::hub_weights(&variant).is_some() {
        variant::fetch_weights(&variant)?;
    }
    let spec = match variant::weights_file(&variant) {
        Some(path) => format!("llama:{}", path.display()),
        None => variant.backend.spec.clone(),
    };
    let file = crate::task::registry::suite_file(suite)?;
    let mut invocation = if file.as_path() == Path::new(suite) {
        // A hub's own suite: its group, found in the file itself.
        let group = crate::task::registry::group_name(&file)?;
        let mut invocation = Invocation::new(vec![group]);
        invocation.include_path = include_paths.to_vec();
        invocation.include_path.push(file);
        invocation
    } else {
        let mut invocation = Invocation::new(vec![suite.to_string()]);
        invocation.include_path = include_paths.to_vec();
        invocation
    };
    invocation.apply_chat_template = variant.chat_template;
    invocation.fewshot_as_multiturn = variant.chat_template;
    // A local model folder an lm-eval manifest names is, like a GGUF path,
    // relative to the folder that holds variants/.
    let mut args = variant.backend.args.clone();
    if spec.starts_with("lm-eval:") {
        for &key in backend::lm_eval::WEIGHTS_ARGS {
            if let Some(value) = args.get_mut(key) {
                let local = variant::resolve(&variant.path, value);
                if local.exists() {
                    *value = local.display().to_string();
                }
            }
        }
    }
    let mut job = Job::new(invocation, Model { spec, args }, out);
    job.variant = Some(variant.name.clone());
    Ok(job)
}

/// The model's chat template, compiled.
fn chat_template(model: &dyn Backend, spec: &str) -> Result<Arc<ChatTemplate>, Error> {
    if model.chat_messages() {
        return Ok(Arc::new(ChatTemplate::messages_json()));
    }
    let t = model.chat_template().ok_or_else(|| {
        Error::Input(format!(
            "--apply-chat-template: the model {spec} has no chat template"
        ))
    })?;
    ChatTemplate::new(&t.template, &t.bos_token, &t.eos_token)
        .map(Arc::new)
        .map_err(|e| Error::Input(format!("--apply-chat-template: {e}")))
}

/// The response cache a run uses, bound to its model; none when off.
fn open_cache(place: &CachePlace, model: &ModelIdentity) -> Result<Option<Cache>, Error> {
    let path = match place {
        CachePlace::Off => return Ok(None),
        CachePlace::At(path) => path.clone(),
        CachePlace::Default => crate::cache::default_path().ok_or_else(|| {
            Error::Input(
                "no place for the response cache: set HOME or ASSAY_CACHE_DIR, give --cache PATH, \
                 or run with --no-cache"
                    .into(),
            )
        })?,
    };
    Cache::open(&path, &model.cache_key())
        .map(Some)
        .map_err(|e| Error::Input(format!("{e}; or run with --no-cache")))
}
