//! Whisper speech recognition on whisper.cpp (through `whisper-rs`), tuned for short turns.
//!
//! Standard Whisper pads every utterance to 30 s; on two CPU cores the encoder alone then takes
//! ≈500 ms. Here the encoder runs only over the audio there is (`audio_ctx` = its length), which
//! takes a 3 s turn from ≈510 ms to ≈60 ms (`../shared/reference/ASR.md`). Without the padding,
//! tiny.en tends to repeat the utterance on trailing silence, so every decode is guarded:
//!
//! - **tight trim**: leading and trailing silence are cut (keeping a short margin);
//! - **token cap**: at most [`TOKENS_PER_SECOND`] per second of audio (+ [`EXTRA_TOKENS`]);
//! - **repeat stop**: once the newest tokens repeat the opening ones, or repeat the span right
//!   before them, decoding is stopped (end-of-text forced) and the repeat dropped; the text is
//!   checked once more word by word, blind to punctuation and to a word the loop cut short or
//!   inflected ("My phone number is my phone numbers"), which the tokens miss
//!   ([`repeated_words`]);
//! - **padded fallback**: when the cap is hit anyway, or nothing was recognised in audio that
//!   has speech energy, the turn is decoded once more the standard way (30 s context).

use crate::SpeechError;
use std::ffi::{c_int, c_void};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use whisper_rs::{
    FullParams, SamplingStrategy, WhisperContext, WhisperContextParameters, WhisperState, WhisperSysContext,
    WhisperSysState, WhisperTokenData,
};

/// Whisper's input rate.
pub const SAMPLE_RATE: u32 = 16_000;
/// Token budget per second of audio.
pub const TOKENS_PER_SECOND: f64 = 6.0;
/// Tokens allowed on top of the per-second budget.
pub const EXTRA_TOKENS: usize = 10;
/// Longest audio one decode takes (Whisper's window); longer turns are cut into windows.
pub const WINDOW_SECONDS: f64 = 30.0;
/// Silence kept before and after the speech when trimming, in seconds.
const TRIM_MARGIN_SECONDS: f64 = 0.4;
/// Trim frame, in samples (20 ms).
const TRIM_FRAME: usize = 320;
/// Frames quieter than this fraction of the loudest frame's RMS count as silence.
const TRIM_RELATIVE: f32 = 0.03;
/// Frames quieter than this RMS (of full scale) are silence whatever the loudest frame.
const SILENCE_RMS: f32 = 0.003;

/// A loaded Whisper model; recognisers made from it share its weights.
pub struct WhisperModel {
    ctx: WhisperContext,
    /// For each text token, the id of the first token with the same lower-case, trimmed text,
    /// so the repeat stop sees " your" and "Your" as the same word.
    canonical: Vec<i32>,
}

/// What to recognise and how.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Decode {
    /// Language as BCP-47 (`en`, `de-DE`); several comma-separated, or none, mean "detect".
    pub language: Option<String>,
    /// Text that primes the decoder (names, vocabulary).
    pub prompt: Option<String>,
    /// CPU threads for this decode.
    pub threads: usize,
    /// Beam search width (0 or 1: greedy).
    pub beam_size: usize,
}

/// How a decode ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// The model ended the text itself.
    Natural,
    /// The repeat stop fired; the repeat was dropped.
    RepeatStopped,
    /// The short-context decode misbehaved and the padded 30 s decode was used.
    PaddedFallback,
}

/// A recognised utterance.
#[derive(Debug, Clone, PartialEq)]
pub struct Transcript {
    /// The text, trimmed.
    pub text: String,
    /// How decoding ended.
    pub ending: Ending,
    /// Seconds of audio decoded after trimming.
    pub speech_seconds: f64,
    /// Text tokens the decoder produced, a dropped loop's and a fallback's included: the
    /// decoding steps the transcript cost.
    pub tokens: usize,
}

impl WhisperModel {
    /// Loads a ggml Whisper model (as `brazen models install` converts it).
    pub fn load(path: &Path) -> Result<WhisperModel, SpeechError> {
        whisper_rs::install_logging_hooks();
        if !path.is_file() {
            return Err(SpeechError::Model { path: path.display().to_string(), message: "no such file".into() });
        }
        let ctx = WhisperContext::new_with_params(path, WhisperContextParameters::default()).map_err(|e| {
            SpeechError::Model { path: path.display().to_string(), message: format!("not a Whisper ggml model ({e})") }
        })?;
        let eot = ctx.token_eot().max(0);
        let mut first = std::collections::HashMap::new();
        let canonical = (0..eot)
            .map(|id| {
                let text = ctx.token_to_bytes(id).map(|b| String::from_utf8_lossy(b).trim().to_lowercase());
                *first.entry(text.unwrap_or_default()).or_insert(id)
            })
            .collect();
        Ok(WhisperModel { ctx, canonical })
    }

    /// Whether the model knows languages other than English.
    pub fn is_multilingual(&self) -> bool {
        self.ctx.is_multilingual()
    }

    /// A recogniser: its own decoding state (a few MB), for one thread of work at a time.
    pub fn recognizer(&self) -> Result<Recognizer<'_>, SpeechError> {
        let state = self.ctx.create_state().map_err(|e| SpeechError::Engine(format!("whisper state: {e}")))?;
        Ok(Recognizer { model: self, state })
    }
}

/// Decodes utterances with one model; not shared between threads.
pub struct Recognizer<'m> {
    model: &'m WhisperModel,
    state: WhisperState,
}

/// The part of `audio` that holds speech energy, with a margin: `None` when all of it is silence.
pub fn speech_range(audio: &[f32]) -> Option<std::ops::Range<usize>> {
    let rms: Vec<f32> =
        audio.chunks(TRIM_FRAME).map(|f| (f.iter().map(|x| x * x).sum::<f32>() / f.len() as f32).sqrt()).collect();
    let loudest = rms.iter().copied().fold(0.0, f32::max);
    if loudest < SILENCE_RMS {
        return None;
    }
    let floor = (loudest * TRIM_RELATIVE).max(SILENCE_RMS);
    let first = rms.iter().position(|&r| r >= floor)?;
    let last = rms.iter().rposition(|&r| r >= floor)?;
    let margin = (TRIM_MARGIN_SECONDS * SAMPLE_RATE as f64) as usize;
    let start = (first * TRIM_FRAME).saturating_sub(margin);
    let end = ((last + 1) * TRIM_FRAME + margin).min(audio.len());
    Some(start..end)
}

/// How many of the newest text tokens to drop as a decoding loop: the opening coming round
/// again (its first 6 tokens, or the first half when shorter), a span of 4 or more tokens
/// repeated right after itself, or a span of 2 or more repeated three times in a row (the
/// copies after the first are dropped). `None` when there is no loop.
pub fn repeated_tail(tokens: &[i32]) -> Option<usize> {
    let n = tokens.len();
    // Speech often reuses a few opening words ("It was the best…, it was the worst…"); a
    // decoding loop repeats the whole utterance, so the match must be long.
    let opening = (n / 2).min(OPENING_REPEAT);
    if opening >= 3 && tokens[n - opening..] == tokens[..opening] {
        return Some(opening);
    }
    let copy = |m: usize, k: usize| tokens[n - k * m..n - (k - 1) * m] == tokens[n - m..];
    if let Some(m) = (4..=n / 2).find(|&m| copy(m, 2)) {
        return Some(m);
    }
    (2..=n / 3).find(|&m| copy(m, 2) && copy(m, 3)).map(|m| 2 * m)
}

/// Where the text a decoding loop added begins, in bytes of `text`, found word by word (blind
/// to case and punctuation, which the token check [`repeated_tail`] is not): the opening's
/// first 3 or more words coming round again at the end, the last of them perhaps cut short or
/// inflected ("My phone number is my phone numbers"), or a span of 4 or more words repeated
/// right after itself ("…for my daughter, a warm jacket for my daughter."). `None` when there
/// is no loop. Whisper makes these up when the audio stops mid-sentence, and the words' end
/// decides whether the turn is over.
pub fn repeated_words(text: &str) -> Option<usize> {
    let words: Vec<(usize, String)> = text
        .split_whitespace()
        .map(|w| {
            let start = w.as_ptr() as usize - text.as_ptr() as usize;
            (start, w.chars().filter(|c| c.is_alphanumeric()).flat_map(char::to_lowercase).collect::<String>())
        })
        .filter(|(_, w)| !w.is_empty())
        .collect();
    let n = words.len();
    let same = |a: &[(usize, String)], b: &[(usize, String)]| a.iter().zip(b).all(|(x, y)| x.1 == y.1);
    // The opening again: every word alike but the last, which may be cut or inflected.
    let opening = (WORDS_OPENING_REPEAT..=n / 2).rev().find(|&k| {
        let (tail, head) = (&words[n - k..], &words[..k]);
        same(&tail[..k - 1], &head[..k - 1]) && cut_or_inflected(&head[k - 1].1, &tail[k - 1].1)
    });
    let span = || (WORDS_SPAN_REPEAT..=n / 2).find(|&m| same(&words[n - 2 * m..n - m], &words[n - m..]));
    let k = opening.or_else(span)?;
    Some(words[n - k].0)
}

/// Whether `later`, a loop's copy of the word `word`, is that word, cut short (its first 3 or
/// more letters) or inflected ("number", "numbers"): not another word that begins alike ("a",
/// "any"; "six", "sixty").
fn cut_or_inflected(word: &str, later: &str) -> bool {
    later == word
        || (later.len() >= 3 && word.starts_with(later))
        || later.strip_prefix(word).is_some_and(|rest| ["s", "es", "ed", "ing"].contains(&rest))
}

/// `text` without the decoding loops [`repeated_words`] finds (all of them, a loop that came
/// round more than once too), nor the mark that led into them ("…daughter, a warm jacket…": not
/// the speaker's); `None` when it has none.
pub fn drop_word_loops(text: &str) -> Option<String> {
    let mut kept = text;
    while let Some(at) = repeated_words(kept) {
        kept = kept[..at].trim_end_matches([' ', ',', ';', ':', '-']);
    }
    (kept.len() < text.len()).then(|| kept.to_owned())
}

/// Words of the opening that must come round again to count as a loop ([`repeated_words`]).
const WORDS_OPENING_REPEAT: usize = 3;
/// Words of a span repeated right after itself that count as a loop ([`repeated_words`]).
const WORDS_SPAN_REPEAT: usize = 4;

/// Tokens of the opening that must come round again to count as a loop.
/// (Checked at every token: a loop whose copy drifts after a few tokens — "My order number is
/// 5423-198. My order number is 5423-98" — is caught while its opening still matches.)
const OPENING_REPEAT: usize = 6;

/// What the logits filter needs; it keeps no state, so each beam is judged on its own tokens.
struct Guard<'a> {
    canonical: &'a [i32],
    eot: i32,
    vocab: usize,
    cap: usize,
}

impl Guard<'_> {
    /// Text tokens, compared case- and space-blind.
    fn text(&self, ids: impl Iterator<Item = i32>) -> Vec<i32> {
        ids.filter(|&t| t >= 0 && t < self.eot).map(|t| self.canonical[t as usize]).collect()
    }

    /// Whether a sequence must end here: it loops, or it reached the cap.
    fn must_stop(&self, text: &[i32]) -> bool {
        repeated_tail(text).is_some() || text.len() >= self.cap
    }
}

unsafe extern "C" fn guard_logits(
    _ctx: *mut WhisperSysContext,
    _state: *mut WhisperSysState,
    tokens: *const WhisperTokenData,
    n_tokens: c_int,
    logits: *mut f32,
    user_data: *mut c_void,
) {
    // SAFETY: whisper.cpp passes the `Guard` we registered (alive for the whole `full` call),
    // `n_tokens` valid token records, and a logits row of the model's vocabulary size.
    let guard = unsafe { &*(user_data as *const Guard) };
    let records = if n_tokens > 0 { unsafe { std::slice::from_raw_parts(tokens, n_tokens as usize) } } else { &[] };
    if guard.must_stop(&guard.text(records.iter().map(|t| t.id))) {
        let row = unsafe { std::slice::from_raw_parts_mut(logits, guard.vocab) };
        for (id, l) in row.iter_mut().enumerate() {
            if id as i32 != guard.eot {
                *l = f32::NEG_INFINITY;
            }
        }
    }
}

/// How a guarded decode came out.
struct Decoded {
    text: String,
    /// A loop was dropped.
    looped: bool,
    /// The token cap ended it.
    capped: bool,
    /// Text tokens decoded, the loop's included.
    tokens: usize,
}

/// Whisper's language code for a BCP-47 tag list: `Some("de")` for `de-DE`, `None` (detect) for
/// none or several.
fn language_code(language: Option<&str>) -> Option<String> {
    let tag = language?.trim();
    if tag.is_empty() || tag.contains(',') {
        return None;
    }
    let primary = tag.split(['-', '_']).next()?.to_ascii_lowercase();
    Some(primary)
}

/// Tells whisper.cpp to stop when the flag it is given is set.
unsafe extern "C" fn abort_when_set(flag: *mut c_void) -> bool {
    // SAFETY: the pointer is the `AtomicBool` passed to `run`, alive for its `full` call.
    unsafe { &*(flag as *const AtomicBool) }.load(Ordering::Relaxed)
}

impl Recognizer<'_> {
    /// Transcribes 16 kHz mono audio (one turn; windows of 30 s for longer ones).
    pub fn transcribe(&mut self, audio: &[f32], decode: &Decode) -> Result<Transcript, SpeechError> {
        self.transcribe_cancellable(audio, decode, &AtomicBool::new(false))
    }

    /// [`Recognizer::transcribe`], stopping with an error soon after `cancel` is set.
    pub fn transcribe_cancellable(
        &mut self,
        audio: &[f32],
        decode: &Decode,
        cancel: &AtomicBool,
    ) -> Result<Transcript, SpeechError> {
        let lang = language_code(decode.language.as_deref());
        if let Some(code) = &lang {
            if !self.model.is_multilingual() && code != "en" {
                return Err(SpeechError::Engine(format!(
                    "the English-only Whisper model cannot transcribe language {code:?}; start brazen with a multilingual model (--asr whisper-base)"
                )));
            }
            if whisper_rs::get_lang_id(code).is_none() {
                return Err(SpeechError::Engine(format!("Whisper does not know language {code:?}")));
            }
        }
        let Some(range) = speech_range(audio) else {
            return Ok(Transcript { text: String::new(), ending: Ending::Natural, speech_seconds: 0.0, tokens: 0 });
        };
        let speech = &audio[range];
        let window = (WINDOW_SECONDS * SAMPLE_RATE as f64) as usize;
        let mut texts = Vec::new();
        let mut ending = Ending::Natural;
        let mut tokens = 0;
        for chunk in split_windows(speech, window) {
            let (text, e, decoded) = self.decode_window(chunk, decode, lang.as_deref(), cancel)?;
            tokens += decoded;
            if e != Ending::Natural {
                ending = e;
            }
            if !text.is_empty() {
                texts.push(text);
            }
        }
        let speech_seconds = speech.len() as f64 / SAMPLE_RATE as f64;
        Ok(Transcript { text: texts.join(" "), ending, speech_seconds, tokens })
    }

    fn decode_window(
        &mut self,
        audio: &[f32],
        decode: &Decode,
        lang: Option<&str>,
        cancel: &AtomicBool,
    ) -> Result<(String, Ending, usize), SpeechError> {
        let seconds = audio.len() as f64 / SAMPLE_RATE as f64;
        let cap = (seconds * TOKENS_PER_SECOND).ceil() as usize + EXTRA_TOKENS;
        // One encoder position per 20 ms; whole positions, and a floor for very short clips.
        let audio_ctx = audio.len().div_ceil(320).clamp(64, 1500);
        let short = self.run(audio, decode, lang, Some(audio_ctx as c_int), cap, cancel)?;
        // The caller trimmed silence, so an empty text from half a second or more is a miss.
        if short.capped || (short.text.is_empty() && seconds >= 0.5) {
            let padded = self.run(audio, decode, lang, None, cap, cancel)?;
            return Ok((padded.text, Ending::PaddedFallback, short.tokens + padded.tokens));
        }
        let ending = if short.looped { Ending::RepeatStopped } else { Ending::Natural };
        Ok((short.text, ending, short.tokens))
    }

    /// One `whisper_full` call; `audio_ctx` `None` is the standard 30 s context.
    fn run(
        &mut self,
        audio: &[f32],
        decode: &Decode,
        lang: Option<&str>,
        audio_ctx: Option<c_int>,
        cap: usize,
        cancel: &AtomicBool,
    ) -> Result<Decoded, SpeechError> {
        let ctx = &self.model.ctx;
        let guard =
            Guard { canonical: &self.model.canonical, eot: ctx.token_eot(), vocab: ctx.n_vocab().max(0) as usize, cap };
        let strategy = match decode.beam_size {
            0 | 1 => SamplingStrategy::Greedy { best_of: 1 },
            n => SamplingStrategy::BeamSearch { beam_size: n as c_int, patience: -1.0 },
        };
        let mut params = FullParams::new(strategy);
        params.set_n_threads(decode.threads.max(1) as c_int);
        params.set_translate(false);
        params.set_no_context(true);
        params.set_no_timestamps(true);
        params.set_single_segment(true);
        params.set_print_special(false);
        params.set_print_progress(false);
        params.set_print_realtime(false);
        params.set_print_timestamps(false);
        params.set_suppress_blank(true);
        params.set_temperature(0.0);
        params.set_temperature_inc(0.0);
        params.set_audio_ctx(audio_ctx.unwrap_or(0));
        params.set_language(Some(lang.unwrap_or(if self.model.is_multilingual() { "auto" } else { "en" })));
        if let Some(prompt) = decode.prompt.as_deref().filter(|p| !p.trim().is_empty()) {
            params.set_initial_prompt(prompt);
        }
        // SAFETY: the callback only reads the tokens and writes the logits row it is given;
        // `guard` outlives the `full` call below, which is the only place it is used.
        unsafe {
            params.set_filter_logits_callback(Some(guard_logits));
            params.set_filter_logits_callback_user_data(&guard as *const Guard as *mut c_void);
            params.set_abort_callback(Some(abort_when_set));
            params.set_abort_callback_user_data(cancel as *const AtomicBool as *mut c_void);
        }
        let result = self.state.full(params, audio);
        if cancel.load(Ordering::Relaxed) {
            return Err(SpeechError::Engine("transcription cancelled".into()));
        }
        result.map_err(|e| SpeechError::Engine(format!("whisper: {e}")))?;
        let (mut ids, mut pieces) = (Vec::new(), Vec::new());
        for segment in self.state.as_iter() {
            for i in 0..segment.n_tokens() {
                if let Some(token) = segment.get_token(i) {
                    let id = token.token_id();
                    if id < guard.eot {
                        ids.push(id);
                        pieces.push(token.to_bytes().map(<[u8]>::to_vec).unwrap_or_default());
                    }
                }
            }
        }
        // The sequence that won ended where the guard stopped it, if it did: find why again.
        let text_ids = guard.text(ids.into_iter());
        let tokens = text_ids.len();
        let dropped = repeated_tail(&text_ids);
        let capped = dropped.is_none() && text_ids.len() >= cap;
        if let Some(k) = dropped {
            pieces.truncate(pieces.len().saturating_sub(k));
        }
        let text = String::from_utf8_lossy(&pieces.concat()).trim().to_owned();
        let (text, words_looped) = match drop_word_loops(&text) {
            Some(kept) => (kept, true),
            None => (text, false),
        };
        // A loop hit the cap: it is dropped, no padded decode needed.
        let capped = capped && !words_looped;
        Ok(Decoded { text, looped: dropped.is_some() || words_looped, capped, tokens })
    }
}

/// Cuts audio longer than one window into windows, each ending at the quietest 20 ms frame of
/// its last 5 s, so words are rarely split.
fn split_windows(audio: &[f32], window: usize) -> Vec<&[f32]> {
    let mut out = Vec::new();
    let mut rest = audio;
    while rest.len() > window {
        let search = window.saturating_sub(5 * SAMPLE_RATE as usize)..window;
        let cut = search
            .step_by(TRIM_FRAME)
            .min_by(|&a, &b| {
                let energy = |at: usize| rest[at..(at + TRIM_FRAME).min(rest.len())].iter().map(|x| x * x).sum::<f32>();
                energy(a).total_cmp(&energy(b))
            })
            .unwrap_or(window);
        let (head, tail) = rest.split_at(cut.max(TRIM_FRAME));
        out.push(head);
        rest = tail;
    }
    out.push(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loops_the_tokens_miss_are_found_word_by_word() {
        // The opening again, its last word inflected or cut short.
        assert_eq!(drop_word_loops("My phone number is my phone numbers").as_deref(), Some("My phone number is"));
        assert_eq!(drop_word_loops("My phone number is... My phone num").as_deref(), Some("My phone number is..."));
        // A span right after itself, told apart only by punctuation; the comma that led into
        // it goes with it.
        assert_eq!(
            drop_word_loops("I am looking for a warm jacket for my daughter, a warm jacket for my daughter.")
                .as_deref(),
            Some("I am looking for a warm jacket for my daughter")
        );
        // A loop that came round twice.
        assert_eq!(
            drop_word_loops("I want to check my order. I want to check my order. I want to check my order.").as_deref(),
            Some("I want to check my order.")
        );
        // Speech that reuses a few words is not a loop, nor a word that begins like another.
        for speech in [
            "It was the best of times, it was the worst of times.",
            "Thank you, thank you.",
            "My phone number is 555-1234.",
            "What time do you open on Saturday?",
            "Do you have a table? Do you have any?",
            "Can I have a coke and can I have another?",
            "Is it six or is it sixty?",
            "",
            "... -- ,",
        ] {
            assert_eq!(drop_word_loops(speech), None, "{speech:?}");
        }
    }

    #[test]
    fn repeats_are_found_at_the_opening_or_right_behind() {
        assert_eq!(repeated_tail(&[1, 2, 3, 4, 1, 2, 3, 4]), Some(4));
        assert_eq!(repeated_tail(&[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 1, 2, 3, 4, 5, 6]), Some(6));
        // Reusing the first words is speech, not a loop.
        assert_eq!(repeated_tail(&[1, 2, 3, 4, 5, 6, 7, 8, 9, 1, 2, 3]), None);
        assert_eq!(repeated_tail(&[9, 1, 2, 3, 4, 1, 2, 3, 4]), Some(4));
        assert_eq!(repeated_tail(&[1, 2, 3, 4, 5, 6]), None);
        // Short echoes ("no, no", "bye bye bye") are speech, not a loop…
        assert_eq!(repeated_tail(&[7, 8, 8, 8]), None);
        assert_eq!(repeated_tail(&[7, 8, 9, 8, 9]), None);
        // …but a phrase a third time is ("after a week after a week after a week").
        assert_eq!(repeated_tail(&[5, 1, 2, 3, 1, 2, 3, 1, 2, 3]), Some(6));
        assert_eq!(repeated_tail(&[]), None);
    }

    #[test]
    fn silence_is_trimmed_to_a_margin() {
        let mut audio = vec![0.0f32; 16_000];
        audio.extend((0..16_000).map(|i| (i as f32 * 0.05).sin() * 0.3));
        audio.extend(vec![0.0f32; 32_000]);
        let r = speech_range(&audio).unwrap();
        let margin = (TRIM_MARGIN_SECONDS * 16_000.0) as usize;
        assert!(r.start.abs_diff(16_000 - margin) <= TRIM_FRAME, "{r:?}");
        assert!(r.end.abs_diff(32_000 + margin) <= TRIM_FRAME, "{r:?}");
        assert_eq!(speech_range(&vec![0.0005; 16_000]), None);
    }

    #[test]
    fn languages_map_to_whisper_codes() {
        assert_eq!(language_code(Some("de-DE")).as_deref(), Some("de"));
        assert_eq!(language_code(Some("EN")).as_deref(), Some("en"));
        assert_eq!(language_code(Some("en,zh")), None);
        assert_eq!(language_code(None), None);
    }

    #[test]
    fn long_audio_is_cut_into_windows_at_quiet_points() {
        let mut audio: Vec<f32> = (0..40 * 16_000).map(|i| (i as f32 * 0.05).sin() * 0.3).collect();
        for x in &mut audio[27 * 16_000..27 * 16_000 + 640] {
            *x = 0.0;
        }
        let windows = split_windows(&audio, 30 * 16_000);
        assert_eq!(windows.len(), 2);
        assert!(windows[0].len().abs_diff(27 * 16_000) <= 320, "{}", windows[0].len());
        assert_eq!(windows.iter().map(|w| w.len()).sum::<usize>(), audio.len());
    }
}
