//! `--asr azure --tts azure` through the Voice Live protocol against a stand-in Speech service
//! written from its published REST formats: a committed utterance is transcribed by the
//! service, and a reply is spoken by it with visemes fitted to its audio (the stand-in speaks
//! with Piper's voice, as a cloud voice would, with no timings).

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use brazen_audio::Resampler;
use brazen_models::{Manifest, Store, progress};
use brazen_speech::PiperVoice;
use serde_json::json;
use std::sync::{Arc, Mutex};

mod common;
use common::{Server, send};

/// One phrase (no clause mark or linking word to cut it early), so the stand-in's one answer is
/// all the audio.
const REPLY: &str = "Your blue Portland jacket ships Friday morning via express post.";

/// The reply as a cloud voice would return it: 24 kHz PCM, no timings.
fn cloud_voice_pcm() -> Vec<u8> {
    let store = Store::new(Store::default_root());
    let install = |name: &str| store.install(Manifest::builtin().get(name).unwrap(), &progress()).unwrap();
    let dir = install("piper-en-us-joe-medium");
    let runtime = install("onnxruntime").join(brazen_speech::ONNX_RUNTIME_LIBRARY);
    let voice = PiperVoice::load(&dir.join("en_US-joe-medium.onnx"), &dir.join("en_US-joe-medium.onnx.json"), &runtime)
        .unwrap();
    let speech = voice.synthesize(REPLY, 1.0).unwrap();
    let mut resampler = Resampler::new(speech.sample_rate, 24_000);
    let mut out = Vec::new();
    resampler.process_i16(&speech.samples, &mut out);
    resampler.flush_i16(&mut out);
    out.iter().flat_map(|s| s.to_le_bytes()).collect()
}

#[derive(Clone)]
struct StandIn {
    pcm: Arc<Vec<u8>>,
    ssml: Arc<Mutex<Vec<String>>>,
}

async fn tts(State(s): State<StandIn>, headers: HeaderMap, body: Bytes) -> (StatusCode, Vec<u8>) {
    if headers.get("ocp-apim-subscription-key").is_none_or(|k| k != "good-key") {
        return (StatusCode::UNAUTHORIZED, Vec::new());
    }
    let ssml = String::from_utf8_lossy(&body).into_owned();
    let known = ssml.contains("Portland");
    s.ssml.lock().unwrap().push(ssml);
    if known { (StatusCode::OK, s.pcm.to_vec()) } else { (StatusCode::OK, vec![0; 4_800]) }
}

async fn stt(headers: HeaderMap, body: Bytes) -> (StatusCode, String) {
    let wav = headers.get("content-type").is_some_and(|t| t.to_str().unwrap_or("").starts_with("audio/wav"));
    if !wav || body.len() < 44 || &body[..4] != b"RIFF" {
        return (StatusCode::BAD_REQUEST, "not a WAV".into());
    }
    (StatusCode::OK, json!({"RecognitionStatus": "Success", "DisplayText": "Where is my jacket?"}).to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_hears_and_speaks_through_azure_with_visemes_on_its_audio() {
    let state = StandIn { pcm: Arc::new(cloud_voice_pcm()), ssml: Default::default() };
    let app = axum::Router::new()
        .route("/tts/cognitiveservices/v1", post(tts))
        .route("/stt/speech/recognition/conversation/cognitiveservices/v1", post(stt))
        .with_state(state.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let server = Server::start_with_env(
        &["--agent", "none", "--asr", "azure", "--tts", "azure"],
        &[("BRAZEN_AZURE_SPEECH_ENDPOINT", url.as_str()), ("BRAZEN_AZURE_SPEECH_KEY", "good-key")],
    );
    let engines = server.engines();
    assert_eq!((engines["asr"].as_str(), engines["tts"].as_str()), (Some("azure"), Some("azure")));
    let (mut ws, _) = common::connect(server.port, "/voice-live/realtime", &[]).await.unwrap();
    common::until(&mut ws, "session.created").await;
    send(
        &mut ws,
        json!({"type": "session.update", "session": {
            "turn_detection": null,
            "input_audio_transcription": {"model": "whisper-1"},
            "voice": {"name": "en-US-JennyNeural", "type": "azure-standard", "style": "cheerful"},
            "animation": {"outputs": ["viseme_id"]}}}),
    )
    .await;
    common::until(&mut ws, "session.updated").await;

    // Hearing: one second of sound, committed.
    let tone: Vec<u8> = (0..24_000).flat_map(|i| (((i as f64 * 0.05).sin() * 8_000.0) as i16).to_le_bytes()).collect();
    send(&mut ws, json!({"type": "input_audio_buffer.append", "audio": B64.encode(&tone)})).await;
    send(&mut ws, json!({"type": "input_audio_buffer.commit"})).await;
    let heard = common::until(&mut ws, "conversation.item.input_audio_transcription.completed").await;
    assert_eq!(heard.last().unwrap()["transcript"], "Where is my jacket?");

    // Speaking, with visemes.
    send(&mut ws, json!({"type": "response.create", "response": {"pre_generated_assistant_message": REPLY}})).await;
    let events = common::until(&mut ws, "response.done").await;
    assert!(events.iter().all(|e| e["type"] != "error"), "{events:?}");
    let ssml = state.ssml.lock().unwrap().join("\n");
    assert!(ssml.contains("<voice name=\"en-US-JennyNeural\">") && ssml.contains("style=\"cheerful\""), "{ssml}");
    let mut audio_bytes = 0usize;
    let mut visemes = Vec::new();
    for e in &events {
        match e["type"].as_str().unwrap_or_default() {
            "response.audio.delta" => audio_bytes += B64.decode(e["delta"].as_str().unwrap()).unwrap().len(),
            "response.animation_viseme.delta" => {
                let offset = e["audio_offset_ms"].as_u64().unwrap();
                assert!(offset as f64 <= audio_bytes as f64 / 48.0 + 1.0, "a viseme never runs ahead of its audio");
                visemes.push((offset, e["viseme_id"].as_u64().unwrap()));
            }
            _ => {}
        }
    }
    let audio_ms = audio_bytes as f64 / 48.0;
    let expected = state.pcm.len() as f64 / 48.0;
    assert!((audio_ms - expected).abs() < 50.0, "all the service's audio: {audio_ms} of {expected} ms");
    assert!(visemes.len() > 25, "{visemes:?}");
    assert!(visemes.windows(2).all(|w| w[0].0 < w[1].0), "{visemes:?}");
    for (id, what) in [(21, "b m p"), (18, "f"), (15, "s"), (0, "silence")] {
        assert!(visemes.iter().any(|(_, v)| *v == id), "no viseme {id} ({what}): {visemes:?}");
    }
    let last = visemes.iter().filter(|(_, id)| *id != 0).map(|(o, _)| *o).max().unwrap();
    assert!(last as f64 > audio_ms * 0.7, "the mouth moves until near the end of the audio: {last} of {audio_ms} ms");
}

/// The stand-in Entra ID token endpoint and Speech service of the Entra test: tokens say they
/// last 302 s but are accepted for [`TOKEN_LIFE`] only, so brazen (which renews 300 s before
/// expiry) must renew them between phrases.
#[derive(Clone, Default)]
struct Entra {
    issued: Arc<Mutex<Vec<(String, std::time::Instant)>>>,
    authorizations: Arc<Mutex<Vec<String>>>,
}

const TOKEN_LIFE: std::time::Duration = std::time::Duration::from_millis(2_500);
const RESOURCE_ID: &str =
    "/subscriptions/sub-1/resourceGroups/voice/providers/Microsoft.CognitiveServices/accounts/speech-1";

async fn entra_token(
    State(e): State<Entra>,
    axum::extract::Path(tenant): axum::extract::Path<String>,
    body: String,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let client = body.contains("grant_type=client_credentials")
        && body.contains("client_id=app-1")
        && body.contains("client_secret=s3cret")
        && body.contains("cognitiveservices.azure.com");
    if tenant != "tenant-1" || !client {
        return (StatusCode::UNAUTHORIZED, axum::Json(json!({"error": "invalid_client"}))).into_response();
    }
    let mut issued = e.issued.lock().unwrap();
    let value = format!("entra-{}", issued.len() + 1);
    issued.push((value.clone(), std::time::Instant::now()));
    axum::Json(json!({"token_type": "Bearer", "expires_in": 302, "access_token": value})).into_response()
}

async fn entra_tts(State(e): State<Entra>, headers: HeaderMap) -> (StatusCode, Vec<u8>) {
    let authorization = headers.get("authorization").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    e.authorizations.lock().unwrap().push(authorization.clone());
    let prefix = format!("Bearer aad#{RESOURCE_ID}#");
    let fresh = authorization
        .strip_prefix(&prefix)
        .is_some_and(|token| e.issued.lock().unwrap().iter().any(|(t, at)| t == token && at.elapsed() < TOKEN_LIFE));
    if fresh { (StatusCode::OK, vec![0; 9_600]) } else { (StatusCode::UNAUTHORIZED, Vec::new()) }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_entra_identity_speaks_with_tokens_renewed_between_phrases() {
    let entra = Entra::default();
    let app = axum::Router::new()
        .route("/{tenant}/oauth2/v2.0/token", post(entra_token))
        .route("/tts/cognitiveservices/v1", post(entra_tts))
        .with_state(entra.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let server = Server::start_with_env(
        &["--agent", "none", "--tts", "azure"],
        &[
            ("BRAZEN_AZURE_SPEECH_ENDPOINT", url.as_str()),
            ("BRAZEN_AZURE_SPEECH_RESOURCE_ID", RESOURCE_ID),
            ("AZURE_SPEECH_KEY", ""),
            ("AZURE_SPEECH_TOKEN", ""),
            ("AZURE_TENANT_ID", "tenant-1"),
            ("AZURE_CLIENT_ID", "app-1"),
            ("AZURE_CLIENT_SECRET", "s3cret"),
            ("AZURE_AUTHORITY_HOST", url.as_str()),
        ],
    );
    let (mut ws, _) = common::connect(server.port, "/voice-live/realtime", &[]).await.unwrap();
    common::until(&mut ws, "session.created").await;
    send(&mut ws, json!({"type": "session.update", "session": {"turn_detection": null}})).await;
    common::until(&mut ws, "session.updated").await;
    for (i, text) in ["Your order has shipped.", "It arrives on Friday."].iter().enumerate() {
        if i > 0 {
            // Long enough for the first token to need renewing.
            tokio::time::sleep(std::time::Duration::from_millis(2_200)).await;
        }
        send(&mut ws, json!({"type": "response.create", "response": {"pre_generated_assistant_message": text}})).await;
        let events = common::until(&mut ws, "response.done").await;
        assert!(events.iter().all(|e| e["type"] != "error"), "phrase {i}: {events:?}");
        assert_eq!(events.last().unwrap()["response"]["status"], "completed", "phrase {i}: {events:?}");
        assert!(events.iter().any(|e| e["type"] == "response.audio.delta"), "phrase {i} is spoken");
    }
    let authorizations = entra.authorizations.lock().unwrap().clone();
    let issued: Vec<String> = entra.issued.lock().unwrap().iter().map(|(t, _)| t.clone()).collect();
    assert!(issued.len() >= 2, "the token was renewed: {issued:?}");
    assert!(
        authorizations.iter().all(|a| a.starts_with(&format!("Bearer aad#{RESOURCE_ID}#entra-"))),
        "{authorizations:?}"
    );
    assert_ne!(authorizations.first(), authorizations.last(), "the second phrase went with a new token");
}

#[test]
fn entra_on_a_region_without_the_resource_id_says_what_to_set() {
    let out = std::process::Command::new(common::binary())
        .args(["serve", "--port", "0", "--agent", "none", "--tts", "azure"])
        .env("AZURE_SPEECH_REGION", "westeurope")
        .env("AZURE_SPEECH_KEY", "")
        .env("AZURE_SPEECH_TOKEN", "")
        .env("AZURE_SPEECH_RESOURCE_ID", "")
        .env("AZURE_TENANT_ID", "tenant-1")
        .env("AZURE_CLIENT_ID", "app-1")
        .env("AZURE_CLIENT_SECRET", "s3cret")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(stderr.contains("azure_speech_resource_id") && stderr.contains("client secret of app-1"), "{stderr}");
}
