//! Several LoRA adapters applied as one (`lora=A.gguf:0.5|B.gguf`).
//! llama-cpp-2 sets one adapter per context (its `lora_adapter_set`
//! replaces the context's adapters), so the adapters are stacked into one
//! GGUF adapter that is their sum, built once into assay's cache folder and
//! applied at scale 1.
//!
//! llama.cpp adds `c * B (A x)` per adapter to each weight's product, with
//! `c = scale * alpha / rank` (`rank` = `lora_b`'s `ne[0]`; `c = scale` when
//! alpha is 0; see `get_scale` in llama-adapter.h). Stacking the ranks,
//! `A' = [A1; A2]` and `B' = [c1 B1, c2 B2]` give `B' A' = c1 B1 A1 + c2 B2
//! A2`, and alpha 0 makes llama.cpp's own factor the scale, 1.
//!
//! Both are F32, whatever the inputs (F32, F16 or BF16, converted exactly):
//! B' carries the factors, and an F16 A' would have llama.cpp's CPU kernel
//! round each activation to F16 before the product, which on the tests'
//! tiny model moves log-likelihoods by 2e-4 nats from the merged model's
//! (1e-6 with A' in F32). The file is at most twice its inputs' size.

use std::collections::BTreeMap;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use crate::backend::BackendError;
use crate::gguf::{self, Entry, Header, TensorInfo};

/// One adapter of a stack: its GGUF file, the file's SHA-256 and its scale.
#[derive(Debug, Clone, PartialEq)]
pub struct Adapter {
    pub path: PathBuf,
    pub sha256: String,
    pub scale: f32,
}

/// What the answers of a model with these adapters are keyed by: each
/// adapter's SHA-256 and scale, `|`-separated (one adapter's alone).
pub fn identity(adapters: &[Adapter]) -> String {
    adapters
        .iter()
        .map(|a| format!("sha256:{}@{}", a.sha256, a.scale))
        .collect::<Vec<_>>()
        .join("|")
}

/// The combined adapter of `adapters` (two or more): built into the cache
/// folder's `lora-stacks/` under a hash of their digests and scales, unless
/// it is there already.
pub fn combined(adapters: &[Adapter]) -> Result<PathBuf, BackendError> {
    // The `1` is the version of what is written: change it with the format.
    let key =
        crate::hash::sha256_hex(format!("assay lora stack 1\n{}", identity(adapters)).as_bytes());
    let dir = crate::cache::cache_dir()
        .unwrap_or_else(std::env::temp_dir)
        .join("lora-stacks");
    let path = dir.join(format!("{key}.gguf"));
    if path.is_file() {
        return Ok(path);
    }
    let inputs = adapters
        .iter()
        .map(Input::read)
        .collect::<Result<Vec<_>, _>>()?;
    let targets = targets(&inputs)?;
    let failed = |e: std::io::Error| {
        BackendError::Failed(format!(
            "cannot write the combined LoRA adapter into {}: {e}",
            dir.display()
        ))
    };
    crate::cache::write_once(&path, |part| write(part, &inputs, &targets), failed)?;
    Ok(path)
}

/// GGML tensor types an adapter's tensors may have.
const F32: u32 = 0;
const F16: u32 = 1;
const BF16: u32 = 30;

/// A tensor type's name, for errors.
fn type_name(kind: u32) -> String {
    let name = match kind {
        F32 => "F32",
        F16 => "F16",
        BF16 => "BF16",
        2 => "Q4_0",
        3 => "Q4_1",
        6 => "Q5_0",
        7 => "Q5_1",
        8 => "Q8_0",
        9 => "Q8_1",
        10 => "Q2_K",
        11 => "Q3_K",
        12 => "Q4_K",
        13 => "Q5_K",
        14 => "Q6_K",
        15 => "Q8_K",
        _ => return format!("GGML type {kind}"),
    };
    name.to_string()
}

/// One adapter file, checked: its header, scale and LoRA pairs by target
/// weight name.
struct Input {
    path: PathBuf,
    header: Header,
    scale: f32,
    /// `adapter.lora.alpha` (0 when absent, as llama.cpp reads it).
    alpha: f32,
    /// Target weight -> (its `lora_a`, its `lora_b`), in file order.
    pairs: Vec<(String, TensorInfo, TensorInfo)>,
}

impl Input {
    fn read(adapter: &Adapter) -> Result<Input, BackendError> {
        let shown = adapter.path.display();
        let refuse =
            |why: String| BackendError::BadInput(format!("--model-arg lora: {shown}: {why}"));
        let header = gguf::read_header(&adapter.path).map_err(&refuse)?;
        let text = |key: &str| header.entry(key).and_then(Entry::as_str).unwrap_or("");
        if text("general.type") != "adapter" || text("adapter.type") != "lora" {
            return Err(refuse(format!(
                "not a LoRA adapter (general.type {:?}, adapter.type {:?})",
                text("general.type"),
                text("adapter.type")
            )));
        }
        if let Some(e) = header.entries.iter().find(|e| e.key.contains("alora")) {
            return Err(refuse(format!(
                "an aLoRA adapter ({}); assay stacks plain LoRA adapters only, so apply it alone",
                e.key
            )));
        }
        let alpha = match header.entry("adapter.lora.alpha") {
            None => 0.0,
            Some(e) => e
                .as_f32()
                .ok_or_else(|| refuse("adapter.lora.alpha is not a 32-bit float".into()))?,
        };

        let mut halves: BTreeMap<&str, [Option<&TensorInfo>; 2]> = BTreeMap::new();
        let mut order = Vec::new();
        for t in &header.tensors {
            let (target, half) = if let Some(target) = t.name.strip_suffix(".lora_a") {
                (target, 0)
            } else if let Some(target) = t.name.strip_suffix(".lora_b") {
                (target, 1)
            } else if t.name.ends_with("_norm.weight") {
                // llama.cpp ignores an adapter's norm vectors too.
                continue;
            } else {
                return Err(refuse(format!(
                    "tensor {} is neither a .lora_a nor a .lora_b tensor",
                    t.name
                )));
            };
            if ![F32, F16, BF16].contains(&t.kind) {
                return Err(refuse(format!(
                    "tensor {} is {}; assay stacks adapters whose tensors are F32, F16 or \
                     BF16 (export the adapter unquantized, e.g. --outtype f16)",
                    t.name,
                    type_name(t.kind)
                )));
            }
            let slot = halves.entry(target).or_insert_with(|| {
                order.push(target);
                [None, None]
            });
            slot[half] = Some(t);
        }
        let mut pairs = Vec::new();
        for target in order {
            match halves[target] {
                [Some(a), Some(b)] => pairs.push((target.to_string(), a.clone(), b.clone())),
                [None, _] => return Err(refuse(format!("{target}.lora_b has no {target}.lora_a"))),
                [_, None] => return Err(refuse(format!("{target}.lora_a has no {target}.lora_b"))),
            }
        }
        Ok(Input {
            path: adapter.path.clone(),
            scale: adapter.scale,
            alpha,
            pairs,
            header,
        })
    }

    fn architecture(&self) -> &str {
        self.header
            .entry("general.architecture")
            .and_then(Entry::as_str)
            .unwrap_or("")
    }
}

/// A tensor's `ne`, four of them (GGUF leaves out trailing ones).
fn ne(dims: &[u64]) -> [u64; 4] {
    let mut ne = [1; 4];
    ne[..dims.len().min(4)].copy_from_slice(&dims[..dims.len().min(4)]);
    ne
}

/// How one adapter's pair for a weight stacks: its rank, llama.cpp's factor
/// for it, and how its A and B split into the groups that are concatenated.
#[derive(Debug, Clone, PartialEq)]
struct Piece {
    rank: u64,
    factor: f32,
    /// Which of A's dimensions is the rank: 1 (`ne = [n_in, rank,
    /// n_expert]`), or 0 for the token embedding, whose A llama.cpp keeps
    /// transposed (`ne = [rank, n_vocab]`).
    rank_axis: usize,
    /// Elements of A per group: the rank rows of one expert's matrix, or
    /// of the token embedding's A, one row.
    a_group: u64,
    /// A's and B's dimensions with the rank taken out: what must agree.
    shape: ([u64; 3], [u64; 3]),
}

impl Piece {
    fn new(target: &str, alpha: f32, scale: f32, a: &[u64], b: &[u64]) -> Result<Piece, String> {
        let (a, b) = (ne(a), ne(b));
        let rank = b[0];
        if rank == 0 {
            return Err(format!("{target}.lora_b has rank 0"));
        }
        // llama.cpp's `get_scale`, in its f32 arithmetic.
        let factor = if alpha != 0.0 {
            scale * alpha / rank as f32
        } else {
            scale
        };
        let b_rest = [b[1], b[2], b[3]];
        let piece = if target.ends_with("token_embd.weight") {
            if a[0] != rank {
                return Err(format!(
                    "{target}.lora_a has rank {} but its lora_b {rank}",
                    a[0]
                ));
            }
            Piece {
                rank,
                factor,
                rank_axis: 0,
                a_group: rank,
                shape: ([a[1], a[2], a[3]], b_rest),
            }
        } else {
            if a[1] != rank {
                return Err(format!(
                    "{target}.lora_a has rank {} but its lora_b {rank}",
                    a[1]
                ));
            }
            Piece {
                rank,
                factor,
                rank_axis: 1,
                a_group: a[0] * rank,
                shape: ([a[0], a[2], a[3]], b_rest),
            }
        };
        Ok(piece)
    }
}

/// One weight of the combined adapter: which inputs adapt it (index into
/// the inputs, index into that input's pairs, how it stacks), and the
/// stacked tensors' infos.
struct Target {
    parts: Vec<(usize, usize, Piece)>,
    a: TensorInfo,
    b: TensorInfo,
}

/// The weights the combined adapter adapts, in the first adapter's order
/// then each next one's new ones. Adapters must be for one architecture and
/// agree on each weight's shape.
fn targets(inputs: &[Input]) -> Result<Vec<Target>, BackendError> {
    let first = &inputs[0];
    if let Some(other) = inputs
        .iter()
        .find(|i| i.architecture() != first.architecture())
    {
        return Err(BackendError::BadInput(format!(
            "--model-arg lora: {} is an adapter for `{}` models but {} for `{}`; stacked \
             adapters must all be for the model's architecture",
            other.path.display(),
            other.architecture(),
            first.path.display(),
            first.architecture()
        )));
    }
    let mut names: Vec<&str> = Vec::new();
    let mut parts: BTreeMap<&str, Vec<(usize, usize, Piece)>> = BTreeMap::new();
    for (i, input) in inputs.iter().enumerate() {
        for (j, (target, a, b)) in input.pairs.iter().enumerate() {
            let piece =
                Piece::new(target, input.alpha, input.scale, &a.dims, &b.dims).map_err(|why| {
                    BackendError::BadInput(format!(
                        "--model-arg lora: {}: {why}",
                        input.path.display()
                    ))
                })?;
            let entry = parts.entry(target.as_str()).or_insert_with(|| {
                names.push(target);
                Vec::new()
            });
            if let Some((k, l, earlier)) = entry.first() {
                if earlier.shape != piece.shape {
                    let (_, a0, b0) = &inputs[*k].pairs[*l];
                    return Err(BackendError::BadInput(format!(
                        "--model-arg lora: {} and {} adapt {target} with tensors of other \
                         shapes (lora_a {:?} and lora_b {:?}, then {:?} and {:?}); they are \
                         not for one model",
                        inputs[*k].path.display(),
                        input.path.display(),
                        a0.dims,
                        b0.dims,
                        a.dims,
                        b.dims
                    )));
                }
            }
            entry.push((i, j, piece));
        }
    }
    Ok(names
        .into_iter()
        .map(|name| {
            let parts = parts.remove(name).unwrap_or_default();
            let (i, j, first) = &parts[0];
            let (_, a, b) = &inputs[*i].pairs[*j];
            let rank: u64 = parts.iter().map(|(_, _, p)| p.rank).sum();
            let mut a_dims = ne(&a.dims);
            a_dims[first.rank_axis] = rank;
            let mut b_dims = ne(&b.dims);
            b_dims[0] = rank;
            let info = |suffix: &str, dims: [u64; 4]| TensorInfo {
                name: format!("{name}.{suffix}"),
                dims: trimmed(dims),
                kind: F32,
                offset: 0,
            };
            Target {
                a: info("lora_a", a_dims),
                b: info("lora_b", b_dims),
                parts,
            }
        })
        .collect())
}

/// Dimensions as GGUF lists them: trailing ones left out, at least two.
fn trimmed(ne: [u64; 4]) -> Vec<u64> {
    let n = ne.iter().rposition(|d| *d != 1).map_or(0, |i| i + 1).max(2);
    ne[..n].to_vec()
}

/// Bytes per element of an F32, F16 or BF16 tensor.
fn element_size(kind: u32) -> u64 {
    if kind == F32 {
        4
    } else {
        2
    }
}

fn byte_size(t: &TensorInfo) -> u64 {
    ne(&t.dims).iter().product::<u64>() * element_size(t.kind)
}

/// Writes the combined adapter: the first adapter's metadata with alpha 0,
/// then each target's stacked A and B.
fn write(path: &Path, inputs: &[Input], targets: &[Target]) -> Result<(), BackendError> {
    let failed = |e: std::io::Error| {
        BackendError::Failed(format!(
            "cannot write the combined LoRA adapter {}: {e}",
            path.display()
        ))
    };
    let mut entries: Vec<Entry> = inputs[0]
        .header
        .entries
        .iter()
        .filter(|e| e.key != "adapter.lora.alpha")
        .cloned()
        .collect();
    entries.push(Entry::f32("adapter.lora.alpha", 0.0));
    let infos: Vec<TensorInfo> = targets
        .iter()
        .flat_map(|t| [t.a.clone(), t.b.clone()])
        .collect();
    let sizes: Vec<u64> = infos.iter().map(byte_size).collect();
    let mut out = gguf::Writer::create(path, &entries, &infos, &sizes).map_err(failed)?;
    let mut files = inputs
        .iter()
        .map(|i| {
            std::fs::File::open(&i.path)
                .map_err(|e| BackendError::Failed(format!("cannot read {}: {e}", i.path.display())))
        })
        .collect::<Result<Vec<_>, _>>()?;
    for target in targets {
        let (mut a_parts, mut b_parts) = (Vec::new(), Vec::new());
        let (mut a_groups, mut b_groups) = (Vec::new(), Vec::new());
        for (i, j, piece) in &target.parts {
            let (_, a, b) = &inputs[*i].pairs[*j];
            let path = &inputs[*i].path;
            a_parts.push(to_f32(&tensor_data(&mut files[*i], path, a)?, a.kind));
            let b_values = to_f32(&tensor_data(&mut files[*i], path, b)?, b.kind);
            b_parts.push(scaled(&b_values, piece.factor));
            a_groups.push(piece.a_group as usize);
            b_groups.push(piece.rank as usize);
        }
        out.tensor(&f32_bytes(&concat_groups(&a_parts, &a_groups)))
            .map_err(failed)?;
        out.tensor(&f32_bytes(&concat_groups(&b_parts, &b_groups)))
            .map_err(failed)?;
    }
    out.finish().map_err(failed)
}

/// A tensor's data, read from an adapter file.
fn tensor_data(
    file: &mut std::fs::File,
    path: &Path,
    t: &TensorInfo,
) -> Result<Vec<u8>, BackendError> {
    let mut data = vec![0u8; byte_size(t) as usize];
    file.seek(SeekFrom::Start(t.offset))
        .and_then(|_| file.read_exact(&mut data))
        .map_err(|e| {
            BackendError::BadInput(format!(
                "--model-arg lora: {}: cannot read tensor {}'s data ({e}); is the file complete?",
                path.display(),
                t.name
            ))
        })?;
    Ok(data)
}

/// Group `g` of the result is group `g` of each part in turn, part `i`'s
/// groups being `group[i]` values long: stacks ranks, part after part,
/// inside each row (B) or each expert's matrix (A).
fn concat_groups(parts: &[Vec<f32>], group: &[usize]) -> Vec<f32> {
    let total: usize = parts.iter().map(Vec::len).sum();
    let groups = parts[0].len().checked_div(group[0]).unwrap_or(0);
    debug_assert!(parts
        .iter()
        .zip(group)
        .all(|(p, size)| p.len() == groups * size));
    let mut out = Vec::with_capacity(total);
    for g in 0..groups {
        for (part, size) in parts.iter().zip(group) {
            out.extend_from_slice(&part[g * size..(g + 1) * size]);
        }
    }
    out
}

fn scaled(values: &[f32], factor: f32) -> Vec<f32> {
    values.iter().map(|v| v * factor).collect()
}

fn f32_bytes(values: &[f32]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

/// An F32, F16 or BF16 tensor's values; both halves convert exactly.
fn to_f32(bytes: &[u8], kind: u32) -> Vec<f32> {
    match kind {
        F32 => bytes
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect(),
        F16 => bytes
            .chunks_exact(2)
            .map(|c| f16_to_f32(u16::from_le_bytes([c[0], c[1]])))
            .collect(),
        _ => bytes
            .chunks_exact(2)
            .map(|c| f32::from_bits(u32::from(u16::from_le_bytes([c[0], c[1]])) << 16))
            .collect(),
    }
}

/// IEEE half precision to single, exactly (subnormals, infinities, NaN).
fn f16_to_f32(h: u16) -> f32 {
    let sign = u32::from(h >> 15) << 31;
    let exponent = u32::from((h >> 10) & 0x1f);
    let mantissa = u32::from(h & 0x3ff);
    let bits = match (exponent, mantissa) {
        (0, 0) => sign,
        // A subnormal half is mantissa * 2^-24, a normal single.
        (0, m) => {
            let value = m as f32 * f32::from_bits(0x3380_0000); // 2^-24
            return if sign != 0 { -value } else { value };
        }
        (0x1f, m) => sign | 0x7f80_0000 | (m << 13),
        (e, m) => sign | ((e + 127 - 15) << 23) | (m << 13),
    };
    f32::from_bits(bits)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn halves_convert_exactly() {
        for (bits, want) in [
            (0x3c00u16, 1.0f32),
            (0xc000, -2.0),
            (0x3555, 0.333_251_95),
            (0x7bff, 65504.0),
            (0x0001, 5.960_464_5e-8),
            (0x8200, -3.051_757_8e-5),
            (0x0000, 0.0),
            (0x7c00, f32::INFINITY),
        ] {
            assert_eq!(f16_to_f32(bits), want, "{bits:#06x}");
        }
        assert!(f16_to_f32(0x7e00).is_nan());
        let bf16 = to_f32(&[0x80, 0x3f, 0x49, 0xc0], BF16);
        assert_eq!(bf16, [1.0, -3.140_625]);
        let f16 = to_f32(&[0x00, 0x3c, 0x00, 0xc0], F16);
        assert_eq!(f16, [1.0, -2.0]);
    }

    #[test]
    fn the_factor_is_llama_cpps() {
        // alpha / rank times the scale, or the scale alone when alpha is 0.
        let p = Piece::new("blk.0.attn_q.weight", 4.0, 0.5, &[8, 2], &[2, 6]).unwrap();
        assert_eq!((p.rank, p.factor, p.a_group), (2, 1.0, 16));
        let p = Piece::new("blk.0.attn_q.weight", 0.0, 0.5, &[8, 2], &[2, 6]).unwrap();
        assert_eq!(p.factor, 0.5);
        // The token embedding's A is transposed: its rank comes first.
        let p = Piece::new("token_embd.weight", 2.0, 1.0, &[4, 100], &[4, 8]).unwrap();
        assert_eq!((p.rank, p.factor, p.a_group), (4, 0.5, 4));
        // A rank-1 A may come without its trailing dimension.
        let p = Piece::new("blk.0.attn_q.weight", 0.0, 1.0, &[8], &[1, 6]).unwrap();
        assert_eq!((p.rank, p.a_group), (1, 8));
        let err = Piece::new("blk.0.attn_q.weight", 0.0, 1.0, &[8, 3], &[2, 6]).unwrap_err();
        assert!(err.contains("rank 3"), "{err}");
    }

    /// `W x` plus each adapter's delta, computed the way llama.cpp does for
    /// a weight of `n_in` inputs and `n_out` outputs.
    fn deltas(
        n_in: usize,
        n_out: usize,
        adapters: &[(&[f32], &[f32], usize, f32)],
        x: &[f32],
    ) -> Vec<f32> {
        let mut out = vec![0.0; n_out];
        for (a, b, rank, c) in adapters {
            // ne(A) = [n_in, rank]: row k is A[k * n_in ..]; ne(B) = [rank, n_out].
            let ax: Vec<f32> = (0..*rank)
                .map(|k| (0..n_in).map(|i| a[k * n_in + i] * x[i]).sum())
                .collect();
            for (o, y) in out.iter_mut().enumerate() {
                *y += c * (0..*rank).map(|k| b[o * rank + k] * ax[k]).sum::<f32>();
            }
        }
        out
    }

    #[test]
    fn stacked_ranks_give_the_sum_of_the_adapters() {
        let (n_in, n_out) = (3, 2);
        let a1 = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]; // rank 2
        let b1 = [1.0, 0.5, -1.0, 2.0];
        let a2 = [0.5, -0.5, 1.5]; // rank 1
        let b2 = [3.0, -2.0];
        let (c1, c2) = (0.7 * 4.0 / 2.0, 0.3);
        let p1 = Piece::new("w", 4.0, 0.7, &[3, 2], &[2, 2]).unwrap();
        let p2 = Piece::new("w", 0.0, 0.3, &[3], &[1, 2]).unwrap();
        assert_eq!((p1.factor, p2.factor), (c1, c2));
        let a = concat_groups(
            &[a1.to_vec(), a2.to_vec()],
            &[p1.a_group as usize, p2.a_group as usize],
        );
        let b = concat_groups(
            &[scaled(&b1, c1), scaled(&b2, c2)],
            &[p1.rank as usize, p2.rank as usize],
        );
        // A' is A1's rows then A2's; each row of B' is c1 B1's then c2 B2's.
        assert_eq!(a, [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 0.5, -0.5, 1.5]);
        assert_eq!(b, [c1, 0.5 * c1, 3.0 * c2, -c1, 2.0 * c1, -2.0 * c2]);
        let x = [0.25, -1.0, 2.0];
        let want = deltas(n_in, n_out, &[(&a1, &b1, 2, c1), (&a2, &b2, 1, c2)], &x);
        let got = deltas(n_in, n_out, &[(&a, &b, 3, 1.0)], &x);
        for (g, w) in got.iter().zip(&want) {
            assert!((g - w).abs() < 1e-5, "{got:?} vs {want:?}");
        }
    }

    #[test]
    fn experts_stack_matrix_by_matrix() {
        // ne(A) = [n_in 2, rank, 2 experts]: each expert's rows stay together.
        let a1 = [1.0, 2.0, 3.0, 4.0]; // rank 1: expert 0 [1, 2], expert 1 [3, 4]
        let a2 = [5.0, 6.0, 7.0, 8.0];
        let p = Piece::new("blk.0.ffn_up_exps.weight", 0.0, 1.0, &[2, 1, 2], &[1, 3, 2]).unwrap();
        assert_eq!(p.shape, ([2, 2, 1], [3, 2, 1]));
        let size = p.a_group as usize;
        let a = concat_groups(&[a1.to_vec(), a2.to_vec()], &[size, size]);
        assert_eq!(a, [1.0, 2.0, 5.0, 6.0, 3.0, 4.0, 7.0, 8.0]);
    }

    #[test]
    fn dimensions_lose_trailing_ones_only() {
        assert_eq!(trimmed([8, 3, 1, 1]), [8, 3]);
        assert_eq!(trimmed([8, 1, 1, 1]), [8, 1]);
        assert_eq!(trimmed([8, 3, 4, 1]), [8, 3, 4]);
    }

    #[test]
    fn one_adapter_keeps_todays_identity() {
        let adapter = |sha: &str, scale| Adapter {
            path: PathBuf::from("a.gguf"),
            sha256: sha.into(),
            scale,
        };
        assert_eq!(identity(&[adapter("d1", 0.5)]), "sha256:d1@0.5");
        assert_eq!(
            identity(&[adapter("d1", 0.5), adapter("d2", 1.0)]),
            "sha256:d1@0.5|sha256:d2@1"
        );
    }

    /// Writes an adapter with `entries` beside its type keys and `tensors`
    /// (name, dims, GGML type, values), returning its [`Adapter`].
    fn adapter_file(
        dir: &Path,
        name: &str,
        scale: f32,
        entries: Vec<Entry>,
        tensors: &[(&str, Vec<u64>, u32, Vec<f32>)],
    ) -> Adapter {
        let path = dir.join(name);
        let mut all = vec![
            Entry::string("general.architecture", "llama"),
            Entry::string("general.type", "adapter"),
            Entry::string("adapter.type", "lora"),
        ];
        all.extend(entries);
        let encode = |kind: u32, values: &[f32]| -> Vec<u8> {
            match kind {
                F32 => f32_bytes(values),
                // The test values are exact in either half.
                F16 => values
                    .iter()
                    .flat_map(|v| half_bits(*v).to_le_bytes())
                    .collect(),
                _ => values
                    .iter()
                    .flat_map(|v| ((v.to_bits() >> 16) as u16).to_le_bytes())
                    .collect(),
            }
        };
        let infos: Vec<TensorInfo> = tensors
            .iter()
            .map(|(name, dims, kind, _)| TensorInfo {
                name: name.to_string(),
                dims: dims.clone(),
                kind: *kind,
                offset: 0,
            })
            .collect();
        let data: Vec<Vec<u8>> = tensors.iter().map(|(_, _, k, v)| encode(*k, v)).collect();
        let sizes: Vec<u64> = data.iter().map(|d| d.len() as u64).collect();
        let mut w = gguf::Writer::create(&path, &all, &infos, &sizes).unwrap();
        for d in &data {
            w.tensor(d).unwrap();
        }
        w.finish().unwrap();
        Adapter {
            path,
            sha256: String::new(),
            scale,
        }
    }

    /// The F16 bits of 1, 2, 0.5 and -1 (all this test writes in F16).
    fn half_bits(v: f32) -> u16 {
        match v {
            1.0 => 0x3c00,
            2.0 => 0x4000,
            0.5 => 0x3800,
            -1.0 => 0xbc00,
            _ => panic!("{v} has no F16 bits in this test"),
        }
    }

    /// Stacks `adapters` into `dir/stack.gguf` as [`combined`] does.
    fn stack(dir: &Path, adapters: &[Adapter]) -> Result<Header, BackendError> {
        let inputs = adapters
            .iter()
            .map(Input::read)
            .collect::<Result<Vec<_>, _>>()?;
        let targets = targets(&inputs)?;
        let out = dir.join("stack.gguf");
        write(&out, &inputs, &targets)?;
        Ok(gguf::read_header(&out).unwrap())
    }

    fn values(path: &Path, t: &TensorInfo) -> Vec<f32> {
        let mut file = std::fs::File::open(path).unwrap();
        to_f32(&tensor_data(&mut file, path, t).unwrap(), t.kind)
    }

    #[test]
    fn a_stacked_file_holds_both_adapters_in_f32_with_alpha_zero() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let q = "blk.0.attn_q.weight";
        // F32, rank 2, alpha 4: factor 0.5 * 4 / 2 = 1.
        let first = adapter_file(
            d,
            "a.gguf",
            0.5,
            vec![
                Entry::f32("adapter.lora.alpha", 4.0),
                Entry::string("general.name", "first"),
            ],
            &[
                (
                    &format!("{q}.lora_a"),
                    vec![3, 2],
                    F32,
                    vec![1., 2., 3., 4., 5., 6.],
                ),
                (
                    &format!("{q}.lora_b"),
                    vec![2, 2],
                    F32,
                    vec![1., 2., 3., 4.],
                ),
                ("blk.0.attn_norm.weight", vec![3], F32, vec![1., 1., 1.]),
            ],
        );
        // F16 and BF16, rank 1, no alpha: factor = the scale, 2.
        let second = adapter_file(
            d,
            "b.gguf",
            2.0,
            vec![],
            &[
                (&format!("{q}.lora_a"), vec![3], F16, vec![1., 2., 0.5]),
                (&format!("{q}.lora_b"), vec![1, 2], BF16, vec![-1., 0.5]),
                // The embedding's A is [rank, n_vocab], its B [rank, n_embd].
                ("token_embd.weight.lora_a", vec![1, 2], F16, vec![2., -1.]),
                (
                    "token_embd.weight.lora_b",
                    vec![1, 3],
                    F16,
                    vec![1., 0.5, 2.],
                ),
            ],
        );
        let header = stack(d, &[first, second]).unwrap();
        let out = d.join("stack.gguf");
        let alpha = header.entry("adapter.lora.alpha").and_then(Entry::as_f32);
        assert_eq!(alpha, Some(0.0));
        let name = header.entry("general.name").and_then(Entry::as_str);
        assert_eq!(name, Some("first"), "the first adapter's metadata");
        let shapes: Vec<(&str, &[u64], u32)> = header
            .tensors
            .iter()
            .map(|t| (t.name.as_str(), t.dims.as_slice(), t.kind))
            .collect();
        assert_eq!(
            shapes,
            [
                ("blk.0.attn_q.weight.lora_a", &[3, 3][..], F32),
                ("blk.0.attn_q.weight.lora_b", &[3, 2][..], F32),
                ("token_embd.weight.lora_a", &[1, 2][..], F32),
                ("token_embd.weight.lora_b", &[1, 3][..], F32),
            ]
        );
        let t = &header.tensors;
        assert_eq!(values(&out, &t[0]), [1., 2., 3., 4., 5., 6., 1., 2., 0.5]);
        assert_eq!(values(&out, &t[1]), [1., 2., -2., 3., 4., 1.]);
        assert_eq!(values(&out, &t[2]), [2., -1.]);
        assert_eq!(values(&out, &t[3]), [2., 1., 4.]);
    }

    #[test]
    fn what_cannot_be_stacked_is_refused_naming_file_and_tensor() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let q = "blk.0.attn_q.weight";
        let pair = |a: Vec<u64>, kind: u32| {
            let n = a.iter().product::<u64>() as usize;
            vec![
                (format!("{q}.lora_a"), a, kind, vec![1.0; n]),
                (format!("{q}.lora_b"), vec![1, 2], F32, vec![1.0; 2]),
            ]
        };
        let file =
            |name: &str, entries: Vec<Entry>, tensors: Vec<(String, Vec<u64>, u32, Vec<f32>)>| {
                let tensors: Vec<_> = tensors
                    .iter()
                    .map(|(n, d, k, v)| (n.as_str(), d.clone(), *k, v.clone()))
                    .collect();
                adapter_file(d, name, 1.0, entries, &tensors)
            };
        let good = file("good.gguf", vec![], pair(vec![3, 1], F32));
        let cases = [
            (
                file(
                    "alora.gguf",
                    vec![Entry::string("adapter.alora.invocation_tokens", "x")],
                    pair(vec![3, 1], F32),
                ),
                vec!["alora.gguf", "aLoRA"],
            ),
            (
                file("half.gguf", vec![], pair(vec![3, 1], F32)[..1].to_vec()),
                vec!["half.gguf", "lora_a has no blk.0.attn_q.weight.lora_b"],
            ),
            (
                file("wide.gguf", vec![], pair(vec![4, 1], F32)),
                vec!["good.gguf", "wide.gguf", "other shapes"],
            ),
            (
                file(
                    "odd.gguf",
                    vec![],
                    vec![("blk.0.attn_q.weight".into(), vec![3], F32, vec![1.0; 3])],
                ),
                vec!["odd.gguf", "neither a .lora_a nor a .lora_b"],
            ),
        ];
        for (bad, says) in cases {
            let err = stack(d, &[good.clone(), bad]).unwrap_err();
            assert!(matches!(err, BackendError::BadInput(_)), "{err}");
            for s in says {
                assert!(err.to_string().contains(s), "`{s}` missing from: {err}");
            }
        }
    }
}
