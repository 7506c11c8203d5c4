//! Routing by meaning on the real model: words go to the tool whose examples they resemble, a
//! prior only where one tool stands out and only over the tools a turn may call, and bad
//! settings are errors.

mod common;
use brazen_knowledge::{DEFAULT_STRENGTH, ToolRouter};
use brazen_providers::ToolPrior;
use common::embedder;

fn router() -> ToolRouter {
    let examples = vec![
        (
            "policy".to_owned(),
            vec![
                "what is your return policy".to_owned(),
                "how do i return an item".to_owned(),
                "how long does shipping take".to_owned(),
            ],
        ),
        ("products".to_owned(), vec!["show me your dresses".to_owned(), "what jackets do you sell".to_owned()]),
        ("respond".to_owned(), vec!["hello there".to_owned(), "thanks goodbye".to_owned()]),
        ("empty".to_owned(), vec!["  ".to_owned()]),
    ];
    ToolRouter::build(embedder(), &examples, DEFAULT_STRENGTH).unwrap()
}

#[test]
fn words_go_to_the_tool_they_resemble_and_only_among_those_allowed() {
    let r = router();
    // A tool whose examples are all blank is left out.
    assert_eq!(r.tools().collect::<Vec<_>>(), ["policy", "products", "respond"]);
    let all = ["policy", "products", "respond"];
    let prior = r.prior("can i return something i bought", &all);
    assert_eq!(prior.len(), 1, "{prior:?}");
    assert_eq!(prior[0].0, "policy");
    assert!(prior[0].1 > 0.0 && prior[0].1 <= DEFAULT_STRENGTH, "{prior:?}");
    assert_eq!(r.prior("have you got any winter coats", &all)[0].0, "products");
    assert_eq!(r.prior("hi how are you", &all)[0].0, "respond");
    // The same words again come from the kept answer, and agree.
    assert_eq!(r.prior("hi how are you", &all), r.prior("hi how are you", &all));
    // Among the tools a turn may call only: without `policy`, the next best or nothing.
    let prior = r.prior("can i return something i bought", &["products", "respond"]);
    assert!(prior.iter().all(|(t, _)| t != "policy"), "{prior:?}");
    assert!(r.prior("can i return something i bought", &["unknown"]).is_empty());
    // Nothing said, nothing routed; a long message is read by its beginning.
    assert!(r.prior("   ", &all).is_empty());
    let long = "what jackets do you sell and ".repeat(2000);
    let s = r.similarities(&long).unwrap();
    assert_eq!(s[0].0, "products", "{s:?}");
}

#[test]
fn the_similarities_rank_every_tool() {
    let s = router().similarities("how long will delivery take").unwrap();
    assert_eq!(s.len(), 3);
    assert_eq!(s[0].0, "policy");
    assert!(s.windows(2).all(|w| w[0].1 >= w[1].1), "{s:?}");
}

#[test]
fn a_bad_strength_or_too_many_examples_is_an_error() {
    for strength in [0.0, -1.0, f32::NAN] {
        assert!(ToolRouter::build(embedder(), &[], strength).is_err(), "{strength}");
    }
    let many = vec![("t".to_owned(), vec!["x".to_owned(); brazen_knowledge::MAX_EXAMPLES + 1])];
    let e = ToolRouter::build(embedder(), &many, 1.0).err().unwrap().to_string();
    assert!(e.contains("at most"), "{e}");
}
