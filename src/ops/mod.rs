//! Operations behind the commands, as cargo's `ops/` sits behind its `commands/`: the CLI parses
//! and prints, an operation sets up VMs and fuzzers and returns what happened.

pub mod fuzz;
