//! kfuzz: a cargo-style build-and-fuzz driver for the Linux kernel.

use clap::Parser;

fn main() {
    let cli = kfuzz::cli::Cli::parse();
    let shell = cli.shell();
    let code = match kfuzz::cli::run(cli, &shell) {
        Ok(code) => code,
        Err(e) => {
            shell.error(&e);
            1
        }
    };
    std::process::exit(code);
}
