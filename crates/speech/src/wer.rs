//! Word error rate, for judging transcripts (tests and benchmarks).
//!
//! Both texts are normalised first, the way ASR evaluations usually are: lower case,
//! punctuation removed (but kept inside numbers such as `59.99` and `10:30`), `-` and `/`
//! between words split them, a few spellings that mean the same word unified, and digits
//! compared one by one (`5423` and "five four two three" are the same four words, as are `6`
//! and "six").

/// A text as the words compared.
pub fn normalized_words(text: &str) -> Vec<String> {
    let lower = text.to_lowercase();
    let chars: Vec<char> = lower.chars().collect();
    let mut cleaned = String::with_capacity(lower.len());
    for (i, &c) in chars.iter().enumerate() {
        let digit_on_both_sides =
            i > 0 && i + 1 < chars.len() && chars[i - 1].is_ascii_digit() && chars[i + 1].is_ascii_digit();
        let keep = c.is_alphanumeric()
            || c == '\''
            || c == '$'
            || c == '%'
            || (matches!(c, '.' | ':' | ',') && digit_on_both_sides);
        cleaned.push(if keep { c } else { ' ' });
    }
    const DIGITS: [&str; 10] = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"];
    let mut words = Vec::new();
    for w in cleaned.split_whitespace() {
        let w = w.trim_matches('\'').replace(',', "");
        if w.is_empty() {
            continue;
        }
        if w.chars().all(|c| c.is_ascii_digit()) {
            words.extend(w.chars().map(String::from));
        } else if let Some(d) = DIGITS.iter().position(|d| *d == w) {
            words.push(d.to_string());
        } else if w == "ok" {
            words.push("okay".to_owned());
        } else {
            words.push(w);
        }
    }
    words
}

/// Word-level edit distance between `reference` and `hypothesis` divided by the reference's
/// word count (0 for two empty texts, 1 per word for an empty reference).
pub fn word_error_rate(reference: &str, hypothesis: &str) -> f64 {
    let r = normalized_words(reference);
    let h = normalized_words(hypothesis);
    if r.is_empty() {
        return h.len() as f64;
    }
    let mut prev: Vec<usize> = (0..=h.len()).collect();
    for (i, rw) in r.iter().enumerate() {
        let mut row = vec![i + 1; h.len() + 1];
        for (j, hw) in h.iter().enumerate() {
            let substitute = prev[j] + usize::from(rw != hw);
            row[j + 1] = substitute.min(prev[j + 1] + 1).min(row[j] + 1);
        }
        prev = row;
    }
    prev[h.len()] as f64 / r.len() as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalisation_keeps_numbers_and_drops_punctuation() {
        assert_eq!(
            normalized_words("Hello, World! It's $59.99 at 10:30."),
            ["hello", "world", "it's", "$59.99", "at", "10:30"]
        );
        assert_eq!(
            normalized_words("state-of-the-art, 1,200 OK"),
            ["state", "of", "the", "art", "1", "2", "0", "0", "okay"]
        );
        assert_eq!(normalized_words("order 5423, size six"), normalized_words("order five four two three size 6"));
    }

    #[test]
    fn counts_substitutions_insertions_and_deletions() {
        assert_eq!(word_error_rate("a b c d", "a b c d"), 0.0);
        assert_eq!(word_error_rate("a b c d", "a x c d"), 0.25);
        assert_eq!(word_error_rate("a b c d", "a b c d e"), 0.25);
        assert_eq!(word_error_rate("a b c d", "a c d"), 0.25);
        assert_eq!(word_error_rate("a b", ""), 1.0);
        assert_eq!(word_error_rate("", ""), 0.0);
    }
}
