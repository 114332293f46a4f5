//! One module per command group: each turns parsed arguments into library
//! calls and renders the result.

pub mod cluster;
pub mod edit;
pub mod promote;
pub mod rebuild;
