// SPDX-License-Identifier: GPL-2.0 OR MIT

//! The command line of `orion-thin`, in the library so that its man pages and shell
//! completions are generated from this one definition (tools/dist).

use clap::{Parser, Subcommand};
use std::path::PathBuf;

#[derive(Parser)]
#[command(name = "orion-thin", version, about = "dm-thin pool metadata tools")]
pub struct Cli {
    #[command(subcommand)]
    pub cmd: Cmd,
}

#[derive(Subcommand)]
pub enum Cmd {
    /// Checks the metadata: structure, checksums and every reference count.
    Check {
        /// Metadata device or file.
        metadata: PathBuf,
        /// Print nothing; only the exit code tells.
        #[arg(short, long)]
        quiet: bool,
    },
    /// Prints the metadata as thin_dump XML.
    Dump {
        /// Metadata device or file.
        metadata: PathBuf,
        /// Dump the held metadata snapshot (or, with `-m=BLOCK`, the one at that block).
        #[arg(short = 'm', long = "metadata-snap", num_args = 0..=1, require_equals = true, default_missing_value = "held")]
        metadata_snap: Option<String>,
        /// Write to this file instead of stdout.
        #[arg(short)]
        output: Option<PathBuf>,
    },
    /// Writes metadata from thin_dump XML.
    Restore {
        /// XML input.
        #[arg(short)]
        input: PathBuf,
        /// Metadata device or file (its size sets the metadata size).
        #[arg(short)]
        output: PathBuf,
    },
    /// Salvages damaged metadata onto a new device or file, as thin_repair does.
    Repair {
        /// Damaged metadata device or file.
        #[arg(short)]
        input: PathBuf,
        /// Metadata device or file to write (its size sets the metadata size).
        #[arg(short)]
        output: PathBuf,
        /// Transaction id to write instead of the superblock's (needed when it is unreadable).
        #[arg(long)]
        transaction_id: Option<u64>,
        /// Data block size in sectors instead of the superblock's (needed when it is unreadable).
        #[arg(long)]
        data_block_size: Option<u32>,
        /// Number of data blocks instead of the superblock's.
        #[arg(long)]
        nr_data_blocks: Option<u64>,
    },
    /// Lists devices with mapped and exclusive blocks.
    Ls {
        /// Metadata device or file.
        metadata: PathBuf,
    },
}
