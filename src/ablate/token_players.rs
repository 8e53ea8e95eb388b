//! Players over a prompt's tokens: one per token, or one per whitespace-separated word (the
//! tokens from one word's first character up to the next word).

use tokenizers::Tokenizer;

use crate::{Error, Result};

/// How a prompt is split into players.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Granularity {
    /// Every token is a player.
    Tokens,
    /// Every word (a token starting after whitespace opens a new word) is a player.
    Words,
}

impl Granularity {
    /// `words` or `tokens`, as reports name the players.
    pub fn name(self) -> &'static str {
        match self {
            Granularity::Words => "words",
            Granularity::Tokens => "tokens",
        }
    }
}

/// One player: the text it covers and its token positions in the prompt.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct TokenPlayer {
    /// The prompt text the player's tokens cover.
    pub text: String,
    /// Token positions, ascending.
    pub positions: Vec<usize>,
}

/// Encodes `prompt` (no special tokens added) and splits it into players: `(ids [T], players)`.
pub fn token_players(
    tokenizer: &Tokenizer,
    prompt: &str,
    granularity: Granularity,
) -> Result<(Vec<u32>, Vec<TokenPlayer>)> {
    let enc = tokenizer
        .encode(prompt, false)
        .map_err(|e| Error::invalid("prompt", format!("cannot encode the prompt: {e}")))?;
    let ids = enc.get_ids().to_vec();
    let mut players: Vec<TokenPlayer> = Vec::new();
    for (p, (&id, &(start, end))) in ids.iter().zip(enc.get_offsets()).enumerate() {
        let text = match prompt.get(start..end) {
            Some(t) if !t.is_empty() => t.to_string(),
            _ => tokenizer.decode(&[id], false).unwrap_or_default(),
        };
        let after_space = start > 0
            && prompt[..start.min(prompt.len())]
                .chars()
                .next_back()
                .is_some_and(char::is_whitespace);
        let opens_word = text.starts_with(char::is_whitespace) || after_space;
        match players.last_mut() {
            Some(last) if granularity == Granularity::Words && !opens_word => {
                last.text.push_str(&text);
                last.positions.push(p);
            }
            _ => players.push(TokenPlayer {
                text,
                positions: vec![p],
            }),
        }
    }
    Ok((ids, players))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    /// A word-piece tokenizer: "playing" -> "play" "##ing", punctuation split off.
    fn tokenizer() -> Tokenizer {
        let json = r###"{"version": "1.0", "truncation": null, "padding": null, "added_tokens": [],
            "normalizer": null, "pre_tokenizer": {"type": "Whitespace"}, "post_processor": null,
            "decoder": null, "model": {"type": "WordPiece", "unk_token": "[UNK]",
            "continuing_subword_prefix": "##", "max_input_chars_per_word": 100,
            "vocab": {"[UNK]": 0, "the": 1, "cat": 2, "play": 3, "##ing": 4, ",": 5, "sat": 6}}}"###;
        Tokenizer::from_str(json).unwrap()
    }

    #[test]
    fn tokens_and_words_cover_every_position_once() {
        let t = tokenizer();
        let (ids, tokens) = token_players(&t, "the cat playing, sat", Granularity::Tokens).unwrap();
        assert_eq!(ids, vec![1, 2, 3, 4, 5, 6]);
        let texts: Vec<&str> = tokens.iter().map(|p| p.text.as_str()).collect();
        assert_eq!(texts, vec!["the", "cat", "play", "ing", ",", "sat"]);

        let (_, words) = token_players(&t, "the cat playing, sat", Granularity::Words).unwrap();
        let got: Vec<(&str, Vec<usize>)> = words
            .iter()
            .map(|p| (p.text.as_str(), p.positions.clone()))
            .collect();
        assert_eq!(
            got,
            vec![
                ("the", vec![0]),
                ("cat", vec![1]),
                ("playing,", vec![2, 3, 4]),
                ("sat", vec![5])
            ]
        );
    }
}
