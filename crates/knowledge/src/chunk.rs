//! Cutting a document into passages: by Markdown headings, then by paragraphs, each passage
//! [`MIN_WORDS`]–[`MAX_WORDS`] words where the text allows (a short section stays one short
//! passage; a long paragraph is cut at sentence ends into parts of similar length). The text
//! that is embedded starts with the document's title and the section's heading, so a short
//! passage keeps its context; the text shown is the passage alone, without Markdown markup.

use crate::Document;

/// Bumped whenever chunking changes what is embedded: part of an index's cache key.
pub const CHUNKING_VERSION: u32 = 2;

/// Paragraphs of a section are joined until a passage would exceed this many words; a longer
/// paragraph is cut into parts of at most this many. Short passages embed more precisely with
/// all-MiniLM-L6-v2 (trained on texts of up to 128 tokens): on the retail agent's questions,
/// 80 words put the right document first more often than 150 (`bench/README.md`, issue 17).
pub const MAX_WORDS: usize = 80;

/// A passage shorter than this takes the next paragraph of its section even when together they
/// exceed [`MAX_WORDS`] by less than this.
pub const MIN_WORDS: usize = 20;

/// A passage of a document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chunk {
    /// The document's file name.
    pub source: String,
    /// The document's title: its first level-1 heading, else its first heading, else its file
    /// name without the extension.
    pub title: String,
    /// The headings the passage is under, below the title (`Shipping costs: Express`), if any.
    pub heading: Option<String>,
    /// The passage, for display: paragraphs separated by blank lines, Markdown emphasis, code
    /// marks and link targets removed.
    pub text: String,
    /// What is embedded: title, heading and text.
    pub embed_text: String,
}

fn words(s: &str) -> usize {
    s.split_whitespace().count()
}

/// `(level, text)` when `line` is an ATX heading (`## Returns`).
fn heading(line: &str) -> Option<(usize, String)> {
    let t = line.trim_start();
    if line.len() - t.len() > 3 {
        return None; // indented code
    }
    let level = t.bytes().take_while(|&b| b == b'#').count();
    if !(1..=6).contains(&level) {
        return None;
    }
    let rest = &t[level..];
    if !rest.is_empty() && !rest.starts_with([' ', '\t']) {
        return None; // `#hashtag`
    }
    let text = clean_inline(rest.trim().trim_end_matches('#').trim());
    Some((level, text))
}

/// Removes emphasis and code marks and keeps links' text: `**30 days** ([more](x))` → `30 days (more)`.
fn clean_inline(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(c) = rest.chars().next() {
        // `[text](target)` → `text`; `![alt](target)` → `alt`.
        if c == '[' || (c == '!' && rest[1..].starts_with('[')) {
            let open = if c == '!' { 1 } else { 0 };
            if let Some(close) = rest[open..].find("](").map(|i| i + open)
                && let Some(end) = rest[close..].find(')').map(|i| i + close)
            {
                out.push_str(&rest[open + 1..close]);
                rest = &rest[end + 1..];
                continue;
            }
        }
        if c == '`' || ((c == '*' || c == '_') && rest[1..].starts_with(c)) {
            rest = &rest[c.len_utf8()..];
            if c != '`' {
                rest = &rest[c.len_utf8()..];
            }
            continue;
        }
        out.push(c);
        rest = &rest[c.len_utf8()..];
    }
    out
}

fn clean_line(line: &str) -> Option<String> {
    let t = line.trim();
    let t = t.strip_prefix('>').map_or(t, str::trim_start);
    // Horizontal rules and table separators carry nothing.
    if !t.is_empty() && t.chars().all(|c| matches!(c, '-' | '*' | '_' | '=' | '|' | ':' | ' ')) {
        return None;
    }
    let t = clean_inline(t);
    (!t.trim().is_empty()).then(|| t.trim_end().to_owned())
}

/// Splits at sentence ends (`. `, `? `, `! ` and line ends), keeping the punctuation.
fn sentences(paragraph: &str) -> Vec<String> {
    let mut out = Vec::new();
    for line in paragraph.lines() {
        let mut start = 0;
        let bytes = line.as_bytes();
        for (i, &b) in bytes.iter().enumerate() {
            if matches!(b, b'.' | b'?' | b'!') && bytes.get(i + 1) == Some(&b' ') {
                out.push(line[start..=i].trim().to_owned());
                start = i + 1;
            }
        }
        if !line[start..].trim().is_empty() {
            out.push(line[start..].trim().to_owned());
        }
    }
    out.retain(|s| !s.is_empty());
    out
}

/// Cuts a paragraph of more than [`MAX_WORDS`] words into parts of similar length, at
/// sentence ends where possible.
fn split_long(paragraph: &str, max_words: usize) -> Vec<String> {
    let total = words(paragraph);
    if total <= max_words {
        return vec![paragraph.to_owned()];
    }
    // Sentences, and a sentence longer than MAX_WORDS cut into runs of words.
    let mut pieces: Vec<String> = Vec::new();
    for s in sentences(paragraph) {
        if words(&s) <= max_words {
            pieces.push(s);
        } else {
            let w: Vec<&str> = s.split_whitespace().collect();
            let parts = w.len().div_ceil(max_words);
            let size = w.len().div_ceil(parts);
            pieces.extend(w.chunks(size).map(|c| c.join(" ")));
        }
    }
    // Greedy parts of about `total / parts` words; a few part counts are tried and the most
    // even split is kept (the smallest count can leave a short tail).
    let split = |parts: usize| {
        let target = total.div_ceil(parts);
        let mut out: Vec<String> = Vec::new();
        let mut current = String::new();
        for piece in &pieces {
            let (cw, pw) = (words(&current), words(piece));
            if cw > 0 && (cw + pw > max_words || cw >= target) {
                out.push(std::mem::take(&mut current));
            }
            if !current.is_empty() {
                current.push(' ');
            }
            current.push_str(piece);
        }
        if !current.is_empty() {
            out.push(current);
        }
        out
    };
    let base = total.div_ceil(max_words);
    (base..base + 3)
        .map(split)
        .min_by_key(|parts| {
            let sizes = parts.iter().map(|p| words(p));
            sizes.clone().max().unwrap_or(0) - sizes.min().unwrap_or(0)
        })
        .unwrap_or_default()
}

fn title_from_name(source: &str) -> String {
    let stem = source.rsplit_once('.').map_or(source, |(stem, _)| stem);
    let t = stem.replace(['-', '_'], " ");
    let t = t.trim();
    if t.is_empty() { source.to_owned() } else { t.to_owned() }
}

fn with_stop(s: &str) -> String {
    if s.ends_with(['.', '?', '!', ':']) { s.to_owned() } else { format!("{s}.") }
}

struct Section {
    heading: Option<String>,
    paragraphs: Vec<String>,
}

/// The document's passages, in order.
pub fn chunk_document(doc: &Document) -> Vec<Chunk> {
    chunk_document_sized(doc, MIN_WORDS, MAX_WORDS)
}

/// [`chunk_document`] with other limits (for experiments; the index uses [`chunk_document`]).
#[doc(hidden)]
pub fn chunk_document_sized(doc: &Document, min_words: usize, max_words: usize) -> Vec<Chunk> {
    let max_words = max_words.max(1);
    let lines: Vec<&str> = doc.text.lines().collect();
    let headings: Vec<(usize, String)> = lines.iter().filter_map(|l| heading(l)).collect();
    let title_level1 = headings.iter().find(|(level, _)| *level == 1);
    let title = title_level1
        .or(headings.first())
        .map(|(_, t)| t.clone())
        .filter(|t| !t.is_empty())
        .unwrap_or_else(|| title_from_name(&doc.source));
    let mut title_seen = false;

    // Sections: the text under each heading, in paragraphs.
    let mut sections = vec![Section { heading: None, paragraphs: Vec::new() }];
    let mut stack: Vec<(usize, String)> = Vec::new();
    let mut paragraph: Vec<String> = Vec::new();
    let flush = |paragraph: &mut Vec<String>, sections: &mut Vec<Section>| {
        if !paragraph.is_empty() {
            let p = paragraph.join("\n");
            if let Some(s) = sections.last_mut() {
                s.paragraphs.push(p);
            }
            paragraph.clear();
        }
    };
    for line in &lines {
        if let Some((level, text)) = heading(line) {
            flush(&mut paragraph, &mut sections);
            if !title_seen && text == title && title_level1.is_none_or(|_| level == 1) {
                title_seen = true; // the title heading itself is not a section
                continue;
            }
            stack.retain(|(l, _)| *l < level);
            if !text.is_empty() {
                stack.push((level, text));
            }
            let joined = stack.iter().map(|(_, t)| t.as_str()).collect::<Vec<_>>().join(": ");
            sections.push(Section { heading: (!joined.is_empty()).then_some(joined), paragraphs: Vec::new() });
        } else if line.trim().is_empty() {
            flush(&mut paragraph, &mut sections);
        } else if let Some(clean) = clean_line(line) {
            paragraph.push(clean);
        }
    }
    flush(&mut paragraph, &mut sections);

    let mut chunks = Vec::new();
    for section in sections {
        let mut texts: Vec<String> = Vec::new();
        let mut current = String::new();
        for p in section.paragraphs.iter().flat_map(|p| split_long(p, max_words)) {
            let (cw, pw) = (words(&current), words(&p));
            if cw > 0 && cw + pw > max_words && (cw >= min_words || cw + pw > max_words + min_words) {
                texts.push(std::mem::take(&mut current));
            }
            if !current.is_empty() {
                current.push_str("\n\n");
            }
            current.push_str(&p);
        }
        if !current.is_empty() {
            texts.push(current);
        }
        for text in texts {
            let mut embed_text = with_stop(&title);
            if let Some(h) = &section.heading {
                embed_text.push(' ');
                embed_text.push_str(&with_stop(h));
            }
            embed_text.push('\n');
            embed_text.push_str(&text);
            chunks.push(Chunk {
                source: doc.source.clone(),
                title: title.clone(),
                heading: section.heading.clone(),
                text,
                embed_text,
            });
        }
    }
    chunks
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inline_markup_is_removed() {
        assert_eq!(clean_inline("**30 days** to `return` [see](http://x) __now__"), "30 days to return see now");
        assert_eq!(clean_inline("a [broken link( and * star"), "a [broken link( and * star");
        assert_eq!(clean_inline("![alt](i.png) é"), "alt é");
    }

    #[test]
    fn headings_are_recognised() {
        assert_eq!(heading("## Returns ##"), Some((2, "Returns".into())));
        assert_eq!(heading("#hashtag"), None);
        assert_eq!(heading("####### seven"), None);
        assert_eq!(heading("#"), Some((1, String::new())));
    }

    #[test]
    fn sentences_keep_their_punctuation() {
        assert_eq!(sentences("One. Two? Three! Four"), vec!["One.", "Two?", "Three!", "Four"]);
        assert_eq!(sentences("3.5 kg. Next"), vec!["3.5 kg.", "Next"]);
    }
}
