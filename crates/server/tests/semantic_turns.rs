//! Semantic end of turn through the server with the real models (Silero VAD, Smart Turn v3.2,
//! Whisper tiny.en): a caller who pauses for half a second in the middle of a sentence is waited
//! for — one turn with all their words — where silence alone (`server_vad`, 300 ms) cuts them
//! off; and a finished question still ends its turn. The pause is judged by the audio (Smart
//! Turn), the words and the local language model. The caller is Piper's voice without its
//! random variation; the sentence is written with a hesitation ("I would like to order...
//! two pairs…") so the voice pauses with the intonation of a sentence going on, and that pause
//! is stretched to the length tested. It is streamed at real time, as a microphone would.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use brazen_speech::PiperVoice;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

mod common;
use common::{Server, send};

fn voice() -> PiperVoice {
    common::piper_joe()
}

/// `text` said by `voice` at 24 kHz; the voice's pause after the word `after` (written with
/// its "...") stretched to `pause_ms`; framed by 300 ms of silence before and `tail_ms` after.
fn utterance(voice: &PiperVoice, text: &str, after: &str, pause_ms: usize, tail_ms: usize) -> Vec<i16> {
    let speech = voice.synthesize(text, 1.0).unwrap();
    let mut samples = speech.samples.clone();
    if !after.is_empty() {
        let word = speech.words(text).into_iter().find(|w| w.text == after).unwrap_or_else(|| panic!("{after}"));
        let paused = brazen_testkit::hesitation::stretch_pause(
            &mut samples,
            speech.sample_rate,
            word.start + word.len,
            pause_ms,
        );
        assert!(paused > speech.sample_rate as usize / 20, "the voice pauses after {after:?}");
    }
    [vec![0; 24 * 300], common::at_24k(&samples, speech.sample_rate), vec![0; 24 * tail_ms]].concat()
}

/// What the server made of one utterance.
#[derive(Debug, Default)]
struct Heard {
    transcripts: Vec<String>,
    /// From the end of the utterance's sound being sent to `speech_stopped`, per turn.
    stopped_after_ms: Vec<f64>,
}

/// Streams `audio` in 40 ms chunks at real time into a fresh session with `detection`.
async fn hear(port: u16, detection: Value, audio: &[i16]) -> Heard {
    let (mut ws, _) = common::connect(port, "/voice-live/realtime", &[]).await.unwrap();
    common::until(&mut ws, "session.created").await;
    let mut detection = detection;
    detection["create_response"] = json!(false);
    send(
        &mut ws,
        json!({"type": "session.update", "session": {"turn_detection": detection,
        "input_audio_transcription": {"model": "whisper-1"}}}),
    )
    .await;
    common::until(&mut ws, "session.updated").await;
    let last_sound = audio.iter().rposition(|s| s.unsigned_abs() > 300).unwrap_or(0);
    let started = Instant::now();
    let mut sound_ended_at = None;
    let mut heard = Heard::default();
    let mut committed = 0;
    let events = |heard: &mut Heard, committed: &mut usize, e: Value, sound_ended_at: Option<Instant>| match e["type"]
        .as_str()
        .unwrap_or("")
    {
        "input_audio_buffer.speech_stopped" => {
            let at = sound_ended_at.map_or(f64::NAN, |t: Instant| t.elapsed().as_secs_f64() * 1_000.0);
            heard.stopped_after_ms.push(at);
        }
        "input_audio_buffer.committed" => *committed += 1,
        "conversation.item.input_audio_transcription.completed" => {
            heard.transcripts.push(e["transcript"].as_str().unwrap_or_default().to_owned())
        }
        "error" => panic!("{e}"),
        _ => {}
    };
    for (i, chunk) in audio.chunks(960).enumerate() {
        let bytes: Vec<u8> = chunk.iter().flat_map(|s| s.to_le_bytes()).collect();
        send(&mut ws, json!({"type": "input_audio_buffer.append", "audio": B64.encode(bytes)})).await;
        if sound_ended_at.is_none() && (i + 1) * 960 > last_sound {
            sound_ended_at = Some(Instant::now());
        }
        let due = started + Duration::from_millis(40 * (i as u64 + 1));
        while let Some(e) = common::next_within(&mut ws, due.saturating_duration_since(Instant::now())).await {
            events(&mut heard, &mut committed, e, sound_ended_at);
        }
    }
    while heard.transcripts.len() < committed {
        let e = common::next_within(&mut ws, Duration::from_secs(60)).await.expect("the transcripts");
        events(&mut heard, &mut committed, e, sound_ended_at);
    }
    heard
}

fn words(text: &str) -> String {
    text.to_lowercase().chars().filter(|c| c.is_alphanumeric() || c.is_whitespace()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_caller_who_pauses_mid_sentence_is_waited_for_and_a_finished_question_is_answered() {
    let server = Server::start(&[
        "--vad",
        "silero",
        "--asr",
        "whisper-tiny-en",
        "--turn",
        "smart-turn",
        "--llm",
        "qwen2.5-coder-1.5b",
    ]);
    assert_eq!(server.engines()["turn"], "smart-turn-v3.2");
    let voice = voice();
    let pauses = [
        ("I would like to order... two pairs of hiking boots.", "order...", ["order", "boots"]),
        ("Can you tell me... when my package will arrive?", "me...", ["tell", "arrive"]),
        ("I am looking for... a warm jacket for my daughter.", "for...", ["looking", "daughter"]),
    ];
    let semantic = json!({"type": "semantic_vad", "eagerness": "auto"});
    for (text, after, [first, last]) in pauses {
        let audio = utterance(&voice, text, after, 500, 2_500);
        let heard = hear(server.port, semantic.clone(), &audio).await;
        eprintln!("semantic: {text:?} -> {heard:?}");
        assert_eq!(heard.transcripts.len(), 1, "one turn for {text:?}: {heard:?}");
        let said = words(&heard.transcripts[0]);
        assert!(said.contains(first) && said.contains(last), "all the words of {text:?}: {said:?}");
    }
    // The same pause with silence alone (300 ms): the caller is cut off.
    let (text, after, _) = pauses[0];
    let heard = hear(
        server.port,
        json!({"type": "server_vad", "silence_duration_ms": 300}),
        &utterance(&voice, text, after, 500, 1_500),
    )
    .await;
    assert_eq!(heard.transcripts.len(), 2, "silence alone cuts at the pause: {heard:?}");

    // A finished question ends its turn, in well under the timeout of an unfinished one.
    let heard =
        hear(server.port, semantic, &utterance(&voice, "What time do you open on Saturday?", "", 0, 2_500)).await;
    eprintln!("semantic, finished: {heard:?}");
    assert_eq!(heard.transcripts.len(), 1, "{heard:?}");
    assert!(words(&heard.transcripts[0]).contains("saturday"), "{heard:?}");
    assert!(heard.stopped_after_ms[0] < 1_800.0, "{heard:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_small_turn_judge_waits_for_a_paused_caller_and_ends_a_finished_question() {
    // No audio model: the words and the small judge decide alone.
    let server = Server::start(&[
        "--vad",
        "silero",
        "--asr",
        "whisper-tiny-en",
        "--turn",
        "none",
        "--turn-judge",
        "smollm2-135m",
        "--llm",
        "qwen2.5-coder-1.5b",
    ]);
    assert_eq!(server.engines()["turn_judge"], "smollm2-135m");
    let voice = voice();
    let semantic = json!({"type": "semantic_vad", "eagerness": "auto"});
    let text = "I would like to order... two pairs of hiking boots.";
    let heard = hear(server.port, semantic, &utterance(&voice, text, "order...", 600, 2_500)).await;
    eprintln!("small judge: {text:?} -> {heard:?}");
    assert_eq!(heard.transcripts.len(), 1, "one turn: {heard:?}");
    let said = words(&heard.transcripts[0]);
    assert!(said.contains("order") && said.contains("boots"), "{said:?}");
    // Voice Live's rule, with a long timeout: 200 ms of silence after a finished message, 2.7 s
    // while the judge is unsure or has not answered.
    let detection = json!({"type": "azure_semantic_vad", "silence_duration_ms": 200,
        "end_of_utterance_detection": {"model": "semantic_detection_v1", "timeout_ms": 5000}});
    let heard =
        hear(server.port, detection, &utterance(&voice, "What time do you open on Saturday?", "", 0, 4_000)).await;
    eprintln!("small judge, finished: {heard:?}");
    assert_eq!(heard.transcripts.len(), 1, "{heard:?}");
    // Judged finished: the turn ends once the verdict is in, long before the 2.7 s a missing or
    // unsure verdict waits.
    assert!(heard.stopped_after_ms[0] < 2_000.0, "{heard:?}");
}
