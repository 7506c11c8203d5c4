//! Local LLM benchmark (issue 4): on turn 2 and later of a conversation with a ≈600-token
//! system prompt and the 5 retail tools, the time from the final transcript (the request) to
//! the first token of the reply, to its first speakable phrase, and to a complete tool call;
//! decode speed; load time and peak memory.
//!
//! Run: `bench/llm.sh [--rounds N]` (release build). Instead of that, `bench/llm.sh --passes`
//! prints the cost of one forward pass by its number of new tokens (what sets the prefill
//! chunk); `--pass N` only a pass of N, 60 times; `--decode` the steady cost of a decoding
//! step; `--gemv` one row times each block's weights, candle's product against
//! `brazen_llm::gemv`; `--judge` a pause's verdict from its words by the conversational model
//! itself against the small turn judge (SmolLM2-135M). The models are installed first.
//! `serve` sets `CANDLE_BARRIER_POOL_SPIN_LIMIT=1000` unless it is set; the bench leaves
//! candle's default unless the variable is given (as `bench/llm.sh` does). Both keep the memory a
//! pass frees (`brazen_llm::allocator`).

#[path = "stats.rs"]
mod stats;
use brazen_engine::text::take_phrase;
use brazen_llm::eval::{RETAIL_INSTRUCTIONS, RETAIL_TOOLS, parse_tools};
use brazen_llm::{LocalModel, Output};
use brazen_models::{Manifest, Store, progress};
use brazen_protocol::{Content, Item, ItemStatus, Role, ToolChoice};
use brazen_providers::LlmRequest;
use stats::percentile;
use std::sync::atomic::AtomicBool;
use std::time::Instant;

/// Store facts appended to the retail instructions: with the 5 tools (and `respond`) the
/// system prompt is then ≈ 700 tokens.
const STORE_FACTS: &str = "Store facts: Northwind Outfitters has stores in Portland, Seattle, Denver and Boston, open \
nine to eight on weekdays and ten to six on weekends. Online orders over fifty dollars ship free within the United States. \
When you call a tool, use exactly the ids and numbers the customer gave.";

fn peak_rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .unwrap_or(0.0)
        / 1024.0
}

/// The engine's request for a conversation with the retail tools, greedy.
fn request(instructions: &str, items: &[Item], choice: ToolChoice) -> LlmRequest {
    LlmRequest {
        instructions: instructions.into(),
        items: items.to_vec(),
        tools: parse_tools(RETAIL_TOOLS).expect("tools"),
        tool_choice: choice,
        temperature: 0.0,
        max_output_tokens: None,
        routing: None,
    }
}

fn message(role: Role, text: &str) -> Item {
    let content =
        if role == Role::User { Content::InputText(text.into()) } else { Content::Audio { transcript: text.into() } };
    Item::message("i", role, vec![content], ItemStatus::Completed)
}

/// What one turn took (seconds from the request).
#[derive(Default, Debug)]
struct Timing {
    first_text: Option<f64>,
    first_phrase: Option<f64>,
    call: Option<f64>,
    text: String,
    tokens: usize,
    prompt: usize,
    cached: usize,
    total: f64,
}

/// A turn; with `ahead`, its prompt is first computed (as while the user is still speaking and
/// a transcript preview already holds their words), and timing starts after that.
fn turn(model: &LocalModel, instructions: &str, items: &[Item], choice: ToolChoice, ahead: bool) -> Timing {
    let t = model.turn(&request(instructions, items, choice), &|| false).expect("turn");
    if ahead {
        model.prefill(&t, &|| false).expect("prefill");
    }
    let started = Instant::now();
    let mut timing = Timing::default();
    let mut pending = String::new();
    let finish = model
        .generate(&t, &AtomicBool::new(false), &|| false, &mut |o| {
            let now = started.elapsed().as_secs_f64();
            match o {
                Output::Text(piece) => {
                    timing.first_text.get_or_insert(now);
                    timing.text.push_str(&piece);
                    pending.push_str(&piece);
                    if timing.first_phrase.is_none() && take_phrase(&mut pending, 0).is_some() {
                        timing.first_phrase = Some(now);
                    }
                }
                Output::CallStart(_) => {}
                Output::CallDone { .. } => timing.call = Some(now),
            }
        })
        .expect("generation");
    timing.total = started.elapsed().as_secs_f64();
    if timing.first_text.is_some() && timing.first_phrase.is_none() {
        timing.first_phrase = Some(timing.total);
    }
    timing.tokens = finish.output_tokens;
    timing.prompt = finish.prompt_tokens;
    timing.cached = finish.cached_tokens;
    timing
}

/// `--passes`: the time of one forward pass of 1 to 256 new tokens after a 600-token context
/// (the cost curve that sets the prefill chunk), and decoding's pass of 1. `--pass N` times
/// only a pass of N tokens, 60 times (for a profiler).
fn passes(gguf: &std::path::Path, only: Option<usize>) {
    let t = Instant::now();
    let local = LocalModel::load(gguf).expect("loads");
    let model = local.model();
    println!("load {:.2} s, peak RSS {:.0} MiB", t.elapsed().as_secs_f64(), peak_rss_mib());
    // Token ids do not change the cost; spread them over the vocabulary.
    let ids = |n: usize, from: usize| -> Vec<u32> { (from..from + n).map(|i| (i * 7919 % 150_000) as u32).collect() };
    let mut context = model.new_cache();
    for chunk in ids(600, 0).chunks(16) {
        model.forward(chunk, &mut context).expect("context");
    }
    let (sizes, reps) = match only {
        Some(size) => (vec![size], 60),
        None => (vec![1usize, 2, 4, 8, 12, 16, 24, 32, 48, 64, 128, 256], 3),
    };
    for size in sizes {
        let mut times = Vec::new();
        for rep in 0..reps {
            let mut cache = context.clone();
            let t = Instant::now();
            model.forward(&ids(size, 1000 + rep), &mut cache).expect("pass");
            times.push(t.elapsed().as_secs_f64() * 1000.0);
        }
        let best = times.iter().copied().fold(f64::MAX, f64::min);
        println!(
            "pass of {size:>3} tokens: best {best:7.1} ms, median {:7.1} ms, {:6.1} tokens/s",
            percentile(times, 0.5),
            size as f64 / best * 1000.0
        );
    }
    if only.is_some() {
        return;
    }
    // Decoding steps of several conversations at once: one token each, one pass.
    for conversations in [1usize, 2, 3, 4] {
        let mut times = Vec::new();
        for rep in 0..3 {
            let mut caches: Vec<_> = (0..conversations).map(|_| context.clone()).collect();
            let tokens: Vec<Vec<u32>> = (0..conversations).map(|c| ids(1, 2000 + 10 * rep + c)).collect();
            let mut runs: Vec<(&[u32], &mut brazen_llm::model::KvCache)> =
                tokens.iter().map(Vec::as_slice).zip(caches.iter_mut()).collect();
            let t = Instant::now();
            model.forward_batch(&mut runs).expect("batched pass");
            times.push(t.elapsed().as_secs_f64() * 1000.0);
        }
        let best = times.iter().copied().fold(f64::MAX, f64::min);
        println!(
            "decoding step of {conversations} conversation(s) in one pass: best {best:6.1} ms, median {:6.1} ms",
            percentile(times, 0.5)
        );
    }
    println!("peak RSS {:.0} MiB", peak_rss_mib());
}

/// `--decode`: steady decoding of one conversation — 64 one-token passes in a row after a
/// 600-token context, each appended to the cache (what a reply costs per token).
fn decode(gguf: &std::path::Path) {
    let local = LocalModel::load(gguf).expect("loads");
    let model = local.model();
    let mut cache = model.new_cache();
    let context: Vec<u32> = (0..600u32).map(|i| i * 7919 % 150_000).collect();
    for chunk in context.chunks(64) {
        model.forward(chunk, &mut cache).expect("context");
    }
    let mut times = Vec::new();
    for i in 0..64u32 {
        let t = Instant::now();
        model.forward(&[(i * 104_729) % 150_000], &mut cache).expect("pass");
        times.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    let mean = times.iter().sum::<f64>() / times.len() as f64;
    println!(
        "decoding 64 tokens after 600: mean {mean:.1} ms/token, median {:.1}, best {:.1}",
        percentile(times.clone(), 0.5),
        times.iter().copied().fold(f64::MAX, f64::min)
    );
}

/// `--gemv`: one row times each block's weights in turn (so they come from memory, not the
/// cache, as in a decoding step), candle's product against `brazen_llm::gemv`.
fn gemv(gguf: &std::path::Path) {
    use candle_core::quantized::{QMatMul, gguf_file};
    use candle_core::{Device, Module, Tensor};
    let mut file = std::fs::File::open(gguf).expect("opens");
    let content = gguf_file::Content::read(&mut file).expect("reads");
    for kind in ["ffn_gate", "ffn_up", "attn_q", "ffn_down"] {
        let names: Vec<String> = (0..28).map(|b| format!("blk.{b}.{kind}.weight")).collect();
        let ws: Vec<_> = names.iter().map(|n| content.tensor(&mut file, n, &Device::Cpu).expect("tensor")).collect();
        let qms: Vec<_> = names
            .iter()
            .map(|n| {
                QMatMul::from_qtensor(content.tensor(&mut file, n, &Device::Cpu).expect("tensor")).expect("qmatmul")
            })
            .collect();
        let (n, k) = ws[0].shape().dims2().expect("2d");
        let x: Vec<f32> = (0..k).map(|i| ((i * 37 % 101) as f32 - 50.0) / 50.0).collect();
        let xt = Tensor::from_vec(x.clone(), (1, k), &Device::Cpu).expect("x");
        let (mut a, mut b, mut diff) = (Vec::new(), Vec::new(), 0f32);
        for _ in 0..6 {
            let t = Instant::now();
            let reference: Vec<Vec<f32>> = qms
                .iter()
                .map(|q| q.forward(&xt).expect("candle").flatten_all().expect("flat").to_vec1().expect("v"))
                .collect();
            a.push(t.elapsed().as_secs_f64() * 1e3);
            let t = Instant::now();
            let ours: Vec<Vec<f32>> = ws
                .iter()
                .map(|w| {
                    brazen_llm::gemv::products(&[w], &x, 1, brazen_llm::gemv::MAX_ROWS)
                        .expect("ours")
                        .expect("applies")
                        .remove(0)
                })
                .collect();
            b.push(t.elapsed().as_secs_f64() * 1e3);
            for (r, o) in reference.iter().zip(&ours) {
                diff = r.iter().zip(o).map(|(r, o)| (r - o).abs()).fold(diff, f32::max);
            }
        }
        println!(
            "{kind} x28 [{n}x{k}] {:?}..: candle median {:.2} ms, compact {:.2} ms; max diff {diff:.5}",
            ws.iter().map(|w| format!("{:?}", w.dtype())).collect::<std::collections::BTreeSet<_>>(),
            percentile(a, 0.5),
            percentile(b, 0.5)
        );
    }
}

/// The directory of the installed model `name` (installed first when missing).
fn installed(name: &str) -> std::path::PathBuf {
    Store::new(Store::default_root())
        .install(Manifest::builtin().get(name).expect("in the manifest"), &progress())
        .expect("installed")
}

/// What callers say up to a pause: sentences that go on, then finished ones.
const PAUSES: [(&str, bool); 36] = [
    ("I would like to order", false),
    ("Can you tell me", false),
    ("I am looking for", false),
    ("My phone number is", false),
    ("I was wondering if", false),
    ("What I need is", false),
    ("I'd like to know", false),
    ("Is it possible to", false),
    ("Could you check whether", false),
    ("So the problem is that", false),
    ("Do you have any", false),
    ("I want to buy a", false),
    ("My name is", false),
    ("I'm calling about", false),
    ("My phone number is five five five", false),
    ("I bought it last weekend", false),
    ("What time do you open on Saturday?", true),
    ("Do you ship to Canada?", true),
    ("I want to return the blue running shoes.", true),
    ("Which jackets are warm enough for winter?", true),
    ("How long does delivery take?", true),
    ("Can I pay with a gift card?", true),
    ("I bought a coffee machine last week and it stopped working.", true),
    ("Two pairs of hiking boots, please.", true),
    ("I would like to order two pairs of hiking boots.", true),
    ("Can you tell me when my package will arrive?", true),
    ("I am looking for a warm jacket for my daughter.", true),
    ("My phone number is five five five, two one two, three four.", true),
    ("Where is my package?", true),
    ("Do you have these boots in size ten?", true),
    ("What's your return policy?", true),
    ("Is the store open on Sunday?", true),
    ("Tell me about your tents.", true),
    ("I need a refund for my order.", true),
    ("Yes, please.", true),
    ("Thank you, that's all.", true),
];

/// `--judge`: each pause of [`PAUSES`] judged from its words, after a conversation whose prompt
/// up to the user's message was computed ahead (as after an answer): by the conversational
/// model (a pass of its words, as the worker does with `turn_judge = "llm"`) and by the small judge (its context computed ahead too, as the worker
/// does when the answer goes out). Prints each verdict and time, and the medians.
fn judge(gguf: &std::path::Path) {
    let local = LocalModel::load(gguf).expect("loads");
    let small = brazen_llm::judge::TextJudge::load(&installed("smollm2-135m").join("model.gguf")).expect("loads");
    let instructions = format!("{} {STORE_FACTS}", RETAIL_INSTRUCTIONS.trim());
    let history = vec![message(Role::User, "Hi there."), message(Role::Assistant, "Hello! How can I help you today?")];
    let answered = local.turn(&request(&instructions, &history, ToolChoice::Auto), &|| false).expect("turn");
    local.prefill(&answered, &|| false).expect("the conversation computed ahead");
    small.prepare(&request(&instructions, &history, ToolChoice::Auto)).expect("the judge's context computed ahead");
    let (mut big_ms, mut small_ms) = (Vec::new(), Vec::new());
    let greeting = history.last().map(|m| m.text()).unwrap_or_default();
    println!("| words | finished | 1.5B: p, ms | 135M judge: raw p (what its scale is fitted on), p, ms |");
    println!("| --- | --- | --- | --- |");
    for (words, finished) in PAUSES {
        let mut items = history.clone();
        items.push(message(Role::User, words));
        let req = request(&instructions, &items, ToolChoice::Auto);
        let t = Instant::now();
        let turn = local.turn(&req, &|| false).expect("turn");
        let big = local.end_of_turn(&turn, &|| false).expect("judged").expect("not stopped");
        big_ms.push(t.elapsed().as_secs_f64() * 1000.0);
        let t = Instant::now();
        let p = small.judge(&req, &|| false).expect("judged").expect("not stopped");
        small_ms.push(t.elapsed().as_secs_f64() * 1000.0);
        let raw = small.raw_probability(Some(&greeting), words, &|| false).expect("judged").expect("not stopped");
        println!(
            "| {words} | {finished} | {big:.3}, {:.0} | {raw:.3}, {p:.3}, {:.0} |",
            big_ms.last().unwrap(),
            small_ms.last().unwrap()
        );
    }
    let (big, small) = (percentile(big_ms, 0.5), percentile(small_ms, 0.5));
    println!("median time: 1.5B {big:.0} ms, 135M judge {small:.0} ms ({:.2}×)", small / big);
}

fn main() {
    // As `serve` does.
    brazen_llm::allocator::keep_freed_memory();
    let arg = |name: &str| std::env::args().any(|a| a == name);
    let gguf = || installed("qwen2.5-coder-1.5b").join("model.gguf");
    if arg("--gemv") {
        return gemv(&gguf());
    }
    if arg("--decode") {
        return decode(&gguf());
    }
    if arg("--passes") {
        return passes(&gguf(), None);
    }
    if arg("--pass") {
        let size = std::env::args().skip_while(|a| a != "--pass").nth(1).and_then(|n| n.parse().ok());
        let Some(size) = size.filter(|&n: &usize| n > 0) else {
            eprintln!("--pass needs a number of tokens (1 or more)");
            std::process::exit(2);
        };
        return passes(&gguf(), Some(size));
    }
    if arg("--judge") {
        return judge(&gguf());
    }
    let rounds: usize =
        std::env::args().skip_while(|a| a != "--rounds").nth(1).and_then(|n| n.parse().ok()).unwrap_or(8);
    let dir = installed("qwen2.5-coder-1.5b");
    let t = Instant::now();
    let model = LocalModel::load(&dir.join("model.gguf")).expect("loads");
    let load = t.elapsed().as_secs_f64();
    let t = Instant::now();
    model.warm_up().expect("warm-up");
    let warm = t.elapsed().as_secs_f64();
    let instructions = format!("{} {STORE_FACTS}", RETAIL_INSTRUCTIONS.trim());

    let greetings = ["hi there", "hello", "good morning", "hey"];
    let small_talk =
        ["can you hear me okay", "how are you doing today", "what can you help me with", "thanks for picking up"];
    // Odd rounds compute turn 2's prompt ahead; the small talk repeats every four rounds so both
    // kinds see every sentence.
    let questions = [
        "do you have any running shoes under sixty dollars",
        "where is my order 7 7 3 1",
        "what is your return policy",
        "show me tents under one hundred fifty dollars",
    ];
    let (mut first_token, mut first_phrase, mut call, mut decode) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let (mut first_token_ahead, mut first_phrase_ahead) = (Vec::new(), Vec::new());
    let mut prompt_tokens = 0;
    let mut first_prefill = 0.0;
    for round in 0..rounds {
        let i = (round / 2) % greetings.len();
        // Turn 1 (a new conversation: the system prompt is cached after the first round).
        let mut items = vec![message(Role::User, greetings[i])];
        let t1 = turn(&model, &instructions, &items, ToolChoice::Auto, false);
        if round == 0 {
            first_prefill = t1.first_text.unwrap_or(t1.total);
        }
        items.push(message(Role::Assistant, &t1.text));
        // Turn 2: small talk, answered in speech.
        items.push(message(Role::User, small_talk[i]));
        let ahead = round % 2 == 1;
        let t2 = turn(&model, &instructions, &items, ToolChoice::Auto, ahead);
        if let (Some(a), Some(b)) = (t2.first_text, t2.first_phrase) {
            let (tokens, phrases) = if ahead {
                (&mut first_token_ahead, &mut first_phrase_ahead)
            } else {
                (&mut first_token, &mut first_phrase)
            };
            tokens.push(a * 1000.0);
            phrases.push(b * 1000.0);
        }
        if t2.tokens > 8 {
            decode.push((t2.tokens - 1) as f64 / (t2.total - t2.first_text.unwrap_or(0.0)).max(1e-3));
        }
        items.push(message(Role::Assistant, &t2.text));
        // Turn 3: a question that needs a tool.
        items.push(message(Role::User, questions[i]));
        let t3 = turn(&model, &instructions, &items, ToolChoice::Auto, false);
        if let Some(c) = t3.call {
            call.push(c * 1000.0);
        }
        let r = request(&instructions, &items, ToolChoice::Auto);
        prompt_tokens = model.prompt_len(&model.turn(&r, &|| false).expect("turn"));
        eprintln!("round {round}: {t2:?}\n          {t3:?}");
    }
    let system_tokens = {
        let r = request(&instructions, &[], ToolChoice::Auto);
        model.prompt_len(&model.turn(&r, &|| false).expect("turn"))
    };
    println!("llm load                    {load:.2} s (+ warm-up {warm:.2} s)");
    println!("system prompt + 5 tools     {system_tokens} tokens; turn-3 prompt {prompt_tokens} tokens");
    println!("first turn, nothing cached  first text {:.0} ms", first_prefill * 1000.0);
    println!(
        "turn 2, transcript → first token   p50 {:.0} ms, p95 {:.0} ms",
        percentile(first_token.clone(), 0.5),
        percentile(first_token, 0.95)
    );
    println!(
        "turn 2, transcript → first phrase  p50 {:.0} ms, p95 {:.0} ms",
        percentile(first_phrase.clone(), 0.5),
        percentile(first_phrase, 0.95)
    );
    println!(
        "turn 2, prompt computed ahead → first token p50 {:.0} ms, first phrase p50 {:.0} ms",
        percentile(first_token_ahead, 0.5),
        percentile(first_phrase_ahead, 0.5)
    );
    println!(
        "turn 3, transcript → tool call     p50 {:.0} ms, p95 {:.0} ms",
        percentile(call.clone(), 0.5),
        percentile(call, 0.95)
    );
    println!("decode                      p50 {:.1} tokens/s", percentile(decode, 0.5));

    // The same small-talk turns while Piper speaks without pause on the same two cores (as
    // when an earlier phrase is synthesised during decoding).
    let ort = Store::new(Store::default_root())
        .install(Manifest::builtin().get("onnxruntime").expect("in the manifest"), &progress())
        .expect("installed")
        .join(brazen_speech::ONNX_RUNTIME_LIBRARY);
    let piper = Store::new(Store::default_root())
        .install(Manifest::builtin().get("piper-en-us-joe-medium").expect("in the manifest"), &progress())
        .expect("installed");
    let voice = brazen_speech::PiperVoice::load(
        &piper.join("en_US-joe-medium.onnx"),
        &piper.join("en_US-joe-medium.onnx.json"),
        &ort,
    )
    .expect("Piper loads");
    let stop = std::sync::Arc::new(AtomicBool::new(false));
    let speaking = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut seconds = 0.0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let speech =
                    voice.synthesize("Your order of two blue running shoes shipped this morning from Leeds.", 1.0);
                seconds += speech.map_or(0.0, |s| s.samples.len() as f64 / s.sample_rate as f64);
            }
            seconds
        })
    };
    let (mut busy_decode, mut busy_phrase) = (Vec::new(), Vec::new());
    for (round, talk) in small_talk.iter().enumerate() {
        let items = vec![
            message(Role::User, greetings[round]),
            message(Role::Assistant, "Hello! How can I help you today?"),
            message(Role::User, talk),
        ];
        let t = turn(&model, &instructions, &items, ToolChoice::Auto, false);
        if let Some(p) = t.first_phrase {
            busy_phrase.push(p * 1000.0);
        }
        if t.tokens > 8 {
            busy_decode.push((t.tokens - 1) as f64 / (t.total - t.first_text.unwrap_or(0.0)).max(1e-3));
        }
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let spoken = speaking.join().unwrap_or(0.0);
    println!(
        "with Piper busy alongside   decode p50 {:.1} tokens/s, first phrase p50 {:.0} ms ({spoken:.0} s of speech made meanwhile)",
        percentile(busy_decode, 0.5),
        percentile(busy_phrase, 0.5)
    );
    println!("peak RSS (LLM engine)       {:.0} MiB", peak_rss_mib());
}
