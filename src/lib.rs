//! kfuzz as a library: the operations behind the `kfuzz` command, usable without the CLI.

pub mod ci_report;
pub mod cli;
pub mod cover;
pub mod crash_dir;
pub mod dashboard;
pub mod descriptions;
pub mod fsutil;
pub mod fuzz;
pub mod guest;
pub mod host;
pub mod image;
pub mod kernel;
pub mod manifest;
pub mod ops;
pub mod project;
pub mod regress;
pub mod report;
pub mod repro;
pub mod shell;
pub mod vm;
