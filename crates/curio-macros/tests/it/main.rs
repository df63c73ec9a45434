//! Compile-fail tests of the attributes' error messages (the working expansions are tested by
//! the facade's suite, `tests/it/macros.rs`, which has the `curio` crate they name).

#[test]
fn errors_point_at_the_offending_token() {
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/ui/*.rs");
}
