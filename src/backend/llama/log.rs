//! llama.cpp's log, kept off the terminal and mined for error messages.
//!
//! llama.cpp prints pages of loader chatter to stderr, which would bury
//! assay's own output, so its log goes to a callback that prints only when
//! `ASSAY_LLAMA_LOG=1`. The callback also keeps the last few error and
//! warning lines of the calling thread: when loading a model fails, llama.cpp
//! only returns a null pointer, and those lines are the reason the user
//! needs to see.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::ffi::{c_char, c_void, CStr};
use std::sync::OnceLock;

use llama_cpp_sys_2::{
    ggml_log_level, GGML_LOG_LEVEL_CONT, GGML_LOG_LEVEL_ERROR, GGML_LOG_LEVEL_WARN,
};

const KEPT: usize = 8;

thread_local! {
    static RECENT: RefCell<Recent> = const {
        RefCell::new(Recent { lines: VecDeque::new(), continuing: false })
    };
}

struct Recent {
    lines: VecDeque<String>,
    /// Whether a `CONT` message continues a kept line.
    continuing: bool,
}

fn verbose() -> bool {
    static VERBOSE: OnceLock<bool> = OnceLock::new();
    *VERBOSE
        .get_or_init(|| std::env::var("ASSAY_LLAMA_LOG").is_ok_and(|v| !v.is_empty() && v != "0"))
}

/// Routes llama.cpp's and ggml's log through [`on_log`]. Call before
/// anything else in llama.cpp, so even backend initialisation is quiet.
pub(crate) fn install() {
    // SAFETY: the callback is a plain function that lives for the whole
    // program and ignores the user-data pointer.
    unsafe { llama_cpp_sys_2::llama_log_set(Some(on_log), std::ptr::null_mut()) };
}

/// Forgets the lines kept so far on this thread.
pub(crate) fn clear() {
    RECENT.with(|r| {
        if let Ok(mut r) = r.try_borrow_mut() {
            r.lines.clear();
            r.continuing = false;
        }
    });
}

/// The error and warning lines llama.cpp logged on this thread since
/// [`clear`], oldest first.
pub(crate) fn recent_problems() -> Vec<String> {
    RECENT.with(|r| {
        r.try_borrow()
            .map(|r| r.lines.iter().map(|l| l.trim().to_string()).collect())
            .unwrap_or_default()
    })
}

unsafe extern "C" fn on_log(level: ggml_log_level, text: *const c_char, _: *mut c_void) {
    if text.is_null() {
        return;
    }
    // SAFETY: llama.cpp passes a NUL-terminated string valid for this call.
    let text = unsafe { CStr::from_ptr(text) }.to_string_lossy();
    if verbose() {
        eprint!("{text}");
    }
    // Never panic here: unwinding out of an `extern "C"` function aborts.
    let _ = RECENT.try_with(|r| {
        let Ok(mut r) = r.try_borrow_mut() else {
            return;
        };
        if level == GGML_LOG_LEVEL_CONT {
            if r.continuing {
                if let Some(last) = r.lines.back_mut() {
                    last.push_str(&text);
                }
            }
        } else if level == GGML_LOG_LEVEL_ERROR || level == GGML_LOG_LEVEL_WARN {
            if r.lines.len() == KEPT {
                r.lines.pop_front();
            }
            r.lines.push_back(text.into_owned());
            r.continuing = true;
        } else {
            r.continuing = false;
        }
    });
}
