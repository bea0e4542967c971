//! Compile-time behaviour of the attributes: what compiles, and the spanned error for each misuse.

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.pass("tests/ui/pass/*.rs");
    t.compile_fail("tests/ui/fail/*.rs");
}

/// Errors whose text lists the `FromMessage` implementors rustc picks, which depends on the
/// crate's features: checked with the feature set `cargo test --workspace` builds (the tests
/// crate enables these four), as `./scripts/test.sh` runs it.
#[cfg(all(
    feature = "test-util",
    feature = "lambda",
    feature = "metrics",
    feature = "opentelemetry"
))]
#[test]
fn ui_with_the_workspace_features() {
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/ui/fail_workspace/*.rs");
}
