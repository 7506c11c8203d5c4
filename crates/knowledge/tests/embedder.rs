//! all-MiniLM-L6-v2 on candle against the figures measured with a reference implementation
//! (numpy BERT, MODELS.md §5), the padding gotcha, and errors instead of panics.

mod common;
use brazen_knowledge::{DIMENSIONS, Embedder, MAX_TOKENS};
use common::{cosine, embedder};
use std::time::Instant;

#[test]
fn paraphrases_score_as_the_reference_and_unrelated_sentences_do_not() {
    let e = embedder();
    let texts = [
        "Turn on the kitchen lights.",
        "Please switch on the lights in the kitchen.",
        "The stock market fell sharply this morning.",
        "My grandmother grows tomatoes in her garden.",
        "What time does the train to Boston leave?",
    ];
    let v = e.embed(&texts).unwrap();
    assert_eq!(v.len(), texts.len());
    for x in &v {
        assert_eq!(x.len(), DIMENSIONS);
        assert!((cosine(x, x) - 1.0).abs() < 1e-4, "unit length");
    }
    let same = cosine(&v[0], &v[1]);
    println!("paraphrase {same:.3}");
    assert!((same - 0.736).abs() < 0.01, "paraphrase cosine {same}, the reference gives 0.736");
    for (i, t) in texts.iter().enumerate().skip(2) {
        let c = cosine(&v[0], &v[i]);
        println!("unrelated {c:.3}: {t}");
        assert!(c < 0.2, "{t:?} scored {c} against the lights");
    }
}

#[test]
fn a_text_embeds_alike_alone_and_padded_in_a_batch() {
    let e = embedder();
    let short = "Free shipping over fifty dollars.";
    let long = "Returns are accepted within thirty days of delivery when the item is unworn, unwashed and \
                still has its tags; swimwear must also have its hygiene liner in place.";
    let together = e.embed(&[long, short]).unwrap();
    let alone = e.embed(&[short]).unwrap();
    let diff = together[1].iter().zip(&alone[0]).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
    assert!(diff < 1e-4, "padding changed the short text's vector by up to {diff}");
    assert!(cosine(&together[0], &together[1]) < 0.9);
}

#[test]
fn long_odd_and_empty_inputs_do_not_fail() {
    let e = embedder();
    let long = "word ".repeat(5 * MAX_TOKENS);
    assert_eq!(e.token_count(&long).unwrap(), MAX_TOKENS);
    let v = e.embed(&[&long, "", "   ", "émoji 🙂 and 中文 text", "\u{0}\u{feff}"]).unwrap();
    assert!(v.iter().all(|x| x.len() == DIMENSIONS && x.iter().all(|f| f.is_finite())));
    assert!(e.embed(&[]).unwrap().is_empty());
}

#[test]
fn a_missing_or_broken_model_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let err = Embedder::load(dir.path()).unwrap_err().to_string();
    assert!(err.contains("config.json"), "{err}");
    std::fs::write(dir.path().join("config.json"), "{\"model_type\": \"gpt2\"}").unwrap();
    assert!(Embedder::load(dir.path()).is_err());
    let model = common::model_dir();
    for f in ["config.json", "tokenizer.json"] {
        std::fs::copy(model.join(f), dir.path().join(f)).unwrap();
    }
    std::fs::write(dir.path().join("model.safetensors"), b"not a safetensors file").unwrap();
    let err = Embedder::load(dir.path()).unwrap_err().to_string();
    assert!(err.contains("model.safetensors"), "{err}");
}

#[test]
fn a_spoken_question_embeds_in_milliseconds() {
    let e = embedder();
    let q = "how long do I have to send something back";
    e.embed(&[q]).unwrap();
    let mut times: Vec<f64> = (0..20)
        .map(|_| {
            let t = Instant::now();
            e.embed(&[q]).unwrap();
            t.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    times.sort_by(f64::total_cmp);
    println!("query embedding: median {:.2} ms, max {:.2} ms", times[10], times[19]);
    // Generous: a loaded 2-core machine; the bench records the real figures.
    assert!(times[10] < 100.0, "median {} ms", times[10]);
}

#[test]
fn a_model_missing_from_the_store_names_the_command_that_installs_it() {
    let root = tempfile::tempdir().unwrap();
    let err = Embedder::from_store(&brazen_models::Store::new(root.path())).unwrap_err().to_string();
    assert!(err.contains("brazen models install --only all-minilm-l6-v2"), "{err}");
}
