//! Azure speech to text over the REST API for short audio: each finished utterance is posted as
//! a 16 kHz 16-bit WAV, and `DisplayText` is the transcript. `NoMatch` and the silence timeouts
//! are an empty transcript, not an error. Previews of a turn still being spoken get an empty
//! answer without a request (each request costs, and the final one follows).

use crate::{SpeechResource, cause, refusal};
use brazen_audio::Resampler;
use brazen_providers::{Asr, AsrEvent, AsrRequest, EngineStream};
use serde_json::Value;
use std::sync::Arc;

/// The rate the audio is sent at.
const RATE: u32 = 16_000;

/// Azure's speech recognition as brazen's.
pub struct AzureAsr(Arc<Inner>);

struct Inner {
    resource: SpeechResource,
    default_language: String,
    agent: ureq::Agent,
}

impl AzureAsr {
    /// Recognises through `resource`, in `default_language` (a locale, `en-US`) unless the
    /// session's transcription names another.
    pub fn new(resource: SpeechResource, default_language: impl Into<String>) -> AzureAsr {
        let agent = resource.agent();
        AzureAsr(Arc::new(Inner { resource, default_language: default_language.into(), agent }))
    }
}

/// The locale Azure wants for a session's language hint: a locale as it is (`de-DE`), a
/// language code as its most spoken locale (`de` → `de-DE`), else `default`.
pub fn locale(language: Option<&str>, default: &str) -> String {
    let Some(language) = language.map(str::trim).filter(|l| !l.is_empty()) else { return default.to_owned() };
    if language.contains('-') {
        // A locale goes into the URL: only letters and digits in 2–8 character parts.
        let parts: Vec<&str> = language.split('-').collect();
        let well_formed = parts.len() <= 3
            && parts.iter().all(|p| (2..=8).contains(&p.len()) && p.chars().all(|c| c.is_ascii_alphanumeric()));
        return if well_formed { language.to_owned() } else { default.to_owned() };
    }
    let locale = match language.to_ascii_lowercase().as_str() {
        "en" => "en-US",
        "de" => "de-DE",
        "fr" => "fr-FR",
        "es" => "es-ES",
        "it" => "it-IT",
        "pt" => "pt-BR",
        "nl" => "nl-NL",
        "ja" => "ja-JP",
        "zh" => "zh-CN",
        "ko" => "ko-KR",
        "ru" => "ru-RU",
        "pl" => "pl-PL",
        "sv" => "sv-SE",
        "tr" => "tr-TR",
        "hi" => "hi-IN",
        "ar" => "ar-SA",
        _ => default,
    };
    locale.to_owned()
}

impl Inner {
    fn transcribe(&self, request: &AsrRequest) -> Result<String, String> {
        let language = locale(request.language.as_deref(), &self.default_language);
        let url = self.resource.url(
            "stt",
            &format!("/speech/recognition/conversation/cognitiveservices/v1?language={language}&format=simple"),
        );
        let samples = if request.sample_rate == RATE {
            request.samples.clone()
        } else {
            let mut resampler = Resampler::new(request.sample_rate, RATE);
            let mut out = Vec::new();
            resampler.process_i16(&request.samples, &mut out);
            resampler.flush_i16(&mut out);
            out
        };
        let response = self
            .resource
            .post(&self.agent, &url)
            .map_err(|e| format!("no credential for Azure speech to text: {e}"))?
            .header("Content-Type", "audio/wav; codecs=audio/pcm; samplerate=16000")
            .header("Accept", "application/json")
            .send(&brazen_audio::wav::encode(&samples, RATE)[..])
            .map_err(|e| format!("cannot reach Azure speech to text at {url}: {}", cause(&e)))?;
        let status = response.status().as_u16();
        let body = response
            .into_body()
            .with_config()
            .limit(1 << 20)
            .read_to_string()
            .map_err(|e| format!("Azure speech to text broke off mid-answer: {}", cause(&e)))?;
        if status != 200 {
            return Err(refusal("speech to text", &url, status, &body));
        }
        let answer: Value = serde_json::from_str(&body)
            .map_err(|e| format!("Azure speech to text answered something that is not JSON ({e}): {body}"))?;
        match answer["RecognitionStatus"].as_str() {
            Some("Success") => Ok(answer["DisplayText"].as_str().unwrap_or_default().to_owned()),
            Some("NoMatch" | "InitialSilenceTimeout" | "BabbleTimeout") => Ok(String::new()),
            Some(other) => Err(format!("Azure speech to text could not recognise the audio: {other}")),
            None => Err(format!("Azure speech to text answered without a RecognitionStatus: {body}")),
        }
    }
}

impl Asr for AzureAsr {
    fn transcribe(&self, request: AsrRequest) -> EngineStream<AsrEvent> {
        if request.preview {
            return Box::pin(futures_util::stream::iter([AsrEvent::Done(String::new())]));
        }
        let inner = self.0.clone();
        let job = tokio::task::spawn_blocking(move || inner.transcribe(&request));
        Box::pin(futures_util::stream::once(async move {
            match job.await {
                Ok(Ok(text)) => AsrEvent::Done(text),
                Ok(Err(e)) => AsrEvent::Failed(e),
                Err(e) => AsrEvent::Failed(format!("the recognition job stopped: {e}")),
            }
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn languages_become_locales() {
        assert_eq!(locale(None, "en-US"), "en-US");
        assert_eq!(locale(Some("de"), "en-US"), "de-DE");
        assert_eq!(locale(Some("fr-CA"), "en-US"), "fr-CA");
        assert_eq!(locale(Some("xx"), "en-GB"), "en-GB");
        assert_eq!(locale(Some("en-US&format=detailed"), "en-GB"), "en-GB", "nothing is added to the URL");
        assert_eq!(locale(Some("zh-Hans-CN"), "en-US"), "zh-Hans-CN");
    }
}
