//! What people say, made easier for a small model to read: numbers spoken as words become
//! digits ("sixty" → 60, "one hundred fifty" → 150, "three eighteen" → 318, "seven seven three
//! one" → 7731), and ids spelt out character by character are joined ("a b 1 2 3 4" →
//! AB1234, "q x 9 8" → QX98). Applied to user messages before the model reads them; the
//! transcript the client sees is unchanged.

/// Units and teens.
fn small(word: &str) -> Option<u64> {
    const WORDS: [&str; 20] = [
        "zero",
        "one",
        "two",
        "three",
        "four",
        "five",
        "six",
        "seven",
        "eight",
        "nine",
        "ten",
        "eleven",
        "twelve",
        "thirteen",
        "fourteen",
        "fifteen",
        "sixteen",
        "seventeen",
        "eighteen",
        "nineteen",
    ];
    WORDS.iter().position(|w| *w == word).map(|n| n as u64)
}

/// Twenty, thirty, … ninety.
fn tens(word: &str) -> Option<u64> {
    const WORDS: [&str; 8] = ["twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"];
    WORDS.iter().position(|w| *w == word).map(|n| 20 + 10 * n as u64)
}

/// A token split into leading punctuation, a lower-cased core, and trailing punctuation.
struct Token<'a> {
    lead: &'a str,
    core: String,
    trail: &'a str,
    raw: &'a str,
}

fn token(raw: &str) -> Token<'_> {
    let start = raw.find(|c: char| c.is_alphanumeric()).unwrap_or(raw.len());
    let end = raw
        .rfind(|c: char| c.is_alphanumeric())
        .map_or(start, |i| i + raw[i..].chars().next().map_or(1, char::len_utf8));
    Token { lead: &raw[..start], core: raw[start..end.max(start)].to_lowercase(), trail: &raw[end.max(start)..], raw }
}

fn is_number_word(core: &str) -> bool {
    small(core).is_some() || tens(core).is_some() || core == "hundred" || core == "thousand"
}

/// Reads one number ("forty five", "one hundred and fifty", "two thousand twenty") from the
/// start of `words`; returns it and the words used.
fn group(words: &[String]) -> Option<(u64, usize)> {
    let mut i = 0;
    let below_hundred = |words: &[String], i: &mut usize| -> Option<u64> {
        let w = words.get(*i)?;
        if let Some(t) = tens(w) {
            *i += 1;
            match words.get(*i).and_then(|u| small(u)).filter(|u| (1..10).contains(u)) {
                Some(u) => {
                    *i += 1;
                    Some(t + u)
                }
                None => Some(t),
            }
        } else if let Some(s) = small(w) {
            *i += 1;
            Some(s)
        } else {
            None
        }
    };
    let hundreds = |words: &[String], i: &mut usize| -> Option<u64> {
        let lead = if words.get(*i).map(String::as_str) == Some("a")
            && matches!(words.get(*i + 1).map(String::as_str), Some("hundred" | "thousand"))
        {
            *i += 1;
            1
        } else {
            below_hundred(words, i)?
        };
        if words.get(*i).map(String::as_str) != Some("hundred") || lead >= 10 {
            return Some(lead);
        }
        *i += 1;
        let mut value = lead * 100;
        if words.get(*i).map(String::as_str) == Some("and")
            && words.get(*i + 1).is_some_and(|w| small(w).is_some() || tens(w).is_some())
        {
            *i += 1;
        }
        if let Some(rest) = below_hundred(words, i) {
            value += rest;
        }
        Some(value)
    };
    let mut value = hundreds(words, &mut i)?;
    if words.get(i).map(String::as_str) == Some("thousand") {
        i += 1;
        value *= 1000;
        if let Some(rest) = hundreds(words, &mut i) {
            value += rest;
        }
    }
    Some((value, i))
}

/// Number words in `text` as digits; spelt-out ids joined; thousands separators dropped
/// ("7,731" → 7731: recognisers write numbers that way, and ids are read out as numbers); a
/// "too" that a recogniser wrote for "two" before what is being bought made 2.
pub fn normalize(text: &str) -> String {
    join_spelled(&numbers_as_digits(&two_not_too(&without_separators(text))))
}

/// "can I get too red beanies" → "can I get two red beanies": small recognisers hear a quantity
/// "two" as "too". Only right after a verb of buying, when a plural noun follows within four
/// words, and not before a word that "too" qualifies ("get too many things", "take too long").
fn two_not_too(text: &str) -> String {
    const BUYING: [&str; 8] = ["get", "take", "buy", "order", "have", "want", "need", "like"];
    const QUALIFIED: [&str; 12] =
        ["many", "much", "few", "little", "long", "late", "early", "soon", "far", "big", "small", "expensive"];
    let raw: Vec<&str> = text.split_whitespace().collect();
    let tokens: Vec<Token> = raw.iter().map(|r| token(r)).collect();
    let mut out: Vec<String> = raw.iter().map(|r| r.to_string()).collect();
    for i in 1..tokens.len() {
        let t = &tokens[i];
        let after_buying = BUYING.contains(&tokens[i - 1].core.as_str()) && tokens[i - 1].trail.is_empty();
        if t.core != "too" || !t.trail.is_empty() || !after_buying {
            continue;
        }
        let Some(next) = tokens.get(i + 1) else { continue };
        if QUALIFIED.contains(&next.core.as_str()) {
            continue;
        }
        // The noun phrase after it, up to punctuation: a plural within four words.
        let mut plural = false;
        for n in &tokens[i + 1..tokens.len().min(i + 5)] {
            if n.core.len() > 3 && n.core.ends_with('s') && !n.core.ends_with("ss") {
                plural = true;
                break;
            }
            if !n.trail.is_empty() {
                break;
            }
        }
        if plural {
            out[i] = format!("{}two{}", t.lead, t.trail);
        }
    }
    out.join(" ")
}

/// Removes the commas of digit groups: "7,731" and "1,250,000" lose them, "5, 6" and "1,2" keep them.
fn without_separators(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    for (i, c) in chars.iter().enumerate() {
        if *c == ',' && i > 0 && chars[i - 1].is_ascii_digit() {
            let group = chars[i + 1..].iter().take_while(|d| d.is_ascii_digit()).count();
            if group == 3 {
                continue;
            }
        }
        out.push(*c);
    }
    out
}

fn numbers_as_digits(text: &str) -> String {
    let raw: Vec<&str> = text.split_whitespace().collect();
    let tokens: Vec<Token> = raw.iter().map(|r| token(r)).collect();
    let mut out: Vec<String> = Vec::new();
    let mut i = 0;
    while i < tokens.len() {
        // A run of number words ("a" only before hundred/thousand, "and" only after hundred),
        // broken at punctuation.
        let mut end = i;
        while end < tokens.len() {
            let t = &tokens[end];
            let ok = is_number_word(&t.core)
                || (t.core == "a" && tokens.get(end + 1).is_some_and(|n| n.core == "hundred" || n.core == "thousand"))
                || (t.core == "and" && end > i && tokens[end - 1].core == "hundred");
            if !ok || (end > i && (!tokens[end - 1].trail.is_empty() || !t.lead.is_empty())) {
                break;
            }
            end += 1;
        }
        let words: Vec<String> = tokens[i..end].iter().map(|t| t.core.clone()).collect();
        // A lone "one" is usually a pronoun ("the first one"); a lone "and"/"a" is a word.
        let keep = words.is_empty() || (words.len() == 1 && (words[0] == "one" || !is_number_word(&words[0])));
        if keep {
            out.push(tokens[i].raw.to_owned());
            i += 1;
            continue;
        }
        // Consecutive numbers are digits of one ("three eighteen" → 318, "seven seven three
        // one" → 7731), except that a single digit after a two-digit part starts a new number
        // ("three eighteen two of them" → 318 2).
        let mut digits = String::new();
        let mut at = 0;
        let mut previous = None;
        while at < words.len() {
            match group(&words[at..]) {
                Some((n, used)) if used > 0 => {
                    if previous.is_some_and(|p| p >= 10) && n < 10 {
                        digits.push(' ');
                    }
                    digits.push_str(&n.to_string());
                    previous = Some(n);
                    at += used;
                }
                _ => break,
            }
        }
        if at == 0 {
            out.push(tokens[i].raw.to_owned());
            i += 1;
            continue;
        }
        out.push(format!("{}{}{}", tokens[i].lead, digits, tokens[i + at - 1].trail));
        i += at;
    }
    out.join(" ")
}

/// Joins spelt-out ids: a run of single letters and digits with at least two digits ("q x 9 8"
/// → QX98, "q 2 w 8 e 4" → Q2W8E4, "7 7 3 1" → 7731), a spoken "underscore" inside it or
/// before it included ("ord underscore k 4 l 5" and "o r d underscore k 4 l 5" → ORD_K4L5), and
/// "one" read as 1 inside a run ("r one" at the end of "q 2 w 8 r one").
fn join_spelled(text: &str) -> String {
    let raw: Vec<&str> = text.split_whitespace().collect();
    let bare = |t: &str| t.trim_end_matches([',', '.', '?', '!']).to_owned();
    let part = |t: &str| -> Option<String> {
        let b = bare(t);
        if b.len() == 1 && b.chars().all(|c| c.is_ascii_alphanumeric()) {
            Some(b)
        } else if b.eq_ignore_ascii_case("underscore") {
            Some("_".into())
        } else {
            None
        }
    };
    let mut out: Vec<String> = Vec::new();
    let mut i = 0;
    while i < raw.len() {
        // The run from here; a part with punctuation after it ends the run.
        let mut j = i;
        let mut joined = String::new();
        while j < raw.len() {
            // "one" is left a word elsewhere ("the first one"); inside a run it is a digit.
            let p = part(raw[j]).or_else(|| (j > i && bare(raw[j]).eq_ignore_ascii_case("one")).then(|| "1".into()));
            let Some(p) = p else { break };
            joined.push_str(&p);
            j += 1;
            if bare(raw[j - 1]).len() != raw[j - 1].len() {
                break;
            }
        }
        if joined.chars().filter(char::is_ascii_digit).count() < 2 {
            out.push(raw[i].to_owned());
            i += 1;
            continue;
        }
        let trail = &raw[j - 1][bare(raw[j - 1]).len()..];
        let mut id = joined.to_uppercase();
        // "ord underscore …": the word before the underscore is the id's prefix.
        if id.starts_with('_')
            && let Some(prefix) = out.pop_if(|w| w.len() <= 5 && w.chars().all(|c| c.is_ascii_alphabetic()))
        {
            id = format!("{}{id}", prefix.to_uppercase());
        }
        out.push(format!("{id}{trail}"));
        i = j;
    }
    out.join(" ")
}

#[cfg(test)]
mod tests {
    use super::normalize;

    #[test]
    fn spoken_numbers_become_digits() {
        for (said, read) in [
            ("running shoes under sixty dollars", "running shoes under 60 dollars"),
            ("less than a hundred bucks", "less than 100 bucks"),
            ("under one hundred fifty dollars", "under 150 dollars"),
            ("nothing over forty five dollars", "nothing over 45 dollars"),
            ("product three eighteen two of them please", "product 318 2 of them please"),
            ("one of item eleven eighty seven", "one of item 1187"),
            ("order number seven seven three one", "order number 7731"),
            ("two thousand and twenty", "2000 and 20"),
            ("two thousand twenty", "2020"),
            ("one hundred and five", "105"),
            ("the first one, please", "the first one, please"),
            ("a cat and a dog", "a cat and a dog"),
            ("five, six", "5, 6"),
            ("Sixty.", "60."),
        ] {
            assert_eq!(normalize(said), read, "{said}");
        }
    }

    #[test]
    fn a_quantity_heard_as_too_is_two() {
        for (said, read) in [
            ("Can I get too red knit beanies, please?", "Can I get 2 red knit beanies, please?"),
            ("i'll take too of the wool scarves", "i'll take 2 of the wool scarves"),
            ("I want too pairs of jeans", "I want 2 pairs of jeans"),
            ("I don't want to get too many things", "I don't want to get too many things"),
            ("it would take too long to ship", "it would take too long to ship"),
            ("me too", "me too"),
            ("they are too expensive shoes", "they are too expensive shoes"),
            ("I want too. Shoes", "I want too. Shoes"),
            ("i don't want to get too cold in winter", "i don't want to get too cold in winter"),
        ] {
            assert_eq!(normalize(said), read, "{said}");
        }
    }

    #[test]
    fn spelled_ids_are_joined() {
        for (said, read) in [
            ("ship order a b 1 2 3 4 to 12 main street", "ship order AB1234 to 12 main street"),
            ("status of order q x 9 8", "status of order QX98"),
            ("where is my order number 7 7 3 1", "where is my order number 7731"),
            ("track order b 7 7", "track order B77"),
            ("i want a 2 pack", "i want a 2 pack"),
            ("order 2 2 0 8.", "order 2208."),
            ("item 5 0 2 please", "item 502 please"),
            ("Where is my order 7,731?", "Where is my order 7731?"),
            ("its ord underscore q two w eight e four r one where is it", "its ORD_Q2W8E4R1 where is it"),
            ("sorry its o r d seven k two m nine q x four", "sorry its ORD7K2M9QX4"),
            ("o r d underscore k 4 l 5, thanks", "ORD_K4L5, thanks"),
            ("order m five n six b seven v eight when", "order M5N6B7V8 when"),
            ("i said underscore twice", "i said underscore twice"),
            ("can i get a b c", "can i get a b c"),
            ("a 1,250,000 dollar tent, 5, 6 or 1,2", "a 1250000 dollar tent, 5, 6 or 1,2"),
        ] {
            assert_eq!(normalize(said), read, "{said}");
        }
    }
}
