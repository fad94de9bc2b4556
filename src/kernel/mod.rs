//! The kernel side of kfuzz: the tree, its configuration, the compiler, the build.

pub mod baseline;
pub mod build;
pub mod compiler;
pub mod consts;
pub mod fragments;
pub mod kbuild;
pub mod kconfig;
pub mod lines;
pub mod patch;
pub mod symbols;
pub mod syscall_config;
pub mod syscall_sources;
pub mod target;
pub mod tree;
