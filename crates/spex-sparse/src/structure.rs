//! Where a spectrum's interaction energy lies relative to a grouping of the players (e.g. heads
//! by layer): [`energy_split`].

use crate::{Basis, Spectrum};

/// Shares of the non-constant Fourier energy `sum_{|T| >= 1} F(T)^2`.
///
/// The three shares sum to 1, or are all 0 when there is no non-constant energy.
#[derive(Clone, Copy, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct EnergySplit {
    /// Terms of one player (`|T| = 1`).
    pub single: f64,
    /// Interactions (`|T| >= 2`) whose players all lie in one group.
    pub within: f64,
    /// Interactions (`|T| >= 2`) spanning two groups or more.
    pub across: f64,
}

/// How the non-constant Fourier energy of `spectrum` splits into single players, interactions
/// within a group and interactions across groups, where `group_of(i)` is player `i`'s group.
///
/// A Moebius spectrum is converted to the Fourier basis first (energy is a Fourier notion).
pub fn energy_split(spectrum: &Spectrum, group_of: impl Fn(u32) -> usize) -> EnergySplit {
    let fourier = spectrum.in_basis(Basis::Fourier);
    let (mut single, mut within, mut across) = (0.0, 0.0, 0.0);
    for (s, v) in fourier.iter() {
        let e = v * v;
        match s.indices() {
            [] => {}
            [_] => single += e,
            [first, rest @ ..] => {
                let g = group_of(*first);
                if rest.iter().all(|&i| group_of(i) == g) {
                    within += e;
                } else {
                    across += e;
                }
            }
        }
    }
    let total = single + within + across;
    if total <= 0.0 {
        return EnergySplit::default();
    }
    EnergySplit {
        single: single / total,
        within: within / total,
        across: across / total,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Subset;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-12
    }

    #[test]
    fn hand_made_shares() {
        // Groups {0, 1} and {2, 3}. Energies: constant 100 (ignored), single 1 + 4, within
        // 9 ({0, 1}) + 1 ({2, 3}), across 4 ({1, 2}) + 1 ({0, 1, 3}): total 20.
        let s = Spectrum::from_terms(
            4,
            Basis::Fourier,
            [
                (Subset::empty(), 10.0),
                (Subset::singleton(0), 1.0),
                (Subset::singleton(3), -2.0),
                (Subset::from_indices([0, 1]), 3.0),
                (Subset::from_indices([2, 3]), -1.0),
                (Subset::from_indices([1, 2]), 2.0),
                (Subset::from_indices([0, 1, 3]), 1.0),
            ],
        );
        let group = |i: u32| i as usize / 2;
        let split = energy_split(&s, group);
        assert!(close(split.single, 5.0 / 20.0), "{split:?}");
        assert!(close(split.within, 10.0 / 20.0), "{split:?}");
        assert!(close(split.across, 5.0 / 20.0), "{split:?}");
        // The same function in the Moebius basis splits the same way.
        let from_moebius = energy_split(&s.to_moebius(), group);
        assert!(close(from_moebius.single, split.single));
        assert!(close(from_moebius.within, split.within));
        assert!(close(from_moebius.across, split.across));
    }

    #[test]
    fn shares_sum_to_one() {
        let s = crate::synthetic::random_sparse_fourier(30, 200, 4, 9);
        for groups in [1, 3, 30] {
            let split = energy_split(&s, |i| i as usize % groups);
            assert!(close(split.single + split.within + split.across, 1.0));
            if groups == 1 {
                assert_eq!(split.across, 0.0);
            }
            if groups == 30 {
                assert_eq!(split.within, 0.0);
            }
        }
    }

    #[test]
    fn constant_only_gives_zeros() {
        let s = Spectrum::from_terms(5, Basis::Moebius, [(Subset::empty(), 3.0)]);
        assert_eq!(energy_split(&s, |_| 0), EnergySplit::default());
        assert_eq!(
            energy_split(&Spectrum::new(5, Basis::Fourier), |_| 0),
            EnergySplit::default()
        );
    }
}
