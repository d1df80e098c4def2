// SPDX-License-Identifier: GPL-2.0 OR MIT

//! Exit codes, as LVM2's commands return them, and the error type that marks bad usage.
//!
//! LVM2 returns `EINVALID_CMD_LINE` (3) when the command line itself is wrong (an unknown
//! option, a missing or contradictory argument, a malformed size or name) and
//! `ECMD_FAILED` (5) when a well-formed command could not be carried out. Every exit of
//! `orion-lvm` goes through [`code`] or [`clap_code`].

/// The command did what was asked.
pub const SUCCESS: u8 = 0;
/// LVM2's `EINVALID_CMD_LINE`: the command line is wrong.
pub const INVALID_CMD_LINE: u8 = 3;
/// LVM2's `ECMD_FAILED`: the command failed.
pub const CMD_FAILED: u8 = 5;

/// A command line that cannot be carried out as written.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

/// A [`UsageError`] as an `anyhow` error.
pub fn usage(msg: impl Into<String>) -> anyhow::Error {
    UsageError(msg.into()).into()
}

/// A failure the command has already reported on stderr (and summed up on stdout, as
/// `pvresize` does): exit [`CMD_FAILED`] without another message.
#[derive(Debug, thiserror::Error)]
#[error("")]
pub struct Reported;

/// The exit code for `err`: [`INVALID_CMD_LINE`] when any error in its chain is a
/// [`UsageError`], else [`CMD_FAILED`].
pub fn code(err: &anyhow::Error) -> u8 {
    if err
        .chain()
        .any(|e| e.downcast_ref::<UsageError>().is_some())
    {
        INVALID_CMD_LINE
    } else {
        CMD_FAILED
    }
}

/// The exit code for a command line clap rejected (or answered, for `--help`).
pub fn clap_code(err: &clap::Error) -> u8 {
    use clap::error::ErrorKind;
    match err.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => SUCCESS,
        _ => INVALID_CMD_LINE,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use anyhow::Context;

    #[test]
    fn usage_errors_exit_3_even_with_context() {
        let e = Err::<(), _>(usage("give the LV as VG/LV"))
            .context("lvremove")
            .unwrap_err();
        assert_eq!(code(&e), INVALID_CMD_LINE);
    }

    #[test]
    fn other_errors_exit_5() {
        assert_eq!(
            code(&anyhow::anyhow!("volume group vg not found")),
            CMD_FAILED
        );
    }

    #[test]
    fn clap_help_is_success_and_bad_options_are_usage() {
        use clap::Parser;
        let help = crate::cli::Cli::try_parse_from(["orion-lvm", "--help"])
            .err()
            .unwrap();
        assert_eq!(clap_code(&help), SUCCESS);
        let bad = crate::cli::Cli::try_parse_from(["orion-lvm", "lvs", "--bogus"])
            .err()
            .unwrap();
        assert_eq!(clap_code(&bad), INVALID_CMD_LINE);
    }
}
