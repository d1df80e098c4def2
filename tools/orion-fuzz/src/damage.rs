// SPDX-License-Identifier: GPL-2.0 OR MIT

//! Damaged thin-pool metadata: a pristine image with one kind of damage applied to its
//! used blocks. Some damage keeps the checksum wrong (what a torn or flipped block looks
//! like), some is resealed with a valid checksum and location so that it reaches the
//! structure parsers (counts, keys, child pointers, block numbers out of range, loops).

use orion_crash::rng::Rng;
use orion_pdata::block::{Kind, BLOCK_SIZE};

/// The kinds of damage.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Damage {
    /// A few bits flipped; the checksum no longer matches.
    BitFlip,
    /// A few bits flipped, then the block resealed: valid checksum, damaged content.
    BitFlipResealed,
    /// The block zeroed.
    Zeroed,
    /// The second half of the block zeroed (a torn write).
    Torn,
    /// Another used block's bytes copied over it (wrong location in its header).
    Misplaced,
    /// Another block's bytes copied over it and resealed there: a child pointer that
    /// leads to a copy of another node (shared subtrees, loops).
    CopiedResealed,
    /// A 64-bit word replaced by a large value and resealed (block numbers past the end,
    /// huge counts).
    BigValue,
    /// The superblock's fields damaged and resealed.
    Superblock,
}

impl Damage {
    /// Every kind, in the order cases cycle through them.
    pub const ALL: [Damage; 8] = [
        Damage::BitFlip,
        Damage::BitFlipResealed,
        Damage::Zeroed,
        Damage::Torn,
        Damage::Misplaced,
        Damage::CopiedResealed,
        Damage::BigValue,
        Damage::Superblock,
    ];
}

/// The kind of the block at `nr` in `image`, if it checks as one.
pub fn kind_of(image: &[u8], nr: u64) -> Option<Kind> {
    let b = block(image, nr)?;
    [Kind::Superblock, Kind::Node, Kind::Bitmap, Kind::Index]
        .into_iter()
        .find(|k| k.check(nr, b).is_ok())
}

fn block(image: &[u8], nr: u64) -> Option<&[u8]> {
    let at = usize::try_from(nr).ok()?.checked_mul(BLOCK_SIZE)?;
    image.get(at..at + BLOCK_SIZE)
}

fn block_mut(image: &mut [u8], nr: u64) -> &mut [u8] {
    let at = nr as usize * BLOCK_SIZE;
    &mut image[at..at + BLOCK_SIZE]
}

/// The used blocks of `image` (those that check as some kind) and their kinds.
pub fn used_blocks(image: &[u8]) -> Vec<(u64, Kind)> {
    (0..(image.len() / BLOCK_SIZE) as u64)
        .filter_map(|nr| kind_of(image, nr).map(|k| (nr, k)))
        .collect()
}

fn flip_bits(rng: &mut Rng, b: &mut [u8], from: usize) {
    for _ in 0..rng.below(4) + 1 {
        let i = from + rng.below((b.len() - from) as u64) as usize;
        b[i] ^= 1 << rng.below(8);
    }
}

const BIG: [u64; 6] = [u64::MAX, 1 << 40, 1 << 32, 0xffff_ffff, 1 << 24, 0];

/// Applies case `n` of `seed` to `image` (a copy of the pristine one); `used` is
/// [`used_blocks`] of the pristine image. Returns what was done, for the report.
pub fn apply(image: &mut [u8], used: &[(u64, Kind)], seed: u64, n: u64) -> String {
    let mut rng = Rng::new(orion_crash::rng::mix(
        seed ^ n.wrapping_mul(0x2545_f491_4f6c_dd1d),
    ));
    let damage = Damage::ALL[(n % Damage::ALL.len() as u64) as usize];
    if used.is_empty() {
        return "nothing to damage".to_owned();
    }
    let pick = |rng: &mut Rng| used[rng.below(used.len() as u64) as usize];
    let (nr, kind) = match damage {
        Damage::Superblock => (0, Kind::Superblock),
        _ => pick(&mut rng),
    };
    match damage {
        Damage::BitFlip => flip_bits(&mut rng, block_mut(image, nr), 0),
        Damage::BitFlipResealed => {
            // Past the checksum and location words, which the reseal rewrites.
            flip_bits(&mut rng, block_mut(image, nr), 16);
            kind.seal(nr, block_mut(image, nr));
        }
        Damage::Zeroed => block_mut(image, nr).fill(0),
        Damage::Torn => block_mut(image, nr)[BLOCK_SIZE / 2..].fill(0),
        Damage::Misplaced | Damage::CopiedResealed => {
            let (from, _) = pick(&mut rng);
            let src = block(image, from).map(<[u8]>::to_vec).unwrap_or_default();
            block_mut(image, nr).copy_from_slice(&src);
            if damage == Damage::CopiedResealed {
                let k = kind_of(&src_at(&src, from), from).unwrap_or(kind);
                k.seal(nr, block_mut(image, nr));
            }
            return format!("{damage:?} block {from} over block {nr}");
        }
        Damage::BigValue | Damage::Superblock => {
            let words = BLOCK_SIZE / 8;
            let i = 2 + rng.below(words as u64 - 2) as usize;
            // The superblock's fields are in its first 64 words.
            let i = if damage == Damage::Superblock {
                2 + i % 62
            } else {
                i
            };
            let v = BIG[rng.below(BIG.len() as u64) as usize];
            block_mut(image, nr)[i * 8..i * 8 + 8].copy_from_slice(&v.to_le_bytes());
            kind.seal(nr, block_mut(image, nr));
            return format!("{damage:?} block {nr} ({kind:?}) word {i} = {v:#x}");
        }
    }
    format!("{damage:?} block {nr} ({kind:?})")
}

/// `src` as a one-block image at block `nr` (to ask its kind where it came from).
fn src_at(src: &[u8], nr: u64) -> Vec<u8> {
    let mut v = vec![0u8; (nr as usize + 1) * BLOCK_SIZE];
    v[nr as usize * BLOCK_SIZE..].copy_from_slice(src);
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An image of four blocks, each a sealed node or bitmap.
    fn image() -> Vec<u8> {
        let mut img = vec![0u8; 4 * BLOCK_SIZE];
        Kind::Superblock.seal(0, &mut img[..BLOCK_SIZE]);
        for nr in 1..4u64 {
            let b = &mut img[nr as usize * BLOCK_SIZE..(nr as usize + 1) * BLOCK_SIZE];
            b[100] = nr as u8;
            Kind::Node.seal(nr, b);
        }
        img
    }

    #[test]
    fn used_blocks_are_found_with_their_kind() {
        let img = image();
        let used = used_blocks(&img);
        assert_eq!(used.len(), 4);
        assert_eq!(used[0], (0, Kind::Superblock));
        assert_eq!(used[2], (2, Kind::Node));
    }

    #[test]
    fn every_damage_changes_the_image_and_resealed_ones_still_check() {
        let pristine = image();
        let used = used_blocks(&pristine);
        for n in 0..64 {
            let mut img = pristine.clone();
            let what = apply(&mut img, &used, 3, n);
            let damage = Damage::ALL[(n % 8) as usize];
            // A copy of a block over itself, a value equal to the old one, or a torn half
            // already zero can leave the image as it was.
            if matches!(
                damage,
                Damage::BitFlip | Damage::BitFlipResealed | Damage::Zeroed
            ) {
                assert!(img != pristine, "{what}: image unchanged");
            }
            if matches!(damage, Damage::BitFlipResealed | Damage::Superblock) {
                assert_eq!(used_blocks(&img).len(), 4, "{what}: resealed block checks");
            }
            if damage == Damage::Zeroed {
                assert_eq!(used_blocks(&img).len(), 3, "{what}");
            }
        }
    }
}
