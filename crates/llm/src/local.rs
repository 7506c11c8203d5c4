//! The local model at work: prompt → KV-cache reuse → grammar-constrained decoding → a spoken
//! reply or a tool call, streamed.
//!
//! With tools, every assistant turn is a call (Qwen's `<tool_call>` format): to a real tool, or
//! to the `respond` pseudo-tool whose `text` is what the assistant says. The turn starts with a
//! forced `<tool_call>` token and each next token is the best-scoring one that keeps the call
//! valid under the tools' schemas ([`crate::grammar`]), so small models always produce a
//! well-formed call with type-correct arguments, and choose between answering and calling a
//! tool by the same mechanism. The text of `respond` streams out as it is generated. Without
//! tools the reply is plain text ([`Turn::plain`]), streamed the same way.
//!
//! KV cache: the last few prompts' caches are kept with their tokens; a new prompt starts from
//! the one it shares the longest prefix with (another session with the same system prompt and
//! tools, or this conversation's previous turn) and only its new tokens are computed.

mod generation;

pub use generation::{Generation, Step};

use crate::LlmError;
use crate::chat::{ChatTemplate, Message, tool_json};
use crate::grammar::{Check, Schema, ToolGrammar, check, quoted};
use crate::model::{KvCache, Model};
use crate::vocab::Vocab;
use candle_core::quantized::gguf_file;
use serde_json::Value;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

/// The pseudo-tool whose `text` argument is the spoken reply.
pub const RESPOND: &str = "respond";
/// How many prompts' KV caches are kept for reuse.
const CACHED_PROMPTS: usize = 5;
/// Prompt tokens computed per forward pass when someone is waiting for them: a turn's prompt,
/// a pause's words being judged. Larger passes compute more tokens per second (after a
/// 600-token context, on 2 cores: 16 tokens in 0.20 s, 78 tokens/s; 32: 100; 64: 110–116; 128:
/// 115–121; `bench/llm.sh --passes`), but a pass cannot be stopped or paused halfway.
pub(crate) const PREFILL_CHUNK: usize = 64;

/// The longest a turn's decoding pauses at once for speech being recognised: a transcript takes
/// 0.1–0.5 s alone on the cores; a longer queue of them does not stall the reply for good.
pub(crate) const GIVE_WAY_MAX: std::time::Duration = std::time::Duration::from_millis(800);

/// How often a paused decoding, or a prompt waiting to be computed ahead, looks whether it may
/// go on.
pub(crate) const GIVE_WAY_POLL: std::time::Duration = std::time::Duration::from_millis(5);
/// Prompt tokens per pass when computing ahead. A pass computed ahead stops between two blocks
/// when a turn (or speech recognition) arrives ([`crate::model::Model::forward_unless`]), losing
/// what that pass computed: small passes lose little.
const PREPARE_CHUNK: usize = 16;
/// Candidate tokens checked against the grammar before falling back to the whole vocabulary.
const TOP_K: usize = 48;
/// A sampled token must be at least this likely relative to the best one (min-p): a small
/// model's long tail at a client's usual temperature (0.8) is where it rambles and invents.
const MIN_P: f64 = 0.1;
/// The most tokens one turn may generate.
pub const MAX_TURN_TOKENS: usize = 400;
/// The longest prompt kept (tokens): longer conversations lose their oldest messages. Well
/// inside the model's context, so a turn's prefill stays quick on a CPU.
const PROMPT_BUDGET: usize = 4096;

/// A tool the model may call.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolSpec {
    /// Function name.
    pub name: String,
    /// What it does.
    pub description: String,
    /// JSON Schema of its arguments.
    pub parameters: Value,
}

impl ToolSpec {
    /// The `respond` pseudo-tool.
    pub fn respond() -> ToolSpec {
        let mut text = serde_json::Map::new();
        text.insert("type".into(), "string".into());
        text.insert("description".into(), "What to say, one or two short sentences".into());
        let mut props = serde_json::Map::new();
        props.insert("text".into(), Value::Object(text));
        let mut parameters = serde_json::Map::new();
        parameters.insert("type".into(), "object".into());
        parameters.insert("properties".into(), Value::Object(props));
        parameters.insert("required".into(), Value::Array(vec!["text".into()]));
        ToolSpec {
            name: RESPOND.into(),
            description: "Say something to the customer without using a store tool: greetings, thanks, small talk, \
                          general questions, or telling them what a tool returned (name the products, prices, \
                          order ids and dates it gave)."
                .into(),
            parameters: Value::Object(parameters),
        }
    }
}

/// One assistant turn to generate.
///
/// A turn that lists no tools is answered in plain text, as in a plain chat ([`Turn::plain`]);
/// one that lists tools is answered by a call: to `respond` (whose `text` is spoken) or to a
/// tool.
#[derive(Debug, Clone, PartialEq)]
pub struct Turn {
    /// The conversation, system prompt first.
    pub messages: Vec<Message>,
    /// The tools listed in the prompt (`respond` included when it may be used); none for a
    /// plain-text reply.
    pub tools: Vec<ToolSpec>,
    /// The names the reply may call (a subset of `tools`).
    pub allowed: Vec<String>,
    /// Added to the model's score for a call's name while it is being chosen (logits; the
    /// agent's routing hint, [`brazen_providers::ToolPrior`]); names left out get nothing.
    pub prior: Vec<(String, f32)>,
    /// Sampling temperature for the spoken text (0 = greedy); tool names and arguments are
    /// always chosen greedily.
    pub temperature: f64,
    /// Most tokens to generate.
    pub max_tokens: usize,
}

impl Turn {
    /// Whether the reply is plain text: no tool is listed, so the model answers as it was
    /// trained to chat, without the call to `respond` around its words (~15 tokens fewer per
    /// turn, and no tool list in the prompt).
    pub fn plain(&self) -> bool {
        self.tools.is_empty()
    }
}

/// What a turn streams out.
#[derive(Debug, Clone, PartialEq)]
pub enum Output {
    /// More of the spoken reply.
    Text(String),
    /// The model is calling this tool (its arguments follow when complete).
    CallStart(String),
    /// The call's arguments, complete (JSON), checked ([`crate::arguments`]).
    CallDone {
        /// The function.
        name: String,
        /// Its arguments.
        arguments: String,
    },
}

/// How a turn ended.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Finish {
    /// Tokens in the prompt.
    pub prompt_tokens: usize,
    /// Of those, taken from a cache.
    pub cached_tokens: usize,
    /// Tokens generated.
    pub output_tokens: usize,
    /// It stopped at `max_tokens`.
    pub hit_token_cap: bool,
    /// It was cancelled.
    pub cancelled: bool,
    /// Forward passes run for it: none before the first choice when its prompt and first step
    /// were computed ahead ([`LocalModel::prefill`]).
    pub passes: usize,
}

/// A loaded local model.
pub struct LocalModel {
    model: Model,
    vocab: Vocab,
    template: ChatTemplate,
    tool_call: u32,
    caches: Mutex<Vec<Cached>>,
    /// The tokens that end a message ([`LocalModel::end_of_turn`]), found on first use.
    ending: std::sync::OnceLock<Vec<u32>>,
}

/// A computed prompt kept for reuse.
struct Cached {
    tokens: Vec<u32>,
    cache: KvCache,
    /// The logits after the last token, when it was computed ahead ([`LocalModel::prefill`]):
    /// a turn that reaches exactly these tokens needs no forward pass.
    logits: Option<Arc<Vec<f32>>>,
}

/// The grammars of the tools a reply may call.
fn grammars<'a>(tools: impl Iterator<Item = &'a ToolSpec>) -> Vec<ToolGrammar> {
    tools.map(|t| ToolGrammar { name: t.name.clone(), arguments: Schema::from_json(&t.parameters) }).collect()
}

/// A failed forward pass, as the model's error.
pub(crate) fn generation_error(e: candle_core::Error) -> LlmError {
    LlmError::Generation(e.to_string())
}

impl LocalModel {
    /// Loads a GGUF model (qwen2 architecture, with a chat template in its metadata).
    pub fn load(path: &Path) -> Result<LocalModel, LlmError> {
        let bad = |message: String| LlmError::Model { path: path.display().to_string(), message };
        let mut file = std::fs::File::open(path).map_err(|e| bad(e.to_string()))?;
        let ct = gguf_file::Content::read(&mut file).map_err(|e| bad(format!("not a GGUF file: {e}")))?;
        let template = match ct.metadata.get("tokenizer.chat_template") {
            Some(v) => v.to_string().map_err(|e| bad(e.to_string()))?.clone(),
            None => return Err(bad("no tokenizer.chat_template in the metadata".into())),
        };
        let template = ChatTemplate::new(&template).map_err(bad)?;
        let vocab = Vocab::from_gguf(&ct).map_err(bad)?;
        let tool_call =
            vocab.special("<tool_call>").ok_or_else(|| bad("the vocabulary has no <tool_call> token".into()))?;
        let model = Model::load(&ct, &mut file).map_err(|e| bad(e.to_string()))?;
        Ok(LocalModel { model, vocab, template, tool_call, caches: Mutex::new(Vec::new()), ending: Default::default() })
    }

    /// Runs the default system prompt through the model once: the first pass over the weights
    /// is slower (they are repacked for the CPU's kernels), and sessions that keep the default
    /// prompt then start from its cache.
    pub fn warm_up(&self) -> Result<(), LlmError> {
        let turn = Turn {
            messages: vec![Message::text(crate::chat::Role::System, crate::request::DEFAULT_INSTRUCTIONS)],
            tools: Vec::new(),
            allowed: Vec::new(),
            prior: Vec::new(),
            temperature: 0.0,
            max_tokens: 1,
        };
        self.prefill(&turn, &|| false).map(|_| ())
    }

    /// The transformer underneath (for benchmarks of its passes).
    pub fn model(&self) -> &Model {
        &self.model
    }

    /// The longest prompt (tokens) a turn may have; older messages are dropped beyond it.
    pub fn context_budget(&self) -> usize {
        PROMPT_BUDGET.min(self.model.config().context.saturating_sub(MAX_TURN_TOKENS))
    }

    /// A turn's prompt length in tokens (`usize::MAX` when it cannot be rendered).
    pub fn prompt_len(&self, turn: &Turn) -> usize {
        let call = usize::from(!turn.plain());
        self.prompt(turn).ok().and_then(|p| self.vocab.encode(&p).ok()).map_or(usize::MAX, |t| t.len() + call)
    }

    /// Tokens of `text` on its own.
    pub fn text_len(&self, text: &str) -> usize {
        self.vocab.encode(text).map_or(text.len(), |t| t.len())
    }

    /// The turn for `request` ([`crate::request::turn_for`] within this model's context
    /// budget), giving up once `stop` says so.
    pub fn turn(
        &self,
        request: &brazen_providers::LlmRequest,
        stop: &dyn Fn() -> bool,
    ) -> Result<Turn, crate::request::RequestError> {
        crate::request::turn_for(request, self.context_budget(), self, stop)
    }

    /// The prompt text of a turn (what the model reads before its forced `<tool_call>`, or
    /// before its words for a plain-text reply).
    pub fn prompt(&self, turn: &Turn) -> Result<String, LlmError> {
        let tools: Vec<Value> = turn.tools.iter().map(|t| tool_json(&t.name, &t.description, &t.parameters)).collect();
        self.template.render(&turn.messages, &tools).map_err(LlmError::Prompt)
    }

    /// Computes the prompt of `turn` into the cache without generating: done ahead (at start-up
    /// for the system prompt, when a session sets its instructions and tools, or while the user
    /// is still speaking) so the turn itself only computes what is new. Stops once `stop` says
    /// so, between two blocks of a pass, keeping the passes it finished. Returns the tokens
    /// computed.
    ///
    /// Once the whole prompt is in, the reply's first step is taken speculatively too: the tool
    /// the model chooses first (greedily, as the turn will) and the call's fixed text after it
    /// (for `respond`, `", "arguments": {"text": "`) are computed, with the logits at both
    /// points kept, so a turn whose prompt matches starts speaking without a forward pass.
    pub fn prefill(&self, turn: &Turn, stop: &dyn Fn() -> bool) -> Result<usize, LlmError> {
        // An answer said (as text, or as a call of `respond` when the session has tools): the user
        // speaks next.
        let answered = turn
            .messages
            .last()
            .is_some_and(|m| m.role == crate::chat::Role::Assistant && m.tool_calls.iter().all(|c| c.name == RESPOND));
        if answered {
            return self.prefill_user_opening(turn, stop);
        }
        let allowed = grammars(turn.tools.iter().filter(|t| turn.allowed.contains(&t.name)));
        let (mut tokens, start, mut call) = self.opening(turn, &allowed)?;
        let mut computed = 0;
        let (mut cache, logits) = match self.memo(&tokens) {
            Some(ready) => ready,
            None => {
                let (mut cache, reused) = self.cache_for(&tokens)?;
                let mut at = reused;
                let mut logits = None;
                while at < tokens.len() {
                    let next = (at + PREPARE_CHUNK).min(tokens.len());
                    let Some(l) =
                        self.model.forward_unless(&tokens[at..next], &mut cache, stop).map_err(generation_error)?
                    else {
                        break;
                    };
                    logits = Some(l);
                    at = next;
                }
                computed = at - reused;
                let logits = match logits {
                    Some(l) if at == tokens.len() => Arc::new(l.to_vec1::<f32>().map_err(generation_error)?),
                    _ => {
                        if at > reused {
                            self.keep(tokens[..at].to_vec(), cache, None);
                        }
                        return Ok(computed);
                    }
                };
                self.keep(tokens.clone(), cache.clone(), Some(logits.clone()));
                (cache, logits)
            }
        };
        // A plain-text reply's first token is sampled at the turn's temperature: nothing more to
        // compute ahead.
        if stop() || turn.plain() {
            return Ok(computed);
        }
        let Some(next) = self.choose(&logits, &allowed, &call, &turn.prior, 0.0, &mut Rng::seeded()) else {
            return Ok(computed);
        };
        tokens.push(next);
        call.extend_from_slice(self.vocab.bytes(next));
        let mut step = vec![next];
        if let Some((more, bytes)) = self.forced(&allowed, &call, &tokens[start..]) {
            step.extend_from_slice(&more);
            tokens.extend(more);
            call.extend(bytes);
        }
        if self.memo(&tokens).is_some() || check(&allowed, &call) == Check::Complete {
            return Ok(computed);
        }
        let Some(logits) = self.model.forward_unless(&step, &mut cache, stop).map_err(generation_error)? else {
            return Ok(computed);
        };
        let logits = logits.to_vec1::<f32>().map_err(generation_error)?;
        self.keep(tokens, cache, Some(Arc::new(logits)));
        Ok(computed + step.len())
    }

    /// The probability that the user's last message is finished where its words stop, as the
    /// model reads the conversation: the prompt is computed up to the end of the user's words
    /// (their closing punctuation taken off, since a recogniser writes a full stop after any
    /// words), and the model's next-token probabilities are summed over the ways a message
    /// ends there — its end-of-message token, or a token that opens with `.`, `?` or `!` (not
    /// `..`). A message that goes on ("I would like to order", "Can you tell me", "My number
    /// is") puts its mass on the next word instead. `None` when `stop` said so first; an error
    /// when there are no words to judge.
    ///
    /// The pass computes the words alone, not the reply's opening after them (the assistant's
    /// header, a call's fixed start): the user waits on the verdict, and each row costs a large
    /// share of a pass here (a pass of 2 rows ≈ 1.7 of one, 8 rows ≈ 2.8; `bench/llm.sh
    /// --passes`), so the opening's 5–7 rows would nearly double it. The words' computed prompt
    /// is kept: a reply that follows computes only its opening, and a pause judged unfinished
    /// costs nothing more.
    pub fn end_of_turn(&self, turn: &Turn, stop: &dyn Fn() -> bool) -> Result<Option<f32>, LlmError> {
        let mut judged = turn.clone();
        let Some(last) = judged.messages.last_mut().filter(|m| m.role == crate::chat::Role::User) else {
            return Err(LlmError::Prompt("the conversation does not end with the user's words".into()));
        };
        let words = last.content.trim_end().trim_end_matches(['.', '?', '!', ',', ';', ':', '…']).trim_end().to_owned();
        if words.is_empty() {
            return Err(LlmError::Prompt("no words to judge".into()));
        }
        last.content = words.clone();
        let prompt = self.prompt(&judged)?;
        // Where the message ends (not inside `<|im_start|>assistant` for a message "is").
        let ended = prompt.rfind(&format!("{words}<|im_end|>")).or_else(|| prompt.rfind(&words));
        let Some(cut) = ended.map(|at| at + words.len()) else {
            return Err(LlmError::Prompt("the user's words are not in the prompt".into()));
        };
        let tokens = self.vocab.encode(&prompt[..cut]).map_err(LlmError::Prompt)?;
        let (mut cache, reused) = self.cache_for(&tokens)?;
        let started = std::time::Instant::now();
        let mut at = reused;
        loop {
            if stop() {
                if at > reused {
                    self.keep(tokens[..at].to_vec(), cache, None);
                }
                return Ok(None);
            }
            if tokens.len() - at <= PREFILL_CHUNK {
                break;
            }
            self.model.forward(&tokens[at..at + PREFILL_CHUNK], &mut cache).map_err(generation_error)?;
            at += PREFILL_CHUNK;
        }
        let logits = self.model.forward(&tokens[at..], &mut cache).map_err(generation_error)?;
        let judged = logits.to_vec1::<f32>().map_err(generation_error)?;
        let (computed, total) = (tokens.len() - reused, tokens.len());
        // Kept as a prefix for the reply's prompt.
        self.keep(tokens, cache, None);
        tracing::debug!(
            "judging a pause: {computed} of {total} tokens computed in {} ms",
            started.elapsed().as_millis()
        );
        Ok(Some(self.ending_probability(&judged)))
    }

    /// [`LocalModel::prefill`] of a conversation that ends with the assistant's answer: the user
    /// speaks next, so what is computed is the prompt up to their message's first word
    /// (`…<|im_end|>\n<|im_start|>user\n`), and the first pause judged in it
    /// ([`LocalModel::end_of_turn`]) computes only the words.
    fn prefill_user_opening(&self, turn: &Turn, stop: &dyn Fn() -> bool) -> Result<usize, LlmError> {
        // A character no transcript or instruction holds, where the user's words will be.
        const WORDS: &str = "\u{2063}";
        let mut next = turn.clone();
        next.messages.push(Message::text(crate::chat::Role::User, WORDS));
        let prompt = self.prompt(&next)?;
        let Some(cut) = prompt.rfind(WORDS) else {
            return Err(LlmError::Prompt("the template dropped the user's message".into()));
        };
        let tokens = self.vocab.encode(&prompt[..cut]).map_err(LlmError::Prompt)?;
        if tokens.len() >= self.model.config().context {
            return Err(LlmError::Prompt(format!("the prompt is {} tokens, past the model's context", tokens.len())));
        }
        let (mut cache, reused) = self.cache_for(&tokens)?;
        let mut at = reused;
        while at < tokens.len() {
            let next = (at + PREPARE_CHUNK).min(tokens.len());
            if self.model.forward_unless(&tokens[at..next], &mut cache, stop).map_err(generation_error)?.is_none() {
                break;
            }
            at = next;
        }
        if at > reused {
            self.keep(tokens[..at].to_vec(), cache, None);
        }
        Ok(at - reused)
    }

    /// The share of the next-token probability in `logits` that ends the message there.
    fn ending_probability(&self, logits: &[f32]) -> f32 {
        crate::vocab::share(logits, self.ending.get_or_init(|| self.vocab.ending_tokens()))
    }

    /// Generates one turn, streaming its outputs to `sink`; stops early when `cancel` is set.
    /// While `give_way` holds (speech being recognised on the same cores: the transcript is what
    /// a user is waiting for), decoding pauses between tokens, at most 0.8 s at a time.
    ///
    /// A tool call is checked before it is handed out ([`crate::arguments`]): when it names an
    /// id that appears nowhere in the conversation (the model made it up), the turn is decoded
    /// again without that tool.
    pub fn generate(
        &self,
        turn: &Turn,
        cancel: &AtomicBool,
        give_way: &dyn Fn() -> bool,
        sink: &mut dyn FnMut(Output),
    ) -> Result<Finish, LlmError> {
        let mut generation = Generation::start(self, turn.clone())?;
        loop {
            let paused = std::time::Instant::now();
            while give_way() && !cancel.load(Ordering::Relaxed) && paused.elapsed() < GIVE_WAY_MAX {
                std::thread::sleep(GIVE_WAY_POLL);
            }
            match generation.advance(self, cancel, PREFILL_CHUNK, true, sink)? {
                Step::Finished(finish) => return Ok(finish),
                Step::Pass | Step::Waiting => {
                    if let Some((tokens, cache)) = generation.pending() {
                        let logits = self.model.forward(tokens, cache).map_err(generation_error)?;
                        generation.fed(self, &logits)?;
                    }
                }
            }
        }
    }

    /// The tokens of what must come next in the call whatever the model prefers (the grammar
    /// allows one byte at a time), with their bytes: the call's fixed parts, such as
    /// `", "arguments": {"text":` once `respond` is chosen. They are the canonical tokens of the
    /// call so far plus the forced bytes, after the `generated` ones, minus the last when it
    /// might merge with what the model writes next; `None` when that is nothing, or when the
    /// canonical tokens disagree with what was generated.
    fn forced(&self, tools: &[ToolGrammar], call: &[u8], generated: &[u32]) -> Option<(Vec<u32>, Vec<u8>)> {
        let mut forced = Vec::new();
        // The bytes that may follow the forced ones (more than one, or none at the end).
        let mut next_bytes: Vec<u8>;
        loop {
            let mut next = call.to_vec();
            next.extend_from_slice(&forced);
            next.push(0);
            let last = next.len() - 1;
            next_bytes = Vec::new();
            for b in 0..=255u8 {
                next[last] = b;
                if check(tools, &next) != Check::Invalid {
                    next_bytes.push(b);
                }
            }
            match next_bytes.as_slice() {
                [b] if forced.len() < 64 => forced.push(*b),
                _ => break,
            }
        }
        if forced.is_empty() {
            return None;
        }
        let mut text = call.to_vec();
        text.extend_from_slice(&forced);
        let text = String::from_utf8(text).ok()?;
        let canonical = self.vocab.encode(&text).ok()?;
        if canonical.len() <= generated.len() || canonical[..generated.len()] != *generated {
            return None;
        }
        // The last token stays when the bytes the grammar allows next would not merge with it
        // (the tokenizer splits there whatever follows); otherwise the model writes it with what
        // follows.
        // Judged on what usually follows (letters, digits, a space) when the grammar allows
        // those: a rare continuation that would have merged is still written, as its own token.
        let usual: Vec<u8> = next_bytes.iter().copied().filter(|b| b.is_ascii_alphanumeric() || *b == b' ').collect();
        let probes = if usual.is_empty() { &next_bytes } else { &usual };
        let stable = probes.iter().all(|b| {
            let probe = if b.is_ascii() { char::from(*b) } else { 'é' };
            self.vocab.encode(&format!("{text}{probe}")).is_ok_and(|t| t.starts_with(&canonical))
        });
        let end = if stable { canonical.len() } else { canonical.len() - 1 };
        if end <= generated.len() {
            return None;
        }
        let more = canonical[generated.len()..end].to_vec();
        let bytes: Vec<u8> = more.iter().flat_map(|id| self.vocab.bytes(*id).to_vec()).collect();
        let ordinary = more.iter().all(|id| !self.vocab.is_special(*id));
        (ordinary && forced.starts_with(&bytes)).then_some((more, bytes))
    }

    fn prompt_tokens(&self, turn: &Turn) -> Result<Vec<u32>, LlmError> {
        let mut tokens = self.vocab.encode(&self.prompt(turn)?).map_err(LlmError::Prompt)?;
        if !turn.plain() {
            tokens.push(self.tool_call);
        }
        if tokens.len() >= self.model.config().context {
            return Err(LlmError::Prompt(format!(
                "the prompt is {} tokens, the model's context {}",
                tokens.len(),
                self.model.config().context
            )));
        }
        Ok(tokens)
    }

    /// The prompt's tokens followed by the call's fixed opening (`\n{"name": "`; nothing for a
    /// plain-text reply), where the prompt ends, and the call's bytes so far.
    fn opening(&self, turn: &Turn, allowed: &[ToolGrammar]) -> Result<(Vec<u32>, usize, Vec<u8>), LlmError> {
        let mut tokens = self.prompt_tokens(turn)?;
        let start = tokens.len();
        let mut call = Vec::new();
        if turn.plain() {
            return Ok((tokens, start, call));
        }
        if let Some((more, bytes)) = self.forced(allowed, &call, &[]) {
            tokens.extend(more);
            call.extend(bytes);
        }
        Ok((tokens, start, call))
    }

    /// The cache to continue from for `tokens`, and how many of them it already holds (always
    /// fewer than all, so the last one is run for its logits).
    fn cache_for(&self, tokens: &[u32]) -> Result<(KvCache, usize), LlmError> {
        let caches = self.caches.lock().unwrap_or_else(|e| e.into_inner());
        let best = caches
            .iter()
            .map(|c| (c.tokens.iter().zip(tokens).take_while(|(a, b)| a == b).count(), &c.cache))
            .max_by_key(|(shared, _)| *shared);
        match best {
            Some((shared, cache)) if shared > 0 => {
                let shared = shared.min(tokens.len() - 1);
                let mut cache = cache.clone();
                cache.truncate(shared).map_err(generation_error)?;
                Ok((cache, shared))
            }
            _ => Ok((self.model.new_cache(), 0)),
        }
    }

    /// A cache holding exactly `tokens` with the logits after them, when they were computed
    /// ahead.
    fn memo(&self, tokens: &[u32]) -> Option<(KvCache, Arc<Vec<f32>>)> {
        let caches = self.caches.lock().unwrap_or_else(|e| e.into_inner());
        caches.iter().find_map(|c| match &c.logits {
            Some(l) if c.tokens == tokens => Some((c.cache.clone(), l.clone())),
            _ => None,
        })
    }

    /// Remembers a cache holding `tokens` (with the logits after them when computed ahead),
    /// replacing the caches it extends, dropping the oldest. Of the ones computed ahead, only
    /// those a new one computed ahead extends stay (the prompt under its speculative first
    /// step): a prompt computed ahead may come from any speaker's words (every 700 ms while they
    /// speak), and only the latest is worth its memory.
    fn keep(&self, tokens: Vec<u32>, cache: KvCache, logits: Option<Arc<Vec<f32>>>) {
        let mut caches = self.caches.lock().unwrap_or_else(|e| e.into_inner());
        let ahead = logits.is_some();
        caches.retain(|c| {
            let extended = tokens.starts_with(&c.tokens);
            if ahead && c.logits.is_some() { extended } else { !extended }
        });
        caches.push(Cached { tokens, cache, logits });
        if caches.len() > CACHED_PROMPTS {
            caches.remove(0);
        }
    }

    /// Whether token `id` keeps `call` valid (a token without bytes never does).
    fn viable(&self, tools: &[ToolGrammar], call: &[u8], id: u32) -> bool {
        let bytes = self.vocab.bytes(id);
        if bytes.is_empty() {
            return false;
        }
        let mut next = call.to_vec();
        next.extend_from_slice(bytes);
        check(tools, &next) != Check::Invalid
    }

    /// The next token: the best-scoring (or, with a temperature, a sampled) one that keeps the
    /// call valid. While the call's name is being written, a token's score gains the `prior` of
    /// the names it leads to ([`Turn::prior`]).
    fn choose(
        &self,
        logits: &[f32],
        tools: &[ToolGrammar],
        call: &[u8],
        prior: &[(String, f32)],
        temperature: f64,
        rng: &mut Rng,
    ) -> Option<u32> {
        if let Some(written) = name_so_far(call).filter(|_| prior.iter().any(|(_, b)| *b > 0.0)) {
            return self.choose_name(logits, tools, call, written, prior);
        }
        sample(logits, &|id| self.viable(tools, call, id), temperature, rng)
    }

    /// The next token of a plain-text reply `text` (so far): an ordinary token after which the
    /// text is still UTF-8 (or on its way to a character), or one that ends the message
    /// ([`LocalModel::ends_reply`]); never a special token such as `<tool_call>`.
    fn choose_text(&self, logits: &[f32], text: &[u8], temperature: f64, rng: &mut Rng) -> Option<u32> {
        // The text so far is whole characters but for an unfinished last one: only that tail
        // and the token's bytes need checking.
        let tail = std::str::from_utf8(text).map_or_else(|e| &text[e.valid_up_to()..], |_| &[][..]);
        let allowed = |id: u32| {
            let bytes = self.vocab.bytes(id);
            if bytes.is_empty() {
                return self.ends_reply(id);
            }
            let mut next = tail.to_vec();
            next.extend_from_slice(bytes);
            match std::str::from_utf8(&next) {
                Ok(_) => true,
                Err(e) => e.error_len().is_none(),
            }
        };
        sample(logits, &allowed, temperature, rng)
    }

    /// Whether token `id` ends a plain-text reply (`<|im_end|>`, `<|endoftext|>`).
    fn ends_reply(&self, id: u32) -> bool {
        ["<|im_end|>", "<|endoftext|>"].iter().any(|end| self.vocab.special(end) == Some(id))
    }

    /// The next token of the call's name (greedy): among the model's best tokens and the first
    /// token of the rest of each name with a prior, the valid one with the highest logit plus
    /// the largest prior of the names it is a step towards.
    fn choose_name(
        &self,
        logits: &[f32],
        tools: &[ToolGrammar],
        call: &[u8],
        written: &[u8],
        prior: &[(String, f32)],
    ) -> Option<u32> {
        let mut candidates: Vec<u32> = (0..logits.len() as u32).collect();
        let k = TOP_K.min(candidates.len());
        if k == 0 {
            return None;
        }
        candidates.select_nth_unstable_by(k - 1, |a, b| logits[*b as usize].total_cmp(&logits[*a as usize]));
        candidates.truncate(k);
        // The prior's names may lie outside the model's best tokens: their next token joins in.
        for (name, _) in prior {
            let Some(rest) = name.as_bytes().strip_prefix(written).filter(|r| !r.is_empty()) else { continue };
            let rest = String::from_utf8_lossy(rest);
            if let Some(first) = self.vocab.encode(&rest).ok().and_then(|t| t.first().copied()) {
                candidates.push(first);
            }
        }
        let score = |id: u32| -> Option<f32> {
            if !self.viable(tools, call, id) {
                return None;
            }
            let mut named = written.to_vec();
            named.extend_from_slice(self.vocab.bytes(id));
            let bias = prior.iter().filter(|(name, _)| leads_to(&named, name)).map(|(_, b)| *b).fold(0.0f32, f32::max);
            Some(logits[id as usize] + bias)
        };
        let best = candidates
            .iter()
            .filter_map(|id| score(*id).map(|s| (*id, s)))
            .max_by(|a, b| a.1.total_cmp(&b.1).then(b.0.cmp(&a.0)))
            .map(|(id, _)| id);
        best.or_else(|| self.choose(logits, tools, call, &[], 0.0, &mut Rng::seeded()))
    }
}

/// The best-scoring token that is `viable` or, with a temperature, one sampled among the
/// viable ones of the best [`TOP_K`] (min-p: none far less likely than the best); when none of
/// those is viable, the best-scoring viable one of the rest.
fn sample(logits: &[f32], viable: &dyn Fn(u32) -> bool, temperature: f64, rng: &mut Rng) -> Option<u32> {
    let mut order: Vec<u32> = (0..logits.len() as u32).collect();
    let k = TOP_K.min(order.len());
    if k == 0 {
        return None;
    }
    let by_score = |a: &u32, b: &u32| logits[*b as usize].total_cmp(&logits[*a as usize]);
    order.select_nth_unstable_by(k - 1, by_score);
    let (top, rest) = order.split_at_mut(k);
    top.sort_unstable_by(by_score);
    let candidates: Vec<u32> = top.iter().copied().filter(|id| viable(*id)).collect();
    if let Some(first) = candidates.first() {
        if temperature <= 0.0 || candidates.len() == 1 {
            return Some(*first);
        }
        let best = logits[*first as usize] as f64;
        let weights: Vec<f64> = candidates
            .iter()
            .map(|id| ((logits[*id as usize] as f64 - best) / temperature).exp())
            .map(|w| if w < MIN_P { 0.0 } else { w })
            .collect();
        let mut pick = rng.next() * weights.iter().sum::<f64>();
        for (id, w) in candidates.iter().zip(&weights) {
            if pick < *w {
                return Some(*id);
            }
            pick -= w;
        }
        return Some(*first);
    }
    rest.sort_unstable_by(by_score);
    rest.iter().copied().find(|id| viable(*id))
}

/// The part of a call's name written so far, while the name is still being written.
fn name_so_far(call: &[u8]) -> Option<&[u8]> {
    const KEY: &[u8] = b"\"name\": \"";
    let at = call.windows(KEY.len()).position(|w| w == KEY)? + KEY.len();
    let written = &call[at..];
    (!written.contains(&b'"')).then_some(written)
}

/// Whether a name written as `named` (perhaps with its closing quote and more) is, or is on the
/// way to, `name`.
fn leads_to(named: &[u8], name: &str) -> bool {
    let name = name.as_bytes();
    name.starts_with(named) || named.strip_prefix(name).is_some_and(|after| after.first() == Some(&b'"'))
}

/// Follows the growing call: the text of `respond` goes out as it comes; a tool call is
/// returned once complete.
#[derive(Default)]
struct CallStream {
    name: Option<String>,
    spoken: usize,
}

/// What comes before a call's arguments.
const NAME_PREFIX: &str = "\n{\"name\": ";
const ARGUMENTS_PREFIX: &str = ", \"arguments\": ";

impl CallStream {
    fn speaking(&self) -> bool {
        self.name.as_deref() == Some(RESPOND)
    }

    /// Takes a plain-text reply so far: its new complete characters go out.
    fn advance_text(&mut self, text: &[u8], sink: &mut dyn FnMut(Output)) {
        let valid = match std::str::from_utf8(text) {
            Ok(t) => t,
            Err(e) => std::str::from_utf8(&text[..e.valid_up_to()]).unwrap_or_default(),
        };
        if valid.len() > self.spoken {
            sink(Output::Text(valid[self.spoken..].to_owned()));
            self.spoken = valid.len();
        }
    }

    /// Takes the call so far; returns a complete tool call (name, arguments).
    fn advance(&mut self, call: &[u8], complete: bool, sink: &mut dyn FnMut(Output)) -> Option<(String, String)> {
        let text = match std::str::from_utf8(call) {
            Ok(t) => t,
            Err(e) => std::str::from_utf8(&call[..e.valid_up_to()]).ok()?,
        };
        if self.name.is_none() {
            let rest = text.strip_prefix(NAME_PREFIX)?;
            let end = rest.find(ARGUMENTS_PREFIX)?;
            self.name = Some(serde_json::from_str(&rest[..end]).unwrap_or_default());
        }
        let name = self.name.clone()?;
        let args_at = text.find(ARGUMENTS_PREFIX).map_or(text.len(), |i| i + ARGUMENTS_PREFIX.len());
        let args = &text[args_at..];
        if name == RESPOND {
            let open = format!("{{{}: \"", quoted("text"));
            if let Some(body) = args.strip_prefix(open.as_str()) {
                let said = unescape_prefix(body);
                if said.len() > self.spoken {
                    sink(Output::Text(said[self.spoken..].to_owned()));
                    self.spoken = said.len();
                }
            }
            None
        } else if complete {
            Some((name, args.strip_suffix("}\n").unwrap_or(args).to_owned()))
        } else {
            None
        }
    }
}

/// The text of a JSON string's body written so far (up to its closing quote, or up to the last
/// complete escape).
fn unescape_prefix(body: &str) -> String {
    let mut out = String::new();
    let mut chars = body.chars();
    while let Some(c) = chars.next() {
        match c {
            '"' => break,
            '\\' => {
                let rest = chars.as_str();
                let Some(e) = rest.chars().next() else { break };
                let simple = match e {
                    'n' => Some('\n'),
                    't' => Some('\t'),
                    'r' => Some('\r'),
                    'b' => Some('\u{8}'),
                    'f' => Some('\u{c}'),
                    '"' | '\\' | '/' => Some(e),
                    _ => None,
                };
                if let Some(s) = simple {
                    out.push(s);
                    chars.next();
                } else if e == 'u' {
                    let Some(hex) = rest.get(1..5) else { break };
                    let Ok(code) = u32::from_str_radix(hex, 16) else { break };
                    out.push(char::from_u32(code).unwrap_or('\u{fffd}'));
                    chars = rest[5..].chars();
                } else {
                    break;
                }
            }
            c => out.push(c),
        }
    }
    out
}

/// A small xorshift generator for sampling (no need for a crate).
struct Rng(u64);

impl Rng {
    fn seeded() -> Rng {
        let nanos =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(1, |d| d.as_nanos() as u64);
        Rng(nanos | 1)
    }

    /// Uniform in [0, 1).
    fn next(&mut self) -> f64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
}

impl crate::request::PromptSize for LocalModel {
    fn prompt_tokens(&self, turn: &Turn) -> usize {
        self.prompt_len(turn)
    }
    fn text_tokens(&self, text: &str) -> usize {
        self.text_len(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_spoken_text_streams_as_the_call_grows() {
        let call = "\n{\"name\": \"respond\", \"arguments\": {\"text\": \"Hi \\\"you\\\", caf\\u00e9 \u{e9}!\"}}\n";
        let mut out = Vec::new();
        let mut stream = CallStream::default();
        for n in 1..=call.len() {
            if call.is_char_boundary(n) {
                stream.advance(&call.as_bytes()[..n], n == call.len(), &mut |o| out.push(o));
            }
        }
        let text: String = out
            .iter()
            .map(|o| match o {
                Output::Text(t) => t.as_str(),
                other => panic!("unexpected {other:?}"),
            })
            .collect();
        assert_eq!(text, "Hi \"you\", café é!");
        assert!(out.len() > 5, "streamed in pieces: {out:?}");
    }

    #[test]
    fn the_name_being_written_and_where_it_leads() {
        assert_eq!(name_so_far(b"\n{\"name\": \"get_"), Some(&b"get_"[..]));
        assert_eq!(name_so_far(b"\n{\"name\": \""), Some(&b""[..]));
        assert_eq!(name_so_far(b"\n{\"name\": \"respond\", \"arguments\": {\"name\": \"x"), None);
        assert_eq!(name_so_far(b"\n{\"na"), None);
        assert!(leads_to(b"get_", "get_order_status"));
        assert!(leads_to(b"get_order_status\"", "get_order_status"));
        assert!(!leads_to(b"get_order_status_x", "get_order_status"));
        assert!(!leads_to(b"search", "get_order_status"));
    }

    #[test]
    fn a_tool_call_is_returned_when_complete() {
        let call = "\n{\"name\": \"get_order_status\", \"arguments\": {\"order_id\": \"4419\"}}\n";
        let mut out = Vec::new();
        let mut stream = CallStream::default();
        let mut made = Vec::new();
        for n in 1..=call.len() {
            made.extend(stream.advance(&call.as_bytes()[..n], n == call.len(), &mut |o| out.push(o)));
        }
        assert!(out.is_empty(), "{out:?}");
        assert_eq!(made, [("get_order_status".to_owned(), "{\"order_id\": \"4419\"}".to_owned())]);
    }
}
