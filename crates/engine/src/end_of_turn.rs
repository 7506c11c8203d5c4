//! Semantic end of turn: how long the silence after the user's words must last before their
//! turn ends, from what is heard in the audio and what the words say.
//!
//! Plain `server_vad` ends a turn after `silence_duration_ms`, whatever was said. With
//! `semantic_vad` (its `eagerness`), `azure_semantic_vad` or an `end_of_utterance_detection`,
//! each pause of the speech is judged as it happens, by three witnesses:
//!
//! - **the end-of-turn model** ([`brazen_providers::TurnModel`], Smart Turn) hears the turn's
//!   audio: intonation and rhythm;
//! - **the words** (the pause's transcript preview), read for plain English grammar: a trailing
//!   "and", "the", "um", a comma, a number being read out ([`trails_off`]) — decisive when the
//!   language model cannot judge;
//! - **the language model** ([`brazen_providers::Llm::end_of_turn`]) reads the words in the
//!   conversation and gives the probability that the message ends there — "I would like to
//!   order", "Can you tell me", "My number is" go on; "Where is my order" does not.
//!
//! The words come first: the end-of-turn model is asked only when they do not settle the pause
//! (the language model does not find the message finished, or cannot judge, or there are no
//! words), so nothing else runs beside the recogniser while someone waits on it.
//!
//! From them, the silence needed ([`Waits::silence_ms`]) is short when the turn is **finished**
//! (~200 ms), longer when the witnesses are **unsure** or still answering, and up to the timeout
//! when it is **unfinished**. A pause that ends in speech is forgotten; the next is judged afresh.

use brazen_protocol::TurnDetection;

/// The silences a semantic detector waits for, in ms, and the model's threshold.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Waits {
    /// After a finished turn.
    pub finished_ms: f64,
    /// When the model and the words disagree, or while the verdict is coming.
    pub unsure_ms: f64,
    /// After speech neither calls finished: the timeout.
    pub unfinished_ms: f64,
    /// The end-of-turn model's probability that counts as finished.
    pub threshold: f32,
    /// The language model's probability that counts as finished.
    pub text_threshold: f32,
}

/// What one witness said about a pause.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Verdict {
    /// Not asked (nothing to judge with, or no such witness).
    Unknown,
    /// Asked; the answer is coming.
    Pending,
    /// The probability that the turn is finished.
    Finished(f32),
}

impl Waits {
    /// The waits `detection` asks for; `None` for plain silence detection.
    pub fn of(detection: &TurnDetection) -> Option<Waits> {
        let eou = detection.extra.get("end_of_utterance_detection").filter(|v| v.is_object());
        match detection.kind.as_str() {
            "semantic_vad" => {
                let eagerness = detection.extra.get("eagerness").and_then(|e| e.as_str()).unwrap_or("auto");
                Some(match eagerness {
                    "high" => Waits {
                        finished_ms: 150.0,
                        unsure_ms: 500.0,
                        unfinished_ms: 1_000.0,
                        threshold: 0.4,
                        text_threshold: 0.2,
                    },
                    "low" => Waits {
                        finished_ms: 400.0,
                        unsure_ms: 1_500.0,
                        unfinished_ms: 4_000.0,
                        threshold: 0.6,
                        text_threshold: 0.5,
                    },
                    _ => Waits {
                        finished_ms: 200.0,
                        unsure_ms: 900.0,
                        unfinished_ms: 2_000.0,
                        threshold: 0.5,
                        text_threshold: 0.3,
                    },
                })
            }
            kind if kind.starts_with("azure_semantic_vad") || eou.is_some() => {
                // Azure's rule: the silence ends a finished turn; the end-of-utterance model
                // holds an unfinished one up to `timeout_ms` longer.
                let silence = detection.silence_duration_ms as f64;
                let timeout = eou
                    .and_then(|e| e.get("timeout_ms"))
                    .and_then(|t| t.as_f64())
                    .filter(|t| t.is_finite())
                    .map_or(1_000.0, |t| t.clamp(0.0, 60_000.0));
                let threshold = match eou.and_then(|e| e.get("threshold_level")).and_then(|t| t.as_str()) {
                    Some("low") => 0.3,
                    Some("high") => 0.7,
                    _ => 0.5,
                };
                Some(Waits {
                    finished_ms: silence,
                    unsure_ms: silence + timeout / 2.0,
                    unfinished_ms: silence + timeout,
                    threshold,
                    text_threshold: threshold * 0.6,
                })
            }
            _ => None,
        }
    }

    /// The silence needed after a pause that the end-of-turn model (`audio`) and the language
    /// model (`text`) judged as they did, with `words` heard up to it (`None`: not transcribed).
    pub fn silence_ms(&self, audio: Verdict, text: Verdict, words: Option<&str>) -> f64 {
        use Verdict::{Finished, Pending, Unknown};
        // Words that plainly go on keep the turn open. A trailing "and", "the" or "um" does
        // whatever the models say, unless the recogniser heard the sentence close on it ("what
        // it's for."): then the language model judges. A trailing comma, dash or ellipsis, or
        // digits being read out, yield only to a language model sure the message ended there
        // (it reads the words without the recogniser's punctuation, the acoustic cue of a
        // hesitation); after a mark, a message the model finds finished but not surely so waits
        // the unsure silence unless the audio sounds unfinished (the recogniser also ends
        // finished sentences on a comma: "…two pairs of hiking boots," at 0.82–0.90, where an
        // unfinished "…last weekend," is at 0.74–0.87).
        match (words.and_then(trail), text) {
            (Some(Trail::Word), _) => return self.unfinished_ms,
            (Some(Trail::ClosedWord), Unknown | Pending) => return self.unfinished_ms,
            (Some(Trail::Mark), Finished(t)) if t >= SURE_AFTER_MARK => {}
            (Some(Trail::Mark), Finished(t)) if t >= self.text_threshold => {
                return match audio {
                    Finished(a) if a < self.threshold => self.unfinished_ms,
                    _ => self.unsure_ms,
                };
            }
            (Some(Trail::Mark), _) => return self.unfinished_ms,
            (Some(Trail::Number), _) if !matches!(text, Finished(t) if t >= SURE_TEXT) => return self.unfinished_ms,
            _ => {}
        }
        // The audio sounds finished, and sure of it.
        let sounds_done = matches!(audio, Finished(a) if a >= self.threshold.max(0.8));
        match text {
            Finished(t) if t >= self.text_threshold => self.finished_ms,
            // Not sure from the words alone: the audio tips it.
            Finished(t) if t >= self.text_threshold / 6.0 => {
                if sounds_done {
                    self.finished_ms
                } else {
                    self.unsure_ms
                }
            }
            // The words go on; only a sure-sounding ending makes it worth less than the timeout.
            Finished(_) => {
                if sounds_done {
                    self.unsure_ms
                } else {
                    self.unfinished_ms
                }
            }
            Pending => self.unsure_ms,
            // No language model's word on it: the audio and the words decide.
            Unknown => match (audio, words) {
                (Finished(a), Some(_)) if a >= self.threshold => self.finished_ms,
                (Finished(a), None) if a >= self.threshold => self.unsure_ms,
                (Finished(_), Some(w)) if ends_as_question(w) => self.unsure_ms,
                (Finished(_), _) => self.unfinished_ms,
                (Pending | Unknown, _) => self.unsure_ms,
            },
        }
    }
}

/// Words an English statement does not end on: conjunctions, articles, most prepositions,
/// possessives and fillers. (Pronouns, auxiliaries and "that" end short answers — "Thank you",
/// "Yes I do", "I'd like that" — so they are not here; a question may end on anything.)
const GOES_ON: &[&str] = &[
    "and", "or", "but", "because", "cause", "if", "which", "whose", "while", "the", "a", "an", "to", "of", "for",
    "with", "from", "into", "about", "than", "as", "at", "my", "your", "our", "their", "his", "um", "uh", "uhm", "umm",
    "erm", "er", "ah", "also", "plus", "very", "let's",
];

/// Number words, as someone reads out digits.
const NUMBER: &[&str] = &[
    "zero", "oh", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve",
    "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety", "hundred", "thousand", "double",
    "triple", "point", "dash",
];

/// The language model's probability of a finished message that overrules a number being read
/// out.
const SURE_TEXT: f32 = 0.8;
/// ... and trailing punctuation: the recogniser heard the voice stay up ("I bought a coffee
/// machine last week and…" heard as "…last weekend," is a finished sentence to the model, at
/// 0.74–0.87 in the runs of 2026-12-07).
const SURE_AFTER_MARK: f32 = 0.9;

/// How a transcript stops where a sentence cannot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Trail {
    /// On a word after which it goes on ("and", "the", "um").
    Word,
    /// On such a word, but closed with a full stop or an exclamation mark.
    ClosedWord,
    /// On a comma, dash or ellipsis.
    Mark,
    /// Inside a number being read out.
    Number,
}

/// Whether `text` (a transcript so far) stops where a sentence cannot: on a word after which
/// it goes on, on a comma, dash or ellipsis, or inside a number being read out: two or more
/// digits or number words in a row, or a last word of 3 or more digits, perhaps in dashed
/// groups, not closed by a full stop or a question mark (the recogniser fills a number cut by a
/// pause out to a whole one: "My phone number is 555-5555").
pub fn trails_off(text: &str) -> bool {
    trail(text).is_some()
}

/// How `text` stops where a sentence cannot, if it does.
fn trail(text: &str) -> Option<Trail> {
    let text = text.trim();
    if text.ends_with(',') || text.ends_with('-') || text.ends_with("...") || text.ends_with('…') {
        return Some(Trail::Mark);
    }
    let words: Vec<String> = text
        .split_whitespace()
        .map(|w| w.trim_matches(|c: char| !c.is_alphanumeric() && c != '\'').to_lowercase())
        .filter(|w| !w.is_empty())
        .collect();
    let last = words.last()?;
    if GOES_ON.contains(&last.as_str()) && !ends_as_question(text) {
        return Some(if text.ends_with(['.', '!']) { Trail::ClosedWord } else { Trail::Word });
    }
    let numeric = |w: &String| w.chars().all(|c| c.is_ascii_digit()) || NUMBER.contains(&w.as_str());
    let run = words.iter().rev().take_while(|w| numeric(w)).count();
    // Digits, perhaps in groups as the recogniser writes a phone number ("555-212").
    let figures = last.chars().all(|c| c.is_ascii_digit() || c == '-' || c == '–');
    let digits = figures && last.chars().filter(char::is_ascii_digit).count() >= 3;
    (run >= 2 || (digits && !text.ends_with(['.', '!', '?']))).then_some(Trail::Number)
}

/// Whether `text` ends as a question does.
fn ends_as_question(text: &str) -> bool {
    text.trim_end().ends_with('?')
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn detection(kind: &str, extra: serde_json::Value) -> TurnDetection {
        let mut td = TurnDetection { kind: kind.into(), ..TurnDetection::default() };
        if let serde_json::Value::Object(m) = extra {
            td.extra = m;
        }
        td
    }

    #[test]
    fn trailing_words_numbers_and_commas_keep_the_turn_open() {
        for open in [
            "I would like to order two pairs of",
            "and",
            "Can you check my order and",
            "I want to, um",
            "My number is five five five",
            "It's 555 01",
            "My phone number is 555-5555",
            "My phone number is 555-212-1225",
            "Let me think,",
            "So the thing is...",
            "Could you tell me the",
        ] {
            assert!(trails_off(open), "{open:?} goes on");
        }
        for done in [
            "What time do you open?",
            "Thank you.",
            "Two pairs, please.",
            "I'd like two.",
            "Yes I do.",
            "I'd like that.",
            "What are you looking for?",
            "My phone number is 555-212-1225.",
            "Can you call me at 555-5555?",
            "It ended 1-2",
            "No",
            "",
        ] {
            assert!(!trails_off(done), "{done:?} is whole");
        }
    }

    #[test]
    fn eagerness_and_azure_settings_choose_the_waits() {
        let medium = Waits::of(&detection("semantic_vad", json!({}))).unwrap();
        assert_eq!(medium.finished_ms, 200.0);
        let high = Waits::of(&detection("semantic_vad", json!({"eagerness": "high"}))).unwrap();
        let low = Waits::of(&detection("semantic_vad", json!({"eagerness": "low"}))).unwrap();
        assert!(high.unfinished_ms < medium.unfinished_ms && medium.unfinished_ms < low.unfinished_ms);
        assert!(Waits::of(&TurnDetection::default()).is_none(), "server_vad is silence alone");
        let azure = Waits::of(&detection(
            "azure_semantic_vad",
            json!({"end_of_utterance_detection": {"model": "semantic_detection_v1", "timeout_ms": 600}}),
        ))
        .unwrap();
        assert_eq!((azure.finished_ms, azure.unfinished_ms), (500.0, 1_100.0));
        let eou =
            Waits::of(&detection("server_vad", json!({"end_of_utterance_detection": {"threshold_level": "high"}})));
        assert_eq!(eou.map(|w| w.threshold), Some(0.7));
    }

    #[test]
    fn the_witnesses_set_the_silence() {
        use Verdict::{Finished, Pending, Unknown};
        let w = Waits::of(&detection("semantic_vad", json!({}))).unwrap();
        let done = Some("What time do you open?");
        // The language model decides, the audio tips an unsure answer.
        assert_eq!(w.silence_ms(Finished(0.2), Finished(0.9), done), w.finished_ms);
        assert_eq!(w.silence_ms(Finished(0.95), Finished(0.1), Some("Two, please.")), w.finished_ms);
        assert_eq!(w.silence_ms(Finished(0.5), Finished(0.1), Some("Two, please.")), w.unsure_ms);
        assert_eq!(w.silence_ms(Finished(0.97), Finished(0.0), Some("Can you tell me?")), w.unsure_ms);
        assert_eq!(w.silence_ms(Finished(0.6), Finished(0.0), Some("I would like to order.")), w.unfinished_ms);
        assert_eq!(w.silence_ms(Finished(0.9), Pending, done), w.unsure_ms, "the language model is answering");
        // A trailing word keeps it open whatever the models say; a trailing comma or a number
        // being read out yields only to a language model sure the message ended.
        assert_eq!(w.silence_ms(Finished(0.9), Pending, Some("I want to, um")), w.unfinished_ms);
        assert_eq!(w.silence_ms(Finished(0.9), Finished(0.95), Some("Can you check my order and")), w.unfinished_ms);
        assert_eq!(w.silence_ms(Finished(0.9), Finished(0.9), Some("That's what it's for.")), w.finished_ms);
        assert_eq!(w.silence_ms(Finished(0.9), Pending, Some("That's what it's for.")), w.unfinished_ms);
        assert_eq!(w.silence_ms(Finished(0.9), Finished(0.92), Some("two pairs of hiking boots,")), w.finished_ms);
        // ... and waits the unsure silence for one that finds it finished but not surely so,
        // unless the audio sounds unfinished (the audio model is then asked).
        assert_eq!(w.silence_ms(Finished(0.9), Finished(0.48), Some("it was last weekend,")), w.unsure_ms);
        assert_eq!(w.silence_ms(Pending, Finished(0.82), Some("I bought it last weekend,")), w.unsure_ms);
        assert_eq!(w.silence_ms(Finished(0.2), Finished(0.82), Some("I bought it last weekend,")), w.unfinished_ms);
        assert_eq!(w.silence_ms(Finished(0.9), Finished(0.1), Some("I bought it last weekend,")), w.unfinished_ms);
        assert_eq!(w.silence_ms(Finished(0.9), Pending, Some("I bought it last weekend,")), w.unfinished_ms);
        assert_eq!(w.silence_ms(Finished(0.9), Finished(0.82), Some("My number is 555 0142")), w.finished_ms);
        assert_eq!(w.silence_ms(Finished(0.9), Finished(0.5), Some("My number is five five")), w.unfinished_ms);
        // Without a language model: the audio and the words.
        assert_eq!(w.silence_ms(Finished(0.9), Unknown, done), w.finished_ms);
        assert_eq!(w.silence_ms(Finished(0.9), Unknown, None), w.unsure_ms, "the words are still coming");
        assert_eq!(w.silence_ms(Finished(0.2), Unknown, Some("Is it open?")), w.unsure_ms);
        assert_eq!(w.silence_ms(Finished(0.1), Unknown, Some("I want to go")), w.unfinished_ms);
        assert_eq!(w.silence_ms(Unknown, Unknown, Some("Thank you.")), w.unsure_ms, "the words alone");
        assert_eq!(w.silence_ms(Pending, Unknown, None), w.unsure_ms);
    }
}
