//! Attention heads as players: every head of a model, or every head of a contiguous range of its
//! layers (`--layers 20-29`). Player `p` is head `p % H` of layer `first + p / H`; heads outside
//! the range are always kept, so the layers below the range run once per prompt (layer reuse).

use std::fmt;
use std::ops::Range;

use crate::error::{Error, Result};
use crate::model::HeadScales;

/// Which heads are the players.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeadPlayers {
    layers: Range<usize>,
    heads: usize,
    model_layers: usize,
}

impl HeadPlayers {
    /// Every head of a model of `model_layers` layers with `heads` query heads each.
    pub fn all(model_layers: usize, heads: usize) -> HeadPlayers {
        HeadPlayers {
            layers: 0..model_layers,
            heads,
            model_layers,
        }
    }

    /// The heads of `layers` only; an empty range or one past the model's last layer is an error
    /// naming `arg`.
    pub fn in_layers(
        layers: Range<usize>,
        model_layers: usize,
        heads: usize,
        arg: &str,
    ) -> Result<HeadPlayers> {
        if layers.is_empty() || layers.end > model_layers {
            return Err(Error::invalid(
                arg,
                format!(
                    "layers {}-{} are not within the model's layers 0-{}",
                    layers.start,
                    layers.end.saturating_sub(1),
                    model_layers.saturating_sub(1)
                ),
            ));
        }
        Ok(HeadPlayers {
            layers,
            heads,
            model_layers,
        })
    }

    /// Number of players: layers in the range x heads.
    pub fn n(&self) -> usize {
        self.layers.len() * self.heads
    }

    /// Query heads per layer H.
    pub fn heads(&self) -> usize {
        self.heads
    }

    /// The layers whose heads are players.
    pub fn layers(&self) -> Range<usize> {
        self.layers.clone()
    }

    /// Whether every head of the model is a player.
    pub fn is_all(&self) -> bool {
        self.layers == (0..self.model_layers)
    }

    /// `[layer, head]` of player `p`.
    pub fn head(&self, p: usize) -> [usize; 2] {
        [self.layers.start + p / self.heads, p % self.heads]
    }

    /// The model's head scales `[L, H]` for a keep-mask over the players: 1 or 0 in the range,
    /// 1 (kept) outside it.
    pub fn scales(&self, keep: impl Fn(usize) -> bool) -> HeadScales {
        HeadScales::from_keep(self.model_layers, self.heads, |l, h| {
            !self.layers.contains(&l) || keep((l - self.layers.start) * self.heads + h)
        })
    }
}

impl fmt::Display for HeadPlayers {
    /// `first-last` (inclusive), as `--layers` takes it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.layers.start, self.layers.end - 1)
    }
}

/// Parses `--layers`: `A-B` (inclusive) or a single layer `A` -> `A..B+1`.
pub fn parse_layer_range(s: &str) -> std::result::Result<Range<usize>, String> {
    let number = |x: &str| {
        x.trim()
            .parse::<usize>()
            .map_err(|_| format!("'{s}' is not a layer range like 20-29 or 25"))
    };
    let (first, last) = match s.split_once('-') {
        Some((a, b)) => (number(a)?, number(b)?),
        None => (number(s)?, number(s)?),
    };
    if last < first {
        return Err(format!("'{s}': the last layer comes before the first"));
    }
    Ok(first..last + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn players_map_to_heads_of_their_layers() {
        let p = HeadPlayers::in_layers(2..4, 5, 3, "layers").unwrap();
        assert_eq!(p.n(), 6);
        assert_eq!(p.head(0), [2, 0]);
        assert_eq!(p.head(5), [3, 2]);
        assert!(!p.is_all());
        assert_eq!(p.to_string(), "2-3");
        let row = p.scales(|i| i != 4);
        assert_eq!(row.len(), 15);
        // Player 4 is head 1 of layer 3: entry 3 * 3 + 1.
        let removed: Vec<usize> = (0..15).filter(|&i| row[i] == 0.0).collect();
        assert_eq!(removed, vec![10]);
        assert!(HeadPlayers::all(5, 3).is_all());
        assert_eq!(&HeadPlayers::all(5, 3).scales(|_| false)[..], &[0.0; 15]);
    }

    #[test]
    fn ranges_outside_the_model_are_errors_naming_the_argument() {
        let err = HeadPlayers::in_layers(4..6, 5, 3, "layers").unwrap_err();
        assert!(err.to_string().contains("layers"), "{err}");
        assert!(err.to_string().contains("0-4"), "{err}");
    }

    #[test]
    fn layer_ranges_parse_inclusive() {
        assert_eq!(parse_layer_range("20-29"), Ok(20..30));
        assert_eq!(parse_layer_range("7"), Ok(7..8));
        assert!(parse_layer_range("9-3").is_err());
        assert!(parse_layer_range("a-b").is_err());
    }
}
