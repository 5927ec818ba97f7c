//! Checks across the parts of the model, once it is parsed.

use syn::Ident;

use super::ast::{Job, JobFn};
use super::attr::unraw;
use super::ctxt::Ctxt;

/// The parameters the generated helpers take before the job's arguments
/// (`enqueue_with(client, options, ...)`, `schedule_in(client, delay, ...)`,
/// `schedule_at(client, at, ...)`); a job argument may not use these names,
/// nor two arguments one name.
pub const HELPER_PARAMS: &[&str] = &[
    "client",
    "options",
    "delay",
    "at",
    "recurring_id",
    "cron_expression",
    "parent_job",
    "parent_batch",
    "into_batch",
    "tx",
];

/// Checks the parsed job as a whole: the arguments' names, and the
/// arguments that `unique(by = [...])` and `concurrency(by = [...])` name.
pub fn check(cx: &mut Ctxt, job: &Job) {
    let args = &job.func.args;
    for (index, arg) in args.iter().enumerate() {
        let name = arg.ident.to_string();
        if HELPER_PARAMS.contains(&name.as_str()) {
            cx.error_spanned_by(
                &arg.ident,
                format!(
                    "a #[job] argument cannot be named `{name}`: the generated helpers (`enqueue`, `enqueue_with`, `schedule_in`, `schedule_at`, `recurring`, `continue_after`, `add_to_batch`, `enqueue_in_tx`...) take `client`, `options`, `delay`, `at`, `recurring_id`, `cron_expression`, `parent_job`, `parent_batch`, `into_batch` and `tx` before the arguments; rename it"
                ),
            );
        }
        if args[..index].iter().any(|other| other.ident == arg.ident) {
            cx.error_spanned_by(&arg.ident, format!("argument `{name}` is named twice"));
        }
    }
    if let Some((_, parent)) = &job.func.parent
        && args.iter().any(|arg| arg.ident == parent.ident)
    {
        cx.error_spanned_by(
            &parent.ident,
            format!("argument `{}` is named twice", parent.ident),
        );
    }
    let by_lists = [
        job.attrs
            .unique
            .as_ref()
            .and_then(|unique| unique.by.as_ref()),
        job.attrs
            .concurrency
            .as_ref()
            .and_then(|concurrency| concurrency.by.as_ref()),
    ];
    for by in by_lists.into_iter().flatten() {
        check_by(cx, &job.func, by);
    }
}

/// Each name of a `by` list must be a stored argument of the function:
/// not its `JobContext`, not its `#[parent]` result, which the job's key
/// cannot be made of.
fn check_by(cx: &mut Ctxt, func: &JobFn, by: &[Ident]) {
    for ident in by {
        let name = unraw(ident);
        if func.args.iter().any(|arg| arg.name == name) {
            continue;
        }
        let is_named = |other: Option<&Ident>| other.is_some_and(|other| unraw(other) == name);
        let what = if is_named(func.context_ident.as_ref()) {
            " but its `JobContext`"
        } else if is_named(func.parent.as_ref().map(|(_, parent)| &parent.ident)) {
            " but its parent's result (`#[parent]`, not stored with the arguments)"
        } else {
            ""
        };
        let arguments = if func.args.is_empty() {
            "it has no arguments".to_owned()
        } else {
            let names: Vec<String> = func
                .args
                .iter()
                .map(|arg| format!("`{}`", arg.name))
                .collect();
            format!("its arguments are {}", names.join(", "))
        };
        cx.error_spanned_by(
            ident,
            format!("`by` names `{name}`, which is not an argument of this job{what}; {arguments}"),
        );
    }
}
