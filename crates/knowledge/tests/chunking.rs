//! Cutting documents into passages (no model needed).

use brazen_knowledge::{Document, MAX_WORDS, MIN_WORDS, chunk_document, read_documents};

fn words(s: &str) -> usize {
    s.split_whitespace().count()
}

fn sentence(i: usize) -> String {
    format!("Sentence number {i} talks about returns and refunds for a while here.")
}

#[test]
fn sections_follow_headings_and_carry_title_and_heading() {
    let doc = Document::new(
        "returns.md",
        "# Returns Policy\n\nIntro paragraph about **returns**.\n\n## What can be returned\n\nUnworn items with tags.\n\n\
         ### Swimwear\n\nOnly with the hygiene liner.\n\n## How to return\n\n1. Go online.\n2. Print the label.\n",
    );
    let chunks = chunk_document(&doc);
    let headings: Vec<Option<&str>> = chunks.iter().map(|c| c.heading.as_deref()).collect();
    assert_eq!(
        headings,
        vec![None, Some("What can be returned"), Some("What can be returned: Swimwear"), Some("How to return")]
    );
    assert!(chunks.iter().all(|c| c.title == "Returns Policy" && c.source == "returns.md"));
    assert_eq!(chunks[0].text, "Intro paragraph about returns.", "display text without markup or title");
    assert_eq!(chunks[2].embed_text, "Returns Policy. What can be returned: Swimwear.\nOnly with the hygiene liner.");
    assert_eq!(chunks[3].text, "1. Go online.\n2. Print the label.");
    assert!(chunks.iter().all(|c| !c.text.contains('#')));
}

#[test]
fn paragraphs_are_joined_up_to_the_limit_and_long_ones_cut_at_sentences() {
    // Short paragraphs (11 words each) are joined; nothing exceeds MAX_WORDS.
    let short: Vec<String> = (0..30).map(sentence).collect();
    let doc = Document::new("a.md", format!("# A\n\n{}", short.join("\n\n")));
    let chunks = chunk_document(&doc);
    assert!(chunks.len() >= 2, "{} chunks", chunks.len());
    for c in &chunks {
        assert!(words(&c.text) <= MAX_WORDS, "{} words", words(&c.text));
    }
    assert!(chunks[..chunks.len() - 1].iter().all(|c| words(&c.text) >= MIN_WORDS));

    // One paragraph of 396 words: parts of similar length, cut after a full stop.
    let long: Vec<String> = (0..36).map(sentence).collect();
    let doc = Document::new("b.md", format!("# B\n\n{}", long.join(" ")));
    let chunks = chunk_document(&doc);
    assert!(chunks.len() >= 396usize.div_ceil(MAX_WORDS), "{} chunks", chunks.len());
    let sizes: Vec<usize> = chunks.iter().map(|c| words(&c.text)).collect();
    let (smallest, largest) = (*sizes.iter().min().unwrap(), *sizes.iter().max().unwrap());
    assert!(largest <= MAX_WORDS && smallest * 10 >= largest * 6, "uneven parts: {sizes:?}");
    for c in &chunks {
        assert!(c.text.ends_with('.'), "cut mid-sentence: {:?}", &c.text[c.text.len() - 20..]);
    }
    // Nothing is lost or repeated.
    let all: usize = chunks.iter().map(|c| words(&c.text)).sum();
    assert_eq!(all, words(&long.join(" ")));

    // A run-on "sentence" of 500 words without punctuation is cut by words.
    let doc = Document::new("c.txt", "word ".repeat(500));
    let chunks = chunk_document(&doc);
    assert!(chunks.len() >= 4 && chunks.iter().all(|c| words(&c.text) <= MAX_WORDS));
    assert_eq!(chunks.iter().map(|c| words(&c.text)).sum::<usize>(), 500);
}

#[test]
fn tiny_and_odd_documents() {
    let chunks = chunk_document(&Document::new("gift-cards.txt", "Gift cards never expire."));
    assert_eq!(chunks.len(), 1);
    assert_eq!(chunks[0].title, "gift cards", "the file name stands in for a missing title");
    assert_eq!(chunks[0].embed_text, "gift cards.\nGift cards never expire.");

    assert!(chunk_document(&Document::new("e.md", "")).is_empty());
    assert!(chunk_document(&Document::new("h.md", "# Only a title\n\n## And a heading\n")).is_empty());
    assert!(chunk_document(&Document::new("r.md", "---\n\n***\n\n| --- | :-: |\n")).is_empty());

    // The first heading is the title when there is no level-1 heading.
    let chunks = chunk_document(&Document::new("x.md", "## Sizes\n\nS, M and L.\n\n## Colours\n\nRed."));
    assert_eq!(chunks.len(), 2);
    assert_eq!(chunks[0].title, "Sizes");
    assert_eq!(chunks[0].heading, None);
    assert_eq!(chunks[1].heading.as_deref(), Some("Colours"));

    // Odd text never panics: multi-byte characters next to markup, unclosed links, CR LF.
    let odd = "# Tït**le** [x](\r\n\r\n![](a) é**ü** `c` _ * [a]b) 中文。🙂\r\n\r\n####### not a heading\n#hashtag";
    let chunks = chunk_document(&Document::new("o.md", odd));
    assert_eq!(chunks[0].title, "Tïtle [x](");
    assert!(chunks.iter().all(|c| !c.text.contains('\r')));
}

#[test]
fn the_retail_documents_chunk_sensibly() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../agents/retail/knowledge");
    let docs = read_documents(&dir).unwrap();
    assert!(docs.len() >= 15, "{} documents", docs.len());
    for d in &docs {
        let chunks = chunk_document(d);
        assert!(!chunks.is_empty() && chunks.len() <= 12, "{}: {} chunks", d.source, chunks.len());
        let title = d.text.lines().next().and_then(|l| l.strip_prefix("# ")).unwrap_or_default();
        assert!(!title.is_empty() && chunks.iter().all(|c| c.title == title), "{}: title {title:?}", d.source);
        for c in &chunks {
            assert!(words(&c.text) <= MAX_WORDS + MIN_WORDS, "{}: {} words", d.source, words(&c.text));
            assert!(!c.text.contains("**"), "{}: markup left in {:?}", d.source, c.text);
        }
    }
}

#[test]
fn reading_a_folder() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();
    std::fs::write(p.join("b.md"), "# B\n\nbee").unwrap();
    std::fs::write(p.join("a.TXT"), "ay").unwrap();
    std::fs::write(p.join("c.pdf"), "not read").unwrap();
    std::fs::write(p.join(".hidden.md"), "not read").unwrap();
    std::fs::write(p.join("empty.md"), " \n").unwrap();
    std::fs::write(p.join("latin1.md"), [0x63, 0x61, 0x66, 0xe9]).unwrap();
    std::fs::create_dir(p.join("sub.md")).unwrap();
    std::fs::write(p.join("bom.md"), "\u{feff}# Bom").unwrap();
    let docs = read_documents(p).unwrap();
    let names: Vec<&str> = docs.iter().map(|d| d.source.as_str()).collect();
    assert_eq!(names, vec!["a.TXT", "b.md", "bom.md"]);
    assert_eq!(docs[2].text, "# Bom");

    std::fs::write(p.join("huge.md"), "x".repeat(2 * 1024 * 1024)).unwrap();
    let err = read_documents(p).unwrap_err().to_string();
    assert!(err.contains("huge.md") && err.contains("KiB"), "{err}");

    assert!(read_documents(&p.join("missing")).is_err());
}
