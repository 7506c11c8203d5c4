//! `brazen say "text" --out speech.wav`: speaks text with the configured voice and writes the
//! audio as a WAV file, and beside it (`speech.json`) what an avatar needs to move with it: the
//! words and phonemes with their times, and the visemes (Azure's ids) on the audio's clock.
//!
//! The text is spoken in phrases as a reply would be (cut at sentence and clause ends), so text
//! of any length works with every voice; the timings run on one clock across the phrases.

use crate::config::Config;
use brazen_avatar::timeline::LipSync;
use brazen_protocol::Voice;
use brazen_providers::{Phone, TtsEvent, TtsRequest, WordTiming};
use futures_util::StreamExt;
use serde_json::json;
use std::path::PathBuf;

/// What to say and where to write it.
pub struct SayArgs {
    /// The text.
    pub text: String,
    /// The WAV file to write; the timings go beside it with the extension `.json`.
    pub out: PathBuf,
    /// The voice's name (the engine's default when none).
    pub voice: Option<String>,
    /// Speaking rate, 0.5–1.5.
    pub rate: Option<f64>,
}

/// Everything one phrase of speech gave, on the whole text's clock.
#[derive(Default)]
struct Spoken {
    samples: Vec<i16>,
    sample_rate: u32,
    words: Vec<WordTiming>,
    phones: Vec<Phone>,
}

/// The phrases `text` is spoken in (as a reply that came whole).
fn phrases(text: &str) -> Vec<String> {
    brazen_engine::text::take_rest(&mut text.to_owned(), 0)
}

/// Speaks `args.text` with `cfg`'s voice engine and writes the WAV and its timings.
pub fn run(cfg: &Config, args: SayArgs) -> Result<(), String> {
    if args.out.extension().is_some_and(|e| e.eq_ignore_ascii_case("json")) {
        return Err(format!(
            "--out {} would be overwritten by the timings: name the WAV file (speech.wav)",
            args.out.display()
        ));
    }
    if args.text.trim().is_empty() {
        return Err("there is nothing to say: give the text, e.g. brazen say \"Hello there.\" --out hello.wav".into());
    }
    let mut choice = cfg.engine_choice();
    (choice.vad, choice.asr, choice.llm) = ("energy".into(), "echo".into(), "echo".into());
    if choice.tts == "tone" {
        return Err("tts = \"tone\" is a stand-in that says nothing: use piper, kokoro or azure".into());
    }
    let engines = brazen_runtime::engines::from_choice(&choice)?;
    let voice = Voice {
        name: args.voice.clone().or_else(|| engines.voices.first().cloned()).unwrap_or_else(|| "alloy".into()),
        rate: args.rate,
        ..Voice::default()
    };
    let runtime = tokio::runtime::Runtime::new().map_err(|e| format!("cannot start the async runtime: {e}"))?;
    let spoken = runtime.block_on(speak(engines.tts.as_ref(), &voice, &args.text))?;
    write(&args, &voice, &spoken)
}

/// Speaks `text` phrase by phrase, the timings moved onto one clock.
async fn speak(tts: &dyn brazen_providers::Tts, voice: &Voice, text: &str) -> Result<Spoken, String> {
    let mut spoken = Spoken::default();
    for phrase in phrases(text) {
        let offset_ms = spoken.samples.len() as f64 * 1000.0 / spoken.sample_rate.max(1) as f64;
        let mut stream = tts.synthesize(TtsRequest { text: phrase.clone(), voice: voice.clone() });
        let mut words = None;
        let mut samples = Vec::new();
        while let Some(event) = stream.next().await {
            match event {
                TtsEvent::Words(w) => words = Some(w),
                TtsEvent::Phones(p) => spoken.phones.extend(p.into_iter().map(|mut p| {
                    p.start_ms += offset_ms;
                    p
                })),
                TtsEvent::Audio { samples: chunk, sample_rate } => {
                    if spoken.sample_rate != 0 && spoken.sample_rate != sample_rate {
                        return Err(format!(
                            "the voice changed its sample rate mid-text ({} → {sample_rate} Hz)",
                            spoken.sample_rate
                        ));
                    }
                    spoken.sample_rate = sample_rate;
                    samples.extend(chunk);
                }
                TtsEvent::Done => break,
                TtsEvent::Failed(e) => return Err(format!("the voice failed on {phrase:?}: {e}")),
            }
        }
        spoken.words.extend(words.unwrap_or_default().into_iter().map(|mut w| {
            w.start_ms += offset_ms;
            w
        }));
        spoken.samples.extend(samples);
    }
    Ok(spoken)
}

/// Writes the WAV and the timings beside it.
fn write(args: &SayArgs, voice: &Voice, spoken: &Spoken) -> Result<(), String> {
    let duration_ms = spoken.samples.len() as f64 * 1000.0 / spoken.sample_rate.max(1) as f64;
    let mut lipsync = LipSync::new(0, 0.0);
    lipsync.add_phrase(0.0, duration_ms, &spoken.phones);
    lipsync.extend_audio(duration_ms);
    let visemes: Vec<_> = lipsync
        .take_visemes(duration_ms + 1.0)
        .into_iter()
        .map(|v| json!({"audio_offset_ms": v.audio_offset_ms, "viseme_id": v.viseme_id}))
        .collect();
    let timings = json!({
        "text": args.text,
        "voice": voice.name,
        "sample_rate": spoken.sample_rate,
        "duration_ms": duration_ms.round(),
        "words": spoken.words.iter().map(|w| json!({"text": w.text, "start_ms": w.start_ms.round(), "duration_ms": w.duration_ms.round()})).collect::<Vec<_>>(),
        "phonemes": spoken.phones.iter().map(|p| json!({"symbol": p.symbol.to_string(), "start_ms": p.start_ms.round(), "duration_ms": p.duration_ms.round()})).collect::<Vec<_>>(),
        "visemes": visemes,
    });
    let wav = brazen_audio::wav::encode(&spoken.samples, spoken.sample_rate);
    std::fs::write(&args.out, wav).map_err(|e| format!("cannot write {}: {e}", args.out.display()))?;
    let json_path = args.out.with_extension("json");
    let text = serde_json::to_string_pretty(&timings).map_err(|e| e.to_string())?;
    std::fs::write(&json_path, text).map_err(|e| format!("cannot write {}: {e}", json_path.display()))?;
    println!(
        "wrote {} ({:.1} s, {} Hz) and {} ({} words, {} visemes)",
        args.out.display(),
        duration_ms / 1000.0,
        spoken.sample_rate,
        json_path.display(),
        spoken.words.len(),
        timings["visemes"].as_array().map_or(0, Vec::len)
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_text_is_spoken_in_phrases_and_the_end_is_kept() {
        let p = phrases(
            "Hello there. This is a test of a rather long text, which goes on and on without stopping at all for a while and then ends",
        );
        assert_eq!(p[0], "Hello there.");
        assert!(p.last().unwrap().ends_with("then ends"), "{p:?}");
        assert!(phrases("   ").is_empty());
    }
}
