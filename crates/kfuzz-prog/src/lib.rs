//! kfuzz-prog: what kfuzz knows about syscalls and programs. Syzlang descriptions (parser, type
//! model), the program model with syzkaller's text format, generation, mutation, minimization,
//! and the encoding the executor runs. Pure: no I/O beyond the text it is given.

pub mod ast;
pub mod bounds;
pub mod cond;
pub mod csource;
pub mod exec;
pub mod gen;
pub mod hints;
pub mod image;
pub mod minimize;
pub mod mutate;
pub mod mutate_data;
pub mod parser;
pub mod prog;
pub mod select;
pub mod summary;
pub mod target;
pub mod text;
pub mod types;
pub mod validate;
