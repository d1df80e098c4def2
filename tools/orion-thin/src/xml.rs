// SPDX-License-Identifier: GPL-2.0 OR MIT

//! The XML form of pool metadata that thin-provisioning-tools read and write.
//!
//! ```text
//! <superblock uuid="" time="1" transaction="3" flags="0" version="2" data_block_size="128" nr_data_blocks="1000">
//!   <device dev_id="0" mapped_blocks="4" transaction="0" creation_time="0" snap_time="1">
//!     <range_mapping origin_begin="0" data_begin="10" length="3" time="0"/>
//!     <single_mapping origin_block="7" data_block="20" time="1"/>
//!   </device>
//! </superblock>
//! ```

use quick_xml::events::{BytesStart, Event};
use quick_xml::Reader;
use std::io::{BufRead, Write};

/// A run of consecutive mappings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mapping {
    /// First virtual block.
    pub origin: u64,
    /// First data block.
    pub data: u64,
    /// Number of blocks.
    pub len: u64,
    /// Time stamp.
    pub time: u32,
}

impl Mapping {
    /// Appends one block mapping to `runs`, extending the last run when the block
    /// continues it (the merging thin_dump does).
    pub fn append(runs: &mut Vec<Mapping>, origin: u64, data: u64, time: u32) {
        match runs.last_mut() {
            Some(m) if m.origin + m.len == origin && m.data + m.len == data && m.time == time => {
                m.len += 1
            }
            _ => runs.push(Mapping {
                origin,
                data,
                len: 1,
                time,
            }),
        }
    }
}

/// A thin device.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Device {
    /// Device id.
    pub id: u64,
    /// Mapped blocks as the details record them.
    pub mapped_blocks: u64,
    /// Transaction id at creation.
    pub transaction: u64,
    /// Time at creation.
    pub creation_time: u32,
    /// Time of the last snapshot.
    pub snap_time: u32,
    /// Mappings in order.
    pub mappings: Vec<Mapping>,
}

/// Pool metadata.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Metadata {
    /// Pool UUID.
    pub uuid: String,
    /// Pool time.
    pub time: u32,
    /// Transaction id.
    pub transaction: u64,
    /// Superblock flags.
    pub flags: u32,
    /// Format version.
    pub version: u32,
    /// Data block size in sectors.
    pub data_block_size: u32,
    /// Data blocks in the pool.
    pub nr_data_blocks: u64,
    /// Devices in id order.
    pub devices: Vec<Device>,
}

/// Writes `md` exactly as `thin_dump` formats it.
pub fn write(md: &Metadata, out: &mut impl Write) -> std::io::Result<()> {
    writeln!(
        out,
        "<superblock uuid=\"{}\" time=\"{}\" transaction=\"{}\" flags=\"{}\" version=\"{}\" data_block_size=\"{}\" nr_data_blocks=\"{}\">",
        escape(&md.uuid), md.time, md.transaction, md.flags, md.version, md.data_block_size, md.nr_data_blocks
    )?;
    for d in &md.devices {
        writeln!(
            out,
            "  <device dev_id=\"{}\" mapped_blocks=\"{}\" transaction=\"{}\" creation_time=\"{}\" snap_time=\"{}\">",
            d.id, d.mapped_blocks, d.transaction, d.creation_time, d.snap_time
        )?;
        for m in &d.mappings {
            if m.len == 1 {
                writeln!(
                    out,
                    "    <single_mapping origin_block=\"{}\" data_block=\"{}\" time=\"{}\"/>",
                    m.origin, m.data, m.time
                )?;
            } else {
                writeln!(
                    out,
                    "    <range_mapping origin_begin=\"{}\" data_begin=\"{}\" length=\"{}\" time=\"{}\"/>",
                    m.origin, m.data, m.len, m.time
                )?;
            }
        }
        writeln!(out, "  </device>")?;
    }
    writeln!(out, "</superblock>")
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('"', "&quot;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// Why XML could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ParseError {
    /// Not well-formed XML.
    #[error("bad XML at byte {pos}: {msg}")]
    Syntax {
        /// Byte offset.
        pos: u64,
        /// What the parser said.
        msg: String,
    },
    /// Well-formed but not pool metadata.
    #[error("{0}")]
    Content(String),
}

fn attr<T: std::str::FromStr>(e: &BytesStart<'_>, name: &str) -> Result<T, ParseError> {
    let tag = String::from_utf8_lossy(e.name().as_ref()).into_owned();
    let a = e
        .try_get_attribute(name)
        .map_err(|err| ParseError::Content(format!("<{tag}>: {err}")))?
        .ok_or_else(|| ParseError::Content(format!("<{tag}> has no {name} attribute")))?;
    let v = a
        .unescape_value()
        .map_err(|err| ParseError::Content(format!("<{tag}> {name}: {err}")))?;
    v.parse()
        .map_err(|_| ParseError::Content(format!("<{tag}> {name}=\"{v}\" is not a valid number")))
}

/// Reads `thin_dump` XML.
pub fn parse(input: impl BufRead) -> Result<Metadata, ParseError> {
    let mut reader = Reader::from_reader(input);
    let mut buf = Vec::new();
    let mut md: Option<Metadata> = None;
    let mut dev: Option<Device> = None;
    let mut done = false;
    loop {
        let ev = reader
            .read_event_into(&mut buf)
            .map_err(|e| ParseError::Syntax {
                pos: reader.buffer_position(),
                msg: e.to_string(),
            })?;
        match ev {
            Event::Start(ref e) | Event::Empty(ref e) => {
                let empty = matches!(ev, Event::Empty(_));
                match e.name().as_ref() {
                    b"superblock" if md.is_none() => {
                        md = Some(Metadata {
                            uuid: attr(e, "uuid")?,
                            time: attr(e, "time")?,
                            transaction: attr(e, "transaction")?,
                            flags: attr(e, "flags").unwrap_or(0),
                            version: attr(e, "version").unwrap_or(2),
                            data_block_size: attr(e, "data_block_size")?,
                            nr_data_blocks: attr(e, "nr_data_blocks")?,
                            devices: Vec::new(),
                        });
                        if empty {
                            done = true;
                        }
                    }
                    b"device" if md.is_some() && dev.is_none() => {
                        let d = Device {
                            id: attr(e, "dev_id")?,
                            mapped_blocks: attr(e, "mapped_blocks")?,
                            transaction: attr(e, "transaction")?,
                            creation_time: attr(e, "creation_time")?,
                            snap_time: attr(e, "snap_time")?,
                            mappings: Vec::new(),
                        };
                        if empty {
                            if let Some(m) = md.as_mut() {
                                m.devices.push(d);
                            }
                        } else {
                            dev = Some(d);
                        }
                    }
                    b"single_mapping" if dev.is_some() => {
                        let m = Mapping {
                            origin: attr(e, "origin_block")?,
                            data: attr(e, "data_block")?,
                            len: 1,
                            time: attr(e, "time")?,
                        };
                        if let Some(d) = dev.as_mut() {
                            d.mappings.push(m);
                        }
                    }
                    b"range_mapping" if dev.is_some() => {
                        let m = Mapping {
                            origin: attr(e, "origin_begin")?,
                            data: attr(e, "data_begin")?,
                            len: attr(e, "length")?,
                            time: attr(e, "time")?,
                        };
                        if m.len == 0 {
                            return Err(ParseError::Content("range_mapping of length 0".into()));
                        }
                        if let Some(d) = dev.as_mut() {
                            d.mappings.push(m);
                        }
                    }
                    other => {
                        return Err(ParseError::Content(format!(
                            "unexpected <{}>",
                            String::from_utf8_lossy(other)
                        )))
                    }
                }
            }
            Event::End(ref e) => match e.name().as_ref() {
                b"device" => {
                    if let (Some(m), Some(d)) = (md.as_mut(), dev.take()) {
                        m.devices.push(d);
                    }
                }
                b"superblock" => done = true,
                _ => {}
            },
            Event::Eof => break,
            _ => {}
        }
        buf.clear();
    }
    match md {
        Some(m) if done => Ok(m),
        Some(_) => Err(ParseError::Content("</superblock> missing".into())),
        None => Err(ParseError::Content("no <superblock> element".into())),
    }
}
