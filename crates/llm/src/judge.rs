//! A small language model that judges, from a pausing user's words, whether their message is
//! finished: the probability that it ends where the words stop — the end-of-message token or a
//! closing `.`, `?` or `!` — as LiveKit's turn detector does with a small SmolLM.
//!
//! SmolLM2-135M-Instruct (GGUF Q4_1, 98 MB) reads "I would like to order" or "Can you tell me" as
//! going on (under 0.01) and "Do you ship to Canada" as finished, in a sixth of the 1.5B
//! conversational model's time — a pause's verdict is what the user waits on before their turn
//! can end. It gives finished sentences lower probabilities than the 1.5B model does (0.05–0.8
//! against 0.2–0.98), so its verdicts are mapped onto the 1.5B's scale, on which the end-of-turn
//! thresholds are set (a monotone fit; another model's file is used as it is). It reads a short
//! fixed instruction, the assistant's last words (a short answer — "Ten", "Yes please" — is
//! finished after a question) and the user's words; the instruction and the assistant's words
//! are computed once per turn and kept.

use crate::LlmError;
use crate::local::generation_error;
use crate::model::{KvCache, Model};
use crate::vocab::Vocab;
use brazen_protocol::{ItemBody, Role};
use brazen_providers::LlmRequest;
use candle_core::quantized::gguf_file;
use std::path::Path;
use std::sync::Mutex;

/// What the judge is told it is (its prompt's first message).
const INSTRUCTION: &str = "You are a helpful voice assistant. Answer briefly.";
/// The assistant's last words read before the user's, at most (characters, their end kept).
const CONTEXT_CHARS: usize = 300;

/// How a judge's probabilities map onto the conversational model's scale, the one the
/// end-of-turn thresholds are set on: `logit(p) · slope + shift`.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Scale {
    slope: f32,
    shift: f32,
}

impl Scale {
    /// SmolLM2-135M-Instruct's: a least-squares fit of the 1.5B model's log-odds on the small
    /// model's over 36 pauses (`bench/llm.sh --judge`; 20 finished sentences, 16 that go on).
    /// Monotone, so it keeps the judge's order; the line crosses the diagonal near 0.009, so
    /// sentences that go on (0.000–0.009 in that set) stay where they were, and finished
    /// questions at 0.5–0.8 come out at 0.86–0.98, as the 1.5B's do.
    const SMOLLM2_135M: Scale = Scale { slope: 1.39, shift: 1.83 };
    /// Any other model's probabilities are used as they are.
    const AS_IS: Scale = Scale { slope: 1.0, shift: 0.0 };

    /// The scale of the model `ct` describes.
    fn of(ct: &gguf_file::Content) -> Scale {
        let meta = |key: &str| ct.metadata.get(key).and_then(|v| v.to_string().ok()).map(|v| v.to_lowercase());
        let smollm2_135m = meta("general.basename").as_deref() == Some("smollm2")
            && meta("general.size_label").as_deref() == Some("135m");
        if smollm2_135m { Scale::SMOLLM2_135M } else { Scale::AS_IS }
    }

    /// `p` on the conversational model's scale.
    fn apply(self, p: f32) -> f32 {
        if self == Scale::AS_IS {
            return p;
        }
        let p = p.clamp(1e-6, 1.0 - 1e-6);
        let logit = (p / (1.0 - p)).ln() * self.slope + self.shift;
        1.0 / (1.0 + (-logit).exp())
    }
}

/// The judge: a small ChatML model and the prompt it computed last.
pub struct TextJudge {
    model: Model,
    vocab: Vocab,
    /// The tokens that end a message.
    ending: Vec<u32>,
    /// Its probabilities on the conversational model's scale.
    scale: Scale,
    /// The last prompt up to the user's words, computed.
    context: Mutex<Option<(Vec<u32>, KvCache)>>,
}

impl TextJudge {
    /// Loads a GGUF model whose vocabulary has ChatML's `<|im_start|>` and `<|im_end|>`
    /// (qwen2 or llama architecture).
    pub fn load(path: &Path) -> Result<TextJudge, LlmError> {
        let bad = |message: String| LlmError::Model { path: path.display().to_string(), message };
        let mut file = std::fs::File::open(path).map_err(|e| bad(e.to_string()))?;
        let ct = gguf_file::Content::read(&mut file).map_err(|e| bad(format!("not a GGUF file: {e}")))?;
        let vocab = Vocab::from_gguf(&ct).map_err(bad)?;
        if vocab.special("<|im_start|>").is_none() || vocab.special("<|im_end|>").is_none() {
            return Err(bad("the vocabulary has no <|im_start|> and <|im_end|> tokens (ChatML)".into()));
        }
        let model = Model::load(&ct, &mut file).map_err(|e| bad(e.to_string()))?;
        let ending = vocab.ending_tokens();
        Ok(TextJudge { model, vocab, ending, scale: Scale::of(&ct), context: Mutex::new(None) })
    }

    /// The probability that the user's last message in `request` (what they said up to a
    /// pause) ends where its words stop; `None` when `stop` said so before the pass.
    pub fn judge(&self, request: &LlmRequest, stop: &dyn Fn() -> bool) -> Result<Option<f32>, LlmError> {
        let (previous, words) = last_words(request)?;
        self.probability(previous.as_deref(), &words, stop)
    }

    /// The probability that `words`, the user's answer to the assistant's `previous` words,
    /// end their message — for SmolLM2-135M mapped onto the conversational model's scale, for
    /// another model as it gives it ([`TextJudge::raw_probability`] is the unmapped figure);
    /// `None` when `stop` said so before the words' pass (their context may have been computed
    /// and kept); an error when there are no words.
    pub fn probability(
        &self,
        previous: Option<&str>,
        words: &str,
        stop: &dyn Fn() -> bool,
    ) -> Result<Option<f32>, LlmError> {
        Ok(self.raw_probability(previous, words, stop)?.map(|p| self.scale.apply(p)))
    }

    /// [`TextJudge::probability`] as the model gives it, before any mapping (what the mapping
    /// is fitted on: `bench/llm.sh --judge`).
    pub fn raw_probability(
        &self,
        previous: Option<&str>,
        words: &str,
        stop: &dyn Fn() -> bool,
    ) -> Result<Option<f32>, LlmError> {
        let words = words.trim().trim_end_matches(['.', '?', '!', ',', ';', ':', '…']).trim_end();
        if words.is_empty() {
            return Err(LlmError::Prompt("no words to judge".into()));
        }
        let said = self.vocab.encode(words).map_err(LlmError::Prompt)?;
        let mut cache = self.context(previous)?;
        if stop() {
            return Ok(None);
        }
        let logits = self.model.forward(&said, &mut cache).map_err(generation_error)?;
        let logits = logits.to_vec1::<f32>().map_err(generation_error)?;
        Ok(Some(crate::vocab::share(&logits, &self.ending)))
    }

    /// Computes ahead what judging the user's next words in `request` will start from, when
    /// the conversation ends with the assistant's answer (as it does while its last audio goes
    /// out): the first pause of the user's next turn then computes only their words.
    pub fn prepare(&self, request: &LlmRequest) -> Result<(), LlmError> {
        match said(request).next_back() {
            Some((Role::Assistant, answer)) => self.context(Some(&answer)).map(drop),
            _ => Ok(()),
        }
    }

    /// The computed prompt up to the user's words, after the assistant's `previous` words: the
    /// one kept when it is the same, else computed (and kept).
    fn context(&self, previous: Option<&str>) -> Result<KvCache, LlmError> {
        let mut context = format!("<|im_start|>system\n{INSTRUCTION}<|im_end|>\n");
        if let Some(previous) = previous.map(str::trim).filter(|p| !p.is_empty()) {
            let start = previous.char_indices().rev().nth(CONTEXT_CHARS - 1).map_or(0, |(at, _)| at);
            context.push_str(&format!("<|im_start|>assistant\n{}<|im_end|>\n", &previous[start..]));
        }
        context.push_str("<|im_start|>user\n");
        let context = self.vocab.encode(&context).map_err(LlmError::Prompt)?;
        let mut kept = self.context.lock().unwrap_or_else(|e| e.into_inner());
        match kept.as_ref() {
            Some((tokens, cache)) if *tokens == context => Ok(cache.clone()),
            _ => {
                let mut cache = self.model.new_cache();
                self.model.forward(&context, &mut cache).map_err(generation_error)?;
                *kept = Some((context, cache.clone()));
                Ok(cache)
            }
        }
    }
}

/// The conversation's messages that say something (role and text), oldest first.
fn said(request: &LlmRequest) -> impl DoubleEndedIterator<Item = (&Role, String)> {
    request.items.iter().filter_map(|item| match &item.body {
        ItemBody::Message { role, .. } => Some((role, item.text())).filter(|(_, text)| !text.trim().is_empty()),
        _ => None,
    })
}

/// The assistant's last words before the user's last message, and that message's words.
fn last_words(request: &LlmRequest) -> Result<(Option<String>, String), LlmError> {
    let mut messages = said(request);
    let Some((Role::User, words)) = messages.next_back() else {
        return Err(LlmError::Prompt("the conversation does not end with the user's words".into()));
    };
    let previous = messages.rev().find(|(role, _)| **role == Role::Assistant).map(|(_, text)| text.to_string());
    Ok((previous, crate::spoken::normalize(words.trim())))
}

#[cfg(test)]
mod tests {
    use super::Scale;

    #[test]
    fn the_small_judges_scale_keeps_its_order_and_moves_finished_sentences_up() {
        let small = Scale::SMOLLM2_135M;
        let raw = [1e-7, 0.001, 0.009, 0.057, 0.135, 0.2, 0.35, 0.58, 0.71, 0.83, 0.999];
        let mapped: Vec<f32> = raw.iter().map(|&p| small.apply(p)).collect();
        assert!(mapped.windows(2).all(|w| w[0] < w[1]), "monotone: {mapped:?}");
        // What goes on stays under the unsure band; finished questions reach the 1.5B's range.
        assert!(small.apply(0.009) < 0.02 && small.apply(0.135) > 0.3 && small.apply(0.71) > 0.9, "{mapped:?}");
        assert!(mapped.iter().all(|p| (0.0..=1.0).contains(p)));
        assert_eq!(Scale::AS_IS.apply(0.42), 0.42);
    }
}
