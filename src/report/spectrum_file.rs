//! `spectrum.json`: the decoded sparse spectrum itself, so later steps (`spex prune`, Python) can
//! evaluate the surrogate `f^(mask)` or derive any index without decoding again.

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::interactions::InteractionEntry;
use crate::sparse::{Basis, Spectrum, Subset};
use crate::sparse::{Error, Result};

/// A spectrum as JSON: `{basis, n_players, terms: [{players, value}]}`, terms in subset order.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SpectrumFile {
    /// `fourier` (`f(x) = sum_S F(S) (-1)^{|S ∩ x|}`, x = kept players) or `moebius`.
    pub basis: Basis,
    /// Number of players n.
    pub n_players: usize,
    /// The non-zero coefficients.
    pub terms: Vec<InteractionEntry>,
}

impl SpectrumFile {
    /// The file layout of `spectrum`.
    pub fn new(spectrum: &Spectrum) -> Self {
        SpectrumFile {
            basis: spectrum.basis(),
            n_players: spectrum.n_players(),
            terms: spectrum
                .iter()
                .map(|(s, v)| InteractionEntry {
                    players: s.indices().to_vec(),
                    value: v,
                })
                .collect(),
        }
    }

    /// Back to a [`Spectrum`]; `source` names the file in errors (players out of range,
    /// repeated players, non-finite values).
    pub fn to_spectrum(&self, source: &Path) -> Result<Spectrum> {
        let mut terms = Vec::with_capacity(self.terms.len());
        for (k, t) in self.terms.iter().enumerate() {
            let s = Subset::from_indices(t.players.iter().copied());
            let bad = if s.len() != t.players.len() {
                Some("repeats a player")
            } else if t.players.iter().any(|&p| p as usize >= self.n_players) {
                Some("names a player >= n_players")
            } else if !t.value.is_finite() {
                Some("has a non-finite value")
            } else {
                None
            };
            if let Some(why) = bad {
                return Err(Error::file(
                    source,
                    format!("term {k} ({:?}) {why}", t.players),
                ));
            }
            terms.push((s, t.value));
        }
        Ok(Spectrum::from_terms(self.n_players, self.basis, terms))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_rejects_bad_terms() {
        let s = Spectrum::from_terms(
            5,
            Basis::Fourier,
            [
                (Subset::empty(), 1.5),
                (Subset::from_indices([1, 3]), -0.25),
                (Subset::singleton(4), 2.0),
            ],
        );
        let file = SpectrumFile::new(&s);
        let text = serde_json::to_string(&file).unwrap();
        let back: SpectrumFile = serde_json::from_str(&text).unwrap();
        assert_eq!(back.to_spectrum(Path::new("s.json")).unwrap(), s);

        for players in [vec![5], vec![2, 2]] {
            let mut bad = file.clone();
            bad.terms[1].players = players;
            let err = bad
                .to_spectrum(Path::new("s.json"))
                .unwrap_err()
                .to_string();
            assert!(err.contains("s.json") && err.contains("term 1"), "{err}");
        }
    }
}
