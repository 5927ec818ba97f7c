//! Checks across the parts of the model, once it is parsed.

use super::ast::Job;
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

/// Checks the parsed job as a whole.
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
}
