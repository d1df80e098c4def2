// SPDX-License-Identifier: GPL-2.0 OR MIT

//! LVM2's text metadata syntax: sections `name { ... }`, assignments `key = value` where
//! a value is an integer, a float, a quoted string or a `[ ... ]` array, and `#` comments.
//! Order is kept, so parsing and writing again loses nothing but comments and spacing.

use std::fmt::Write as _;

/// A value.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    /// An integer.
    Int(i64),
    /// A float (LVM2 accepts them; metadata rarely has any).
    Float(f64),
    /// A string.
    Str(String),
    /// An array of values.
    Array(Vec<Value>),
}

/// An entry of a section.
#[derive(Clone, Debug, PartialEq)]
pub enum Node {
    /// `key = value`.
    Value(Value),
    /// `name { ... }`.
    Section(Section),
}

/// A section: its entries in order.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Section {
    /// Entries in file order.
    pub entries: Vec<(String, Node)>,
}

impl Section {
    /// The entry named `key`.
    pub fn get(&self, key: &str) -> Option<&Node> {
        self.entries.iter().find(|(k, _)| k == key).map(|(_, n)| n)
    }

    /// The subsection named `key`.
    pub fn section(&self, key: &str) -> Option<&Section> {
        match self.get(key)? {
            Node::Section(s) => Some(s),
            Node::Value(_) => None,
        }
    }

    /// The integer named `key`.
    pub fn int(&self, key: &str) -> Option<i64> {
        match self.get(key)? {
            Node::Value(Value::Int(i)) => Some(*i),
            _ => None,
        }
    }

    /// The string named `key`.
    pub fn str(&self, key: &str) -> Option<&str> {
        match self.get(key)? {
            Node::Value(Value::Str(s)) => Some(s),
            _ => None,
        }
    }

    /// The strings of the array named `key`.
    pub fn strs(&self, key: &str) -> Option<Vec<&str>> {
        match self.get(key)? {
            Node::Value(Value::Array(a)) => a
                .iter()
                .map(|v| match v {
                    Value::Str(s) => Some(s.as_str()),
                    _ => None,
                })
                .collect(),
            _ => None,
        }
    }

    /// The subsections in order.
    pub fn sections(&self) -> impl Iterator<Item = (&str, &Section)> {
        self.entries.iter().filter_map(|(k, n)| match n {
            Node::Section(s) => Some((k.as_str(), s)),
            Node::Value(_) => None,
        })
    }

    /// Sets (or appends) `key`.
    pub fn set(&mut self, key: &str, node: Node) {
        match self.entries.iter_mut().find(|(k, _)| k == key) {
            Some((_, n)) => *n = node,
            None => self.entries.push((key.to_owned(), node)),
        }
    }

    /// Appends `key = value`.
    pub fn push(&mut self, key: &str, v: Value) -> &mut Self {
        self.entries.push((key.to_owned(), Node::Value(v)));
        self
    }

    /// Removes `key`.
    pub fn remove(&mut self, key: &str) -> Option<Node> {
        let i = self.entries.iter().position(|(k, _)| k == key)?;
        Some(self.entries.remove(i).1)
    }
}

/// A syntax error with its line.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("metadata text line {line}: {what}")]
pub struct ParseError {
    /// 1-based line.
    pub line: usize,
    /// What is wrong.
    pub what: String,
}

struct Parser<'a> {
    s: &'a [u8],
    pos: usize,
    line: usize,
}

impl Parser<'_> {
    fn err<T>(&self, what: impl Into<String>) -> Result<T, ParseError> {
        Err(ParseError {
            line: self.line,
            what: what.into(),
        })
    }

    fn skip(&mut self) {
        while let Some(&c) = self.s.get(self.pos) {
            match c {
                b'\n' => {
                    self.line += 1;
                    self.pos += 1;
                }
                b' ' | b'\t' | b'\r' | 0 => self.pos += 1,
                b'#' => {
                    while self.s.get(self.pos).is_some_and(|c| *c != b'\n') {
                        self.pos += 1;
                    }
                }
                _ => break,
            }
        }
    }

    fn ident(&mut self) -> Result<String, ParseError> {
        let start = self.pos;
        while self
            .s
            .get(self.pos)
            .is_some_and(|c| c.is_ascii_alphanumeric() || b"_.-+/".contains(c))
        {
            self.pos += 1;
        }
        if start == self.pos {
            return self.err(format!(
                "expected a name, found {:?}",
                self.s.get(self.pos).map(|c| *c as char)
            ));
        }
        Ok(String::from_utf8_lossy(&self.s[start..self.pos]).into_owned())
    }

    fn value(&mut self) -> Result<Value, ParseError> {
        self.skip();
        match self.s.get(self.pos) {
            Some(b'"') => {
                self.pos += 1;
                let mut out = Vec::new();
                loop {
                    match self.s.get(self.pos) {
                        None => return self.err("unterminated string"),
                        Some(b'"') => {
                            self.pos += 1;
                            break;
                        }
                        Some(b'\\') => {
                            if let Some(&c) = self.s.get(self.pos + 1) {
                                out.push(c);
                            }
                            self.pos += 2;
                        }
                        Some(&c) => {
                            if c == b'\n' {
                                self.line += 1;
                            }
                            out.push(c);
                            self.pos += 1;
                        }
                    }
                }
                Ok(Value::Str(String::from_utf8_lossy(&out).into_owned()))
            }
            Some(b'[') => {
                self.pos += 1;
                let mut items = Vec::new();
                loop {
                    self.skip();
                    match self.s.get(self.pos) {
                        Some(b']') => {
                            self.pos += 1;
                            return Ok(Value::Array(items));
                        }
                        Some(b',') => self.pos += 1,
                        None => return self.err("unterminated array"),
                        _ => items.push(self.value()?),
                    }
                }
            }
            Some(c) if c.is_ascii_digit() || *c == b'-' || *c == b'+' => {
                let start = self.pos;
                self.pos += 1;
                while self
                    .s
                    .get(self.pos)
                    .is_some_and(|c| c.is_ascii_digit() || *c == b'.' || *c == b'e' || *c == b'-')
                {
                    self.pos += 1;
                }
                let t = String::from_utf8_lossy(&self.s[start..self.pos]).into_owned();
                if let Ok(i) = t.parse::<i64>() {
                    Ok(Value::Int(i))
                } else if let Ok(f) = t.parse::<f64>() {
                    Ok(Value::Float(f))
                } else {
                    self.err(format!("bad number {t:?}"))
                }
            }
            other => self.err(format!(
                "expected a value, found {:?}",
                other.map(|c| *c as char)
            )),
        }
    }

    fn section_body(&mut self, top: bool) -> Result<Section, ParseError> {
        let mut sec = Section::default();
        loop {
            self.skip();
            match self.s.get(self.pos) {
                None if top => return Ok(sec),
                None => return self.err("missing }"),
                Some(b'}') if !top => {
                    self.pos += 1;
                    return Ok(sec);
                }
                Some(b'}') => return self.err("unbalanced }"),
                _ => {}
            }
            let name = self.ident()?;
            self.skip();
            match self.s.get(self.pos) {
                Some(b'{') => {
                    self.pos += 1;
                    let s = self.section_body(false)?;
                    sec.entries.push((name, Node::Section(s)));
                }
                Some(b'=') => {
                    self.pos += 1;
                    let v = self.value()?;
                    sec.entries.push((name, Node::Value(v)));
                }
                _ => return self.err(format!("expected = or {{ after {name}")),
            }
        }
    }
}

/// Parses metadata text.
pub fn parse(text: &str) -> Result<Section, ParseError> {
    Parser {
        s: text.as_bytes(),
        pos: 0,
        line: 1,
    }
    .section_body(true)
}

fn write_value(out: &mut String, v: &Value) {
    match v {
        Value::Int(i) => {
            let _ = write!(out, "{i}");
        }
        Value::Float(f) => {
            let _ = write!(out, "{f}");
        }
        Value::Str(s) => {
            out.push('"');
            for c in s.chars() {
                if c == '"' || c == '\\' {
                    out.push('\\');
                }
                out.push(c);
            }
            out.push('"');
        }
        Value::Array(a) => {
            out.push('[');
            for (i, v) in a.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_value(out, v);
            }
            out.push(']');
        }
    }
}

fn write_section(out: &mut String, s: &Section, depth: usize) {
    for (k, n) in &s.entries {
        for _ in 0..depth {
            out.push('\t');
        }
        match n {
            Node::Value(v) => {
                out.push_str(k);
                out.push_str(" = ");
                write_value(out, v);
                out.push('\n');
            }
            Node::Section(sub) => {
                out.push_str(k);
                out.push_str(" {\n");
                write_section(out, sub, depth + 1);
                for _ in 0..depth {
                    out.push('\t');
                }
                out.push_str("}\n");
                if depth == 0 {
                    out.push('\n');
                }
            }
        }
    }
}

/// Writes metadata text in LVM2's layout (tab indentation).
pub fn write(s: &Section) -> String {
    let mut out = String::new();
    write_section(&mut out, s, 0);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_lvm_text_and_writes_it_back_losslessly() {
        let text = "vg0 {\n\tid = \"abc\"\n\tseqno = 3\n\tstatus = [\"READ\", \"WRITE\"]\n\tflags = []\n\t# comment\n\tlogical_volumes {\n\t\tlv {\n\t\t\tsize = -1\n\t\t\tname = \"a \\\"q\\\" b\"\n\t\t}\n\t}\n}\ncontents = \"Text Format Volume Group\"\nversion = 1\n";
        let t = parse(text).unwrap();
        let vg = t.section("vg0").unwrap();
        assert_eq!(vg.int("seqno"), Some(3));
        assert_eq!(vg.strs("status"), Some(vec!["READ", "WRITE"]));
        let lv = vg
            .section("logical_volumes")
            .unwrap()
            .section("lv")
            .unwrap();
        assert_eq!(lv.str("name"), Some("a \"q\" b"));
        assert_eq!(parse(&write(&t)).unwrap(), t);
    }

    #[test]
    fn syntax_errors_name_the_line() {
        assert_eq!(parse("a {\n b = \n}").unwrap_err().line, 3);
        assert!(parse("a { b = 1").is_err());
        assert!(parse("a = \"x").is_err());
        assert!(parse("}").is_err());
    }
}
