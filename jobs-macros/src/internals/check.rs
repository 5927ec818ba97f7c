//! Checks across the attribute and the function.

use super::ast::JobFn;
use super::ctxt::Ctxt;

/// The names the generated helpers take for themselves; a job argument may
/// not use them, nor two arguments one name.
const HELPER_PARAMS: &[&str] = &["client", "delay", "at"];

/// Checks the parsed function as a whole.
pub fn check(cx: &mut Ctxt, job: &JobFn) {
    for (index, arg) in job.args.iter().enumerate() {
        let name = arg.ident.to_string();
        if HELPER_PARAMS.contains(&name.as_str()) {
            cx.error_spanned_by(
                &arg.ident,
                format!(
                    "a #[job] argument cannot be named `{name}`: the generated `enqueue`, `schedule_in` and `schedule_at` helpers take `client`, `delay` and `at`; rename it"
                ),
            );
        }
        if job.args[..index]
            .iter()
            .any(|other| other.ident == arg.ident)
        {
            cx.error_spanned_by(&arg.ident, format!("argument `{name}` is named twice"));
        }
    }
}
