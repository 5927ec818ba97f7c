//! `#[job(...)]`'s keys: parsed with `syn::meta::parser`, then resolved
//! into [`JobAttrs`], where every default is decided, once. The expander
//! reads the resolved values and decides nothing.

use std::time::Duration;

use proc_macro2::{Span, TokenStream};
use syn::meta::ParseNestedMeta;
use syn::parse::Parser;
use syn::{Ident, Lit, LitStr};

use super::ctxt::Ctxt;
use super::duration;

/// The keys `#[job]` accepts, in the order the error message lists them.
pub const JOB_KEYS: &[&str] = &["name", "queue", "retries", "backoff", "crate"];

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

/// The delay before each retry.
pub enum Backoff {
    /// `backoff = "30s"`: always this delay.
    Fixed(Duration),
    /// No key: Hangfire's growing delay (`Backoff::Hangfire`).
    Hangfire,
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
                Some(backoff) => Backoff::Fixed(backoff.value),
                None => Backoff::Hangfire,
            },
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
    backoff: Option<Spanned<Duration>>,
    crate_path: Option<syn::Path>,
}

impl GivenAttrs {
    /// Parses the attribute's arguments, recording every error in `cx`.
    fn parse(cx: &mut Ctxt, args: TokenStream) -> GivenAttrs {
        let mut attrs = GivenAttrs::default();
        let mut seen: Vec<String> = Vec::new();
        let parser = syn::meta::parser(|meta| {
            let key = key_of(&meta);
            if !JOB_KEYS.contains(&key.as_str()) {
                cx.error_spanned_by(
                    &meta.path,
                    format!(
                        "unknown #[job] key `{}`: expected one of {}",
                        path_text(&meta.path),
                        JOB_KEYS
                            .iter()
                            .map(|k| format!("`{k}`"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                );
                return skip_value(&meta);
            }
            if seen.contains(&key) {
                cx.error_spanned_by(&meta.path, format!("duplicate #[job] key `{key}`"));
                return skip_value(&meta);
            }
            seen.push(key.clone());
            // A value of the wrong kind is recorded and parsing goes on; only
            // broken syntax (`retries =` with nothing after) stops it.
            let lit: Lit = meta.value()?.parse()?;
            match key.as_str() {
                "name" => attrs.name = parse_text(cx, lit, "name", "\"send_welcome_email\""),
                "queue" => attrs.queue = parse_text(cx, lit, "queue", "\"mail\""),
                "retries" => attrs.retries = parse_retries(cx, lit),
                "backoff" => attrs.backoff = parse_backoff(cx, lit),
                "crate" => attrs.crate_path = parse_crate(cx, lit),
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
        let _content;
        syn::parenthesized!(_content in meta.input);
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

fn parse_backoff(cx: &mut Ctxt, lit: Lit) -> Option<Spanned<Duration>> {
    let lit = string_value(cx, lit, "backoff", "\"30s\"")?;
    match duration::parse(&lit.value()) {
        Ok(value) => Some(Spanned {
            value,
            span: lit.span(),
        }),
        Err(message) => {
            cx.error_spanned_by(&lit, format!("invalid `backoff`: {message}"));
            None
        }
    }
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
}
