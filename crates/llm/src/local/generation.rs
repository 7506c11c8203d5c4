//! A turn generated a step at a time, so that one worker can decode several conversations'
//! turns together: [`Generation::advance`] chooses tokens until the model must run
//! ([`Step::Pass`]); the caller runs [`Generation::pending`] through the model, alone or in a
//! batch with other turns' ([`crate::model::Model::forward_batch`]), and hands the logits back
//! with [`Generation::fed`]; the turn ends with [`Step::Finished`].
//!
//! A tool call is checked before it is handed out ([`crate::arguments`]): when it names an id
//! that appears nowhere in the conversation (the model made it up), the turn is decoded again
//! without that tool.

use super::{CallStream, Finish, LocalModel, Output, Rng, ToolSpec, Turn, generation_error, grammars};
use crate::LlmError;
use crate::grammar::{Check, ToolGrammar, check};
use crate::model::KvCache;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// What a turn needs next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// A forward pass of [`Generation::pending`].
    Pass,
    /// Nothing yet: its prompt waits for another turn's to be computed, whose prefix (the
    /// instructions and tools, often) it may then reuse.
    Waiting,
    /// Nothing: it is over (cancelled, complete, or at its token cap).
    Finished(Finish),
}

/// A turn being generated (see the module doc).
pub struct Generation {
    turn: Turn,
    /// What the user and the tools said: a call's ids must come from it.
    heard: String,
    /// The user's last message.
    said: String,
    /// The tools it may still call.
    allowed: Vec<ToolSpec>,
    total: Finish,
    decoding: Option<Decoding>,
}

/// One decoding of the turn with a set of tools.
struct Decoding {
    allowed: Vec<ToolGrammar>,
    tokens: Vec<u32>,
    /// Where the prompt ends in `tokens`.
    start: usize,
    /// The call's bytes so far (the reply's, when plain text).
    call: Vec<u8>,
    finish: Finish,
    cache: KvCache,
    /// The logits after the tokens computed.
    logits: Arc<Vec<f32>>,
    /// How many of `tokens` the cache holds, counting the pending step's (it will once the
    /// step's pass is fed).
    computed: usize,
    /// What the cache held when the decoding began: a decoding that added nothing keeps
    /// nothing.
    began_with: usize,
    /// Its prompt is still being computed.
    prompting: bool,
    stream: CallStream,
    rng: Rng,
    max: usize,
    /// A complete tool call (name, arguments as written).
    made: Option<(String, String)>,
    /// Tokens chosen and waiting for their pass.
    step: Vec<u32>,
}

impl Generation {
    /// Starts `turn`. Its prompt is computed by the passes that follow (those not found computed
    /// ahead or cached), so a turn's prompt can share its passes with other turns' tokens.
    pub fn start(model: &LocalModel, turn: Turn) -> Result<Generation, LlmError> {
        let heard: String = turn
            .messages
            .iter()
            .filter(|m| matches!(m.role, crate::chat::Role::User | crate::chat::Role::Tool))
            .map(|m| m.content.as_str())
            .collect::<Vec<_>>()
            .join("\n");
        let said = turn
            .messages
            .iter()
            .rev()
            .find(|m| m.role == crate::chat::Role::User)
            .map_or(String::new(), |m| m.content.clone());
        let allowed: Vec<ToolSpec> = turn.tools.iter().filter(|t| turn.allowed.contains(&t.name)).cloned().collect();
        let mut generation = Generation { turn, heard, said, allowed, total: Finish::default(), decoding: None };
        generation.begin(model)?;
        Ok(generation)
    }

    /// Begins a decoding with the tools still allowed (none for a plain-text reply).
    fn begin(&mut self, model: &LocalModel) -> Result<(), LlmError> {
        if self.allowed.is_empty() && !self.turn.plain() {
            return Err(LlmError::Prompt("no tool (not even respond) is allowed for this turn".into()));
        }
        let allowed = grammars(self.allowed.iter());
        let (tokens, start, call) = model.opening(&self.turn, &allowed)?;
        let mut finish = Finish { prompt_tokens: start, ..Finish::default() };
        let (cache, logits, computed) = match model.memo(&tokens) {
            Some((cache, logits)) => {
                finish.cached_tokens = start;
                (cache, logits, tokens.len())
            }
            None => {
                let (cache, reused) = model.cache_for(&tokens)?;
                finish.cached_tokens = reused.min(start);
                (cache, Arc::new(Vec::new()), reused)
            }
        };
        let prompting = computed < tokens.len();
        let began_with = cache.len();
        self.decoding = Some(Decoding {
            allowed,
            tokens,
            start,
            call,
            finish,
            cache,
            prompting,
            logits,
            began_with,
            computed,
            stream: CallStream::default(),
            rng: Rng::seeded(),
            max: self.turn.max_tokens.clamp(1, super::MAX_TURN_TOKENS),
            made: None,
            step: Vec::new(),
        });
        Ok(())
    }

    /// Counts a decoding's figures into the turn's.
    fn add(&mut self, finish: &Finish) {
        self.total.prompt_tokens = finish.prompt_tokens;
        if self.total.output_tokens == 0 {
            self.total.cached_tokens = finish.cached_tokens;
        }
        self.total.output_tokens += finish.output_tokens;
        self.total.hit_token_cap = finish.hit_token_cap;
        self.total.cancelled = finish.cancelled;
        self.total.passes += finish.passes;
    }

    /// Chooses tokens (their text and calls go to `sink`) until a forward pass is needed or the
    /// turn is over. While its prompt is being computed, a pass takes up to `chunk` of its
    /// tokens, if it `may_prompt` (else it waits).
    pub fn advance(
        &mut self,
        model: &LocalModel,
        cancel: &AtomicBool,
        chunk: usize,
        may_prompt: bool,
        sink: &mut dyn FnMut(Output),
    ) -> Result<Step, LlmError> {
        loop {
            let Some(decoding) = self.decoding.as_mut() else { return Ok(Step::Finished(self.total)) };
            match decoding.advance(model, &self.turn, cancel, chunk, may_prompt, sink)? {
                Phase::Pass => return Ok(Step::Pass),
                Phase::Waiting => return Ok(Step::Waiting),
                Phase::Over => {}
            }
            let Some(decoding) = self.decoding.take() else { return Ok(Step::Finished(self.total)) };
            let (finish, made) = decoding.end(model);
            self.add(&finish);
            let Some((name, arguments)) = made else { return Ok(Step::Finished(self.total)) };
            let Some(tool) = self.allowed.iter().find(|t| t.name == name) else {
                return Ok(Step::Finished(self.total));
            };
            if !crate::arguments::grounded(&arguments, &self.heard) && self.allowed.len() > 1 {
                self.allowed.retain(|t| t.name != name);
                self.begin(model)?;
                continue;
            }
            let arguments = crate::arguments::normalize(&tool.parameters, &arguments, &self.said);
            sink(Output::CallStart(name.clone()));
            sink(Output::CallDone { name, arguments });
            return Ok(Step::Finished(self.total));
        }
    }

    /// The tokens waiting for a pass and the cache they go into (after [`Step::Pass`]).
    pub fn pending(&mut self) -> Option<(&[u32], &mut KvCache)> {
        let d = self.decoding.as_mut()?;
        (!d.step.is_empty()).then_some((d.step.as_slice(), &mut d.cache))
    }

    /// Whether its prompt is still being computed.
    pub fn prompting(&self) -> bool {
        self.decoding.as_ref().is_some_and(|d| d.prompting)
    }

    /// Takes the logits of the pass of [`Generation::pending`]. A prompt computed in full is
    /// kept for other turns to reuse its prefix.
    pub fn fed(&mut self, model: &LocalModel, logits: &candle_core::Tensor) -> Result<(), LlmError> {
        let Some(d) = self.decoding.as_mut() else { return Ok(()) };
        d.logits = Arc::new(logits.to_vec1::<f32>().map_err(generation_error)?);
        d.step.clear();
        if d.prompting && d.computed == d.tokens.len() {
            d.prompting = false;
            model.keep(d.tokens.clone(), d.cache.clone(), None);
        }
        Ok(())
    }
}

/// What a decoding needs next.
enum Phase {
    /// A forward pass of its step.
    Pass,
    /// Nothing yet (see [`Step::Waiting`]).
    Waiting,
    /// Nothing: it is over.
    Over,
}

impl Decoding {
    /// Chooses tokens until a pass is needed or this decoding is over; the prompt's tokens not
    /// yet computed go first, `chunk` at a time, if it `may_prompt`.
    fn advance(
        &mut self,
        model: &LocalModel,
        turn: &Turn,
        cancel: &AtomicBool,
        chunk: usize,
        may_prompt: bool,
        sink: &mut dyn FnMut(Output),
    ) -> Result<Phase, LlmError> {
        if !self.step.is_empty() {
            return Ok(Phase::Pass);
        }
        loop {
            if cancel.load(Ordering::Relaxed) {
                self.finish.cancelled = true;
                return Ok(Phase::Over);
            }
            if self.computed < self.tokens.len() {
                if !may_prompt {
                    return Ok(Phase::Waiting);
                }
                // Another turn may have computed more of this prompt meanwhile.
                let (cache, reused) = model.cache_for(&self.tokens)?;
                if reused > self.computed {
                    (self.cache, self.computed) = (cache, reused);
                    self.finish.cached_tokens = reused.min(self.start);
                }
                let end = (self.computed + chunk.max(1)).min(self.tokens.len());
                self.step = self.tokens[self.computed..end].to_vec();
                self.computed = end;
                self.finish.passes += 1;
                return Ok(Phase::Pass);
            }
            if self.tokens.len() - self.start >= self.max {
                self.finish.hit_token_cap = true;
                return Ok(Phase::Over);
            }
            let step = if turn.plain() {
                let Some(next) = model.choose_text(&self.logits, &self.call, turn.temperature, &mut self.rng) else {
                    return Err(LlmError::Generation("no token can follow the reply".into()));
                };
                if model.ends_reply(next) {
                    return Ok(Phase::Over);
                }
                self.call.extend_from_slice(model.vocab.bytes(next));
                self.tokens.push(next);
                self.stream.advance_text(&self.call, sink);
                vec![next]
            } else {
                let temperature = if self.stream.speaking() { turn.temperature } else { 0.0 };
                let Some(next) =
                    model.choose(&self.logits, &self.allowed, &self.call, &turn.prior, temperature, &mut self.rng)
                else {
                    return Err(LlmError::Generation("no token continues the call (grammar dead end)".into()));
                };
                self.call.extend_from_slice(model.vocab.bytes(next));
                self.tokens.push(next);
                let mut step = vec![next];
                // What the grammar allows only one way is not left to the model: its tokens are
                // computed in the same pass.
                if let Some((more, bytes)) = model.forced(&self.allowed, &self.call, &self.tokens[self.start..]) {
                    step.extend_from_slice(&more);
                    self.tokens.extend(more);
                    self.call.extend(bytes);
                }
                let complete = check(&self.allowed, &self.call) == Check::Complete;
                self.made = self.stream.advance(&self.call, complete, sink);
                if complete {
                    return Ok(Phase::Over);
                }
                step
            };
            self.computed = self.tokens.len();
            match model.memo(&self.tokens) {
                Some((ready, logits)) => (self.cache, self.logits) = (ready, logits),
                None => {
                    self.finish.passes += 1;
                    self.step = step;
                    return Ok(Phase::Pass);
                }
            }
        }
    }

    /// Keeps what was computed for later turns; the decoding's figures and its call.
    fn end(mut self, model: &LocalModel) -> (Finish, Option<(String, String)>) {
        self.finish.output_tokens = self.tokens.len() - self.start;
        let computed = self.cache.len();
        if computed > self.began_with {
            self.tokens.truncate(computed);
            model.keep(self.tokens, self.cache, None);
        }
        (self.finish, self.made)
    }
}
