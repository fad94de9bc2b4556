//! The guest program, statically linked and embedded in the kfuzz initramfs as `/init`.
//!
//! As PID 1 (`init` mode) it mounts the pseudo filesystems and keeps the executor running,
//! restarting it if it dies. The executor (`serve` mode) opens the `kfuzz` virtio-serial port,
//! sends the handshake and answers the host's requests. It never decides policy: the host says
//! what to run.

mod data;
mod exec;
mod init;
mod kcov;
mod microbench;
mod pseudo;
mod runner;
mod serve;
mod support;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let mode = args.get(1).map(String::as_str).unwrap_or("");
    let code = if std::process::id() == 1 || mode == "init" {
        init::run()
    } else if mode == "serve" {
        serve::run()
    } else if mode == "microbench" {
        microbench::run()
    } else {
        eprintln!("usage: kfuzz-executor init|serve (as PID 1 it runs init)");
        2
    };
    std::process::exit(code);
}
