//! Backchannels: what a listener says while the other speaks without taking the turn —
//! "mm-hmm", "yeah", "okay", "uh", a cough.
//!
//! With `turn_detection.remove_filler_words` (Voice Live's option), speech that begins while
//! the assistant is speaking is held back: `input_audio_buffer.speech_started` is not sent and
//! the response goes on until a quick transcript shows a word that is not a filler
//! ([`only_fillers`]); then the turn is announced and interrupts as usual. Speech that ends with
//! only fillers (or no words at all, as a cough) while the assistant still speaks is dropped: no
//! events, no item, no response. Once the assistant has finished (or has less than half a second
//! left to play), held speech is a turn like any other: "Yes." answers "Shall I book it?".

/// Words that alone make a backchannel: fillers, acknowledgements and the recogniser's
/// spellings of them. ("No", "wait" and "stop" are not here: they are interruptions.)
const FILLERS: &[&str] = &[
    "ah", "aha", "ahh", "alright", "cool", "eh", "er", "erm", "got", "great", "hm", "hmm", "hmmm", "huh", "i", "it",
    "mhm", "mm", "mmhmm", "mmm", "nice", "oh", "ok", "okay", "right", "see", "sure", "thank", "thanks", "uh", "uhm",
    "um", "umm", "wow", "yeah", "yep", "yes", "you", "yup",
];

/// Whether `text` (a transcript) holds no word but fillers and acknowledgements, or none at all
/// (a cough, a breath; the recogniser's notes such as "(coughs)" or "[BLANK_AUDIO]" are not
/// words). "Mm-hmm.", "Yeah, okay." and "I see." are; "Wait, what time?" is not.
pub fn only_fillers(text: &str) -> bool {
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
        .split(|c: char| c.is_whitespace() || matches!(c, ',' | '.' | '!' | '?' | '…' | '-' | '—' | '–'))
        .filter(|w| !w.starts_with('*'))
        .map(|w| w.chars().filter(|c| c.is_alphanumeric()).collect::<String>().to_lowercase())
        .filter(|w| !w.is_empty())
        .all(|w| FILLERS.contains(&w.as_str()))
}

#[cfg(test)]
mod tests {
    use super::only_fillers;

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
            assert!(only_fillers(backchannel), "{backchannel:?} is a backchannel");
        }
        for question in [
            "Wait, what time do you open?",
            "No.",
            "Stop.",
            "Yeah, but how much is it?",
            "Okay, can you repeat that?",
            "Sorry?",
            "Hold on.",
        ] {
            assert!(!only_fillers(question), "{question:?} interrupts");
        }
    }
}
