//! Compile-time tests of `#[job]`: each file in `tests/ui/` makes one
//! mistake and its `.stderr` holds the expected message; the files in
//! `tests/ui/pass/` must compile.
//!
//! Regenerate the `.stderr` files with `TRYBUILD=overwrite cargo test --test ui`.

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/ui/*.rs");
    t.pass("tests/ui/pass/*.rs");
}
