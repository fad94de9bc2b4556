//! No QEMU outlives kfuzz. Each QEMU runs in its own process group with PR_SET_PDEATHSIG=SIGKILL
//! (covers `kill -9` of kfuzz), and a SIGINT/SIGTERM handler kills every registered group before
//! kfuzz exits (covers Ctrl-C, which would otherwise not reach QEMU's group).

use std::os::unix::process::CommandExt;
use std::sync::{Mutex, Once};

static LIVE: Mutex<Vec<u32>> = Mutex::new(Vec::new());
/// Set by a long-running command (`kfuzz run`): the first Ctrl-C asks it to stop cleanly (it
/// shuts its VMs down and prints a summary); a second one kills everything at once.
static GRACEFUL: Mutex<Option<Box<dyn Fn() + Send>>> = Mutex::new(None);
static INTERRUPTS: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

pub fn on_interrupt(f: impl Fn() + Send + 'static) {
    install_handler();
    if let Ok(mut g) = GRACEFUL.lock() {
        *g = Some(Box::new(f));
    }
}
static HANDLER: Once = Once::new();

/// Sets up `cmd` so its process dies with us and sits in its own process group.
pub fn prepare(cmd: &mut std::process::Command) {
    install_handler();
    cmd.process_group(0);
    // SAFETY: prctl is async-signal-safe; nothing else runs between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            // The parent may already be gone.
            if libc::getppid() == 1 {
                libc::_exit(1);
            }
            Ok(())
        });
    }
}

pub fn register(pid: u32) {
    if let Ok(mut l) = LIVE.lock() {
        l.push(pid);
    }
}

pub fn unregister(pid: u32) {
    if let Ok(mut l) = LIVE.lock() {
        l.retain(|p| *p != pid);
    }
}

/// SIGKILL to the process group led by `pid`.
pub fn kill(pid: u32) {
    // SAFETY: kill(2) with a negative pid targets the group; harmless if it is gone.
    unsafe {
        libc::kill(-(pid as libc::pid_t), libc::SIGKILL);
    }
}

pub fn kill_all() {
    if let Ok(l) = LIVE.lock() {
        for pid in l.iter() {
            kill(*pid);
        }
    }
}

fn install_handler() {
    HANDLER.call_once(|| {
        let _ = ctrlc::set_handler(|| {
            let n = INTERRUPTS.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            if n == 0 {
                if let Ok(g) = GRACEFUL.lock() {
                    if let Some(f) = g.as_ref() {
                        eprintln!("\ninterrupted: stopping (Ctrl-C again to kill the VMs now)");
                        f();
                        return;
                    }
                }
            }
            kill_all();
            eprintln!("\ninterrupted: VMs stopped");
            std::process::exit(130);
        });
    });
}
