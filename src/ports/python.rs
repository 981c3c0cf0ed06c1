//! Python hooks (`--python-hooks`): a task's `!function module.name` run as
//! written, by a Python worker that imports the module as lm-eval does (the
//! file beside the YAML that names it, executed under the module's name).
//! assay's own configs name lm-eval's functions by canonical names (see
//! `ports::lm_eval_source`); those run from the installed lm-eval package.
//!
//! One worker serves a whole run; it starts when the first hook is called,
//! so resolving hooks (`assay tasks list`) needs no Python. Calls are
//! batched: many documents per message. Values cross as JSON with Python's
//! types kept (see `hooks_worker.py`), so prompts and hashes see exactly
//! what lm-eval's would.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{json, Map, Value};

use crate::data::Doc;
use crate::worker::{Worker, WorkerError};

const WORKER: &str = include_str!("hooks_worker.py");
const PROTOCOL: u64 = 1;
/// How long one call may take: process_docs over a large split is slow.
const TIMEOUT: Duration = Duration::from_secs(1800);

/// Where ports and Python hooks each run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum HookMode {
    /// Native ports only; a hook without one is refused.
    #[default]
    Native,
    /// Native ports where they exist, Python for the rest.
    Missing,
    /// Python for every hook, ports too (to check a port).
    All,
}

impl HookMode {
    /// `--python-hooks` as given: absent, bare, or `=all`.
    pub fn from_flag(value: Option<&str>) -> Result<HookMode, String> {
        match value {
            None => Ok(HookMode::Native),
            Some("" | "missing") => Ok(HookMode::Missing),
            Some("all") => Ok(HookMode::All),
            Some(other) => Err(format!(
                "--python-hooks={other}: give --python-hooks (Python where no native port \
                 exists) or --python-hooks=all (Python for every hook)"
            )),
        }
    }
}

/// The one Python worker of a run, started on first use.
#[derive(Debug)]
pub struct PythonHooks {
    python: String,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    worker: Option<Worker>,
    versions: BTreeMap<String, String>,
    loaded: HashMap<(PathBuf, String), Loaded>,
    /// `process_docs` results by (file, function, SHA-256 of the documents
    /// given), shared by every task field that names the function.
    processed: HashMap<(PathBuf, String, String), Vec<Doc>>,
}

impl std::fmt::Debug for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("State")
            .field("running", &self.worker.is_some())
            .field("loaded", &self.loaded.len())
            .finish()
    }
}

/// A hook the worker has imported.
#[derive(Debug, Clone)]
struct Loaded {
    id: u64,
    /// The file imported (for an installed hook, where lm-eval is).
    file: PathBuf,
    sha256: String,
    imports: BTreeMap<String, String>,
}

/// What a run records of one Python hook.
#[derive(Debug, Clone, PartialEq)]
pub struct HookProvenance {
    pub file: PathBuf,
    pub sha256: String,
    /// Python, lm-eval and the packages the hook's module imported.
    pub versions: BTreeMap<String, String>,
}

impl PythonHooks {
    /// A runtime that will run `$ASSAY_PYTHON`, else `python3`.
    pub fn new() -> Arc<PythonHooks> {
        Arc::new(PythonHooks {
            python: crate::worker::default_python(),
            state: Mutex::new(State::default()),
        })
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Starts the worker if it is not running.
    fn start(&self, state: &mut State) -> Result<(), String> {
        if state.worker.is_some() {
            return Ok(());
        }
        let python = &self.python;
        let script = crate::worker::script_file("python-hooks", WORKER).map_err(|e| {
            format!("cannot write the Python hooks' worker to the cache folder: {e}")
        })?;
        let mut worker = Worker::start_without_secrets(python, &script, TIMEOUT).map_err(|e| {
            format!(
                "--python-hooks: cannot run Python `{python}` ({e}); install Python 3 with \
                 lm-eval (pip install lm-eval), or name the interpreter with $ASSAY_PYTHON"
            )
        })?;
        let hello = worker.next_message().map_err(|e| self.failed(e))?;
        match hello.get("hello") {
            Some(h) if h.get("protocol").and_then(Value::as_u64) == Some(PROTOCOL) => {
                state.versions = text_map(h.get("versions"));
            }
            _ => {
                return Err(format!(
                    "--python-hooks: `{python}` did not start the hooks' worker: {hello}"
                ))
            }
        }
        state.worker = Some(worker);
        Ok(())
    }

    fn failed(&self, error: WorkerError) -> String {
        match error {
            WorkerError::Silent(after) => format!(
                "the Python hooks' worker ({}) answered nothing for {} s and was stopped",
                self.python,
                after.as_secs()
            ),
            WorkerError::Died { status, last_line } => format!(
                "the Python hooks' worker ({}) stopped ({status}){}",
                self.python,
                last_line.map(|l| format!(": {l}")).unwrap_or_default()
            ),
        }
    }

    /// One message out, one back; an ended worker is forgotten so that the
    /// next call starts a new one.
    fn exchange(&self, state: &mut State, message: &Value) -> Result<Value, String> {
        let worker = state.worker.as_mut().expect("started");
        let answer = worker
            .send(message)
            .and_then(|()| worker.next_message())
            .map_err(|e| self.failed(e));
        if answer.is_err() {
            state.worker = None;
            state.loaded.clear();
        }
        answer
    }

    /// Imports `hook`'s module and function (once).
    fn load(&self, state: &mut State, hook: &PyHook) -> Result<Loaded, String> {
        let key = (hook.file.clone(), hook.function.clone());
        if let Some(loaded) = state.loaded.get(&key) {
            return Ok(loaded.clone());
        }
        self.start(state)?;
        let id = state.loaded.len() as u64 + 1;
        let answer = self.exchange(
            state,
            &json!({
                "op": "hook",
                "id": id,
                "file": hook.file,
                "installed": hook.installed,
                "module": hook.module,
                "function": hook.function,
            }),
        )?;
        if answer.get("ready").is_none() {
            return Err(self.import_error(hook, &answer));
        }
        let loaded = Loaded {
            id,
            file: answer
                .get("file")
                .and_then(Value::as_str)
                .map_or_else(|| hook.file.clone(), PathBuf::from),
            sha256: answer
                .get("sha256")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string(),
            imports: text_map(answer.get("imports")),
        };
        state.loaded.insert(key, loaded.clone());
        Ok(loaded)
    }

    fn import_error(&self, hook: &PyHook, answer: &Value) -> String {
        let text = error_text(answer);
        let file = hook.source();
        match answer.get("kind").and_then(Value::as_str) {
            Some("missing")
                if hook.installed && answer.get("package") == Some(&json!("lm_eval")) =>
            {
                format!(
                    "{file}: `{}` has no lm-eval; pip install lm-eval, or name a Python that \
                     has it with $ASSAY_PYTHON",
                    self.python
                )
            }
            Some("not_installed") => format!(
                "{file}: {text}; install the lm-eval release assay's configs follow \
                 (pip install lm-eval==0.4.13), or name a Python that has it with $ASSAY_PYTHON"
            ),
            Some("missing") => {
                let package = answer.get("package").and_then(Value::as_str).unwrap_or("?");
                format!(
                    "{file} imports the Python module `{package}`, which `{}` does not have \
                     ({text}); pip install the package that provides it",
                    self.python
                )
            }
            _ => format!("{file} cannot be imported: {text}"),
        }
    }

    /// Runs one call of `hook` with the fields of `body` (an object); the
    /// worker's value, tags kept.
    fn call(&self, hook: &PyHook, kind: &str, body: Value) -> Result<Value, HookError> {
        let mut state = self.state();
        let loaded = self.load(&mut state, hook).map_err(HookError::Setup)?;
        let Value::Object(mut body) = body else {
            unreachable!("a call's body is an object")
        };
        body.insert("op".into(), json!("call"));
        body.insert("id".into(), json!(loaded.id));
        body.insert("kind".into(), json!(kind));
        let answer = self
            .exchange(&mut state, &Value::Object(body))
            .map_err(HookError::Setup)?;
        if let Some(value) = answer.get("value") {
            return Ok(value.clone());
        }
        let text = error_text(&answer);
        Err(HookError::Raised {
            index: answer
                .get("index")
                .and_then(Value::as_u64)
                .map(|i| i as usize),
            message: format!("{}:{} raised {text}", hook.source(), hook.function),
        })
    }

    /// What a run records of `hook`: its file's SHA-256 and the versions
    /// that compute it. Imports the hook if no call has yet.
    pub fn provenance(&self, hook: &PyHook) -> Result<HookProvenance, String> {
        let mut state = self.state();
        let loaded = self.load(&mut state, hook)?;
        let mut versions = state.versions.clone();
        versions.extend(loaded.imports.clone());
        Ok(HookProvenance {
            file: loaded.file,
            sha256: loaded.sha256,
            versions,
        })
    }
}

/// Why a hook call gave no value.
#[derive(Debug, Clone, PartialEq)]
pub enum HookError {
    /// Python could not run the hook at all (no interpreter, a missing
    /// package, a module that does not import, a worker that died).
    Setup(String),
    /// The hook raised, on item `index` of the call when known.
    Raised {
        index: Option<usize>,
        message: String,
    },
}

impl std::fmt::Display for HookError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HookError::Setup(m) | HookError::Raised { message: m, .. } => f.write_str(m),
        }
    }
}

/// Where the Python of a `!function module.name` is.
#[derive(Debug, Clone, PartialEq)]
pub struct HookSource {
    /// The module's file; for an installed hook, its path under the
    /// installed lm-eval package's folder (`lm_eval/tasks/...`).
    pub file: PathBuf,
    pub module: String,
    pub function: String,
    /// Whether `file` is lm-eval's own, found where Python has lm-eval.
    pub installed: bool,
}

/// Where `reference` (`module.function`), named by a config in `folder`,
/// is defined: the file `folder/module.py`, as lm-eval's loader finds it
/// (whether or not it exists); without that file, the installed lm-eval's
/// function that a canonical name of assay's own configs stands for. `None`
/// when `reference` is not of the form `module.function`.
pub fn locate(folder: &Path, reference: &str) -> Option<HookSource> {
    let (module, function) = reference.rsplit_once('.')?;
    let beside = folder.join(format!("{module}.py"));
    if !beside.is_file() {
        if let Some((source, function)) = crate::ports::lm_eval_source(reference) {
            let file = Path::new("lm_eval/tasks").join(source);
            let module = file
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default();
            return Some(HookSource {
                file,
                module,
                function: function.to_string(),
                installed: true,
            });
        }
    }
    Some(HookSource {
        file: beside,
        module: module.to_string(),
        function: function.to_string(),
        installed: false,
    })
}

/// One `!function module.name`, to be run by Python.
#[derive(Debug, Clone)]
pub struct PyHook {
    runtime: Arc<PythonHooks>,
    /// The module's file; for an installed hook, its path under the
    /// installed lm-eval package's folder (`lm_eval/tasks/...`).
    pub file: PathBuf,
    /// Whether `file` is lm-eval's own, found where Python has lm-eval.
    pub installed: bool,
    module: String,
    function: String,
    /// Values already computed, by document (its JSON text).
    memo: Arc<Mutex<HashMap<String, Value>>>,
}

impl PyHook {
    /// The hook `reference` (`module.function`) names for a config in
    /// `folder` (see [`locate`]).
    pub fn new(
        runtime: &Arc<PythonHooks>,
        folder: &Path,
        reference: &str,
    ) -> Result<PyHook, String> {
        let found = locate(folder, reference)
            .ok_or_else(|| format!("`{reference}` is not of the form module.function"))?;
        if !found.installed && !found.file.is_file() {
            return Err(format!(
                "`{reference}` names {}, which does not exist",
                found.file.display()
            ));
        }
        Ok(PyHook {
            runtime: Arc::clone(runtime),
            file: found.file,
            installed: found.installed,
            module: found.module,
            function: found.function,
            memo: Arc::default(),
        })
    }

    /// The function's name in its module.
    pub fn function(&self) -> &str {
        &self.function
    }

    /// The module's file as messages name it.
    pub fn source(&self) -> String {
        if self.installed {
            format!("lm-eval's {}", self.file.display())
        } else {
            self.file.display().to_string()
        }
    }

    pub fn provenance(&self) -> Result<HookProvenance, String> {
        self.runtime.provenance(self)
    }

    /// `process_docs` over a split's documents (seeded first when `seed`).
    /// The same documents again get the first call's result, as lm-eval
    /// gets it from the `datasets` cache of the mapped split: a hook that
    /// draws random numbers does not draw again.
    pub fn docs(&self, docs: Vec<Doc>, seed: bool) -> Result<Vec<Doc>, HookError> {
        let docs = Value::Array(docs.into_iter().map(Value::Object).collect());
        let key = (
            self.file.clone(),
            self.function.clone(),
            crate::hash::sha256_hex(docs.to_string().as_bytes()),
        );
        if let Some(done) = self.runtime.state().processed.get(&key) {
            return Ok(done.clone());
        }
        let value = self
            .runtime
            .call(self, "docs", json!({"docs": docs, "seed": seed}))?;
        let processed = self.processed(value)?;
        self.runtime
            .state()
            .processed
            .insert(key, processed.clone());
        Ok(processed)
    }

    fn processed(&self, value: Value) -> Result<Vec<Doc>, HookError> {
        match value {
            Value::Array(items) => items
                .into_iter()
                .map(|d| match d {
                    Value::Object(m) => Ok(m),
                    other => Err(HookError::Raised {
                        index: None,
                        message: format!(
                            "{}:{} returned a document that is not a mapping: {other}",
                            self.source(),
                            self.function
                        ),
                    }),
                })
                .collect(),
            other => Err(self.shape("a list of documents", &other)),
        }
    }

    fn shape(&self, wanted: &str, got: &Value) -> HookError {
        let shown: String = got.to_string().chars().take(200).collect();
        HookError::Raised {
            index: None,
            message: format!(
                "{}:{} gave assay {shown}, not {wanted}",
                self.source(),
                self.function
            ),
        }
    }

    /// `fewshot_config.samples` as a function: the few-shot documents it
    /// returns.
    pub fn samples(&self) -> Result<Vec<Doc>, HookError> {
        let value = self.runtime.call(self, "samples", json!({}))?;
        self.processed(value)
    }

    /// Computes the hook for many documents in one call and remembers the
    /// values (`doc_to_text` and friends).
    pub fn prefetch(&self, docs: &[Doc]) -> Result<(), HookError> {
        let (keys, batch): (Vec<String>, Vec<Value>) = {
            let memo = self.memo.lock().unwrap_or_else(|e| e.into_inner());
            let mut seen = std::collections::HashSet::new();
            docs.iter()
                .map(|d| {
                    let doc = Value::Object(d.clone());
                    (doc.to_string(), doc)
                })
                .filter(|(key, _)| !memo.contains_key(key) && seen.insert(key.clone()))
                .unzip()
        };
        if keys.is_empty() {
            return Ok(());
        }
        let values = self.each(batch)?;
        let mut memo = self.memo.lock().unwrap_or_else(|e| e.into_inner());
        memo.extend(keys.into_iter().zip(values));
        Ok(())
    }

    /// The hook's value for one document, from the prefetched values or a
    /// call of its own.
    pub fn value(&self, doc: &Doc) -> Result<Value, HookError> {
        let key = Value::Object(doc.clone()).to_string();
        if let Some(v) = self
            .memo
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&key)
        {
            return Ok(v.clone());
        }
        let value = self
            .each(vec![Value::Object(doc.clone())])?
            .pop()
            .unwrap_or(Value::Null);
        self.memo
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(key, value.clone());
        Ok(value)
    }

    fn each(&self, docs: Vec<Value>) -> Result<Vec<Value>, HookError> {
        let n = docs.len();
        let value = self.runtime.call(self, "each", json!({"docs": docs}))?;
        let values = self.list(value, n, "one value per document")?;
        Ok(values.into_iter().map(plain).collect())
    }

    /// The `n` entries of a list the hook returned.
    fn list(&self, value: Value, n: usize, wanted: &str) -> Result<Vec<Value>, HookError> {
        match value {
            Value::Array(values) if values.len() == n => Ok(values),
            other => Err(self.shape(wanted, &other)),
        }
    }

    /// `process_results` for many documents: `(doc, results)` pairs in,
    /// one mapping of metric values (tags kept) per document out.
    pub fn results(
        &self,
        items: Vec<(Value, Value)>,
    ) -> Result<Vec<Map<String, Value>>, HookError> {
        let n = items.len();
        let items: Vec<Value> = items.into_iter().map(|(d, r)| json!([d, r])).collect();
        let value = self
            .runtime
            .call(self, "results", json!({"items": items}))?;
        self.list(value, n, "one mapping per document")?
            .into_iter()
            .map(|v| match v {
                Value::Object(m) => Ok(m),
                other => Err(self.shape("a mapping of metric values", &other)),
            })
            .collect()
    }

    /// A filter class's `apply`, over every document's responses.
    pub fn filter(
        &self,
        kwargs: &Map<String, Value>,
        resps: Vec<Value>,
        docs: &[Value],
    ) -> Result<Vec<Value>, HookError> {
        let n = resps.len();
        let body = json!({"kwargs": kwargs, "resps": resps, "docs": docs});
        let value = self.runtime.call(self, "filter", body)?;
        self.list(value, n, "one entry per document")
    }

    /// A metric function over `(gold, prediction)` pairs, as lm-eval's
    /// default `process_results` calls it; its value per pair (tags kept).
    pub fn metric(
        &self,
        kwargs: &Map<String, Value>,
        items: Vec<(Value, Value)>,
    ) -> Result<Vec<Value>, HookError> {
        let n = items.len();
        let items: Vec<Value> = items.into_iter().map(|(g, p)| json!([g, p])).collect();
        let value = self
            .runtime
            .call(self, "metric", json!({"kwargs": kwargs, "items": items}))?;
        self.list(value, n, "one value per document")
    }

    /// An aggregation function over the documents' values.
    pub fn aggregate(&self, items: Vec<Value>) -> Result<f64, HookError> {
        let value = self
            .runtime
            .call(self, "aggregate", json!({"items": items}))?;
        number(&value).ok_or_else(|| self.shape("a number", &value))
    }
}

/// A worker's `{"error": ...}` message, or the whole answer when it is not
/// one.
fn error_text(answer: &Value) -> String {
    answer
        .get("error")
        .and_then(Value::as_str)
        .map_or_else(|| answer.to_string(), str::to_string)
}

/// A JSON object's text values, by key.
fn text_map(value: Option<&Value>) -> BTreeMap<String, String> {
    value
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
                .collect()
        })
        .unwrap_or_default()
}

/// A float as the worker reads it: a number, or tagged when JSON cannot
/// hold it (NaN, infinities).
pub fn float(x: f64) -> Value {
    serde_json::Number::from_f64(x).map_or_else(
        || {
            let tag = if x.is_nan() {
                "nan"
            } else if x > 0.0 {
                "inf"
            } else {
                "-inf"
            };
            json!({ "__float__": tag })
        },
        Value::Number,
    )
}

/// A Python tuple, as the worker reads it.
pub fn tuple(items: Vec<Value>) -> Value {
    json!({ "__tuple__": items })
}

/// A value with the worker's tags undone for assay's own use: a tuple is a
/// list (as a template or a hash sees it).
pub fn plain(value: Value) -> Value {
    match value {
        Value::Array(items) => Value::Array(items.into_iter().map(plain).collect()),
        Value::Object(mut m) => {
            if m.len() == 1 && matches!(m.get("__tuple__"), Some(Value::Array(_))) {
                if let Some(Value::Array(items)) = m.remove("__tuple__") {
                    return Value::Array(items.into_iter().map(plain).collect());
                }
            }
            Value::Object(m.into_iter().map(|(k, v)| (k, plain(v))).collect())
        }
        other => other,
    }
}

/// Whether a value a hook returned is a Python dict (not a tagged tuple or
/// float).
pub fn is_mapping(value: &Value) -> bool {
    match value {
        Value::Object(m) => {
            !(m.len() == 1 && (m.contains_key("__tuple__") || m.contains_key("__float__")))
        }
        _ => false,
    }
}

/// A number a hook returned: an int, a float (tagged when not finite) or a
/// bool (Python's `True` is 1).
pub fn number(value: &Value) -> Option<f64> {
    match value {
        Value::Number(n) => n.as_f64(),
        Value::Bool(b) => Some(f64::from(u8::from(*b))),
        Value::Object(m) if m.len() == 1 => match m.get("__float__")?.as_str()? {
            "nan" => Some(f64::NAN),
            "inf" => Some(f64::INFINITY),
            "-inf" => Some(f64::NEG_INFINITY),
            _ => None,
        },
        _ => None,
    }
}

/// A Python filter class with its keyword arguments, as a filter step.
#[derive(Debug)]
pub struct PythonFilter {
    pub hook: PyHook,
    pub kwargs: Map<String, Value>,
}

impl crate::metric::ExternalFilter for PythonFilter {
    fn apply(&self, responses: Vec<Value>, docs: &[Value]) -> Result<Vec<Value>, String> {
        self.hook
            .filter(&self.kwargs, responses, docs)
            .map(|values| values.into_iter().map(plain).collect())
            .map_err(|e| e.to_string())
    }
}
