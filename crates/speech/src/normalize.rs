//! Spoken forms of what a voice agent writes: prices, clock times, order and tracking numbers,
//! e-mail addresses and percentages. The phonemizer reads plain numbers well ("59" → "fifty-nine"),
//! so the rules rewrite only what it would read wrongly ("$59.99" → "dollar fifty-nine point
//! nine nine") and leave numbers as digits. The transcript keeps the original text; this is only
//! what is spoken.

/// Rewrites `text` into what should be spoken.
pub fn speakable(text: &str) -> String {
    text.split_inclusive(char::is_whitespace).map(word).collect()
}

/// One whitespace-separated word (with its trailing whitespace).
fn word(w: &str) -> String {
    let body = w.trim_end();
    let space = &w[body.len()..];
    let lead: String = body.chars().take_while(|c| matches!(c, '(' | '"' | '\'' | '[')).collect();
    let rest = &body[lead.len()..];
    let core = rest.trim_end_matches(['.', ',', '!', '?', ';', ':', ')', '"', '\'', ']']);
    let trail = &rest[core.len()..];
    let spoken = price(core)
        .or_else(|| time(core))
        .or_else(|| email(core))
        .or_else(|| percent(core))
        .or_else(|| identifier(core))
        .unwrap_or_else(|| core.to_owned());
    format!("{lead}{spoken}{trail}{space}")
}

fn digits(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

/// `$59.99` → `59 dollars and 99 cents`; `€20` → `20 euros`; `£3.50` → `3 pounds and 50 pence`.
fn price(s: &str) -> Option<String> {
    let (unit, units, cent, cents, amount) = if let Some(a) = s.strip_prefix('$') {
        ("dollar", "dollars", "cent", "cents", a)
    } else if let Some(a) = s.strip_prefix('€') {
        ("euro", "euros", "cent", "cents", a)
    } else if let Some(a) = s.strip_prefix('£') {
        ("pound", "pounds", "penny", "pence", a)
    } else {
        return None;
    };
    let (whole, frac) = amount.split_once('.').unwrap_or((amount, ""));
    let whole = whole.replace(',', "");
    if !digits(&whole) || !(frac.is_empty() || frac.len() == 2 && digits(frac)) {
        return None;
    }
    let n: u64 = whole.parse().ok()?;
    let c: u64 = if frac.is_empty() { 0 } else { frac.parse().ok()? };
    let main = format!("{n} {}", if n == 1 { unit } else { units });
    Some(match c {
        0 => main,
        _ if n == 0 => format!("{c} {}", if c == 1 { cent } else { cents }),
        _ => format!("{main} and {c} {}", if c == 1 { cent } else { cents }),
    })
}

/// `7:30` → `7 30`; `7:05` → `7 oh 5`; `7:00pm` → `7 p m`; `19:00` → `19 hundred`.
fn time(s: &str) -> Option<String> {
    let lower = s.to_ascii_lowercase();
    let (clock, suffix) = match lower.strip_suffix("am").or_else(|| lower.strip_suffix("a.m")) {
        Some(c) => (c, " a m"),
        None => match lower.strip_suffix("pm").or_else(|| lower.strip_suffix("p.m")) {
            Some(c) => (c, " p m"),
            None => (lower.as_str(), ""),
        },
    };
    let (h, m) = clock.split_once(':')?;
    if !digits(h) || h.len() > 2 || m.len() != 2 || !digits(m) {
        return None;
    }
    let (hour, minute): (u32, u32) = (h.parse().ok()?, m.parse().ok()?);
    if hour > 23 || minute > 59 {
        return None;
    }
    let spoken = match minute {
        0 if suffix.is_empty() && hour > 12 => format!("{hour} hundred"),
        0 if suffix.is_empty() => format!("{hour} o'clock"),
        0 => format!("{hour}"),
        1..=9 => format!("{hour} oh {minute}"),
        _ => format!("{hour} {minute}"),
    };
    Some(format!("{spoken}{suffix}"))
}

/// `help@shop.example` → `help at shop dot example`.
fn email(s: &str) -> Option<String> {
    let (user, domain) = s.split_once('@')?;
    if user.is_empty() || !domain.contains('.') || domain.starts_with('.') {
        return None;
    }
    Some(format!("{} at {}", user.replace('.', " dot "), domain.replace('.', " dot ")))
}

/// `20%` → `20 percent`.
fn percent(s: &str) -> Option<String> {
    let n = s.strip_suffix('%')?;
    (digits(n) || n.split_once('.').is_some_and(|(a, b)| digits(a) && digits(b))).then(|| format!("{n} percent"))
}

/// Order and tracking numbers are read character by character: a run of five or more digits
/// (`5423198` → `5 4 2 3 1 9 8`), or a code mixing letters and digits (`AB-12C` → `A B 1 2 C`).
fn identifier(s: &str) -> Option<String> {
    let s = s.strip_prefix('#').unwrap_or(s);
    let has_digit = s.bytes().any(|b| b.is_ascii_digit());
    let has_letter = s.bytes().any(|b| b.is_ascii_alphabetic());
    let allowed = !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
    let long_number = digits(s) && s.len() >= 5;
    let code = allowed && has_digit && has_letter && !is_ordinal(s);
    if !(long_number || code) {
        return None;
    }
    let chars: Vec<String> =
        s.chars().filter(|c| c.is_ascii_alphanumeric()).map(|c| c.to_ascii_uppercase().to_string()).collect();
    Some(chars.join(" "))
}

/// `1st`, `22nd`, `3rd`, `4th`: read as ordinals, not codes.
fn is_ordinal(s: &str) -> bool {
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (n, suffix) = s.split_at(split);
    digits(n) && matches!(suffix.to_ascii_lowercase().as_str(), "st" | "nd" | "rd" | "th")
}

#[cfg(test)]
mod tests {
    use super::speakable;

    #[test]
    fn prices() {
        assert_eq!(speakable("It costs $59.99 today."), "It costs 59 dollars and 99 cents today.");
        assert_eq!(speakable("Only $1, or €20, or £3.50!"), "Only 1 dollar, or 20 euros, or 3 pounds and 50 pence!");
        assert_eq!(speakable("$0.05 and $1,299.00"), "5 cents and 1299 dollars");
    }

    #[test]
    fn times() {
        assert_eq!(speakable("We open at 7:30pm"), "We open at 7 30 p m");
        assert_eq!(speakable("at 9:05, 12:00 or 19:00."), "at 9 oh 5, 12 o'clock or 19 hundred.");
        assert_eq!(speakable("ratio 3:2"), "ratio 3:2");
    }

    #[test]
    fn identifiers_emails_and_percentages() {
        assert_eq!(speakable("Order #5423198 shipped."), "Order 5 4 2 3 1 9 8 shipped.");
        assert_eq!(speakable("Tracking AB-12C (ready)"), "Tracking A B 1 2 C (ready)");
        assert_eq!(speakable("Write to help@shop.example."), "Write to help at shop dot example.");
        assert_eq!(speakable("Save 20% on the 2nd item"), "Save 20 percent on the 2nd item");
        assert_eq!(speakable("In 2024 we sold 300 shoes"), "In 2024 we sold 300 shoes", "short numbers stay numbers");
    }

    #[test]
    fn plain_text_is_untouched() {
        let text = "Hello! How can I help you today?\nI'm here.";
        assert_eq!(speakable(text), text);
    }
}
