//! A GGUF file's metadata, read without loading the model: architecture,
//! file type, a hash of the vocabulary, and each tensor's name, shape and
//! type. Manifests are checked against it (a variant's lineage is read from
//! its files, not taken on trust).
//!
//! Only the header is read: key-value pairs and tensor infos, which precede
//! the tensor data (GGUF versions 2 and 3, little-endian). [`read_header`]
//! keeps every pair's encoded value and where each tensor's data lies, and
//! [`Writer`] writes a file as llama.cpp's reader wants it (tensor data
//! packed in order, each at a multiple of the alignment), so a file can be
//! built from the parts of others.

use std::collections::BTreeMap;
use std::io::{BufReader, BufWriter, Read, Seek, Write};
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

/// A reader past a GGUF file's preamble (magic and version checked), with
/// its tensor and key-value counts.
fn open_reader(
    file: std::fs::File,
) -> Result<(Reader<BufReader<std::fs::File>>, u64, u64), String> {
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
    Ok((r, tensor_count, kv_count))
}

/// Reads the metadata of the GGUF file at `path`; the error says what is
/// wrong with it.
pub fn read(path: &Path) -> Result<Metadata, String> {
    let file = std::fs::File::open(path).map_err(|e| e.to_string())?;
    let file_size = file.metadata().map_err(|e| e.to_string())?.len();
    let (mut r, tensor_count, kv_count) = open_reader(file)?;
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

/// A key-value pair as stored: its GGUF value type and its encoded value,
/// copied byte for byte into a file [`Writer`] writes.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub key: String,
    pub kind: u32,
    pub value: Vec<u8>,
}

/// GGUF value type codes used by the typed readers of [`Entry`].
const UINT32: u32 = 4;
const FLOAT32: u32 = 6;
const STRING: u32 = 8;
const ARRAY: u32 = 9;

impl Entry {
    /// A string value.
    pub fn string(key: &str, value: &str) -> Entry {
        let mut bytes = (value.len() as u64).to_le_bytes().to_vec();
        bytes.extend_from_slice(value.as_bytes());
        Entry {
            key: key.to_string(),
            kind: STRING,
            value: bytes,
        }
    }

    /// A 32-bit float value.
    pub fn f32(key: &str, value: f32) -> Entry {
        Entry {
            key: key.to_string(),
            kind: FLOAT32,
            value: value.to_le_bytes().to_vec(),
        }
    }

    /// The value as a string, if it is one.
    pub fn as_str(&self) -> Option<&str> {
        (self.kind == STRING)
            .then(|| std::str::from_utf8(self.value.get(8..)?).ok())
            .flatten()
    }

    /// The value as a 32-bit float, if it is one.
    pub fn as_f32(&self) -> Option<f32> {
        (self.kind == FLOAT32)
            .then(|| Some(f32::from_le_bytes(self.value.as_slice().try_into().ok()?)))
            .flatten()
    }

    /// The value as a 32-bit unsigned integer, if it is one.
    fn as_u32(&self) -> Option<u32> {
        (self.kind == UINT32)
            .then(|| Some(u32::from_le_bytes(self.value.as_slice().try_into().ok()?)))
            .flatten()
    }
}

/// A tensor's name, dimensions (as GGUF lists them: `ne[0]` first), GGML
/// type, and in a file read, where its data starts (from the file's start).
#[derive(Debug, Clone, PartialEq)]
pub struct TensorInfo {
    pub name: String,
    pub dims: Vec<u64>,
    pub kind: u32,
    pub offset: u64,
}

/// A GGUF file's header, each value as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct Header {
    pub entries: Vec<Entry>,
    pub tensors: Vec<TensorInfo>,
}

impl Header {
    /// The pair with this key.
    pub fn entry(&self, key: &str) -> Option<&Entry> {
        self.entries.iter().find(|e| e.key == key)
    }
}

/// Data is aligned to this unless `general.alignment` says otherwise.
const DEFAULT_ALIGNMENT: u64 = 32;

/// Reads the header of the GGUF file at `path`, keeping every key-value pair
/// as stored; tensor offsets are made absolute. The error says what is wrong.
pub fn read_header(path: &Path) -> Result<Header, String> {
    let file = std::fs::File::open(path).map_err(|e| e.to_string())?;
    let (mut r, tensor_count, kv_count) = open_reader(file)?;
    let mut entries = Vec::new();
    for _ in 0..kv_count {
        let key = r.string()?;
        let kind = r.u32()?;
        let mut value = Vec::new();
        r.copy_value(kind, &mut value)?;
        entries.push(Entry { key, kind, value });
    }
    let mut tensors = Vec::new();
    for _ in 0..tensor_count {
        let name = r.string()?;
        let n_dims = r.u32()?;
        if n_dims > 4 {
            return Err(format!("tensor {name}: {n_dims} dimensions"));
        }
        let dims = (0..n_dims)
            .map(|_| r.u64())
            .collect::<Result<Vec<_>, _>>()?;
        let kind = r.u32()?;
        let offset = r.u64()?;
        tensors.push(TensorInfo {
            name,
            dims,
            kind,
            offset,
        });
    }
    let mut header = Header { entries, tensors };
    let alignment = match header.entry("general.alignment") {
        None => DEFAULT_ALIGNMENT,
        Some(e) => match e.as_u32() {
            Some(a) if a.is_power_of_two() => u64::from(a),
            _ => return Err("general.alignment is not a power of two (u32)".into()),
        },
    };
    let end = r.0.stream_position().map_err(|e| e.to_string())?;
    let data = end.next_multiple_of(alignment);
    for t in &mut header.tensors {
        t.offset = data
            .checked_add(t.offset)
            .ok_or_else(|| format!("tensor {}: its offset is past any file", t.name))?;
    }
    Ok(header)
}

/// Writes a GGUF file (version 3, default alignment): the header first, then
/// each tensor's data through [`Writer::tensor`], in the order of the infos
/// given, whose byte sizes must be known up front.
pub struct Writer {
    out: BufWriter<std::fs::File>,
    /// Bytes each remaining tensor must have, next first.
    sizes: std::collections::VecDeque<u64>,
}

impl Writer {
    /// Creates `path` and writes its header; `sizes[i]` is the byte size of
    /// tensor `i`'s data. A `general.alignment` among `entries` is left out:
    /// the data is written at the default alignment.
    pub fn create(
        path: &Path,
        entries: &[Entry],
        tensors: &[TensorInfo],
        sizes: &[u64],
    ) -> std::io::Result<Writer> {
        let entries: Vec<&Entry> = entries
            .iter()
            .filter(|e| e.key != "general.alignment")
            .collect();
        let mut head = Vec::new();
        head.extend_from_slice(b"GGUF");
        head.extend_from_slice(&3u32.to_le_bytes());
        head.extend_from_slice(&(tensors.len() as u64).to_le_bytes());
        head.extend_from_slice(&(entries.len() as u64).to_le_bytes());
        let put_str = |head: &mut Vec<u8>, s: &str| {
            head.extend_from_slice(&(s.len() as u64).to_le_bytes());
            head.extend_from_slice(s.as_bytes());
        };
        for e in entries {
            put_str(&mut head, &e.key);
            head.extend_from_slice(&e.kind.to_le_bytes());
            head.extend_from_slice(&e.value);
        }
        let mut offset = 0u64;
        for (t, size) in tensors.iter().zip(sizes) {
            put_str(&mut head, &t.name);
            head.extend_from_slice(&(t.dims.len() as u32).to_le_bytes());
            for d in &t.dims {
                head.extend_from_slice(&d.to_le_bytes());
            }
            head.extend_from_slice(&t.kind.to_le_bytes());
            head.extend_from_slice(&offset.to_le_bytes());
            offset += size.next_multiple_of(DEFAULT_ALIGNMENT);
        }
        head.resize(
            (head.len() as u64).next_multiple_of(DEFAULT_ALIGNMENT) as usize,
            0,
        );
        let mut out = BufWriter::new(std::fs::File::create(path)?);
        out.write_all(&head)?;
        Ok(Writer {
            out,
            sizes: sizes.iter().copied().collect(),
        })
    }

    /// Writes the next tensor's data, padded to the alignment.
    pub fn tensor(&mut self, data: &[u8]) -> std::io::Result<()> {
        let expected = self.sizes.pop_front();
        if expected != Some(data.len() as u64) {
            return Err(std::io::Error::other(format!(
                "tensor data of {} bytes where the header says {expected:?}",
                data.len()
            )));
        }
        self.out.write_all(data)?;
        let padded = (data.len() as u64).next_multiple_of(DEFAULT_ALIGNMENT);
        self.out
            .write_all(&vec![0u8; (padded - data.len() as u64) as usize])
    }

    /// Flushes the file to disk once every tensor is written.
    pub fn finish(self) -> std::io::Result<()> {
        if !self.sizes.is_empty() {
            return Err(std::io::Error::other(format!(
                "{} tensors were not written",
                self.sizes.len()
            )));
        }
        let file = self.out.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()
    }
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
        match kind {
            STRING => {
                self.string()?;
            }
            ARRAY => {
                let item = self.u32()?;
                let n = self.u64()?;
                match fixed_size(item) {
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
            k => match fixed_size(k) {
                Some(size) => {
                    self.bytes(size)?;
                }
                None => return Err(format!("unknown GGUF value type {k}")),
            },
        }
        Ok(())
    }

    /// Reads a value of GGUF type `kind`, appending its encoding to `out`.
    fn copy_value(&mut self, kind: u32, out: &mut Vec<u8>) -> Result<(), String> {
        match kind {
            STRING => {
                let s = self.string()?;
                out.extend_from_slice(&(s.len() as u64).to_le_bytes());
                out.extend_from_slice(s.as_bytes());
            }
            ARRAY => {
                let item = self.u32()?;
                let n = self.u64()?;
                out.extend_from_slice(&item.to_le_bytes());
                out.extend_from_slice(&n.to_le_bytes());
                match fixed_size(item) {
                    Some(size) => {
                        let total = (size as u64)
                            .checked_mul(n)
                            .filter(|t| *t <= 1 << 30)
                            .ok_or_else(|| format!("an array of {n} values in the header"))?;
                        out.extend_from_slice(&self.bytes(total as usize)?);
                    }
                    None => {
                        for _ in 0..n {
                            self.copy_value(item, out)?;
                        }
                    }
                }
            }
            k => match fixed_size(k) {
                Some(size) => out.extend_from_slice(&self.bytes(size)?),
                None => return Err(format!("unknown GGUF value type {k}")),
            },
        }
        Ok(())
    }
}

/// The size of a fixed-size GGUF value type; None for strings and arrays.
fn fixed_size(kind: u32) -> Option<usize> {
    Some(match kind {
        0 | 1 | 7 => 1,
        2 | 3 => 2,
        4..=6 => 4,
        10..=12 => 8,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_written_file_reads_back_with_its_values_and_data() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.gguf");
        let entries = [
            Entry::string("general.architecture", "llama"),
            Entry::f32("adapter.lora.alpha", 0.5),
            // Left out: the writer aligns to the default.
            Entry {
                key: "general.alignment".into(),
                kind: UINT32,
                value: 64u32.to_le_bytes().to_vec(),
            },
        ];
        let tensor = |name: &str, dims: Vec<u64>| TensorInfo {
            name: name.into(),
            dims,
            kind: 0,
            offset: 0,
        };
        let tensors = [
            tensor("x.lora_a", vec![3, 1]),
            tensor("x.lora_b", vec![1, 2]),
        ];
        let mut w = Writer::create(&path, &entries, &tensors, &[12, 8]).unwrap();
        w.tensor(&[1u8; 12]).unwrap();
        assert!(
            w.tensor(&[2u8; 7]).is_err(),
            "a size the header does not say"
        );
        let mut w = Writer::create(&path, &entries, &tensors, &[12, 8]).unwrap();
        w.tensor(&[1u8; 12]).unwrap();
        w.tensor(&[2u8; 8]).unwrap();
        w.finish().unwrap();

        let header = read_header(&path).unwrap();
        assert_eq!(header.entries, entries[..2]);
        assert_eq!(
            header.entry("general.architecture").and_then(Entry::as_str),
            Some("llama")
        );
        assert_eq!(
            header.entry("adapter.lora.alpha").and_then(Entry::as_f32),
            Some(0.5)
        );
        let bytes = std::fs::read(&path).unwrap();
        let (a, b) = (&header.tensors[0], &header.tensors[1]);
        assert_eq!((a.offset % 32, b.offset - a.offset), (0, 32));
        assert_eq!(&bytes[a.offset as usize..][..12], &[1u8; 12]);
        assert_eq!(&bytes[b.offset as usize..][..8], &[2u8; 8]);
        // The summary reader agrees.
        let meta = read(&path).unwrap();
        assert_eq!(meta.tensors["x.lora_b"], (vec![1, 2], 0));
    }
}
