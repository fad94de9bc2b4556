//! `kfuzz prog fmt|gen|mutate`: programs for people and scripts.

use std::path::PathBuf;

use anyhow::Context;
use kfuzz_prog::{gen, mutate, text};
use rand::SeedableRng;

use super::syscalls::TargetArgs;
use crate::shell::Shell;

/// Program tools: canonical formatting, generation, mutation
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    pub command: ProgCommand,
}

#[derive(Debug, clap::Subcommand)]
pub enum ProgCommand {
    /// Print each program in canonical text
    Fmt {
        files: Vec<PathBuf>,
        /// Print nothing; fail naming the files that are not canonical or do not parse
        #[arg(long)]
        check: bool,
        #[command(flatten)]
        target: TargetArgs,
    },
    /// Print N generated programs, separated by a blank line
    Gen {
        #[arg(short = 'n', default_value_t = 1)]
        n: usize,
        #[arg(long)]
        seed: Option<u64>,
        #[command(flatten)]
        target: TargetArgs,
    },
    /// Print one mutant of a program
    Mutate {
        file: PathBuf,
        #[arg(long)]
        seed: Option<u64>,
        #[command(flatten)]
        target: TargetArgs,
    },
}

fn rng(seed: Option<u64>) -> rand::rngs::SmallRng {
    match seed {
        Some(s) => rand::rngs::SmallRng::seed_from_u64(s),
        None => rand::rngs::SmallRng::from_entropy(),
    }
}

pub fn exec(args: Args, shell: &Shell) -> anyhow::Result<i32> {
    match args.command {
        ProgCommand::Fmt {
            files,
            check,
            target,
        } => {
            let l = target.load(shell)?;
            let t = &l.loaded.target;
            let mut bad = 0;
            for f in &files {
                let src = std::fs::read_to_string(f)
                    .with_context(|| format!("cannot read {}", f.display()))?;
                match text::parse(t, &src) {
                    Ok(p) => {
                        let canon = text::format(t, &p);
                        if check {
                            if canon != src {
                                bad += 1;
                                eprintln!(
                                    "{}: not in canonical form (run `kfuzz prog fmt` on it)",
                                    f.display()
                                );
                            }
                        } else {
                            print!("{canon}");
                            if files.len() > 1 {
                                println!();
                            }
                        }
                    }
                    Err(e) => {
                        bad += 1;
                        eprintln!("{}:{e}", f.display());
                    }
                }
            }
            if bad > 0 {
                anyhow::bail!(
                    "{bad} of {} program(s) are not canonical or do not parse",
                    files.len()
                );
            }
            Ok(0)
        }
        ProgCommand::Gen { n, seed, target } => {
            let l = target.load(shell)?;
            let t = &l.loaded.target;
            let ct = gen::ChoiceTable::new(t, &l.selection.enabled);
            if ct.enabled.is_empty() {
                anyhow::bail!("no call is selected: see `kfuzz syscalls`");
            }
            let mut rng = rng(seed);
            for i in 0..n {
                if i > 0 {
                    println!();
                }
                let p = gen::generate(t, &ct, &mut rng, 5);
                print!("{}", text::format(t, &p));
            }
            Ok(0)
        }
        ProgCommand::Mutate { file, seed, target } => {
            let l = target.load(shell)?;
            let t = &l.loaded.target;
            let src = std::fs::read_to_string(&file)
                .with_context(|| format!("cannot read {}", file.display()))?;
            let p = text::parse(t, &src).map_err(|e| anyhow::anyhow!("{}:{e}", file.display()))?;
            let ct = gen::ChoiceTable::new(t, &l.selection.enabled);
            let mut rng = rng(seed);
            let m = mutate::mutate(t, &ct, &mut rng, &p, &[]);
            print!("{}", text::format(t, &m));
            Ok(0)
        }
    }
}
