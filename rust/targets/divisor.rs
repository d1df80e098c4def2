// SPDX-License-Identifier: GPL-2.0 OR MIT

//! Division by a table constant (a stripe's chunk size, the stripe count, a thin pool's block
//! size) on the I/O path: a shift and a mask when it is a power of two, as C's
//! `chunk_size_shift` and `sectors_per_block_shift`, a division otherwise; never zero, so
//! neither form has a panic branch.

use core::num::NonZeroU64;

/// A non-zero divisor with its shift when it is a power of two.
#[derive(Clone, Copy)]
pub(crate) struct Divisor {
    value: NonZeroU64,
    shift: Option<u32>,
}

impl Divisor {
    /// None for zero.
    pub(crate) fn new(value: u64) -> Option<Self> {
        Some(Self {
            value: NonZeroU64::new(value)?,
            shift: value.is_power_of_two().then(|| value.trailing_zeros()),
        })
    }

    /// The divisor.
    pub(crate) fn value(self) -> u64 {
        self.value.get()
    }

    /// `(n / value, n % value)`.
    #[inline]
    pub(crate) fn div_rem(self, n: u64) -> (u64, u64) {
        match self.shift {
            // `s` is below 64 (a `u64`'s trailing zeros): no shift overflow check.
            Some(s) => (n.wrapping_shr(s), n & self.value().wrapping_sub(1)),
            None => (n / self.value, n % self.value),
        }
    }
}
