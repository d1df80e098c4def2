// SPDX-License-Identifier: GPL-2.0 OR MIT

//! LVM2's report format, as `pvs`, `vgs`, `lvs` and `fullreport` print it: columns
//! chosen with `-o` (`+field` adds to the defaults, `-field` drops one), rows sorted with
//! `-O` and filtered with `-S`, sizes in `--units` (with or without suffix), and the
//! output aligned (headings optional), joined with `--separator`, or LVM2's JSON
//! (`--reportformat json`). The rows themselves are built in `commands::listing`.

pub mod fields;
pub mod select;
pub mod units;

use crate::exit::usage;
use anyhow::{anyhow, Result};
use fields::Field;
use serde::ser::{SerializeMap, SerializeSeq};
use serde::{Serialize, Serializer};
use std::cmp::Ordering;
use std::io;
pub use units::Units;

/// A field's value in one row.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    /// Text.
    Str(String),
    /// Strings, shown joined with commas.
    List(Vec<String>),
    /// Unsigned number.
    Num(u64),
    /// Signed number.
    SNum(i64),
    /// Size in sectors.
    Size(u64),
    /// Percentage, unknown when `None`.
    Pct(Option<f64>),
}

impl Value {
    /// The value as the report shows it.
    pub fn show(&self, units: Units, nosuffix: bool) -> String {
        match self {
            Value::Str(s) => s.clone(),
            Value::List(l) => l.join(","),
            Value::Num(n) => n.to_string(),
            Value::SNum(n) => n.to_string(),
            Value::Size(s) => units.format(*s, nosuffix),
            Value::Pct(p) => p.map(|v| format!("{v:.2}")).unwrap_or_default(),
        }
    }

    fn cmp_for_sort(&self, other: &Value) -> Ordering {
        match (self, other) {
            (Value::Num(a), Value::Num(b)) | (Value::Size(a), Value::Size(b)) => a.cmp(b),
            (Value::SNum(a), Value::SNum(b)) => a.cmp(b),
            (Value::Pct(a), Value::Pct(b)) => a
                .unwrap_or(-1.0)
                .partial_cmp(&b.unwrap_or(-1.0))
                .unwrap_or(Ordering::Equal),
            // Internal LVs sort by their names, not by the brackets around them.
            (Value::Str(a), Value::Str(b)) => a
                .trim_start_matches('[')
                .trim_end_matches(']')
                .cmp(b.trim_start_matches('[').trim_end_matches(']')),
            (Value::List(a), Value::List(b)) => a.cmp(b),
            _ => Ordering::Equal,
        }
    }
}

/// A row: a value for every field the object has.
pub type Row = Vec<(&'static str, Value)>;

fn get<'a>(row: &'a Row, name: &str) -> Option<&'a Value> {
    row.iter().find(|(k, _)| *k == name).map(|(_, v)| v)
}

/// How a report is printed.
#[derive(Clone, Debug, Default)]
pub struct Format {
    /// Units of sizes.
    pub units: Units,
    /// Sizes without unit suffix.
    pub nosuffix: bool,
    /// No heading line.
    pub noheadings: bool,
    /// Fields joined with this (default a space); unaligned unless `aligned`.
    pub separator: Option<String>,
    /// `--aligned`: pad fields to their column's width even with a separator.
    pub aligned: bool,
    /// `--rows`: one line per field instead of per object (never padded, as LVM2's).
    pub rows: bool,
    /// `--nameprefixes`: each value as `LVM2_FIELD_NAME='value'` (never padded).
    pub name_prefixes: bool,
    /// `--unquoted`: no quotes around values with `--nameprefixes`.
    pub unquoted: bool,
    /// LVM2's JSON.
    pub json: bool,
}

impl Format {
    /// Whether fields are padded to their column's width: LVM2 aligns by default, stops
    /// when given a separator unless `--aligned` follows, and never pads `--rows` or
    /// `--nameprefixes` output.
    fn pads_fields(&self) -> bool {
        !self.rows && !self.name_prefixes && (self.separator.is_none() || self.aligned)
    }
}

/// The columns of a report: `defaults` changed by each `-o` argument in turn (a first
/// plain list replaces the defaults, later ones and `+list` add, `-list` removes).
pub fn columns(defaults: &[&str], options: &[String], prefix: &str) -> Result<Vec<&'static Field>> {
    let mut names: Vec<String> = defaults.iter().map(|s| (*s).to_owned()).collect();
    let mut replaced = false;
    for o in options {
        let (mode, list) = match o.strip_prefix('+') {
            Some(l) => ('+', l),
            None => match o.strip_prefix('-') {
                Some(l) => ('-', l),
                None => ('=', o.as_str()),
            },
        };
        let items = list.split(',').map(str::trim).filter(|s| !s.is_empty());
        match mode {
            '+' => names.extend(items.map(str::to_owned)),
            '-' => {
                let drop: Vec<&str> = items.collect();
                names.retain(|n| !drop.contains(&n.as_str()));
            }
            _ => {
                if !replaced {
                    names.clear();
                    replaced = true;
                }
                names.extend(items.map(str::to_owned));
            }
        }
    }
    names
        .iter()
        .map(|n| fields::find(n, prefix).ok_or_else(|| anyhow!("Unrecognised field: {n}")))
        .collect()
}

/// Sort keys from `-O` (`-field` for descending), or `defaults`.
pub fn sort_keys(
    defaults: &[&str],
    sort: Option<&str>,
    prefix: &str,
) -> Result<Vec<(&'static Field, bool)>> {
    let list: Vec<String> = match sort {
        Some(s) => s.split(',').map(|x| x.trim().to_owned()).collect(),
        None => defaults.iter().map(|s| (*s).to_owned()).collect(),
    };
    list.iter()
        .filter(|s| !s.is_empty())
        .map(|s| {
            let (desc, name) = match s.strip_prefix('-') {
                Some(n) => (true, n),
                None => (false, s.strip_prefix('+').unwrap_or(s)),
            };
            fields::find(name, prefix)
                .map(|f| (f, desc))
                .ok_or_else(|| anyhow!("Unrecognised field: {name}"))
        })
        .collect()
}

/// Sorts `rows` by `keys` (stable: equal rows keep their order).
pub fn sort(rows: &mut [Row], keys: &[(&'static Field, bool)]) {
    rows.sort_by(|a, b| {
        for (f, desc) in keys {
            let o = match (get(a, f.name), get(b, f.name)) {
                (Some(x), Some(y)) => x.cmp_for_sort(y),
                _ => Ordering::Equal,
            };
            let o = if *desc { o.reverse() } else { o };
            if o != Ordering::Equal {
                return o;
            }
        }
        Ordering::Equal
    });
}

/// Keeps the rows `sel` selects.
pub fn filter(rows: &mut Vec<Row>, sel: Option<&select::Selection>) {
    if let Some(sel) = sel {
        rows.retain(|r| sel.matches(&|n: &str| get(r, n).cloned()));
    }
}

/// A finished report: one kind of object, its columns and rows.
pub struct Table<'a> {
    /// JSON name of the objects (`lv`, `vg`, `pv`, `seg`).
    pub kind: &'static str,
    /// Columns.
    pub columns: &'a [&'static Field],
    /// Rows (each holding at least the columns' fields).
    pub rows: &'a [Row],
}

impl Table<'_> {
    fn cells(&self, fmt: &Format) -> Vec<Vec<String>> {
        self.rows
            .iter()
            .map(|r| {
                self.columns
                    .iter()
                    .map(|c| {
                        get(r, c.name)
                            .map(|v| v.show(fmt.units, fmt.nosuffix))
                            .unwrap_or_default()
                    })
                    .collect()
            })
            .collect()
    }

    /// The report as text, each line prefixed with the two spaces of LVM2's log prefix:
    /// one line per row (or, with `--rows`, per column), fields aligned or joined with
    /// the separator, optionally as `LVM2_FIELD='value'` pairs. Like LVM2, nothing at all
    /// (not even headings) when no row is left.
    pub fn text(&self, fmt: &Format) -> String {
        if self.rows.is_empty() {
            return String::new();
        }
        let cells = self.cells(fmt);
        let sep = fmt.separator.as_deref().unwrap_or(" ");
        let aligned = fmt.pads_fields();
        let widths: Vec<usize> = self
            .columns
            .iter()
            .enumerate()
            .map(|(i, c)| {
                cells
                    .iter()
                    .map(|r| r[i].chars().count())
                    .max()
                    .unwrap_or(0)
                    .max(c.width)
                    .max(c.heading.len())
            })
            .collect();
        let value = |i: usize, v: &str| {
            let c = self.columns[i];
            let w = widths[i];
            let shown = match (aligned, c.kind.right_aligned()) {
                (false, _) => v.to_owned(),
                (true, true) => format!("{v:>w$}"),
                (true, false) => format!("{v:<w$}"),
            };
            if !fmt.name_prefixes {
                return shown;
            }
            let quote = if fmt.unquoted { "" } else { "'" };
            format!("LVM2_{}={quote}{shown}{quote}", c.name.to_ascii_uppercase())
        };
        let heading = |i: usize| {
            let h = self.columns[i].heading;
            if aligned {
                format!("{h:<w$}", w = widths[i])
            } else {
                h.to_owned()
            }
        };
        let mut lines: Vec<Vec<String>> = Vec::new();
        if fmt.rows {
            // LVM2's `--rows`: one line per column, its heading first.
            for i in 0..self.columns.len() {
                let mut line: Vec<String> = Vec::new();
                if !fmt.noheadings {
                    line.push(self.columns[i].heading.to_owned());
                }
                line.extend(cells.iter().map(|r| value(i, &r[i])));
                lines.push(line);
            }
        } else {
            if !fmt.noheadings {
                lines.push((0..self.columns.len()).map(heading).collect());
            }
            for r in &cells {
                lines.push(r.iter().enumerate().map(|(i, v)| value(i, v)).collect());
            }
        }
        lines
            .iter()
            .map(|l| format!("  {}\n", l.join(sep)))
            .collect()
    }
}

/// Rows as a JSON object of field name to shown value, in column order.
struct JsonRow<'a>(&'a [&'static Field], &'a [String]);

impl Serialize for JsonRow<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(self.0.len()))?;
        for (c, v) in self.0.iter().zip(self.1) {
            m.serialize_entry(c.name, v)?;
        }
        m.end()
    }
}

struct JsonTables<'a>(&'a [Table<'a>], &'a Format);

impl Serialize for JsonTables<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        struct Rows<'a>(&'a Table<'a>, Vec<Vec<String>>);
        impl Serialize for Rows<'_> {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                let mut q = s.serialize_seq(Some(self.1.len()))?;
                for r in &self.1 {
                    q.serialize_element(&JsonRow(self.0.columns, r))?;
                }
                q.end()
            }
        }
        let mut m = s.serialize_map(Some(self.0.len()))?;
        for t in self.0 {
            m.serialize_entry(t.kind, &Rows(t, t.cells(self.1)))?;
        }
        m.end()
    }
}

struct JsonReport<'a>(Vec<JsonTables<'a>>);

impl Serialize for JsonReport<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(1))?;
        m.serialize_entry("report", &self.0)?;
        m.end()
    }
}

/// Nesting level of the row objects.
const ROW_LEVEL: usize = 5;

/// serde_json's formatter for LVM2's JSON layout: every line starts with two spaces,
/// containers open one level of four spaces each, and the objects of the fifth level
/// (the rows) stay on one line as `{"k":"v", "k":"v"}`.
struct LvmJson {
    level: usize,
    /// Writing a row's value rather than its key.
    in_value: bool,
    /// What closes a row's value: `"`, except that LVM2 closes it as `--nameprefixes`
    /// would (`'`, or nothing with `--unquoted`) when that option is given with JSON.
    value_end: &'static [u8],
}

impl LvmJson {
    fn new(fmt: &Format) -> LvmJson {
        let value_end: &[u8] = match (fmt.name_prefixes, fmt.unquoted) {
            (false, _) => b"\"",
            (true, false) => b"'",
            (true, true) => b"",
        };
        LvmJson {
            level: 0,
            in_value: false,
            value_end,
        }
    }

    fn newline<W: ?Sized + io::Write>(w: &mut W, level: usize) -> io::Result<()> {
        write!(w, "\n  {}", "    ".repeat(level))
    }
}

impl serde_json::ser::Formatter for LvmJson {
    fn begin_object<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        if self.level == 0 {
            w.write_all(b"  ")?;
        }
        self.level += 1;
        w.write_all(b"{")
    }
    fn end_object<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        if self.level < ROW_LEVEL {
            Self::newline(w, self.level - 1)?;
        }
        self.level -= 1;
        w.write_all(b"}")
    }
    fn begin_array<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.level += 1;
        w.write_all(b"[")
    }
    fn end_array<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        Self::newline(w, self.level - 1)?;
        self.level -= 1;
        w.write_all(b"]")
    }
    fn begin_array_value<W: ?Sized + io::Write>(
        &mut self,
        w: &mut W,
        first: bool,
    ) -> io::Result<()> {
        if !first {
            w.write_all(b",")?;
        }
        Self::newline(w, self.level)
    }
    fn begin_object_key<W: ?Sized + io::Write>(
        &mut self,
        w: &mut W,
        first: bool,
    ) -> io::Result<()> {
        self.in_value = false;
        if self.level >= ROW_LEVEL {
            return if first { Ok(()) } else { w.write_all(b", ") };
        }
        if !first {
            w.write_all(b",")?;
        }
        Self::newline(w, self.level)
    }
    fn begin_object_value<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.in_value = true;
        w.write_all(if self.level >= ROW_LEVEL { b":" } else { b": " })
    }
    fn end_string<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        if self.in_value && self.level >= ROW_LEVEL {
            w.write_all(self.value_end)
        } else {
            w.write_all(b"\"")
        }
    }
}

/// `tables` as LVM2's JSON report (one report object holding every table).
pub fn json(tables: &[Table<'_>], fmt: &Format) -> Result<String> {
    let mut buf = Vec::new();
    let mut ser = serde_json::Serializer::with_formatter(&mut buf, LvmJson::new(fmt));
    JsonReport(vec![JsonTables(tables, fmt)]).serialize(&mut ser)?;
    buf.push(b'\n');
    String::from_utf8(buf).map_err(|e| anyhow!("JSON output: {e}"))
}

/// Parses `--reportformat`.
pub fn parse_report_format(s: &str) -> Result<bool> {
    match s {
        "basic" => Ok(false),
        "json" => Ok(true),
        other => Err(usage(format!(
            "Invalid argument for --reportformat: {other}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table_rows() -> Vec<Row> {
        vec![
            vec![
                ("lv_name", Value::Str("lv1".into())),
                ("lv_size", Value::Size(40960)),
                ("data_percent", Value::Pct(None)),
            ],
            vec![
                ("lv_name", Value::Str("snap".into())),
                ("lv_size", Value::Size(16384)),
                ("data_percent", Value::Pct(Some(12.5))),
            ],
        ]
    }

    #[test]
    fn aligned_separated_and_json() {
        let cols = columns(&["lv_name", "lv_size"], &["+data_percent".into()], "lv").unwrap();
        let rows = table_rows();
        let t = Table {
            kind: "lv",
            columns: &cols,
            rows: &rows,
        };
        let fmt = Format::default();
        assert_eq!(
            t.text(&fmt),
            "  LV   LSize  Data% \n  lv1  20.00m       \n  snap  8.00m  12.50\n"
        );
        let sep = Format {
            separator: Some(":".into()),
            noheadings: true,
            ..Format::default()
        };
        assert_eq!(t.text(&sep), "  lv1:20.00m:\n  snap:8.00m:12.50\n");
        let aligned_sep = Format {
            separator: Some(":".into()),
            aligned: true,
            ..Format::default()
        };
        assert_eq!(
            t.text(&aligned_sep),
            "  LV  :LSize :Data% \n  lv1 :20.00m:      \n  snap: 8.00m: 12.50\n"
        );
        let rows = Format {
            rows: true,
            ..Format::default()
        };
        assert_eq!(
            t.text(&rows),
            "  LV lv1 snap\n  LSize 20.00m 8.00m\n  Data%  12.50\n"
        );
        let prefixed = Format {
            name_prefixes: true,
            noheadings: true,
            aligned: true,
            ..Format::default()
        };
        assert_eq!(
            t.text(&prefixed).lines().nth(1).unwrap(),
            "  LVM2_LV_NAME='snap' LVM2_LV_SIZE='8.00m' LVM2_DATA_PERCENT='12.50'"
        );
        let empty = Table { rows: &[], ..t };
        assert_eq!(empty.text(&sep), "", "no headings without rows");
        let j = json(&[t], &fmt).unwrap();
        assert_eq!(
            j,
            "  {\n      \"report\": [\n          {\n              \"lv\": [\n                  \
             {\"lv_name\":\"lv1\", \"lv_size\":\"20.00m\", \"data_percent\":\"\"},\n                  \
             {\"lv_name\":\"snap\", \"lv_size\":\"8.00m\", \"data_percent\":\"12.50\"}\n              \
             ]\n          }\n      ]\n  }\n"
        );
    }

    #[test]
    fn columns_and_sorting() {
        let c = columns(
            &["lv_name", "lv_size"],
            &["-lv_size".into(), "+origin".into()],
            "lv",
        )
        .unwrap();
        let names: Vec<&str> = c.iter().map(|f| f.name).collect();
        assert_eq!(names, ["lv_name", "origin"]);
        let c = columns(&["lv_name"], &["size".into(), "attr".into()], "lv").unwrap();
        assert_eq!(
            c.iter().map(|f| f.name).collect::<Vec<_>>(),
            ["lv_size", "lv_attr"]
        );
        assert!(columns(&[], &["bogus".into()], "lv").is_err());
        let mut rows = table_rows();
        sort(&mut rows, &sort_keys(&[], Some("lv_size"), "lv").unwrap());
        assert_eq!(rows[0][0].1, Value::Str("snap".into()));
        sort(&mut rows, &sort_keys(&[], Some("-lv_size"), "lv").unwrap());
        assert_eq!(rows[0][0].1, Value::Str("lv1".into()));
        let sel = select::parse("lv_size<10m", "lv").unwrap();
        filter(&mut rows, Some(&sel));
        assert_eq!(rows.len(), 1);
    }
}
