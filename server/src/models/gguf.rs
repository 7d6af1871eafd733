//! Reads a GGUF file's header (metadata and tensor table) without llama.cpp.
//!
//! Two jobs: `punie models check` reports what a file is, and the llama engine checks a file
//! here before handing it to llama.cpp, so a truncated or foreign file becomes a clear error
//! instead of an abort inside C++. Only the header is read; tensor data is checked by size.
//!
//! The path is a setting's (the user's, `PUNIE_ENGINE`, the command line): what is there may
//! be a FIFO, a device or a file of any size, so it is opened and judged as
//! [`crate::plain_file`] does (without blocking, a regular file only) and at most
//! [`MAX_HEADER_BYTES`] of it are read, whatever the counts and lengths in the header say.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufReader, Read, Take};
use std::path::{Path, PathBuf};

use crate::plain_file;

const MAGIC: &[u8; 4] = b"GGUF";
/// The most of a file read as its header. The counts and lengths below each bound one item;
/// together they would allow petabytes (65536 arrays of 16M strings of 64 MiB), so the whole
/// header has its own bound. The largest headers are vocabularies: about 10 MB for 256k tokens
/// with their merges, types and scores.
pub const MAX_HEADER_BYTES: u64 = 64 << 20;
/// Refuse absurd counts and lengths before allocating: a corrupt header must not exhaust memory.
const MAX_STRING_LEN: u64 = 64 << 20;
const MAX_ARRAY_LEN: u64 = 16 << 20;
const MAX_TENSORS: u64 = 1 << 20;
const MAX_KV: u64 = 1 << 16;
/// The arrays whose items are kept. A model file may come from anywhere: an array of 16M bytes
/// under any other key would otherwise take 128 MB as integers, eight times its size on disk.
const KEPT_ARRAYS: [&str; 3] = [
    "tokenizer.ggml.tokens",
    "tokenizer.ggml.token_type",
    "tokenizer.ggml.merges",
];
/// Tensors reserved for before they are read: the count is the file's word.
const TENSORS_RESERVED: u64 = 4096;

#[derive(Debug, thiserror::Error)]
pub enum GgufError {
    #[error("{path}: no such file")]
    Missing { path: String },
    /// A directory, a FIFO, a device, a file under `/proc`: what [`plain_file::regular`] refuses.
    #[error("{path}: {refusal}; a model is a GGUF file")]
    NotAFile { path: String, refusal: String },
    #[error("{path}: cannot read: {reason}")]
    Io { path: String, reason: String },
    #[error("{path}: not a GGUF file (it starts with {found:?}, a GGUF file starts with \"GGUF\")")]
    NotGguf { path: String, found: String },
    #[error("{path}: unsupported GGUF version {version} (supported: 2 and 3)")]
    Version { path: String, version: u32 },
    #[error("{path}: corrupt or truncated GGUF header: {reason}")]
    Corrupt { path: String, reason: String },
    #[error("{path}: truncated: the tensor data needs {needed} bytes but the file has {actual}")]
    Truncated {
        path: String,
        needed: u64,
        actual: u64,
    },
}

/// A metadata value. The arrays Punie reads ([`KEPT_ARRAYS`]: the vocabulary, its token types
/// and merges) keep their items; every other array keeps only its length, which is all we report.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Uint(u64),
    Int(i64),
    Float(f64),
    Bool(bool),
    Str(String),
    Strings(Vec<String>),
    Ints(Vec<i64>),
    Array { len: u64 },
}

#[derive(Debug, Clone)]
pub struct TensorInfo {
    pub name: String,
    pub n_elements: u64,
    pub ggml_type: u32,
    pub offset: u64,
}

/// The header of a GGUF file.
#[derive(Debug, Clone)]
pub struct GgufHeader {
    pub version: u32,
    pub metadata: BTreeMap<String, Value>,
    pub tensors: Vec<TensorInfo>,
    pub file_size: u64,
}

impl GgufHeader {
    pub fn get_str(&self, key: &str) -> Option<&str> {
        match self.metadata.get(key) {
            Some(Value::Str(s)) => Some(s),
            _ => None,
        }
    }

    pub fn get_uint(&self, key: &str) -> Option<u64> {
        match self.metadata.get(key) {
            Some(Value::Uint(n)) => Some(*n),
            Some(Value::Int(n)) => u64::try_from(*n).ok(),
            _ => None,
        }
    }

    pub fn architecture(&self) -> Option<&str> {
        self.get_str("general.architecture")
    }

    pub fn context_length(&self) -> Option<u64> {
        self.get_uint(&format!("{}.context_length", self.architecture()?))
    }

    pub fn chat_template(&self) -> Option<&str> {
        self.get_str("tokenizer.chat_template")
    }

    pub fn vocabulary(&self) -> &[String] {
        match self.metadata.get("tokenizer.ggml.tokens") {
            Some(Value::Strings(tokens)) => tokens,
            _ => &[],
        }
    }

    /// llama.cpp's token types (`tokenizer.ggml.token_type`: 1 normal, 3 control, 4 user-defined, …).
    pub fn token_types(&self) -> &[i64] {
        match self.metadata.get("tokenizer.ggml.token_type") {
            Some(Value::Ints(types)) => types,
            _ => &[],
        }
    }

    pub fn n_parameters(&self) -> u64 {
        self.tensors.iter().map(|t| t.n_elements).sum()
    }

    /// llama.cpp's name for `general.file_type` (e.g. `Q5_K_M`).
    pub fn quantization(&self) -> String {
        match self.get_uint("general.file_type") {
            Some(file_type) => file_type_name(file_type)
                .map_or_else(|| format!("file type {file_type}"), str::to_owned),
            None => "unknown".to_owned(),
        }
    }
}

/// Reads and validates the header of the GGUF file at `path`.
pub fn read_header(path: &Path) -> Result<GgufHeader, GgufError> {
    open(path).map(|(_, header)| header)
}

/// Opens the GGUF file at `path` and reads and validates its header; the file stays open, so
/// that what is loaded next can be the file that was checked rather than whatever the path
/// names by then.
pub fn open(path: &Path) -> Result<(File, GgufHeader), GgufError> {
    let path_str = path.display().to_string();
    let cannot_read = |err: std::io::Error| match plain_file::refusal(&err) {
        Some(refusal) => GgufError::NotAFile {
            path: path_str.clone(),
            refusal: refusal.to_string(),
        },
        None if err.kind() == std::io::ErrorKind::NotFound => GgufError::Missing {
            path: path_str.clone(),
        },
        None => GgufError::Io {
            path: path_str.clone(),
            reason: err.to_string(),
        },
    };
    let file = plain_file::open_named(path).map_err(cannot_read)?;
    let file_size = plain_file::regular(&file).map_err(cannot_read)?.len();
    if file_size == 0 {
        return Err(GgufError::NotGguf {
            path: path_str,
            found: String::new(),
        });
    }
    let mut reader = HeaderReader {
        inner: BufReader::new((&file).take(MAX_HEADER_BYTES)),
        position: 0,
    };
    let corrupt = |reason: String| GgufError::Corrupt {
        path: path_str.clone(),
        reason,
    };

    let mut magic = [0u8; 4];
    if reader.inner.read_exact(&mut magic).is_err() || &magic != MAGIC {
        return Err(GgufError::NotGguf {
            path: path_str.clone(),
            found: String::from_utf8_lossy(&magic[..(file_size.min(4) as usize)]).into_owned(),
        });
    }
    reader.position = 4;
    let version = reader.u32().map_err(corrupt)?;
    if !(2..=3).contains(&version) {
        return Err(GgufError::Version {
            path: path_str,
            version,
        });
    }
    let n_tensors = reader.u64().map_err(corrupt)?;
    let n_kv = reader.u64().map_err(corrupt)?;
    if n_tensors > MAX_TENSORS || n_kv > MAX_KV {
        return Err(corrupt(format!(
            "{n_tensors} tensors and {n_kv} metadata entries is not plausible"
        )));
    }
    let mut metadata = BTreeMap::new();
    for _ in 0..n_kv {
        let key = reader.string().map_err(corrupt)?;
        let value_type = reader.u32().map_err(corrupt)?;
        let value = reader
            .value(value_type, KEPT_ARRAYS.contains(&key.as_str()))
            .map_err(|reason| corrupt(format!("key {key}: {reason}")))?;
        metadata.insert(key, value);
    }
    let mut tensors = Vec::with_capacity(n_tensors.min(TENSORS_RESERVED) as usize);
    for _ in 0..n_tensors {
        let name = reader.string().map_err(corrupt)?;
        let n_dims = reader.u32().map_err(corrupt)?;
        if n_dims > 8 {
            return Err(corrupt(format!("tensor {name} has {n_dims} dimensions")));
        }
        let mut n_elements: u64 = 1;
        for _ in 0..n_dims {
            let dim = reader.u64().map_err(corrupt)?;
            n_elements = n_elements
                .checked_mul(dim)
                .ok_or_else(|| corrupt(format!("tensor {name} is too large")))?;
        }
        let ggml_type = reader.u32().map_err(corrupt)?;
        let offset = reader.u64().map_err(corrupt)?;
        tensors.push(TensorInfo {
            name,
            n_elements,
            ggml_type,
            offset,
        });
    }
    let header = GgufHeader {
        version,
        metadata,
        tensors,
        file_size,
    };
    check_data_size(&header, reader.position).map_err(|(needed, actual)| GgufError::Truncated {
        path: path.display().to_string(),
        needed,
        actual,
    })?;
    Ok((file, header))
}

/// The tensor data starts after the header, aligned; every tensor must fit in the file.
fn check_data_size(header: &GgufHeader, header_end: u64) -> Result<(), (u64, u64)> {
    let alignment = header
        .get_uint("general.alignment")
        .filter(|a| *a > 0)
        .unwrap_or(32);
    let data_start = header_end.div_ceil(alignment) * alignment;
    let needed = header
        .tensors
        .iter()
        .filter_map(|tensor| {
            let (block, bytes) = ggml_type_size(tensor.ggml_type)?;
            Some(
                tensor
                    .offset
                    .saturating_add(tensor.n_elements.div_ceil(block).saturating_mul(bytes)),
            )
        })
        .max()
        .map_or(header_end, |end| data_start.saturating_add(end));
    if needed > header.file_size {
        Err((needed, header.file_size))
    } else {
        Ok(())
    }
}

/// Reads at most [`MAX_HEADER_BYTES`] of the file, counting them.
struct HeaderReader<R> {
    inner: BufReader<Take<R>>,
    position: u64,
}

impl<R: Read> HeaderReader<R> {
    /// Why a read of `what` came short at byte `at`: the file ended, or the bound was reached.
    fn ended(&self, what: &str, at: u64) -> String {
        if self.inner.get_ref().limit() == 0 && self.inner.buffer().is_empty() {
            format!("the header goes on past {MAX_HEADER_BYTES} bytes, more than a model's")
        } else {
            format!("the file ends inside {what} (at byte {at})")
        }
    }

    fn bytes<const N: usize>(&mut self) -> Result<[u8; N], String> {
        let mut buf = [0u8; N];
        self.inner
            .read_exact(&mut buf)
            .map_err(|_| self.ended("the header", self.position))?;
        self.position += N as u64;
        Ok(buf)
    }

    fn u32(&mut self) -> Result<u32, String> {
        self.bytes::<4>().map(u32::from_le_bytes)
    }

    fn u64(&mut self) -> Result<u64, String> {
        self.bytes::<8>().map(u64::from_le_bytes)
    }

    fn string_len(&mut self) -> Result<u64, String> {
        let len = self.u64()?;
        if len > MAX_STRING_LEN {
            return Err(format!("a string of {len} bytes at byte {}", self.position));
        }
        Ok(len)
    }

    fn string(&mut self) -> Result<String, String> {
        let len = self.string_len()?;
        // Grown as it is read, not allocated at the length the header claims.
        let mut buf = Vec::new();
        (&mut self.inner)
            .take(len)
            .read_to_end(&mut buf)
            .map_err(|err| err.to_string())?;
        if buf.len() as u64 != len {
            return Err(self.ended("a string", self.position));
        }
        self.position += len;
        Ok(String::from_utf8_lossy(&buf).into_owned())
    }

    fn skip(&mut self, n_bytes: u64) -> Result<(), String> {
        let copied = std::io::copy(&mut (&mut self.inner).take(n_bytes), &mut std::io::sink())
            .map_err(|err| err.to_string())?;
        if copied != n_bytes {
            return Err(self.ended("an array", self.position + copied));
        }
        self.position += n_bytes;
        Ok(())
    }

    /// One value of `value_type`; an array's items only when `keep_items`.
    fn value(&mut self, value_type: u32, keep_items: bool) -> Result<Value, String> {
        Ok(match value_type {
            0 => Value::Uint(self.bytes::<1>()?[0].into()),
            1 => Value::Int(i8::from_le_bytes(self.bytes::<1>()?).into()),
            2 => Value::Uint(u16::from_le_bytes(self.bytes::<2>()?).into()),
            3 => Value::Int(i16::from_le_bytes(self.bytes::<2>()?).into()),
            4 => Value::Uint(self.u32()?.into()),
            5 => Value::Int(i32::from_le_bytes(self.bytes::<4>()?).into()),
            6 => Value::Float(f32::from_le_bytes(self.bytes::<4>()?).into()),
            7 => Value::Bool(self.bytes::<1>()?[0] != 0),
            8 => Value::Str(self.string()?),
            9 => {
                let item_type = self.u32()?;
                let len = self.u64()?;
                if len > MAX_ARRAY_LEN {
                    return Err(format!("an array of {len} items"));
                }
                match item_type {
                    8 if !keep_items => {
                        for _ in 0..len {
                            let n_bytes = self.string_len()?;
                            self.skip(n_bytes)?;
                        }
                        Value::Array { len }
                    }
                    8 => Value::Strings((0..len).map(|_| self.string()).collect::<Result<_, _>>()?),
                    0..=5 | 10 | 11 if keep_items => Value::Ints(
                        (0..len)
                            .map(|_| match self.value(item_type, false)? {
                                Value::Uint(n) => Ok(n as i64),
                                Value::Int(n) => Ok(n),
                                _ => Err("unreachable integer type".to_owned()),
                            })
                            .collect::<Result<_, _>>()?,
                    ),
                    _ => {
                        let item_size = scalar_size(item_type)
                            .ok_or_else(|| format!("array of unknown item type {item_type}"))?;
                        self.skip(len * item_size)?;
                        Value::Array { len }
                    }
                }
            }
            10 => Value::Uint(self.u64()?),
            11 => Value::Int(i64::from_le_bytes(self.bytes::<8>()?)),
            12 => Value::Float(f64::from_le_bytes(self.bytes::<8>()?)),
            other => return Err(format!("unknown value type {other}")),
        })
    }
}

fn scalar_size(value_type: u32) -> Option<u64> {
    match value_type {
        0 | 1 | 7 => Some(1),
        2 | 3 => Some(2),
        4..=6 => Some(4),
        10..=12 => Some(8),
        _ => None,
    }
}

/// (elements per block, bytes per block) of ggml tensor types, from ggml's type traits.
/// Unknown types are skipped by the size check rather than guessed.
fn ggml_type_size(ggml_type: u32) -> Option<(u64, u64)> {
    Some(match ggml_type {
        0 => (1, 4),      // F32
        1 => (1, 2),      // F16
        2 => (32, 18),    // Q4_0
        3 => (32, 20),    // Q4_1
        6 => (32, 22),    // Q5_0
        7 => (32, 24),    // Q5_1
        8 => (32, 34),    // Q8_0
        9 => (32, 36),    // Q8_1
        10 => (256, 84),  // Q2_K
        11 => (256, 110), // Q3_K
        12 => (256, 144), // Q4_K
        13 => (256, 176), // Q5_K
        14 => (256, 210), // Q6_K
        15 => (256, 292), // Q8_K
        20 => (32, 18),   // IQ4_NL
        23 => (256, 136), // IQ4_XS
        24 => (1, 1),     // I8
        25 => (1, 2),     // I16
        26 => (1, 4),     // I32
        27 => (1, 8),     // I64
        28 => (1, 8),     // F64
        30 => (1, 2),     // BF16
        _ => return None,
    })
}

/// llama.cpp's `llama_ftype` values and names (`general.file_type`; `llama-quantize` types).
const FILE_TYPES: &[(u64, &str)] = &[
    (0, "F32"),
    (1, "F16"),
    (2, "Q4_0"),
    (3, "Q4_1"),
    (7, "Q8_0"),
    (8, "Q5_0"),
    (9, "Q5_1"),
    (10, "Q2_K"),
    (11, "Q3_K_S"),
    (12, "Q3_K_M"),
    (13, "Q3_K_L"),
    (14, "Q4_K_S"),
    (15, "Q4_K_M"),
    (16, "Q5_K_S"),
    (17, "Q5_K_M"),
    (18, "Q6_K"),
    (25, "IQ4_NL"),
    (30, "IQ4_XS"),
    (32, "BF16"),
];

fn file_type_name(file_type: u64) -> Option<&'static str> {
    FILE_TYPES
        .iter()
        .find(|(value, _)| *value == file_type)
        .map(|(_, name)| *name)
}

/// The `llama_ftype` for a quantization name such as `q5_k_m` (case-insensitive).
pub fn file_type_by_name(name: &str) -> Option<u64> {
    FILE_TYPES
        .iter()
        .find(|(_, known)| known.eq_ignore_ascii_case(name))
        .map(|(value, _)| *value)
}

/// Every quantization name, for error messages.
pub fn file_type_names() -> impl Iterator<Item = &'static str> {
    FILE_TYPES.iter().map(|(_, name)| *name)
}

/// The other files llama.cpp opens by name for the model at `path`: for a first part named
/// `PREFIX-00001-of-NNNNN.gguf` (`llama_split_path`'s form, the only one its loader takes for a
/// model split in `split.count` parts, whatever else the header says), `PREFIX-00002-of-NNNNN.gguf`
/// to the last; none for another name.
pub fn other_parts(path: &Path) -> Vec<PathBuf> {
    let Some(name) = path.file_name().and_then(|name| name.to_str()) else {
        return Vec::new();
    };
    let Some((prefix, count)) = name
        .strip_suffix(".gguf")
        .and_then(|stem| stem.rsplit_once("-of-"))
        .and_then(|(head, count)| Some((head.strip_suffix("-00001")?, count)))
    else {
        return Vec::new();
    };
    // `%05d` of a `u16`: five digits, the count parsed as llama.cpp prints it back.
    let Some(count) = count
        .parse::<u16>()
        .ok()
        .filter(|parsed| format!("{parsed:05}") == count)
    else {
        return Vec::new();
    };
    (2..=count)
        .map(|part| path.with_file_name(format!("{prefix}-{part:05}-of-{count:05}.gguf")))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    /// A minimal valid GGUF: one u32 and one string of metadata, one F32 tensor of 4 elements.
    fn tiny_gguf(truncate_data: bool) -> Vec<u8> {
        let mut out = Vec::new();
        let string = |out: &mut Vec<u8>, s: &str| {
            out.extend_from_slice(&(s.len() as u64).to_le_bytes());
            out.extend_from_slice(s.as_bytes());
        };
        out.extend_from_slice(b"GGUF");
        out.extend_from_slice(&3u32.to_le_bytes());
        out.extend_from_slice(&1u64.to_le_bytes()); // tensors
        out.extend_from_slice(&2u64.to_le_bytes()); // kv
        string(&mut out, "general.architecture");
        out.extend_from_slice(&8u32.to_le_bytes());
        string(&mut out, "llama");
        string(&mut out, "llama.context_length");
        out.extend_from_slice(&4u32.to_le_bytes());
        out.extend_from_slice(&2048u32.to_le_bytes());
        string(&mut out, "w");
        out.extend_from_slice(&1u32.to_le_bytes());
        out.extend_from_slice(&4u64.to_le_bytes());
        out.extend_from_slice(&0u32.to_le_bytes()); // F32
        out.extend_from_slice(&0u64.to_le_bytes());
        while out.len() % 32 != 0 {
            out.push(0);
        }
        let data_len = if truncate_data { 8 } else { 16 };
        out.extend(std::iter::repeat_n(0u8, data_len));
        out
    }

    fn write_temp(bytes: &[u8]) -> tempfile::NamedTempFile {
        let mut file = tempfile::NamedTempFile::new().unwrap();
        file.write_all(bytes).unwrap();
        file
    }

    #[test]
    fn reads_a_valid_header() {
        let file = write_temp(&tiny_gguf(false));
        let header = read_header(file.path()).unwrap();
        assert_eq!(header.architecture(), Some("llama"));
        assert_eq!(header.context_length(), Some(2048));
        assert_eq!(header.n_parameters(), 4);
        assert_eq!(header.quantization(), "unknown");
    }

    #[test]
    fn truncated_data_is_reported() {
        let file = write_temp(&tiny_gguf(true));
        let err = read_header(file.path()).unwrap_err().to_string();
        assert!(err.contains("truncated"), "{err}");
    }

    #[test]
    fn every_truncation_of_the_header_is_an_error() {
        let bytes = tiny_gguf(false);
        for len in 0..bytes.len() - 16 {
            let file = write_temp(&bytes[..len]);
            assert!(read_header(file.path()).is_err(), "length {len} accepted");
        }
    }

    #[test]
    fn foreign_and_missing_files() {
        let file = write_temp(b"PK\x03\x04 not a model");
        let err = read_header(file.path()).unwrap_err().to_string();
        assert!(err.contains("not a GGUF file"), "{err}");
        let err = read_header(Path::new("/nonexistent/m.gguf"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("no such file"), "{err}");
    }

    /// Only the arrays Punie reads keep their items; the others are skipped, counted.
    #[test]
    fn only_the_tokenizers_arrays_keep_their_items() {
        let mut bytes = b"GGUF".to_vec();
        bytes.extend_from_slice(&3u32.to_le_bytes());
        bytes.extend_from_slice(&0u64.to_le_bytes());
        bytes.extend_from_slice(&4u64.to_le_bytes());
        let mut array = |key: &str, item_type: u32, items: &[&[u8]]| {
            bytes.extend_from_slice(&(key.len() as u64).to_le_bytes());
            bytes.extend_from_slice(key.as_bytes());
            bytes.extend_from_slice(&9u32.to_le_bytes());
            bytes.extend_from_slice(&item_type.to_le_bytes());
            bytes.extend_from_slice(&(items.len() as u64).to_le_bytes());
            for item in items {
                if item_type == 8 {
                    bytes.extend_from_slice(&(item.len() as u64).to_le_bytes());
                }
                bytes.extend_from_slice(item);
            }
        };
        array("tokenizer.ggml.tokens", 8, &[b"a", b"<|im_end|>"]);
        array(
            "tokenizer.ggml.token_type",
            5,
            &[&1i32.to_le_bytes(), &3i32.to_le_bytes()],
        );
        array("padding.bytes", 0, &[&[7u8][..]; 1000]);
        array("padding.strings", 8, &[&b"xyz"[..]; 100]);
        let header = read_header(write_temp(&bytes).path()).unwrap();
        assert_eq!(header.vocabulary(), ["a", "<|im_end|>"]);
        assert_eq!(header.token_types(), [1, 3]);
        assert_eq!(header.metadata["padding.bytes"], Value::Array { len: 1000 });
        assert_eq!(
            header.metadata["padding.strings"],
            Value::Array { len: 100 }
        );
    }

    /// What is at a model's path may be anything: a FIFO no writer opens would block a plain
    /// `open` for ever, `/dev/zero` never ends; both are refused at once.
    #[test]
    fn a_fifo_a_device_and_a_directory_are_refused_without_reading() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("model.gguf");
        let name = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: mkfifo(3) with a NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(name.as_ptr(), 0o600) }, 0);
        for (path, expected) in [
            (fifo.as_path(), "not a regular file"),
            (Path::new("/dev/zero"), "not a regular file"),
            (dir.path(), "is a directory"),
        ] {
            let err = read_header(path).unwrap_err();
            assert!(matches!(err, GgufError::NotAFile { .. }), "{err}");
            assert!(err.to_string().contains(expected), "{err}");
        }
    }

    /// Each count and length is within its bound, together they are not: a string array of
    /// 64 MiB strings in a sparse file. The reader stops at [`MAX_HEADER_BYTES`].
    #[test]
    fn a_header_longer_than_the_bound_is_refused_there() {
        let strings = 4u64;
        let mut bytes = b"GGUF".to_vec();
        bytes.extend_from_slice(&3u32.to_le_bytes());
        bytes.extend_from_slice(&0u64.to_le_bytes()); // tensors
        bytes.extend_from_slice(&1u64.to_le_bytes()); // kv
        bytes.extend_from_slice(&7u64.to_le_bytes());
        bytes.extend_from_slice(b"padding");
        bytes.extend_from_slice(&9u32.to_le_bytes());
        bytes.extend_from_slice(&8u32.to_le_bytes());
        bytes.extend_from_slice(&strings.to_le_bytes());
        let file = write_temp(&bytes);
        let mut position = bytes.len() as u64;
        for _ in 0..strings {
            std::fs::OpenOptions::new()
                .write(true)
                .open(file.path())
                .and_then(|mut out| {
                    use std::io::{Seek, SeekFrom};
                    out.seek(SeekFrom::Start(position))?;
                    out.write_all(&MAX_STRING_LEN.to_le_bytes())
                })
                .unwrap();
            position += 8 + MAX_STRING_LEN;
        }
        // Sparse: the strings' bytes are holes, read as zeros.
        file.as_file().set_len(position).unwrap();
        let err = read_header(file.path()).unwrap_err().to_string();
        assert!(
            err.contains(&format!("goes on past {MAX_HEADER_BYTES} bytes")),
            "{err}"
        );
    }

    #[test]
    fn absurd_lengths_do_not_allocate() {
        let mut bytes = b"GGUF".to_vec();
        bytes.extend_from_slice(&3u32.to_le_bytes());
        bytes.extend_from_slice(&0u64.to_le_bytes());
        bytes.extend_from_slice(&1u64.to_le_bytes());
        bytes.extend_from_slice(&u64::MAX.to_le_bytes()); // key length
        let file = write_temp(&bytes);
        let err = read_header(file.path()).unwrap_err().to_string();
        assert!(err.contains("corrupt"), "{err}");
    }

    #[test]
    fn the_other_parts_of_a_split_model_are_named_as_llama_cpp_names_them() {
        let parts = |name: &str| other_parts(Path::new(name));
        assert_eq!(
            parts("/m/qwen-q4-00001-of-00003.gguf"),
            [
                PathBuf::from("/m/qwen-q4-00002-of-00003.gguf"),
                PathBuf::from("/m/qwen-q4-00003-of-00003.gguf"),
            ]
        );
        assert!(parts("/m/qwen-q4-00001-of-00001.gguf").is_empty());
        // llama.cpp refuses to load these as split models: no part is opened.
        assert!(parts("/m/qwen-q4.gguf").is_empty());
        assert!(parts("/m/qwen-q4-00002-of-00003.gguf").is_empty());
        assert!(parts("/m/qwen-q4-00001-of-3.gguf").is_empty());
        assert!(parts("/m/qwen-q4-00001-of-99999.gguf").is_empty());
    }
}
