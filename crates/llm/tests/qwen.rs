//! The default local model (Qwen2.5-Coder-1.5B, installed from PyPI) through the public API:
//! tool calls under the grammar, spoken replies streamed, the KV cache reused, cancellation,
//! tool_choice, answers from tool results, and clear errors.

use brazen_llm::eval::{RETAIL_INSTRUCTIONS, RETAIL_TOOLS, parse_tools};
use brazen_llm::request::turn_for;
use brazen_llm::{LocalModel, Output, Turn};
use brazen_models::{Manifest, Store, progress};
use brazen_protocol::{Content, Item, ItemBody, ItemStatus, Role, ToolChoice};
use brazen_providers::LlmRequest;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};

fn model() -> &'static LocalModel {
    static MODEL: OnceLock<LocalModel> = OnceLock::new();
    MODEL.get_or_init(|| {
        let store = Store::new(Store::default_root());
        let dir = store.install(Manifest::builtin().get("qwen2.5-coder-1.5b").unwrap(), &progress()).unwrap();
        LocalModel::load(&dir.join("model.gguf")).unwrap()
    })
}

fn user(text: &str) -> Item {
    Item::message("u", Role::User, vec![Content::InputText(text.into())], ItemStatus::Completed)
}

fn turn(items: Vec<Item>, choice: ToolChoice) -> Turn {
    let request = LlmRequest {
        instructions: RETAIL_INSTRUCTIONS.trim().into(),
        items,
        tools: parse_tools(RETAIL_TOOLS).unwrap(),
        tool_choice: choice,
        temperature: 0.0,
        max_output_tokens: None,
        routing: None,
    };
    let m = model();
    turn_for(&request, m.context_budget(), m, &|| false).unwrap()
}

/// Runs a turn; returns (spoken text pieces, calls, finish).
fn run(turn: &Turn) -> (Vec<String>, Vec<(String, String)>, brazen_llm::Finish) {
    let (mut said, mut calls) = (Vec::new(), Vec::new());
    let finish = model()
        .generate(turn, &AtomicBool::new(false), &|| false, &mut |o| match o {
            Output::Text(t) => said.push(t),
            Output::CallStart(_) => {}
            Output::CallDone { name, arguments } => calls.push((name, arguments)),
        })
        .unwrap();
    (said, calls, finish)
}

#[test]
fn a_request_for_products_is_a_valid_tool_call() {
    let (said, calls, finish) =
        run(&turn(vec![user("do you have any running shoes under sixty dollars")], ToolChoice::Auto));
    assert!(said.is_empty(), "{said:?}");
    assert_eq!(calls.len(), 1);
    let (name, arguments) = &calls[0];
    assert_eq!(name, "search_products");
    let args: serde_json::Value = serde_json::from_str(arguments).unwrap();
    assert_eq!(args, serde_json::json!({"category": "Footwear", "max_price": 60}));
    assert!(finish.output_tokens > 5 && !finish.hit_token_cap && !finish.cancelled, "{finish:?}");
}

#[test]
fn small_talk_is_spoken_in_pieces_and_the_next_turn_reuses_the_cache() {
    let first = turn(vec![user("hi there how are you doing today")], ToolChoice::Auto);
    let (said, calls, _) = run(&first);
    assert!(calls.is_empty(), "{calls:?}");
    assert!(said.len() >= 3, "streamed in pieces: {said:?}");
    let text = said.concat();
    assert!(text.len() > 5 && !text.contains('{') && !text.contains("\\n"), "{text}");

    // The next turn: the conversation so far is already in the cache.
    let reply = Item::message("a", Role::Assistant, vec![Content::Audio { transcript: text }], ItemStatus::Completed);
    let second = turn(
        vec![user("hi there how are you doing today"), reply, user("where is my order 7 7 3 1")],
        ToolChoice::Auto,
    );
    let (_, calls, finish) = run(&second);
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].0, "get_order_status");
    assert_eq!(serde_json::from_str::<serde_json::Value>(&calls[0].1).unwrap()["order_id"], "7731");
    assert!(
        finish.cached_tokens * 10 >= finish.prompt_tokens * 9,
        "most of the prompt came from the cache: {finish:?}"
    );
}

#[test]
fn without_tools_the_reply_is_plain_text_computed_ahead_and_reused() {
    let plain = |items: Vec<Item>| {
        let request = LlmRequest {
            instructions: String::new(),
            items,
            tools: Vec::new(),
            tool_choice: ToolChoice::Auto,
            temperature: 0.0,
            max_output_tokens: None,
            routing: None,
        };
        turn_for(&request, model().context_budget(), model(), &|| false).unwrap()
    };
    let first = plain(vec![user("hi there how are you doing today")]);
    assert!(first.plain());
    assert!(!model().prompt(&first).unwrap().contains("<tools>"), "no tool list in the prompt");
    model().prefill(&first, &|| false).unwrap();
    let (said, calls, finish) = run(&first);
    assert!(calls.is_empty(), "{calls:?}");
    assert!(said.len() >= 3, "streamed in pieces: {said:?}");
    let text = said.concat();
    assert!(text.len() > 5 && !text.contains('{') && !text.contains("tool_call") && !text.contains("<|"), "{text}");
    assert!(!finish.hit_token_cap && finish.output_tokens < 100, "it ended by itself: {finish:?}");
    assert_eq!(finish.cached_tokens, finish.prompt_tokens, "computed ahead: {finish:?}");
    assert_eq!(finish.passes, finish.output_tokens, "one pass per token after the first: {finish:?}");

    // The next turn: the conversation so far, the plain reply included, is in the cache.
    let reply = Item::message("a", Role::Assistant, vec![Content::Audio { transcript: text }], ItemStatus::Completed);
    let second = plain(vec![user("hi there how are you doing today"), reply, user("what can you help me with")]);
    let (said, calls, finish) = run(&second);
    assert!(calls.is_empty() && !said.concat().trim().is_empty(), "{said:?} {calls:?}");
    assert!(finish.prompt_tokens - finish.cached_tokens <= 16, "only the new message was computed: {finish:?}");
}

#[test]
fn an_answer_after_a_tool_result_uses_it() {
    let mut items = vec![user("where is my order 4 4 1 9")];
    items.push(Item {
        id: "c".into(),
        status: ItemStatus::Completed,
        body: ItemBody::FunctionCall {
            call_id: "call_1".into(),
            name: "get_order_status".into(),
            arguments: r#"{"order_id": "4419"}"#.into(),
        },
    });
    items.push(Item {
        id: "o".into(),
        status: ItemStatus::Completed,
        body: ItemBody::FunctionCallOutput {
            call_id: "call_1".into(),
            output: r#"{"order_id": "4419", "status": "shipped", "carrier": "UPS", "estimated_delivery": "Thursday, November 27"}"#.into(),
        },
    });
    let (said, calls, _) = run(&turn(items, ToolChoice::Auto));
    assert!(calls.is_empty(), "after a result the model answers: {calls:?}");
    let text = said.concat().to_lowercase();
    assert!(text.contains("shipped") && (text.contains("thursday") || text.contains("november 27")), "{text}");
}

#[test]
fn tool_choice_is_honoured() {
    let hello = vec![user("hello")];
    let (_, calls, _) = run(&turn(hello.clone(), ToolChoice::Function("lookup_policy".into())));
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].0, "lookup_policy", "the named function is called");
    let (_, calls, _) = run(&turn(hello.clone(), ToolChoice::Required));
    assert_eq!(calls.len(), 1, "some tool is called");
    let (said, calls, _) = run(&turn(vec![user("where is my order 7731")], ToolChoice::None));
    assert!(calls.is_empty() && !said.is_empty(), "none: only spoken");
}

#[test]
fn cancelling_stops_within_a_token_and_a_cap_stops_the_turn() {
    let t = turn(vec![user("tell me a long story about a dragon who sells hiking boots")], ToolChoice::None);
    let cancel = AtomicBool::new(false);
    let mut pieces = 0;
    let finish = model()
        .generate(&t, &cancel, &|| false, &mut |o| {
            if let Output::Text(_) = o {
                pieces += 1;
                cancel.store(true, Ordering::Relaxed);
            }
        })
        .unwrap();
    assert!(finish.cancelled, "{finish:?}");
    assert_eq!(pieces, 1, "nothing after the cancel");

    let mut capped = t.clone();
    capped.max_tokens = 20;
    let (_, _, finish) = run(&capped);
    assert!(finish.hit_token_cap && finish.output_tokens == 20, "{finish:?}");
}

#[test]
fn a_file_that_is_not_a_model_is_a_clear_error() {
    let dir = std::env::temp_dir().join(format!("brazen-llm-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let junk = dir.join("junk.gguf");
    std::fs::write(&junk, b"not a gguf file at all").unwrap();
    let err = LocalModel::load(&junk).err().unwrap().to_string();
    assert!(err.contains("junk.gguf") && err.contains("not a GGUF"), "{err}");
    let err = LocalModel::load(&dir.join("missing.gguf")).err().unwrap().to_string();
    assert!(err.contains("missing.gguf"), "{err}");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn a_prompt_computed_ahead_is_not_computed_again_and_changes_nothing() {
    let t = turn(vec![user("what time do you open on sundays at the portland store")], ToolChoice::Auto);
    assert_eq!(model().prefill(&t, &|| true).unwrap(), 0, "stopped before it began");
    let (cold, cold_calls, cold_finish) = run(&t);
    let computed = model().prefill(&t, &|| false).unwrap();
    assert!(computed > 1, "the prompt's end and the reply's first step: {computed}");
    assert_eq!(model().prefill(&t, &|| false).unwrap(), 0, "nothing left the second time");
    let (ahead, ahead_calls, finish) = run(&t);
    assert_eq!(finish.cached_tokens, finish.prompt_tokens, "the whole prompt was ready: {finish:?}");
    assert_eq!(finish.output_tokens, cold_finish.output_tokens);
    assert!(
        finish.passes + 3 <= cold_finish.passes,
        "the prompt (≥ 2 passes) and the first step were computed ahead: {finish:?} vs {cold_finish:?}"
    );
    assert_eq!((cold.concat(), cold_calls), (ahead.concat(), ahead_calls), "the same reply either way");
}

#[test]
fn a_routing_prior_sways_an_unsure_choice_and_only_the_name() {
    // The model's own choice for words that name a product but ask about a policy.
    let items = vec![user("can i return a jacket i bought last week")];
    let mut plain = turn(items.clone(), ToolChoice::Auto);
    let (_, calls, _) = run(&plain);
    let own = calls.first().map(|(n, _)| n.clone()).unwrap_or_else(|| "respond".into());
    // A prior towards another allowed call changes the name; the arguments still follow its schema.
    let other = if own == "lookup_policy" { "search_products" } else { "lookup_policy" };
    plain.prior = vec![(other.into(), 30.0)];
    let (said, calls, _) = run(&plain);
    assert!(said.is_empty(), "{said:?}");
    assert_eq!(calls.len(), 1, "{calls:?}");
    assert_eq!(calls[0].0, other);
    let args: serde_json::Value = serde_json::from_str(&calls[0].1).unwrap();
    assert!(args.is_object(), "{args}");
    // A prior for a name the turn may not call changes nothing.
    let mut only_respond = turn(items, ToolChoice::None);
    only_respond.prior = vec![(other.into(), 30.0)];
    let (said, calls, _) = run(&only_respond);
    assert!(calls.is_empty() && !said.is_empty(), "{said:?} {calls:?}");
}

#[test]
fn the_model_tells_a_finished_message_from_one_that_goes_on() {
    let m = model();
    let p = |text: &str| {
        let p = m.end_of_turn(&turn(vec![user(text)], ToolChoice::Auto), &|| false).unwrap().unwrap();
        eprintln!("{p:.3}  {text}");
        p
    };
    // Whisper writes a full stop after any words: it is taken off before judging.
    for finished in
        ["What time do you open on Saturday?", "Do you ship to Canada?", "Thank you. That is all for today."]
    {
        assert!(p(finished) > 0.3, "{finished}");
    }
    for goes_on in ["I would like to order.", "Can you tell me?", "My phone number is", "I am looking for a"] {
        assert!(p(goes_on) < 0.05, "{goes_on}");
    }
    // A conversation that does not end with the user's words is refused, not guessed.
    let assistant = Item::message("a", Role::Assistant, vec![Content::Text("Hello!".into())], ItemStatus::Completed);
    assert!(m.end_of_turn(&turn(vec![user("Hi"), assistant], ToolChoice::Auto), &|| false).is_err());
}

#[test]
fn a_judged_pause_leaves_the_words_computed_for_its_reply() {
    let m = model();
    // What a plain reply's prompt has after the user's words: the end of their message and the
    // assistant's header.
    let header = m.text_len("<|im_end|>\n<|im_start|>assistant\n");
    assert_eq!(header, 5);
    for (tools, text) in [(false, "What time do you open on Saturday?"), (true, "Do you ship to Canada?")] {
        let mut request = request(vec![user(text)]);
        if !tools {
            request.tools.clear();
        }
        let turn = turn_for(&request, m.context_budget(), m, &|| false).unwrap();
        assert!(m.end_of_turn(&turn, &|| false).unwrap().unwrap() > 0.3, "{text}");
        let (said, calls, judged) = run(&turn);
        assert!(!said.is_empty() || !calls.is_empty(), "{text}");
        // The reply computed what follows the words, not the words again: the recogniser's
        // question mark (taken off for the verdict), the header, and with tools the forced
        // `<tool_call>` (its `\n{"name": "` after it is not counted in the prompt).
        let computed = judged.prompt_tokens - judged.cached_tokens;
        assert_eq!(computed, 1 + header + usize::from(tools), "{text}: {judged:?}");
    }
}

/// The retail request for a conversation of `items`, greedy.
fn request(items: Vec<Item>) -> LlmRequest {
    LlmRequest {
        instructions: RETAIL_INSTRUCTIONS.trim().into(),
        items,
        tools: parse_tools(RETAIL_TOOLS).unwrap(),
        tool_choice: ToolChoice::Auto,
        temperature: 0.0,
        max_output_tokens: Some(24),
        routing: None,
    }
}

#[test]
fn after_an_answer_the_users_next_message_opening_is_computed_ahead() {
    let m = model();
    let answered = vec![
        user("Where is parcel P-4471 right now?"),
        Item::message(
            "a",
            Role::Assistant,
            vec![Content::Audio { transcript: "Parcel P-4471 left our Leeds depot at 7:40 this morning.".into() }],
            ItemStatus::Completed,
        ),
    ];
    // Plain text, and with tools (where the answer is a call of `respond`).
    for tools in [false, true] {
        let mut request = request(answered.clone());
        if !tools {
            request.tools.clear();
        }
        let after = turn_for(&request, m.context_budget(), m, &|| false).unwrap();
        let computed = m.prefill(&after, &|| false).unwrap();
        assert!(computed >= 15, "tools {tools}: the answer and the user's opening: {computed}");
        // The user's words are all that is left to compute, with the reply's opening after
        // them (and, with tools, the call's first token).
        let words = "And when will it get to Manchester?";
        request.items = [answered.clone(), vec![user(words)]].concat();
        let next = turn_for(&request, m.context_budget(), m, &|| false).unwrap();
        let left = m.prefill(&next, &|| false).unwrap();
        let words_tokens = m.text_len(words);
        // The reply's opening is 5 tokens; with tools, the call's fixed start and the speculative
        // first step add up to 16 (the answer's call alone is over 30).
        let opening = if tools { 5 + 16 } else { 5 };
        assert!(
            left <= words_tokens + opening + 1,
            "tools {tools}: {left} computed for {words_tokens} tokens of words"
        );
    }
}

#[test]
fn a_batched_pass_gives_each_conversation_the_logits_of_its_own_pass() {
    let m = model().model();
    let tokens = |n: usize, from: u32| -> Vec<u32> { (from..from + n as u32).map(|i| i * 389 % 150_000).collect() };
    // Three conversations of different lengths; one adds several tokens, two add one.
    let (a, b, c) = (tokens(40, 1), tokens(17, 7), tokens(3, 11));
    let new = [tokens(5, 23), tokens(1, 31), tokens(1, 41)];
    let mut context = [m.new_cache(), m.new_cache(), m.new_cache()];
    for (cache, t) in context.iter_mut().zip([&a, &b, &c]) {
        m.forward(t, cache).unwrap();
    }
    let logits = |t: &candle_core::Tensor| -> Vec<f32> { t.to_vec1().unwrap() };
    let differ = |x: &[f32], y: &[f32]| x.iter().zip(y).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max);
    let argmax = |l: &[f32]| l.iter().enumerate().max_by(|x, y| x.1.total_cmp(y.1)).map(|(i, _)| i);
    let mut alone = context.clone();
    let separate: Vec<Vec<f32>> =
        alone.iter_mut().zip(&new).map(|(cache, t)| logits(&m.forward(t, cache).unwrap())).collect();
    let mut caches = context.clone();
    let [ca, cb, cc] = &mut caches;
    let batched: Vec<Vec<f32>> =
        m.forward_batch(&mut [(&new[0], ca), (&new[1], cb), (&new[2], cc)]).unwrap().iter().map(logits).collect();
    assert_eq!(batched.len(), 3);
    // candle's kernels for a one-row product round differently from those for several rows
    // (a 2-token pass and two 1-token passes of one conversation differ by ~0.45 too), so a
    // conversation's logits alone and in a batch agree to that, and on the likeliest token.
    for (i, (batch, own)) in batched.iter().zip(&separate).enumerate() {
        let worst = differ(batch, own);
        assert!(worst < 1.0, "conversation {i}: logits differ by {worst}");
        assert_eq!(argmax(batch), argmax(own), "conversation {i}");
    }
    for (i, (cache, own)) in caches.iter().zip(&alone).enumerate() {
        assert_eq!(cache.len(), own.len(), "conversation {i}'s cache grew by its own tokens");
    }
    // A conversation's result does not depend on its companions or its place in the pass.
    let mut others = context.clone();
    let [oa, ob, oc] = &mut others;
    let reordered: Vec<Vec<f32>> =
        m.forward_batch(&mut [(&new[2], oc), (&new[0], oa), (&new[1], ob)]).unwrap().iter().map(logits).collect();
    for (i, j) in [(0, 1), (1, 2), (2, 0)] {
        let worst = differ(&batched[i], &reordered[j]);
        assert!(worst < 1e-4, "conversation {i} first and elsewhere in the pass: {worst}");
    }
    // The caches continue as if each had been run alone.
    let next = logits(&m.forward(&[42], &mut caches[0]).unwrap());
    let own = logits(&m.forward(&[42], &mut alone[0]).unwrap());
    assert!(differ(&next, &own) < 1.0 && argmax(&next) == argmax(&own));
    assert!(m.forward_batch(&mut []).is_err(), "nothing to run is an error, not a panic");
}

#[test]
fn a_pass_that_can_wait_stops_between_blocks_and_leaves_its_cache_as_it_was() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let m = model().model();
    let context: Vec<u32> = (1..30u32).map(|i| i * 389 % 150_000).collect();
    let new: Vec<u32> = (40..48u32).map(|i| i * 389 % 150_000).collect();
    let mut cache = m.new_cache();
    m.forward(&context, &mut cache).unwrap();
    let logits = |t: &candle_core::Tensor| -> Vec<f32> { t.to_vec1().unwrap() };
    let differ = |x: &[f32], y: &[f32]| x.iter().zip(y).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max);
    let own = logits(&m.forward(&new, &mut cache.clone()).unwrap());
    // Asked to stop before its fifth block: nothing comes back and the cache holds what it held.
    let looks = AtomicUsize::new(0);
    let stop = || looks.fetch_add(1, Ordering::Relaxed) >= 4;
    let mut stopped = cache.clone();
    assert!(m.forward_unless(&new, &mut stopped, &stop).unwrap().is_none());
    assert_eq!(looks.load(Ordering::Relaxed), 5, "it looked before each block until told to stop");
    assert_eq!(stopped.len(), context.len());
    // ... and goes on as if the stopped pass had never run.
    let after = logits(&m.forward(&new, &mut stopped).unwrap());
    assert!(differ(&after, &own) < 1e-3, "{}", differ(&after, &own));
    assert_eq!(stopped.len(), context.len() + new.len());
    // Never told to stop, it is a plain pass; stopped before its first block, it changes nothing
    // even on an empty cache.
    let whole = logits(&m.forward_unless(&new, &mut cache.clone(), &|| false).unwrap().unwrap());
    assert!(differ(&whole, &own) < 1e-3);
    let mut empty = m.new_cache();
    assert!(m.forward_unless(&new, &mut empty, &|| true).unwrap().is_none());
    assert!(empty.is_empty());
    m.forward(&context, &mut empty).unwrap();
    assert_eq!(empty.len(), context.len());
}

#[test]
fn the_worker_decodes_several_conversations_at_once() {
    use brazen_llm::worker::{GiveWay, LocalLlm};
    use brazen_providers::{Llm, LlmEvent};
    use futures_util::StreamExt;
    let conversations = [
        vec![user("hello, can you hear me okay")],
        vec![user("what can you help me with today")],
        vec![user("thanks for picking up so quickly")],
    ];
    let store = Store::new(Store::default_root());
    let dir = store.install(Manifest::builtin().get("qwen2.5-coder-1.5b").unwrap(), &progress()).unwrap();
    let loaded = std::sync::Arc::new(LocalModel::load(&dir.join("model.gguf")).unwrap());
    let worker = LocalLlm::start(
        loaded,
        None,
        GiveWay { prepare: Box::new(|| false), turn: Box::new(|| false), generating: Default::default() },
    )
    .unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    // All three at once: each stream's events, in the order they came across all three.
    let (said, order) = runtime.block_on(async {
        let mut streams: Vec<_> = conversations
            .iter()
            .enumerate()
            .map(|(i, items)| worker.generate(request(items.clone())).map(move |e| (i, e)))
            .collect();
        let mut merged = futures_util::stream::select_all(streams.drain(..));
        let mut said = vec![String::new(); 3];
        let mut order = Vec::new();
        while let Some((i, event)) = merged.next().await {
            match event {
                LlmEvent::TextDelta(t) => said[i].push_str(&t),
                LlmEvent::Done { .. } => {}
                other => panic!("conversation {i}: {other:?}"),
            }
            order.push(i);
        }
        (said, order)
    });
    // Each reply is whole (a batched pass rounds slightly differently from a lone one, so the
    // words may differ from a lone run's where two tokens are nearly tied).
    for (i, text) in said.iter().enumerate() {
        assert!(text.split_whitespace().count() >= 2, "conversation {i}: {text:?}");
    }
    // Decoded together: the last conversation's words begin before the first one's end.
    let first_done = order.iter().rposition(|&i| i == 0).unwrap();
    let last_begins = order.iter().position(|&i| i == 2).unwrap();
    assert!(last_begins < first_done, "interleaved, not one after the other: {order:?}");
}

#[test]
fn a_panic_in_the_worker_fails_its_turn_and_the_next_turn_is_answered() {
    use brazen_llm::worker::{GiveWay, LocalLlm};
    use brazen_providers::{Llm, LlmEvent};
    use futures_util::StreamExt;
    let store = Store::new(Store::default_root());
    let dir = store.install(Manifest::builtin().get("qwen2.5-coder-1.5b").unwrap(), &progress()).unwrap();
    let loaded = std::sync::Arc::new(LocalModel::load(&dir.join("model.gguf")).unwrap());
    // The worker asks this before each decoding step of the turns in progress: the first
    // time, it panics on the worker's thread, with a turn begun (its prompt looked up).
    let panicked = std::sync::Arc::new(AtomicBool::new(false));
    let once = panicked.clone();
    let turn = Box::new(move || {
        if !once.swap(true, Ordering::Relaxed) {
            panic!("a fault during a turn");
        }
        false
    });
    let worker =
        LocalLlm::start(loaded, None, GiveWay { prepare: Box::new(|| false), turn, generating: Default::default() })
            .unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let events = |text: &str| runtime.block_on(worker.generate(request(vec![user(text)])).collect::<Vec<_>>());
    let first = events("hello, can you hear me okay");
    assert!(panicked.load(Ordering::Relaxed));
    match &first[..] {
        [LlmEvent::Failed(why)] => {
            assert!(why.contains("failed unexpectedly: a fault during a turn"), "{why}")
        }
        other => panic!("the turn the panic hit fails with its message: {other:?}"),
    }
    // The same worker answers the next turn.
    let second = events("what can you help me with today");
    let said: String = second
        .iter()
        .filter_map(|e| match e {
            LlmEvent::TextDelta(t) => Some(t.as_str()),
            _ => None,
        })
        .collect();
    assert!(matches!(second.last(), Some(LlmEvent::Done { .. })), "{second:?}");
    assert!(said.split_whitespace().count() >= 2, "{said:?}");
}
