// SPDX-License-Identifier: GPL-2.0 OR MIT

//! Extent allocation with LVM2's policies.
//!
//! LVM2 tries the policies in turn up to the one asked for: `contiguous` (each stripe one
//! run; an extension right after the LV's last extents), `cling` (an extension only on the
//! PVs the LV's last segment uses), `normal` (any free runs, stripes on different PVs),
//! `anywhere` (stripes may share a PV). The first that succeeds gives the extents.

use crate::vg::{Lv, Segment, SegmentKind, Vg};
use anyhow::{bail, Result};

/// An allocation policy, in the order LVM2 tries them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub enum Policy {
    /// One run per stripe, following the LV's last extents.
    Contiguous,
    /// On the PVs the LV already uses.
    Cling,
    /// Anywhere but two stripes on one PV.
    #[default]
    Normal,
    /// Anywhere.
    Anywhere,
}

impl Policy {
    /// Parses LVM2's name (`inherit` is the VG's: normal).
    pub fn parse(s: &str) -> Result<Option<Policy>> {
        Ok(match s {
            "contiguous" => Some(Policy::Contiguous),
            "cling" => Some(Policy::Cling),
            "normal" => Some(Policy::Normal),
            "anywhere" => Some(Policy::Anywhere),
            "inherit" => None,
            _ => bail!("--alloc takes contiguous, cling, normal, anywhere or inherit"),
        })
    }

    /// LVM2's name.
    pub fn name(self) -> &'static str {
        match self {
            Policy::Contiguous => "contiguous",
            Policy::Cling => "cling",
            Policy::Normal => "normal",
            Policy::Anywhere => "anywhere",
        }
    }

    /// The policy an LV records (`allocation_policy`), normal when it inherits.
    pub fn of(lv: &Lv) -> Policy {
        lv.raw
            .str("allocation_policy")
            .and_then(|s| Policy::parse(s).ok().flatten())
            .unwrap_or_default()
    }
}

/// Where the new LV's extents come from.
pub struct LvRequest<'a> {
    /// Name.
    pub name: &'a str,
    /// Extents.
    pub extents: u64,
    /// Stripes (1 for linear).
    pub stripes: u64,
    /// Stripe size in sectors.
    pub stripe_size: u64,
}

fn linear_segment(le: u64, n: u64, pv: &str, pe: u64) -> Segment {
    Segment {
        start_extent: le,
        extent_count: n,
        kind: SegmentKind::Striped {
            stripe_size: None,
            stripes: vec![(pv.to_owned(), pe)],
        },
    }
}

/// Each PV's candidate for `needed` extents, as LVM2 picks it: its smallest free run that
/// holds them all, else its largest; stable-sorted by how much of `needed` it holds.
fn candidates(runs: &[(String, Vec<(u64, u64)>)], needed: u64) -> Vec<(String, u64, u64)> {
    let mut out: Vec<(String, u64, u64)> = runs
        .iter()
        .filter_map(|(pv, free)| {
            let fit = free
                .iter()
                .filter(|(_, n)| *n >= needed)
                .min_by_key(|(_, n)| *n);
            let largest = free.iter().rev().max_by_key(|(_, n)| *n);
            fit.or(largest).map(|&(s, n)| (pv.clone(), s, n))
        })
        .filter(|(_, _, n)| *n > 0)
        .collect();
    out.sort_by_key(|(_, _, n)| std::cmp::Reverse((*n).min(needed)));
    out
}

fn take(runs: &mut [(String, Vec<(u64, u64)>)], pv: &str, start: u64, n: u64) {
    if let Some((_, free)) = runs.iter_mut().find(|(k, _)| k == pv) {
        if let Some(r) = free.iter_mut().find(|(s, _)| *s == start) {
            r.0 += n;
            r.1 -= n;
        }
        free.retain(|(_, len)| *len > 0);
    }
}

/// Linear extents: round after round the best candidate, as much as it holds.
fn fill(runs: &[(String, Vec<(u64, u64)>)], extents: u64, first_le: u64) -> Option<Vec<Segment>> {
    let mut runs = runs.to_vec();
    let mut segs = Vec::new();
    let mut need = extents;
    let mut le = first_le;
    while need > 0 {
        let (pv, start, len) = candidates(&runs, need).into_iter().next()?;
        let n = len.min(need);
        segs.push(linear_segment(le, n, &pv, start));
        take(&mut runs, &pv, start, n);
        le += n;
        need -= n;
    }
    Some(segs)
}

/// One run holding all `extents`: the first PV whose candidate does.
fn one_run(runs: &[(String, Vec<(u64, u64)>)], extents: u64, le: u64) -> Option<Vec<Segment>> {
    candidates(runs, extents)
        .into_iter()
        .find(|(_, _, n)| *n >= extents)
        .map(|(pv, start, _)| vec![linear_segment(le, extents, &pv, start)])
}

/// `stripes` areas of `per` extents each: on different PVs, or when `share` also several
/// on one PV.
fn parallel(
    runs: &[(String, Vec<(u64, u64)>)],
    stripes: u64,
    per: u64,
    share: bool,
) -> Option<Vec<(String, u64)>> {
    let mut runs = runs.to_vec();
    let mut areas = Vec::new();
    while (areas.len() as u64) < stripes {
        let found = candidates(&runs, per)
            .into_iter()
            .find(|(pv, _, n)| *n >= per && (share || !areas.iter().any(|(p, _)| p == pv)))?;
        take(&mut runs, &found.0, found.1, per);
        areas.push((found.0, found.1));
    }
    Some(areas)
}

/// An area: PV key and first extent.
pub type Area = (String, u64);

/// Parallel areas with a log, the way LVM2 allocates a mirror with its log (and a thin
/// pool with its metadata): the candidates sorted as for any allocation, the `count` areas
/// of `per` extents from the first ones, the log of `log` extents from the last candidate
/// big enough on another PV. `None` when there are not `count + 1` such PVs.
pub fn allocate_with_log(vg: &Vg, count: u64, per: u64, log: u64) -> Option<(Vec<Area>, Area)> {
    let cands = candidates(&vg.free_runs(), per);
    let n = count as usize;
    if cands.len() <= n || cands[..n].iter().any(|(_, _, len)| *len < per) {
        return None;
    }
    let (lpv, lpe, _) = cands[n..].iter().rev().find(|(_, _, len)| *len >= log)?;
    let areas = cands[..n]
        .iter()
        .map(|(pv, s, _)| (pv.clone(), *s))
        .collect();
    Some((areas, (lpv.clone(), *lpe)))
}

/// Allocates extents for a new LV with `policy`: a linear LV takes one run when one is
/// long enough, else (policy normal or wider) free runs in PV order; a striped LV needs
/// one run of `extents / stripes` per stripe, on different PVs unless `anywhere`.
pub fn allocate_with(vg: &Vg, req: &LvRequest<'_>, policy: Policy) -> Result<Vec<Segment>> {
    let runs = vg.free_runs();
    if req.stripes <= 1 {
        if let Some(s) = one_run(&runs, req.extents, 0) {
            return Ok(s);
        }
        if policy >= Policy::Normal {
            if let Some(s) = fill(&runs, req.extents, 0) {
                return Ok(s);
            }
        }
        bail!(
            "insufficient {}free space: {} extents needed, {} available in {}",
            if policy < Policy::Normal {
                "contiguous "
            } else {
                ""
            },
            req.extents,
            vg.free_extents(),
            vg.name
        );
    }
    if !req.extents.is_multiple_of(req.stripes) {
        bail!(
            "{} extents cannot be split evenly over {} stripes",
            req.extents,
            req.stripes
        );
    }
    let per = req.extents / req.stripes;
    let areas = parallel(&runs, req.stripes, per, false).or_else(|| {
        (policy == Policy::Anywhere)
            .then(|| parallel(&runs, req.stripes, per, true))
            .flatten()
    });
    let Some(areas) = areas else {
        bail!(
            "insufficient suitable allocatable extents: {} stripes of {per} extents need {} PVs with that much contiguous free space",
            req.stripes,
            req.stripes
        );
    };
    Ok(vec![Segment {
        start_extent: 0,
        extent_count: req.extents,
        kind: SegmentKind::Striped {
            stripe_size: Some(req.stripe_size),
            stripes: areas,
        },
    }])
}

/// [`allocate_with`] with the normal policy.
pub fn allocate(vg: &Vg, req: &LvRequest<'_>) -> Result<Vec<Segment>> {
    allocate_with(vg, req, Policy::Normal)
}

/// Merges neighbouring segments whose areas continue each other, as LVM2 does.
pub fn merge_segments(segs: &mut Vec<Segment>) {
    let mut out: Vec<Segment> = Vec::new();
    for s in segs.drain(..) {
        if let Some(last) = out.last_mut() {
            if let (
                SegmentKind::Striped {
                    stripe_size: a_size,
                    stripes: a,
                },
                SegmentKind::Striped {
                    stripe_size: b_size,
                    stripes: b,
                },
            ) = (&last.kind, &s.kind)
            {
                let per = last.extent_count / a.len() as u64;
                let continues = a_size == b_size
                    && a.len() == b.len()
                    && a.iter()
                        .zip(b)
                        .all(|((pa, ea), (pb, eb))| pa == pb && ea + per == *eb);
                if continues && last.start_extent + last.extent_count == s.start_extent {
                    last.extent_count += s.extent_count;
                    continue;
                }
            }
        }
        out.push(s);
    }
    *segs = out;
}

/// Extents to add to `lv` with `policy` (the LV's own when `None`): right after its last
/// areas when they are free (contiguous), else on the PVs its last segment uses (cling),
/// else anywhere the normal (or anywhere) policy allows.
pub fn allocate_extension_with(
    vg: &Vg,
    lv: &Lv,
    extra: u64,
    policy: Option<Policy>,
) -> Result<Vec<Segment>> {
    let policy = policy.unwrap_or_else(|| Policy::of(lv));
    let start = lv.extents();
    let runs = vg.free_runs();
    let (stripes, stripe_size, last_areas) = match lv.segments.last().map(|s| (s, &s.kind)) {
        Some((
            seg,
            SegmentKind::Striped {
                stripes,
                stripe_size,
            },
        )) => (
            stripes.len() as u64,
            *stripe_size,
            Some((seg.extent_count / stripes.len() as u64, stripes)),
        ),
        _ => (1, None, None),
    };
    if let Some((per, areas)) = last_areas.filter(|(_, a)| a.len() == 1) {
        return extend_linear(vg, lv, &areas[0], per, extra, policy);
    }
    if let Some((per, areas)) = last_areas {
        let n = stripes;
        if extra.is_multiple_of(n) {
            // Contiguous: every stripe continues right after its last extent.
            let fits = areas.iter().all(|(pv, pe)| {
                runs.iter().any(|(k, free)| {
                    k == pv
                        && free
                            .iter()
                            .any(|(s, len)| *s == pe + per && *len >= extra / n)
                })
            });
            if fits {
                return Ok(vec![Segment {
                    start_extent: start,
                    extent_count: extra,
                    kind: SegmentKind::Striped {
                        stripe_size,
                        stripes: areas
                            .iter()
                            .map(|(pv, pe)| (pv.clone(), pe + per))
                            .collect(),
                    },
                }]);
            }
            // Cling: each stripe on its own PV again.
            if policy >= Policy::Cling {
                let mut free = runs.clone();
                let mut new_areas = Vec::new();
                for (pv, _) in areas {
                    let run = free.iter_mut().find(|(k, _)| k == pv).and_then(|(_, f)| {
                        f.iter_mut()
                            .filter(|(_, len)| *len >= extra / n)
                            .min_by_key(|(_, len)| *len)
                    });
                    match run {
                        Some(r) => {
                            new_areas.push((pv.clone(), r.0));
                            r.0 += extra / n;
                            r.1 -= extra / n;
                        }
                        None => break,
                    }
                }
                if new_areas.len() as u64 == n && n > 1 {
                    return Ok(vec![Segment {
                        start_extent: start,
                        extent_count: extra,
                        kind: SegmentKind::Striped {
                            stripe_size,
                            stripes: new_areas,
                        },
                    }]);
                }
                if n == 1 {
                    let mine: Vec<(String, Vec<(u64, u64)>)> = runs
                        .iter()
                        .filter(|(k, _)| *k == areas[0].0)
                        .cloned()
                        .collect();
                    if let Some(s) = fill(&mine, extra, start) {
                        return Ok(s);
                    }
                }
            }
        }
    }
    if policy < Policy::Normal {
        bail!(
            "insufficient suitable {} allocatable extents for {}/{}",
            policy.name(),
            vg.name,
            lv.name
        );
    }
    let mut segs = allocate_with(
        vg,
        &LvRequest {
            name: &lv.name,
            extents: extra,
            stripes,
            stripe_size: stripe_size.unwrap_or(128),
        },
        policy,
    )?;
    for s in &mut segs {
        s.start_extent += start;
    }
    Ok(segs)
}

/// A linear extension the way LVM2 cascades its policies, each phase taking what it can
/// and the next one the rest: the run right after the last extent (contiguous), runs on
/// the last segment's PV (cling), then any runs (normal).
fn extend_linear(
    vg: &Vg,
    lv: &Lv,
    last: &(String, u64),
    per: u64,
    extra: u64,
    policy: Policy,
) -> Result<Vec<Segment>> {
    let mut runs = vg.free_runs();
    let mut le = lv.extents();
    let mut need = extra;
    let mut segs = Vec::new();
    let next = last.1 + per;
    let after = runs
        .iter()
        .find(|(k, _)| *k == last.0)
        .and_then(|(_, f)| f.iter().find(|(s, _)| *s == next))
        .map(|&(_, n)| n.min(need));
    if let Some(n) = after {
        segs.push(linear_segment(le, n, &last.0, next));
        take(&mut runs, &last.0, next, n);
        le += n;
        need -= n;
    }
    if need > 0 && policy >= Policy::Cling {
        let mine: Vec<(String, Vec<(u64, u64)>)> =
            runs.iter().filter(|(k, _)| *k == last.0).cloned().collect();
        let mut have = 0;
        let mut pieces = Vec::new();
        let mut left = mine;
        while have < need {
            let Some((pv, start, len)) = candidates(&left, need - have).into_iter().next() else {
                break;
            };
            let n = len.min(need - have);
            pieces.push((pv.clone(), start, n));
            take(&mut left, &pv, start, n);
            have += n;
        }
        for (pv, start, n) in pieces {
            segs.push(linear_segment(le, n, &pv, start));
            take(&mut runs, &pv, start, n);
            le += n;
            need -= n;
        }
    }
    if need > 0 && policy >= Policy::Normal {
        if let Some(mut more) = fill(&runs, need, le) {
            segs.append(&mut more);
            need = 0;
        }
    }
    if need > 0 {
        bail!(
            "insufficient suitable {} allocatable extents for {}/{}: {extra} needed",
            policy.name(),
            vg.name,
            lv.name
        );
    }
    Ok(segs)
}

/// [`allocate_extension_with`] with the LV's own policy.
pub fn allocate_extension(vg: &Vg, lv: &Lv, extra: u64) -> Result<Vec<Segment>> {
    allocate_extension_with(vg, lv, extra, None)
}
