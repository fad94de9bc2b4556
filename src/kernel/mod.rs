//! The kernel side of kfuzz: the tree, its configuration, the compiler, the build.

pub mod baseline;
pub mod build;
pub mod compiler;
pub mod fragments;
pub mod kconfig;
pub mod symbols;
pub mod target;
pub mod tree;
