//! [`Tile`]: where one register tile of a matrix product lands in C, shared by the product's
//! kernels ([`super::sgemm`] and [`super::amx`]).

/// The largest tile (rows x columns) of any kernel: the scratch for partial tiles.
pub(crate) const MAX_TILE: usize = 32 * 32;

/// Where one register tile lands in C.
pub(crate) struct Tile {
    /// Top-left element.
    pub c: *mut f32,
    /// Row stride of C (elements).
    pub ldc: usize,
    /// Valid rows and columns (at most the kernel's tile).
    pub rows: usize,
    pub cols: usize,
    /// Add to C instead of overwriting it (every K slice after the first).
    pub accumulate: bool,
}

impl Tile {
    /// Writes (or adds) the valid part of a full `[mr, nr]` tile held in `tmp`.
    ///
    /// # Safety
    /// The tile's valid rows and columns lie inside C.
    pub unsafe fn store_partial(&self, tmp: &[f32], nr: usize) {
        for r in 0..self.rows {
            for j in 0..self.cols {
                let c = self.c.add(r * self.ldc + j);
                let v = tmp[r * nr + j];
                *c = if self.accumulate { *c + v } else { v };
            }
        }
    }
}
