//! Fuzz target: `check` on a fixture flake with one of its files replaced
//! by the input; it must answer (findings or a diagnostic), never panic.
//! The cases are shared with the replay of the corpus in
//! `tests/fuzz_corpus.rs`.

#![no_main]

#[path = "../../tests/fuzz_support/mod.rs"]
mod fuzz_support;

thread_local! {
    // Loaded once: the parsed cluster is not `Sync`, and libFuzzer runs
    // every input on one thread.
    static FLAKE: fuzz_support::Flake = fuzz_support::Flake::fixture();
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    FLAKE.with(|flake| flake.check(data));
});
