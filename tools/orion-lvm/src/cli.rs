// SPDX-License-Identifier: GPL-2.0 OR MIT

//! The command line of `orion-lvm`, in the library so that its man pages and shell
//! completions are generated from this one definition (tools/dist).

use crate::commands::create::LvcreateArgs;
use clap::{Args, Parser, Subcommand};

#[derive(Parser)]
#[command(name = "orion-lvm", version, about = "LVM2-compatible volume manager")]
pub struct Cli {
    /// Put this before every target name in the tables we load (orion_dm.ko loaded with
    /// `prefix=`, beside the C targets).
    #[arg(long, global = true, default_value = "")]
    pub target_prefix: String,
    /// Only look at these devices (comma-separated or repeated), as LVM2's `--devices`.
    #[arg(
        long = "devices",
        id = "scan_devices",
        global = true,
        value_delimiter = ','
    )]
    pub scan_devices: Vec<String>,
    /// lvm.conf settings that override the file's, as LVM2's `--config` (repeatable):
    /// `activation { thin_pool_autoextend_threshold = 70 }`.
    #[arg(long = "config", global = true)]
    pub config: Vec<String>,
    #[command(subcommand)]
    pub cmd: Cmd,
}

/// The options of the report commands, as LVM2's.
#[derive(Args, Clone, Debug, Default)]
pub struct ReportOpts {
    /// Fields to show, comma-separated; `+FIELDS` adds to the defaults, `-FIELDS` drops.
    #[arg(short = 'o', long = "options", allow_hyphen_values = true)]
    pub options: Vec<String>,
    /// Sort by these fields (`-FIELD` for descending).
    #[arg(short = 'O', long = "sort", allow_hyphen_values = true)]
    pub sort: Option<String>,
    /// Only rows matching these criteria (`lv_size>10m && vg_name=vg`).
    #[arg(short = 'S', long = "select")]
    pub select: Option<String>,
    /// Units of sizes: r (default), h, H, b, s, k, m, g, t, p, e, or upper case for
    /// powers of 1000.
    #[arg(long)]
    pub units: Option<String>,
    /// Sizes without a unit suffix.
    #[arg(long)]
    pub nosuffix: bool,
    /// No heading line.
    #[arg(long)]
    pub noheadings: bool,
    /// Separate fields with this instead of aligning them.
    #[arg(long)]
    pub separator: Option<String>,
    /// Align fields in columns even with `--separator`.
    #[arg(long)]
    pub aligned: bool,
    /// One line per field, each object's value in turn (a transposed report).
    #[arg(long)]
    pub rows: bool,
    /// Each value as `LVM2_FIELD_NAME='value'`, for shell `eval`.
    #[arg(long)]
    pub nameprefixes: bool,
    /// No quotes around values with `--nameprefixes`.
    #[arg(long)]
    pub unquoted: bool,
    /// `basic` or `json`.
    #[arg(long = "reportformat")]
    pub report_format: Option<String>,
    /// JSON output (same as `--reportformat json`).
    #[arg(long)]
    pub json: bool,
}

// Parsed once per run: the size of the biggest variant does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand)]
pub enum Cmd {
    /// Initialises devices as physical volumes.
    Pvcreate {
        /// Overwrite other signatures.
        #[arg(short, long)]
        force: bool,
        /// Metadata areas: 1 (after the label) or 2 (also at the end of the device).
        #[arg(
            long = "pvmetadatacopies",
            visible_alias = "metadatacopies",
            default_value_t = 1
        )]
        metadata_copies: u32,
        /// Devices.
        #[arg(required = true)]
        devices: Vec<String>,
    },
    /// Removes PV labels.
    Pvremove {
        /// Devices.
        #[arg(required = true)]
        devices: Vec<String>,
    },
    /// Reports physical volumes.
    Pvs {
        /// Report options.
        #[command(flatten)]
        report: ReportOpts,
        /// PV devices to report (default: all).
        names: Vec<String>,
    },
    /// Creates a volume group.
    Vgcreate {
        /// Extent size (default 4 MiB).
        #[arg(short = 's', long = "physicalextentsize", default_value = "4m")]
        extent_size: String,
        /// VG name.
        name: String,
        /// PVs (made PVs when they are not).
        #[arg(required = true)]
        devices: Vec<String>,
    },
    /// Adds devices to a volume group.
    Vgextend {
        /// VG name.
        name: String,
        /// Devices (made PVs when they are not).
        #[arg(required = true)]
        devices: Vec<String>,
    },
    /// Removes unused PVs from a volume group.
    Vgreduce {
        /// VG name.
        name: String,
        /// PVs.
        #[arg(required = true)]
        devices: Vec<String>,
    },
    /// Writes a volume group's metadata to a file (default /etc/lvm/backup/VG).
    Vgcfgbackup {
        /// Output file.
        #[arg(short = 'f', long = "file")]
        file: Option<String>,
        /// VG name.
        name: String,
    },
    /// Writes metadata from a backup file back to a volume group's PVs.
    Vgcfgrestore {
        /// Backup file.
        #[arg(short = 'f', long = "file")]
        file: String,
        /// VG name.
        name: String,
    },
    /// Removes a volume group.
    Vgremove {
        /// Also when it has LVs.
        #[arg(short, long)]
        force: bool,
        /// VG name.
        name: String,
    },
    /// Activates (`-ay`) or deactivates (`-an`) the LVs of a volume group.
    Vgchange {
        /// `y` or `n`.
        #[arg(short = 'a', long = "activate")]
        activate: String,
        /// VG name.
        name: String,
    },
    /// Activates (`-ay`) or deactivates (`-an`) one LV.
    Lvchange {
        /// `y` or `n`.
        #[arg(short = 'a', long = "activate")]
        activate: String,
        /// VG/LV.
        lv: String,
    },
    /// Reports volume groups.
    Vgs {
        /// Report options.
        #[command(flatten)]
        report: ReportOpts,
        /// VGs to report (default: all).
        names: Vec<String>,
    },
    /// Creates a logical volume: linear, striped (`-i`), mirror (`-m`), thin pool
    /// (`--type thin-pool`), thin volume (`-V`), snapshot (`-s`).
    Lvcreate(LvcreateArgs),
    /// Grows a logical volume (online when active).
    Lvextend {
        /// New size, or `+SIZE` to add.
        #[arg(short = 'L', long = "size", allow_hyphen_values = true)]
        size: Option<String>,
        /// New size in extents, or `+N`.
        #[arg(short = 'l', long = "extents", allow_hyphen_values = true)]
        extents: Option<String>,
        /// Allocation policy for the new extents (default: the LV's).
        #[arg(long = "alloc")]
        alloc: Option<String>,
        /// VG/LV.
        lv: String,
    },
    /// Shrinks a logical volume (online when active; the file system must fit).
    Lvreduce {
        /// New size, or `-SIZE` to remove.
        #[arg(short = 'L', long = "size", allow_hyphen_values = true)]
        size: Option<String>,
        /// New size in extents, or `-N`.
        #[arg(short = 'l', long = "extents", allow_hyphen_values = true)]
        extents: Option<String>,
        /// Do not ask (there is no prompt; accepted for LVM2 compatibility).
        #[arg(short, long)]
        force: bool,
        /// VG/LV.
        lv: String,
    },
    /// Grows or shrinks a logical volume.
    Lvresize {
        /// New size, `+SIZE` or `-SIZE`.
        #[arg(short = 'L', long = "size", allow_hyphen_values = true)]
        size: Option<String>,
        /// New size in extents, `+N` or `-N`.
        #[arg(short = 'l', long = "extents", allow_hyphen_values = true)]
        extents: Option<String>,
        /// Allocation policy for the new extents (default: the LV's).
        #[arg(long = "alloc")]
        alloc: Option<String>,
        /// VG/LV.
        lv: String,
    },
    /// Moves the extents of a PV to other PVs of its VG, online; without a source,
    /// carries on with an interrupted move; `--abort` ends a move, keeping what was copied.
    Pvmove {
        /// Seconds between progress lines (`  PV: Moved: N.NN%`; 0: none; default 15).
        #[arg(short = 'i', long = "interval", default_value_t = 15)]
        interval: u64,
        /// Start the move and leave it to a background poller.
        #[arg(short = 'b', long = "background")]
        background: bool,
        /// Abort the move in progress: copied ranges stay moved, the others go back.
        #[arg(long, conflicts_with = "background")]
        abort: bool,
        /// Internal: the background poller `-b` starts.
        #[arg(long = "as-poller", hide = true)]
        as_poller: bool,
        /// Source PV.
        source: Option<String>,
        /// Destination PVs (default: any other PV of the VG).
        destinations: Vec<String>,
    },
    /// Merges a snapshot back into its origin (`--merge`): at once when the origin is
    /// active (waiting for the end), else on its next activation; `--repair` repairs an
    /// inactive thin pool's metadata into its spare, or removes or replaces the failed
    /// images and log of a mirror.
    Lvconvert {
        /// Merge the snapshot.
        #[arg(long, conflicts_with = "repair")]
        merge: bool,
        /// Repair a thin pool's metadata (lvm.conf `global/thin_repair_executable`) or a
        /// mirror with failed devices.
        #[arg(long)]
        repair: bool,
        /// With `--repair` of a mirror: follow lvm.conf's `mirror_image_fault_policy` and
        /// `mirror_log_fault_policy` (else remove failed images, replace a failed log).
        #[arg(long = "use-policies", requires = "repair")]
        use_policies: bool,
        /// With `--repair` of a mirror: do not wait for new images to resynchronise.
        #[arg(short = 'b', long = "background")]
        background: bool,
        /// Seconds between progress lines while a merge or a mirror resync runs in the
        /// foreground (LVM2's default 15; 0 prints none).
        #[arg(short = 'i', long = "interval")]
        interval: Option<u64>,
        /// VG/SNAPSHOT (`--merge`) or VG/POOL (`--repair`).
        lv: String,
    },
    /// Watches the active thin pools, snapshots and mirrors of VGs (all when none is
    /// named) for dm events, extends pools and snapshots past their lvm.conf autoextend
    /// thresholds and repairs failed mirrors, as dmeventd does; logs to stderr.
    Monitor {
        /// One pass, then exit.
        #[arg(long)]
        once: bool,
        /// Seconds between checks when no event comes (dmeventd's 10).
        #[arg(short = 'i', long = "interval", default_value_t = 10)]
        interval: u64,
        /// VGs to monitor.
        vgs: Vec<String>,
    },
    /// Removes a logical volume.
    Lvremove {
        /// VG/LV.
        lv: String,
    },
    /// Shows physical volumes in LVM2's long format (`-c`: colon-separated).
    Pvdisplay {
        /// One colon-separated line per PV.
        #[arg(short = 'c', long = "colon")]
        colon: bool,
        /// PV devices (default: all).
        names: Vec<String>,
    },
    /// Shows volume groups in LVM2's long format (`-c`: colon-separated).
    Vgdisplay {
        /// One colon-separated line per VG.
        #[arg(short = 'c', long = "colon")]
        colon: bool,
        /// VGs (default: all).
        names: Vec<String>,
    },
    /// Shows logical volumes in LVM2's long format (`-c`: colon-separated).
    Lvdisplay {
        /// Also internal LVs.
        #[arg(short = 'a', long = "all")]
        all: bool,
        /// One colon-separated line per LV.
        #[arg(short = 'c', long = "colon")]
        colon: bool,
        /// VGs or VG/LVs (default: all).
        names: Vec<String>,
    },
    /// Lists PVs with their VG, size and free space.
    Pvscan {
        /// Device names only.
        #[arg(short = 's', long = "short")]
        short: bool,
    },
    /// Lists volume groups.
    Vgscan,
    /// Lists logical volumes with their state and size.
    Lvscan {
        /// Also internal LVs.
        #[arg(short = 'a', long = "all")]
        all: bool,
    },
    /// Renames a volume group (the dm devices of active LVs too).
    Vgrename {
        /// Current name.
        old: String,
        /// New name.
        new: String,
    },
    /// Renames a logical volume (and its dm devices when active): `VG OLD NEW`,
    /// `VG/OLD VG/NEW` or `VG/OLD NEW`.
    Lvrename {
        /// The names.
        #[arg(num_args = 2..=3, required = true)]
        names: Vec<String>,
    },
    /// Updates a PV's size in its metadata after its device grew or shrank.
    Pvresize {
        /// Use this size instead of the device's (smaller than the device needs `-y`).
        #[arg(long = "setphysicalvolumesize")]
        size: Option<String>,
        /// Answer yes to LVM2's question about shrinking.
        #[arg(short = 'y', long = "yes")]
        yes: bool,
        /// PV devices.
        #[arg(required = true)]
        devices: Vec<String>,
    },
    /// Reports each VG with its PVs, LVs, PV segments and LV segments; `--configreport
    /// TYPE` (vg, pv, lv, pvseg, seg) chooses the section later `-o`/`-O` apply to.
    Fullreport {
        /// `--configreport TYPE -o FIELDS -O KEYS`..., `--reportformat`, `--units`,
        /// `--nosuffix`, `--noheadings`, `--separator`, and VG names.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Reports logical volumes.
    Lvs {
        /// Also internal LVs (images, pool data and metadata, spares), named in brackets.
        #[arg(short = 'a', long = "all")]
        all: bool,
        /// Report options.
        #[command(flatten)]
        report: ReportOpts,
        /// VGs or VG/LVs to report (default: all).
        names: Vec<String>,
        /// Add live I/O counters of active LVs (from /sys/block/dm-N/stat).
        #[arg(long)]
        metrics: bool,
    },
}
