//! The tokenizer (built from the GGUF's own vocabulary and merges) and the bytes each token
//! stands for, which the grammar-constrained decoder needs.

use candle_core::quantized::gguf_file;
use candle_core::quantized::tokenizer::TokenizerFromGguf;
use std::collections::HashMap;
use tokenizers::Tokenizer;

/// A tokenizer with each token's bytes.
pub struct Vocab {
    tokenizer: Tokenizer,
    /// The bytes of each ordinary token (empty for special ones).
    bytes: Vec<Vec<u8>>,
    /// Special (control) tokens by their text.
    special: HashMap<String, u32>,
}

impl Vocab {
    /// The vocabulary of a GGUF model (`gpt2`-style byte-level BPE).
    pub fn from_gguf(ct: &gguf_file::Content) -> Result<Vocab, String> {
        let mut tokenizer = Tokenizer::from_gguf(ct).map_err(|e| format!("cannot build the tokenizer: {e}"))?;
        // candle knows no `smollm` pre-tokenizer and falls back to GPT-2's, which puts a space
        // before every piece: SmolLM's own splits digits one by one and adds no space.
        if ct.metadata.get("tokenizer.ggml.pre").and_then(|v| v.to_string().ok()).is_some_and(|p| p == "smollm") {
            use tokenizers::pre_tokenizers::{byte_level::ByteLevel, digits::Digits, sequence::Sequence};
            let pre = Sequence::new(vec![Digits::new(true).into(), ByteLevel::new(false, true, true).into()]);
            tokenizer.with_pre_tokenizer(Some(pre));
        }
        let alphabet = brazen_models::whisper_ggml::byte_decoder();
        let special: HashMap<String, u32> = tokenizer
            .get_added_tokens_decoder()
            .iter()
            .filter(|(_, t)| t.special)
            .map(|(id, t)| (t.content.clone(), *id))
            .collect();
        let special_ids: std::collections::HashSet<u32> = special.values().copied().collect();
        let size = tokenizer.get_vocab_size(true);
        let mut bytes = vec![Vec::new(); size];
        for (id, slot) in bytes.iter_mut().enumerate() {
            if special_ids.contains(&(id as u32)) {
                continue;
            }
            if let Some(token) = tokenizer.id_to_token(id as u32) {
                *slot = token
                    .chars()
                    .map(|c| alphabet.get(&c).copied())
                    .collect::<Option<Vec<u8>>>()
                    .unwrap_or_else(|| token.into_bytes());
            }
        }
        Ok(Vocab { tokenizer, bytes, special })
    }

    /// The ids of `text`; special tokens written in it (`<|im_start|>`) become their ids.
    pub fn encode(&self, text: &str) -> Result<Vec<u32>, String> {
        self.tokenizer.encode(text, false).map(|e| e.get_ids().to_vec()).map_err(|e| e.to_string())
    }

    /// The bytes token `id` stands for (empty for special tokens and unknown ids).
    pub fn bytes(&self, id: u32) -> &[u8] {
        self.bytes.get(id as usize).map_or(&[], Vec::as_slice)
    }

    /// How many tokens there are (special ones included).
    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    /// Whether the vocabulary is empty.
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// The id of a special token, by its text (`<|im_end|>`).
    pub fn special(&self, text: &str) -> Option<u32> {
        self.special.get(text).copied()
    }

    /// The tokens that end a message: the end-of-message token (`<|im_end|>`), and those made
    /// of `.`, `?` or `!` (not `..`) followed by nothing but more of them, quotes, closing
    /// brackets or whitespace — not `.com` or `.5`, which go on.
    pub fn ending_tokens(&self) -> Vec<u32> {
        let mut ends: Vec<u32> = self.special("<|im_end|>").into_iter().collect();
        for id in 0..self.len() as u32 {
            let b = self.bytes(id);
            let ends_here = matches!(b.first(), Some(b'.' | b'?' | b'!'))
                && !b.starts_with(b"..")
                && b.iter().all(|c| b".?!\"')] \n\t\r".contains(c));
            if ends_here {
                ends.push(id);
            }
        }
        ends
    }

    /// Whether `id` is a special token.
    pub fn is_special(&self, id: u32) -> bool {
        self.bytes.get(id as usize).is_some_and(Vec::is_empty)
    }
}

/// The share of the next-token probability in `logits` that goes to the tokens `ids`.
pub fn share(logits: &[f32], ids: &[u32]) -> f32 {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let total: f64 = logits.iter().map(|&l| ((l - max) as f64).exp()).sum();
    let part: f64 = ids.iter().filter_map(|&id| logits.get(id as usize)).map(|&l| ((l - max) as f64).exp()).sum();
    (part / total) as f32
}
