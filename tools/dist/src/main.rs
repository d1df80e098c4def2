// SPDX-License-Identifier: GPL-2.0 OR MIT

//! `orion-dist OUT_DIR`: writes the man pages and shell completions of `orion-lvm` and
//! `orion-thin`, generated from their clap definitions (`orion_lvm::cli`, `orion_thin::cli`),
//! so that the packaged documentation cannot drift from the commands.
//!
//! Layout: `OUT_DIR/man/man8/*.8` (one page for each tool and one for each subcommand, as
//! LVM2 has `lvcreate(8)`), `OUT_DIR/completions/{bash,zsh,fish}/`, under the names each
//! shell looks for in its vendor directory.

use clap::{Command, CommandFactory};
use clap_complete::Shell;
use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Both tools are run by the administrator on block devices, like lvm(8) and thin_check(8).
const SECTION: &str = "8";

/// Writes the page of `cmd` and of each of its subcommands (built, so that their names read
/// `orion-lvm-lvcreate`), as `clap_mangen::generate_to` does but in our section.
fn man_pages(cmd: &Command, dir: &Path) -> std::io::Result<()> {
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        man_pages(sub, dir)?;
    }
    let name = cmd.get_display_name().unwrap_or_else(|| cmd.get_name());
    let man = clap_mangen::Man::new(cmd.clone())
        .section(SECTION)
        .source(format!("orion-dm {}", env!("CARGO_PKG_VERSION")))
        .manual("Orion DM");
    let mut out = File::create(dir.join(format!("{name}.{SECTION}")))?;
    man.render(&mut out)
}

/// The file each shell loads on demand for `bin` from its vendor completion directory.
fn completion_file(shell: Shell, bin: &str) -> PathBuf {
    match shell {
        Shell::Bash => PathBuf::from(format!("bash/{bin}")),
        Shell::Zsh => PathBuf::from(format!("zsh/_{bin}")),
        Shell::Fish => PathBuf::from(format!("fish/{bin}.fish")),
        other => PathBuf::from(format!("{other}/{bin}")),
    }
}

fn generate(out: &Path) -> std::io::Result<()> {
    let man_dir = out.join(format!("man/man{SECTION}"));
    fs::create_dir_all(&man_dir)?;
    for mut cmd in [
        orion_lvm::cli::Cli::command(),
        orion_thin::cli::Cli::command(),
    ] {
        // `help` is a clap built-in, not one of the tool's commands: no page for it.
        cmd = cmd.disable_help_subcommand(true);
        cmd.build();
        man_pages(&cmd, &man_dir)?;
        let bin = cmd.get_name().to_owned();
        for shell in [Shell::Bash, Shell::Zsh, Shell::Fish] {
            let path = out.join("completions").join(completion_file(shell, &bin));
            fs::create_dir_all(path.parent().expect("completion files are in a directory"))?;
            clap_complete::generate(shell, &mut cmd, &bin, &mut File::create(&path)?);
        }
    }
    Ok(())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let [_, out] = args.as_slice() else {
        eprintln!("usage: orion-dist OUT_DIR");
        return ExitCode::from(2);
    };
    match generate(Path::new(out)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("orion-dist: {out}: {e}");
            ExitCode::FAILURE
        }
    }
}
