// SPDX-License-Identifier: GPL-2.0 OR MIT

//! Where to cut: the entries of a log after which a walk checks the device.
//!
//! Right after a flush, a FUA write or a mark is where a target's ordering decisions show
//! (a commit's superblock written, or not yet); between two of them the log holds writes
//! that became durable in some order, and a random one of those stands for the rest. When
//! that gives more than the walk can afford, the cut points are thinned at random (evenly
//! over the log) to the budget.

use crate::log::Header;
use crate::rng::Rng;

/// The cut points at or after entry `start`, in order: `start`, every barrier after it
/// ([`Header::is_barrier`]), one random entry strictly between each two, and the last
/// entry; at most `max` of them (a random choice when there are more).
pub fn select(headers: &[Header], start: u64, max: usize, rng: &mut Rng) -> Vec<u64> {
    let end = headers.len() as u64;
    if start >= end {
        return Vec::new();
    }
    let mut cuts = vec![start];
    let mut prev = start;
    for i in start + 1..end {
        if headers[i as usize].is_barrier() || i == end - 1 {
            if i - prev > 1 {
                cuts.push(prev + 1 + rng.below(i - prev - 1));
            }
            cuts.push(i);
            prev = i;
        }
    }
    if cuts.len() > max {
        // A partial Fisher-Yates shuffle picks `max` of them; sorted back into log order.
        for k in 0..max {
            let j = k + rng.below((cuts.len() - k) as u64) as usize;
            cuts.swap(k, j);
        }
        cuts.truncate(max);
        cuts.sort_unstable();
    }
    cuts
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::Flags;

    fn log(flags: &[u64]) -> Vec<Header> {
        flags
            .iter()
            .map(|&f| Header {
                flags: Flags(f),
                nr_sectors: 8,
                ..Header::default()
            })
            .collect()
    }

    #[test]
    fn barriers_and_one_entry_between() {
        // 0: write, 1: mark (start), 2-4: writes, 5: flush, 6: FUA, 7-8: writes.
        let h = log(&[0, 8, 0, 0, 0, 1, 2, 0, 0]);
        for seed in 0..20 {
            let c = select(&h, 1, 100, &mut Rng::new(seed));
            assert_eq!(c.len(), 6, "{c:?}");
            assert_eq!(c[0], 1);
            assert!((2..5).contains(&c[1]), "{c:?}");
            assert_eq!(&c[2..4], &[5, 6]);
            // Entry 7 lies between the FUA and the last entry.
            assert_eq!(&c[4..], &[7, 8]);
        }
        assert!(select(&h, 9, 100, &mut Rng::new(1)).is_empty());
        assert_eq!(select(&h, 8, 100, &mut Rng::new(1)), [8]);
    }

    #[test]
    fn thinned_to_the_budget_in_order_and_spread() {
        let mut flags = vec![0u64; 10_000];
        for (i, f) in flags.iter_mut().enumerate() {
            if i % 7 == 0 {
                *f = 1;
            }
        }
        let h = log(&flags);
        let all = select(&h, 0, usize::MAX, &mut Rng::new(3));
        assert!(all.len() > 2500);
        let c = select(&h, 0, 500, &mut Rng::new(3));
        assert_eq!(c.len(), 500);
        assert!(c.windows(2).all(|w| w[0] < w[1]));
        // Spread over the whole log: each tenth of it has some.
        for tenth in 0..10 {
            let n = c.iter().filter(|&&i| i / 1000 == tenth).count();
            assert!((25..=75).contains(&n), "tenth {tenth}: {n}");
        }
    }
}
