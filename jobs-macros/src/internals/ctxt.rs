use std::fmt::Display;

use proc_macro2::TokenStream;
use quote::ToTokens;

/// Collects every error of one macro call, so that all are reported at once,
/// each on its own token (serde_derive's `Ctxt`).
#[derive(Default)]
pub struct Ctxt {
    errors: Option<syn::Error>,
}

impl Ctxt {
    /// Records an error spanned on `tokens`.
    pub fn error_spanned_by(&mut self, tokens: impl ToTokens, message: impl Display) {
        self.syn_error(syn::Error::new_spanned(tokens, message));
    }

    /// Records an error that syn produced.
    pub fn syn_error(&mut self, error: syn::Error) {
        match &mut self.errors {
            Some(errors) => errors.combine(error),
            None => self.errors = Some(error),
        }
    }

    /// Every error recorded, combined; `Ok` when there is none.
    pub fn check(self) -> Result<(), syn::Error> {
        match self.errors {
            Some(errors) => Err(errors),
            None => Ok(()),
        }
    }
}

/// The original item plus the errors as `compile_error!`, so one mistake
/// gives one message and the rest of the code still sees the function
/// (tokio's `token_stream_with_error`).
pub fn item_with_error(item: TokenStream, error: syn::Error) -> TokenStream {
    let mut tokens = item;
    tokens.extend(error.into_compile_error());
    tokens
}
