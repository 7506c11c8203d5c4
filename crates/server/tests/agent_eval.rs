//! `brazen eval` through the binary: clear errors for a bad agent or cases path (before any
//! model is loaded), and a small subset of the retail agent's cases on the default local model
//! and the agent's knowledge base (the figures of the whole set are in bench/README.md), and the
//! agent's routing by meaning on its own cases and on cases written apart from its examples.

use std::process::{Command, Output};

fn eval(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_brazen")).arg("eval").args(args).output().expect("brazen runs")
}

#[test]
fn bad_paths_are_named_without_loading_a_model() {
    for (args, expected) in [
        (&["--agent", "/nonexistent/agent.toml"][..], "cannot read the agent file /nonexistent/agent.toml"),
        (&["--cases", "/nonexistent/cases.jsonl"][..], "cannot read the cases /nonexistent/cases.jsonl"),
        (&["--model", "/nonexistent/model.gguf", "--tools", "/nonexistent/tools.json"][..], "cannot read the tools"),
    ] {
        let started = std::time::Instant::now();
        let out = eval(args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?}");
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
        assert!(started.elapsed().as_secs() < 10, "{args:?} took {:?}", started.elapsed());
    }
}

#[test]
fn a_subset_of_the_retail_cases_runs_on_the_default_model() {
    let all =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../agents/retail/eval/cases.jsonl")).unwrap();
    // One case of each kind: an order after a search, a delivery, a policy question, small talk.
    let wanted = ["\"order-01\"", "\"delivery-01\"", "\"policy-01\"", "\"smalltalk-01\""];
    let subset: Vec<&str> = all.lines().filter(|l| wanted.iter().any(|w| l.contains(w))).collect();
    assert_eq!(subset.len(), wanted.len());
    let path = std::env::temp_dir().join(format!("brazen-agent-eval-{}.jsonl", std::process::id()));
    std::fs::write(&path, subset.join("\n")).unwrap();
    let out = eval(&["--cases", path.to_str().unwrap()]);
    std::fs::remove_file(&path).ok();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    eprintln!("{stdout}");
    let overall = stdout.lines().find(|l| l.starts_with("overall")).expect("an overall line");
    let ok: usize = overall.split_whitespace().nth(1).and_then(|f| f.split('/').next()?.parse().ok()).unwrap();
    assert!(ok >= 3, "{overall}");
    assert!(stdout.contains("policy source: top-1"), "{stdout}");
}

/// The percentage on a `routing: … the expected tool in R/G (P%)` line.
fn routed_share(stdout: &str) -> f64 {
    let line = stdout.lines().find(|l| l.starts_with("routing:")).expect("a routing line");
    line.rsplit('(').next().and_then(|p| p.trim_end_matches("%)").parse().ok()).unwrap()
}

#[test]
fn the_retail_agents_routing_sends_its_cases_and_unseen_ones_to_their_tools() {
    // The agent's own cases (its examples were written beside them) and cases written apart.
    let out = eval(&["--routing-only"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(routed_share(&stdout) >= 90.0, "{stdout}");
    let held_out = concat!(env!("CARGO_MANIFEST_DIR"), "/../../agents/retail/eval/routing-held-out.jsonl");
    let out = eval(&["--routing-only", "--cases", held_out]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(routed_share(&stdout) >= 80.0, "{stdout}");
    // Without routing examples there is nothing to check, and it says so.
    let agent = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/agents/clinic/agent.toml");
    let cases = std::env::temp_dir().join(format!("brazen-routing-{}.jsonl", std::process::id()));
    std::fs::write(&cases, r#"{"id": "hi", "category": "small_talk", "user": "hello", "expect": {}}"#).unwrap();
    let out = eval(&["--routing-only", "--agent", agent, "--cases", cases.to_str().unwrap()]);
    std::fs::remove_file(&cases).ok();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("has no [routing] examples"), "{out:?}");
}
