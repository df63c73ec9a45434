//! The `#[curio::main]` and `#[curio::test]` attributes of curio-rt.
//!
//! Both turn an `async fn` into an ordinary one that builds a kernel and runs the body as its
//! main task, so programs and tests need not spell out `curio::run` or a kernel builder. Use them
//! through the facade (`#[curio::main]`, `#[curio::test]`): the code they generate names the
//! `curio` crate.
//!
//! Options, separated by commas:
//!
//! | option | `main` | `test` | meaning |
//! |---|---|---|---|
//! | `virtual_clock` | yes | yes | the kernel runs on a virtual clock: sleeps take no wall time |
//! | `max_worker_threads = N` | yes | yes | the `run_in_thread` pool's thread limit |
//! | `monitor` | yes | yes | the live monitor on (`main` also turns it on when `CURIOMONITOR` is set) |
//! | `timeout = "5s"` | no | yes | fail the test (a panic naming the limit) if it runs longer, on the kernel's clock (`ms`, `s` or `min`) |
//!
//! A wrong use is a compile error at the offending token: a function that is not `async`, one
//! with parameters, a `main` with a timeout, an unknown option.
//!
//! # Implementation
//!
//! A procedural macro crate (`syn`, `quote`); it starts no threads and has no `unsafe`.
//!
//! # Examples
//!
//! ```ignore
//! #[curio::main(max_worker_threads = 4)]
//! async fn main() {
//!     let n = curio::run_in_thread(|| 6 * 7).await;
//!     println!("{n}");
//! }
//!
//! #[curio::test(virtual_clock, timeout = "10s")]
//! async fn an_hour_passes_at_once() {
//!     curio::sleep(std::time::Duration::from_secs(3600)).await;
//! }
//! ```
#![forbid(unsafe_code)]

use proc_macro::TokenStream;
use proc_macro2::{Span, TokenStream as TokenStream2};
use quote::{quote, quote_spanned};
use syn::parse::{Parse, ParseStream};
use syn::punctuated::Punctuated;
use syn::spanned::Spanned;
use syn::{Expr, ExprLit, ItemFn, Lit, Meta, Token};

/// Marks the `async fn main` of a program that runs on curio: it becomes a `fn main` that
/// builds a kernel with the given options and runs the body as its main task (Curio's
/// `curio.run(main)`).
///
/// Options: `virtual_clock`, `max_worker_threads = N`. See the crate docs.
#[proc_macro_attribute]
pub fn main(args: TokenStream, item: TokenStream) -> TokenStream {
    expand(Kind::Main, args.into(), item.into()).into()
}

/// Marks an `async fn` test that runs on a fresh curio kernel: it becomes a `#[test] fn`.
///
/// Options: `virtual_clock`, `timeout = "5s"` (the test fails with a message instead of
/// hanging), `max_worker_threads = N`. See the crate docs.
#[proc_macro_attribute]
pub fn test(args: TokenStream, item: TokenStream) -> TokenStream {
    expand(Kind::Test, args.into(), item.into()).into()
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Main,
    Test,
}

impl Kind {
    fn attr(self) -> &'static str {
        match self {
            Kind::Main => "#[curio::main]",
            Kind::Test => "#[curio::test]",
        }
    }
}

/// The parsed options.
#[derive(Default)]
struct Options {
    virtual_clock: bool,
    monitor: bool,
    max_worker_threads: Option<Expr>,
    /// The timeout in milliseconds, and the span of its value.
    timeout_ms: Option<(u64, Span)>,
}

struct Args(Punctuated<Meta, Token![,]>);

impl Parse for Args {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        Ok(Args(Punctuated::parse_terminated(input)?))
    }
}

fn parse_options(kind: Kind, args: TokenStream2) -> syn::Result<Options> {
    let args: Args = syn::parse2(args)?;
    let mut opts = Options::default();
    for meta in args.0 {
        let name = meta.path().get_ident().map(ToString::to_string);
        match (name.as_deref(), &meta) {
            (Some("virtual_clock"), Meta::Path(_)) => opts.virtual_clock = true,
            (Some("monitor"), Meta::Path(_)) => opts.monitor = true,
            (Some("max_worker_threads"), Meta::NameValue(nv)) => {
                opts.max_worker_threads = Some(nv.value.clone());
            }
            (Some("timeout"), Meta::NameValue(nv)) if kind == Kind::Test => {
                opts.timeout_ms = Some((parse_duration(&nv.value)?, nv.value.span()));
            }
            (Some("timeout"), _) if kind == Kind::Main => {
                return Err(syn::Error::new(
                    meta.span(),
                    "#[curio::main] takes no `timeout`: wrap the work in `curio::timeout_after`",
                ));
            }
            (Some("virtual_clock" | "monitor" | "max_worker_threads" | "timeout"), _) => {
                return Err(syn::Error::new(
                    meta.span(),
                    format!(
                        "malformed option; expected {}",
                        match name.as_deref() {
                            Some("virtual_clock") => "`virtual_clock`",
                            Some("monitor") => "`monitor`",
                            Some("max_worker_threads") => "`max_worker_threads = N`",
                            _ => "`timeout = \"5s\"`",
                        }
                    ),
                ));
            }
            _ => {
                let known = match kind {
                    Kind::Main => "`virtual_clock`, `monitor`, `max_worker_threads = N`",
                    Kind::Test => {
                        "`virtual_clock`, `timeout = \"5s\"`, `monitor`, `max_worker_threads = N`"
                    }
                };
                return Err(syn::Error::new(
                    meta.path().span(),
                    format!(
                        "unknown option for {}; the options are {known}",
                        kind.attr()
                    ),
                ));
            }
        }
    }
    Ok(opts)
}

/// Milliseconds in a string literal such as `"250ms"`, `"5s"` or `"2min"`.
fn parse_duration(value: &Expr) -> syn::Result<u64> {
    let Expr::Lit(ExprLit {
        lit: Lit::Str(s), ..
    }) = value
    else {
        return Err(syn::Error::new(
            value.span(),
            "expected a string such as \"5s\", \"250ms\" or \"2min\"",
        ));
    };
    let text = s.value();
    let text = text.trim();
    let (digits, scale) = if let Some(n) = text.strip_suffix("ms") {
        (n, 1)
    } else if let Some(n) = text.strip_suffix("min") {
        (n, 60_000)
    } else if let Some(n) = text.strip_suffix('s') {
        (n, 1000)
    } else {
        return Err(syn::Error::new(
            s.span(),
            "a timeout needs a unit: \"ms\", \"s\" or \"min\"",
        ));
    };
    digits
        .trim()
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(scale))
        .filter(|ms| *ms > 0)
        .ok_or_else(|| syn::Error::new(s.span(), "expected a positive whole number and a unit"))
}

fn expand(kind: Kind, args: TokenStream2, item: TokenStream2) -> TokenStream2 {
    let func: ItemFn = match syn::parse2(item) {
        Ok(f) => f,
        Err(e) => return e.to_compile_error(),
    };
    let stub = {
        // On an error, a body-less stand-in of the function stays, so the error is the only
        // one (no "main not found", no "main cannot be async").
        let ItemFn {
            attrs, vis, sig, ..
        } = &func;
        let mut sig = sig.clone();
        sig.asyncness = None;
        quote! {
            #(#attrs)*
            #[allow(unused_variables, unreachable_code)]
            #vis #sig { ::core::unreachable!() }
        }
    };
    match expand_fn(kind, args, func) {
        Ok(tokens) => tokens,
        Err(e) => {
            let err = e.to_compile_error();
            quote! { #err #stub }
        }
    }
}

fn expand_fn(kind: Kind, args: TokenStream2, func: ItemFn) -> syn::Result<TokenStream2> {
    let sig = &func.sig;
    if sig.asyncness.is_none() {
        return Err(syn::Error::new(
            sig.fn_token.span(),
            format!("{} needs an `async fn`", kind.attr()),
        ));
    }
    if !sig.inputs.is_empty() {
        return Err(syn::Error::new(
            sig.inputs.span(),
            format!("{} functions take no parameters", kind.attr()),
        ));
    }
    if !sig.generics.params.is_empty() {
        return Err(syn::Error::new(
            sig.generics.span(),
            format!("{} functions cannot be generic", kind.attr()),
        ));
    }
    if kind == Kind::Main && sig.ident != "main" {
        return Err(syn::Error::new(
            sig.ident.span(),
            "#[curio::main] goes on `async fn main`",
        ));
    }
    let opts = parse_options(kind, args)?;
    let ItemFn {
        attrs,
        vis,
        sig,
        block,
    } = func;
    let mut sync_sig = sig.clone();
    sync_sig.asyncness = None;
    let span = block.span();
    let mut builder = quote_spanned! {span=> ::curio::Kernel::builder() };
    if opts.virtual_clock {
        builder = quote! { #builder.virtual_clock(true) };
    }
    if let Some(n) = &opts.max_worker_threads {
        builder = quote! { #builder.max_worker_threads(#n) };
    }
    if opts.monitor {
        builder = quote! { #builder.monitor(true) };
    }
    if kind == Kind::Main {
        // Curio's convention: `CURIOMONITOR` in the environment turns the monitor on.
        builder = quote! { #builder.monitor_from_env() };
    }
    let body = match opts.timeout_ms {
        None => quote! { async move #block },
        Some((ms, tspan)) => quote_spanned! {tspan=>
            async move {
                let __limit = ::std::time::Duration::from_millis(#ms);
                match ::curio::timeout_after(__limit, async move #block).await {
                    ::std::result::Result::Ok(v) => v,
                    ::std::result::Result::Err(_) => ::std::panic!(
                        "test timed out: it ran longer than {:?} on its kernel's clock",
                        __limit
                    ),
                }
            }
        },
    };
    let test_attr = match kind {
        Kind::Test => quote! { #[::core::prelude::v1::test] },
        Kind::Main => quote! {},
    };
    Ok(quote! {
        #test_attr
        #(#attrs)*
        #vis #sync_sig {
            #[allow(unused_imports)]
            use ::curio::prelude::*;
            let mut __kernel = #builder.build();
            __kernel.run(#body)
        }
    })
}
