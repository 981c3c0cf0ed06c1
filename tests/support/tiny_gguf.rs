//! A tiny random-weight llama-architecture GGUF written by the tests
//! themselves, so the llama backend can be tested without downloading a model.
//!
//! The model is deliberately small (two layers, 64-wide, a few hundred tokens)
//! but complete: a SentencePiece (`llama`) vocabulary with byte fallback, so
//! any text tokenizes; grouped-query attention (4 query heads, 2 KV heads);
//! F32 tensors from a seeded generator, so the same seed gives the same file.

// Each test binary that includes this module uses a different part of it.
#![allow(dead_code)]

use std::io::{self, Write};
use std::path::Path;

/// Shape of the tiny model.
pub const N_EMBD: usize = 64;
pub const N_HEAD: u32 = 4;
pub const N_HEAD_KV: u32 = 2;
pub const N_FF: usize = 128;
pub const N_LAYER: usize = 2;
pub const N_CTX_TRAIN: u32 = 1024;

/// Token ids fixed by the vocabulary layout.
pub const UNK: i32 = 0;
pub const BOS: i32 = 1;
pub const EOS: i32 = 2;

/// Words whose pieces (every prefix, with and without the leading `▁`) join
/// the vocabulary, so common English tokenizes into multi-character tokens and
/// the SentencePiece merges have something to do.
const WORDS: &[&str] = &[
    "the", "of", "and", "to", "in", "is", "that", "it", "was", "for", "on", "are", "with", "as",
    "question", "answer", "true", "false", "yes", "no", "cat", "dog", "sat", "mat", "red", "blue",
];

/// Writes the tiny model to `path`. The weights depend only on `seed`.
pub fn write_tiny_llama(path: &Path, seed: u64) -> io::Result<()> {
    write_tiny_model(path, seed, "llama")
}

/// The same model declaring another architecture: with a name llama.cpp
/// does not know, loading must fail cleanly.
pub fn write_tiny_model(path: &Path, seed: u64, architecture: &str) -> io::Result<()> {
    let vocab = vocabulary();
    write_gguf(
        path,
        &metadata(&vocab, architecture),
        &tiny_tensors(seed, vocab.len()),
    )
}

/// The tiny model's tensors: (name, dimensions as GGUF lists them, F32 data).
type Tensors = Vec<(String, Vec<u64>, Vec<f32>)>;

fn tiny_tensors(seed: u64, n_vocab: usize) -> Tensors {
    let mut rng = SplitMix64(seed);
    let mut tensors: Tensors = Vec::new();
    let mut matrix = |name: &str, cols: usize, rows: usize, scale: f32| {
        let data = (0..cols * rows).map(|_| rng.uniform() * scale).collect();
        (name.to_string(), vec![cols as u64, rows as u64], data)
    };
    let n_embd_kv = N_EMBD / N_HEAD as usize * N_HEAD_KV as usize;
    tensors.push(matrix("token_embd.weight", N_EMBD, n_vocab, 1.0));
    for layer in 0..N_LAYER {
        let name = |part: &str| format!("blk.{layer}.{part}.weight");
        tensors.push((name("attn_norm"), vec![N_EMBD as u64], vec![1.0; N_EMBD]));
        tensors.push(matrix(&name("attn_q"), N_EMBD, N_EMBD, 0.2));
        tensors.push(matrix(&name("attn_k"), N_EMBD, n_embd_kv, 0.2));
        tensors.push(matrix(&name("attn_v"), N_EMBD, n_embd_kv, 0.2));
        tensors.push(matrix(&name("attn_output"), N_EMBD, N_EMBD, 0.2));
        tensors.push((name("ffn_norm"), vec![N_EMBD as u64], vec![1.0; N_EMBD]));
        tensors.push(matrix(&name("ffn_gate"), N_EMBD, N_FF, 0.2));
        tensors.push(matrix(&name("ffn_up"), N_EMBD, N_FF, 0.2));
        tensors.push(matrix(&name("ffn_down"), N_FF, N_EMBD, 0.2));
    }
    tensors.push((
        "output_norm.weight".to_string(),
        vec![N_EMBD as u64],
        vec![1.0; N_EMBD],
    ));
    tensors.push(matrix("output.weight", N_EMBD, n_vocab, 0.25));
    tensors
}

/// The rank of the tiny LoRA adapter, and its alpha (llama.cpp scales the
/// adapter by alpha / rank, times the scale a run asks for).
pub const LORA_RANK: usize = 2;
pub const LORA_ALPHA: f32 = 4.0;

/// The GGML type of a tiny adapter's tensors.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum LoraType {
    F32,
    /// F16, with values that F16 holds exactly (multiples of 1/1024), so
    /// the merged model is the same sum.
    F16,
    /// `lora_a` in Q8_0 (its rows are 64 wide, two blocks; the content is
    /// zeros), `lora_b` in F32 (rows as short as the rank cannot be Q8_0).
    Q8_0,
}

/// A tiny LoRA adapter: weights from `seed`, of rank `rank`, on the
/// weights `parts` of every layer (`attn_q`, `attn_v`, `ffn_up`) and on the
/// token embedding if `parts` has `token_embd`.
#[derive(Debug, Clone)]
pub struct TinyLora {
    pub seed: u64,
    pub rank: usize,
    pub alpha: f32,
    pub parts: &'static [&'static str],
    pub architecture: &'static str,
    pub kind: LoraType,
}

impl TinyLora {
    /// The adapter [`write_tiny_lora`] writes: rank 2 on `attn_q` and `ffn_up`.
    pub fn new(seed: u64) -> TinyLora {
        TinyLora {
            seed,
            rank: LORA_RANK,
            alpha: LORA_ALPHA,
            parts: &["attn_q", "ffn_up"],
            architecture: "llama",
            kind: LoraType::F32,
        }
    }
}

/// A LoRA adapter for the tiny model (seed `seed`): F32 A and B matrices of
/// rank 2 on every layer's `attn_q` and `ffn_up`, as llama.cpp reads them
/// (`NAME.lora_a` with dimensions [in, rank], `NAME.lora_b` [rank, out]).
pub fn write_tiny_lora(path: &Path, seed: u64) -> io::Result<()> {
    write_lora(path, &TinyLora::new(seed))
}

/// Writes the adapter `lora` describes. The token embedding's pair is laid
/// out as llama.cpp wants it: A [rank, n_vocab], B [rank, n_embd].
pub fn write_lora(path: &Path, lora: &TinyLora) -> io::Result<()> {
    use Value::*;
    let metadata = vec![
        (
            "general.architecture".to_string(),
            Str(lora.architecture.into()),
        ),
        ("general.type".to_string(), Str("adapter".into())),
        ("adapter.type".to_string(), Str("lora".into())),
        ("adapter.lora.alpha".to_string(), F32(lora.alpha)),
    ];
    let rank = lora.rank as u64;
    let mut tensors = Vec::new();
    for (name, a, b) in lora_pairs(lora) {
        let (cols, rows) = lora_target(&name);
        let (a_dims, b_dims) = if name == "token_embd.weight" {
            (vec![rank, rows as u64], vec![rank, cols as u64])
        } else {
            (vec![cols as u64, rank], vec![rank, rows as u64])
        };
        let (a_kind, b_kind) = match lora.kind {
            LoraType::F32 => (GGML_F32, GGML_F32),
            LoraType::F16 => (GGML_F16, GGML_F16),
            LoraType::Q8_0 => (GGML_Q8_0, GGML_F32),
        };
        tensors.push(typed(format!("{name}.lora_a"), a_dims, a_kind, &a));
        tensors.push(typed(format!("{name}.lora_b"), b_dims, b_kind, &b));
    }
    write_typed(path, &metadata, &tensors)
}

/// The tiny model (seed `seed`) with the adapter (seed `lora_seed`) merged
/// in at `scale`: W + scale * alpha / rank * B A.
pub fn write_tiny_merged(path: &Path, seed: u64, lora_seed: u64, scale: f32) -> io::Result<()> {
    write_merged(path, seed, &[(TinyLora::new(lora_seed), scale)])
}

/// The tiny model (seed `seed`) with each adapter merged in at its scale:
/// W + sum of scale * alpha / rank * B A.
pub fn write_merged(path: &Path, seed: u64, adapters: &[(TinyLora, f32)]) -> io::Result<()> {
    let vocab = vocabulary();
    let mut tensors = tiny_tensors(seed, vocab.len());
    for (lora, scale) in adapters {
        let r = lora.rank;
        let factor = scale * lora.alpha / r as f32;
        for (name, a, b) in lora_pairs(lora) {
            let (cols, rows) = lora_target(&name);
            let (_, _, w) = tensors
                .iter_mut()
                .find(|(n, _, _)| *n == name)
                .expect("a target");
            let embedding = name == "token_embd.weight";
            for o in 0..rows {
                for i in 0..cols {
                    // Row o of the embedding is token o's: B times A's
                    // row for token o.
                    let delta: f32 = (0..r)
                        .map(|k| {
                            if embedding {
                                b[i * r + k] * a[o * r + k]
                            } else {
                                b[o * r + k] * a[k * cols + i]
                            }
                        })
                        .sum();
                    w[o * cols + i] += factor * delta;
                }
            }
        }
    }
    write_gguf(path, &metadata(&vocab, "llama"), &tensors)
}

/// (in, out) of a weight an adapter targets: the dimensions of its matrix.
fn lora_target(name: &str) -> (usize, usize) {
    if name.contains("ffn_up") {
        (N_EMBD, N_FF)
    } else if name.contains("attn_v") {
        (N_EMBD, N_EMBD / N_HEAD as usize * N_HEAD_KV as usize)
    } else if name == "token_embd.weight" {
        (N_EMBD, vocabulary().len())
    } else {
        (N_EMBD, N_EMBD)
    }
}

/// The adapter's (target, A, B), each as its file holds it: A is rank x in,
/// B is out x rank, row-major (for the token embedding, A is n_vocab x rank
/// and B n_embd x rank).
fn lora_pairs(lora: &TinyLora) -> Vec<(String, Vec<f32>, Vec<f32>)> {
    let mut rng = SplitMix64(lora.seed);
    let value = |rng: &mut SplitMix64| {
        let v = rng.uniform() * 0.5;
        match lora.kind {
            LoraType::F16 => (v * 1024.0).round() / 1024.0,
            _ => v,
        }
    };
    let mut out = Vec::new();
    let mut pair = |name: String, rng: &mut SplitMix64| {
        let (cols, rows) = lora_target(&name);
        let (a_len, b_len) = if name == "token_embd.weight" {
            (rows * lora.rank, cols * lora.rank)
        } else {
            (lora.rank * cols, rows * lora.rank)
        };
        let a = (0..a_len).map(|_| value(rng)).collect();
        let b = (0..b_len).map(|_| value(rng)).collect();
        out.push((name, a, b));
    };
    for layer in 0..N_LAYER {
        for part in lora.parts.iter().filter(|p| **p != "token_embd") {
            pair(format!("blk.{layer}.{part}.weight"), &mut rng);
        }
    }
    if lora.parts.contains(&"token_embd") {
        pair("token_embd.weight".to_string(), &mut rng);
    }
    out
}

/// GGML tensor types.
const GGML_F32: u32 = 0;
const GGML_F16: u32 = 1;
const GGML_Q8_0: u32 = 8;

/// A tensor as written: name, dimensions, GGML type and data.
type Typed = (String, Vec<u64>, u32, Vec<u8>);

fn typed(name: String, dims: Vec<u64>, kind: u32, values: &[f32]) -> Typed {
    let data = match kind {
        GGML_F32 => values.iter().flat_map(|v| v.to_le_bytes()).collect(),
        GGML_F16 => values
            .iter()
            .flat_map(|v| f16_bits(*v).to_le_bytes())
            .collect(),
        // Blocks of 32 values: an F16 scale and 32 bytes.
        _ => vec![0; values.len() / 32 * 34],
    };
    (name, dims, kind, data)
}

/// The F16 encoding of a value F16 holds exactly (zero or a normal number).
fn f16_bits(v: f32) -> u16 {
    let bits = v.to_bits();
    let sign = ((bits >> 16) & 0x8000) as u16;
    if v == 0.0 {
        return sign;
    }
    let exponent = ((bits >> 23) & 0xff) as i32 - 127 + 15;
    assert!(
        (1..31).contains(&exponent) && bits & 0x1fff == 0,
        "{v} is not exact in F16"
    );
    sign | ((exponent as u16) << 10) | ((bits >> 13) & 0x3ff) as u16
}

fn write_gguf(path: &Path, metadata: &[(String, Value)], tensors: &Tensors) -> io::Result<()> {
    let tensors: Vec<Typed> = tensors
        .iter()
        .map(|(name, dims, data)| typed(name.clone(), dims.clone(), GGML_F32, data))
        .collect();
    write_typed(path, metadata, &tensors)
}

fn write_typed(path: &Path, metadata: &[(String, Value)], tensors: &[Typed]) -> io::Result<()> {
    let mut out = Vec::new();
    out.extend_from_slice(b"GGUF");
    put_u32(&mut out, 3);
    put_u64(&mut out, tensors.len() as u64);
    put_u64(&mut out, metadata.len() as u64);
    for (key, value) in metadata {
        put_str(&mut out, key);
        value.write(&mut out);
    }

    const ALIGN: usize = 32;
    let mut offset = 0usize;
    for (name, dims, kind, data) in tensors {
        put_str(&mut out, name);
        put_u32(&mut out, dims.len() as u32);
        for d in dims {
            put_u64(&mut out, *d);
        }
        put_u32(&mut out, *kind);
        put_u64(&mut out, offset as u64);
        offset += data.len().next_multiple_of(ALIGN);
    }
    out.resize(out.len().next_multiple_of(ALIGN), 0);
    for (_, _, _, data) in tensors {
        out.extend_from_slice(data);
        out.resize(out.len().next_multiple_of(ALIGN), 0);
    }

    let mut file = std::fs::File::create(path)?;
    file.write_all(&out)?;
    file.sync_all()
}

/// One vocabulary entry: text, SentencePiece score, llama.cpp token type.
struct Piece {
    text: String,
    score: f32,
    kind: i32,
}

const NORMAL: i32 = 1;
const UNKNOWN: i32 = 2;
const CONTROL: i32 = 3;
const BYTE: i32 = 6;

/// `<unk> <s> </s>`, the 256 byte-fallback tokens, printable ASCII, then the
/// word pieces. Longer pieces score higher, so merges prefer them.
fn vocabulary() -> Vec<Piece> {
    let mut pieces = vec![
        piece("<unk>", 0.0, UNKNOWN),
        piece("<s>", 0.0, CONTROL),
        piece("</s>", 0.0, CONTROL),
    ];
    for b in 0..=255u8 {
        pieces.push(piece(&format!("<0x{b:02X}>"), 0.0, BYTE));
    }
    let mut seen = std::collections::BTreeSet::new();
    let mut add = |pieces: &mut Vec<Piece>, text: String| {
        if seen.insert(text.clone()) {
            let score = -100.0 + text.chars().count() as f32;
            pieces.push(piece(&text, score, NORMAL));
        }
    };
    add(&mut pieces, "\u{2581}".to_string());
    for c in (b'!'..=b'~').map(char::from) {
        add(&mut pieces, c.to_string());
    }
    for word in WORDS {
        for end in 2..=word.len() {
            add(&mut pieces, word[..end].to_string());
        }
        for end in 1..=word.len() {
            add(&mut pieces, format!("\u{2581}{}", &word[..end]));
        }
    }
    pieces
}

fn piece(text: &str, score: f32, kind: i32) -> Piece {
    Piece {
        text: text.to_string(),
        score,
        kind,
    }
}

fn metadata(vocab: &[Piece], architecture: &str) -> Vec<(String, Value)> {
    use Value::*;
    let arch = |key: &str| format!("{architecture}.{key}");
    let key = |name: &str| name.to_string();
    vec![
        (key("general.architecture"), Str(architecture.into())),
        (key("general.name"), Str("assay tiny test model".into())),
        (arch("context_length"), U32(N_CTX_TRAIN)),
        (arch("embedding_length"), U32(N_EMBD as u32)),
        (arch("block_count"), U32(N_LAYER as u32)),
        (arch("feed_forward_length"), U32(N_FF as u32)),
        (arch("attention.head_count"), U32(N_HEAD)),
        (arch("attention.head_count_kv"), U32(N_HEAD_KV)),
        (arch("rope.dimension_count"), U32(N_EMBD as u32 / N_HEAD)),
        (arch("rope.freq_base"), F32(10000.0)),
        (arch("attention.layer_norm_rms_epsilon"), F32(1e-5)),
        (key("tokenizer.ggml.model"), Str("llama".into())),
        (
            key("tokenizer.ggml.tokens"),
            StrArray(vocab.iter().map(|p| p.text.clone()).collect()),
        ),
        (
            key("tokenizer.ggml.scores"),
            F32Array(vocab.iter().map(|p| p.score).collect()),
        ),
        (
            key("tokenizer.ggml.token_type"),
            I32Array(vocab.iter().map(|p| p.kind).collect()),
        ),
        (key("tokenizer.ggml.unknown_token_id"), U32(UNK as u32)),
        (key("tokenizer.ggml.bos_token_id"), U32(BOS as u32)),
        (key("tokenizer.ggml.eos_token_id"), U32(EOS as u32)),
        (key("tokenizer.ggml.add_bos_token"), Bool(true)),
        (key("tokenizer.ggml.add_eos_token"), Bool(false)),
        (key("tokenizer.chat_template"), Str(CHAT_TEMPLATE.into())),
    ]
}

/// A minimal chat template, so `chat_template=true` has something to find.
pub const CHAT_TEMPLATE: &str =
    "{% for m in messages %}<s>{{ m['role'] }}: {{ m['content'] }}\n{% endfor %}";

enum Value {
    U32(u32),
    F32(f32),
    Bool(bool),
    Str(String),
    StrArray(Vec<String>),
    F32Array(Vec<f32>),
    I32Array(Vec<i32>),
}

impl Value {
    fn write(&self, out: &mut Vec<u8>) {
        // GGUF value type codes.
        const UINT32: u32 = 4;
        const INT32: u32 = 5;
        const FLOAT32: u32 = 6;
        const BOOL: u32 = 7;
        const STRING: u32 = 8;
        const ARRAY: u32 = 9;
        match self {
            Value::U32(v) => {
                put_u32(out, UINT32);
                put_u32(out, *v);
            }
            Value::F32(v) => {
                put_u32(out, FLOAT32);
                out.extend_from_slice(&v.to_le_bytes());
            }
            Value::Bool(v) => {
                put_u32(out, BOOL);
                out.push(u8::from(*v));
            }
            Value::Str(s) => {
                put_u32(out, STRING);
                put_str(out, s);
            }
            Value::StrArray(items) => {
                put_u32(out, ARRAY);
                put_u32(out, STRING);
                put_u64(out, items.len() as u64);
                for s in items {
                    put_str(out, s);
                }
            }
            Value::F32Array(items) => {
                put_u32(out, ARRAY);
                put_u32(out, FLOAT32);
                put_u64(out, items.len() as u64);
                for v in items {
                    out.extend_from_slice(&v.to_le_bytes());
                }
            }
            Value::I32Array(items) => {
                put_u32(out, ARRAY);
                put_u32(out, INT32);
                put_u64(out, items.len() as u64);
                for v in items {
                    out.extend_from_slice(&v.to_le_bytes());
                }
            }
        }
    }
}

fn put_u32(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(&v.to_le_bytes());
}

fn put_u64(out: &mut Vec<u8>, v: u64) {
    out.extend_from_slice(&v.to_le_bytes());
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    put_u64(out, s.len() as u64);
    out.extend_from_slice(s.as_bytes());
}

/// SplitMix64: a tiny, well-mixed generator, enough for reproducible weights.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [-1, 1).
    fn uniform(&mut self) -> f32 {
        ((self.next() >> 40) as f32 / (1u64 << 23) as f32) - 1.0
    }
}
