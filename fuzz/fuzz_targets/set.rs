//! Fuzz target: `set` on any bytes, held to the editor's guarantees
//! (`nixflip::nixedit::invariants`). The cases are shared with the replay
//! of the corpus in `tests/fuzz_corpus.rs`.

#![no_main]

#[path = "../../tests/fuzz_support/mod.rs"]
mod fuzz_support;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    fuzz_support::editor(nixflip::nixedit::invariants::Operation::Set, data);
});
