//! `punie models quantize`: llama.cpp's own quantizer, through the raw `llama-cpp-sys-2` binding
//! (llama-cpp-2 0.1.160 has no safe wrapper), so converting the production model needs no second
//! llama.cpp build.

use std::ffi::CString;
use std::path::Path;

use anyhow::{Context, bail};

use crate::models::gguf;

/// Quantizes the GGUF at `input` to `output` with the type named `type_name` (e.g. `q5_k_m`).
/// The output is written to a temporary file and renamed into place only on success.
///
/// `allow_requantize` lets an already quantized input be quantized again (lossy twice over; the
/// production path quantizes from f16 and never needs it).
pub fn quantize(
    input: &Path,
    output: &Path,
    type_name: &str,
    threads: Option<i32>,
    allow_requantize: bool,
) -> anyhow::Result<()> {
    let Some(ftype) = gguf::file_type_by_name(type_name) else {
        let known: Vec<_> = gguf::file_type_names().map(str::to_lowercase).collect();
        bail!(
            "unknown quantization type `{type_name}`; known types: {}",
            known.join(", ")
        );
    };
    // Check the input ourselves first: llama.cpp aborts on some malformed files.
    gguf::read_header(input)?;
    let c_input = path_to_cstring(input)?;
    super::init_backend();
    // llama.cpp writes the temporary file by its path.
    crate::atomic_file::replace(output, |temp| {
        let c_temp = path_to_cstring(temp.path())?;
        // SAFETY: plain C calls on valid NUL-terminated paths and a params struct initialised
        // by llama.cpp itself; nothing is retained after the call returns.
        let status = unsafe {
            let mut params = llama_cpp_sys_2::llama_model_quantize_default_params();
            params.ftype = ftype as llama_cpp_sys_2::llama_ftype;
            params.nthread = threads.unwrap_or(0);
            params.allow_requantize = allow_requantize;
            llama_cpp_sys_2::llama_model_quantize(c_input.as_ptr(), c_temp.as_ptr(), &params)
        };
        if status != 0 {
            bail!(
                "llama.cpp could not quantize {} (status {status}); see the log above",
                input.display()
            );
        }
        Ok(())
    })
    .with_context(|| format!("writing {}", output.display()))
}

fn path_to_cstring(path: &Path) -> anyhow::Result<CString> {
    let text = path
        .to_str()
        .with_context(|| format!("{} is not valid UTF-8", path.display()))?;
    CString::new(text).with_context(|| format!("{} contains a NUL byte", path.display()))
}
