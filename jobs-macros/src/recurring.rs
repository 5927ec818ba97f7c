//! `#[recurring(cron = "...", ...)]`: a `#[job]` with no arguments plus its
//! schedule's registration. The cron expression and the time zone are
//! parsed here, at compile time, by the same `CronSchedule` the scheduler
//! runs, so a schedule that compiles is one that fires.

use jobs_core::recurring::{CronSchedule, DEFAULT_TIME_ZONE, Misfire, ScheduleError};
use proc_macro2::{Span, TokenStream};
use quote::quote;
use syn::parse::Parser;
use syn::{Lit, LitBool, LitStr};

use crate::internals::ast::Job;
use crate::internals::attr::{JOB_KEYS, key_of, skip_value};
use crate::internals::ctxt::Ctxt;
use crate::job::{expand_with, private};

/// The keys only `#[recurring]` takes; it also takes every `#[job]` key
/// but those of [`REFUSED_JOB_KEYS`].
const RECURRING_KEYS: &[&str] = &["cron", "tz", "misfire", "skip_if_running"];

/// The `#[job]` keys `#[recurring]` refuses, each with the error that says
/// why and what to use instead.
const REFUSED_JOB_KEYS: &[(&str, &str)] = &[
    (
        "unique",
        "`unique` is not supported on #[recurring] jobs: a recurring job fires once per tick already (use `skip_if_running = true` to skip a tick while a run is going)",
    ),
    (
        "concurrency",
        "`concurrency` is not supported on #[recurring] jobs yet: use `skip_if_running = true`",
    ),
    (
        "priority",
        "`priority` is not supported on #[recurring] jobs yet: their runs are enqueued at priority 0 (use `queue` to run them ahead)",
    ),
];

/// Expands `#[recurring(args)] item`.
pub fn expand(args: TokenStream, item: TokenStream) -> TokenStream {
    let mut schedule_cx = Ctxt::default();
    let (schedule, job_args) = ScheduleAttrs::parse(&mut schedule_cx, args);
    expand_with(job_args, item, "#[recurring]", move |cx, job| {
        if let Err(error) = schedule_cx.check() {
            cx.syn_error(error);
        }
        if let Some((_, parent)) = &job.func.parent {
            cx.error_spanned_by(
                &parent.ident,
                "a #[recurring] function has no parent: its runs are enqueued by its schedule, not after another job; remove `#[parent]`",
            );
        }
        if let Some(arg) = job.func.args.first() {
            cx.error_spanned_by(
                &arg.ident,
                format!(
                    "a #[recurring] function takes no arguments besides an optional `JobContext`; for a job with arguments, use #[job] and `{}::recurring(&client, id, cron, ...)`",
                    job.func.ident
                ),
            );
        }
        match schedule {
            Some(schedule) => registration(job, &schedule),
            None => TokenStream::new(),
        }
    })
}

/// The schedule as given, checked.
struct ScheduleAttrs {
    cron: String,
    time_zone: String,
    misfire: Misfire,
    skip_if_running: bool,
}

impl ScheduleAttrs {
    /// Takes the schedule's keys out of `args`; returns the schedule (when
    /// complete and valid) and the other keys, for `#[job]`'s parser.
    fn parse(cx: &mut Ctxt, args: TokenStream) -> (Option<ScheduleAttrs>, TokenStream) {
        let mut cron: Option<LitStr> = None;
        let mut tz: Option<LitStr> = None;
        let mut misfire = Misfire::default();
        let mut skip_if_running = false;
        let mut job_args = Vec::new();
        let mut seen: Vec<String> = Vec::new();
        let parser = syn::meta::parser(|meta| {
            let key = key_of(&meta);
            if let Some((_, refusal)) = REFUSED_JOB_KEYS.iter().find(|(refused, _)| *refused == key)
            {
                cx.error_spanned_by(&meta.path, refusal);
                return skip_value(&meta);
            }
            if JOB_KEYS.contains(&key.as_str()) {
                // Passed on as written (a literal, `-5`, a list, a path),
                // for `#[job]`'s parser to check.
                let path = meta.path.clone();
                let value: syn::Expr = meta.value()?.parse()?;
                job_args.push(quote!(#path = #value));
                return Ok(());
            }
            if !RECURRING_KEYS.contains(&key.as_str()) {
                let all: Vec<String> = RECURRING_KEYS
                    .iter()
                    .chain(JOB_KEYS)
                    .filter(|k| !REFUSED_JOB_KEYS.iter().any(|(refused, _)| refused == *k))
                    .map(|k| format!("`{k}`"))
                    .collect();
                cx.error_spanned_by(
                    &meta.path,
                    format!(
                        "unknown #[recurring] key: expected one of {}",
                        all.join(", ")
                    ),
                );
                return skip_value(&meta);
            }
            let value: Lit = meta.value()?.parse()?;
            if seen.contains(&key) {
                cx.error_spanned_by(&meta.path, format!("duplicate #[recurring] key `{key}`"));
                return Ok(());
            }
            seen.push(key.clone());
            match (key.as_str(), value) {
                ("cron", Lit::Str(text)) => cron = Some(text),
                ("tz", Lit::Str(text)) => tz = Some(text),
                ("misfire", Lit::Str(text)) => match text.value().parse() {
                    Ok(parsed) => misfire = parsed,
                    Err(message) => cx.error_spanned_by(&text, message),
                },
                ("skip_if_running", Lit::Bool(LitBool { value, .. })) => skip_if_running = value,
                ("skip_if_running", other) => {
                    cx.error_spanned_by(other, "`skip_if_running` takes `true` or `false`")
                }
                (key, other) => cx.error_spanned_by(
                    other,
                    format!("`{key}` takes a string, like `{key} = \"...\"`"),
                ),
            }
            Ok(())
        });
        if let Err(error) = parser.parse2(args) {
            cx.syn_error(error);
            return (None, TokenStream::new());
        }
        let job_args = quote!(#(#job_args),*);
        let Some(cron) = cron else {
            cx.syn_error(syn::Error::new(
                Span::call_site(),
                "#[recurring] needs a schedule: `cron = \"0 */5 * * * *\"` (5 fields, or 6 with seconds first)",
            ));
            return (None, job_args);
        };
        let time_zone = tz
            .as_ref()
            .map_or_else(|| DEFAULT_TIME_ZONE.to_owned(), LitStr::value);
        match CronSchedule::parse(&cron.value(), &time_zone) {
            Ok(_) => {}
            Err(error @ ScheduleError::TimeZone(_)) => match &tz {
                Some(tz) => cx.error_spanned_by(tz, error),
                None => cx.error_spanned_by(&cron, error),
            },
            Err(error) => cx.error_spanned_by(&cron, error),
        }
        let schedule = ScheduleAttrs {
            cron: cron.value(),
            time_zone,
            misfire,
            skip_if_running,
        };
        (Some(schedule), job_args)
    }
}

/// The schedule's registration, submitted to `inventory` beside the job's.
fn registration(job: &Job, schedule: &ScheduleAttrs) -> TokenStream {
    let private = private(job);
    let struct_ident = &job.struct_ident;
    let ScheduleAttrs {
        cron,
        time_zone,
        skip_if_running,
        ..
    } = schedule;
    let misfire = match schedule.misfire {
        Misfire::RunOnce => quote!(#private::Misfire::RunOnce),
        Misfire::Skip => quote!(#private::Misfire::Skip),
        Misfire::RunEach { max } => quote!(#private::Misfire::RunEach { max: #max }),
    };
    quote! {
        #private::inventory::submit! {
            #private::RecurringRegistration::of::<#struct_ident>(
                #cron, #time_zone, #misfire, #skip_if_running, ::core::file!(), ::core::line!(),
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn expand_str(args: &str, item: &str) -> String {
        expand(args.parse().unwrap(), item.parse().unwrap()).to_string()
    }

    #[test]
    fn unique_concurrency_and_priority_are_refused_with_their_reason() {
        let out = expand_str(
            r#"cron = "@hourly", unique(within = "1h"), concurrency = 1, priority = -1, queue = "x""#,
            "async fn hourly() {}",
        );
        for (_, refusal) in REFUSED_JOB_KEYS {
            assert!(out.contains(refusal), "missing {refusal:?} in {out}");
        }
        assert_eq!(out.matches("compile_error").count(), 3, "{out}");
        let out = expand_str(r#"cron = "@hourly", unique"#, "async fn hourly() {}");
        assert!(
            out.contains("`unique` is not supported on #[recurring] jobs"),
            "{out}"
        );
        let out = expand_str(r#"cron = "@hourly", bogus = 1"#, "async fn hourly() {}");
        assert!(out.contains("`timeout`, `crate`"), "{out}");
        assert!(!out.contains("`unique`"), "{out}");
    }
}
