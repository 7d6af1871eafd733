//! `punie models parity`: does the GGUF tokenize exactly as the Hugging Face `tokenizer.json`?
//!
//! A conversion that gets the pre-tokenizer or the special tokens wrong produces a model that
//! loads and runs but sees different ids than it was trained on, which silently ruins a
//! fine-tune. This compares, text by text, the ids from the `tokenizers` crate (the reference
//! implementation of `tokenizer.json`) with the ids llama.cpp gets from the GGUF vocabulary,
//! and checks that every special token is a single, identical id in both.
//!
//! [`last_logits`] goes one step further for a converted model: the logits llama.cpp computes,
//! for `models/micro/run.sh` to compare with the model it was converted from.

use std::path::Path;

use anyhow::Context;

use llama_cpp_2::context::params::LlamaContextParams;
use llama_cpp_2::llama_batch::LlamaBatch;

use super::GgufTokenizer;

/// Texts compared when the user gives none: code, prose, chat markup, digits, unicode.
pub const SAMPLE_TEXTS: &[&str] = &[
    "<|im_start|>system\nYou are Punie, an AI coding assistant.<|im_end|>\n<|im_start|>user\nFind all classes<|im_end|>\n<|im_start|>assistant\n",
    "def add(a: int, b: int) -> int:\n    return a + b\n\n\nprint(add(12345, 67890))\n",
    "result = run_command(\"grep -rn 'class .*(Exception)' --include='*.py' .\")\nprint(result)",
    "  indented\ttabs\r\nand    spaces   \n\n\n",
    "naïve café — 日本語のテキスト 🦀 emoji",
    "I'll use the read_file tool.\n\n<tool_call><function=execute_code>\n<parameter=code>\nprint(read_file('README.md'))\n</parameter>\n</function></tool_call>",
];

#[derive(Debug)]
pub struct ParityReport {
    pub n_texts: usize,
    pub n_tokens: usize,
    pub mismatches: Vec<TextMismatch>,
    pub special_tokens: Vec<SpecialTokenCheck>,
}

impl ParityReport {
    pub fn is_ok(&self) -> bool {
        self.mismatches.is_empty() && self.special_tokens.iter().all(SpecialTokenCheck::is_ok)
    }
}

#[derive(Debug)]
pub struct TextMismatch {
    pub text_idx: usize,
    /// Index of the first token that differs.
    pub first_difference: usize,
    pub hf_ids: Vec<u32>,
    pub gguf_ids: Vec<i32>,
}

#[derive(Debug)]
pub struct SpecialTokenCheck {
    pub content: String,
    pub hf_ids: Vec<u32>,
    pub gguf_ids: Vec<i32>,
}

impl SpecialTokenCheck {
    pub fn is_ok(&self) -> bool {
        self.hf_ids.len() == 1
            && self.gguf_ids.len() == 1
            && i64::from(self.hf_ids[0]) == i64::from(self.gguf_ids[0])
    }
}

/// Compares the two tokenizers on `texts` and on every special token of `tokenizer.json`.
pub fn check(tokenizer_json: &Path, gguf: &Path, texts: &[String]) -> anyhow::Result<ParityReport> {
    let hf = tokenizers::Tokenizer::from_file(tokenizer_json)
        .map_err(|err| anyhow::anyhow!("{err}"))
        .with_context(|| format!("loading {}", tokenizer_json.display()))?;
    let gguf_tokenizer = GgufTokenizer::load(gguf)?;
    let encode_hf = |text: &str| -> anyhow::Result<Vec<u32>> {
        Ok(hf
            .encode(text, false)
            .map_err(|err| anyhow::anyhow!("{err}"))?
            .get_ids()
            .to_vec())
    };
    let mut res = ParityReport {
        n_texts: texts.len(),
        n_tokens: 0,
        mismatches: Vec::new(),
        special_tokens: Vec::new(),
    };
    for (text_idx, text) in texts.iter().enumerate() {
        let hf_ids = encode_hf(text)?;
        let gguf_ids = gguf_tokenizer.encode(text);
        res.n_tokens += hf_ids.len();
        let same = hf_ids.len() == gguf_ids.len()
            && hf_ids
                .iter()
                .zip(&gguf_ids)
                .all(|(a, b)| i64::from(*a) == i64::from(*b));
        if !same {
            let first_difference = hf_ids
                .iter()
                .zip(&gguf_ids)
                .take_while(|(a, b)| i64::from(**a) == i64::from(**b))
                .count();
            res.mismatches.push(TextMismatch {
                text_idx,
                first_difference,
                hf_ids,
                gguf_ids,
            });
        }
    }
    let mut specials: Vec<_> = hf
        .get_added_tokens_decoder()
        .into_iter()
        .filter(|(_, t)| t.special)
        .collect();
    specials.sort_by_key(|(id, _)| *id);
    for (_, token) in specials {
        res.special_tokens.push(SpecialTokenCheck {
            hf_ids: encode_hf(&token.content)?,
            gguf_ids: gguf_tokenizer.encode(&token.content),
            content: token.content,
        });
    }
    Ok(res)
}

/// Reads texts for the comparison: JSON lines with a `text` field (training rows), or, for any
/// other file, the whole file as one text.
pub fn read_texts(path: &Path) -> anyhow::Result<Vec<String>> {
    let content =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    if path.extension().is_some_and(|e| e == "jsonl") {
        content
            .lines()
            .filter(|l| !l.trim().is_empty())
            .enumerate()
            .map(|(line_idx, line)| {
                let row: serde_json::Value = serde_json::from_str(line).with_context(|| {
                    format!("{} line {}: not JSON", path.display(), line_idx + 1)
                })?;
                row["text"].as_str().map(str::to_owned).with_context(|| {
                    format!(
                        "{} line {}: no \"text\" field",
                        path.display(),
                        line_idx + 1
                    )
                })
            })
            .collect()
    } else {
        Ok(vec![content])
    }
}

/// The token ids of `prompt` (special tokens parsed) in `model`'s vocabulary, and the logits
/// llama.cpp computes at the prompt's last position. The engine never exposes logits, so this
/// drives llama.cpp itself, with its default context settings, on a context of its own.
pub fn last_logits(
    model: &super::LlamaModel,
    prompt: &str,
) -> anyhow::Result<(Vec<i32>, Vec<f32>)> {
    const N_CTX: u32 = 2048;
    let tokens = model.vocab().tokenize(prompt.as_bytes(), false, true);
    anyhow::ensure!(
        !tokens.is_empty() && tokens.len() <= N_CTX as usize,
        "the prompt is {} tokens; 1 to {N_CTX} fit",
        tokens.len()
    );
    let params = LlamaContextParams::default()
        .with_n_ctx(std::num::NonZeroU32::new(N_CTX))
        .with_n_batch(N_CTX)
        .with_n_ubatch(N_CTX);
    let mut context = model.new_context(super::init_backend(), params)?;
    let mut batch = LlamaBatch::new(N_CTX as usize, 1);
    for (i, token) in tokens.iter().enumerate() {
        batch.add(*token, i as i32, &[0], i + 1 == tokens.len())?;
    }
    context.decode(&mut batch)?;
    let logits = context.get_logits_ith(tokens.len() as i32 - 1).to_vec();
    Ok((tokens.iter().map(|t| t.0).collect(), logits))
}
