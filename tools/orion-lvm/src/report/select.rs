// SPDX-License-Identifier: GPL-2.0 OR MIT

//! `-S`/`--select`: LVM2's selection criteria: comparisons (`=`, `!=`, `<`, `<=`, `>`, `>=`)
//! and regular expressions (`=~`, `!~`, on string fields only, as LVM2 2.03) joined with
//! `&&` (or `,`), `||` (or `#`), `!` and parentheses. Sizes compare in sectors with units
//! (MiB without one), percentages as numbers, string lists by membership; a regular
//! expression matches anywhere in the string.

use super::fields::{find, Field, Kind};
use super::Value;
use crate::exit::usage;
use anyhow::Result;
use regex::Regex;
use std::cmp::Ordering;

/// A comparison operator.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    /// `=`.
    Eq,
    /// `!=`.
    Ne,
    /// `<`.
    Lt,
    /// `<=`.
    Le,
    /// `>`.
    Gt,
    /// `>=`.
    Ge,
    /// `=~`.
    Match,
    /// `!~`.
    NoMatch,
}

/// A parsed selection.
#[derive(Clone, Debug)]
pub enum Selection {
    /// `field op value`.
    Cmp(&'static Field, Op, String),
    /// `field =~ regex` (or `!~` when the flag is set).
    Re(&'static Field, Regex, bool),
    /// `!`.
    Not(Box<Selection>),
    /// `&&`.
    And(Box<Selection>, Box<Selection>),
    /// `||`.
    Or(Box<Selection>, Box<Selection>),
}

#[derive(Clone, Debug, PartialEq)]
enum Tok {
    Word(String),
    Op(Op),
    And,
    Or,
    Not,
    Open,
    Close,
}

fn lex(s: &str) -> Result<Vec<Tok>> {
    let c: Vec<char> = s.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < c.len() {
        let two: String = c[i..(i + 2).min(c.len())].iter().collect();
        let (tok, n) = match (c[i], two.as_str()) {
            (ch, _) if ch.is_whitespace() => {
                i += 1;
                continue;
            }
            (_, "&&") => (Tok::And, 2),
            (_, "||") => (Tok::Or, 2),
            (_, "!=") => (Tok::Op(Op::Ne), 2),
            (_, "<=") => (Tok::Op(Op::Le), 2),
            (_, ">=") => (Tok::Op(Op::Ge), 2),
            (_, "=~") => (Tok::Op(Op::Match), 2),
            (_, "!~") => (Tok::Op(Op::NoMatch), 2),
            (',', _) => (Tok::And, 1),
            ('#', _) => (Tok::Or, 1),
            ('!', _) => (Tok::Not, 1),
            ('(', _) => (Tok::Open, 1),
            (')', _) => (Tok::Close, 1),
            ('=', _) => (Tok::Op(Op::Eq), 1),
            ('<', _) => (Tok::Op(Op::Lt), 1),
            ('>', _) => (Tok::Op(Op::Gt), 1),
            (q @ ('"' | '\''), _) => {
                let end = c[i + 1..]
                    .iter()
                    .position(|x| *x == q)
                    .ok_or_else(|| usage("unterminated quote in -S"))?;
                out.push(Tok::Word(c[i + 1..i + 1 + end].iter().collect()));
                i += end + 2;
                continue;
            }
            _ => {
                let start = i;
                while i < c.len() && !c[i].is_whitespace() && !"=!<>&|,#()".contains(c[i]) {
                    i += 1;
                }
                out.push(Tok::Word(c[start..i].iter().collect()));
                continue;
            }
        };
        out.push(tok);
        i += n;
    }
    Ok(out)
}

struct Parser<'a> {
    toks: Vec<Tok>,
    at: usize,
    prefix: &'a str,
}

impl Parser<'_> {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.at)
    }

    fn next(&mut self) -> Option<Tok> {
        let t = self.toks.get(self.at).cloned();
        self.at += 1;
        t
    }

    fn or(&mut self) -> Result<Selection> {
        let mut l = self.and()?;
        while self.peek() == Some(&Tok::Or) {
            self.at += 1;
            l = Selection::Or(Box::new(l), Box::new(self.and()?));
        }
        Ok(l)
    }

    fn and(&mut self) -> Result<Selection> {
        let mut l = self.unary()?;
        while self.peek() == Some(&Tok::And) {
            self.at += 1;
            l = Selection::And(Box::new(l), Box::new(self.unary()?));
        }
        Ok(l)
    }

    fn unary(&mut self) -> Result<Selection> {
        match self.next() {
            Some(Tok::Not) => Ok(Selection::Not(Box::new(self.unary()?))),
            Some(Tok::Open) => {
                let e = self.or()?;
                match self.next() {
                    Some(Tok::Close) => Ok(e),
                    _ => Err(usage("missing ) in -S")),
                }
            }
            Some(Tok::Word(name)) => {
                let field = find(&name, self.prefix)
                    .ok_or_else(|| anyhow::anyhow!("Unrecognised selection field: {name}"))?;
                let Some(Tok::Op(op)) = self.next() else {
                    return Err(usage(format!("-S: expected an operator after {name}")));
                };
                let Some(Tok::Word(v)) = self.next() else {
                    return Err(usage(format!("-S: expected a value after {name}")));
                };
                if !matches!(op, Op::Match | Op::NoMatch) {
                    return Ok(Selection::Cmp(field, op, v));
                }
                if field.kind != Kind::Str {
                    return Err(usage(format!(
                        "dm_report: incompatible comparison type for selection field {name}"
                    )));
                }
                let re = Regex::new(&v)
                    .map_err(|e| usage(format!("-S: bad regular expression {v:?}: {e}")))?;
                Ok(Selection::Re(field, re, op == Op::NoMatch))
            }
            _ => Err(usage("-S: expected a field name")),
        }
    }
}

/// Parses `-S` for a report about `prefix` objects.
pub fn parse(s: &str, prefix: &str) -> Result<Selection> {
    let mut p = Parser {
        toks: lex(s)?,
        at: 0,
        prefix,
    };
    let e = p.or()?;
    if p.at != p.toks.len() {
        return Err(usage(format!("-S: unexpected text in {s:?}")));
    }
    Ok(e)
}

fn size_of(v: &str) -> Option<u64> {
    crate::commands::parse_size(v).ok()
}

fn order(field: &Field, have: &Value, want: &str) -> Option<Ordering> {
    match (field.kind, have) {
        (Kind::Size, Value::Size(n)) => Some(n.cmp(&size_of(want)?)),
        (Kind::Num, Value::Num(n)) => Some(n.cmp(&want.parse().ok()?)),
        (Kind::SNum, Value::SNum(n)) => Some(n.cmp(&want.parse().ok()?)),
        (Kind::Pct, Value::Pct(p)) => {
            let w: f64 = want.trim_end_matches('%').parse().ok()?;
            p.as_ref()?.partial_cmp(&w)
        }
        (_, Value::Str(s)) => Some(s.as_str().cmp(want)),
        _ => None,
    }
}

impl Selection {
    /// Whether a row (a lookup from field name to value) is selected.
    pub fn matches(&self, row: &dyn Fn(&str) -> Option<Value>) -> bool {
        match self {
            Selection::Not(e) => !e.matches(row),
            Selection::And(a, b) => a.matches(row) && b.matches(row),
            Selection::Or(a, b) => a.matches(row) || b.matches(row),
            Selection::Re(field, re, negate) => {
                let Some(Value::Str(s)) = row(field.name) else {
                    return false;
                };
                re.is_match(&s) != *negate
            }
            Selection::Cmp(field, op, want) => {
                let Some(have) = row(field.name) else {
                    return false;
                };
                if let Value::List(items) = &have {
                    let has = items.iter().any(|i| i == want);
                    return match op {
                        Op::Eq => has,
                        Op::Ne => !has,
                        _ => false,
                    };
                }
                let Some(o) = order(field, &have, want) else {
                    return false;
                };
                match op {
                    Op::Eq => o == Ordering::Equal,
                    Op::Ne => o != Ordering::Equal,
                    Op::Lt => o == Ordering::Less,
                    Op::Le => o != Ordering::Greater,
                    Op::Gt => o == Ordering::Greater,
                    Op::Ge => o != Ordering::Less,
                    // Parsed as `Selection::Re`.
                    Op::Match | Op::NoMatch => false,
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(name: &str) -> Option<Value> {
        Some(match name {
            "lv_name" => Value::Str("lv1".into()),
            "lv_size" => Value::Size(40960),
            "seg_count" => Value::Num(2),
            "lv_tags" => Value::List(vec!["a".into(), "b".into()]),
            "data_percent" => Value::Pct(None),
            _ => return None,
        })
    }

    fn sel(s: &str) -> bool {
        parse(s, "lv").unwrap().matches(&row)
    }

    #[test]
    fn comparisons_and_logic() {
        assert!(sel("lv_size>10m"));
        assert!(!sel("lv_size<20m"));
        assert!(sel("lv_size<=20m && name=lv1"));
        assert!(sel("lv_name=lv2 || seg_count>=2"));
        assert!(sel("!(lv_name=lv2)"));
        assert!(sel("lv_name='lv1', lv_tags=b"));
        assert!(!sel("lv_tags!=a"));
        assert!(!sel("data_percent>0"), "unknown percentages match nothing");
    }

    #[test]
    fn bad_selections_are_rejected() {
        assert!(parse("bogus=1", "lv").is_err());
        assert!(parse("lv_name", "lv").is_err());
        assert!(parse("(lv_name=a", "lv").is_err());
        assert!(parse("lv_size=~1", "lv").is_err(), "regex on a size");
        assert!(parse("lv_name=~(", "lv").is_err(), "bad regex");
    }

    #[test]
    fn regular_expressions() {
        assert!(sel("lv_name=~v"));
        assert!(sel("lv_name=~^lv[0-9]$"));
        assert!(!sel("lv_name=~^v"));
        assert!(sel("lv_name!~^v"));
        assert!(
            parse("lv_tags=~a", "lv").is_err(),
            "LVM2 takes no regex on lists"
        );
        assert!(sel("lv_name=~'l.1' && seg_count=2"));
    }
}
