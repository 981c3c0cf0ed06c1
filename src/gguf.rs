//! A GGUF file's metadata, read without loading the model: architecture,
//! file type, a hash of the vocabulary, and each tensor's name, shape and
//! type. Manifests are checked against it (a variant's lineage is read from
//! its files, not taken on trust).
//!
//! Only the header is read: key-value pairs and tensor infos, which precede
//! the tensor data (GGUF versions 2 and 3, little-endian).

use std::collections::BTreeMap;
use std::io::{BufReader, Read};
use std::path::Path;

/// What a GGUF file says about itself.
#[derive(Debug, Clone, PartialEq)]
pub struct Metadata {
    /// `general.architecture`, e.g. `llama`, `gemma3`.
    pub architecture: String,
    /// `general.file_type`: llama.cpp's LLAMA_FTYPE (15 = Q4_K_M, ...).
    pub file_type: Option<u32>,
    /// SHA-256 of the vocabulary (`tokenizer.ggml.tokens`, in order).
    pub vocabulary: Option<String>,
    /// Tensor name -> (dimensions, GGML type).
    pub tensors: BTreeMap<String, (Vec<u64>, u32)>,
    /// Size of the file in bytes.
    pub file_size: u64,
}

impl Metadata {
    /// The number of parameters: every tensor's elements.
    pub fn parameters(&self) -> u64 {
        self.tensors
            .values()
            .map(|(dims, _)| dims.iter().product::<u64>())
            .sum()
    }

    /// Bits per weight over the whole file, as llama.cpp reports it.
    pub fn bits_per_weight(&self) -> f64 {
        match self.parameters() {
            0 => 0.0,
            n => self.file_size as f64 * 8.0 / n as f64,
        }
    }

    /// The file type's name (`Q4_K_M`, `F16`...), as manifests write
    /// precision; None for a type this table does not name.
    pub fn precision(&self) -> Option<&'static str> {
        Some(match self.file_type? {
            0 => "F32",
            1 => "F16",
            2 => "Q4_0",
            3 => "Q4_1",
            7 => "Q8_0",
            8 => "Q5_0",
            9 => "Q5_1",
            10 => "Q2_K",
            11 => "Q3_K_S",
            12 => "Q3_K_M",
            13 => "Q3_K_L",
            14 => "Q4_K_S",
            15 => "Q4_K_M",
            16 => "Q5_K_S",
            17 => "Q5_K_M",
            18 => "Q6_K",
            32 => "BF16",
            _ => return None,
        })
    }
}

/// Reads the metadata of the GGUF file at `path`; the error says what is
/// wrong with it.
pub fn read(path: &Path) -> Result<Metadata, String> {
    let file = std::fs::File::open(path).map_err(|e| e.to_string())?;
    let file_size = file.metadata().map_err(|e| e.to_string())?.len();
    let mut r = Reader(BufReader::new(file));
    if r.bytes(4)? != b"GGUF" {
        return Err("not a GGUF file (no GGUF magic)".into());
    }
    let version = r.u32()?;
    if !(2..=3).contains(&version) {
        return Err(format!(
            "GGUF version {version} is not one assay reads (2 or 3)"
        ));
    }
    let tensor_count = r.u64()?;
    let kv_count = r.u64()?;
    let mut meta = Metadata {
        architecture: String::new(),
        file_type: None,
        vocabulary: None,
        tensors: BTreeMap::new(),
        file_size,
    };
    for _ in 0..kv_count {
        let key = r.string()?;
        let kind = r.u32()?;
        match (key.as_str(), kind) {
            ("general.architecture", 8) => meta.architecture = r.string()?,
            ("general.file_type", 4) => meta.file_type = Some(r.u32()?),
            ("tokenizer.ggml.tokens", 9) => {
                use sha2::Digest;
                let item = r.u32()?;
                let n = r.u64()?;
                if item != 8 {
                    return Err("tokenizer.ggml.tokens is not a list of strings".into());
                }
                let mut hasher = sha2::Sha256::new();
                for _ in 0..n {
                    let token = r.string()?;
                    hasher.update((token.len() as u64).to_le_bytes());
                    hasher.update(token.as_bytes());
                }
                meta.vocabulary = Some(crate::hash::hex(&hasher.finalize()));
            }
            (_, kind) => r.skip_value(kind)?,
        }
    }
    for _ in 0..tensor_count {
        let name = r.string()?;
        let n_dims = r.u32()?;
        if n_dims > 8 {
            return Err(format!("tensor {name}: {n_dims} dimensions"));
        }
        let dims = (0..n_dims)
            .map(|_| r.u64())
            .collect::<Result<Vec<_>, _>>()?;
        let kind = r.u32()?;
        let _offset = r.u64()?;
        meta.tensors.insert(name, (dims, kind));
    }
    Ok(meta)
}

struct Reader<R: Read>(R);

impl<R: Read> Reader<R> {
    fn bytes(&mut self, n: usize) -> Result<Vec<u8>, String> {
        let mut buf = vec![0u8; n];
        self.0
            .read_exact(&mut buf)
            .map_err(|_| "the file ends inside its header".to_string())?;
        Ok(buf)
    }

    fn u32(&mut self) -> Result<u32, String> {
        let b = self.bytes(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn u64(&mut self) -> Result<u64, String> {
        let b = self.bytes(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(&b);
        Ok(u64::from_le_bytes(a))
    }

    fn string(&mut self) -> Result<String, String> {
        let n = self.u64()?;
        if n > 1 << 24 {
            return Err(format!("a string of {n} bytes in the header"));
        }
        String::from_utf8(self.bytes(n as usize)?).map_err(|_| "a string is not UTF-8".into())
    }

    /// Skips a value of GGUF type `kind`.
    fn skip_value(&mut self, kind: u32) -> Result<(), String> {
        let fixed = |kind: u32| -> Option<usize> {
            Some(match kind {
                0 | 1 | 7 => 1,
                2 | 3 => 2,
                4..=6 => 4,
                10..=12 => 8,
                _ => return None,
            })
        };
        match kind {
            8 => {
                self.string()?;
            }
            9 => {
                let item = self.u32()?;
                let n = self.u64()?;
                match fixed(item) {
                    Some(size) => {
                        let total = size as u64 * n;
                        std::io::copy(&mut (&mut self.0).take(total), &mut std::io::sink())
                            .map_err(|e| e.to_string())?;
                    }
                    None => {
                        for _ in 0..n {
                            self.skip_value(item)?;
                        }
                    }
                }
            }
            k => match fixed(k) {
                Some(size) => {
                    self.bytes(size)?;
                }
                None => return Err(format!("unknown GGUF value type {k}")),
            },
        }
        Ok(())
    }
}
