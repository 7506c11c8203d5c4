//! The Azure Speech engines against stand-ins written from the published REST formats (text to
//! speech: SSML in, `raw-24khz-16bit-mono-pcm` out; speech to text for short audio: a WAV in,
//! `{"RecognitionStatus", "DisplayText"}` out), on a custom-domain endpoint's paths.

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use brazen_azure::{Auth, AzureAsr, AzureTts, Endpoint, SpeechResource};
use brazen_protocol::Voice;
use brazen_providers::{Asr, AsrEvent, AsrRequest, Tts, TtsEvent, TtsRequest};
use futures_util::StreamExt;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// One request the stand-in received: its headers, query and body.
type Request = (HeaderMap, HashMap<String, String>, Bytes);

#[derive(Clone, Default)]
struct Seen {
    requests: Arc<Mutex<Vec<Request>>>,
}

/// "Hello there, how are you?" as a voice might say it: 200 ms of silence, 700 ms of sound, a
/// 300 ms pause at the comma, 600 ms of sound, 200 ms of silence (24 kHz PCM).
fn speech_pcm() -> Vec<u8> {
    let mut out = Vec::new();
    for (sound, ms) in [(false, 200), (true, 700), (false, 300), (true, 600), (false, 200)] {
        for i in 0..ms * 24 {
            let t = i as f64 / 24_000.0;
            let s = if sound { (9_000.0 * (t * 180.0 * std::f64::consts::TAU).sin()) as i16 } else { 0 };
            out.extend_from_slice(&s.to_le_bytes());
        }
    }
    out
}

async fn tts(State(seen): State<Seen>, headers: HeaderMap, body: Bytes) -> (StatusCode, Vec<u8>) {
    let ok = headers.get("ocp-apim-subscription-key").is_some_and(|k| k == "good-key");
    seen.requests.lock().unwrap().push((headers, HashMap::new(), body));
    if ok {
        (StatusCode::OK, speech_pcm())
    } else {
        (StatusCode::UNAUTHORIZED, b"Access denied due to invalid subscription key.".to_vec())
    }
}

async fn stt(
    State(seen): State<Seen>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, String) {
    let silent = body[44..].iter().all(|&b| b == 0);
    seen.requests.lock().unwrap().push((headers, query, body));
    let answer = if silent {
        r#"{"RecognitionStatus":"InitialSilenceTimeout","Offset":0,"Duration":0}"#
    } else {
        r#"{"RecognitionStatus":"Success","DisplayText":"Hello there, how are you?","Offset":2000000,"Duration":16000000}"#
    };
    (StatusCode::OK, answer.to_owned())
}

async fn serve() -> (String, Seen) {
    let seen = Seen::default();
    let app = axum::Router::new()
        .route("/tts/cognitiveservices/v1", post(tts))
        .route("/stt/speech/recognition/conversation/cognitiveservices/v1", post(stt))
        .with_state(seen.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}"), seen)
}

fn resource(url: &str, key: &str) -> SpeechResource {
    SpeechResource {
        endpoint: Endpoint::Custom(url.to_owned()),
        auth: Auth::Key(key.to_owned()),
        timeout: Duration::from_secs(10),
    }
}

#[tokio::test]
async fn speech_comes_back_with_phonemes_and_words_fitted_to_its_sound() {
    let (url, seen) = serve().await;
    let tts = AzureTts::new(resource(&url, "good-key"), "en-US-AvaMultilingualNeural");
    let mut voice = Voice { name: "en-US-JennyNeural".into(), rate: Some(0.9), ..Voice::default() };
    voice.extra.insert("style".into(), "friendly".into());
    let text = "Hello there, how are you?";
    let events: Vec<TtsEvent> = tts.synthesize(TtsRequest { text: text.into(), voice }).collect().await;

    let (headers, _, body) = seen.requests.lock().unwrap()[0].clone();
    assert_eq!(headers["content-type"], "application/ssml+xml");
    assert_eq!(headers["x-microsoft-outputformat"], "raw-24khz-16bit-mono-pcm");
    let ssml = String::from_utf8(body.to_vec()).unwrap();
    assert!(ssml.contains("<voice name=\"en-US-JennyNeural\">"), "{ssml}");
    assert!(ssml.contains("style=\"friendly\"") && ssml.contains("rate=\"-10%\""), "{ssml}");

    let phones = events.iter().find_map(|e| if let TtsEvent::Phones(p) = e { Some(p.clone()) } else { None }).unwrap();
    let words = events.iter().find_map(|e| if let TtsEvent::Words(w) = e { Some(w.clone()) } else { None }).unwrap();
    let samples: usize =
        events.iter().map(|e| if let TtsEvent::Audio { samples, .. } = e { samples.len() } else { 0 }).sum();
    assert_eq!(samples, 24 * 2_000, "all the audio");
    assert!(matches!(events.last(), Some(TtsEvent::Done)));
    let end = phones.last().map(|p| p.start_ms + p.duration_ms).unwrap();
    assert!((end - 2_000.0).abs() < 1.0, "the phonemes cover the audio: {end}");
    assert!(phones.iter().filter(|p| p.symbol.is_alphabetic()).count() > 10, "{phones:?}");
    let comma = phones.iter().find(|p| p.symbol == ',').expect("the comma's pause");
    assert!((comma.start_ms - 900.0).abs() < 15.0 && (comma.duration_ms - 300.0).abs() < 15.0, "{comma:?}");
    assert_eq!(words.iter().map(|w| w.text.as_str()).collect::<Vec<_>>(), ["Hello", "there,", "how", "are", "you?"]);
    assert!(words[0].start_ms >= 190.0 && words[2].start_ms >= 1_190.0, "words start with their sound: {words:?}");
}

#[tokio::test]
async fn a_refused_key_is_a_clear_failure() {
    let (url, _) = serve().await;
    let tts = AzureTts::new(resource(&url, "wrong"), "en-US-AvaMultilingualNeural");
    let events: Vec<TtsEvent> =
        tts.synthesize(TtsRequest { text: "Hi.".into(), voice: Voice::default() }).collect().await;
    match &events[..] {
        [TtsEvent::Failed(m)] => {
            assert!(m.contains("401") && m.contains("invalid subscription key") && m.contains("check the key"), "{m}")
        }
        other => panic!("{other:?}"),
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let gone = AzureTts::new(resource(&format!("http://127.0.0.1:{port}"), "k"), "en-US-AvaMultilingualNeural");
    let events: Vec<TtsEvent> =
        gone.synthesize(TtsRequest { text: "Hi.".into(), voice: Voice::default() }).collect().await;
    assert!(matches!(&events[..], [TtsEvent::Failed(m)] if m.contains("cannot reach")), "{events:?}");
}

#[tokio::test]
async fn utterances_are_posted_as_16_khz_wav_and_previews_are_not() {
    let (url, seen) = serve().await;
    let asr = AzureAsr::new(resource(&url, "good-key"), "en-US");
    let pcm = speech_pcm();
    let samples: Vec<i16> = pcm.chunks_exact(2).map(|b| i16::from_le_bytes([b[0], b[1]])).collect();
    let request = |preview: bool, samples: Vec<i16>, language: Option<&str>| AsrRequest {
        item_id: "item_1".into(),
        samples,
        sample_rate: 24_000,
        language: language.map(str::to_owned),
        prompt: None,
        preview,
        urgent: false,
        optional: false,
    };
    let preview: Vec<AsrEvent> = asr.transcribe(request(true, samples.clone(), None)).collect().await;
    assert_eq!(preview, [AsrEvent::Done(String::new())]);
    assert!(seen.requests.lock().unwrap().is_empty(), "a preview costs no request");

    let done: Vec<AsrEvent> = asr.transcribe(request(false, samples.clone(), Some("de"))).collect().await;
    assert_eq!(done, [AsrEvent::Done("Hello there, how are you?".into())]);
    let (headers, query, body) = seen.requests.lock().unwrap()[0].clone();
    assert!(headers["content-type"].to_str().unwrap().starts_with("audio/wav"));
    assert_eq!(query["language"], "de-DE");
    assert_eq!(u32::from_le_bytes(body[24..28].try_into().unwrap()), 16_000);
    let seconds = (body.len() - 44) as f64 / 32_000.0;
    assert!((seconds - 2.0).abs() < 0.01, "{seconds} s of audio at 16 kHz");

    let silence: Vec<AsrEvent> = asr.transcribe(request(false, vec![0; 24_000], None)).collect().await;
    assert_eq!(silence, [AsrEvent::Done(String::new())], "no speech is an empty transcript");
}
