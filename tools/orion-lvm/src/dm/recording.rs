// SPDX-License-Identifier: GPL-2.0 OR MIT

//! A simulated device-mapper that records every change made through it, for host tests
//! of activation order, pvmove steps and the other planning code: devices have live and
//! inactive tables, suspend and resume swap them as the kernel does, and the status lines
//! are the ones of a healthy device (mirrors in sync, thin pools at the transaction id
//! last set by message, snapshots empty, merges done).

use super::backend::DmBackend;
use super::ioctl::{DevId, DevInfo, DmError, Target, ACTIVE_PRESENT, INACTIVE_PRESENT, SUSPEND};
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::io;

/// Major number of the simulated devices.
pub const MAJOR: u32 = 253;

#[derive(Clone, Debug, Default)]
struct SimDev {
    uuid: String,
    minor: u32,
    live: Option<Vec<Target>>,
    inactive: Option<Vec<Target>>,
    suspended: bool,
    event_nr: u32,
    /// Status parameters set by a test in place of the healthy ones.
    status: Option<Vec<String>>,
}

#[derive(Default)]
struct State {
    devs: BTreeMap<String, SimDev>,
    next_minor: u32,
    modules: Vec<String>,
    log: Vec<String>,
    /// Transaction id of each thin pool's metadata, by its metadata device (`major:minor`,
    /// the first argument of the thin-pool table): like the kernel's, it is on the
    /// metadata device, so a pool reloaded or recreated over it keeps it.
    pool_transaction_ids: BTreeMap<String, u64>,
    /// Whether an event was raised since the last `arm_events`.
    event_pending: bool,
}

/// The simulated device-mapper; [`RecordingDm::log`] lists what was done, one line per
/// change: `create NAME`, `load NAME: TABLE`, `suspend NAME`, `resume NAME`,
/// `remove NAME`, `rename OLD NEW`, `message NAME: MSG`, `node NAME`, `link VG/LV`, `unlink VG/LV`,
/// `zero NAME`, `modprobe MODULE`, and the lines given to [`RecordingDm::note`].
#[derive(Default)]
pub struct RecordingDm {
    state: RefCell<State>,
}

fn not_found(call: &'static str, dev: &DevId) -> DmError {
    DmError {
        call,
        device: name_of(dev),
        err: io::Error::from_raw_os_error(libc::ENXIO),
    }
}

fn name_of(dev: &DevId) -> String {
    match dev {
        DevId::Name(n) | DevId::Uuid(n) => n.clone(),
    }
}

fn table_text(t: &[Target]) -> String {
    t.iter()
        .map(|t| format!("{} {} {} {}", t.start, t.len, t.kind, t.params))
        .collect::<Vec<_>>()
        .join("; ")
}

impl RecordingDm {
    /// An empty device-mapper with the built-in targets (linear, striped, error).
    pub fn new() -> RecordingDm {
        RecordingDm::default()
    }

    /// Everything done so far.
    pub fn log(&self) -> Vec<String> {
        self.state.borrow().log.clone()
    }

    /// The log lines starting with `verb ` (e.g. `"resume"`), without the verb.
    pub fn calls(&self, verb: &str) -> Vec<String> {
        let p = format!("{verb} ");
        self.log()
            .into_iter()
            .filter_map(|l| l.strip_prefix(&p).map(str::to_owned))
            .collect()
    }

    /// Adds `line` of the caller's to the log (a metadata commit), so the log shows it
    /// among the device changes.
    pub fn note(&self, line: String) {
        self.record(line);
    }

    /// Forgets the log (the devices stay).
    pub fn clear_log(&self) {
        self.state.borrow_mut().log.clear();
    }

    /// Names of the devices that exist, sorted.
    pub fn devices(&self) -> Vec<String> {
        self.state.borrow().devs.keys().cloned().collect()
    }

    /// Makes `status` report `params` (one string per target line) for `name` from now
    /// on, and raises an event on it, as a target calling `dm_table_event` would.
    pub fn set_status(&self, name: &str, params: &[&str]) {
        let mut st = self.state.borrow_mut();
        if let Some(d) = st.devs.get_mut(name) {
            d.status = Some(params.iter().map(|p| (*p).to_owned()).collect());
            d.event_nr += 1;
            st.event_pending = true;
        }
    }

    /// The live table of `name`, if it has one.
    pub fn live_table(&self, name: &str) -> Option<Vec<Target>> {
        self.state.borrow().devs.get(name)?.live.clone()
    }

    fn record(&self, line: String) {
        self.state.borrow_mut().log.push(line);
    }

    fn key(&self, call: &'static str, dev: &DevId) -> Result<String, DmError> {
        let st = self.state.borrow();
        match dev {
            DevId::Name(n) if st.devs.contains_key(n) => Ok(n.clone()),
            DevId::Uuid(u) => st
                .devs
                .iter()
                .find(|(_, d)| d.uuid == *u)
                .map(|(n, _)| n.clone())
                .ok_or_else(|| not_found(call, dev)),
            _ => Err(not_found(call, dev)),
        }
    }

    fn info_of(name: &str, d: &SimDev) -> DevInfo {
        let mut flags = 0;
        if d.live.is_some() {
            flags |= ACTIVE_PRESENT;
        }
        if d.inactive.is_some() {
            flags |= INACTIVE_PRESENT;
        }
        if d.suspended {
            flags |= SUSPEND;
        }
        DevInfo {
            major: MAJOR,
            minor: d.minor,
            flags,
            open_count: 0,
            target_count: d.live.as_ref().map_or(0, |t| t.len() as u32),
            event_nr: d.event_nr,
            name: name.to_owned(),
            uuid: d.uuid.clone(),
        }
    }
}

/// Target types each module provides.
fn module_targets(module: &str) -> &'static [&'static str] {
    match module {
        "dm-mirror" => &["mirror"],
        "dm-thin-pool" => &["thin-pool", "thin"],
        "dm-snapshot" => &["snapshot", "snapshot-origin", "snapshot-merge"],
        _ => &[],
    }
}

impl DmBackend for RecordingDm {
    fn target_versions(&self) -> Result<Vec<(String, [u32; 3])>, DmError> {
        let st = self.state.borrow();
        let mut out: Vec<(String, [u32; 3])> = ["linear", "striped", "error"]
            .iter()
            .map(|n| ((*n).to_owned(), [1, 0, 0]))
            .collect();
        for m in &st.modules {
            out.extend(
                module_targets(m)
                    .iter()
                    .map(|n| ((*n).to_owned(), [1, 0, 0])),
            );
        }
        Ok(out)
    }

    fn list(&self) -> Result<Vec<String>, DmError> {
        Ok(self.devices())
    }

    fn create(&self, name: &str, uuid: &str) -> Result<DevInfo, DmError> {
        let info = {
            let mut st = self.state.borrow_mut();
            if st.devs.contains_key(name)
                || (!uuid.is_empty() && st.devs.values().any(|d| d.uuid == uuid))
            {
                return Err(DmError {
                    call: "DM_DEV_CREATE",
                    device: name.to_owned(),
                    err: io::Error::from_raw_os_error(libc::EBUSY),
                });
            }
            let minor = st.next_minor;
            st.next_minor += 1;
            let d = SimDev {
                uuid: uuid.to_owned(),
                minor,
                ..SimDev::default()
            };
            let info = Self::info_of(name, &d);
            st.devs.insert(name.to_owned(), d);
            info
        };
        self.record(format!("create {name}"));
        Ok(info)
    }

    fn load(&self, dev: &DevId, table: &[Target], _readonly: bool) -> Result<(), DmError> {
        let key = self.key("DM_TABLE_LOAD", dev)?;
        {
            let mut st = self.state.borrow_mut();
            let known: Vec<String> = {
                let mut k = vec!["linear".to_owned(), "striped".into(), "error".into()];
                for m in &st.modules {
                    k.extend(module_targets(m).iter().map(|s| (*s).to_owned()));
                }
                k
            };
            // orion_dm.ko loaded with `prefix=orion-` registers every target prefixed.
            let is_known = |k: &str| {
                known
                    .iter()
                    .any(|n| n == k || n == k.trim_start_matches("orion-"))
            };
            if let Some(t) = table.iter().find(|t| !is_known(&t.kind)) {
                return Err(DmError {
                    call: "DM_TABLE_LOAD",
                    device: key,
                    err: io::Error::new(
                        io::ErrorKind::InvalidInput,
                        format!("unknown target type {}", t.kind),
                    ),
                });
            }
            if let Some(d) = st.devs.get_mut(&key) {
                d.inactive = Some(table.to_vec());
            }
        }
        self.record(format!("load {key}: {}", table_text(table)));
        Ok(())
    }

    fn suspend(&self, dev: &DevId, noflush: bool) -> Result<(), DmError> {
        let key = self.key("DM_DEV_SUSPEND", dev)?;
        if let Some(d) = self.state.borrow_mut().devs.get_mut(&key) {
            d.suspended = true;
        }
        self.record(format!(
            "suspend {key}{}",
            if noflush { " noflush" } else { "" }
        ));
        Ok(())
    }

    fn resume(&self, dev: &DevId) -> Result<DevInfo, DmError> {
        let key = self.key("DM_DEV_SUSPEND", dev)?;
        let info = {
            let mut st = self.state.borrow_mut();
            let d = st
                .devs
                .get_mut(&key)
                .ok_or_else(|| not_found("DM_DEV_SUSPEND", dev))?;
            if let Some(t) = d.inactive.take() {
                d.live = Some(t);
                // A new table reports its own (healthy) status.
                d.status = None;
            }
            d.suspended = false;
            Self::info_of(&key, d)
        };
        self.record(format!("resume {key}"));
        Ok(info)
    }

    fn remove(&self, dev: &DevId) -> Result<(), DmError> {
        let key = self.key("DM_DEV_REMOVE", dev)?;
        self.state.borrow_mut().devs.remove(&key);
        self.record(format!("remove {key}"));
        Ok(())
    }

    fn rename(&self, dev: &DevId, new_name: &str) -> Result<(), DmError> {
        let key = self.key("DM_DEV_RENAME", dev)?;
        {
            let mut st = self.state.borrow_mut();
            if st.devs.contains_key(new_name) {
                return Err(DmError {
                    call: "DM_DEV_RENAME",
                    device: key,
                    err: io::Error::from_raw_os_error(libc::EBUSY),
                });
            }
            if let Some(d) = st.devs.remove(&key) {
                st.devs.insert(new_name.to_owned(), d);
            }
        }
        self.record(format!("rename {key} {new_name}"));
        Ok(())
    }

    fn info(&self, dev: &DevId) -> Result<DevInfo, DmError> {
        let key = self.key("DM_DEV_STATUS", dev)?;
        let st = self.state.borrow();
        Ok(Self::info_of(&key, &st.devs[&key]))
    }

    fn table(&self, dev: &DevId) -> Result<Vec<Target>, DmError> {
        let key = self.key("DM_TABLE_STATUS", dev)?;
        Ok(self.state.borrow().devs[&key]
            .live
            .clone()
            .unwrap_or_default())
    }

    fn status(&self, dev: &DevId) -> Result<Vec<Target>, DmError> {
        let key = self.key("DM_TABLE_STATUS", dev)?;
        let st = self.state.borrow();
        let d = &st.devs[&key];
        if let Some(params) = &d.status {
            let live = d.live.clone().unwrap_or_default();
            return Ok(live
                .into_iter()
                .zip(params)
                .map(|(t, p)| Target {
                    params: p.clone(),
                    ..t
                })
                .collect());
        }
        Ok(d.live
            .clone()
            .unwrap_or_default()
            .into_iter()
            .map(|t| {
                let k = t.kind.as_str();
                let params = if k.ends_with("thin-pool") {
                    let meta = t.params.split_whitespace().next().unwrap_or("");
                    format!(
                        "{} 0/1000 0/10000 - rw discard_passdown queue_if_no_space - 1024",
                        st.pool_transaction_ids.get(meta).copied().unwrap_or(0)
                    )
                } else if k.ends_with("mirror") {
                    // `core 1 REGION N DEV...` or `disk 2 LOG REGION N DEV...`.
                    let f: Vec<&str> = t.params.split_whitespace().collect();
                    let at = if f.first() == Some(&"disk") { 4 } else { 3 };
                    let n: usize = f.get(at).and_then(|s| s.parse().ok()).unwrap_or(2);
                    let devs = vec!["0:0"; n].join(" ");
                    format!("{n} {devs} 1/1 1 {} 1 core", "A".repeat(n))
                } else if k.ends_with("snapshot-merge") {
                    // Merged: only the metadata chunks left in use.
                    "8/1000 8".to_owned()
                } else if k.ends_with("snapshot") {
                    "0/1000 0".to_owned()
                } else if k.ends_with("thin") {
                    "0 -".to_owned()
                } else {
                    String::new()
                };
                Target { params, ..t }
            })
            .collect())
    }

    fn message(&self, dev: &DevId, _sector: u64, msg: &str) -> Result<(), DmError> {
        let key = self.key("DM_TARGET_MSG", dev)?;
        if let Some(rest) = msg.strip_prefix("set_transaction_id ") {
            if let Some(new) = rest.split_whitespace().nth(1).and_then(|s| s.parse().ok()) {
                let mut st = self.state.borrow_mut();
                let meta = st.devs[&key]
                    .live
                    .as_ref()
                    .and_then(|t| t.first())
                    .and_then(|t| t.params.split_whitespace().next())
                    .map(str::to_owned);
                if let Some(meta) = meta {
                    st.pool_transaction_ids.insert(meta, new);
                }
            }
        }
        self.record(format!("message {key}: {msg}"));
        Ok(())
    }

    fn wait_event(&self, dev: &DevId, event_nr: u32) -> Result<(DevInfo, Vec<Target>), DmError> {
        // Nothing else runs while a host test waits: the counter either moved or never will.
        let info = self.info(dev)?;
        if info.event_nr == event_nr {
            return Err(DmError {
                call: "DM_DEV_WAIT",
                device: name_of(dev),
                err: io::Error::from_raw_os_error(libc::EDEADLK),
            });
        }
        let status = self.status(dev)?;
        self.record(format!("wait {} {event_nr}", info.name));
        Ok((info, status))
    }

    fn arm_events(&self) -> Result<(), DmError> {
        self.state.borrow_mut().event_pending = false;
        Ok(())
    }

    fn poll_events(&self, _timeout: std::time::Duration) -> Result<bool, DmError> {
        Ok(self.state.borrow().event_pending)
    }

    fn make_node(&self, name: &str, _major: u32, _minor: u32) -> io::Result<()> {
        self.record(format!("node {name}"));
        Ok(())
    }

    fn remove_node(&self, _name: &str) {}

    fn link_lv(&self, vg: &str, lv: &str) -> io::Result<()> {
        self.record(format!("link {vg}/{lv}"));
        Ok(())
    }

    fn unlink_lv(&self, vg: &str, lv: &str) {
        self.record(format!("unlink {vg}/{lv}"));
    }

    fn load_module(&self, module: &str) {
        {
            let mut st = self.state.borrow_mut();
            if !st.modules.iter().any(|m| m == module) {
                st.modules.push(module.to_owned());
            }
        }
        self.record(format!("modprobe {module}"));
    }

    fn zero_start(&self, name: &str, _len: usize) -> io::Result<()> {
        if !self.state.borrow().devs.contains_key(name) {
            return Err(io::Error::from_raw_os_error(libc::ENOENT));
        }
        self.record(format!("zero {name}"));
        Ok(())
    }

    fn read_start(&self, name: &str, buf: &mut [u8]) -> io::Result<()> {
        if !self.state.borrow().devs.contains_key(name) {
            return Err(io::Error::from_raw_os_error(libc::ENOENT));
        }
        // Simulated devices hold zeroes.
        buf.fill(0);
        Ok(())
    }
}

/// A VG for host tests: PVs `pv0`.. of `extents` 4 MiB extents each (data from sector
/// 2048), no LVs; and the devices of its PVs (`7:N`).
pub fn test_vg(name: &str, extents: &[u64]) -> (crate::vg::Vg, super::activate::DevMap) {
    let pvs = extents
        .iter()
        .enumerate()
        .map(|(i, n)| crate::vg::VgPv {
            key: format!("pv{i}"),
            id: format!("pv{i}-uuid"),
            device: format!("/dev/loop{i}"),
            dev_size: 2048 + n * 8192,
            pe_start: 2048,
            pe_count: *n,
            raw: Default::default(),
        })
        .collect();
    let vg = crate::vg::Vg {
        name: name.to_owned(),
        id: format!("{name}-uuid"),
        seqno: 1,
        extent_size: 8192,
        pvs,
        lvs: Vec::new(),
        raw: Default::default(),
    };
    let mut devs = super::activate::DevMap::default();
    for i in 0..extents.len() {
        devs.pvs.insert(format!("pv{i}"), format!("7:{i}"));
    }
    (vg, devs)
}

/// Adds LV `name` with `segments` (and `status`) to `vg`.
pub fn add_lv(vg: &mut crate::vg::Vg, name: &str, segments: Vec<crate::vg::Segment>) {
    vg.lvs.push(crate::vg::Lv {
        name: name.to_owned(),
        id: format!("{name}-uuid"),
        status: vec!["READ".into(), "WRITE".into(), "VISIBLE".into()],
        segments,
        raw: Default::default(),
    });
}

/// Makes `cow` (hidden) the COW store of an old-style snapshot of `origin`: the
/// `snapshot0` record of `extents` extents with 4 KiB chunks, as `lvcreate -s` writes it.
pub fn add_snapshot(vg: &mut crate::vg::Vg, origin: &str, cow: &str, extents: u64) {
    use crate::config::{Section, Value};
    if let Some(lv) = vg.lvs.iter_mut().find(|l| l.name == cow) {
        lv.status.retain(|s| s != "VISIBLE");
    }
    let mut rec = Section::default();
    rec.push("start_extent", Value::Int(0))
        .push("extent_count", Value::Int(extents as i64))
        .push("type", Value::Str("snapshot".into()))
        .push("chunk_size", Value::Int(8))
        .push("origin", Value::Str(origin.into()))
        .push("cow_store", Value::Str(cow.into()));
    add_lv(
        vg,
        "snapshot0",
        vec![crate::vg::Segment {
            start_extent: 0,
            extent_count: extents,
            kind: crate::vg::SegmentKind::Other(rec),
        }],
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commands::{allocate, LvRequest};
    use crate::dm::activate::{activate_lv, deactivate_lv};

    fn req(name: &str, extents: u64, stripes: u64) -> LvRequest<'_> {
        LvRequest {
            name,
            extents,
            stripes,
            stripe_size: 128,
        }
    }

    #[test]
    fn linear_and_striped_activation() {
        let (mut vg, mut devs) = test_vg("vg", &[10, 10]);
        let segs = allocate(&vg, &req("lin", 5, 1)).unwrap();
        add_lv(&mut vg, "lin", segs);
        let segs = allocate(&vg, &req("st", 4, 2)).unwrap();
        add_lv(&mut vg, "st", segs);
        let dm = RecordingDm::new();
        for name in ["lin", "st"] {
            let lv = vg.lv(name).unwrap().clone();
            activate_lv(&dm, &vg, &lv, &mut devs, "", &[]).unwrap();
        }
        assert_eq!(
            dm.log(),
            [
                "create vg-lin",
                "load vg-lin: 0 40960 linear 7:0 2048",
                "resume vg-lin",
                "node vg-lin",
                "link vg/lin",
                "create vg-st",
                "load vg-st: 0 32768 striped 2 128 7:0 43008 7:1 2048",
                "resume vg-st",
                "node vg-st",
                "link vg/st",
            ]
        );
        assert_eq!(devs.lvs["lin"], "253:0");
        // Activating again reloads: suspend before the resume that swaps tables.
        dm.clear_log();
        let lv = vg.lv("lin").unwrap().clone();
        activate_lv(&dm, &vg, &lv, &mut devs, "orion-", &[]).unwrap();
        assert_eq!(dm.calls("load"), ["vg-lin: 0 40960 orion-linear 7:0 2048"]);
        assert_eq!(
            dm.log()[1..3],
            ["suspend vg-lin".to_owned(), "resume vg-lin".to_owned()]
        );
    }

    #[test]
    fn snapshot_stack_order() {
        let (mut vg, mut devs) = test_vg("vg", &[10]);
        let segs = allocate(&vg, &req("o", 4, 1)).unwrap();
        add_lv(&mut vg, "o", segs);
        let segs = allocate(&vg, &req("s", 2, 1)).unwrap();
        add_lv(&mut vg, "s", segs);
        add_snapshot(&mut vg, "o", "s", 4);
        let dm = RecordingDm::new();
        let o = vg.lv("o").unwrap().clone();
        activate_lv(&dm, &vg, &o, &mut devs, "", &["s"]).unwrap();
        assert_eq!(
            dm.calls("create"),
            ["vg-o-real", "vg-o", "vg-s-cow", "vg-s"]
        );
        assert!(dm.log().contains(&"modprobe dm-snapshot".to_owned()));
        assert_eq!(dm.calls("zero"), ["vg-s-cow"], "a new COW starts zeroed");
        assert_eq!(
            dm.live_table("vg-s").unwrap()[0].params,
            "253:0 253:2 P 8",
            "snapshot over -real and -cow"
        );
        dm.clear_log();
        deactivate_lv(&dm, &vg, &o).unwrap();
        assert_eq!(
            dm.calls("remove"),
            ["vg-s", "vg-o", "vg-s-cow", "vg-o-real"]
        );
        assert!(dm.devices().is_empty());
    }

    #[test]
    fn allocation_policies() {
        let (mut vg, _) = test_vg("vg", &[10, 6, 6]);
        // One run holding the LV whole, on the first PV that has one.
        let segs = allocate(&vg, &req("a", 5, 1)).unwrap();
        assert_eq!(segs.len(), 1);
        assert!(matches!(&segs[0].kind,
            crate::vg::SegmentKind::Striped { stripes, .. } if stripes[0] == ("pv0".into(), 0)));
        add_lv(&mut vg, "a", segs);
        // Stripes on different PVs.
        let segs = allocate(&vg, &req("b", 6, 3)).unwrap();
        let crate::vg::SegmentKind::Striped { stripes, .. } = &segs[0].kind else {
            panic!("not striped");
        };
        let mut pvs: Vec<&str> = stripes.iter().map(|(p, _)| p.as_str()).collect();
        pvs.sort();
        assert_eq!(pvs, ["pv0", "pv1", "pv2"]);
        add_lv(&mut vg, "b", segs);
        // Longer than any free run: split over runs.
        let free = vg.free_extents();
        let segs = allocate(&vg, &req("c", free, 1)).unwrap();
        assert!(segs.len() > 1);
        assert_eq!(segs.iter().map(|s| s.extent_count).sum::<u64>(), free);
        add_lv(&mut vg, "c", segs);
        assert!(allocate(&vg, &req("d", 1, 1)).is_err(), "the VG is full");
        // Contiguous extension right after the last extent when it is free.
        let (mut vg, _) = test_vg("vg", &[10]);
        let segs = allocate(&vg, &req("e", 2, 1)).unwrap();
        add_lv(&mut vg, "e", segs);
        let lv = vg.lv("e").unwrap().clone();
        let more = crate::commands::allocate_extension(&vg, &lv, 3).unwrap();
        assert!(matches!(&more[0].kind,
            crate::vg::SegmentKind::Striped { stripes, .. } if stripes[0] == ("pv0".into(), 2)));
    }
}
