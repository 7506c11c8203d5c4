//! Splitting streamed text into phrases to speak as soon as each is complete.

/// Takes the longest prefix of `pending` that ends a sentence (`.`, `!`, `?`, `…`, or a line
/// break, followed by whitespace), or a clause (`,` `;` `:`) once the text is long enough that
/// waiting would delay speech. Returns `None` while no boundary is there yet.
pub fn take_phrase(pending: &mut String) -> Option<String> {
    let mut cut = None;
    let mut chars = pending.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        let next_is_space = chars.peek().is_some_and(|(_, n)| n.is_whitespace());
        let end = i + c.len_utf8();
        if c == '\n' || matches!(c, '.' | '!' | '?' | '…') && next_is_space {
            cut = Some(end);
            break;
        }
        if matches!(c, ',' | ';' | ':') && next_is_space && end >= 80 {
            cut = Some(end);
            break;
        }
    }
    let cut = cut?;
    let phrase: String = pending.drain(..cut).collect();
    let trimmed = pending.trim_start().len();
    pending.drain(..pending.len() - trimmed);
    let phrase = phrase.trim().to_owned();
    if phrase.is_empty() { take_phrase(pending) } else { Some(phrase) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_on_sentence_ends_only_when_followed_by_space() {
        let mut s = String::from("It costs $59.99 today. Want it? Yes");
        assert_eq!(take_phrase(&mut s).as_deref(), Some("It costs $59.99 today."));
        assert_eq!(take_phrase(&mut s).as_deref(), Some("Want it?"));
        assert_eq!(take_phrase(&mut s), None);
        assert_eq!(s, "Yes");
    }

    #[test]
    fn long_clauses_split_at_commas_short_ones_do_not() {
        let mut short = String::from("Well, ");
        assert_eq!(take_phrase(&mut short), None);
        let mut long = "word ".repeat(20) + ", and more";
        let phrase = take_phrase(&mut long).unwrap();
        assert!(phrase.ends_with(','));
        assert_eq!(long, "and more");
    }

    #[test]
    fn newlines_end_phrases_and_blank_lines_are_skipped() {
        let mut s = String::from("First line\n\nSecond");
        assert_eq!(take_phrase(&mut s).as_deref(), Some("First line"));
        assert_eq!(take_phrase(&mut s), None);
        assert_eq!(s, "Second");
    }
}
