//! `llama:PATH.gguf`: a GGUF model run in-process by llama.cpp (through the
//! `llama-cpp-2` crate), assay's embedded default backend.
//!
//! Requests are turned into token sequences exactly as lm-evaluation-harness's
//! Hugging Face model does it (`TemplateLM._encode_pair`, the BOS/EOS prefix
//! for an empty context, `get_rolling_token_windows` + `make_disjoint_window`,
//! `generate_until`'s stop strings), so scores are comparable with lm-eval's.
//! How they are evaluated is where speed comes from: the options of a
//! document share its context's KV cells, logits are computed only at the
//! positions that are scored, and log-softmax once per such row (see
//! `plan`).
//!
//! Scores are also made independent of batching: every decode call is
//! padded so llama.cpp always picks the same kernels, and each document is
//! alone in the KV cache unless `pack=true` (see `padding` and `plan`
//! for why: on Gemma 3 K-quants either would move scores by tenths of a
//! nat). Flash attention is off: on CPU it moves Gemma 3 log-probs by up to
//! 0.3 nats.

mod log;
mod logits;
mod lora_stack;
mod plan;

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::Read;
use std::num::NonZeroU32;
use std::path::Path;
use std::sync::OnceLock;

use llama_cpp_2::context::params::LlamaContextParams;
use llama_cpp_2::context::LlamaContext;
use llama_cpp_2::llama_backend::LlamaBackend as LlamaRuntime;
use llama_cpp_2::llama_batch::LlamaBatch;
use llama_cpp_2::model::params::LlamaModelParams;
use llama_cpp_2::model::LlamaModel;
use llama_cpp_2::token::LlamaToken;

use super::{cut_at_stops, Backend, BackendError, ChatTemplateSpec, ModelIdentity, OnAnswer};
use crate::python::text::is_space;
use crate::request::GenerationOptions;
use logits::RowStats;
use plan::{Batch, SequenceShape, Token};

/// The version of the `llama-cpp-2` crate (and so of llama.cpp) this backend
/// is built against; part of the model identity's details.
const LLAMA_CPP_2_VERSION: &str = "0.1.160";
const DEFAULT_N_CTX: u32 = 2048;
const DEFAULT_N_BATCH: u32 = 512;
/// Sequences per batch. llama.cpp keeps at least this many logits rows
/// allocated (1 MiB each for a 262k vocabulary), so it is not the maximum
/// of 256.
const MAX_SEQUENCES: usize = 64;
/// Logits rows requested from one `llama_decode` call are bounded by this
/// much memory (the rows of a whole batch are never held at once).
const LOGITS_BUDGET_BYTES: usize = 128 << 20;

/// `--model-arg` options of the llama backend.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LlamaOptions {
    /// Tokens of KV cache, which is also lm-eval's `max_length`: the longest
    /// request and the rolling-window length. Default: 2048, or the model's
    /// training context if smaller.
    pub n_ctx: Option<u32>,
    /// Most tokens evaluated by one `llama_decode` call. Default: 512.
    pub n_batch: Option<u32>,
    /// CPU threads. Default: all available.
    pub threads: Option<u32>,
    /// Expose the GGUF's own chat template (`tokenizer.chat_template`) for
    /// `--apply-chat-template`; opening fails if the file has none.
    pub chat_template: bool,
    /// Evaluate several documents in one batch. Faster for short documents,
    /// but on some models (Gemma 3 with K-quants) a document's scores then
    /// move by up to tenths of a nat with its batch neighbours. Off: each
    /// document's scores depend on that document alone.
    pub pack: bool,
    /// Evaluate each request alone, in one decode call of its whole token
    /// sequence, as llama-cpp-python (and lm-eval through it) does, instead
    /// of sharing the context's KV cells among a document's options. On
    /// quantized models llama.cpp's numbers depend on how a sequence is cut
    /// into decode calls and laid out in the cache (by up to tenths of a nat
    /// on Gemma 3), so this reproduces llama-cpp-python's numbers, at the
    /// cost of evaluating the context once per option.
    pub alone: bool,
    /// Layers offloaded to the GPU. Default: all of them in a build with a
    /// GPU backend (`--features cuda|vulkan|metal`), none otherwise.
    pub n_gpu_layers: Option<u32>,
    /// The GPU that holds the model when there are several.
    pub main_gpu: Option<u32>,
    /// LoRA adapters (GGUF files) applied over the model, each with its
    /// scale: `--model-arg lora=PATH[:SCALE]`, several separated by `|`
    /// (applied as one combined adapter, see `lora_stack`).
    pub lora: Vec<(String, f32)>,
}

/// The GPU backends this binary was built with ("" for a CPU build).
pub const GPU_BUILD: &str = if cfg!(feature = "cuda") {
    "cuda"
} else if cfg!(feature = "vulkan") {
    "vulkan"
} else if cfg!(feature = "metal") {
    "metal"
} else {
    ""
};

impl LlamaOptions {
    const KEYS: &'static [&'static str] = &[
        "n_ctx",
        "n_batch",
        "threads",
        "chat_template",
        "pack",
        "alone",
        "n_gpu_layers",
        "main_gpu",
        "lora",
    ];

    /// The layers to offload: as asked, else all in a GPU build.
    fn gpu_layers(&self) -> u32 {
        self.n_gpu_layers
            .unwrap_or(if GPU_BUILD.is_empty() { 0 } else { 999 })
    }

    /// Reads `--model-arg key=value` pairs; an unknown key or a bad value is
    /// an error that names it.
    pub fn from_args(args: &BTreeMap<String, String>) -> Result<LlamaOptions, BackendError> {
        let mut options = LlamaOptions::default();
        for (key, value) in args {
            match key.as_str() {
                "n_ctx" => options.n_ctx = Some(positive(key, value)?),
                "n_batch" => options.n_batch = Some(positive(key, value)?),
                "threads" => options.threads = Some(positive(key, value)?),
                "chat_template" => options.chat_template = boolean(key, value)?,
                "pack" => options.pack = boolean(key, value)?,
                "alone" => options.alone = boolean(key, value)?,
                "n_gpu_layers" => options.n_gpu_layers = Some(whole(key, value)?),
                "main_gpu" => options.main_gpu = Some(whole(key, value)?),
                "lora" => options.lora = lora(value)?,
                _ => {
                    return Err(BackendError::BadInput(format!(
                        "unknown --model-arg {key:?} for the llama backend; it takes {}",
                        Self::KEYS.join(", ")
                    )))
                }
            }
        }
        Ok(options)
    }
}

/// `PATH[:SCALE]` (scale 1 when not given), several separated by `|`.
fn lora(value: &str) -> Result<Vec<(String, f32)>, BackendError> {
    value.split('|').map(|one| adapter(value, one)).collect()
}

/// One adapter of `--model-arg lora=VALUE`: `PATH[:SCALE]`.
fn adapter(value: &str, one: &str) -> Result<(String, f32), BackendError> {
    // The last `:` starts a scale, unless it is an address's `://`.
    let (path, scale) = match one.rsplit_once(':') {
        Some((path, scale)) if !path.is_empty() && !scale.starts_with("//") => {
            let scale = scale.trim().parse::<f32>().ok().filter(|s| s.is_finite());
            let scale = scale.ok_or_else(|| {
                BackendError::BadInput(format!(
                    "--model-arg lora={value}: write PATH or PATH:SCALE, with a number as the \
                     scale (several adapters separated by |)"
                ))
            })?;
            (path, scale)
        }
        _ => (one, 1.0),
    };
    if path.trim().is_empty() {
        return Err(BackendError::BadInput(if value.contains('|') {
            format!("--model-arg lora={value}: give a GGUF file on each side of every |")
        } else {
            "--model-arg lora: give the adapter's GGUF file".into()
        }));
    }
    Ok((path.trim().to_string(), scale))
}

fn whole(key: &str, value: &str) -> Result<u32, BackendError> {
    value.trim().parse::<u32>().map_err(|_| {
        BackendError::BadInput(format!(
            "--model-arg {key}={value}: expected a whole number (0 or more)"
        ))
    })
}

fn positive(key: &str, value: &str) -> Result<u32, BackendError> {
    match value.trim().parse::<u32>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(BackendError::BadInput(format!(
            "--model-arg {key}={value}: expected a positive whole number"
        ))),
    }
}

fn boolean(key: &str, value: &str) -> Result<bool, BackendError> {
    match value.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" => Ok(true),
        "false" | "0" | "no" => Ok(false),
        _ => Err(BackendError::BadInput(format!(
            "--model-arg {key}={value}: expected true or false"
        ))),
    }
}

/// A GGUF model loaded in llama.cpp with one context.
pub struct LlamaBackend {
    // `context` borrows `model` (see `open`), so it is declared, and thus
    // dropped, first.
    context: LlamaContext<'static>,
    model: LlamaModel,
    batch: LlamaBatch<'static>,
    identity: ModelIdentity,
    chat_template: Option<ChatTemplateSpec>,
    n_ctx: usize,
    n_batch: usize,
    max_sequences: usize,
    max_outputs: usize,
    pack: bool,
    /// Each log-likelihood request in a group of its own ([`LlamaOptions::alone`]).
    alone: bool,
    /// Where [`LlamaBackend::decode`] puts padding: (sequence, position).
    pad_after: (i32, usize),
    n_vocab: usize,
    /// The BOS token's text, for lm-eval's "already starts with BOS" check.
    bos_text: Option<String>,
    /// What an empty context is replaced by: BOS, else EOS (lm-eval's
    /// `prefix_token_id`).
    prefix_token: Token,
    /// The EOS token's text, a stop string of every generation (lm-eval's
    /// `handle_stop_sequences`).
    eos_text: Option<String>,
}

/// llama.cpp's process-wide initialisation, done once and never undone:
/// `llama-cpp-2` refuses a second live `LlamaBackend`, and several models
/// may be open at once.
fn runtime() -> Result<&'static LlamaRuntime, BackendError> {
    static RUNTIME: OnceLock<Result<LlamaRuntime, String>> = OnceLock::new();
    RUNTIME
        .get_or_init(|| {
            log::install();
            LlamaRuntime::init().map_err(|e| e.to_string())
        })
        .as_ref()
        .map_err(|e| BackendError::Failed(format!("cannot initialise llama.cpp: {e}")))
}

/// llama.cpp may abort on a file that is not GGUF at all, so the magic is
/// checked first.
fn check_gguf(path: &Path) -> Result<(), BackendError> {
    let shown = path.display();
    let mut file = File::open(path).map_err(|e| {
        BackendError::BadInput(match e.kind() {
            std::io::ErrorKind::NotFound => format!("model file {shown} does not exist"),
            _ => format!("cannot open model file {shown}: {e}"),
        })
    })?;
    if path.is_dir() {
        return Err(BackendError::BadInput(format!(
            "model path {shown} is a directory; give the path of a .gguf file"
        )));
    }
    let mut magic = [0u8; 4];
    match file.read_exact(&mut magic) {
        Ok(()) if &magic == b"GGUF" => Ok(()),
        _ => Err(BackendError::BadInput(format!(
            "{shown} is not a GGUF file (it does not start with the GGUF magic); \
             the llama backend reads GGUF models only"
        ))),
    }
}

impl LlamaBackend {
    /// Loads the model at `path`. Errors are [`BackendError::BadInput`] for
    /// a missing, unreadable or malformed file and bad options,
    /// [`BackendError::Unsupported`] for an architecture llama.cpp does not
    /// know.
    /// Records where the weights came from (a Hub repository at a commit):
    /// the spec as the user gave it, and `source.*` details, which describe
    /// the origin, not the weights, and so do not key the response cache.
    pub fn record_source(&mut self, spec: &str, source: BTreeMap<String, String>) {
        self.identity.spec = spec.to_string();
        for (key, value) in source {
            self.identity.details.insert(format!("source.{key}"), value);
        }
    }

    pub fn open(path: &Path, options: LlamaOptions) -> Result<LlamaBackend, BackendError> {
        let shown = path.display().to_string();
        check_gguf(path)?;
        let digest = crate::cache::file_sha256(path)
            .map_err(|e| BackendError::Failed(format!("cannot read {shown}: {e}")))?;
        let runtime = runtime()?;

        log::clear();
        let gpu_layers = options.gpu_layers();
        let mut params = LlamaModelParams::default().with_n_gpu_layers(gpu_layers);
        if let Some(gpu) = options.main_gpu {
            params = params.with_main_gpu(gpu as i32);
        }
        let mut model = LlamaModel::load_from_file(runtime, path, &params).map_err(|e| {
            let reason = llama_reason(&e.to_string());
            if reason.contains("unknown model architecture") {
                BackendError::Unsupported(format!(
                    "{shown}: llama.cpp (llama-cpp-2 {LLAMA_CPP_2_VERSION}) cannot run this \
                         model: {reason}"
                ))
            } else {
                BackendError::BadInput(format!("cannot load {shown}: {reason}"))
            }
        })?;

        let n_ctx_train = model.n_ctx_train().max(1);
        let n_ctx = options.n_ctx.unwrap_or(DEFAULT_N_CTX.min(n_ctx_train));
        let n_batch = options.n_batch.unwrap_or(DEFAULT_N_BATCH).min(n_ctx);
        // Room for the padding tokens of a decode call (see `padding`).
        let llama_n_batch = n_batch + MAX_PADDING as u32;
        let n_vocab = usize::try_from(model.n_vocab()).unwrap_or(0).max(1);
        // llama.cpp allocates at least one logits row per sequence and
        // aborts if that exceeds its `n_batch` rows; a generation step
        // decodes one token per sequence.
        let max_sequences = MAX_SEQUENCES.min(n_batch as usize);
        let max_outputs =
            (LOGITS_BUDGET_BYTES / (n_vocab * 4)).clamp(max_sequences, n_batch as usize);
        let threads = options.threads.map_or_else(
            || std::thread::available_parallelism().map_or(1, |n| n.get()),
            |t| t as usize,
        );
        let threads = i32::try_from(threads).unwrap_or(i32::MAX);
        let params = LlamaContextParams::default()
            .with_n_ctx(NonZeroU32::new(n_ctx + MAX_PADDING as u32))
            .with_n_batch(llama_n_batch)
            .with_n_ubatch(llama_n_batch)
            .with_n_seq_max(max_sequences as u32)
            .with_n_threads(threads)
            .with_n_threads_batch(threads)
            .with_flash_attention_policy(llama_cpp_sys_2::LLAMA_FLASH_ATTN_TYPE_DISABLED)
            .with_kv_unified(true);
        // The adapters load against the model, before a context exists.
        let mut adapters = Vec::new();
        for (file, scale) in &options.lora {
            check_gguf(Path::new(file))?;
            let sha256 = crate::cache::file_sha256(Path::new(file))
                .map_err(|e| BackendError::Failed(format!("cannot read {file}: {e}")))?;
            adapters.push(lora_stack::Adapter {
                path: file.into(),
                sha256,
                scale: *scale,
            });
        }
        // One adapter applies as it is (its identity and answers as ever);
        // several as the one adapter that is their sum, at scale 1.
        let applied = match adapters.as_slice() {
            [] => None,
            [one] => Some((one.path.clone(), one.scale)),
            several => Some((lora_stack::combined(several)?, 1.0)),
        };
        let mut adapter = match applied {
            None => None,
            Some((file, scale)) => {
                log::clear();
                let adapter = model.lora_adapter_init(&file).map_err(|e| {
                    let what = if adapters.len() == 1 {
                        String::new()
                    } else {
                        format!(" (the adapters combined, {})", file.display())
                    };
                    BackendError::BadInput(format!(
                        "--model-arg lora={}{what}: llama.cpp cannot apply it to {shown}: {}",
                        options
                            .lora
                            .iter()
                            .map(|(f, _)| f.as_str())
                            .collect::<Vec<_>>()
                            .join("|"),
                        llama_reason(&e.to_string())
                    ))
                })?;
                Some((adapter, scale))
            }
        };
        log::clear();
        let mut context = model.new_context(runtime, params).map_err(|e| {
            BackendError::Failed(format!(
                "cannot create a llama.cpp context (n_ctx={n_ctx}, n_batch={n_batch}) for \
                 {shown}: {}",
                llama_reason(&e.to_string())
            ))
        })?;
        // SAFETY: the context only holds a pointer into the model (its
        // lifetime parameter is a PhantomData). Both move into the returned
        // struct, the model is never replaced, and `context` is declared
        // before `model` so it is dropped first.
        if let Some((adapter, scale)) = &mut adapter {
            context
                .lora_adapter_set(adapter, *scale)
                .map_err(|e| BackendError::Failed(format!("cannot apply the LoRA adapter: {e}")))?;
        }
        let context =
            unsafe { std::mem::transmute::<LlamaContext<'_>, LlamaContext<'static>>(context) };

        let vocab = model.vocab();
        let piece = |token: LlamaToken| {
            let bytes = vocab.token_to_piece(token, true, None);
            Some(String::from_utf8_lossy(&bytes).into_owned()).filter(|s| !s.is_empty())
        };
        let (bos, eos) = (vocab.bos(), vocab.eos());
        let bos_text = (bos.0 >= 0).then(|| piece(bos)).flatten();
        let eos_text = (eos.0 >= 0).then(|| piece(eos)).flatten();
        let prefix_token = if bos.0 >= 0 { bos.0 } else { eos.0 };
        let add_bos = vocab.should_add_bos();

        let chat_template = if options.chat_template {
            let source = model
                .chat_template(None)
                .ok()
                .and_then(|t| t.to_string().ok())
                .ok_or_else(|| {
                    BackendError::BadInput(format!(
                        "{shown} has no chat template (tokenizer.chat_template); \
                         drop --model-arg chat_template=true"
                    ))
                })?;
            Some(ChatTemplateSpec {
                template: source,
                bos_token: bos_text.clone().unwrap_or_default(),
                eos_token: eos_text.clone().unwrap_or_default(),
            })
        } else {
            None
        };

        let mut details = BTreeMap::new();
        for (name, key) in [
            ("architecture", "general.architecture"),
            ("name", "general.name"),
            ("file_type", "general.file_type"),
        ] {
            if let Ok(value) = model.meta_val_str(key) {
                details.insert(name.to_string(), value);
            }
        }
        let file_size = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
        for (name, value) in [
            ("file_size", file_size.to_string()),
            ("n_params", model.n_params().to_string()),
            ("n_vocab", n_vocab.to_string()),
            ("n_ctx_train", n_ctx_train.to_string()),
            ("n_ctx", n_ctx.to_string()),
            ("add_bos", add_bos.to_string()),
            ("pack", options.pack.to_string()),
            ("alone", options.alone.to_string()),
            ("flash_attn", "off".to_string()),
            ("llama_cpp_2", LLAMA_CPP_2_VERSION.to_string()),
        ] {
            details.insert(name.to_string(), value);
        }
        // The adapters and their scales are part of the answers' identity.
        if !adapters.is_empty() {
            details.insert("lora".to_string(), lora_stack::identity(&adapters));
        }
        // A GPU's kernels round differently: its answers are its own (a CPU
        // build's identity, and so its cache key, is unchanged).
        if !GPU_BUILD.is_empty() && gpu_layers > 0 {
            details.insert("gpu_backend".to_string(), GPU_BUILD.to_string());
            details.insert("gpu_layers".to_string(), gpu_layers.to_string());
            if let Some(gpu) = options.main_gpu {
                details.insert("main_gpu".to_string(), gpu.to_string());
            }
        }
        let identity = ModelIdentity {
            spec: format!("llama:{shown}"),
            fingerprint: format!("sha256:{digest}"),
            details,
        };

        Ok(LlamaBackend {
            context,
            model,
            batch: LlamaBatch::new(llama_n_batch as usize, max_sequences as i32),
            identity,
            chat_template,
            n_ctx: n_ctx as usize,
            n_batch: n_batch as usize,
            max_sequences,
            max_outputs,
            pack: options.pack,
            alone: options.alone,
            pad_after: (0, 0),
            n_vocab,
            bos_text,
            prefix_token,
            eos_text,
        })
    }

    /// The context size in tokens (lm-eval's `max_length`).
    pub fn n_ctx(&self) -> usize {
        self.n_ctx
    }

    /// Token ids of `text` as lm-eval's `tok_encode` gives them: with
    /// `add_special`, BOS as the model's `add_bos` flag says (unless the text
    /// already starts with the BOS text); special-token texts are parsed.
    pub fn tokenize(&self, text: &str, add_special: bool) -> Vec<i32> {
        let add = add_special
            && !self
                .bos_text
                .as_deref()
                .is_some_and(|bos| text.starts_with(bos));
        self.model
            .vocab()
            .tokenize(text.as_bytes(), add, true)
            .into_iter()
            .map(|t| t.0)
            .collect()
    }

    /// The text of `tokens`, special tokens left out (as lm-eval decodes a
    /// generation).
    pub fn detokenize(&self, tokens: &[i32]) -> String {
        let tokens: Vec<LlamaToken> = tokens.iter().map(|&t| LlamaToken(t)).collect();
        // `remove_special = false`: with `true`, llama-cpp-2 0.1.160
        // underflows on an empty slice. Control tokens render as nothing
        // either way because `unparse_special` is false.
        let bytes = self.model.vocab().detokenize(&tokens, false, false);
        String::from_utf8_lossy(&bytes).into_owned()
    }

    /// The logits after each prefix of `tokens`, evaluated one token per
    /// `llama_decode` call: the plain reference path, for tests and
    /// diagnostics (slow).
    pub fn token_logits(&mut self, tokens: &[i32]) -> Result<Vec<Vec<f32>>, BackendError> {
        if tokens.len() > self.n_ctx {
            return Err(BackendError::ContextOverflow {
                request: 0,
                tokens: tokens.len(),
                n_ctx: self.n_ctx,
            });
        }
        if let Some(bad) = tokens
            .iter()
            .find(|&&t| t < 0 || t as usize >= self.n_vocab)
        {
            return Err(BackendError::BadInput(format!(
                "token {bad} is outside the vocabulary of {} tokens",
                self.n_vocab
            )));
        }
        self.context.clear_kv_cache();
        let mut rows = Vec::with_capacity(tokens.len());
        for (pos, &token) in tokens.iter().enumerate() {
            self.batch.clear();
            self.add(token, pos, &[0], true)?;
            self.decode(1, Padding::Full)?;
            rows.push(self.context.get_logits_ith(0).to_vec());
        }
        Ok(rows)
    }

    /// `TemplateLM._encode_pair`, plus `loglikelihood`'s handling of an
    /// empty context. Context tokenizations are memoised in `contexts`
    /// because the options of a document repeat them.
    fn encode_pair<'a>(
        &self,
        context: &'a str,
        continuation: &str,
        contexts: &mut HashMap<&'a str, Vec<Token>>,
    ) -> (Vec<Token>, Vec<Token>) {
        if context.is_empty() {
            let continuation = self.tokenize(continuation, false);
            return match continuation.first() {
                Some(&first) if first == self.prefix_token => {
                    (continuation[..1].to_vec(), continuation[1..].to_vec())
                }
                _ => (vec![self.prefix_token], continuation),
            };
        }
        let kept = context.trim_end_matches(is_space).len();
        let (context, moved) = context.split_at(kept);
        let whole = self.tokenize(&format!("{context}{moved}{continuation}"), true);
        let context_tokens = contexts
            .entry(context)
            .or_insert_with(|| self.tokenize(context, true));
        if context_tokens.is_empty() {
            // An all-whitespace context of a model without BOS: lm-eval
            // would fail an assertion; condition on the prefix token.
            return (vec![self.prefix_token], whole);
        }
        let split = context_tokens.len().min(whole.len());
        (context_tokens.clone(), whole[split..].to_vec())
    }

    /// Sums log P(target) over each sequence's scored positions and checks
    /// they are all greedy; results in input order.
    fn score(&mut self, sequences: &[Scored]) -> Result<Vec<(f64, bool)>, BackendError> {
        let shapes: Vec<SequenceShape> = sequences.iter().map(Scored::shape).collect();
        let batches = plan::plan(&shapes, self.n_ctx, self.max_sequences, self.pack)
            .map_err(|e| self.overflow(e.sequence, e.cells))?;
        let mut results = vec![(0.0, true); sequences.len()];
        for batch in &batches {
            // Who reads each logits row: (sequence, target token).
            let mut readers: Vec<Vec<(usize, usize)>> = vec![Vec::new(); batch.nodes.len()];
            for (local, &i) in batch.sequences.iter().enumerate() {
                for (&node, &target) in batch.outputs[local].iter().zip(&sequences[i].targets) {
                    readers[node].push((i, target as usize));
                }
            }
            self.evaluate(batch, |node, row| {
                let stats = RowStats::of(row);
                for &(i, target) in &readers[node] {
                    results[i].0 += stats.logprob(row, target);
                    results[i].1 &= stats.argmax == target;
                }
            })?;
        }
        Ok(results)
    }

    /// Clears the KV cache and evaluates a planned batch, handing each
    /// requested logits row to `on_row` with its node index.
    fn evaluate(
        &mut self,
        batch: &Batch,
        mut on_row: impl FnMut(usize, &[f32]),
    ) -> Result<(), BackendError> {
        self.context
            .clear_kv_cache_seq(None, None, None)
            .map_err(|e| BackendError::Failed(format!("llama.cpp KV cache: {e}")))?;
        let mut seq_ids = Vec::with_capacity(self.max_sequences);
        let mut rows = Vec::new();
        for run in plan::decode_runs(&batch.nodes, self.n_batch, self.max_outputs) {
            self.batch.clear();
            rows.clear();
            for (k, node) in batch.nodes[run.clone()].iter().enumerate() {
                seq_ids.clear();
                seq_ids.extend(node.seq_ids.clone().map(|s| s as i32));
                self.add(node.token, node.pos, &seq_ids, node.output)?;
                if node.output {
                    rows.push((k as i32, run.start + k));
                }
            }
            self.decode(rows.len(), Padding::Full)?;
            for &(k, node) in &rows {
                on_row(node, self.context.get_logits_ith(k));
            }
        }
        Ok(())
    }

    /// Adds a token to `self.batch`, remembering where padding may go: in
    /// the same sequence, after this token.
    fn add(
        &mut self,
        token: Token,
        pos: usize,
        seq_ids: &[i32],
        output: bool,
    ) -> Result<(), BackendError> {
        add_token(&mut self.batch, token, pos, seq_ids, output)?;
        self.pad_after = (seq_ids.first().copied().unwrap_or(0), pos + 1);
        Ok(())
    }

    /// Runs `llama_decode` on `self.batch`, which holds `outputs` logits
    /// requests, padded with throw-away tokens and cleaned up afterwards.
    /// `Padding::Full` gives every call the same kernels (see [`padding`]);
    /// `Padding::Light` only avoids the single-token special case, for
    /// generation steps where full padding would multiply the cost of the
    /// last few sequences. Padding tokens continue the sequence of the last
    /// token added, at later positions, so no real token attends to them and
    /// the cache holds nothing else beside the real tokens (a padding
    /// sequence of its own would change llama.cpp's numbers).
    fn decode(&mut self, outputs: usize, mode: Padding) -> Result<(), BackendError> {
        let tokens = usize::try_from(self.batch.n_tokens()).unwrap_or(0);
        let (pad_tokens, pad_outputs) = match mode {
            Padding::Full => padding(tokens, outputs),
            Padding::Light => (usize::from(tokens == 1), 0),
        };
        let (seq, from) = self.pad_after;
        for k in 0..pad_tokens {
            add_token(
                &mut self.batch,
                self.prefix_token,
                from + k,
                &[seq],
                k < pad_outputs,
            )?;
        }
        log::clear();
        self.context.decode(&mut self.batch).map_err(|e| {
            BackendError::Failed(format!(
                "llama.cpp could not evaluate a batch: {}",
                llama_reason(&e.to_string())
            ))
        })?;
        if pad_tokens > 0 {
            self.context
                .clear_kv_cache_seq(Some(seq as u32), Some(from as u32), None)
                .map_err(|e| BackendError::Failed(format!("llama.cpp KV cache: {e}")))?;
        }
        Ok(())
    }

    fn overflow(&self, request: usize, tokens: usize) -> BackendError {
        BackendError::ContextOverflow {
            request,
            tokens,
            n_ctx: self.n_ctx,
        }
    }

    /// Greedy decoding of one planned batch of prompts; returns the
    /// generated tokens of each batch-local sequence.
    fn generate_batch(
        &mut self,
        batch: &Batch,
        limits: &[usize],
        stops: &[Vec<String>],
    ) -> Result<Vec<Vec<Token>>, BackendError> {
        let n = batch.sequences.len();
        let mut readers: Vec<Vec<usize>> = vec![Vec::new(); batch.nodes.len()];
        for (local, outputs) in batch.outputs.iter().enumerate() {
            if let Some(&node) = outputs.last() {
                readers[node].push(local);
            }
        }
        let mut next = vec![0; n];
        self.evaluate(batch, |node, row| {
            for &local in &readers[node] {
                next[local] = logits::argmax(row) as Token;
            }
        })?;

        // The next position of each sequence: just after its prompt.
        let mut positions: Vec<usize> = batch
            .outputs
            .iter()
            .map(|outputs| outputs.last().map_or(0, |&node| batch.nodes[node].pos + 1))
            .collect();
        let mut generated: Vec<Vec<Token>> = vec![Vec::new(); n];
        let mut done = vec![false; n];
        let mut active = Vec::with_capacity(n);
        loop {
            self.batch.clear();
            active.clear();
            for local in 0..n {
                if done[local] {
                    continue;
                }
                let i = batch.sequences[local];
                let token = next[local];
                if generated[local].len() >= limits[i]
                    || self.model.vocab().is_eog(LlamaToken(token))
                {
                    done[local] = true;
                    continue;
                }
                generated[local].push(token);
                let text = self.detokenize(&generated[local]);
                if stops[i].iter().any(|s| text.contains(s.as_str()))
                    || generated[local].len() >= limits[i]
                {
                    done[local] = true;
                    continue;
                }
                self.add(token, positions[local], &[local as i32], true)?;
                positions[local] += 1;
                active.push(local);
            }
            if active.is_empty() {
                break;
            }
            self.decode(active.len(), Padding::Light)?;
            for (k, &local) in active.iter().enumerate() {
                next[local] = logits::argmax(self.context.get_logits_ith(k as i32)) as Token;
            }
        }
        Ok(generated)
    }
}

/// A sequence scored by summing log-probabilities: `tokens` are fed, and the
/// last `targets.len()` positions' logits predict `targets`.
struct Scored {
    tokens: Vec<Token>,
    targets: Vec<Token>,
    /// Sequences of one group (one document) may share KV cells.
    group: usize,
}

impl Scored {
    /// `context + continuation[..-1]` is fed; the logits from the last
    /// context token on predict the continuation. `continuation` must not
    /// be empty and `context` must not be empty.
    fn new(mut context: Vec<Token>, continuation: Vec<Token>, group: usize) -> Scored {
        context.extend_from_slice(&continuation[..continuation.len() - 1]);
        Scored {
            tokens: context,
            targets: continuation,
            group,
        }
    }

    fn shape(&self) -> SequenceShape<'_> {
        SequenceShape {
            tokens: &self.tokens,
            group: self.group,
            outputs_from: self.tokens.len() - self.targets.len(),
            reserve: 0,
        }
    }
}

/// lm-eval's `utils.get_rolling_token_windows(context_len=1)` followed by
/// `make_disjoint_window`: `(context, continuation)` token pairs that score
/// every token exactly once, each window as long as `max_len` allows.
fn rolling_windows(
    tokens: &[Token],
    prefix: Token,
    max_len: usize,
) -> Vec<(Vec<Token>, Vec<Token>)> {
    let mut windows = Vec::new();
    if tokens.is_empty() {
        return windows;
    }
    let first = max_len.min(tokens.len());
    windows.push((vec![prefix], tokens[..first].to_vec()));
    let mut predicted = first;
    while predicted < tokens.len() {
        let len = (tokens.len() - predicted).min(max_len);
        let end = predicted + len;
        let context = tokens[end - max_len - 1..end - len].to_vec();
        windows.push((context, tokens[end - len..end].to_vec()));
        predicted += len;
    }
    windows
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Padding {
    Full,
    Light,
}

/// Rows of a matrix product that llama.cpp's CPU kernels take together
/// (repacked K-quant weights go through a 4-row GEMM, leftovers through a
/// GEMV), and the row count below which it switches to other kernels.
const ROW_GROUP: usize = 4;
const MIN_ROWS: usize = 8;
/// The most padding tokens [`padding`] adds.
const MAX_PADDING: usize = MIN_ROWS + ROW_GROUP;

/// How many throw-away tokens, and how many of them with logits, to add to
/// a decode call of `tokens` tokens and `outputs` logits rows.
///
/// llama.cpp's CPU kernels round activations differently for different row
/// counts (a 4-row GEMM or a GEMV for repacked K-quants, tiled kernels from
/// 8 rows on), and on Gemma 3 that moves a log-probability by up to 0.9
/// nats. Padding every call to at least 8 rows, in multiples of 4, for
/// both the tokens and the logits rows (the last layer works on the latter
/// only) makes every row take the same kernels, so a score does not depend
/// on which other requests shared its batch.
fn padding(tokens: usize, outputs: usize) -> (usize, usize) {
    let fill = |n: usize| n.max(MIN_ROWS).next_multiple_of(ROW_GROUP) - n;
    let pad_outputs = if outputs == 0 { 0 } else { fill(outputs) };
    let pad_tokens = if fill(tokens) >= pad_outputs {
        fill(tokens)
    } else {
        fill(tokens + pad_outputs) + pad_outputs
    };
    (pad_tokens, pad_outputs)
}

/// The llama.cpp error lines logged since `log::clear`, or `fallback`.
fn llama_reason(fallback: &str) -> String {
    let lines = log::recent_problems();
    if lines.is_empty() {
        fallback.to_string()
    } else {
        lines.join("; ")
    }
}

fn add_token(
    batch: &mut LlamaBatch,
    token: Token,
    pos: usize,
    seq_ids: &[i32],
    output: bool,
) -> Result<(), BackendError> {
    batch
        .add(LlamaToken(token), pos as i32, seq_ids, output)
        .map_err(|e| BackendError::Failed(format!("llama.cpp batch: {e}")))
}

impl Backend for LlamaBackend {
    fn identity(&self) -> &ModelIdentity {
        &self.identity
    }

    /// The GGUF's chat template, when opened with `chat_template=true`.
    fn chat_template(&self) -> Option<ChatTemplateSpec> {
        self.chat_template.clone()
    }

    fn loglikelihood(
        &mut self,
        requests: &[(&str, &str)],
        on_answer: OnAnswer<(f64, bool)>,
    ) -> Result<Vec<(f64, bool)>, BackendError> {
        let mut contexts = HashMap::new();
        // The requests with the same context (a document's options) form
        // one group.
        let mut groups: HashMap<&str, usize> = HashMap::new();
        let mut sequences = Vec::with_capacity(requests.len());
        for (i, &(context, continuation)) in requests.iter().enumerate() {
            let (context_tokens, continuation_tokens) =
                self.encode_pair(context, continuation, &mut contexts);
            if continuation_tokens.is_empty() {
                return Err(BackendError::BadInput(format!(
                    "loglikelihood request {i}: the continuation {continuation:?} has no tokens \
                     of its own after joint tokenization with its context"
                )));
            }
            let fed = context_tokens.len() + continuation_tokens.len() - 1;
            if fed > self.n_ctx {
                return Err(self.overflow(i, fed));
            }
            let next = groups.len();
            let group = match self.alone {
                true => i,
                false => *groups.entry(context).or_insert(next),
            };
            sequences.push(Scored::new(context_tokens, continuation_tokens, group));
        }
        let scores = self.score(&sequences)?;
        for (i, answer) in scores.iter().enumerate() {
            on_answer(i, answer);
        }
        Ok(scores)
    }

    fn loglikelihood_rolling(
        &mut self,
        texts: &[&str],
        on_answer: OnAnswer<f64>,
    ) -> Result<Vec<f64>, BackendError> {
        let mut sequences = Vec::new();
        let mut owners = Vec::new();
        for (i, text) in texts.iter().enumerate() {
            let tokens = self.tokenize(text, true);
            for (context, continuation) in rolling_windows(&tokens, self.prefix_token, self.n_ctx) {
                let group = sequences.len();
                sequences.push(Scored::new(context, continuation, group));
                owners.push(i);
            }
        }
        let scores = self.score(&sequences)?;
        let mut totals = vec![0.0; texts.len()];
        for (i, (logprob, _)) in owners.into_iter().zip(scores) {
            totals[i] += logprob;
        }
        for (i, total) in totals.iter().enumerate() {
            on_answer(i, total);
        }
        Ok(totals)
    }

    fn generate(
        &mut self,
        requests: &[(&str, &GenerationOptions)],
        on_answer: OnAnswer<String>,
    ) -> Result<Vec<String>, BackendError> {
        let mut prompts = Vec::with_capacity(requests.len());
        let mut limits = Vec::with_capacity(requests.len());
        let mut stops = Vec::with_capacity(requests.len());
        for (i, &(context, options)) in requests.iter().enumerate() {
            if options.do_sample {
                return Err(BackendError::Unsupported(format!(
                    "generation request {i} asks for sampling (do_sample=true); the llama \
                     backend decodes greedily only"
                )));
            }
            let mut tokens = self.tokenize(context, true);
            if tokens.is_empty() {
                tokens.push(self.prefix_token);
            }
            let needed = tokens.len() + options.max_gen_toks;
            if needed > self.n_ctx {
                return Err(self.overflow(i, needed));
            }
            let mut until: Vec<String> = options.until.clone();
            if let Some(eos) = &self.eos_text {
                if !until.contains(eos) {
                    until.push(eos.clone());
                }
            }
            prompts.push(tokens);
            limits.push(options.max_gen_toks);
            stops.push(
                until
                    .into_iter()
                    .filter(|s| !s.is_empty())
                    .collect::<Vec<_>>(),
            );
        }
        let shapes: Vec<SequenceShape> = prompts
            .iter()
            .zip(&limits)
            .enumerate()
            .map(|(i, (tokens, &limit))| SequenceShape {
                tokens,
                group: i,
                outputs_from: tokens.len() - 1,
                reserve: limit,
            })
            .collect();
        // Prompts always share batches: several sequences decode together.
        let batches = plan::plan(&shapes, self.n_ctx, self.max_sequences, true)
            .map_err(|e| self.overflow(e.sequence, e.cells))?;
        let mut texts = vec![String::new(); requests.len()];
        for batch in &batches {
            let generated = self.generate_batch(batch, &limits, &stops)?;
            for (local, tokens) in generated.into_iter().enumerate() {
                let i = batch.sequences[local];
                texts[i] = cut_at_stops(self.detokenize(&tokens), &stops[i]);
                on_answer(i, &texts[i]);
            }
        }
        Ok(texts)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rolling_windows_follow_lm_eval() {
        // The example in lm-eval's `LM.loglikelihood_rolling` docstring.
        let tokens: Vec<Token> = (0..10).collect();
        let windows = rolling_windows(&tokens, -1, 4);
        assert_eq!(
            windows,
            vec![
                (vec![-1], vec![0, 1, 2, 3]),
                (vec![3], vec![4, 5, 6, 7]),
                (vec![5, 6, 7], vec![8, 9]),
            ]
        );
        // Every token is predicted exactly once, and no window is fed more
        // than max_len tokens.
        for max_len in 1..12 {
            let windows = rolling_windows(&tokens, -1, max_len);
            let predicted: Vec<Token> = windows.iter().flat_map(|(_, c)| c.clone()).collect();
            assert_eq!(predicted, tokens);
            for (context, continuation) in &windows {
                assert!(context.len() + continuation.len() - 1 <= max_len);
            }
        }
        assert!(rolling_windows(&[], 0, 4).is_empty());
    }

    #[test]
    fn stops_cut_in_turn_like_lm_eval() {
        let stops = vec!["Xc".to_string(), "bX".to_string()];
        // Python: "abXcd".split("Xc")[0] = "ab", then "ab".split("bX")[0] = "ab".
        assert_eq!(cut_at_stops("abXcd".into(), &stops), "ab");
        assert_eq!(cut_at_stops("a\n\nb".into(), &["\n\n".into()]), "a");
        assert_eq!(cut_at_stops("abc".into(), &[String::new()]), "abc");
    }

    #[test]
    fn padding_makes_row_counts_uniform() {
        for tokens in 1..600 {
            for outputs in 0..=tokens.min(80) {
                let (pad_tokens, pad_outputs) = padding(tokens, outputs);
                let (t, o) = (tokens + pad_tokens, outputs + pad_outputs);
                assert!(t >= MIN_ROWS && t % ROW_GROUP == 0, "{tokens} {outputs}");
                assert!(
                    o == 0 || (o >= MIN_ROWS && o % ROW_GROUP == 0),
                    "{tokens} {outputs}"
                );
                assert!(pad_outputs <= pad_tokens && pad_tokens <= MAX_PADDING);
            }
        }
        assert_eq!(padding(512, 40), (0, 0));
    }

    #[test]
    fn python_whitespace() {
        assert_eq!("q: \u{1f}\t".trim_end_matches(is_space), "q:");
        assert_eq!("q:\u{a0}".trim_end_matches(is_space), "q:");
    }

    #[test]
    fn options_from_model_args() {
        let args = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        let options = LlamaOptions::from_args(&args(&[
            ("n_ctx", "4096"),
            ("n_batch", "256"),
            ("threads", "2"),
            ("chat_template", "true"),
            ("pack", "yes"),
            ("alone", "false"),
            ("n_gpu_layers", "0"),
            ("main_gpu", "1"),
            ("lora", "hf://org/a@abc/lora.gguf:0.5"),
        ]))
        .unwrap();
        assert_eq!(
            options,
            LlamaOptions {
                n_ctx: Some(4096),
                n_batch: Some(256),
                threads: Some(2),
                chat_template: true,
                pack: true,
                alone: false,
                n_gpu_layers: Some(0),
                main_gpu: Some(1),
                lora: vec![("hf://org/a@abc/lora.gguf".into(), 0.5)],
            }
        );
        assert_eq!(options.gpu_layers(), 0);
        let several = LlamaOptions::from_args(&args(&[(
            "lora",
            "a.gguf:0.5|hf://org/x@abc/b.gguf| c.gguf:-1 ",
        )]))
        .unwrap();
        assert_eq!(
            several.lora,
            [
                ("a.gguf".to_string(), 0.5),
                ("hf://org/x@abc/b.gguf".to_string(), 1.0),
                ("c.gguf".to_string(), -1.0)
            ]
        );
        // Without the option: every layer in a GPU build, none on the CPU.
        let default = LlamaOptions::default().gpu_layers();
        assert_eq!(default == 0, GPU_BUILD.is_empty(), "{default}");
        let unknown = LlamaOptions::from_args(&args(&[("n_gpu", "1")])).unwrap_err();
        assert!(unknown.to_string().contains("n_gpu"), "{unknown}");
        assert!(unknown.to_string().contains("n_ctx, n_batch"), "{unknown}");
        let bad = LlamaOptions::from_args(&args(&[("n_ctx", "0")])).unwrap_err();
        assert!(bad.to_string().contains("n_ctx=0"), "{bad}");
    }
}
