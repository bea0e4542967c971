//! Attribute macros for [sqs-handler](https://docs.rs/sqs-handler): use them through the
//! `sqs_handler` crate, which re-exports them.
//!
//! Both attributes emit the function unchanged and register it beside it through
//! `::sqs_handler::__private` (link-time registration with `inventory`). Misuse is a compile
//! error spanned at its cause, and the function is still emitted so the rest of the crate
//! keeps compiling.

use proc_macro::TokenStream;
use proc_macro2::{Span, TokenStream as TokenStream2};
use quote::{quote, quote_spanned};
use syn::parse::{Parse, ParseStream};
use syn::spanned::Spanned;
use syn::{FnArg, Ident, ItemFn, LitStr, Token};

mod kw {
    syn::custom_keyword!(env);
    syn::custom_keyword!(batch);
    syn::custom_keyword!(default);
}

/// Where the queue name comes from.
enum QueueArg {
    Literal(LitStr),
    Env(LitStr, Option<LitStr>),
}

impl Parse for QueueArg {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        let lookahead = input.lookahead1();
        if lookahead.peek(LitStr) {
            let lit: LitStr = input.parse()?;
            if lit.value().trim().is_empty() {
                return Err(syn::Error::new(
                    lit.span(),
                    "the queue name is empty: give the queue's name, e.g. \"jobs\"",
                ));
            }
            Ok(QueueArg::Literal(lit))
        } else if lookahead.peek(kw::env) {
            input.parse::<kw::env>()?;
            input.parse::<Token![=]>()?;
            let lit: LitStr = input.parse()?;
            if lit.value().trim().is_empty() {
                return Err(syn::Error::new(
                    lit.span(),
                    "the environment variable name is empty",
                ));
            }
            let mut default = None;
            if input.peek(Token![,]) && input.peek2(kw::default) {
                input.parse::<Token![,]>()?;
                input.parse::<kw::default>()?;
                input.parse::<Token![=]>()?;
                let d: LitStr = input.parse()?;
                if d.value().trim().is_empty() {
                    return Err(syn::Error::new(d.span(), "the default queue name is empty"));
                }
                default = Some(d);
            }
            Ok(QueueArg::Env(lit, default))
        } else {
            Err(syn::Error::new(
                lookahead.error().span(),
                "expected the queue: a name (\"jobs\"), env = \"VARIABLE\", or env = \"VARIABLE\", default = \"jobs\"",
            ))
        }
    }
}

impl QueueArg {
    fn tokens(&self) -> TokenStream2 {
        match self {
            QueueArg::Literal(l) => quote!(::sqs_handler::__private::QueueRef::Name(#l)),
            QueueArg::Env(l, None) => quote!(::sqs_handler::__private::QueueRef::Env(#l)),
            QueueArg::Env(l, Some(d)) => quote!(::sqs_handler::__private::QueueRef::EnvOr(#l, #d)),
        }
    }
}

struct HandlerArgs {
    queue: QueueArg,
    batch: bool,
}

impl Parse for HandlerArgs {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        if input.is_empty() {
            return Err(input.error("expected the queue: #[sqs_message_handler(\"jobs\")] or #[sqs_message_handler(env = \"JOBS_QUEUE\")]"));
        }
        let queue: QueueArg = input.parse()?;
        let mut batch: Option<kw::batch> = None;
        while !input.is_empty() {
            input.parse::<Token![,]>()?;
            if input.is_empty() {
                break;
            }
            let lookahead = input.lookahead1();
            if lookahead.peek(kw::batch) {
                let b: kw::batch = input.parse()?;
                if batch.is_some() {
                    return Err(syn::Error::new(b.span, "`batch` is given twice"));
                }
                batch = Some(b);
            } else {
                let unknown: TokenStream2 = input.parse::<proc_macro2::TokenTree>()?.into();
                return Err(syn::Error::new(
                    unknown.span(),
                    format!("unknown option `{unknown}`: the only option is `batch`"),
                ));
            }
        }
        Ok(HandlerArgs {
            queue,
            batch: batch.is_some(),
        })
    }
}

const EVENTS: &[(&str, &str, &str)] = &[
    ("processing_error", "ProcessingError", "ProcessingError"),
    ("timeout_error", "TimeoutError", "TimeoutError"),
    ("error", "Error", "ConsumerError"),
    ("message_received", "MessageReceived", "MessageReceived"),
    ("message_processed", "MessageProcessed", "MessageProcessed"),
    (
        "response_processed",
        "ResponseProcessed",
        "ResponseProcessed",
    ),
    ("empty", "Empty", "Empty"),
    ("stopped", "Stopped", "Stopped"),
    ("circuit_opened", "CircuitOpened", "CircuitOpened"),
    ("circuit_closed", "CircuitClosed", "CircuitClosed"),
];

struct HookArgs {
    queue: QueueArg,
    /// The event's `EventKind` variant and type name.
    event: (Ident, Ident),
}

impl Parse for HookArgs {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        if input.is_empty() {
            return Err(input.error("expected the queue and the event: #[sqs_consumer_event_handler(\"jobs\", processing_error)]"));
        }
        let queue: QueueArg = input.parse()?;
        if input.is_empty() {
            return Err(
                input.error("expected the event after the queue, e.g. `, processing_error`")
            );
        }
        input.parse::<Token![,]>()?;
        let event: Ident = input.parse()?;
        let names: Vec<&str> = EVENTS.iter().map(|(n, _, _)| *n).collect();
        let Some((_, kind, ty)) = EVENTS.iter().find(|(n, _, _)| event == n) else {
            return Err(syn::Error::new(
                event.span(),
                format!(
                    "unknown event `{event}`: expected one of {}",
                    names.join(", ")
                ),
            ));
        };
        if input.peek(Token![,]) {
            input.parse::<Token![,]>()?;
        }
        if !input.is_empty() {
            let extra: TokenStream2 = input.parse()?;
            return Err(syn::Error::new(
                extra.span(),
                "unexpected tokens after the event: an event hook takes only the queue and the event",
            ));
        }
        Ok(HookArgs {
            queue,
            event: (Ident::new(kind, event.span()), Ident::new(ty, event.span())),
        })
    }
}

/// Checks what both attributes require of the function.
fn check_signature(item: &ItemFn, attribute: &str) -> syn::Result<()> {
    let sig = &item.sig;
    if sig.asyncness.is_none() {
        return Err(syn::Error::new(
            sig.fn_token.span,
            format!("#[{attribute}] needs an `async fn`"),
        ));
    }
    if !sig.generics.params.is_empty() || sig.generics.where_clause.is_some() {
        return Err(syn::Error::new(
            sig.generics.span(),
            format!(
                "#[{attribute}] functions cannot be generic: the consumer must know the argument types"
            ),
        ));
    }
    if let Some(FnArg::Receiver(r)) = sig.inputs.first() {
        return Err(syn::Error::new(
            r.span(),
            format!(
                "#[{attribute}] takes a free function, not a method: move it out of the impl and put what `self` holds in State<T>"
            ),
        ));
    }
    if let Some(v) = &sig.variadic {
        return Err(syn::Error::new(
            v.span(),
            "variadic functions are not handlers",
        ));
    }
    Ok(())
}

fn arg_types(item: &ItemFn) -> Vec<&syn::Type> {
    item.sig
        .inputs
        .iter()
        .filter_map(|a| match a {
            FnArg::Typed(t) => Some(&*t.ty),
            FnArg::Receiver(_) => None,
        })
        .collect()
}

/// A check, spanned at `ty`, that `ty` implements `bound`: the compiler's error then points at
/// the argument or return type at fault.
fn bound_check(ty: &syn::Type, bound: &TokenStream2) -> TokenStream2 {
    quote_spanned! {ty.span()=>
        {
            fn __sqs_handler_check<T: #bound>() {}
            __sqs_handler_check::<#ty>();
        }
    }
}

/// A check, spanned at the return type, that the output implements `bound`.
fn return_check(item: &ItemFn, bound: TokenStream2) -> TokenStream2 {
    match &item.sig.output {
        syn::ReturnType::Default => TokenStream2::new(),
        syn::ReturnType::Type(_, ty) => bound_check(ty, &bound),
    }
}

/// The item unchanged plus the error: IDEs and the rest of the crate keep working.
fn with_error(item: TokenStream2, error: syn::Error) -> TokenStream {
    let error = error.to_compile_error();
    quote!(#item #error).into()
}

/// Parses the item and the arguments and checks the signature; on error, the item unchanged
/// plus the spanned error.
fn prepare<A: Parse>(
    attr: TokenStream,
    item: TokenStream,
    attribute: &str,
) -> Result<(ItemFn, A, TokenStream2), TokenStream> {
    let tokens: TokenStream2 = item.clone().into();
    let Ok(func) = syn::parse::<ItemFn>(item) else {
        let msg = format!("#[{attribute}] applies to an `async fn`");
        return Err(with_error(tokens, syn::Error::new(Span::call_site(), msg)));
    };
    let args: A = syn::parse(attr).map_err(|e| with_error(tokens.clone(), e))?;
    check_signature(&func, attribute).map_err(|e| with_error(tokens.clone(), e))?;
    Ok((func, args, tokens))
}

/// `#[sqs_message_handler]` is defined in the `sqs-handler-macros` crate, and `sqs_handler`
/// re-exports it (its feature `macros`, on by default): depend on `sqs-handler` alone. Its
/// forms, signatures and examples are documented at `sqs_handler::sqs_message_handler`.
#[proc_macro_attribute]
pub fn sqs_message_handler(attr: TokenStream, item: TokenStream) -> TokenStream {
    let (func, args, item2) = match prepare::<HandlerArgs>(attr, item, "sqs_message_handler") {
        Ok(p) => p,
        Err(e) => return e,
    };
    let name = &func.sig.ident;
    let name_str = name.to_string();
    let queue = args.queue.tokens();
    let (trait_path, erase, output) = if args.batch {
        (
            quote!(::sqs_handler::__private::FromBatch),
            quote!(::sqs_handler::__private::batch_handler),
            quote!(::sqs_handler::IntoBatchResult),
        )
    } else {
        (
            quote!(::sqs_handler::__private::FromMessage),
            quote!(::sqs_handler::__private::message_handler),
            quote!(::sqs_handler::IntoHandlerResult),
        )
    };
    let output_check = return_check(&func, output);
    let checks = arg_types(&func)
        .into_iter()
        .map(|ty| bound_check(ty, &trait_path));
    quote! {
        #item2

        const _: () = {
            #[allow(dead_code)]
            fn __sqs_handler_check_arguments() {
                #(#checks)*
                #output_check
            }
            ::sqs_handler::__private::inventory::submit! {
                ::sqs_handler::__private::HandlerRegistration {
                    queue: #queue,
                    origin: ::sqs_handler::__private::Origin {
                        name: #name_str,
                        module: ::core::module_path!(),
                    },
                    make: || #erase(#name),
                }
            }
        };
    }
    .into()
}

/// `#[sqs_consumer_event_handler]` is defined in the `sqs-handler-macros` crate, and
/// `sqs_handler` re-exports it (its feature `macros`, on by default): depend on `sqs-handler`
/// alone. Its forms, events and examples are documented at
/// `sqs_handler::sqs_consumer_event_handler`.
#[proc_macro_attribute]
pub fn sqs_consumer_event_handler(attr: TokenStream, item: TokenStream) -> TokenStream {
    let (func, args, item2) = match prepare::<HookArgs>(attr, item, "sqs_consumer_event_handler") {
        Ok(p) => p,
        Err(e) => return e,
    };
    let types = arg_types(&func);
    let (kind, event_ty) = &args.event;
    let Some((first, rest)) = types.split_first() else {
        let msg = format!(
            "an event hook takes the event as its first argument: `event: sqs_handler::{event_ty}`"
        );
        return with_error(
            item2,
            syn::Error::new(func.sig.paren_token.span.join(), msg),
        );
    };
    let name = &func.sig.ident;
    let name_str = name.to_string();
    let queue = args.queue.tokens();
    let first_check = bound_check(
        first,
        &quote!(::sqs_handler::__private::IsEvent<::sqs_handler::#event_ty>),
    );
    let output_check = return_check(&func, quote!(::sqs_handler::IntoHandlerResult));
    let extractor = quote!(::sqs_handler::__private::FromHookContext);
    let checks = rest.iter().map(|ty| bound_check(ty, &extractor));
    quote! {
        #item2

        const _: () = {
            #[allow(dead_code)]
            fn __sqs_handler_check_arguments() {
                #first_check
                #(#checks)*
                #output_check
            }
            ::sqs_handler::__private::inventory::submit! {
                ::sqs_handler::__private::HookRegistration {
                    queue: #queue,
                    event: ::sqs_handler::__private::EventKind::#kind,
                    origin: ::sqs_handler::__private::Origin {
                        name: #name_str,
                        module: ::core::module_path!(),
                    },
                    make: || ::sqs_handler::__private::hook::<::sqs_handler::#event_ty, _, _>(#name),
                }
            }
        };
    }
    .into()
}
