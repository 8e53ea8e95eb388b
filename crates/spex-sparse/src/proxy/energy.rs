//! The energy cut: keep the fewest non-constant Fourier terms holding a fraction of the energy.

use crate::{Spectrum, Subset};

/// The support kept from `spectrum` (Fourier): `∅` plus the fewest non-constant terms, largest
/// `|F(S)|` first, whose squared sum reaches `fraction` of the non-constant energy `sum F(S)^2`.
///
/// Ties in `|F|` are broken by subset order, so the cut is deterministic. With zero non-constant
/// energy only `∅` is kept. The result is sorted in subset order.
pub fn energy_support(spectrum: &Spectrum, fraction: f64) -> Vec<Subset> {
    let mut terms: Vec<(&Subset, f64)> = spectrum
        .iter()
        .filter(|(s, v)| !s.is_empty() && *v != 0.0)
        .map(|(s, v)| (s, v * v))
        .collect();
    let total: f64 = terms.iter().map(|(_, e)| e).sum();
    let mut kept = vec![Subset::empty()];
    if total > 0.0 {
        terms.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(b.0)));
        let mut acc = 0.0;
        for (s, e) in terms {
            kept.push(s.clone());
            acc += e;
            if acc >= fraction * total {
                break;
            }
        }
    }
    kept.sort();
    kept
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Basis;

    fn spectrum(terms: &[(&[u32], f64)]) -> Spectrum {
        Spectrum::from_terms(
            10,
            Basis::Fourier,
            terms
                .iter()
                .map(|(s, v)| (Subset::from_indices(s.iter().copied()), *v)),
        )
    }

    #[test]
    fn keeps_the_minimal_prefix_reaching_the_fraction() {
        // Energies 16, 9, 4, 1 (total 30): 95% = 28.5 needs 16 + 9 + 4 = 29.
        let s = spectrum(&[
            (&[], 100.0),
            (&[1], 4.0),
            (&[2], -3.0),
            (&[1, 2], 2.0),
            (&[3], 1.0),
        ]);
        let kept = energy_support(&s, 0.95);
        let want: Vec<Subset> = [&[][..], &[1], &[2], &[1, 2]]
            .iter()
            .map(|s| Subset::from_indices(s.iter().copied()))
            .collect();
        let mut want = want;
        want.sort();
        assert_eq!(kept, want);
        // Reaching the fraction exactly stops there: 16 + 9 = 25 = 25/30 of the energy.
        assert_eq!(energy_support(&s, 25.0 / 30.0).len(), 3);
    }

    #[test]
    fn the_last_coefficient_can_be_needed() {
        let s = spectrum(&[(&[1], 1.0), (&[2], 1.0), (&[3], 1.0)]);
        assert_eq!(energy_support(&s, 0.95).len(), 4, "∅ plus all three");
    }

    #[test]
    fn constant_or_empty_spectrum_keeps_only_the_constant() {
        assert_eq!(
            energy_support(&spectrum(&[(&[], 2.0)]), 0.95),
            vec![Subset::empty()]
        );
        assert_eq!(energy_support(&spectrum(&[]), 0.95), vec![Subset::empty()]);
    }
}
