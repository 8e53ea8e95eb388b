//! [`Subset`]: a sorted set of player indices, the key of every spectrum.

use serde::{Deserialize, Serialize};

/// A set of player indices, kept sorted ascending without duplicates.
///
/// Interactions are low-degree (|S| <= ~8), so a sorted vector is both the smallest and the
/// fastest representation; ordering is lexicographic on the sorted indices after size.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Subset(Vec<u32>);

impl Subset {
    /// The empty set.
    pub fn empty() -> Self {
        Subset(Vec::new())
    }

    /// Builds a subset from any indices (sorted and de-duplicated here).
    pub fn from_indices(indices: impl IntoIterator<Item = u32>) -> Self {
        let mut v: Vec<u32> = indices.into_iter().collect();
        v.sort_unstable();
        v.dedup();
        Subset(v)
    }

    /// Builds a subset from indices already sorted ascending without duplicates.
    ///
    /// Debug builds check the precondition.
    pub fn from_sorted(indices: Vec<u32>) -> Self {
        debug_assert!(indices.windows(2).all(|w| w[0] < w[1]));
        Subset(indices)
    }

    /// The single-player set `{i}`.
    pub fn singleton(i: u32) -> Self {
        Subset(vec![i])
    }

    /// The sorted player indices.
    pub fn indices(&self) -> &[u32] {
        &self.0
    }

    /// Number of players in the set (the interaction's order).
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether player `i` is in the set.
    pub fn contains(&self, i: u32) -> bool {
        self.0.binary_search(&i).is_ok()
    }

    /// Whether every player of `self` is in `other`.
    pub fn is_subset_of(&self, other: &Subset) -> bool {
        let mut it = other.0.iter();
        self.0.iter().all(|x| it.any(|y| y == x))
    }

    /// The symmetric difference `self xor {i}`: adds `i` if absent, removes it if present.
    pub fn toggle(&self, i: u32) -> Subset {
        let mut v = self.0.clone();
        match v.binary_search(&i) {
            Ok(pos) => {
                v.remove(pos);
            }
            Err(pos) => v.insert(pos, i),
        }
        Subset(v)
    }

    /// The largest index plus one (0 for the empty set): the smallest n that holds the set.
    pub fn min_players(&self) -> usize {
        self.0.last().map_or(0, |&i| i as usize + 1)
    }

    /// Every subset of `self` (2^|S| of them), the empty set first.
    pub fn subsets(&self) -> impl Iterator<Item = Subset> + '_ {
        let k = self.0.len();
        (0u64..(1u64 << k)).map(move |bits| {
            Subset(
                (0..k)
                    .filter(|j| bits >> j & 1 == 1)
                    .map(|j| self.0[j])
                    .collect(),
            )
        })
    }
}

impl PartialOrd for Subset {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Subset {
    /// Smaller sets first, then lexicographic on the sorted indices.
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.0
            .len()
            .cmp(&other.0.len())
            .then_with(|| self.0.cmp(&other.0))
    }
}

impl std::fmt::Display for Subset {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{{")?;
        for (j, i) in self.0.iter().enumerate() {
            if j > 0 {
                write!(f, ", ")?;
            }
            write!(f, "{i}")?;
        }
        write!(f, "}}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn construction_sorts_and_dedups() {
        assert_eq!(Subset::from_indices([3, 1, 3, 2]).indices(), &[1, 2, 3]);
    }

    #[test]
    fn toggle_adds_and_removes() {
        let s = Subset::from_indices([1, 5]);
        assert_eq!(s.toggle(3).indices(), &[1, 3, 5]);
        assert_eq!(s.toggle(5).indices(), &[1]);
    }

    #[test]
    fn subsets_enumerates_all() {
        let s = Subset::from_indices([0, 4, 7]);
        let all: Vec<Subset> = s.subsets().collect();
        assert_eq!(all.len(), 8);
        assert!(all.iter().all(|t| t.is_subset_of(&s)));
        assert!(!Subset::from_indices([0, 5]).is_subset_of(&s));
    }

    #[test]
    fn order_is_by_size_then_lexicographic() {
        let mut v = [
            Subset::from_indices([0, 1]),
            Subset::from_indices([2]),
            Subset::empty(),
            Subset::from_indices([0, 2]),
        ];
        v.sort();
        assert_eq!(v[0], Subset::empty());
        assert_eq!(v[1], Subset::singleton(2));
        assert_eq!(v[2], Subset::from_indices([0, 1]));
    }
}
