//! One module per command: each turns parsed arguments into library calls and
//! renders the result.

pub mod edit;
