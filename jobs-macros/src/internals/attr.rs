//! `#[job(...)]`'s keys, parsed with `syn::meta::parser` into [`JobAttrs`].

use std::time::Duration;

use proc_macro2::{Span, TokenStream};
use syn::meta::ParseNestedMeta;
use syn::parse::Parser;
use syn::{Lit, LitStr};

use super::ctxt::Ctxt;
use super::duration;

/// The keys `#[job]` accepts, in the order the error message lists them.
pub const JOB_KEYS: &[&str] = &["name", "queue", "retries", "backoff", "crate"];

/// A value and the span of the literal it came from.
pub struct Spanned<T> {
    pub value: T,
    pub span: Span,
}

/// The parsed keys of one `#[job(...)]`; `None` for a key not given.
#[derive(Default)]
pub struct JobAttrs {
    pub name: Option<Spanned<String>>,
    pub queue: Option<Spanned<String>>,
    pub retries: Option<Spanned<u32>>,
    pub backoff: Option<Spanned<Duration>>,
    pub crate_path: Option<syn::Path>,
}

impl JobAttrs {
    /// Parses the attribute's arguments, recording every error in `cx`.
    pub fn parse(cx: &mut Ctxt, args: TokenStream) -> JobAttrs {
        let mut attrs = JobAttrs::default();
        let mut seen: Vec<String> = Vec::new();
        let parser = syn::meta::parser(|meta| {
            let key = meta
                .path
                .get_ident()
                .map(|ident| ident.to_string())
                .unwrap_or_default();
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

/// Consumes `= value` or `(...)` after a key that is refused, so that the
/// keys after it are still parsed and checked.
fn skip_value(meta: &ParseNestedMeta) -> syn::Result<()> {
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
