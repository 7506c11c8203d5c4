//! Azure text to speech over REST: one request per phrase, the audio read whole (a phrase is at
//! most a few seconds), its phoneme timings fitted to it, then handed on as brazen's voices hand
//! theirs: phonemes and words first, then the audio in chunks.

use crate::{SpeechResource, cause, refusal, ssml};
use brazen_providers::{EngineStream, Phone, Tts, TtsEvent, TtsRequest, WordTiming};
use std::io::Read;
use std::sync::Arc;

/// The audio format asked for: 24 kHz, 16-bit, mono PCM without a header.
pub const OUTPUT_FORMAT: &str = "raw-24khz-16bit-mono-pcm";
/// Its sample rate.
const SAMPLE_RATE: u32 = 24_000;
/// The most audio one phrase may return (10 minutes), against a broken server.
const MAX_BYTES: u64 = 10 * 60 * SAMPLE_RATE as u64 * 2;
/// Audio handed on per event (0.5 s).
const CHUNK: usize = SAMPLE_RATE as usize / 2;

/// Azure's voices as brazen's speech synthesis.
pub struct AzureTts(Arc<Inner>);

struct Inner {
    resource: SpeechResource,
    default_voice: String,
    agent: ureq::Agent,
}

impl AzureTts {
    /// Speaks through `resource`; sessions whose voice is not an Azure voice name (`alloy`)
    /// speak in `default_voice`.
    pub fn new(resource: SpeechResource, default_voice: impl Into<String>) -> AzureTts {
        let agent = resource.agent();
        AzureTts(Arc::new(Inner { resource, default_voice: default_voice.into(), agent }))
    }

    /// The URL phrases are posted to.
    pub fn url(&self) -> String {
        self.0.url()
    }
}

impl Inner {
    fn url(&self) -> String {
        self.resource.url("tts", "/cognitiveservices/v1")
    }

    /// The 24 kHz samples of `text` said as `request` asks, or why not.
    fn speak(&self, request: &TtsRequest, voice: &str) -> Result<Vec<i16>, String> {
        let url = self.url();
        let body = ssml::ssml(&request.text, voice, &request.voice);
        let response = self
            .resource
            .post(&self.agent, &url)
            .map_err(|e| format!("no credential for Azure text to speech: {e}"))?
            .header("Content-Type", "application/ssml+xml")
            .header("X-Microsoft-OutputFormat", OUTPUT_FORMAT)
            .send(body.as_bytes())
            .map_err(|e| format!("cannot reach Azure text to speech at {url}: {}", cause(&e)))?;
        let status = response.status().as_u16();
        let mut reader = response.into_body().into_reader().take(MAX_BYTES);
        let mut bytes = Vec::new();
        reader.read_to_end(&mut bytes).map_err(|e| format!("Azure text to speech broke off mid-answer: {e}"))?;
        if status != 200 {
            return Err(refusal("text to speech", &url, status, &String::from_utf8_lossy(&bytes)));
        }
        if bytes.len() % 2 != 0 {
            bytes.pop();
        }
        Ok(bytes.chunks_exact(2).map(|b| i16::from_le_bytes([b[0], b[1]])).collect())
    }
}

/// The espeak-ng voice whose phonemes are fitted to speech in `locale` (`en-US` → `en-us`,
/// `de-DE` → `de`).
fn espeak_voice(locale: &str) -> String {
    let lower = locale.to_ascii_lowercase();
    match lower.as_str() {
        "en-us" | "en-gb" | "pt-br" | "es-419" => lower,
        _ => lower.split('-').next().unwrap_or("en").to_owned(),
    }
}

impl Tts for AzureTts {
    fn synthesize(&self, request: TtsRequest) -> EngineStream<TtsEvent> {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let voice = ssml::voice_name(&request.voice, &self.0.default_voice);
        let this = self.0.clone();
        tokio::task::spawn_blocking(move || {
            let samples = match this.speak(&request, &voice) {
                Ok(s) => s,
                Err(e) => {
                    let _ = tx.send(TtsEvent::Failed(e));
                    return;
                }
            };
            let speech = brazen_speech::fit::fit_timing(
                &request.text,
                &espeak_voice(&ssml::locale(&voice)),
                samples,
                SAMPLE_RATE,
            );
            let ms = |samples: usize| samples as f64 * 1000.0 / SAMPLE_RATE as f64;
            let phones = speech
                .phonemes
                .iter()
                .map(|p| Phone { symbol: p.phoneme, start_ms: ms(p.start), duration_ms: ms(p.len) })
                .collect();
            let words = speech
                .words(&request.text)
                .into_iter()
                .map(|w| WordTiming { text: w.text, start_ms: ms(w.start), duration_ms: ms(w.len) })
                .collect();
            if tx.send(TtsEvent::Phones(phones)).is_err() || tx.send(TtsEvent::Words(words)).is_err() {
                return;
            }
            for chunk in speech.samples.chunks(CHUNK) {
                if tx.send(TtsEvent::Audio { samples: chunk.to_vec(), sample_rate: SAMPLE_RATE }).is_err() {
                    return;
                }
            }
            let _ = tx.send(TtsEvent::Done);
        });
        let mut rx = rx;
        Box::pin(futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx)))
    }
}
