//! The end-of-turn text judge (SmolLM2-135M-Instruct, installed from PyPI) through its public
//! API: sentences that go on and sentences that are finished, a short answer after the
//! assistant's question, and clear errors.

use brazen_llm::LlmError;
use brazen_llm::judge::TextJudge;
use brazen_models::{Manifest, Store, progress};
use brazen_protocol::{Content, Item, ItemStatus, Role};
use brazen_providers::LlmRequest;
use std::sync::OnceLock;

fn judge() -> &'static TextJudge {
    static JUDGE: OnceLock<TextJudge> = OnceLock::new();
    JUDGE.get_or_init(|| {
        let store = Store::new(Store::default_root());
        let dir = store.install(Manifest::builtin().get("smollm2-135m").unwrap(), &progress()).unwrap();
        TextJudge::load(&dir.join("model.gguf")).unwrap()
    })
}

fn p(previous: Option<&str>, words: &str) -> f32 {
    judge().probability(previous, words, &|| false).unwrap().unwrap()
}

/// What callers say when they pause in the middle of a sentence.
const GOING_ON: &[&str] = &[
    "I would like to order",
    "Can you tell me",
    "I am looking for",
    "My phone number is",
    "I was wondering if",
    "Could you check whether",
    "What I need is",
    "So the problem is that",
    "I'd like to know",
    "Do you have any",
    "I want to buy a",
    "My name is",
    "I'm calling about",
    "Is it possible to",
];

/// Finished requests and questions (heard without punctuation, as a judge reads them).
const FINISHED: &[&str] = &[
    "What time do you open on Saturday",
    "Do you ship to Canada",
    "Which jackets are warm enough for winter",
    "Can I pay with a gift card",
    "Where is my package",
    "Do you have these boots in size ten",
    "What's your return policy",
    "Is the store open on Sunday",
    "Tell me about your tents",
    "I need a refund for my order",
];

#[test]
fn sentences_that_go_on_are_told_from_finished_ones() {
    let open: Vec<f32> = GOING_ON.iter().map(|w| p(None, w)).collect();
    let done: Vec<f32> = FINISHED.iter().map(|w| p(None, w)).collect();
    eprintln!("going on: {open:?}\nfinished: {done:?}");
    // On the conversational model's scale (the thresholds' of `semantic_vad`, medium: finished
    // from 0.3, unsure from 0.05): every unfinished sentence goes on, far under the finished
    // ones' median, and most finished ones end the turn without asking the audio.
    let mut sorted = done.clone();
    sorted.sort_by(f32::total_cmp);
    let median = sorted[sorted.len() / 2];
    assert!(median >= 0.5, "finished sentences: {done:?}");
    for (w, p) in GOING_ON.iter().zip(&open) {
        assert!(*p < 0.05, "{w:?} goes on, judged {p}");
    }
    let clear = done.iter().filter(|&&p| p >= 0.3).count();
    assert!(clear * 10 >= FINISHED.len() * 8, "finished sentences: {done:?}");
}

#[test]
fn a_short_answer_to_the_assistants_question_is_finished() {
    let asked = Some("Sure! Which size do you need?");
    let (answered, alone) = (p(asked, "Medium please"), p(None, "Medium please"));
    eprintln!("after the question {answered}, alone {alone}");
    // The question makes the short answer a finished message, more than it is on its own.
    assert!(answered >= 0.05 && answered > alone, "after the question {answered}, alone {alone}");
    assert!(p(asked, "I think I need size") < 0.05);
}

#[test]
fn the_request_gives_the_words_and_the_assistants_last_answer() {
    let item = |id: &str, role: Role, text: &str| {
        let content = match role {
            Role::User => Content::InputText(text.into()),
            _ => Content::Text(text.into()),
        };
        Item::message(id, role, vec![content], ItemStatus::Completed)
    };
    let request = |items: Vec<Item>| LlmRequest {
        instructions: "You are a shop assistant.".into(),
        items,
        tools: Vec::new(),
        tool_choice: Default::default(),
        temperature: 0.8,
        max_output_tokens: None,
        routing: None,
    };
    let asked = vec![
        item("q", Role::User, "Do you have it in blue?"),
        item("a", Role::Assistant, "We do. Which size do you need?"),
        item("b", Role::User, "Medium please."),
    ];
    let judged = judge().judge(&request(asked), &|| false).unwrap().unwrap();
    assert!((judged - p(Some("We do. Which size do you need?"), "Medium please")).abs() < 1e-4, "{judged}");
    // Computed ahead from the answer, the same verdict.
    let answered = vec![item("q", Role::User, "Do you have it in blue?"), item("a", Role::Assistant, "Which size?")];
    judge().prepare(&request(answered)).unwrap();
    let mut next = vec![item("a", Role::Assistant, "Which size?"), item("b", Role::User, "Medium please.")];
    assert_eq!(
        judge().judge(&request(next.clone()), &|| false).unwrap(),
        Some(p(Some("Which size?"), "Medium please"))
    );
    // A conversation that does not end with an answer: nothing to compute ahead, no error.
    next.pop();
    next.push(item("c", Role::User, "And in red?"));
    judge().prepare(&request(next)).unwrap();
    // Stopped before its pass: no verdict.
    let asked = vec![item("b", Role::User, "Where is my order?")];
    assert_eq!(judge().judge(&request(asked), &|| true).unwrap(), None);
    // Nothing to judge: clear errors.
    let assistant_last = vec![item("a", Role::Assistant, "Hello!")];
    assert!(matches!(judge().judge(&request(assistant_last), &|| false), Err(LlmError::Prompt(_))));
    assert!(matches!(judge().probability(None, " ... ", &|| false), Err(LlmError::Prompt(_))));
}

#[test]
fn a_file_that_is_not_a_chat_model_is_refused_with_its_path() {
    let dir = std::env::temp_dir().join(format!("brazen-judge-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("not.gguf");
    std::fs::write(&path, b"not a model").unwrap();
    let Err(LlmError::Model { path: named, message }) = TextJudge::load(&path) else { panic!("loaded garbage") };
    assert!(named.ends_with("not.gguf") && message.contains("GGUF"), "{named}: {message}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn the_judges_words_are_split_as_smollm_splits_them() {
    let dir = Store::new(Store::default_root()).install(Manifest::builtin().get("smollm2-135m").unwrap(), &progress());
    let mut file = std::fs::File::open(dir.unwrap().join("model.gguf")).unwrap();
    let content = candle_core::quantized::gguf_file::Content::read(&mut file).unwrap();
    let vocab = brazen_llm::vocab::Vocab::from_gguf(&content).unwrap();
    // The ids llama.cpp's tokenizer gives (its `smollm` pre-tokenizer: no space added before a
    // piece, digits one by one).
    let ids = vocab.encode("<|im_start|>user\nI would like 25 pairs, please.<|im_end|>").unwrap();
    assert_eq!(ids, [1, 4093, 198, 57, 736, 702, 216, 34, 37, 9180, 28, 5361, 30, 2]);
    assert_eq!(vocab.encode("What time do you open on Saturday").unwrap(), [1780, 655, 536, 346, 1440, 335, 14986]);
}
