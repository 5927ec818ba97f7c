//! One `#[job]` parsed into the model the expander reads: [`Job`], made of
//! the resolved attribute ([`JobAttrs`]) and the function ([`JobFn`]).

use proc_macro2::TokenStream;
use quote::format_ident;
use syn::{Attribute, FnArg, Ident, ItemFn, Pat, ReturnType, Type, Visibility};

use super::attr::{JobAttrs, unraw};
use super::case::upper_camel;
use super::ctxt::Ctxt;

/// Everything the expander needs of one `#[job]`, every default resolved.
pub struct Job {
    pub attrs: JobAttrs,
    pub func: JobFn,
    /// The argument struct's name: the function's name in UpperCamelCase
    /// (`send_welcome_email` -> `SendWelcomeEmail`), spanned on it.
    pub struct_ident: Ident,
}

impl Job {
    /// Parses `#[job(args)] item`, recording every problem in `cx`; the
    /// model is complete even then, so that all problems are found at once.
    pub fn from_ast(cx: &mut Ctxt, args: TokenStream, item: &ItemFn) -> Job {
        let attrs = JobAttrs::from_args(cx, args, &item.sig.ident);
        let func = JobFn::from_item(cx, item);
        let struct_ident = format_ident!(
            "{}",
            upper_camel(&func.ident.to_string()),
            span = func.ident.span()
        );
        Job {
            attrs,
            func,
            struct_ident,
        }
    }
}

/// One job argument: a parameter other than the `JobContext`.
pub struct JobArg {
    pub ident: Ident,
    /// The name as written, without `r#`: the field's name in `Debug`.
    pub name: String,
    pub ty: Type,
}

/// What the function returns.
pub enum Output {
    /// Nothing, or `()`.
    Unit,
    /// Some other type; it must implement `IntoJobResult`, which the
    /// compiler checks on `error`'s span when the type is written
    /// `Result<(), E>` (`E` must be `Display`), else on the whole type's.
    Type {
        ty: Box<Type>,
        error: Option<Box<Type>>,
    },
}

/// The function's parts that the expander needs.
pub struct JobFn {
    pub vis: Visibility,
    pub ident: Ident,
    /// The `#[doc]` attributes, reused on the argument struct.
    pub docs: Vec<Attribute>,
    /// Whether the first parameter is a `JobContext`.
    pub takes_context: bool,
    /// The name of the `JobContext` parameter, when it is a plain name: for
    /// the error of a `by` list naming it.
    pub context_ident: Option<Ident>,
    pub args: Vec<JobArg>,
    /// The `#[parent]` parameter of a continuation: its parent's result,
    /// not stored with the arguments; with its place among them.
    pub parent: Option<(usize, JobArg)>,
    pub output: Output,
}

impl JobFn {
    /// The parameters after the `JobContext`, in the function's order.
    pub fn call_idents(&self) -> Vec<&Ident> {
        let mut idents: Vec<&Ident> = self.args.iter().map(|arg| &arg.ident).collect();
        if let Some((index, parent)) = &self.parent {
            idents.insert(*index, &parent.ident);
        }
        idents
    }
}

/// Whether `attr` is `#[parent]`.
pub fn is_parent_attr(attr: &Attribute) -> bool {
    attr.path().is_ident("parent")
}

impl JobFn {
    /// Reads the function, recording every problem in `cx`; every problem is
    /// spanned on its own token.
    pub fn from_item(cx: &mut Ctxt, item: &ItemFn) -> JobFn {
        let sig = &item.sig;
        if sig.asyncness.is_none() {
            cx.error_spanned_by(
                sig.fn_token,
                "#[job] functions must be `async fn`: a job runs on the server's async workers",
            );
        }
        if !sig.generics.params.is_empty() || sig.generics.where_clause.is_some() {
            cx.error_spanned_by(
                &sig.generics,
                "#[job] functions cannot be generic: a stored job must name one concrete function",
            );
        }
        if let Some(variadic) = &sig.variadic {
            cx.error_spanned_by(variadic, "#[job] functions cannot be variadic");
        }

        let mut takes_context = false;
        let mut context_ident = None;
        let mut args = Vec::new();
        let mut parent: Option<(usize, JobArg)> = None;
        for (index, input) in sig.inputs.iter().enumerate() {
            let typed = match input {
                FnArg::Receiver(receiver) => {
                    cx.error_spanned_by(
                        receiver,
                        "#[job] functions cannot take `self`: a job is a free function whose arguments are stored; pass what you need as arguments",
                    );
                    continue;
                }
                FnArg::Typed(typed) => typed,
            };
            if is_job_context(&typed.ty) {
                if let Some(attr) = typed.attrs.iter().find(|attr| is_parent_attr(attr)) {
                    cx.error_spanned_by(
                        attr,
                        "`#[parent]` goes on the parameter that takes the parent's result, not on the `JobContext`",
                    );
                }
                if let Pat::Ident(pat) = &*typed.pat {
                    context_ident = Some(pat.ident.clone());
                }
                if index == 0 {
                    takes_context = true;
                } else {
                    cx.error_spanned_by(&typed.ty, "`JobContext` must be the first parameter");
                }
                continue;
            }
            let ident = match &*typed.pat {
                Pat::Ident(pat) if pat.by_ref.is_none() && pat.subpat.is_none() => {
                    pat.ident.clone()
                }
                other => {
                    cx.error_spanned_by(
                        other,
                        "#[job] arguments must be plain names, like `user_id: i64`",
                    );
                    continue;
                }
            };
            check_owned(cx, &typed.ty);
            let arg = JobArg {
                name: unraw(&ident),
                ident,
                ty: (*typed.ty).clone(),
            };
            match typed.attrs.iter().find(|attr| is_parent_attr(attr)) {
                Some(attr) if parent.is_some() => cx.error_spanned_by(
                    attr,
                    "only one parameter can be `#[parent]`: a continuation has one parent",
                ),
                Some(attr) if !matches!(attr.meta, syn::Meta::Path(_)) => cx.error_spanned_by(
                    attr,
                    "`#[parent]` takes no arguments: write `#[parent] name: Type`",
                ),
                Some(_) => parent = Some((args.len(), arg)),
                None => args.push(arg),
            }
        }

        let output = match &sig.output {
            ReturnType::Default => Output::Unit,
            ReturnType::Type(_, ty) => output_type(cx, ty),
        };

        JobFn {
            vis: item.vis.clone(),
            ident: sig.ident.clone(),
            docs: item
                .attrs
                .iter()
                .filter(|attr| attr.path().is_ident("doc"))
                .cloned()
                .collect(),
            takes_context,
            context_ident,
            args,
            parent,
            output,
        }
    }
}

fn is_job_context(ty: &Type) -> bool {
    match ty {
        Type::Path(path) => path
            .path
            .segments
            .last()
            .is_some_and(|segment| segment.ident == "JobContext"),
        _ => false,
    }
}

/// Arguments are stored, so they must be owned values: no references, no
/// `impl Trait`, no trait objects.
fn check_owned(cx: &mut Ctxt, ty: &Type) {
    match ty {
        Type::Reference(reference) => cx.error_spanned_by(
            reference,
            "#[job] arguments must be owned: they are stored and decoded later; take `String` for `&str`, `Vec<T>` for `&[T]`",
        ),
        Type::ImplTrait(_) | Type::TraitObject(_) => cx.error_spanned_by(
            ty,
            "#[job] arguments must be concrete types: they are stored as JSON and decoded later",
        ),
        Type::Paren(inner) => check_owned(cx, &inner.elem),
        Type::Group(inner) => check_owned(cx, &inner.elem),
        _ => {}
    }
}

/// `()` and `Result<T, E>` pass (`T` is the job's result); types that are
/// not paths are refused here. Other paths (aliases) are left to the
/// compiler's `IntoJobResult` check.
fn output_type(cx: &mut Ctxt, ty: &Type) -> Output {
    match ty {
        Type::Tuple(tuple) if tuple.elems.is_empty() => Output::Unit,
        Type::Path(path) => {
            let mut error = None;
            if let Some(segment) = path.path.segments.last()
                && segment.ident == "Result"
                && let syn::PathArguments::AngleBracketed(generics) = &segment.arguments
                && let Some(syn::GenericArgument::Type(err)) = generics.args.iter().nth(1)
            {
                error = Some(Box::new(err.clone()));
            }
            Output::Type {
                ty: Box::new(ty.clone()),
                error,
            }
        }
        _ => {
            cx.error_spanned_by(
                ty,
                "unsupported #[job] return type: expected `()` or `Result<T, E>` with `E: Display`",
            );
            Output::Unit
        }
    }
}
