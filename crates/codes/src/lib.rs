//! `#[derive(Coded)]`: the stable error code of each variant written once, at the start of its
//! `#[error("…")]` message (`TIFFIN-<AREA>-<NNN>: …` or `TIFFIN-<AREA>-<NNN> …`, docs/architecture.md, "Error codes").
//!
//! For an enum deriving `thiserror::Error` it generates
//! - `pub fn code(&self) -> &'static str`: the variant's code, for matching without parsing
//!   text (HTTP answers, logs, tests);
//! - `pub const CODES: &'static [&'static str]`: every code in declaration order, so a test can
//!   check that each is documented and none is used twice.
//!
//! A variant whose message does not start with a code is refused at compile time, as is a code
//! that two variants share.

use proc_macro::TokenStream;
use quote::quote;
use syn::parse::ParseStream;
use syn::{Data, DeriveInput, LitStr, parse_macro_input, spanned::Spanned};

/// See the crate documentation.
#[proc_macro_derive(Coded)]
pub fn derive_coded(input: TokenStream) -> TokenStream {
    let input = parse_macro_input!(input as DeriveInput);
    match expand(&input) {
        Ok(tokens) => tokens.into(),
        Err(e) => e.to_compile_error().into(),
    }
}

fn expand(input: &DeriveInput) -> syn::Result<proc_macro2::TokenStream> {
    let Data::Enum(data) = &input.data else {
        return Err(syn::Error::new(input.span(), "Coded: only enums have one code per variant"));
    };
    let mut arms = Vec::new();
    let mut codes: Vec<String> = Vec::new();
    for variant in &data.variants {
        let code = variant_code(variant)?;
        if codes.contains(&code) {
            return Err(syn::Error::new(variant.span(), format!("Coded: {code} is used twice")));
        }
        let ident = &variant.ident;
        arms.push(quote! { Self::#ident { .. } => #code });
        codes.push(code);
    }
    let name = &input.ident;
    let (impl_generics, ty_generics, where_clause) = input.generics.split_for_impl();
    Ok(quote! {
        impl #impl_generics #name #ty_generics #where_clause {
            /// Every stable code of this error type, in declaration order.
            pub const CODES: &'static [&'static str] = &[#(#codes),*];

            /// The stable code of this error (e.g. `TIFFIN-STORAGE-010`), for matching without
            /// parsing text: the start of its message.
            pub fn code(&self) -> &'static str {
                match self {
                    #(#arms,)*
                }
            }
        }
    })
}

/// The code at the start of the variant's `#[error("…")]` message.
fn variant_code(variant: &syn::Variant) -> syn::Result<String> {
    let attr =
        variant.attrs.iter().find(|a| a.path().is_ident("error")).ok_or_else(|| {
            syn::Error::new(variant.span(), "Coded: variant has no #[error(\"…\")]")
        })?;
    let message = attr.parse_args_with(|input: ParseStream| {
        let lit: LitStr = input.parse()?;
        input.parse::<proc_macro2::TokenStream>()?; // format arguments, if any
        Ok(lit)
    })?;
    let text = message.value();
    let code: String =
        text.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '-').collect();
    match text[code.len()..].chars().next() {
        Some(':' | ' ') if is_code(&code) => Ok(code),
        _ => Err(syn::Error::new(
            message.span(),
            "Coded: the message must start with its code, `TIFFIN-<AREA>-<NNN>: …`",
        )),
    }
}

/// `TIFFIN-<AREA>-<NNN>`: upper-case letters, then three digits.
fn is_code(s: &str) -> bool {
    let mut parts = s.split('-');
    matches!(
        (parts.next(), parts.next(), parts.next(), parts.next()),
        (Some("TIFFIN"), Some(area), Some(n), None)
            if !area.is_empty()
                && area.bytes().all(|b| b.is_ascii_uppercase())
                && n.len() == 3
                && n.bytes().all(|b| b.is_ascii_digit())
    )
}
