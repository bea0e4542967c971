//! Attribute macros for [sqs-handler](https://docs.rs/sqs-handler): use them through the
//! `sqs_handler` crate, which re-exports them.
//!
//! Both attributes emit the function unchanged and register it beside it through
//! `::sqs_handler::__private` (link-time registration with `inventory`), or through the path
//! given with `crate = "..."`. Misuse is a compile error spanned at its cause, and the function
//! is still emitted so the rest of the crate keeps compiling.

use proc_macro::TokenStream;
use proc_macro2::{Span, TokenStream as TokenStream2};
use quote::{quote, quote_spanned};
use syn::parse::{Parse, ParseStream};
use syn::spanned::Spanned;
use syn::{FnArg, Ident, ItemFn, LitStr, Path, Token};

mod kw {
    syn::custom_keyword!(env);
    syn::custom_keyword!(batch);
    syn::custom_keyword!(default);
    syn::custom_keyword!(message_type);
}

/// Where the queue name comes from.
enum QueueArg {
    Literal(LitStr),
    Env(LitStr, Option<LitStr>),
    /// A `&'static str` const or static; the compiler checks its type at the path.
    Path(Path),
}

const EXPECTED_QUEUE: &str = "expected the queue: a name (\"jobs\"), a `&'static str` constant (JOBS_QUEUE, crate::queues::JOBS), env = \"VARIABLE\", or env = \"VARIABLE\", default = \"jobs\"";

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
        } else if input.peek(kw::env) && input.peek2(Token![=]) {
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
        } else if lookahead.peek(Ident)
            || lookahead.peek(Token![::])
            || lookahead.peek(Token![crate])
            || lookahead.peek(Token![self])
            || lookahead.peek(Token![super])
        {
            Ok(QueueArg::Path(input.call(Path::parse_mod_style)?))
        } else {
            Err(syn::Error::new(lookahead.error().span(), EXPECTED_QUEUE))
        }
    }
}

impl QueueArg {
    fn tokens(&self, krate: &Path) -> TokenStream2 {
        match self {
            QueueArg::Literal(l) => quote!(#krate::__private::QueueRef::Name(#l)),
            QueueArg::Env(l, None) => quote!(#krate::__private::QueueRef::Env(#l)),
            QueueArg::Env(l, Some(d)) => quote!(#krate::__private::QueueRef::EnvOr(#l, #d)),
            // The path keeps its own span: a constant that is not a `&'static str` is a type
            // error pointing at it.
            QueueArg::Path(p) => quote!(#krate::__private::QueueRef::Name(#p)),
        }
    }

    /// The single identifier of a path queue (`batch`, `processing_error`, ...).
    fn ident(&self) -> Option<&Ident> {
        match self {
            QueueArg::Path(p) => p.get_ident(),
            _ => None,
        }
    }
}

/// The `crate = "..."` option: where the generated code finds `sqs_handler` (a renamed
/// dependency, or a crate that re-exports it).
#[derive(Default)]
struct CrateOption(Option<Path>);

impl CrateOption {
    fn peek(input: ParseStream<'_>) -> bool {
        input.peek(Token![crate]) && input.peek2(Token![=])
    }

    fn parse(&mut self, input: ParseStream<'_>) -> syn::Result<()> {
        let token: Token![crate] = input.parse()?;
        if self.0.is_some() {
            return Err(syn::Error::new(token.span, "`crate` is given twice"));
        }
        input.parse::<Token![=]>()?;
        if !input.peek(LitStr) {
            return Err(input.error(
                "`crate` takes a string: crate = \"::sqs_handler\" or crate = \"my_facade::sqs_handler\"",
            ));
        }
        let lit: LitStr = input.parse()?;
        let path = lit.parse_with(Path::parse_mod_style).map_err(|_| {
            syn::Error::new(
                lit.span(),
                format!(
                    "`crate` must be the path of the sqs_handler crate, such as \"::sqs_handler\" or \"my_facade::sqs_handler\", not {:?}",
                    lit.value()
                ),
            )
        })?;
        self.0 = Some(path);
        Ok(())
    }

    fn path(self) -> Path {
        self.0.unwrap_or_else(|| syn::parse_quote!(::sqs_handler))
    }
}

/// Parses `item (, item)* ,?`: `parse_item` is called at the start of each item.
fn parse_items(
    input: ParseStream<'_>,
    mut parse_item: impl FnMut(ParseStream<'_>) -> syn::Result<()>,
) -> syn::Result<()> {
    while !input.is_empty() {
        parse_item(input)?;
        if input.is_empty() {
            break;
        }
        input.parse::<Token![,]>()?;
    }
    Ok(())
}

struct HandlerArgs {
    queue: QueueArg,
    batch: bool,
    message_type: Option<MessageTypeArg>,
    krate: Path,
}

/// `message_type = "OrderPlaced"` or `message_type = ORDER_PLACED` (a `&'static str` constant).
enum MessageTypeArg {
    Literal(LitStr),
    Path(Path),
}

impl MessageTypeArg {
    fn parse(input: ParseStream<'_>) -> syn::Result<(kw::message_type, Self)> {
        let key: kw::message_type = input.parse()?;
        input.parse::<Token![=]>()?;
        let lookahead = input.lookahead1();
        if lookahead.peek(LitStr) {
            let lit: LitStr = input.parse()?;
            if lit.value().trim().is_empty() {
                return Err(syn::Error::new(
                    lit.span(),
                    "the message type is empty: give the type's name, e.g. message_type = \"OrderPlaced\"",
                ));
            }
            Ok((key, MessageTypeArg::Literal(lit)))
        } else if lookahead.peek(Ident)
            || lookahead.peek(Token![::])
            || lookahead.peek(Token![crate])
        {
            Ok((
                key,
                MessageTypeArg::Path(input.call(Path::parse_mod_style)?),
            ))
        } else {
            Err(syn::Error::new(
                lookahead.error().span(),
                "expected the message type: message_type = \"OrderPlaced\" or a `&'static str` constant",
            ))
        }
    }

    fn tokens(&self) -> TokenStream2 {
        match self {
            MessageTypeArg::Literal(l) => quote!(::core::option::Option::Some(#l)),
            MessageTypeArg::Path(p) => quote!(::core::option::Option::Some(#p)),
        }
    }
}

impl Parse for HandlerArgs {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        if input.is_empty() {
            return Err(input.error("expected the queue: #[sqs_message_handler(\"jobs\")] or #[sqs_message_handler(env = \"JOBS_QUEUE\")]"));
        }
        let mut queue: Option<QueueArg> = None;
        let mut batch: Option<kw::batch> = None;
        let mut message_type: Option<(kw::message_type, MessageTypeArg)> = None;
        let mut krate = CrateOption::default();
        parse_items(input, |input| {
            if CrateOption::peek(input) {
                return krate.parse(input);
            }
            if queue.is_none() {
                if input.peek(kw::message_type) && input.peek2(Token![=]) {
                    return Err(input.error(
                        "expected the queue before `message_type`: #[sqs_message_handler(\"events\", message_type = \"OrderPlaced\")]",
                    ));
                }
                let q: QueueArg = input.parse()?;
                if let Some(ident) = q.ident().filter(|i| *i == "batch") {
                    return Err(syn::Error::new(
                        ident.span(),
                        "expected the queue before `batch`: #[sqs_message_handler(\"jobs\", batch)]",
                    ));
                }
                queue = Some(q);
                return Ok(());
            }
            let lookahead = input.lookahead1();
            if lookahead.peek(kw::batch) {
                let b: kw::batch = input.parse()?;
                if batch.is_some() {
                    return Err(syn::Error::new(b.span, "`batch` is given twice"));
                }
                batch = Some(b);
                Ok(())
            } else if lookahead.peek(kw::message_type) {
                let (key, arg) = MessageTypeArg::parse(input)?;
                if message_type.is_some() {
                    return Err(syn::Error::new(key.span, "`message_type` is given twice"));
                }
                message_type = Some((key, arg));
                Ok(())
            } else {
                let unknown: TokenStream2 = input.parse::<proc_macro2::TokenTree>()?.into();
                Err(syn::Error::new(
                    unknown.span(),
                    format!(
                        "unknown option `{unknown}`: the options are `batch`, `message_type = \"...\"` and `crate = \"...\"`"
                    ),
                ))
            }
        })?;
        let Some(queue) = queue else {
            return Err(input.error(EXPECTED_QUEUE));
        };
        if let (Some(b), Some((key, _))) = (&batch, &message_type) {
            let mut e = syn::Error::new(
                key.span,
                "a batch handler takes every message of its queue: it cannot have a message_type",
            );
            e.combine(syn::Error::new(b.span, "`batch` is given here"));
            return Err(e);
        }
        Ok(HandlerArgs {
            queue,
            batch: batch.is_some(),
            message_type: message_type.map(|(_, arg)| arg),
            krate: krate.path(),
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
    ("started", "Started", "Started"),
    ("circuit_opened", "CircuitOpened", "CircuitOpened"),
    ("circuit_closed", "CircuitClosed", "CircuitClosed"),
];

struct HookArgs {
    queue: QueueArg,
    /// The event's `EventKind` variant and type name.
    event: (Ident, Ident),
    krate: Path,
}

impl Parse for HookArgs {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        if input.is_empty() {
            return Err(input.error("expected the queue and the event: #[sqs_consumer_event_handler(\"jobs\", processing_error)]"));
        }
        let names: Vec<&str> = EVENTS.iter().map(|(n, _, _)| *n).collect();
        let mut queue: Option<QueueArg> = None;
        let mut event: Option<(Ident, Ident)> = None;
        let mut krate = CrateOption::default();
        parse_items(input, |input| {
            if CrateOption::peek(input) {
                return krate.parse(input);
            }
            if queue.is_none() {
                queue = Some(input.parse()?);
                return Ok(());
            }
            if event.is_none() {
                let ident: Ident = input.parse().map_err(|e| {
                    syn::Error::new(
                        e.span(),
                        "expected the event after the queue, e.g. `processing_error`",
                    )
                })?;
                let Some((_, kind, ty)) = EVENTS.iter().find(|(n, _, _)| ident == n) else {
                    return Err(syn::Error::new(
                        ident.span(),
                        format!(
                            "unknown event `{ident}`: expected one of {}",
                            names.join(", ")
                        ),
                    ));
                };
                event = Some((Ident::new(kind, ident.span()), Ident::new(ty, ident.span())));
                return Ok(());
            }
            let extra: TokenStream2 = input.parse::<proc_macro2::TokenTree>()?.into();
            Err(syn::Error::new(
                extra.span(),
                format!(
                    "unexpected `{extra}`: an event hook takes the queue, the event, and the option `crate = \"...\"`"
                ),
            ))
        })?;
        let Some(queue) = queue else {
            return Err(input.error(EXPECTED_QUEUE));
        };
        let Some(event) = event else {
            if let Some(ident) = queue.ident().filter(|i| names.iter().any(|n| *i == n)) {
                return Err(syn::Error::new(
                    ident.span(),
                    format!(
                        "expected the queue before the event: #[sqs_consumer_event_handler(\"jobs\", {ident})]"
                    ),
                ));
            }
            return Err(
                input.error("expected the event after the queue, e.g. `, processing_error`")
            );
        };
        Ok(HookArgs {
            queue,
            event,
            krate: krate.path(),
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
    let krate = &args.krate;
    let queue = args.queue.tokens(krate);
    let message_type = match &args.message_type {
        Some(t) => t.tokens(),
        None => quote!(::core::option::Option::None),
    };
    let (trait_path, erase, output) = if args.batch {
        (
            quote!(#krate::__private::FromBatch),
            quote!(#krate::__private::batch_handler),
            quote!(#krate::IntoBatchResult),
        )
    } else {
        (
            quote!(#krate::__private::FromMessage),
            quote!(#krate::__private::message_handler),
            quote!(#krate::IntoHandlerResult),
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
            #krate::__private::inventory::submit! {
                #krate::__private::HandlerRegistration {
                    queue: #queue,
                    message_type: #message_type,
                    origin: #krate::__private::Origin {
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
    let krate = &args.krate;
    let queue = args.queue.tokens(krate);
    let first_check = bound_check(
        first,
        &quote!(#krate::__private::IsEvent<#krate::#event_ty>),
    );
    let output_check = return_check(&func, quote!(#krate::IntoHandlerResult));
    let extractor = quote!(#krate::__private::FromHookContext);
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
            #krate::__private::inventory::submit! {
                #krate::__private::HookRegistration {
                    queue: #queue,
                    event: #krate::__private::EventKind::#kind,
                    origin: #krate::__private::Origin {
                        name: #name_str,
                        module: ::core::module_path!(),
                    },
                    make: || #krate::__private::hook::<#krate::#event_ty, _, _>(#name),
                }
            }
        };
    }
    .into()
}
