//! What the turn-taking benchmarks' callers say: a sentence in one of the voices, optionally with
//! its pause after a word stretched to a set length (shared by the benchmark binaries).

use crate::voices::at_24k;
use brazen_speech::Voice;

/// The questions of a conversation.
#[allow(dead_code)] // not every benchmark asks them
pub const QUESTIONS: [&str; 6] = [
    "What time do you open on Saturday?",
    "Do you ship to Canada?",
    "I want to return the blue running shoes.",
    "Which jackets are warm enough for winter?",
    "How long does delivery take?",
    "Can I pay with a gift card?",
];

/// Sentences written with a hesitation ("..."), and the word it follows: the voice pauses there
/// with the intonation of a sentence going on, and the pause is stretched to the length tested.
pub const PAUSED: [(&str, &str); 5] = [
    ("I would like to order... two pairs of hiking boots.", "order..."),
    ("Can you tell me... when my package will arrive?", "me..."),
    ("I am looking for... a warm jacket for my daughter.", "for..."),
    ("My phone number is... five five five, two one two, three four.", "is..."),
    ("I bought a coffee machine last week and... it stopped working.", "and..."),
];

/// `text` said by `voice`/`name` at 24 kHz, with `ms` of silence after the word `after` when
/// `pause` is `Some((after, ms))`; and a label naming the voice, the text and the pause.
pub fn spoken(voice: &dyn Voice, name: &str, text: &str, pause: Option<(&str, usize)>) -> (Vec<i16>, String) {
    let speech = voice.speak_all(text, name, 1.0).expect("the voice speaks");
    let mut samples = speech.samples.clone();
    if let Some((after, ms)) = pause {
        let word = speech.words(text).into_iter().find(|w| w.text == after).expect("the word is spoken");
        let paused =
            brazen_testkit::hesitation::stretch_pause(&mut samples, speech.sample_rate, word.start + word.len, ms);
        assert!(paused > 0, "{name} made no pause after {after:?} in {text:?}");
    }
    let label = match pause {
        Some((after, ms)) => format!("{name}: {text} [{ms} ms after '{after}']"),
        None => format!("{name}: {text}"),
    };
    (at_24k(&samples, speech.sample_rate), label)
}
