//! `#[job]`: parse the attribute and the function into the model
//! ([`Job`], every default resolved), check it, then expand the model part
//! by part: the argument struct, its `Debug` and `Clone`, the argument
//! assertions, the `Job` impl, the enqueue helpers and the registration.
//! Each part is one function that reads only the model.

use std::time::Duration;

use proc_macro2::{Group, Span, TokenStream, TokenTree};
use quote::{format_ident, quote, quote_spanned};
use syn::ItemFn;

use crate::internals::ast::{Job, Output, is_parent_attr};
use crate::internals::attr::{Backoff, Retries};
use crate::internals::check;
use crate::internals::ctxt::{Ctxt, item_with_error};

/// Expands `#[job(args)] item`.
pub fn expand(args: TokenStream, item: TokenStream) -> TokenStream {
    expand_with(args, item, "#[job]", |_, _| TokenStream::new())
}

/// Expands `item` as `#[job(args)]` does, plus what `more` generates from
/// the checked model (`#[recurring]`'s registration); `attribute` names the
/// attribute in errors.
pub fn expand_with(
    args: TokenStream,
    item: TokenStream,
    attribute: &str,
    more: impl FnOnce(&mut Ctxt, &Job) -> TokenStream,
) -> TokenStream {
    let mut function: ItemFn = match syn::parse2(item.clone()) {
        Ok(function) => function,
        Err(_) => {
            let error = syn::Error::new(
                Span::call_site(),
                format!("{attribute} goes on an `async fn`"),
            );
            return item_with_error(item, error);
        }
    };
    let mut cx = Ctxt::default();
    let job = Job::from_ast(&mut cx, args, &function);
    check::check(&mut cx, &job);
    let more = more(&mut cx, &job);
    strip_parent_attrs(&mut function);
    match cx.check() {
        Ok(()) => {
            let generated = generate(&job);
            quote! {
                #function
                #generated
                #more
            }
        }
        Err(error) => item_with_error(quote!(#function), error),
    }
}

/// Removes `#[parent]` from the function's parameters: it is ours, not an
/// attribute the compiler knows.
fn strip_parent_attrs(function: &mut ItemFn) {
    for input in &mut function.sig.inputs {
        if let syn::FnArg::Typed(typed) = input {
            typed.attrs.retain(|attr| !is_parent_attr(attr));
        }
    }
}

/// The type of the job's result: `()`, or `T` of `Result<T, E>` (as
/// `IntoJobResult::Output`, so that an alias works too).
fn result_type(job: &Job) -> TokenStream {
    let private = private(job);
    match &job.func.output {
        Output::Unit => quote!(()),
        Output::Type { ty, .. } => quote!(<#ty as #private::IntoJobResult>::Output),
    }
}

/// `<crate>::__private`, the one path generated code names.
pub fn private(job: &Job) -> TokenStream {
    let krate = &job.attrs.crate_path;
    quote!(#krate::__private)
}

/// Everything `#[job]` adds next to the function.
fn generate(job: &Job) -> TokenStream {
    let parts = [
        argument_struct(job),
        debug_and_clone(job),
        argument_assertions(job),
        job_impl(job),
        struct_helpers(job),
        registration(job),
        fn_helpers(job),
    ];
    quote!(#(#parts)*)
}

/// [`private`] as text, for the paths that serde's attributes take as strings.
fn private_text(job: &Job) -> String {
    private(job).to_string().replace(' ', "")
}

/// `for<'__jobs> T: JobArgument,` for each argument type `T`.
///
/// Everything generated that needs the arguments to be storable holds only
/// when they are (the unused binder keeps rustc from rejecting a false bound
/// on a concrete type), so that an argument that cannot be stored is
/// reported once, by [`argument_assertions`] on its type, not again by each
/// derive, impl and helper.
fn storable_bounds(job: &Job) -> Vec<TokenStream> {
    let private = private(job);
    let mut bounds: Vec<TokenStream> = job
        .func
        .args
        .iter()
        .chain(job.func.parent.as_ref().map(|(_, parent)| parent))
        .map(|arg| {
            let ty = &arg.ty;
            quote!(for<'__jobs> #ty: #private::JobArgument,)
        })
        .collect();
    // The same for the return type: one that is not a job's result is
    // reported once, by the result assertion, not by every helper naming
    // the result's type.
    if let Output::Type { ty, .. } = &job.func.output {
        bounds.push(quote!(for<'__jobs> #ty: #private::IntoJobResult,));
    }
    bounds
}

/// The span to report a return type that is no job's result on: its
/// error type when written `Result<T, E>` (`E` must be `Display`), else
/// the whole type.
fn result_span(job: &Job) -> Option<Span> {
    match &job.func.output {
        Output::Unit => None,
        Output::Type { ty, error } => Some(match error {
            Some(error) => syn::spanned::Spanned::span(error),
            None => syn::spanned::Spanned::span(ty),
        }),
    }
}

/// The argument struct: one public field per argument, (de)serialized with
/// the facade's serde.
fn argument_struct(job: &Job) -> TokenStream {
    let private = private(job);
    let private_text = private_text(job);
    let serde_path = format!("{private_text}::serde");
    let serde_bound: String = job
        .func
        .args
        .iter()
        .map(|arg| {
            let ty = &arg.ty;
            format!("for<'__jobs> {}: {private_text}::JobArgument,", quote!(#ty))
        })
        .collect();
    let docs = &job.func.docs;
    let vis = &job.func.vis;
    let struct_ident = &job.struct_ident;
    let struct_doc = format!(
        "The arguments of the [`{}`] job, stored as JSON under the job name `{}`.",
        job.func.ident, job.attrs.name
    );
    let fields = job.func.args.iter().map(|arg| {
        let (ident, ty) = (&arg.ident, &arg.ty);
        let doc = format!("The `{ident}` argument.");
        quote! {
            #[doc = #doc]
            pub #ident: #ty,
        }
    });
    quote! {
        #(#docs)*
        #[doc = ""]
        #[doc = #struct_doc]
        #[derive(#private::serde::Serialize, #private::serde::Deserialize)]
        #[serde(crate = #serde_path, bound = #serde_bound)]
        #vis struct #struct_ident {
            #(#fields)*
        }
    }
}

/// `Debug` and `Clone` for the argument struct, when every argument has
/// them (instead of requiring them).
fn debug_and_clone(job: &Job) -> TokenStream {
    let struct_ident = &job.struct_ident;
    let struct_name = struct_ident.to_string();
    let idents: Vec<_> = job.func.args.iter().map(|arg| &arg.ident).collect();
    let types: Vec<_> = job.func.args.iter().map(|arg| &arg.ty).collect();
    let names = job.func.args.iter().map(|arg| &arg.name);
    quote! {
        impl ::core::fmt::Debug for #struct_ident
        where
            #(for<'__jobs> #types: ::core::fmt::Debug,)*
        {
            fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
                f.debug_struct(#struct_name)
                    #(.field(#names, &self.#idents))*
                    .finish()
            }
        }

        impl ::core::clone::Clone for #struct_ident
        where
            #(for<'__jobs> #types: ::core::clone::Clone,)*
        {
            fn clone(&self) -> Self {
                #struct_ident { #(#idents: ::core::clone::Clone::clone(&self.#idents)),* }
            }
        }
    }
}

/// One assertion per argument, spanned on its type, so that a type that
/// cannot be stored is reported on the user's token.
fn argument_assertions(job: &Job) -> TokenStream {
    let private = private(job);
    let checks = job
        .func
        .args
        .iter()
        .chain(job.func.parent.as_ref().map(|(_, parent)| parent))
        .map(|arg| {
            let ty = &arg.ty;
            quote_spanned! {syn::spanned::Spanned::span(ty)=>
                __assert_job_argument::<#ty>();
            }
        });
    // Every token of the assertion, the copied type's too, carries the
    // span, so that rustc reports a missing `IntoJobResult` (or
    // `E: Display`) there.
    let result = match (&job.func.output, result_span(job)) {
        (Output::Type { ty, .. }, Some(span)) => {
            respan(quote!(__assert_job_result::<#ty>();), span)
        }
        _ => TokenStream::new(),
    };
    quote! {
        const _: () = {
            fn __assert_job_argument<T: #private::JobArgument>() {}
            fn __assert_job_result<T: #private::IntoJobResult>() {}
            #[allow(dead_code)]
            fn __assert_job_arguments() {
                #(#checks)*
                #result
            }
        };
    }
}

/// `impl Job`: the stored name, the queue, the retry policy, the timeout,
/// the priority, the uniqueness and the concurrency limit when given (with
/// their key functions when `by` names the key's arguments), and
/// `perform`, which calls the function with the stored arguments.
fn job_impl(job: &Job) -> TokenStream {
    let private = private(job);
    let struct_ident = &job.struct_ident;
    let bounds = storable_bounds(job);
    let name = &job.attrs.name;
    let queue = &job.attrs.queue;
    let retries = match &job.attrs.retries {
        Retries::Given(retries) => {
            let value = retries.value;
            quote_spanned!(retries.span=> #value)
        }
        Retries::Default => quote!(#private::RetryPolicy::DEFAULT_RETRIES),
    };
    let backoff = match &job.attrs.backoff {
        Backoff::Fixed(delay) => {
            let delay = duration(job, *delay);
            quote!(#private::Backoff::Fixed(#delay))
        }
        Backoff::Steps(delays) => {
            let delays = delays.iter().map(|delay| duration(job, *delay));
            quote!(#private::Backoff::Steps(&[#(#delays),*]))
        }
        // Coerced to the fn pointer by a `let` spanned on the path, so that
        // a function of another signature is reported there, as the
        // mismatch of the two types (a fn item coerces in a `const`).
        Backoff::Custom(path) => {
            quote_spanned! {syn::spanned::Spanned::span(path)=>
                {
                    let backoff: fn(::core::primitive::u32) -> #private::Duration = #path;
                    #private::Backoff::Custom(backoff)
                }
            }
        }
        Backoff::Hangfire => quote!(#private::Backoff::Hangfire),
    };
    // Given only when the key is: the trait's defaults hold otherwise.
    let timeout = job.attrs.timeout.as_ref().map(|timeout| {
        let delay = duration(job, timeout.value);
        quote! {
            const TIMEOUT: ::core::option::Option<#private::Duration> = ::core::option::Option::Some(#delay);
        }
    });
    let priority = job.attrs.priority.as_ref().map(|priority| {
        let value = priority.value;
        let value = quote_spanned!(priority.span=> #value);
        quote!(const PRIORITY: i16 = #value;)
    });
    let unique = unique_items(job);
    let concurrency = concurrency_items(job);

    let fn_ident = &job.func.ident;
    let idents: Vec<_> = job.func.args.iter().map(|arg| &arg.ident).collect();
    let call_idents = job.func.call_idents();
    let context = format_ident!("__jobs_context");
    let (call_args, ignore_context) = if job.func.takes_context {
        (quote!(#context, #(#call_idents),*), quote!())
    } else {
        (quote!(#(#call_idents),*), quote!(let _ = #context;))
    };
    let parent = job.func.parent.as_ref().map(|(_, parent)| {
        let (ident, ty) = (&parent.ident, &parent.ty);
        quote!(let #ident: #ty = #context.parent_result::<#ty>()?;)
    });
    let into_result = match &job.func.output {
        Output::Unit => quote! {
            #fn_ident(#call_args).await;
            ::core::result::Result::<(), #private::JobError>::Ok(())
        },
        Output::Type { ty, .. } => {
            quote!(<#ty as #private::IntoJobResult>::into_job_result(#fn_ident(#call_args).await))
        }
    };

    quote! {
        impl #private::Job for #struct_ident
        where
            #(#bounds)*
        {
            const NAME: &'static str = #name;
            const QUEUE: &'static str = #queue;
            const RETRY_POLICY: #private::RetryPolicy = #private::RetryPolicy::retries(#retries).with_backoff(#backoff);
            #timeout
            #priority
            #unique
            #concurrency

            fn perform(self, #context: #private::JobContext) -> impl #private::Future<Output = #private::JobResult> + ::core::marker::Send {
                async move {
                    #parent
                    #ignore_context
                    let #struct_ident { #(#idents),* } = self;
                    #private::encode_result({ #into_result })
                }
            }
        }
    }
}

/// `const UNIQUE` when `unique` is given, and `unique_key` when its `by`
/// names the key's arguments; nothing otherwise (the trait's defaults).
fn unique_items(job: &Job) -> TokenStream {
    let Some(unique) = &job.attrs.unique else {
        return TokenStream::new();
    };
    let private = private(job);
    let mut uniqueness = match &unique.within {
        Some(within) => {
            let period = duration(job, within.value);
            quote!(#private::Uniqueness::within(#period))
        }
        None => quote!(#private::Uniqueness::new()),
    };
    if let Some(states) = &unique.states {
        let states = states.value.iter().map(|state| {
            let variant = format_ident!("{}", state.as_str());
            quote!(#private::State::#variant)
        });
        uniqueness = quote!(#uniqueness.in_states(&[#(#states),*]));
    }
    let key = unique
        .by
        .as_ref()
        .map(|by| key_fn(job, &format_ident!("unique_key"), by));
    quote! {
        const UNIQUE: ::core::option::Option<#private::Uniqueness> = ::core::option::Option::Some(#uniqueness);
        #key
    }
}

/// `const CONCURRENCY` when `concurrency` is given, and `concurrency_key`
/// when its `by` names the key's arguments; nothing otherwise (the trait's
/// defaults).
fn concurrency_items(job: &Job) -> TokenStream {
    let Some(concurrency) = &job.attrs.concurrency else {
        return TokenStream::new();
    };
    let private = private(job);
    let value = concurrency.limit.value;
    let limit = quote_spanned!(concurrency.limit.span=> #value);
    let (limit, key) = match &concurrency.by {
        Some(by) => (
            quote!(#private::Concurrency::per_key(#limit)),
            Some(key_fn(job, &format_ident!("concurrency_key"), by)),
        ),
        None => (quote!(#private::Concurrency::per_name(#limit)), None),
    };
    quote! {
        const CONCURRENCY: ::core::option::Option<#private::Concurrency> = ::core::option::Option::Some(#limit);
        #key
    }
}

/// `fn #method(&self) -> Option<String>`: the JSON of the arguments that
/// `by` names, as a tuple of references in `by`'s order (`[7]` for one
/// argument of value 7).
fn key_fn(job: &Job, method: &syn::Ident, by: &[syn::Ident]) -> TokenStream {
    let private = private(job);
    quote! {
        fn #method(&self) -> ::core::option::Option<::std::string::String> {
            #private::serde_json::to_string(&(#(&self.#by,)*)).ok()
        }
    }
}

/// `Duration::from_millis(N)`, the runtime's value of a parsed duration.
fn duration(job: &Job, delay: Duration) -> TokenStream {
    let private = private(job);
    let millis = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX);
    quote!(#private::Duration::from_millis(#millis))
}

/// `enqueue`, `schedule_in` and `schedule_at` on the argument struct, each
/// through `Client::enqueue_with`.
fn struct_helpers(job: &Job) -> TokenStream {
    let private = private(job);
    let vis = &job.func.vis;
    let struct_ident = &job.struct_ident;
    let bounds = storable_bounds(job);
    let result = result_type(job);
    let typed = quote!(#private::TypedJobId<#result>);
    quote! {
        impl #struct_ident
        where
            #(#bounds)*
        {
            /// Enqueues this job on its queue; returns the new job's id.
            ///
            /// # Errors
            /// When the arguments do not serialize or the storage fails.
            #vis async fn enqueue(self, client: &#private::Client) -> #private::Result<#typed> {
                client.enqueue_with(self, #private::EnqueueOptions::new()).await.map(#private::TypedJobId::new)
            }

            /// Schedules this job to be enqueued after `delay`, counted from
            /// the storage's clock; returns its id.
            ///
            /// # Errors
            /// When the arguments do not serialize or the storage fails.
            #vis async fn schedule_in(self, client: &#private::Client, delay: #private::Duration) -> #private::Result<#typed> {
                client.enqueue_with(self, #private::EnqueueOptions::new().delay(delay)).await.map(#private::TypedJobId::new)
            }

            /// Schedules this job to be enqueued at `at` (UTC); returns its id.
            ///
            /// # Errors
            /// When the arguments do not serialize or the storage fails.
            #vis async fn schedule_at(self, client: &#private::Client, at: #private::DateTime<#private::Utc>) -> #private::Result<#typed> {
                client.enqueue_with(self, #private::EnqueueOptions::new().at(at)).await.map(#private::TypedJobId::new)
            }
        }
    }
}

/// The job's `inventory` registration, so that every server of the binary
/// finds it.
fn registration(job: &Job) -> TokenStream {
    let private = private(job);
    let struct_ident = &job.struct_ident;
    quote! {
        const _: () = {
            #[allow(dead_code)]
            struct __Registration<J>(::core::marker::PhantomData<J>);

            // Picked only when the arguments cannot be stored: the argument
            // assertions report that on each argument, and this keeps the
            // registration from repeating it.
            #[allow(dead_code)]
            trait __Unregistered {
                const REGISTRATION: #private::JobRegistration = #private::JobRegistration {
                    name: "",
                    queue: "",
                    retry_policy: #private::RetryPolicy::retries(0),
                    timeout: ::core::option::Option::None,
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
    }
}

/// The typed helpers under the function's name (`send_welcome_email::enqueue(&client, ...)`),
/// taking the arguments one by one: `enqueue_with`, which every other one
/// on a client calls, `enqueue`, `schedule_in`, `schedule_at` for its
/// common options, `continue_after` (typed by the `#[parent]` parameter),
/// the recurring and batch helpers, and `enqueue_in_tx` for the
/// application's own transaction. Every one that creates a job returns
/// its id typed by the job's result.
fn fn_helpers(job: &Job) -> TokenStream {
    let private = private(job);
    let vis = &job.func.vis;
    let fn_ident = &job.func.ident;
    let struct_ident = &job.struct_ident;
    let bounds = storable_bounds(job);
    let idents: Vec<_> = job.func.args.iter().map(|arg| &arg.ident).collect();
    let types: Vec<_> = job.func.args.iter().map(|arg| &arg.ty).collect();
    let result = result_type(job);
    let typed = quote!(#private::TypedJobId<#result>);
    let module_doc = format!(
        "Typed helpers for the [`{fn_ident}`](fn@{fn_ident}) job: `enqueue`, `enqueue_with`, `schedule_in`, `schedule_at`, `continue_after`, `continue_after_with`, `continue_after_batch`, `add_to_batch`, `enqueue_in_tx`, `enqueue_in_tx_with`, `recurring` and `recurring_with` (`{fn_ident}::enqueue(&client, ...)`). An empty enum, so that it shares the function's name without clashing with it."
    );
    let (parent_param, parent_doc) = match &job.func.parent {
        Some((_, parent)) => {
            let ty = &parent.ty;
            (
                quote!(parent_job: impl #private::ParentOf<#ty>),
                "`parent_job` must be the typed id of a job whose result this job's `#[parent]` parameter takes (checked when compiling).",
            )
        }
        None => (
            quote!(parent_job: impl ::core::convert::Into<#private::JobId>),
            "This job takes no `#[parent]` parameter, so any job may be its parent.",
        ),
    };
    let parent_id = match &job.func.parent {
        Some(_) => quote!(#private::ParentOf::parent_id(&parent_job)),
        None => quote!(::core::convert::Into::<#private::JobId>::into(parent_job)),
    };
    quote! {
        #[doc = #module_doc]
        #[allow(non_camel_case_types)]
        #vis enum #fn_ident {}

        impl #fn_ident
        where
            #(#bounds)*
        {
            /// Enqueues the job with these arguments and this call's
            /// `options` (`EnqueueOptions`: queue, delay or time, attempts,
            /// parent, batch); an option not set takes the job's own
            /// value. Returns its id.
            ///
            /// # Errors
            /// When the queue is empty (`Error::Config`), the arguments do
            /// not serialize or the storage fails.
            #vis async fn enqueue_with(client: &#private::Client, options: #private::EnqueueOptions, #(#idents: #types),*) -> #private::Result<#typed> {
                client.enqueue_with(#struct_ident { #(#idents),* }, options).await.map(#private::TypedJobId::new)
            }

            /// Enqueues the job with these arguments; returns its id.
            ///
            /// # Errors
            /// When the arguments do not serialize or the storage fails.
            #vis async fn enqueue(client: &#private::Client, #(#idents: #types),*) -> #private::Result<#typed> {
                Self::enqueue_with(client, #private::EnqueueOptions::new(), #(#idents),*).await
            }

            /// Schedules the job to be enqueued after `delay`, counted from
            /// the storage's clock; returns its id.
            ///
            /// # Errors
            /// When the arguments do not serialize or the storage fails.
            #vis async fn schedule_in(client: &#private::Client, delay: #private::Duration, #(#idents: #types),*) -> #private::Result<#typed> {
                Self::enqueue_with(client, #private::EnqueueOptions::new().delay(delay), #(#idents),*).await
            }

            /// Schedules the job to be enqueued at `at` (UTC); returns its id.
            ///
            /// # Errors
            /// When the arguments do not serialize or the storage fails.
            #vis async fn schedule_at(client: &#private::Client, at: #private::DateTime<#private::Utc>, #(#idents: #types),*) -> #private::Result<#typed> {
                Self::enqueue_with(client, #private::EnqueueOptions::new().at(at), #(#idents),*).await
            }

            /// Enqueues the job as a continuation of `parent_job`: it waits
            /// `Awaiting` until the parent succeeds, then is enqueued with
            /// the parent's result (or deleted when the parent fails or is
            /// deleted).
            #[doc = #parent_doc]
            ///
            /// # Errors
            /// `Error::JobNotFound` when no job has the parent's id; when
            /// the arguments do not serialize or the storage fails.
            #vis fn continue_after(client: &#private::Client, #parent_param, #(#idents: #types),*) -> #private::BoxFuture<'_, #private::Result<#typed>> {
                // Not an `async fn`: the parent's type is checked once, at
                // this call, and the future's type does not name it.
                let options = #private::EnqueueOptions::new().after(#parent_id);
                ::std::boxed::Box::pin(Self::enqueue_with(client, options, #(#idents),*))
            }

            /// As `continue_after`, with this call's `options`; among them
            /// `continue_on` says on which of the parent's final states it
            /// runs (`ContinueOn::Finished`: whatever the outcome; take the
            /// `#[parent]` parameter as an `Option` then).
            ///
            /// # Errors
            /// As `continue_after`.
            #vis fn continue_after_with(client: &#private::Client, #parent_param, options: #private::EnqueueOptions, #(#idents: #types),*) -> #private::BoxFuture<'_, #private::Result<#typed>> {
                let options = options.after(#parent_id);
                ::std::boxed::Box::pin(Self::enqueue_with(client, options, #(#idents),*))
            }

            /// Enqueues the job as a continuation of the stored batch
            /// `parent_batch`: it runs once every member finished and all
            /// succeeded, and receives the results of the members that
            /// returned one, as a JSON array in member order (take it as
            /// `#[parent] results: Vec<T>`).
            ///
            /// # Errors
            /// `Error::BatchNotFound` when no batch has this id; when the
            /// arguments do not serialize or the storage fails.
            #vis async fn continue_after_batch(client: &#private::Client, parent_batch: #private::BatchId, #(#idents: #types),*) -> #private::Result<#typed> {
                Self::enqueue_with(client, #private::EnqueueOptions::new().after_batch(parent_batch), #(#idents),*).await
            }

            /// Adds the job with these arguments to `into_batch`, to be
            /// stored with it by `Client::enqueue_batch`.
            ///
            /// # Errors
            /// When the queue is empty or the arguments do not serialize;
            /// the batch is unchanged then.
            #vis fn add_to_batch(into_batch: &mut #private::Batch, #(#idents: #types),*) -> #private::Result<()> {
                into_batch.push(#struct_ident { #(#idents),* }).map(|_| ())
            }

            /// Enqueues the job inside the application's own transaction
            /// (`&mut tx` of a `sqlx::Transaction` on PostgreSQL or
            /// SQLite): it exists if and only if the transaction commits,
            /// and no server sees it before. Returns its id.
            ///
            /// # Errors
            /// When the arguments do not serialize or the statement fails
            /// (the transaction is left as it was before the call).
            #vis async fn enqueue_in_tx(tx: &mut impl #private::EnqueueInTransaction, #(#idents: #types),*) -> #private::Result<#typed> {
                Self::enqueue_in_tx_with(tx, #private::EnqueueOptions::new(), #(#idents),*).await
            }

            /// As `enqueue_in_tx`, with this call's `options`.
            ///
            /// # Errors
            /// As `enqueue_in_tx`.
            #vis async fn enqueue_in_tx_with(tx: &mut impl #private::EnqueueInTransaction, options: #private::EnqueueOptions, #(#idents: #types),*) -> #private::Result<#typed> {
                #private::enqueue_in_tx(tx, #struct_ident { #(#idents),* }, options).await.map(#private::TypedJobId::new)
            }

            /// Adds the recurring job `recurring_id` (or replaces it) that enqueues
            /// this job with these arguments on every tick of `cron_expression` (5
            /// fields, or 6 with seconds first), in UTC.
            ///
            /// # Errors
            /// When `cron_expression` does not parse (`Error::InvalidSchedule`), the
            /// arguments do not serialize or the storage fails.
            #vis async fn recurring(client: &#private::Client, recurring_id: &str, cron_expression: &str, #(#idents: #types),*) -> #private::Result<()> {
                Self::recurring_with(client, recurring_id, #private::RecurringOptions::cron(cron_expression), #(#idents),*).await
            }

            /// Adds the recurring job `recurring_id` (or replaces it) that enqueues
            /// this job with these arguments on the schedule of `options`
            /// (`RecurringOptions`: cron, time zone, queue, misfires,
            /// skip while running).
            ///
            /// # Errors
            /// When the schedule does not parse (`Error::InvalidSchedule`),
            /// the arguments do not serialize or the storage fails.
            #vis async fn recurring_with(client: &#private::Client, recurring_id: &str, options: #private::RecurringOptions, #(#idents: #types),*) -> #private::Result<()> {
                client.add_or_update_recurring(recurring_id, #struct_ident { #(#idents),* }, options).await
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
    fn every_helper_goes_through_enqueue_with() {
        let out = expand_str("", "pub async fn f(user_id: i64, template: String) {}");
        assert!(
            out.contains(
                "pub async fn enqueue_with (client : & :: jobs :: __private :: Client , options : :: jobs :: __private :: EnqueueOptions , user_id : i64 , template : String)"
            ),
            "{out}"
        );
        assert!(
            out.contains("client . enqueue_with (F { user_id , template } , options) . await"),
            "{out}"
        );
        for options in [
            "EnqueueOptions :: new ()",
            "EnqueueOptions :: new () . delay (delay)",
            "EnqueueOptions :: new () . at (at)",
        ] {
            // The helpers under the function's name call the generated
            // `enqueue_with`; the struct's methods call the client's.
            let helper = format!(
                "Self :: enqueue_with (client , :: jobs :: __private :: {options} , user_id , template)"
            );
            let method =
                format!("client . enqueue_with (self , :: jobs :: __private :: {options})");
            assert!(out.contains(&helper), "missing {helper:?} in {out}");
            assert!(out.contains(&method), "missing {method:?} in {out}");
        }
        assert!(
            !out.contains("client . enqueue (") && !out.contains("client . schedule_"),
            "{out}"
        );
    }

    #[test]
    fn defaults_are_named_not_copied() {
        let out = expand_str("", "async fn r#type() {}");
        assert!(
            out.contains("const NAME : & 'static str = \"type\""),
            "{out}"
        );
        assert!(
            out.contains("const QUEUE : & 'static str = \"default\""),
            "{out}"
        );
        assert!(
            out.contains("retries (:: jobs :: __private :: RetryPolicy :: DEFAULT_RETRIES)"),
            "{out}"
        );
        assert!(
            out.contains("with_backoff (:: jobs :: __private :: Backoff :: Hangfire)"),
            "{out}"
        );
        let out = expand_str(r#"backoff = "2m""#, "async fn f() {}");
        assert!(out.contains("Duration :: from_millis (120000u64)"), "{out}");
    }

    #[test]
    fn timeout_and_priority_are_emitted_only_when_given() {
        let out = expand_str("", "async fn f() {}");
        assert!(!out.contains("TIMEOUT"), "{out}");
        assert!(!out.contains("PRIORITY"), "{out}");
        let out = expand_str(r#"timeout = "30s", priority = -5"#, "async fn f() {}");
        assert!(
            out.contains("const TIMEOUT : :: core :: option :: Option < :: jobs :: __private :: Duration > = :: core :: option :: Option :: Some (:: jobs :: __private :: Duration :: from_millis (30000u64)) ;"),
            "{out}"
        );
        assert!(out.contains("const PRIORITY : i16 = - 5i16 ;"), "{out}");
        let out = expand_str("priority = 7", "async fn f() {}");
        assert!(out.contains("const PRIORITY : i16 = 7i16 ;"), "{out}");
    }

    #[test]
    fn backoff_lists_and_functions() {
        let out = expand_str(r#"backoff = ["1s", "5m"]"#, "async fn f() {}");
        assert!(
            out.contains("with_backoff (:: jobs :: __private :: Backoff :: Steps (& [:: jobs :: __private :: Duration :: from_millis (1000u64) , :: jobs :: __private :: Duration :: from_millis (300000u64)]))"),
            "{out}"
        );
        let out = expand_str("backoff = crate::retry::doubling", "async fn f() {}");
        assert!(
            out.contains("let backoff : fn (:: core :: primitive :: u32) -> :: jobs :: __private :: Duration = crate :: retry :: doubling ; :: jobs :: __private :: Backoff :: Custom (backoff)"),
            "{out}"
        );
    }

    #[test]
    fn unique_and_concurrency_are_emitted_only_when_given() {
        let out = expand_str("", "async fn f(user_id: i64) {}");
        for item in ["UNIQUE", "CONCURRENCY", "unique_key", "concurrency_key"] {
            assert!(!out.contains(item), "{item} in {out}");
        }
        let out = expand_str("unique, concurrency = 2", "async fn f(user_id: i64) {}");
        assert!(
            out.contains("const UNIQUE : :: core :: option :: Option < :: jobs :: __private :: Uniqueness > = :: core :: option :: Option :: Some (:: jobs :: __private :: Uniqueness :: new ()) ;"),
            "{out}"
        );
        assert!(
            out.contains("const CONCURRENCY : :: core :: option :: Option < :: jobs :: __private :: Concurrency > = :: core :: option :: Option :: Some (:: jobs :: __private :: Concurrency :: per_name (2u32)) ;"),
            "{out}"
        );
        // Without `by`, the key functions keep the trait's defaults.
        assert!(!out.contains("fn unique_key"), "{out}");
        assert!(!out.contains("fn concurrency_key"), "{out}");
        assert!(!out.contains("compile_error"), "{out}");
    }

    #[test]
    fn unique_sub_keys_build_the_uniqueness_and_its_key() {
        let out = expand_str(
            r#"unique(by = [customer_id, region], within = "1h", states = ["Scheduled", "Enqueued", "Processing", "Awaiting"])"#,
            "async fn f(ctx: JobContext, customer_id: i64, region: String, note: String) {}",
        );
        assert!(
            out.contains("Some (:: jobs :: __private :: Uniqueness :: within (:: jobs :: __private :: Duration :: from_millis (3600000u64)) . in_states (& [:: jobs :: __private :: State :: Scheduled , :: jobs :: __private :: State :: Enqueued , :: jobs :: __private :: State :: Processing , :: jobs :: __private :: State :: Awaiting])) ;"),
            "{out}"
        );
        assert!(
            out.contains("fn unique_key (& self) -> :: core :: option :: Option < :: std :: string :: String > { :: jobs :: __private :: serde_json :: to_string (& (& self . customer_id , & self . region ,)) . ok () }"),
            "{out}"
        );
        let out = expand_str(
            r#"unique(states = ["Scheduled", "Enqueued", "Processing", "Awaiting", "Failed"], by = [user_id])"#,
            "async fn f(user_id: i64) {}",
        );
        assert!(
            out.contains("Some (:: jobs :: __private :: Uniqueness :: new () . in_states (& [:: jobs :: __private :: State :: Scheduled , :: jobs :: __private :: State :: Enqueued , :: jobs :: __private :: State :: Processing , :: jobs :: __private :: State :: Awaiting , :: jobs :: __private :: State :: Failed])) ;"),
            "{out}"
        );
        // One name is a 1-tuple: the key is the JSON array `[7]`.
        assert!(out.contains("to_string (& (& self . user_id ,))"), "{out}");
    }

    #[test]
    fn concurrency_by_is_a_limit_per_key() {
        let out = expand_str(
            "concurrency(limit = 1, by = [customer_id])",
            "async fn f(customer_id: i64, items: Vec<i64>) {}",
        );
        assert!(
            out.contains("Some (:: jobs :: __private :: Concurrency :: per_key (1u32)) ;"),
            "{out}"
        );
        assert!(
            out.contains("fn concurrency_key (& self) -> :: core :: option :: Option < :: std :: string :: String > { :: jobs :: __private :: serde_json :: to_string (& (& self . customer_id ,)) . ok () }"),
            "{out}"
        );
        assert!(!out.contains("fn unique_key"), "{out}");
        let out = expand_str("concurrency(limit = 3)", "async fn f(customer_id: i64) {}");
        assert!(out.contains("Concurrency :: per_name (3u32)"), "{out}");
        assert!(!out.contains("fn concurrency_key"), "{out}");
    }

    #[test]
    fn by_names_only_stored_arguments() {
        let item = "async fn f(ctx: JobContext, #[parent] total: u64, customer_id: i64, region: String) {}";
        for (args, name, what) in [
            ("unique(by = [custmer_id])", "custmer_id", ""),
            ("unique(by = [ctx])", "ctx", " but its `JobContext`"),
            (
                "concurrency(limit = 1, by = [total])",
                "total",
                " but its parent's result (`#[parent]`, not stored with the arguments)",
            ),
        ] {
            let out = expand_str(args, item);
            let expected = format!(
                "`by` names `{name}`, which is not an argument of this job{what}; its arguments are `customer_id`, `region`"
            );
            assert!(out.contains(&expected), "missing {expected:?} in {out}");
            assert!(!out.contains("impl :: jobs"), "{out}");
        }
        let out = expand_str("unique(by = [user_id])", "async fn f() {}");
        assert!(
            out.contains(
                "`by` names `user_id`, which is not an argument of this job; it has no arguments"
            ),
            "{out}"
        );
        // Raw names match their argument, and one error per bad name of
        // both lists, all at once.
        let out = expand_str("unique(by = [r#type])", "async fn f(r#type: String) {}");
        assert!(!out.contains("compile_error"), "{out}");
        let out = expand_str(
            "unique(by = [a, b]), concurrency(limit = 1, by = [c])",
            "async fn f(x: i64) {}",
        );
        assert_eq!(out.matches("compile_error").count(), 3, "{out}");
    }

    #[test]
    fn arguments_cannot_take_a_helpers_parameter_name() {
        for name in ["client", "options", "delay", "at"] {
            let out = expand_str("", &format!("async fn f({name}: i64) {{}}"));
            assert!(
                out.contains(&format!("a #[job] argument cannot be named `{name}`")),
                "{out}"
            );
        }
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
