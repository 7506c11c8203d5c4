//! Splitting streamed text into phrases to speak as soon as each is complete, and making each
//! phrase speakable: what is sent as the transcript is exactly what the voice says.

/// Words that end in a full stop without ending the sentence.
const ABBREVIATIONS: &[&str] =
    &["dr", "mr", "mrs", "ms", "st", "jr", "sr", "prof", "vs", "no", "e.g", "i.e", "approx", "apt", "ave", "mt", "ft"];

/// Characters of text a phrase needs before a clause (`,` `;` `:`) may end it, once a reply
/// has its first words queued ([`EARLY_CHARS`]): later phrases wait for a fuller clause.
const LATER_CLAUSE: usize = 80;

/// While a reply's phrases so far hold fewer characters than this (about three seconds of
/// speech), its phrases are cut early, so the voice starts as soon as it has a few words and
/// the next phrase is ready before the first has played: at any clause (`,` `;` `:`, "Sure,"),
/// before a conjunction or preposition ([`LINKS`]) once [`EARLY_WORDS`] words came before it
/// ("You can return the blue shoes | to any store"). The model writes far faster than the
/// voice speaks, so after that phrases can wait for whole sentences and clauses.
pub const EARLY_CHARS: usize = 40;
/// Words an early phrase holds before a linking word may end it: fewer, and the cut would
/// split a short verb from its particle or object ("Please look | for it", "Go | to the desk").
const EARLY_WORDS: usize = 3;
/// Words an early phrase may be cut before (English): conjunctions that open a clause and
/// prepositions that open a phrase, where a speaker may pause. Not "of" ("one | of the best"),
/// "or" ("one | or two"), "that" ("check | that for you"), "as", "than" or "like", which bind
/// to the words before them.
const LINKS: &[&str] = &[
    "and",
    "but",
    "because",
    "which",
    "who",
    "where",
    "when",
    "if",
    "while",
    "until",
    "although",
    "unless",
    "for",
    "with",
    "from",
    "to",
    "at",
    "on",
    "in",
    "by",
    "between",
    "during",
    "after",
    "before",
    "about",
    "including",
];

/// The longest phrase, in characters, before it is cut at a word boundary whatever its
/// punctuation: the synthesiser's memory and time grow with a phrase's length, and text that
/// never punctuates (a rambling model, a pasted wall of words) must still be spoken in bounded
/// steps. Early phrases are cut sooner, so the voice starts soon.
pub const EARLY_LONGEST: usize = 120;
/// See [`EARLY_LONGEST`]: the cap for every later phrase.
pub const LATER_LONGEST: usize = 240;

/// Whether the full stop ending `word` ends a sentence.
fn ends_sentence(word: &str, at_line_start: bool) -> bool {
    let w = word.trim_start_matches(|c: char| !c.is_alphanumeric()).trim_end_matches('.');
    let lower = w.to_lowercase();
    if ABBREVIATIONS.contains(&lower.as_str()) {
        return false;
    }
    // An initial ("J. Smith"), or a list number at the start of a line ("1. First").
    let initial = w.chars().count() == 1 && w.chars().all(|c| c.is_uppercase());
    let list_number = at_line_start && !w.is_empty() && w.chars().all(|c| c.is_ascii_digit());
    !initial && !list_number
}

/// Takes the longest prefix of `pending` that ends a sentence (`.`, `!`, `?`, `…`, or a line
/// break, followed by whitespace; not after an abbreviation like "Dr." or "e.g."), or a
/// clause (`,` `;` `:`) once the phrase is long enough that waiting would delay speech. While
/// the reply's phrases so far (`phrased` characters) are under [`EARLY_CHARS`], phrases are
/// cut early: at any clause, and at a word boundary before a linking word. Text that runs
/// past [`EARLY_LONGEST`] / [`LATER_LONGEST`] characters without such a boundary is cut at its
/// last word boundary before the cap (or at the cap inside one overlong word). Returns it
/// [`speakable`], or `None` while no boundary is there yet; a phrase with nothing to say is
/// skipped. Looks at no more than the cap's worth of `pending`, so streaming text into it
/// costs time linear in its length.
pub fn take_phrase(pending: &mut String, phrased: usize) -> Option<String> {
    // A loop over an offset, drained once: text of many empty phrases ("#\n" a hundred
    // thousand times) must cost neither stack nor a copy of the rest per phrase.
    let mut start = 0;
    let phrase = loop {
        let rest = &pending[start..];
        let Some(cut) = phrase_end(rest, phrased < EARLY_CHARS) else { break None };
        let phrase = speakable(&rest[..cut]);
        let after = &rest[cut..];
        start += cut + (after.len() - after.trim_start().len());
        if !phrase.is_empty() {
            break Some(phrase);
        }
    };
    pending.drain(..start);
    phrase
}

/// Where the first phrase of `pending` ends (a byte offset), if it is complete (see
/// [`take_phrase`]); `early` cuts it early.
fn phrase_end(pending: &str, early: bool) -> Option<usize> {
    let clause = if early { 1 } else { LATER_CLAUSE };
    let longest = if early { EARLY_LONGEST } else { LATER_LONGEST };
    let mut word_start = 0;
    let mut line_start = true;
    // Where the last whitespace after a word was: an overlong phrase is cut there.
    let mut last_gap = None;
    let mut words = 0;
    let mut chars = pending.char_indices().enumerate().peekable();
    while let Some((n, (i, c))) = chars.next() {
        if n == longest {
            return Some(last_gap.unwrap_or(i));
        }
        let next_is_space = chars.peek().is_some_and(|(_, (_, n))| n.is_whitespace());
        let end = i + c.len_utf8();
        if c == '\n' {
            return Some(end);
        }
        if c.is_whitespace() {
            let word = pending[word_start..i].trim();
            if !word.is_empty() {
                // An early phrase ends before a linking word that follows enough words (markdown
                // and emoji are no words).
                if early && words >= EARLY_WORDS && LINKS.contains(&word.to_lowercase().as_str()) {
                    return last_gap;
                }
                if word.chars().any(char::is_alphanumeric) {
                    words += 1;
                }
                line_start = false;
                last_gap = Some(i);
            }
            word_start = end;
            continue;
        }
        // Full-width marks (Chinese, Japanese) end a sentence or clause with no space after.
        let ends_here = (matches!(c, '!' | '?' | '…') && next_is_space)
            || matches!(c, '。' | '！' | '？')
            || (c == '.' && next_is_space && ends_sentence(&pending[word_start..end], line_start))
            || (matches!(c, ',' | ';' | ':') && next_is_space && n + 1 >= clause)
            || (matches!(c, '，' | '；' | '：' | '、') && n + 1 >= clause);
        if ends_here {
            return Some(end);
        }
    }
    None
}

/// Splits the rest of a reply (`pending` once the text is complete, after `phrased`
/// characters of phrases) into phrases of at most [`LATER_LONGEST`] characters (or
/// [`EARLY_LONGEST`] while early), cut at sentence and clause ends where there are some and at
/// word boundaries where there are not; phrases with nothing to say are skipped.
pub fn take_rest(pending: &mut String, mut phrased: usize) -> Vec<String> {
    let mut phrases = Vec::new();
    while let Some(phrase) = take_phrase(pending, phrased) {
        phrased += phrase.chars().count();
        phrases.push(phrase);
    }
    let rest = speakable(&std::mem::take(pending));
    if !rest.is_empty() {
        phrases.push(rest);
    }
    phrases
}

/// Whether `c` is an emoji or a pictograph (or a joiner / variation selector of one).
fn is_emoji(c: char) -> bool {
    matches!(c as u32,
        0x1F000..=0x1FAFF | 0x2600..=0x27BF | 0x2B00..=0x2BFF | 0xFE00..=0xFE0F | 0x200D | 0x20E3 | 0xE0020..=0xE007F)
}

/// `text` as a voice should say it, and as the transcript should show it: markdown (emphasis,
/// code marks, headings, list markers, links) and emoji removed, whitespace collapsed.
pub fn speakable(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for line in text.lines() {
        let mut line = line.trim_start();
        line = line.trim_start_matches('#').trim_start();
        for marker in ["- ", "* ", "+ ", "> "] {
            if let Some(rest) = line.strip_prefix(marker) {
                line = rest;
            }
        }
        let digits = line.chars().take_while(char::is_ascii_digit).count();
        if digits > 0 && line[digits..].starts_with(". ") {
            line = &line[digits + 2..];
        }
        // Links: [text](url) → text.
        let mut rest = line;
        let mut unlinked = String::new();
        while let Some(open) = rest.find('[') {
            let Some(close) = rest[open..].find("](").map(|c| open + c) else { break };
            let Some(end) = rest[close..].find(')').map(|e| close + e) else { break };
            unlinked.push_str(&rest[..open]);
            unlinked.push_str(&rest[open + 1..close]);
            rest = &rest[end + 1..];
        }
        unlinked.push_str(rest);
        let cleaned: String = unlinked
            .replace("**", "")
            .replace("__", "")
            .chars()
            .filter(|c| !matches!(c, '`' | '*') && !is_emoji(*c))
            .collect();
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(&cleaned);
    }
    let mut joined = String::with_capacity(out.len());
    for w in out.split_whitespace() {
        // _emphasis_ loses its underscores; underscores inside a word (ord_555) stay.
        let core_end = w.trim_end_matches(['.', ',', '!', '?', ';', ':']).len();
        let (core, punctuation) = w.split_at(core_end);
        let word = format!("{}{punctuation}", core.trim_matches('_'));
        if word.is_empty() {
            continue;
        }
        let bare_punctuation = core.trim_matches('_').is_empty();
        if !joined.is_empty() && !bare_punctuation {
            joined.push(' ');
        }
        joined.push_str(&word);
    }
    joined
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_on_sentence_ends_only_when_followed_by_space() {
        let mut s = String::from("It costs $59.99 today. Want it? Yes");
        assert_eq!(take_phrase(&mut s, EARLY_CHARS).as_deref(), Some("It costs $59.99 today."));
        assert_eq!(take_phrase(&mut s, EARLY_CHARS).as_deref(), Some("Want it?"));
        assert_eq!(take_phrase(&mut s, EARLY_CHARS), None);
        assert_eq!(s, "Yes");
    }

    #[test]
    fn abbreviations_initials_and_ids_do_not_end_sentences() {
        let mut s = String::from(
            "Dr. Lee and Mr. J. Smith use e.g. tents, i.e. shelter. Order No. 5 ships to 12 Main St. Boston. Next",
        );
        assert_eq!(
            take_phrase(&mut s, EARLY_CHARS).as_deref(),
            Some("Dr. Lee and Mr. J. Smith use e.g. tents, i.e. shelter.")
        );
        assert_eq!(take_phrase(&mut s, EARLY_CHARS).as_deref(), Some("Order No. 5 ships to 12 Main St. Boston."));
        let mut id = String::from("Your order ORD.5589 is ready. ");
        assert_eq!(take_phrase(&mut id, EARLY_CHARS).as_deref(), Some("Your order ORD.5589 is ready."));
    }

    #[test]
    fn early_phrases_are_cut_at_any_clause_later_ones_wait() {
        let mut first = String::from("Sure, I can help you with that order, it ships today");
        assert_eq!(take_phrase(&mut first, 0).as_deref(), Some("Sure,"));
        let mut later = String::from("Sure, I can help you with that order, it ships today");
        assert_eq!(take_phrase(&mut later, EARLY_CHARS), None);
        let mut long = "word ".repeat(20) + ", and more";
        let phrase = take_phrase(&mut long, EARLY_CHARS).unwrap();
        assert!(phrase.ends_with(','));
        assert_eq!(long, "and more");
    }

    #[test]
    fn early_phrases_end_before_a_linking_word_after_a_few_words() {
        let mut s = String::from("Your parcel left our depot today and arrives on Friday, if the weather holds. ");
        assert_eq!(take_phrase(&mut s, 0).as_deref(), Some("Your parcel left our depot today"));
        assert_eq!(take_phrase(&mut s, 32).as_deref(), Some("and arrives on Friday,"));
        assert_eq!(take_phrase(&mut s, 54).as_deref(), Some("if the weather holds."));
        let mut place = String::from("You can return the blue shoes to any store. ");
        assert_eq!(take_phrase(&mut place, 0).as_deref(), Some("You can return the blue shoes"));
        // Too few words before the linking word: it stays, with the verb it may belong to ("look
        // for"); "of" and "that" are no cut; a word that only starts like a linking
        // word ("whenever") is none; a linking word is only known once it is complete.
        let mut few = String::from("Black and white, both. ");
        assert_eq!(take_phrase(&mut few, 0).as_deref(), Some("Black and white,"));
        let mut verbs = String::from("Please look for that order ");
        assert_eq!(take_phrase(&mut verbs, 0), None);
        let mut bound = String::from("It is one of the best that we have. ");
        assert_eq!(take_phrase(&mut bound, 0).as_deref(), Some("It is one of the best that we have."));
        let mut streaming = String::from("It will be ready when");
        assert_eq!(take_phrase(&mut streaming, 0), None, "'when' may be 'whenever'");
        streaming.push_str("ever you like ");
        assert_eq!(take_phrase(&mut streaming, 0), None);
        let mut streaming = String::from("I will call you back when");
        assert_eq!(take_phrase(&mut streaming, 0), None);
        streaming.push_str(" it");
        assert_eq!(take_phrase(&mut streaming, 0).as_deref(), Some("I will call you back"));
        assert_eq!(streaming, "when it");
        // Markdown and emoji are no words.
        let mut marked = "- **Alpine** 🎉 jacket and more".to_owned();
        assert_eq!(take_phrase(&mut marked, 0), None, "two words before 'and'");
        // take_rest cuts early only while the reply is young (characters, not bytes).
        let mut rest = String::from("Yes, the jackets with hoods are very warm, and the coats with fur are warmer");
        assert_eq!(
            take_rest(&mut rest, 0),
            ["Yes,", "the jackets with hoods are very warm,", "and the coats with fur are warmer"]
        );
        let mut cyrillic = String::from("Да, это очень тёплая куртка, и она лёгкая, правда");
        assert_eq!(take_rest(&mut cyrillic, 0), ["Да,", "это очень тёплая куртка,", "и она лёгкая,", "правда"]);
        // Full-width marks end phrases without a space after them.
        let mut chinese = String::from("好的，我们周六九点开门。欢迎");
        assert_eq!(take_phrase(&mut chinese, 0).as_deref(), Some("好的，"));
        assert_eq!(take_phrase(&mut chinese, 3).as_deref(), Some("我们周六九点开门。"));
        assert_eq!(chinese, "欢迎");
    }

    #[test]
    fn text_without_punctuation_is_cut_at_word_boundaries_under_the_cap() {
        let mut s = "hello ".repeat(1_000);
        let first = take_phrase(&mut s, 0).unwrap();
        assert!(first.chars().count() <= EARLY_LONGEST && first.ends_with("hello"), "{first:?}");
        let later = take_phrase(&mut s, EARLY_CHARS).unwrap();
        assert!(later.chars().count() <= LATER_LONGEST && later.chars().count() > LATER_LONGEST - 10, "{later:?}");
        let rest = take_rest(&mut s, EARLY_CHARS);
        assert!(rest.iter().all(|p| p.chars().count() <= LATER_LONGEST && p.split(' ').all(|w| w == "hello")));
        let words: usize = [&first, &later].into_iter().chain(&rest).map(|p| p.split(' ').count()).sum();
        assert_eq!(words, 1_000, "no word lost or split");
        // One endless word is cut at the cap; multi-byte characters stay whole.
        let mut word = "é".repeat(1_000);
        let phrase = take_phrase(&mut word, EARLY_CHARS).unwrap();
        assert_eq!(phrase.chars().count(), LATER_LONGEST);
        assert_eq!(word.chars().count(), 1_000 - LATER_LONGEST);
        // A hundred thousand empty phrases are skipped without recursion.
        let mut empty = "#\n".repeat(100_000) + "Hello there. ";
        assert_eq!(take_phrase(&mut empty, EARLY_CHARS).as_deref(), Some("Hello there."));
        // Short unfinished text still waits for more.
        let mut short = String::from("hello there my friend");
        assert_eq!(take_phrase(&mut short, EARLY_CHARS), None);
    }

    #[test]
    fn newlines_end_phrases_and_blank_lines_are_skipped() {
        let mut s = String::from("First line\n\nSecond");
        assert_eq!(take_phrase(&mut s, EARLY_CHARS).as_deref(), Some("First line"));
        assert_eq!(take_phrase(&mut s, EARLY_CHARS), None);
        assert_eq!(s, "Second");
    }

    #[test]
    fn markdown_and_emoji_are_not_spoken() {
        assert_eq!(
            speakable("**Great** news 🎉! Your `ORD-12` _ships_ today 👍🏽."),
            "Great news! Your ORD-12 ships today."
        );
        assert_eq!(speakable("Order ord_555 is here"), "Order ord_555 is here");
        assert_eq!(
            speakable("## Options\n- The **Trailblazer** jacket\n2. See [our site](https://x.example)"),
            "Options The Trailblazer jacket See our site"
        );
        let mut list = String::from("1. First item\n2. Second item\n");
        assert_eq!(take_phrase(&mut list, EARLY_CHARS).as_deref(), Some("First item"));
        assert_eq!(take_phrase(&mut list, EARLY_CHARS).as_deref(), Some("Second item"));
        let mut only_emoji = String::from("🎉🎉\nHello there. ");
        assert_eq!(take_phrase(&mut only_emoji, 0).as_deref(), Some("Hello there."));
    }
}
