//! `#[job(...)]`'s keys: parsed with `syn::meta::parser`, then resolved
//! into [`JobAttrs`], where every default is decided, once. The expander
//! reads the resolved values and decides nothing.

use std::time::Duration;

use jobs_core::State;
use proc_macro2::{Span, TokenStream};
use syn::meta::ParseNestedMeta;
use syn::parse::Parser;
use syn::{Expr, Ident, Lit, LitStr};

use super::ctxt::Ctxt;
use super::duration;

/// The keys `#[job]` accepts, in the order the error message lists them.
pub const JOB_KEYS: &[&str] = &[
    "name",
    "queue",
    "retries",
    "backoff",
    "timeout",
    "priority",
    "unique",
    "concurrency",
    "crate",
];

/// The keys `unique(...)` accepts, in the order the error message lists
/// them.
pub const UNIQUE_KEYS: &[&str] = &["by", "within", "states"];

/// The keys `concurrency(...)` accepts, in the order the error message
/// lists them.
pub const CONCURRENCY_KEYS: &[&str] = &["limit", "by"];

/// The queue of a job whose `#[job]` names none: the one queue a server
/// serves unless told otherwise (`ServerBuilder::queues`' default).
pub const DEFAULT_QUEUE: &str = "default";

/// A value and the span of the literal it came from.
pub struct Spanned<T> {
    pub value: T,
    pub span: Span,
}

/// How many times a failed attempt is retried.
pub enum Retries {
    /// `retries = N`.
    Given(Spanned<u32>),
    /// No key: the runtime's `RetryPolicy::DEFAULT_RETRIES` (10, as
    /// Hangfire), named by the generated code rather than copied here, so
    /// that the number has one home.
    Default,
}

/// The delay before each retry: the runtime's `Backoff`, as written.
pub enum Backoff {
    /// `backoff = "30s"`: always this delay.
    Fixed(Duration),
    /// `backoff = ["1s", "30s", "5m"]`: one delay per retry, the last one
    /// repeated (never empty).
    Steps(Vec<Duration>),
    /// `backoff = my_backoff`: the delay the function gives for each retry.
    /// Its type, `fn(u32) -> Duration`, is the compiler's to check, on the
    /// path's span.
    Custom(syn::ExprPath),
    /// No key: Hangfire's growing delay (`Backoff::Hangfire`).
    Hangfire,
}

/// `unique`: at most one job of a key in some states; the runtime's
/// `Uniqueness`, as written.
pub struct Unique {
    /// `by = [customer_id, region]`: the arguments whose values make the
    /// key, each an argument of the function (checked in `check.rs`), none
    /// twice. `None`: every argument (the `Job` trait's `unique_key`
    /// default), and the generated impl leaves `unique_key` out.
    pub by: Option<Vec<Ident>>,
    /// `within = "1h"`: the key holds within periods of this length (never
    /// zero). `None`: while a job of the key is unfinished.
    pub within: Option<Spanned<Duration>>,
    /// `states = ["Scheduled", "Enqueued"]`: the states in which a job of
    /// the key blocks another (never empty, none twice). `None`: the
    /// runtime's default for `within` or its absence
    /// (`Uniqueness::within`, `Uniqueness::new`).
    pub states: Option<Spanned<Vec<State>>>,
}

/// `concurrency`: at most `limit` jobs of a key running at once; the
/// runtime's `Concurrency`, as written.
pub struct Concurrency {
    /// `concurrency = N` or `concurrency(limit = N)`, at least 1.
    pub limit: Spanned<u32>,
    /// `concurrency(limit = N, by = [customer_id])`: a limit per value of
    /// these arguments, each an argument of the function (checked in
    /// `check.rs`), none twice. `None`: one limit for the job's name.
    pub by: Option<Vec<Ident>>,
}

/// One `#[job(...)]` with every default resolved.
pub struct JobAttrs {
    /// The stable stored name: `name = "..."`, else the function's name
    /// (without `r#`).
    pub name: String,
    /// The job's queue: `queue = "..."`, else [`DEFAULT_QUEUE`].
    pub queue: String,
    pub retries: Retries,
    pub backoff: Backoff,
    /// The longest one attempt may run: `timeout = "30s"` (never zero).
    /// `None` when not given: the `Job` trait's default (`None`, left to
    /// the server) applies, and the generated impl leaves the constant out.
    pub timeout: Option<Spanned<Duration>>,
    /// The job's priority within its queue, lower first: `priority = -5`.
    /// `None` when not given: the `Job` trait's default (`0`) applies, and
    /// the generated impl leaves the constant out.
    pub priority: Option<Spanned<i16>>,
    /// Whether, and how, the job is unique: `unique`, `unique(...)`.
    /// `None` when not given: the `Job` trait's default (`None`, every
    /// enqueue makes a job) applies, and the generated impl leaves the
    /// constant out.
    pub unique: Option<Unique>,
    /// The job's concurrency limit: `concurrency = 2`,
    /// `concurrency(limit = 1, by = [customer_id])`. `None` when not given:
    /// the `Job` trait's default (no limit) applies, and the generated impl
    /// leaves the constant out.
    pub concurrency: Option<Concurrency>,
    /// The path of the `jobs` facade that generated code names:
    /// `crate = "..."`, else `::jobs`.
    pub crate_path: syn::Path,
}

impl JobAttrs {
    /// Parses the attribute's arguments of the function `fn_ident`,
    /// recording every error in `cx`, and resolves the defaults.
    pub fn from_args(cx: &mut Ctxt, args: TokenStream, fn_ident: &Ident) -> JobAttrs {
        let given = GivenAttrs::parse(cx, args);
        JobAttrs {
            name: match given.name {
                Some(name) => name.value,
                None => unraw(fn_ident),
            },
            queue: match given.queue {
                Some(queue) => queue.value,
                None => DEFAULT_QUEUE.to_owned(),
            },
            retries: match given.retries {
                Some(retries) => Retries::Given(retries),
                None => Retries::Default,
            },
            backoff: match given.backoff {
                Some(backoff) => backoff.value,
                None => Backoff::Hangfire,
            },
            timeout: given.timeout,
            priority: given.priority,
            unique: given.unique,
            concurrency: given.concurrency,
            crate_path: given
                .crate_path
                .unwrap_or_else(|| syn::parse_quote!(::jobs)),
        }
    }
}

/// An identifier as its user means it: `r#type` is `type`.
pub fn unraw(ident: &Ident) -> String {
    let text = ident.to_string();
    match text.strip_prefix("r#") {
        Some(bare) => bare.to_owned(),
        None => text,
    }
}

/// The keys as written; `None` for a key not given.
#[derive(Default)]
struct GivenAttrs {
    name: Option<Spanned<String>>,
    queue: Option<Spanned<String>>,
    retries: Option<Spanned<u32>>,
    /// Never [`Backoff::Hangfire`], which is the default.
    backoff: Option<Spanned<Backoff>>,
    timeout: Option<Spanned<Duration>>,
    priority: Option<Spanned<i16>>,
    unique: Option<Unique>,
    concurrency: Option<Concurrency>,
    crate_path: Option<syn::Path>,
}

impl GivenAttrs {
    /// Parses the attribute's arguments, recording every error in `cx`.
    fn parse(cx: &mut Ctxt, args: TokenStream) -> GivenAttrs {
        let mut attrs = GivenAttrs::default();
        let mut seen: Vec<String> = Vec::new();
        let parser = syn::meta::parser(|meta| {
            let key = key_of(&meta);
            if !accept_key(cx, &meta.path, &key, JOB_KEYS, &mut seen, "#[job]") {
                return skip_value(&meta);
            }
            // The two keys that are flags or take `(...)`.
            match key.as_str() {
                "unique" => {
                    attrs.unique = parse_unique(cx, &meta)?;
                    return Ok(());
                }
                "concurrency" => {
                    attrs.concurrency = parse_concurrency(cx, &meta)?;
                    return Ok(());
                }
                _ => {}
            }
            // A value of the wrong kind is recorded and parsing goes on; only
            // broken syntax (`retries =` with nothing after, or a value that
            // is not a literal where only a literal goes) stops it. `backoff`
            // and `priority` take an expression: a list, a path, `-5`.
            let value = meta.value()?;
            match key.as_str() {
                "name" => {
                    attrs.name = parse_text(cx, value.parse()?, "name", "\"send_welcome_email\"");
                }
                "queue" => attrs.queue = parse_text(cx, value.parse()?, "queue", "\"mail\""),
                "retries" => attrs.retries = parse_retries(cx, value.parse()?),
                "backoff" => attrs.backoff = parse_backoff(cx, value.parse()?),
                "timeout" => attrs.timeout = parse_timeout(cx, value.parse()?),
                "priority" => attrs.priority = parse_priority(cx, value.parse()?),
                "crate" => attrs.crate_path = parse_crate(cx, value.parse()?),
                _ => unreachable!("checked against JOB_KEYS"),
            }
            Ok(())
        });
        if let Err(error) = parser.parse2(args) {
            cx.syn_error(error);
        }
        attrs
    }
}

/// `keys` as `` `a`, `b`, `c` ``, for the error of an unknown key.
fn one_of(keys: &[&str]) -> String {
    keys.iter()
        .map(|k| format!("`{k}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Whether `key` (at `path`) is one of `accepted` and not `seen` yet; an
/// unknown or duplicate key of `what` (`#[job]`, `` `unique` ``) is
/// recorded in `cx`. A key accepted is added to `seen`.
fn accept_key(
    cx: &mut Ctxt,
    path: &syn::Path,
    key: &str,
    accepted: &[&str],
    seen: &mut Vec<String>,
    what: &str,
) -> bool {
    if !accepted.contains(&key) {
        cx.error_spanned_by(
            path,
            format!(
                "unknown {what} key `{}`: expected one of {}",
                path_text(path),
                one_of(accepted)
            ),
        );
        return false;
    }
    if seen.iter().any(|earlier| earlier == key) {
        cx.error_spanned_by(path, format!("duplicate {what} key `{key}`"));
        return false;
    }
    seen.push(key.to_owned());
    true
}

fn path_text(path: &syn::Path) -> String {
    let segments: Vec<_> = path.segments.iter().map(|s| s.ident.to_string()).collect();
    segments.join("::")
}

/// The key of `meta` as written (`""` for a path of several segments).
pub fn key_of(meta: &ParseNestedMeta) -> String {
    meta.path
        .get_ident()
        .map(|ident| ident.to_string())
        .unwrap_or_default()
}

/// Consumes `= value` or `(...)` after a key that is refused, so that the
/// keys after it are still parsed and checked.
pub fn skip_value(meta: &ParseNestedMeta) -> syn::Result<()> {
    if meta.input.peek(syn::Token![=]) {
        meta.value()?.parse::<syn::Expr>()?;
    } else if meta.input.peek(syn::token::Paren) {
        let content;
        syn::parenthesized!(content in meta.input);
        // Left unread, the tokens would be an "unexpected token" error.
        content.parse::<TokenStream>()?;
    }
    Ok(())
}

fn string_value(cx: &mut Ctxt, lit: Lit, key: &str, example: &str) -> Option<LitStr> {
    match lit {
        Lit::Str(text) => Some(text),
        other => {
            cx.error_spanned_by(
                other,
                format!("`{key}` takes a string, like `{key} = {example}`"),
            );
            None
        }
    }
}

fn parse_text(cx: &mut Ctxt, lit: Lit, key: &str, example: &str) -> Option<Spanned<String>> {
    let lit = string_value(cx, lit, key, example)?;
    let value = lit.value();
    if value.trim().is_empty() || value.trim() != value {
        cx.error_spanned_by(
            &lit,
            format!("`{key}` must not be empty or start or end with white space"),
        );
    }
    Some(Spanned {
        value,
        span: lit.span(),
    })
}

fn parse_retries(cx: &mut Ctxt, lit: Lit) -> Option<Spanned<u32>> {
    let Lit::Int(int) = &lit else {
        cx.error_spanned_by(&lit, "`retries` takes a whole number, like `retries = 5`");
        return None;
    };
    match int.base10_parse::<u32>() {
        Ok(value) => Some(Spanned {
            value,
            span: int.span(),
        }),
        Err(_) => {
            cx.error_spanned_by(
                &lit,
                "`retries` must be a whole number from 0 to 4294967295",
            );
            None
        }
    }
}

/// `backoff = "30s"`, `backoff = ["1s", "30s", "5m"]` or `backoff = path`.
fn parse_backoff(cx: &mut Ctxt, expr: Expr) -> Option<Spanned<Backoff>> {
    let span = syn::spanned::Spanned::span(&expr);
    let value = match expr {
        Expr::Lit(syn::ExprLit {
            lit: Lit::Str(text),
            ..
        }) => Backoff::Fixed(parse_delay(cx, &text, "backoff")?),
        Expr::Array(list) => {
            if list.elems.is_empty() {
                cx.error_spanned_by(&list, "`backoff` needs at least one delay");
                return None;
            }
            // Every element is checked, so that each bad one is reported.
            let delays: Vec<Option<Duration>> = list
                .elems
                .iter()
                .map(|element| match element {
                    Expr::Lit(syn::ExprLit {
                        lit: Lit::Str(text),
                        ..
                    }) => parse_delay(cx, text, "backoff"),
                    other => {
                        cx.error_spanned_by(
                            other,
                            "each delay of a `backoff` list is a string, like `backoff = [\"1s\", \"30s\", \"5m\"]`",
                        );
                        None
                    }
                })
                .collect();
            Backoff::Steps(delays.into_iter().collect::<Option<_>>()?)
        }
        Expr::Path(path) if path.attrs.is_empty() => Backoff::Custom(path),
        other => {
            cx.error_spanned_by(
                other,
                "`backoff` takes a delay (`backoff = \"30s\"`), a list of delays, one per retry (`backoff = [\"1s\", \"30s\", \"5m\"]`), or a function `fn(u32) -> Duration` giving the delay before retry n (`backoff = my_backoff`)",
            );
            return None;
        }
    };
    Some(Spanned { value, span })
}

/// `timeout = "30s"`: a duration longer than zero.
fn parse_timeout(cx: &mut Ctxt, lit: Lit) -> Option<Spanned<Duration>> {
    parse_period(cx, lit, "timeout", "\"30s\"")
}

/// A duration string of `key` longer than zero (`timeout = "30s"`,
/// `within = "1h"`); `example` is a value for the error message.
fn parse_period(cx: &mut Ctxt, lit: Lit, key: &str, example: &str) -> Option<Spanned<Duration>> {
    let lit = string_value(cx, lit, key, example)?;
    let value = parse_delay(cx, &lit, key)?;
    if value.is_zero() {
        cx.error_spanned_by(&lit, format!("`{key}` must be longer than zero"));
        return None;
    }
    Some(Spanned {
        value,
        span: lit.span(),
    })
}

/// A duration string of `key`, parsed by [`duration::parse`]; an error on
/// the literal when it does not parse.
fn parse_delay(cx: &mut Ctxt, lit: &LitStr, key: &str) -> Option<Duration> {
    match duration::parse(&lit.value()) {
        Ok(value) => Some(value),
        Err(message) => {
            cx.error_spanned_by(lit, format!("invalid `{key}`: {message}"));
            None
        }
    }
}

/// `priority = N` or `priority = -N`, in `i16`'s range.
fn parse_priority(cx: &mut Ctxt, expr: Expr) -> Option<Spanned<i16>> {
    let value = match &expr {
        Expr::Lit(syn::ExprLit {
            lit: Lit::Int(int), ..
        }) => int.base10_parse::<i64>().ok(),
        Expr::Unary(syn::ExprUnary {
            op: syn::UnOp::Neg(_),
            expr: operand,
            ..
        }) => match &**operand {
            Expr::Lit(syn::ExprLit {
                lit: Lit::Int(int), ..
            }) => int.base10_parse::<i64>().ok().map(|value| -value),
            _ => None,
        },
        _ => None,
    };
    match value.and_then(|value| i16::try_from(value).ok()) {
        Some(value) => Some(Spanned {
            value,
            span: syn::spanned::Spanned::span(&expr),
        }),
        None => {
            cx.error_spanned_by(
                &expr,
                "`priority` takes a whole number from -32768 to 32767, like `priority = -5`; lower numbers run first",
            );
            None
        }
    }
}

/// Parses the `(...)` after `key` (`unique`, `concurrency`): each key
/// one of `accepted`, none twice, its value read by `each`. An unknown or
/// repeated key is recorded and parsing goes on.
fn parse_sub_keys(
    cx: &mut Ctxt,
    meta: &ParseNestedMeta,
    key: &str,
    accepted: &[&str],
    mut each: impl FnMut(&mut Ctxt, &str, &ParseNestedMeta) -> syn::Result<()>,
) -> syn::Result<()> {
    // `unique()`: nothing to read, which `parse_nested_meta` refuses.
    let fork = meta.input.fork();
    let content;
    syn::parenthesized!(content in fork);
    if content.is_empty() {
        return skip_value(meta);
    }
    let mut seen: Vec<String> = Vec::new();
    meta.parse_nested_meta(|sub| {
        let sub_key = key_of(&sub);
        if !accept_key(
            cx,
            &sub.path,
            &sub_key,
            accepted,
            &mut seen,
            &format!("`{key}`"),
        ) {
            return skip_value(&sub);
        }
        each(cx, &sub_key, &sub)
    })
}

/// `unique`, or `unique(by = [a, b], within = "1h", states = [...])`.
fn parse_unique(cx: &mut Ctxt, meta: &ParseNestedMeta) -> syn::Result<Option<Unique>> {
    if meta.input.peek(syn::Token![=]) {
        cx.error_spanned_by(
            &meta.path,
            "`unique` takes no value: write `unique`, or `unique(by = [customer_id], within = \"1h\", states = [\"Enqueued\"])` with the parts you need",
        );
        skip_value(meta)?;
        return Ok(None);
    }
    let mut unique = Unique {
        by: None,
        within: None,
        states: None,
    };
    if meta.input.peek(syn::token::Paren) {
        parse_sub_keys(cx, meta, "unique", UNIQUE_KEYS, |cx, key, sub| {
            let value = sub.value()?;
            match key {
                "by" => unique.by = parse_by(cx, value.parse()?),
                "within" => unique.within = parse_period(cx, value.parse()?, "within", "\"1h\""),
                "states" => unique.states = parse_states(cx, value.parse()?),
                _ => unreachable!("checked against UNIQUE_KEYS"),
            }
            Ok(())
        })?;
    }
    Ok(Some(unique))
}

/// `concurrency = N`, or `concurrency(limit = N, by = [a])`.
fn parse_concurrency(cx: &mut Ctxt, meta: &ParseNestedMeta) -> syn::Result<Option<Concurrency>> {
    if meta.input.peek(syn::Token![=]) {
        let limit = parse_limit(cx, meta.value()?.parse()?, "concurrency");
        return Ok(limit.map(|limit| Concurrency { limit, by: None }));
    }
    if !meta.input.peek(syn::token::Paren) {
        cx.error_spanned_by(
            &meta.path,
            "`concurrency` takes a limit, like `concurrency = 2`, or a limit per key, like `concurrency(limit = 1, by = [customer_id])`",
        );
        return Ok(None);
    }
    let mut limit = None;
    let mut limit_given = false;
    let mut by = None;
    parse_sub_keys(cx, meta, "concurrency", CONCURRENCY_KEYS, |cx, key, sub| {
        let value = sub.value()?;
        match key {
            "limit" => {
                limit_given = true;
                limit = parse_limit(cx, value.parse()?, "limit");
            }
            "by" => by = parse_by(cx, value.parse()?),
            _ => unreachable!("checked against CONCURRENCY_KEYS"),
        }
        Ok(())
    })?;
    if !limit_given {
        cx.error_spanned_by(
            &meta.path,
            "`concurrency(...)` needs a `limit`, like `concurrency(limit = 1, by = [customer_id])`",
        );
    }
    // A limit missing or refused is recorded above, so this one is never
    // expanded: the key is kept for `check.rs` to check `by` too.
    let limit = limit.unwrap_or(Spanned {
        value: 1,
        span: syn::spanned::Spanned::span(&meta.path),
    });
    Ok(Some(Concurrency { limit, by }))
}

/// `concurrency = N` or `limit = N`: a whole number from 1 to `u32::MAX`.
fn parse_limit(cx: &mut Ctxt, expr: Expr, key: &str) -> Option<Spanned<u32>> {
    let Expr::Lit(syn::ExprLit {
        lit: Lit::Int(int), ..
    }) = &expr
    else {
        let example = if key == "concurrency" {
            "`concurrency = 2`, or a limit per key, like `concurrency(limit = 1, by = [customer_id])`"
        } else {
            "`limit = 1`"
        };
        cx.error_spanned_by(
            &expr,
            format!("`{key}` takes a whole number, like {example}"),
        );
        return None;
    };
    match int.base10_parse::<u32>() {
        Ok(0) => {
            cx.error_spanned_by(int, format!("`{key}` must be at least 1"));
            None
        }
        Ok(value) => Some(Spanned {
            value,
            span: int.span(),
        }),
        Err(_) => {
            cx.error_spanned_by(
                int,
                format!("`{key}` must be a whole number from 1 to 4294967295"),
            );
            None
        }
    }
}

/// `by = [customer_id, region]`: names, none twice, at least one. Whether
/// each is an argument of the function is `check.rs`'s to say. After an
/// error on a name, the others are kept, so that they are checked too.
fn parse_by(cx: &mut Ctxt, expr: Expr) -> Option<Vec<Ident>> {
    let Expr::Array(list) = expr else {
        cx.error_spanned_by(
            &expr,
            "`by` takes a list of the job's arguments, like `by = [customer_id]`",
        );
        return None;
    };
    if list.elems.is_empty() {
        cx.error_spanned_by(
            &list,
            "`by` needs at least one of the job's arguments, like `by = [customer_id]`",
        );
        return None;
    }
    let mut idents: Vec<Ident> = Vec::new();
    for element in &list.elems {
        let ident = match element {
            Expr::Path(path) if path.attrs.is_empty() && path.qself.is_none() => {
                path.path.get_ident()
            }
            _ => None,
        };
        let Some(ident) = ident else {
            cx.error_spanned_by(
                element,
                "each name of a `by` list is one of the job's arguments, like `by = [customer_id, region]`",
            );
            continue;
        };
        if idents.iter().any(|other| unraw(other) == unraw(ident)) {
            cx.error_spanned_by(ident, format!("`by` names `{}` twice", unraw(ident)));
            continue;
        }
        idents.push(ident.clone());
    }
    Some(idents)
}

/// `states = ["Scheduled", "Enqueued"]`: names of job states, parsed by
/// the runtime's own `State::from_str`, none twice, at least one.
fn parse_states(cx: &mut Ctxt, expr: Expr) -> Option<Spanned<Vec<State>>> {
    let span = syn::spanned::Spanned::span(&expr);
    let Expr::Array(list) = expr else {
        cx.error_spanned_by(
            &expr,
            "`states` takes a list of job states, like `states = [\"Scheduled\", \"Enqueued\"]`",
        );
        return None;
    };
    if list.elems.is_empty() {
        cx.error_spanned_by(
            &list,
            "`states` needs at least one job state, like `states = [\"Scheduled\", \"Enqueued\"]`",
        );
        return None;
    }
    // Every element is checked, so that each bad one is reported.
    let mut states: Vec<Option<State>> = Vec::new();
    for element in &list.elems {
        let Expr::Lit(syn::ExprLit {
            lit: Lit::Str(text),
            ..
        }) = element
        else {
            cx.error_spanned_by(
                element,
                "each state of a `states` list is a string, like `states = [\"Scheduled\", \"Enqueued\"]`",
            );
            states.push(None);
            continue;
        };
        match text.value().parse::<State>() {
            Ok(state) if states.contains(&Some(state)) => {
                cx.error_spanned_by(text, format!("`states` names `{state}` twice"));
                states.push(None);
            }
            Ok(state) => states.push(Some(state)),
            Err(error) => {
                cx.error_spanned_by(text, error);
                states.push(None);
            }
        }
    }
    let value: Vec<State> = states.into_iter().collect::<Option<_>>()?;
    if let Err(problem) = jobs_core::Uniqueness::check_states(&value) {
        cx.error_spanned_by(&list, problem);
    }
    Some(Spanned { value, span })
}

fn parse_crate(cx: &mut Ctxt, lit: Lit) -> Option<syn::Path> {
    let lit = string_value(cx, lit, "crate", "\"::jobs\"")?;
    match lit.parse::<syn::Path>() {
        Ok(path) => Some(path),
        Err(_) => {
            cx.error_spanned_by(
                &lit,
                "`crate` takes a path, like `crate = \"::my_app::jobs\"`",
            );
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resolve(args: &str, fn_name: &str) -> JobAttrs {
        let mut cx = Ctxt::default();
        let fn_ident: Ident = syn::parse_str(fn_name).unwrap();
        let attrs = JobAttrs::from_args(&mut cx, args.parse().unwrap(), &fn_ident);
        cx.check().unwrap();
        attrs
    }

    #[test]
    fn keys_not_given_take_their_defaults() {
        let attrs = resolve("", "r#type");
        assert_eq!(attrs.name, "type");
        assert_eq!(attrs.queue, DEFAULT_QUEUE);
        assert!(matches!(attrs.retries, Retries::Default));
        assert!(matches!(attrs.backoff, Backoff::Hangfire));
        assert!(attrs.timeout.is_none());
        assert!(attrs.priority.is_none());
        assert!(attrs.unique.is_none());
        assert!(attrs.concurrency.is_none());
        let path = &attrs.crate_path;
        assert_eq!(quote::quote!(#path).to_string(), ":: jobs");
    }

    #[test]
    fn keys_given_replace_the_defaults() {
        let attrs = resolve(
            r#"name = "mail.welcome", queue = "mail", retries = 3, backoff = "30s", crate = "my::jobs""#,
            "send_welcome_email",
        );
        assert_eq!(attrs.name, "mail.welcome");
        assert_eq!(attrs.queue, "mail");
        assert!(matches!(
            attrs.retries,
            Retries::Given(Spanned { value: 3, .. })
        ));
        assert!(matches!(attrs.backoff, Backoff::Fixed(delay) if delay == Duration::from_secs(30)));
        let path = &attrs.crate_path;
        assert_eq!(quote::quote!(#path).to_string(), "my :: jobs");
    }

    #[test]
    fn timeout_and_priority_given_replace_the_defaults() {
        let attrs = resolve(r#"timeout = "90s", priority = -5"#, "f");
        assert!(matches!(
            attrs.timeout,
            Some(Spanned { value, .. }) if value == Duration::from_secs(90)
        ));
        assert!(matches!(attrs.priority, Some(Spanned { value: -5, .. })));
        for (given, expected) in [("0", 0), ("32767", i16::MAX), ("-32768", i16::MIN)] {
            let attrs = resolve(&format!("priority = {given}"), "f");
            assert!(matches!(attrs.priority, Some(Spanned { value, .. }) if value == expected));
        }
    }

    #[test]
    fn backoff_takes_a_delay_a_list_or_a_function() {
        let attrs = resolve(r#"backoff = ["1s", "30s", "5m"]"#, "f");
        let Backoff::Steps(delays) = attrs.backoff else {
            panic!("not steps");
        };
        let secs: Vec<u64> = delays.iter().map(Duration::as_secs).collect();
        assert_eq!(secs, [1, 30, 300]);
        for path in ["my_backoff", "crate::retry::doubling"] {
            let attrs = resolve(&format!("backoff = {path}"), "f");
            let Backoff::Custom(given) = attrs.backoff else {
                panic!("not custom");
            };
            let expected: syn::ExprPath = syn::parse_str(path).unwrap();
            assert_eq!(given, expected);
        }
    }

    fn names(idents: Option<&Vec<Ident>>) -> Option<Vec<String>> {
        idents.map(|idents| idents.iter().map(unraw).collect())
    }

    #[test]
    fn unique_is_a_flag_or_takes_sub_keys() {
        for args in ["unique", "unique()"] {
            let unique = resolve(args, "f").unique.expect("unique");
            assert!(unique.by.is_none() && unique.within.is_none() && unique.states.is_none());
        }
        let unique = resolve(r#"unique(within = "1h")"#, "f").unique.unwrap();
        assert!(matches!(
            unique.within,
            Some(Spanned { value, .. }) if value == Duration::from_secs(3600)
        ));
        let unique = resolve("unique(by = [customer_id, r#type])", "f")
            .unique
            .unwrap();
        assert_eq!(
            names(unique.by.as_ref()),
            Some(vec!["customer_id".into(), "type".into()])
        );
        let unique = resolve(
            r#"unique(states = ["Scheduled", "Enqueued", "Processing", "Awaiting"])"#,
            "f",
        )
        .unique
        .unwrap();
        assert_eq!(
            unique.states.map(|states| states.value),
            Some(vec![
                State::Scheduled,
                State::Enqueued,
                State::Processing,
                State::Awaiting
            ])
        );
        let attrs = resolve(
            r#"queue = "mail", unique(by = [user_id], within = "30m", states = ["Scheduled", "Enqueued", "Processing", "Awaiting", "Succeeded"]), retries = 1"#,
            "f",
        );
        let unique = attrs.unique.unwrap();
        assert_eq!(names(unique.by.as_ref()), Some(vec!["user_id".into()]));
        assert_eq!(
            unique.within.map(|within| within.value),
            Some(Duration::from_secs(1800))
        );
        assert_eq!(
            unique.states.map(|states| states.value),
            Some(vec![
                State::Scheduled,
                State::Enqueued,
                State::Processing,
                State::Awaiting,
                State::Succeeded
            ])
        );
        assert_eq!(attrs.queue, "mail");
        assert!(matches!(
            attrs.retries,
            Retries::Given(Spanned { value: 1, .. })
        ));
    }

    #[test]
    fn concurrency_is_a_limit_per_name_or_per_key() {
        let concurrency = resolve("concurrency = 2", "f").concurrency.unwrap();
        assert_eq!(concurrency.limit.value, 2);
        assert!(concurrency.by.is_none());
        let concurrency = resolve("concurrency = 4294967295", "f")
            .concurrency
            .unwrap();
        assert_eq!(concurrency.limit.value, u32::MAX);
        let concurrency = resolve("concurrency(limit = 3)", "f").concurrency.unwrap();
        assert_eq!(concurrency.limit.value, 3);
        assert!(concurrency.by.is_none());
        let concurrency = resolve("concurrency(by = [customer_id, region], limit = 1)", "f")
            .concurrency
            .unwrap();
        assert_eq!(concurrency.limit.value, 1);
        assert_eq!(
            names(concurrency.by.as_ref()),
            Some(vec!["customer_id".into(), "region".into()])
        );
        let attrs = resolve("unique, concurrency = 1", "f");
        assert!(attrs.unique.is_some() && attrs.concurrency.is_some());
    }

    #[test]
    fn bad_unique_and_concurrency_are_each_an_error() {
        for (args, expected) in [
            ("unique = true", "`unique` takes no value"),
            ("unique, unique(by = [a])", "duplicate #[job] key `unique`"),
            (
                "unique(bye = [a])",
                "unknown `unique` key `bye`: expected one of `by`, `within`, `states`",
            ),
            (
                r#"unique(within = "1h", within = "2h")"#,
                "duplicate `unique` key `within`",
            ),
            (
                "unique(by = [])",
                "`by` needs at least one of the job's arguments",
            ),
            ("unique(by = [a, b, a])", "`by` names `a` twice"),
            (
                "unique(by = [a, self.b])",
                "each name of a `by` list is one of the job's arguments",
            ),
            ("unique(by = a)", "`by` takes a list of the job's arguments"),
            (
                r#"unique(within = "0s")"#,
                "`within` must be longer than zero",
            ),
            (
                r#"unique(within = "soon")"#,
                "invalid `within`: `soon` does not start",
            ),
            (
                "unique(within = 60)",
                "`within` takes a string, like `within = \"1h\"`",
            ),
            (
                r#"unique(states = ["Queued"])"#,
                "unknown job state `Queued`: expected one of Scheduled, Enqueued, Processing, Succeeded, Failed, Deleted, Awaiting",
            ),
            (
                r#"unique(states = ["enqueued"])"#,
                "unknown job state `enqueued`",
            ),
            (
                "unique(states = [])",
                "`states` needs at least one job state",
            ),
            (
                r#"unique(states = ["Enqueued", "Enqueued"])"#,
                "`states` names `Enqueued` twice",
            ),
            (
                "unique(states = [Enqueued])",
                "each state of a `states` list is a string",
            ),
            ("concurrency = 0", "`concurrency` must be at least 1"),
            (
                "concurrency = 4294967296",
                "`concurrency` must be a whole number from 1 to 4294967295",
            ),
            (
                r#"concurrency = "2""#,
                "`concurrency` takes a whole number, like `concurrency = 2`, or a limit per key",
            ),
            ("concurrency = -1", "`concurrency` takes a whole number"),
            ("concurrency", "`concurrency` takes a limit"),
            (
                "concurrency(by = [a])",
                "`concurrency(...)` needs a `limit`, like `concurrency(limit = 1, by = [customer_id])`",
            ),
            ("concurrency(limit = 0)", "`limit` must be at least 1"),
            (
                "concurrency(limit = 1.5)",
                "`limit` takes a whole number, like `limit = 1`",
            ),
            (
                "concurrency(limit = 1, within = \"1h\")",
                "unknown `concurrency` key `within`: expected one of `limit`, `by`",
            ),
            (
                "concurrency(limit = 1, limit = 2)",
                "duplicate `concurrency` key `limit`",
            ),
        ] {
            let errors = errors(args);
            assert_eq!(errors.len(), 1, "{args}: {errors:?}");
            assert!(errors[0].starts_with(expected), "{args}: {errors:?}");
        }
        // Every bad part is reported, and the keys after them parsed still.
        let errors = errors(
            r#"unique(by = [], bogus = 1, states = ["x", "Enqueued", "y"]), concurrency(by = [a, a]), timeout = "0s""#,
        );
        assert_eq!(errors.len(), 7, "{errors:?}");
    }

    #[test]
    fn unknown_key_lists_the_new_keys() {
        let errors = errors("uniq");
        assert_eq!(
            errors,
            [
                "unknown #[job] key `uniq`: expected one of `name`, `queue`, `retries`, `backoff`, `timeout`, `priority`, `unique`, `concurrency`, `crate`"
            ]
        );
    }

    /// The errors of `#[job(args)]`, one message each.
    fn errors(args: &str) -> Vec<String> {
        let mut cx = Ctxt::default();
        let fn_ident: Ident = syn::parse_str("f").unwrap();
        JobAttrs::from_args(&mut cx, args.parse().unwrap(), &fn_ident);
        match cx.check() {
            Ok(()) => Vec::new(),
            Err(error) => error.into_iter().map(|e| e.to_string()).collect(),
        }
    }

    #[test]
    fn bad_values_are_each_an_error() {
        let priority = "`priority` takes a whole number from -32768 to 32767, like `priority = -5`; lower numbers run first";
        for (args, expected) in [
            (r#"timeout = "0s""#, "`timeout` must be longer than zero"),
            (
                r#"timeout = "soon""#,
                "invalid `timeout`: `soon` does not start",
            ),
            (
                "timeout = 30",
                "`timeout` takes a string, like `timeout = \"30s\"`",
            ),
            ("priority = 40000", priority),
            ("priority = -32769", priority),
            (r#"priority = "high""#, priority),
            ("priority = -x", priority),
            ("priority = 1.5", priority),
            ("backoff = []", "`backoff` needs at least one delay"),
            (
                r#"backoff = ["1s", "1 week"]"#,
                "invalid `backoff`: unknown unit `week`",
            ),
            (
                r#"backoff = ["1s", 30]"#,
                "each delay of a `backoff` list is a string",
            ),
            (
                "backoff = 30",
                "`backoff` takes a delay (`backoff = \"30s\"`), a list of delays",
            ),
            ("backoff = || 1", "`backoff` takes a delay"),
        ] {
            let errors = errors(args);
            assert_eq!(errors.len(), 1, "{args}: {errors:?}");
            assert!(errors[0].starts_with(expected), "{args}: {errors:?}");
        }
        // Every bad element of a list is reported, and the other keys
        // parsed still.
        let errors =
            errors(r#"backoff = ["x", "1s", "2 weeks"], priority = "high", timeout = "0ms""#);
        assert_eq!(errors.len(), 4, "{errors:?}");
    }
}
