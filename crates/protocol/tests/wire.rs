//! Reading what real clients send and writing what they accept: the captured messages of
//! `shared/reference/CLIENTS.md`, and the shapes the SDKs' own types require.

use brazen_protocol::client::{ClientEvent, parse};
use brazen_protocol::read::Field;
use brazen_protocol::{
    AudioFormat, Content, Dialect, Item, ItemStatus, Modality, PartRef, Response, ResponseStatus, Role, ServerEvent,
    SessionConfig, ToolChoice, Usage, Voice,
};
use serde_json::{Value, json};

/// `azure-ai-voicelive` 1.3.1 as captured: `type` last, no event_id, voice rate as a string, an
/// avatar with crop, explicit nulls.
const VOICELIVE_PY_UPDATE: &str = r#"{"session": {"modalities": ["text","audio"], "instructions": "You are a test assistant.",
  "voice": {"name": "en-US-AvaMultilingualNeural", "rate": "1.0", "type": "azure-standard"},
  "avatar": {"character": "lisa", "style": "casual-sitting", "customized": false,
             "video": {"codec": "h264", "bitrate": 1000000, "resolution": {"width": 1920, "height": 1080},
                       "crop": {"top_left": [560, 0], "bottom_right": [1360, 1080]}},
             "output_protocol": "webrtc"},
  "input_audio_format": "pcm16", "output_audio_format": "pcm16",
  "input_audio_transcription": {"model": "azure-speech"},
  "turn_detection": {"threshold": 0.3, "prefix_padding_ms": 300, "silence_duration_ms": 500, "type": "server_vad"},
  "temperature": 0.9, "tools": null, "input_audio_noise_reduction": null, "instructions": null,
  "input_audio_echo_cancellation": null, "tool_choice": null}, "type": "session.update"}"#;

/// `@openai/agents-realtime` 0.20.0 as captured.
const AGENTS_GA_UPDATE: &str = r#"{"type":"session.update","session":{"type":"realtime","instructions":"be terse","model":"gpt-realtime","output_modalities":["audio"],
  "audio":{"input":{"format":{"type":"audio/pcm","rate":24000},"noise_reduction":null,"transcription":{"model":"gpt-4o-mini-transcribe"},
  "turn_detection":{"type":"semantic_vad"}},"output":{"format":{"type":"audio/pcm","rate":24000},"speed":1}},
  "tools":[{"type":"function","name":"get_weather","description":"w","parameters":{"type":"object","properties":{"city":{"type":"string"}}}}]}}"#;

/// `openai` beta as captured.
const BETA_UPDATE: &str = r#"{"type":"session.update","session":{"modalities":["text","audio"],"voice":"alloy","input_audio_format":"pcm16",
  "output_audio_format":"pcm16","input_audio_transcription":{"model":"whisper-1"},"turn_detection":{"type":"server_vad","threshold":0.5}}}"#;

fn apply(config: &mut SessionConfig, frame: &str) {
    match parse(frame).expect("parses").event {
        ClientEvent::SessionUpdate(patch) => config.apply(*patch),
        other => panic!("not a session.update: {other:?}"),
    }
}

#[test]
fn voice_live_python_update_is_read_field_for_field() {
    let mut config = SessionConfig::new("sess_1", "gpt-4o-realtime");
    config.instructions = "earlier".into();
    apply(&mut config, VOICELIVE_PY_UPDATE);
    assert_eq!(config.instructions, "", "a duplicated key: the last (null) wins and unsets");
    assert_eq!(config.voice.rate, Some(1.0));
    assert_eq!(config.voice.kind.as_deref(), Some("azure-standard"));
    assert_eq!(config.turn_detection.as_ref().unwrap().threshold, 0.3);
    assert_eq!(config.input_audio_transcription.as_ref().unwrap().model, "azure-speech");
    assert_eq!(config.avatar.as_ref().unwrap().to_json()["video"]["crop"]["top_left"], json!([560, 0]));
    assert!(config.tools.is_empty() && config.tool_choice == ToolChoice::Auto);
    // Written back in the Voice Live dialect, the voice object keeps its shape and rate string.
    let session = config.to_json(Dialect::VoiceLive);
    assert_eq!(session["voice"], json!({"type": "azure-standard", "name": "en-US-AvaMultilingualNeural", "rate": "1"}));
    assert_eq!(session["input_audio_sampling_rate"], 24_000);
    assert_eq!(session["avatar"]["character"], "lisa");
}

#[test]
fn ga_update_from_the_agents_sdk_maps_onto_the_same_config() {
    let mut config = SessionConfig::new("sess_1", "m");
    apply(&mut config, AGENTS_GA_UPDATE);
    assert_eq!(config.modalities, [Modality::Text, Modality::Audio]);
    assert_eq!(config.turn_detection.as_ref().unwrap().kind, "semantic_vad");
    assert_eq!(config.input_audio_transcription.as_ref().unwrap().model, "gpt-4o-mini-transcribe");
    assert_eq!(config.voice.rate, Some(1.0));
    assert_eq!(config.tools[0].name, "get_weather");
    let s = config.to_json(Dialect::Ga);
    assert_eq!(s["type"], "realtime");
    assert_eq!(s["output_modalities"], json!(["audio"]));
    assert_eq!(s["audio"]["input"]["format"], json!({"type": "audio/pcm", "rate": 24000}));
    assert_eq!(s["audio"]["input"]["turn_detection"]["type"], "semantic_vad");
    assert_eq!(s["tools"][0]["parameters"]["properties"]["city"]["type"], "string");
    match parse(AGENTS_GA_UPDATE).unwrap().event {
        ClientEvent::SessionUpdate(p) => assert!(p.ga_shape),
        _ => unreachable!(),
    }
}

#[test]
fn beta_update_and_session_shape() {
    let mut config = SessionConfig::new("sess_1", "my-local-model");
    apply(&mut config, BETA_UPDATE);
    let s = config.to_json(Dialect::Beta);
    assert_eq!(s["voice"], "alloy");
    assert_eq!(s["input_audio_format"], "pcm16");
    assert!(s.get("model").is_none(), "the beta SDK only accepts OpenAI model names");
    assert_eq!(s["max_response_output_tokens"], "inf");
    assert_eq!(SessionConfig::new("s", "m").to_json(Dialect::Beta)["turn_detection"]["type"], "server_vad");
}

#[test]
fn formats_in_every_spelling() {
    let mut config = SessionConfig::new("s", "m");
    apply(
        &mut config,
        r#"{"type":"session.update","session":{"input_audio_format":"g711_alaw","output_audio_format":"pcm16_16000hz"}}"#,
    );
    assert_eq!(
        (config.input_audio_format, config.output_audio_format),
        (AudioFormat::G711Alaw, AudioFormat::Pcm16 { rate: 16_000 })
    );
    assert_eq!(config.to_json(Dialect::VoiceLive)["output_audio_format"], "pcm16_16000hz");
    apply(&mut config, r#"{"type":"session.update","session":{"audio":{"input":{"format":{"type":"audio/pcmu"}}}}}"#);
    assert_eq!(config.input_audio_format, AudioFormat::G711Ulaw);
    assert_eq!(config.to_json(Dialect::Ga)["audio"]["input"]["format"], json!({"type": "audio/pcmu"}));
}

#[test]
fn tolerant_reading() {
    // Duplicate event_id: the last wins. Unknown fields are ignored. Numbers as strings.
    let msg = parse(r#"{"event_id":"a","type":"session.update","event_id":"b","future_field":1,"session":{"temperature":"0.7","speed_hint":2}}"#).unwrap();
    assert_eq!(msg.event_id.as_deref(), Some("b"));
    match msg.event {
        ClientEvent::SessionUpdate(p) => assert_eq!(p.temperature, Field::Set(0.7)),
        _ => unreachable!(),
    }
    // Avatar and animation listed as modalities.
    match parse(r#"{"type":"session.update","session":{"modalities":["text","audio","avatar","animation"]}}"#)
        .unwrap()
        .event
    {
        ClientEvent::SessionUpdate(p) => assert_eq!(
            p.modalities,
            Field::Set(vec![Modality::Text, Modality::Audio, Modality::Avatar, Modality::Animation])
        ),
        _ => unreachable!(),
    }
    // The Voice Live avatar connect and a numeric event id.
    let msg = parse(r#"{"client_sdp": "eyJ0eXBlIjoib2ZmZXIifQ==", "type": "session.avatar.connect", "event_id": 42}"#)
        .unwrap();
    assert_eq!(msg.event_id.as_deref(), Some("42"));
    assert!(matches!(msg.event, ClientEvent::AvatarConnect { .. }));
    // response.create with no response object at all.
    assert!(matches!(parse(r#"{"type":"response.create"}"#).unwrap().event, ClientEvent::ResponseCreate(_)));
}

#[test]
fn errors_name_the_field_and_keep_the_event_id() {
    let cases: &[(&str, &str, Option<&str>)] = &[
        (r#"{"type":"bogus","event_id":"e1"}"#, "invalid_event_type", Some("type")),
        (r#"{"event_id":"e1"}"#, "missing_required_parameter", Some("type")),
        (r#"{"type":"input_audio_buffer.append","event_id":"e1","audio":"@@"}"#, "invalid_audio", Some("audio")),
        (r#"{"type":"input_audio_buffer.append","event_id":"e1","audio":5}"#, "invalid_type", Some("audio")),
        (
            r#"{"type":"session.update","event_id":"e1","session":{"voice":{"type":"azure-standard","name":"x","rate":"fast"}}}"#,
            "invalid_value",
            Some("session.voice.rate"),
        ),
        (
            r#"{"type":"session.update","event_id":"e1","session":{"voice":{"name":"x","rate":3}}}"#,
            "invalid_value",
            Some("session.voice.rate"),
        ),
        (
            r#"{"type":"session.update","event_id":"e1","session":{"modalities":["audio"]}}"#,
            "invalid_value",
            Some("session.modalities"),
        ),
        (
            r#"{"type":"session.update","event_id":"e1","session":{"tools":[{"type":"mcp","server_label":"x"}]}}"#,
            "unsupported_feature",
            Some("session.tools[0].type"),
        ),
        (
            r#"{"type":"conversation.item.create","event_id":"e1","item":{"type":"message","role":"assistant","content":[{"type":"input_text","text":"x"}]}}"#,
            "invalid_value",
            Some("item.content[0].type"),
        ),
        (
            r#"{"type":"conversation.item.truncate","event_id":"e1","item_id":"i","audio_end_ms":-5}"#,
            "invalid_value",
            Some("audio_end_ms"),
        ),
        (
            r#"{"type":"conversation.item.truncate","event_id":"e1","item_id":"i","audio_end_ms":"x"}"#,
            "invalid_type",
            Some("audio_end_ms"),
        ),
    ];
    for (frame, code, param) in cases {
        let e = parse(frame).expect_err(frame);
        assert_eq!(
            (e.code, e.param.as_deref(), e.event_id.as_deref()),
            (*code, *param, Some("e1")),
            "{frame}: {}",
            e.message
        );
    }
    let e = parse("[1,2]").unwrap_err();
    assert_eq!(e.code, "invalid_json");
}

fn at() -> PartRef {
    PartRef { response_id: "resp_1".into(), item_id: "item_1".into(), output_index: 0, content_index: 0 }
}

fn encoded(event: &ServerEvent, dialect: Dialect) -> Value {
    serde_json::from_str(&event.encode(dialect, "event_1").expect("sent in this dialect")).unwrap()
}

#[test]
fn event_names_follow_the_dialect() {
    let delta = ServerEvent::AudioDelta { at: at(), delta: "AAA=".into() };
    assert_eq!(encoded(&delta, Dialect::VoiceLive)["type"], "response.audio.delta");
    assert_eq!(encoded(&delta, Dialect::Beta)["type"], "response.audio.delta");
    assert_eq!(encoded(&delta, Dialect::Ga)["type"], "response.output_audio.delta");
    let text = ServerEvent::TextDone { at: at(), text: "t".into() };
    assert_eq!(encoded(&text, Dialect::Ga)["type"], "response.output_text.done");
    let item = Item::message(
        "item_1",
        Role::Assistant,
        vec![Content::Audio { transcript: "hi".into() }],
        ItemStatus::Completed,
    );
    let created = ServerEvent::ItemCreated { previous_item_id: None, item: item.clone() };
    assert_eq!(encoded(&created, Dialect::Beta)["type"], "conversation.item.created");
    assert_eq!(encoded(&created, Dialect::Beta)["item"]["content"][0]["type"], "audio");
    assert_eq!(encoded(&created, Dialect::Ga)["type"], "conversation.item.added");
    assert_eq!(encoded(&created, Dialect::Ga)["item"]["content"][0]["type"], "output_audio");
    let done = ServerEvent::ItemDone { previous_item_id: None, item };
    assert!(done.encode(Dialect::Beta, "e").is_none() && done.encode(Dialect::VoiceLive, "e").is_none());
    assert_eq!(encoded(&done, Dialect::Ga)["type"], "conversation.item.done");
    // The content part is "audio" / "text" in every dialect.
    let part = ServerEvent::ContentPartAdded { at: at(), part: Content::Audio { transcript: String::new() } };
    assert_eq!(encoded(&part, Dialect::Ga)["part"], json!({"type": "audio", "transcript": ""}));
}

#[test]
fn response_done_carries_every_nested_object_strict_clients_read() {
    let response = Response {
        id: "resp_1".into(),
        status: ResponseStatus::Cancelled { reason: "turn_detected" },
        output: vec![Item::message("item_1", Role::Assistant, vec![], ItemStatus::Incomplete)],
        usage: Some(Usage { input_text_tokens: 3, output_audio_tokens: 20, ..Usage::default() }),
        conversation_id: Some("conv_1".into()),
        modalities: vec![Modality::Text, Modality::Audio],
        voice: Voice::default(),
        output_audio_format: AudioFormat::DEFAULT,
        temperature: 0.8,
        max_output_tokens: None,
        metadata: None,
    };
    for dialect in [Dialect::VoiceLive, Dialect::Beta, Dialect::Ga] {
        let v = encoded(&ServerEvent::ResponseDone(Box::new(response.clone())), dialect);
        let r = &v["response"];
        assert_eq!(r["status_details"], json!({"type": "cancelled", "reason": "turn_detected"}));
        assert_eq!(r["usage"]["input_token_details"]["cached_tokens_details"]["text_tokens"], 0);
        assert_eq!(r["usage"]["output_token_details"]["audio_tokens"], 20);
        assert_eq!(r["usage"]["total_tokens"], 23);
        assert_eq!(r["output"][0]["content"], json!([]), "message items always carry content");
        assert!(v["event_id"].is_string());
    }
    let ga = encoded(&ServerEvent::ResponseDone(Box::new(response)), Dialect::Ga);
    assert_eq!(ga["response"]["output_modalities"], json!(["audio"]));
    assert_eq!(ga["response"]["audio"]["output"]["format"]["rate"], 24_000);
}

#[test]
fn errors_and_transcripts_have_their_required_fields() {
    let e = brazen_protocol::ProtocolError::invalid("invalid_value", "bad")
        .with_param("session.voice")
        .with_event_id(Some("c1"));
    let v = encoded(&ServerEvent::Error(e), Dialect::Ga);
    assert_eq!(
        v["error"],
        json!({"type": "invalid_request_error", "code": "invalid_value", "message": "bad", "param": "session.voice", "event_id": "c1"})
    );
    let t = ServerEvent::TranscriptionCompleted {
        item_id: "i".into(),
        content_index: 0,
        transcript: "hi".into(),
        audio_seconds: 1.5,
    };
    assert_eq!(encoded(&t, Dialect::Ga)["usage"], json!({"type": "duration", "seconds": 1.5}));
}

#[test]
fn voice_pitch_is_validated_and_becomes_a_factor() {
    use brazen_protocol::session::pitch_factor;
    assert_eq!(pitch_factor("high"), Some(1.1));
    assert_eq!(pitch_factor("+10%"), Some(1.1));
    assert_eq!(pitch_factor("-20%"), Some(0.8));
    assert!((pitch_factor("+12st").unwrap() - 2.0).abs() < 1e-6);
    assert_eq!(pitch_factor("-90%"), Some(0.5), "kept within 0.5–2");
    assert_eq!(pitch_factor("600Hz"), None);
    assert_eq!(pitch_factor("loud"), None);
    let e = parse(r#"{"type":"session.update","session":{"voice":{"name":"x","pitch":"600Hz"}}}"#).unwrap_err();
    assert_eq!(e.param.as_deref(), Some("session.voice.pitch"));
    assert!(e.message.contains("+10%"), "{}", e.message);
}

#[test]
fn voice_volume_is_validated_and_becomes_a_gain() {
    use brazen_protocol::session::volume_gain;
    assert_eq!(volume_gain("soft"), Some(0.4));
    assert_eq!(volume_gain("x-loud"), Some(1.0));
    assert_eq!(volume_gain("50"), Some(0.5));
    assert_eq!(volume_gain("-20%"), Some(0.8));
    assert_eq!(volume_gain("-30"), Some(0.7));
    assert_eq!(volume_gain("+10%"), Some(1.0), "full is the most");
    assert_eq!(volume_gain("loudish"), None);
    let e = parse(
        r#"{"type":"session.update","session":{"voice":{"type":"azure-standard","name":"x","volume":"loudish"}}}"#,
    )
    .unwrap_err();
    assert_eq!(e.param.as_deref(), Some("session.voice.volume"));
}
