//! Makes a community-style variant of a GGUF model: requantizes it with the
//! llama.cpp that assay embeds (`llama_model_quantize`), e.g. Q4_K_M to
//! Q2_K. The demo (`scripts/demo.sh`) uses it to make a degraded variant of
//! the demo model to score beside the original.
//!
//! Usage: `requantize INPUT.gguf OUTPUT.gguf [TYPE]` with TYPE one of Q2_K
//! (default), Q3_K_M, Q4_K_M, Q5_K_M, Q6_K, Q8_0. Prints the parameter count
//! and bits per weight of both files, for the variants' manifests.

use std::ffi::CString;
use std::path::Path;
use std::process::ExitCode;

use llama_cpp_2::llama_backend::LlamaBackend;
use llama_cpp_2::model::params::LlamaModelParams;
use llama_cpp_2::model::LlamaModel;

fn file_type(name: &str) -> Option<llama_cpp_sys_2::llama_ftype> {
    Some(match name {
        "Q2_K" => llama_cpp_sys_2::LLAMA_FTYPE_MOSTLY_Q2_K,
        "Q3_K_M" => llama_cpp_sys_2::LLAMA_FTYPE_MOSTLY_Q3_K_M,
        "Q4_K_M" => llama_cpp_sys_2::LLAMA_FTYPE_MOSTLY_Q4_K_M,
        "Q5_K_M" => llama_cpp_sys_2::LLAMA_FTYPE_MOSTLY_Q5_K_M,
        "Q6_K" => llama_cpp_sys_2::LLAMA_FTYPE_MOSTLY_Q6_K,
        "Q8_0" => llama_cpp_sys_2::LLAMA_FTYPE_MOSTLY_Q8_0,
        _ => return None,
    })
}

/// Parameter count and bits per weight (file bits over parameters).
fn describe(backend: &LlamaBackend, path: &Path) -> Result<(u64, f64), String> {
    let model = LlamaModel::load_from_file(backend, path, &LlamaModelParams::default())
        .map_err(|e| format!("{}: {e}", path.display()))?;
    let parameters = model.n_params();
    let bytes = std::fs::metadata(path)
        .map_err(|e| format!("{}: {e}", path.display()))?
        .len();
    Ok((parameters, bytes as f64 * 8.0 / parameters as f64))
}

/// llama.cpp's log, dropped: it would bury the two lines this prints.
unsafe extern "C" fn quiet(
    _level: llama_cpp_sys_2::ggml_log_level,
    _text: *const std::ffi::c_char,
    _data: *mut std::ffi::c_void,
) {
}

fn run(args: &[String]) -> Result<(), String> {
    let [input, output, rest @ ..] = args else {
        return Err("usage: requantize INPUT.gguf OUTPUT.gguf [TYPE]".into());
    };
    let type_name = rest.first().map_or("Q2_K", String::as_str);
    let ftype = file_type(type_name).ok_or_else(|| {
        format!("unknown type {type_name}: use Q2_K, Q3_K_M, Q4_K_M, Q5_K_M, Q6_K or Q8_0")
    })?;
    if !Path::new(input).is_file() {
        return Err(format!("{input}: no such file"));
    }
    // SAFETY: `quiet` is a plain function that lives as long as the program.
    unsafe { llama_cpp_sys_2::llama_log_set(Some(quiet), std::ptr::null_mut()) };
    let backend = LlamaBackend::init().map_err(|e| e.to_string())?;
    let c_input = CString::new(input.as_str()).map_err(|e| e.to_string())?;
    let c_output = CString::new(output.as_str()).map_err(|e| e.to_string())?;
    // SAFETY: the default parameters come from llama.cpp itself; the paths
    // are NUL-terminated and outlive the call; the backend is initialized.
    let status = unsafe {
        let mut params = llama_cpp_sys_2::llama_model_quantize_default_params();
        params.ftype = ftype;
        params.allow_requantize = true;
        params.nthread = std::thread::available_parallelism().map_or(1, |n| n.get() as i32);
        llama_cpp_sys_2::llama_model_quantize(c_input.as_ptr(), c_output.as_ptr(), &params)
    };
    if status != 0 {
        return Err(format!(
            "llama.cpp could not quantize {input} (status {status})"
        ));
    }
    for path in [input, output] {
        let (parameters, bits) = describe(&backend, Path::new(path))?;
        println!("{path}: {parameters} parameters, {bits:.2} bits per weight");
    }
    Ok(())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}
