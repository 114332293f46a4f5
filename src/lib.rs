//! nixflip: flip primary/standby roles in a NixOS cluster flake, losslessly.
//!
//! The binary (`src/main.rs`) is a thin layer over this library.

pub mod forge;
