//! Backchannels: what a listener says while the other speaks without taking the turn —
//! "mm-hmm", "yeah", "okay", "uh", a cough.
//!
//! With `turn_detection.remove_filler_words` (Voice Live's option), speech that begins while
//! the assistant is speaking is held back: `input_audio_buffer.speech_started` is not sent and
//! the response goes on while quick transcripts of the speech are read ([`judge`]):
//!
//! - words that take the turn ("wait", "no", "sorry", a question's first word) or speech that
//!   has gone on for [`SHORT_MS`] with words that are not fillers: the turn is announced and
//!   interrupts as usual;
//! - only fillers and acknowledgements, no words at all (a cough, a breath), or a short sound
//!   whose few words take nothing (the recogniser often makes "in a month" of a hummed "mm-hmm"):
//!   a backchannel so far. If the speech ends so (the turn detector's silence) while the
//!   assistant still speaks, it is dropped: no events, no item, no response. A question pauses
//!   between its words, and its next words may still take the turn.
//!
//! Once the assistant has finished (or has less than half a second left to play), held speech
//! is a turn like any other: "Yes." answers "Shall I book it?".

/// Shorter speech (from its start to its last voiced frame) whose words neither are fillers nor
/// take the turn is taken for a mis-heard backchannel, in ms.
pub const SHORT_MS: f64 = 800.0;

/// Words that alone make a backchannel: fillers, acknowledgements and the recogniser's
/// spellings of them. ("No", "wait" and "stop" are not here: they are interruptions.)
const FILLERS: &[&str] = &[
    "ah", "aha", "ahh", "alright", "cool", "eh", "er", "erm", "got", "great", "hm", "hmm", "hmmm", "huh", "i", "it",
    "mhm", "mm", "mmhmm", "mmm", "nice", "oh", "ok", "okay", "right", "see", "sure", "thank", "thanks", "uh", "uhm",
    "um", "umm", "wow", "yeah", "yep", "yes", "you", "yup",
];

/// Words that take the turn however short the speech, wherever they are: objections, requests
/// to stop or repeat, and the words questions begin with.
const TAKES_TURN: &[&str] = &[
    "no", "nope", "not", "don't", "stop", "wait", "hold", "hang", "sorry", "pardon", "excuse", "hey", "hello", "but",
    "actually", "cancel", "repeat", "again", "help", "agent", "human", "person", "operator", "what", "what's", "when",
    "where", "which", "who", "why", "how", "can", "could", "would", "will", "should", "is", "are", "do", "does", "did",
    "may", "next", "louder", "slower",
];

/// The verbs requests begin with ("Name the days…", "Tell me…", "Say that again"): they take
/// the turn as the first word only. After another word they are more often the recogniser's
/// guess at a backchannel cut short ("I say" for the first 0.6 s of "I see").
const REQUESTS: &[&str] = &[
    "tell", "give", "show", "list", "name", "say", "explain", "describe", "find", "check", "book", "send", "read",
    "skip", "speak",
];

/// What the words of speech held back while the assistant speaks make of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Held {
    /// It takes the turn: announce it, interrupt.
    Turn,
    /// A backchannel: drop it once it has ended.
    Backchannel,
}

/// What `text`, a transcript of held-back speech `spoken_ms` long (start to last voiced frame),
/// makes of it. The recogniser's notes ("(coughs)", "[BLANK_AUDIO]", "*cough*") are not words.
pub fn judge(text: &str, spoken_ms: f64) -> Held {
    let words = words(text);
    if words.iter().all(|w| FILLERS.contains(&w.as_str())) {
        return Held::Backchannel;
    }
    let request = words.first().is_some_and(|w| REQUESTS.contains(&w.as_str()));
    if request || words.iter().any(|w| TAKES_TURN.contains(&w.as_str())) || spoken_ms >= SHORT_MS {
        return Held::Turn;
    }
    Held::Backchannel
}

/// The spoken words of a transcript, lower case, without punctuation or the recogniser's notes.
fn words(text: &str) -> Vec<String> {
    let mut spoken = String::with_capacity(text.len());
    let mut depth = 0usize;
    for c in text.chars() {
        match c {
            '(' | '[' | '{' | '<' => depth += 1,
            ')' | ']' | '}' | '>' => depth = depth.saturating_sub(1),
            _ if depth == 0 => spoken.push(c),
            _ => {}
        }
    }
    spoken
        .split(|c: char| c.is_whitespace() || matches!(c, ',' | '.' | '!' | '?' | '…' | '-' | '—' | '–' | '"'))
        .filter(|w| !w.starts_with('*'))
        .map(|w| w.chars().filter(|c| c.is_alphanumeric() || *c == '\'').collect::<String>().to_lowercase())
        .filter(|w| !w.is_empty())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::{Held, judge};

    #[test]
    fn backchannels_are_told_from_interruptions() {
        for backchannel in [
            "Mm-hmm.",
            "Mhm",
            "Yeah.",
            "Yeah, okay.",
            "Uh-huh.",
            "OK",
            "Hmm?",
            "I see.",
            "Got it.",
            "Yeah—okay.",
            "Thank you.",
            "(coughs)",
            "[BLANK_AUDIO]",
            "*cough*",
            "",
            " ... ",
        ] {
            assert_eq!(judge(backchannel, 1_500.0), Held::Backchannel, "{backchannel:?} is a backchannel");
        }
        for question in [
            "Wait, what time do you open?",
            "No.",
            "Stop.",
            "Yeah, but how much is it?",
            "Okay, can you repeat that?",
            "Sorry?",
            "Hold on.",
            "Name the days",
            "Tell me more.",
            "Say that again.",
            "Okay, what's next?",
        ] {
            assert_eq!(judge(question, 400.0), Held::Turn, "{question:?} interrupts");
        }
        // A short hum the recogniser made words of is a backchannel; the same words spoken for
        // longer are a turn.
        assert_eq!(judge("in a month,", 500.0), Held::Backchannel);
        assert_eq!(judge("I meant the blue ones.", 500.0), Held::Backchannel);
        assert_eq!(judge("I meant the blue ones.", 900.0), Held::Turn);
        // A request's verb after another word: the start of "I see", heard as "I say".
        assert_eq!(judge("I say", 600.0), Held::Backchannel);
    }
}
