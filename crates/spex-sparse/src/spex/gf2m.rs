//! Arithmetic in the binary extension field GF(2^m), 2 <= m <= 16, by log/antilog tables.

/// Primitive polynomials over GF(2) for m = 2..=16 (bit i = coefficient of x^i).
const PRIMITIVE: [u32; 15] = [
    0x7, 0xB, 0x13, 0x25, 0x43, 0x83, 0x11D, 0x211, 0x409, 0x805, 0x1053, 0x201B, 0x4443, 0x8003,
    0x1100B,
];

/// Smallest supported extension degree.
pub const MIN_M: u32 = 2;
/// Largest supported extension degree.
pub const MAX_M: u32 = 16;

/// The field GF(2^m); elements are `u32` in `0..2^m` (polynomial basis), `alpha` = x is primitive.
#[derive(Clone, Debug)]
pub struct Gf2m {
    order: u32,
    /// `exp[i] = alpha^i` for i in `0..2 * order` (doubled so products need no reduction).
    exp: Vec<u32>,
    /// `log[a]` for a != 0; `log[0]` is unused.
    log: Vec<u32>,
}

impl Gf2m {
    /// Builds GF(2^m); `m` must lie in `MIN_M..=MAX_M` (callers check).
    pub fn new(m: u32) -> Self {
        assert!((MIN_M..=MAX_M).contains(&m), "GF(2^{m}) unsupported");
        let poly = PRIMITIVE[(m - MIN_M) as usize];
        let order = (1u32 << m) - 1;
        let mut exp = vec![0u32; 2 * order as usize];
        let mut log = vec![0u32; 1 << m];
        let mut a = 1u32;
        for i in 0..order {
            exp[i as usize] = a;
            log[a as usize] = i;
            a <<= 1;
            if a >> m & 1 == 1 {
                a ^= poly;
            }
        }
        for i in order..2 * order {
            exp[i as usize] = exp[(i - order) as usize];
        }
        Gf2m { order, exp, log }
    }

    /// The multiplicative group's order, 2^m - 1.
    pub fn order(&self) -> u32 {
        self.order
    }

    /// `alpha^e` for any exponent (reduced mod 2^m - 1).
    pub fn alpha_pow(&self, e: u64) -> u32 {
        self.exp[(e % self.order as u64) as usize]
    }

    /// The product `a * b`.
    pub fn mul(&self, a: u32, b: u32) -> u32 {
        if a == 0 || b == 0 {
            return 0;
        }
        self.exp[(self.log[a as usize] + self.log[b as usize]) as usize]
    }

    /// The quotient `a / b`; `b` must be non-zero.
    pub fn div(&self, a: u32, b: u32) -> u32 {
        assert!(b != 0, "division by zero in GF(2^m)");
        if a == 0 {
            return 0;
        }
        let e = self.log[a as usize] + self.order - self.log[b as usize];
        self.exp[e as usize]
    }

    /// The discrete log of a non-zero element.
    pub fn log(&self, a: u32) -> u32 {
        debug_assert!(a != 0);
        self.log[a as usize]
    }

    /// The cyclotomic coset of `s` modulo 2^m - 1: `{s, 2s, 4s, ...}`, sorted.
    pub fn cyclotomic_coset(&self, s: u32) -> Vec<u32> {
        let mut coset = Vec::new();
        let mut e = s % self.order;
        while !coset.contains(&e) {
            coset.push(e);
            e = (2 * e) % self.order;
        }
        coset.sort_unstable();
        coset
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_polynomial_is_primitive() {
        for m in MIN_M..=MAX_M {
            let f = Gf2m::new(m);
            // alpha generates the whole multiplicative group: all non-zero elements appear once.
            let mut seen = vec![false; 1 << m];
            for i in 0..f.order() {
                let a = f.alpha_pow(i as u64);
                assert!(a != 0 && !seen[a as usize], "m = {m}: alpha^{i} repeats");
                seen[a as usize] = true;
            }
        }
    }

    #[test]
    fn field_axioms_by_brute_force_in_gf16() {
        let f = Gf2m::new(4);
        for a in 0..16 {
            for b in 0..16 {
                assert_eq!(f.mul(a, b), f.mul(b, a));
                if b != 0 {
                    assert_eq!(f.mul(f.div(a, b), b), a);
                }
                for c in 0..16 {
                    // distributivity over xor (addition in characteristic 2)
                    assert_eq!(f.mul(a, b ^ c), f.mul(a, b) ^ f.mul(a, c));
                    assert_eq!(f.mul(f.mul(a, b), c), f.mul(a, f.mul(b, c)));
                }
            }
        }
    }

    #[test]
    fn multiplication_matches_carryless_product_mod_polynomial() {
        let f = Gf2m::new(8);
        let slow = |a: u32, b: u32| {
            let mut r = 0u32;
            for i in 0..8 {
                if b >> i & 1 == 1 {
                    r ^= a << i;
                }
            }
            for i in (8..16).rev() {
                if r >> i & 1 == 1 {
                    r ^= 0x11D << (i - 8);
                }
            }
            r
        };
        for a in (0..256).step_by(7) {
            for b in (0..256).step_by(5) {
                assert_eq!(f.mul(a, b), slow(a, b));
            }
        }
    }

    #[test]
    fn cosets_partition_exponents() {
        let f = Gf2m::new(5);
        assert_eq!(f.cyclotomic_coset(5), vec![5, 9, 10, 18, 20]);
        assert_eq!(f.cyclotomic_coset(1), vec![1, 2, 4, 8, 16]);
    }
}
