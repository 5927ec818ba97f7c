//! `#[job]`: parse the attribute and the function into the model, check it,
//! then expand the model into the argument struct, the `Job` impl, the
//! registration and the typed helpers.

use proc_macro2::{Group, Span, TokenStream, TokenTree};
use quote::{format_ident, quote, quote_spanned};
use syn::ItemFn;

use crate::internals::ast::{JobFn, Output};
use crate::internals::attr::JobAttrs;
use crate::internals::case::upper_camel;
use crate::internals::check;
use crate::internals::ctxt::{Ctxt, item_with_error};

/// Expands `#[job(args)] item`.
pub fn expand(args: TokenStream, item: TokenStream) -> TokenStream {
    let function: ItemFn = match syn::parse2(item.clone()) {
        Ok(function) => function,
        Err(_) => {
            let error = syn::Error::new(Span::call_site(), "#[job] goes on an `async fn`");
            return item_with_error(item, error);
        }
    };
    let mut cx = Ctxt::default();
    let attrs = JobAttrs::parse(&mut cx, args);
    let job = JobFn::from_item(&mut cx, &function);
    check::check(&mut cx, &job);
    match cx.check() {
        Ok(()) => {
            let generated = generate(&attrs, &job);
            quote! {
                #function
                #generated
            }
        }
        Err(error) => item_with_error(item, error),
    }
}

fn generate(attrs: &JobAttrs, job: &JobFn) -> TokenStream {
    let krate = match &attrs.crate_path {
        Some(path) => quote!(#path),
        None => quote!(::jobs),
    };
    let private = quote!(#krate::__private);
    let private_path = format!("{}::__private", quote!(#krate)).replace(' ', "");
    let serde_path = format!("{private_path}::serde");

    let vis = &job.vis;
    let fn_ident = &job.ident;
    let struct_ident = format_ident!(
        "{}",
        upper_camel(&fn_ident.to_string()),
        span = fn_ident.span()
    );
    let name = attrs
        .name
        .as_ref()
        .map(|name| name.value.clone())
        .unwrap_or_else(|| fn_ident.to_string().trim_start_matches("r#").to_owned());
    let queue = attrs
        .queue
        .as_ref()
        .map(|queue| queue.value.clone())
        .unwrap_or_else(|| "default".to_owned());
    let retries = match &attrs.retries {
        Some(retries) => {
            let value = retries.value;
            quote_spanned!(retries.span=> #value)
        }
        None => quote!(#private::RetryPolicy::DEFAULT_RETRIES),
    };
    let backoff = match &attrs.backoff {
        Some(backoff) => {
            let millis = u64::try_from(backoff.value.as_millis()).unwrap_or(u64::MAX);
            quote!(#private::Backoff::Fixed(#private::Duration::from_millis(#millis)))
        }
        None => quote!(#private::Backoff::Hangfire),
    };

    let docs = &job.docs;
    let arg_idents: Vec<_> = job.args.iter().map(|arg| &arg.ident).collect();
    let arg_types: Vec<_> = job.args.iter().map(|arg| &arg.ty).collect();
    let struct_name = struct_ident.to_string();
    let arg_names: Vec<_> = arg_idents
        .iter()
        .map(|ident| ident.to_string().trim_start_matches("r#").to_owned())
        .collect();
    // Everything generated that needs the arguments to be storable holds
    // only when they are (`where for<'__jobs> T: JobArgument`; the unused
    // binder keeps rustc from rejecting a false bound on a concrete type), so
    // that an argument that cannot be stored is reported once, by the
    // assertion below on its type, not again by each derive, impl and helper.
    // `Debug` and `Clone` are likewise implemented when every argument has
    // them, instead of being required.
    let serde_bound = arg_types
        .iter()
        .map(|ty| format!("for<'__jobs> {}: {private_path}::JobArgument,", quote!(#ty)))
        .collect::<String>();
    let job_bounds: Vec<_> = arg_types
        .iter()
        .map(|ty| quote!(for<'__jobs> #ty: #private::JobArgument,))
        .collect();
    let field_docs = arg_idents
        .iter()
        .map(|ident| format!("The `{ident}` argument."));
    let struct_doc = format!(
        "The arguments of the [`{fn_ident}`] job, stored as JSON under the job name `{name}`."
    );
    let module_doc = format!(
        "Typed `enqueue`, `schedule_in` and `schedule_at` for the [`{fn_ident}`](fn@{fn_ident}) job: `{fn_ident}::enqueue(&client, ...)`. An empty enum, so that it shares the function's name without clashing with it."
    );

    // One assertion per argument, spanned on its type, so that a type that
    // cannot be stored is reported on the user's token.
    let argument_checks = arg_types.iter().map(|ty| {
        quote_spanned! {syn::spanned::Spanned::span(ty)=>
            __assert_job_argument::<#ty>();
        }
    });

    let context = format_ident!("__jobs_context");
    let call_args = if job.takes_context {
        quote!(#context, #(#arg_idents),*)
    } else {
        quote!(#(#arg_idents),*)
    };
    let ignore_context = if job.takes_context {
        quote!()
    } else {
        quote!(let _ = #context;)
    };
    let into_result = match &job.output {
        Output::Unit => quote! {
            #fn_ident(#call_args).await;
            ::core::result::Result::Ok(())
        },
        Output::Type { ty, error } => {
            let span = match error {
                Some(error) => syn::spanned::Spanned::span(error),
                None => syn::spanned::Spanned::span(ty),
            };
            // Every token of the conversion's path, the copied type's too,
            // carries that span, so that rustc reports a missing
            // `IntoJobResult` (or `E: Display`) there.
            let into_job_result = respan(
                quote!(<#ty as #private::IntoJobResult>::into_job_result),
                span,
            );
            quote!(#into_job_result(#fn_ident(#call_args).await))
        }
    };

    quote! {
        #(#docs)*
        #[doc = ""]
        #[doc = #struct_doc]
        #[derive(#private::serde::Serialize, #private::serde::Deserialize)]
        #[serde(crate = #serde_path, bound = #serde_bound)]
        #vis struct #struct_ident {
            #(
                #[doc = #field_docs]
                pub #arg_idents: #arg_types,
            )*
        }

        impl ::core::fmt::Debug for #struct_ident
        where
            #(for<'__jobs> #arg_types: ::core::fmt::Debug,)*
        {
            fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
                f.debug_struct(#struct_name)
                    #(.field(#arg_names, &self.#arg_idents))*
                    .finish()
            }
        }

        impl ::core::clone::Clone for #struct_ident
        where
            #(for<'__jobs> #arg_types: ::core::clone::Clone,)*
        {
            fn clone(&self) -> Self {
                #struct_ident { #(#arg_idents: ::core::clone::Clone::clone(&self.#arg_idents)),* }
            }
        }

        const _: () = {
            fn __assert_job_argument<T: #private::JobArgument>() {}
            #[allow(dead_code)]
            fn __assert_job_arguments() {
                #(#argument_checks)*
            }
        };

        impl #private::Job for #struct_ident
        where
            #(#job_bounds)*
        {
            const NAME: &'static str = #name;
            const QUEUE: &'static str = #queue;
            const RETRY_POLICY: #private::RetryPolicy = #private::RetryPolicy::retries(#retries).with_backoff(#backoff);

            fn perform(self, #context: #private::JobContext) -> impl #private::Future<Output = #private::JobResult> + ::core::marker::Send {
                async move {
                    #ignore_context
                    let #struct_ident { #(#arg_idents),* } = self;
                    #into_result
                }
            }
        }

        impl #struct_ident
        where
            #(#job_bounds)*
        {
            /// Enqueues this job on its queue; returns the new job's id.
            ///
            /// # Errors
            /// When the arguments do not serialize or the storage fails.
            #vis async fn enqueue(self, client: &#private::Client) -> #private::Result<#private::JobId> {
                client.enqueue(self).await
            }

            /// Schedules this job to be enqueued after `delay`; returns its id.
            ///
            /// # Errors
            /// When the arguments do not serialize or the storage fails.
            #vis async fn schedule_in(self, client: &#private::Client, delay: #private::Duration) -> #private::Result<#private::JobId> {
                client.schedule_in(self, delay).await
            }

            /// Schedules this job to be enqueued at `at` (UTC); returns its id.
            ///
            /// # Errors
            /// When the arguments do not serialize or the storage fails.
            #vis async fn schedule_at(self, client: &#private::Client, at: #private::DateTime<#private::Utc>) -> #private::Result<#private::JobId> {
                client.schedule_at(self, at).await
            }
        }

        const _: () = {
            #[allow(dead_code)]
            struct __Registration<J>(::core::marker::PhantomData<J>);

            // Picked only when the arguments cannot be stored: the assertion
            // above reports that on each argument, and this keeps the
            // registration from repeating it.
            #[allow(dead_code)]
            trait __Unregistered {
                const REGISTRATION: #private::JobRegistration = #private::JobRegistration {
                    name: "",
                    queue: "",
                    retry_policy: #private::RetryPolicy::retries(0),
                    file: ::core::file!(),
                    line: ::core::line!(),
                    decode: |_, _| ::core::unreachable!(),
                };
            }

            impl<J> __Unregistered for __Registration<J> {}

            impl<J: #private::Job> __Registration<J> {
                const REGISTRATION: #private::JobRegistration =
                    #private::JobRegistration::of::<J>(::core::file!(), ::core::line!());
            }

            #private::inventory::submit! {
                __Registration::<#struct_ident>::REGISTRATION
            }
        };

        #[doc = #module_doc]
        #[allow(non_camel_case_types)]
        #vis enum #fn_ident {}

        impl #fn_ident
        where
            #(#job_bounds)*
        {
            /// Enqueues the job with these arguments; returns its id.
            ///
            /// # Errors
            /// When the arguments do not serialize or the storage fails.
            #vis async fn enqueue(client: &#private::Client, #(#arg_idents: #arg_types),*) -> #private::Result<#private::JobId> {
                client.enqueue(#struct_ident { #(#arg_idents),* }).await
            }

            /// Schedules the job to be enqueued after `delay`; returns its id.
            ///
            /// # Errors
            /// When the arguments do not serialize or the storage fails.
            #vis async fn schedule_in(client: &#private::Client, delay: #private::Duration, #(#arg_idents: #arg_types),*) -> #private::Result<#private::JobId> {
                client.schedule_in(#struct_ident { #(#arg_idents),* }, delay).await
            }

            /// Schedules the job to be enqueued at `at` (UTC); returns its id.
            ///
            /// # Errors
            /// When the arguments do not serialize or the storage fails.
            #vis async fn schedule_at(client: &#private::Client, at: #private::DateTime<#private::Utc>, #(#arg_idents: #arg_types),*) -> #private::Result<#private::JobId> {
                client.schedule_at(#struct_ident { #(#arg_idents),* }, at).await
            }
        }
    }
}

/// `tokens` with every span, in groups too, set to `span`.
fn respan(tokens: TokenStream, span: Span) -> TokenStream {
    tokens
        .into_iter()
        .map(|token| match token {
            TokenTree::Group(group) => {
                let mut group = Group::new(group.delimiter(), respan(group.stream(), span));
                group.set_span(span);
                TokenTree::Group(group)
            }
            mut token => {
                token.set_span(span);
                token
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn expand_str(args: &str, item: &str) -> String {
        expand(args.parse().unwrap(), item.parse().unwrap()).to_string()
    }

    #[test]
    fn generates_struct_impl_registration_and_helpers() {
        let out = expand_str(
            r#"queue = "mail", retries = 5"#,
            "async fn send_welcome_email(user_id: i64, template: String) -> Result<(), String> { Ok(()) }",
        );
        assert!(out.contains("struct SendWelcomeEmail"), "{out}");
        assert!(
            out.contains("const NAME : & 'static str = \"send_welcome_email\""),
            "{out}"
        );
        assert!(
            out.contains("const QUEUE : & 'static str = \"mail\""),
            "{out}"
        );
        assert!(out.contains("retries (5u32)"), "{out}");
        assert!(out.contains("inventory :: submit !"), "{out}");
        // proc-macro2 prints an empty brace group as `{ }`.
        assert!(out.contains("enum send_welcome_email { }"), "{out}");
        assert!(!out.contains("compile_error"), "{out}");
    }

    #[test]
    fn impls_hold_only_for_storable_arguments() {
        let out = expand_str("", "async fn f(user: User) {}");
        let bound = "for < '__jobs > User : :: jobs :: __private :: JobArgument";
        assert!(out.contains(&format!("where {bound} ,")), "{out}");
        assert!(
            out.contains("bound = \"for<'__jobs> User: ::jobs::__private::JobArgument,\""),
            "{out}"
        );
        assert!(
            out.contains("where for < '__jobs > User : :: core :: clone :: Clone"),
            "{out}"
        );
        assert!(!out.contains("derive (:: core :: clone :: Clone"), "{out}");
    }

    #[test]
    fn name_key_overrides_the_stored_name() {
        let out = expand_str(r#"name = "mail.welcome""#, "async fn f() {}");
        assert!(out.contains("\"mail.welcome\""), "{out}");
    }

    #[test]
    fn crate_key_changes_every_path() {
        let out = expand_str(r#"crate = "::my_app::jobs""#, "async fn f(x: i64) {}");
        assert!(out.contains(":: my_app :: jobs :: __private"), "{out}");
        assert!(
            out.contains("\"::my_app::jobs::__private::serde\""),
            "{out}"
        );
        let elsewhere = out.replace(":: my_app :: jobs ::", "");
        assert!(!elsewhere.contains(":: jobs ::"), "{out}");
    }

    #[test]
    fn every_error_is_reported_at_once() {
        let out = expand_str(r#"bogus = 1, retries = "x""#, "fn f<T>(self) {}");
        for expected in [
            "unknown #[job] key `bogus`",
            "must be `async fn`",
            "cannot be generic",
            "cannot take `self`",
        ] {
            assert!(out.contains(expected), "missing {expected:?} in {out}");
        }
        assert!(out.contains("fn f"), "the original function is kept: {out}");
    }
}
