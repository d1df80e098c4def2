// SPDX-License-Identifier: GPL-2.0 OR MIT

//! Extent allocation with LVM2's normal policy.

use crate::vg::{Lv, Segment, SegmentKind, Vg};
use anyhow::{bail, Result};
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

/// Allocates extents for an LV with LVM2's "normal" policy: linear LVs take free runs in
/// PV order (several segments when one run is too short); striped LVs need one run of
/// `extents / stripes` on each of `stripes` different PVs.
pub fn allocate(vg: &Vg, req: &LvRequest<'_>) -> Result<Vec<Segment>> {
    let runs = vg.free_runs();
    if req.stripes <= 1 {
        let mut segs = Vec::new();
        let mut need = req.extents;
        let mut le = 0;
        for (pv, free) in &runs {
            for &(start, len) in free {
                if need == 0 {
                    break;
                }
                let take = len.min(need);
                segs.push(Segment {
                    start_extent: le,
                    extent_count: take,
                    kind: SegmentKind::Striped {
                        stripe_size: None,
                        stripes: vec![(pv.clone(), start)],
                    },
                });
                le += take;
                need -= take;
            }
        }
        if need > 0 {
            bail!(
                "insufficient free space: {} extents needed, {} available in {}",
                req.extents,
                vg.free_extents(),
                vg.name
            );
        }
        return Ok(segs);
    }
    if !req.extents.is_multiple_of(req.stripes) {
        bail!(
            "{} extents cannot be split evenly over {} stripes",
            req.extents,
            req.stripes
        );
    }
    let per = req.extents / req.stripes;
    let mut areas = Vec::new();
    for (pv, free) in &runs {
        if areas.len() as u64 == req.stripes {
            break;
        }
        if let Some(&(start, _)) = free.iter().find(|(_, len)| *len >= per) {
            areas.push((pv.clone(), start));
        }
    }
    if (areas.len() as u64) < req.stripes {
        bail!(
            "insufficient suitable allocatable extents: {} stripes of {per} extents need {} PVs with that much contiguous free space",
            req.stripes,
            req.stripes
        );
    }
    Ok(vec![Segment {
        start_extent: 0,
        extent_count: req.extents,
        kind: SegmentKind::Striped {
            stripe_size: Some(req.stripe_size),
            stripes: areas,
        },
    }])
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

/// Extents to add to `lv`: right after its last areas when they are free (what LVM2's
/// normal policy picks first), otherwise anywhere by [`allocate`].
pub fn allocate_extension(vg: &Vg, lv: &Lv, extra: u64) -> Result<Vec<Segment>> {
    let start = lv.extents();
    if let Some(Segment {
        extent_count,
        kind: SegmentKind::Striped {
            stripe_size,
            stripes,
        },
        ..
    }) = lv.segments.last()
    {
        let n = stripes.len() as u64;
        let per = extent_count / n;
        if extra.is_multiple_of(n) {
            let runs = vg.free_runs();
            let fits = stripes.iter().all(|(pv, pe)| {
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
                        stripe_size: *stripe_size,
                        stripes: stripes
                            .iter()
                            .map(|(pv, pe)| (pv.clone(), pe + per))
                            .collect(),
                    },
                }]);
            }
        }
    }
    let (stripes, stripe_size) = match lv.segments.last().map(|s| &s.kind) {
        Some(SegmentKind::Striped {
            stripes,
            stripe_size,
        }) => (stripes.len() as u64, stripe_size.unwrap_or(128)),
        _ => (1, 128),
    };
    let mut segs = allocate(
        vg,
        &LvRequest {
            name: &lv.name,
            extents: extra,
            stripes,
            stripe_size,
        },
    )?;
    for s in &mut segs {
        s.start_extent += start;
    }
    Ok(segs)
}
