//! `kfuzz doctor`

use crate::shell::Shell;

/// Check that this machine has what kfuzz needs, and name the Debian package for what is missing
#[derive(Debug, clap::Args)]
pub struct Args {}

pub fn exec(_args: Args, shell: &Shell) -> anyhow::Result<i32> {
    let dir = std::env::current_dir().unwrap_or_else(|_| "/".into());
    let checks = crate::host::doctor(&dir);
    let mut missing_pkgs: Vec<&str> = Vec::new();
    let mut failed = false;
    for c in &checks {
        let mark = if c.ok {
            "ok"
        } else if c.required {
            failed = true;
            "MISSING"
        } else {
            "optional"
        };
        let hint = match (c.ok, c.package) {
            (false, Some(p)) => {
                if !missing_pkgs.contains(&p) {
                    missing_pkgs.push(p);
                }
                format!("  (Debian: apt-get install {p})")
            }
            _ => String::new(),
        };
        shell.println(format!("{mark:>8}  {:<22} {}{hint}", c.name, c.detail));
        shell.json(&serde_json::json!({ "reason": "check", "check": c }));
    }
    if !missing_pkgs.is_empty() {
        shell.println(format!(
            "\nto install what is missing:\n  sudo apt-get install {}",
            missing_pkgs.join(" ")
        ));
    }
    if failed {
        anyhow::bail!("some required tools are missing (see above)");
    }
    Ok(0)
}
