//! Where a job panicked, for its failure's reason (the dashboard shows it,
//! as Hangfire shows an exception's stack trace): a panic hook, installed
//! once by the first server started, records each panic's message,
//! location and backtrace on the panicking thread, then calls the hook
//! that was there before (which still prints as usual). The executor takes
//! the record right after it caught the panic, on the same thread.

use std::backtrace::Backtrace;
use std::cell::RefCell;
use std::sync::Once;

/// The most backtrace frames kept: the job's own frames come first, the
/// runtime's below them.
const MAX_FRAMES: usize = 30;

/// A panic's record.
pub(crate) struct PanicTrace {
    message: String,
    location: String,
    backtrace: String,
}

thread_local! {
    static LAST: RefCell<Option<PanicTrace>> = const { RefCell::new(None) };
}

/// Installs the hook, once per process.
pub(crate) fn install() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let message = super::executor::panic_message(info.payload()).to_owned();
            let location = info.location().map(ToString::to_string).unwrap_or_default();
            let backtrace = frames(&Backtrace::force_capture().to_string());
            LAST.with(|last| {
                *last.borrow_mut() = Some(PanicTrace {
                    message,
                    location,
                    backtrace,
                });
            });
            previous(info);
        }));
    });
}

/// Where the panic with `message` that this thread just caught happened:
/// `"at src/jobs.rs:42:9\n\nbacktrace:\n..."`; `None` when none was
/// recorded for it (a hook set after ours does not call it).
pub(crate) fn take(message: &str) -> Option<String> {
    let trace = LAST.with(|last| last.borrow_mut().take())?;
    (trace.message == message)
        .then(|| format!("at {}\n\nbacktrace:\n{}", trace.location, trace.backtrace))
}

/// The frames of a backtrace's text below the panic machinery (the hook,
/// `begin_panic`, `core::panicking`), at most [`MAX_FRAMES`] of them.
fn frames(backtrace: &str) -> String {
    let mut frames: Vec<Vec<&str>> = Vec::new();
    for line in backtrace.lines() {
        let is_frame = line
            .trim_start()
            .split_once(": ")
            .is_some_and(|(number, _)| number.chars().all(|c| c.is_ascii_digit()));
        match frames.last_mut() {
            Some(frame) if !is_frame => frame.push(line),
            _ => frames.push(vec![line]),
        }
    }
    let machinery = |frame: &Vec<&str>| {
        let head = frame[0];
        [
            "panic_trace::install",
            "rust_begin_unwind",
            "core::panicking",
            "std::panicking::begin_panic",
            "std::panicking::panic_with_hook",
            "std::panicking::rust_panic",
            "std::rt::begin_panic",
            "PanicHookInfo",
        ]
        .iter()
        .any(|name| head.contains(name))
    };
    // The panic machinery sits on top: skip to below its last frame.
    let first = frames
        .iter()
        .take(20)
        .rposition(machinery)
        .map_or(0, |last| last + 1);
    let kept: Vec<String> = frames
        .iter()
        .skip(first)
        .take(MAX_FRAMES)
        .map(|frame| frame.join("\n"))
        .collect();
    kept.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_caught_panic_is_traced_to_its_line() {
        install();
        let caught = std::panic::catch_unwind(|| panic!("traced here"));
        assert!(caught.is_err());
        let line = line!() - 2;
        let trace = take("traced here").expect("a trace");
        assert!(
            trace.starts_with(&format!("at {}:{line}:", file!())),
            "{trace}"
        );
        assert!(trace.contains("backtrace:\n"), "{trace}");
        let first = trace.split("backtrace:\n").nth(1).unwrap_or("");
        assert!(
            first
                .lines()
                .next()
                .is_some_and(|frame| frame.contains("a_caught_panic_is_traced_to_its_line")),
            "the panicking code's frame first: {trace}"
        );
        assert!(take("traced here").is_none(), "taken once");
    }

    #[test]
    fn another_panics_trace_is_not_taken() {
        install();
        let _ = std::panic::catch_unwind(|| panic!("one"));
        assert!(take("another").is_none());
    }
}
