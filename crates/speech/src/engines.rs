//! This crate's engines behind the traits of `brazen-providers`: Whisper as an [`Asr`]
//! ([`WhisperAsr`]), any [`Voice`] (Piper, Kokoro) as a [`Tts`] ([`VoiceTts`]) and Smart Turn as
//! a [`TurnModel`] ([`SmartTurn`]). Each streams its results and stops when its stream is
//! dropped.

use crate::{Decode, Job, SmartTurnModel, SpeechPart, Voice, WhisperPool};
use brazen_providers::{
    Asr, AsrEvent, AsrRequest, CancelOnDrop, EngineStream, Phone, Tts, TtsEvent, TtsRequest, TurnModel, TurnRequest,
    TurnVerdict, WordTiming,
};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

/// Whisper's beam width for every decode (see bench/README.md for the measurements behind it).
const ASR_BEAM: usize = 1;

/// Whisper as a streaming [`Asr`]: the turn goes to the worker pool, the transcript comes back
/// as one `Done`; dropping the stream cancels the job (skipped if queued, aborted if running).
pub struct WhisperAsr(WhisperPool);

impl WhisperAsr {
    /// Recognises speech on `pool`'s workers.
    pub fn new(pool: WhisperPool) -> WhisperAsr {
        WhisperAsr(pool)
    }
}

impl Asr for WhisperAsr {
    fn transcribe(&self, request: AsrRequest) -> EngineStream<AsrEvent> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let cancel = Arc::new(AtomicBool::new(false));
        self.0.submit(Job {
            samples: request.samples,
            sample_rate: request.sample_rate,
            decode: Decode { language: request.language, prompt: request.prompt, threads: 0, beam_size: ASR_BEAM },
            preview: request.preview,
            urgent: request.urgent,
            optional: request.optional,
            cancel: cancel.clone(),
            reply: Box::new(move |result| {
                let _ = tx.send(result);
            }),
        });
        let guard = CancelOnDrop(cancel);
        Box::pin(futures_util::stream::once(async move {
            let _guard = guard;
            match rx.await {
                Ok(Ok(t)) => AsrEvent::Done(t.text),
                Ok(Err(e)) => AsrEvent::Failed(e.to_string()),
                Err(_) => AsrEvent::Failed("the Whisper worker stopped".into()),
            }
        }))
    }
}

/// A sample at least this loud (of 32,768) is sound: a phrase's silence before it is cut.
const AUDIBLE: u16 = 200;
/// Silence kept before a phrase's first sound, ms (the onset of a quiet consonant).
const LEAD_KEEP_MS: f64 = 20.0;

/// A [`Voice`] as a streaming [`Tts`]: each phrase is spoken on the blocking
/// pool; its word timings go out first, then its audio chunk by chunk as the voice makes it.
/// The silence a voice puts before a phrase's first sound (30–70 ms for Piper) is cut to
/// [`LEAD_KEEP_MS`], its timings moved with it: the reply is heard that much sooner, and
/// phrases follow each other without a gap longer than the voice's own pause.
/// Dropping the stream (a barge-in) stops the synthesis at the next chunk. A `pitch` factor `p`
/// is made by synthesising `p` times slower and declaring the audio `p` times faster: the same
/// duration, every frequency times `p`.
pub struct VoiceTts(Arc<dyn Voice>);

impl VoiceTts {
    /// Speaks with `voice`.
    pub fn new(voice: Arc<dyn Voice>) -> VoiceTts {
        VoiceTts(voice)
    }
}

/// A phrase's timings and audio held back until its first sound shows how much leading
/// silence to cut.
#[derive(Default)]
struct Lead {
    timings: Option<(Vec<Phone>, Vec<WordTiming>)>,
    audio: Vec<i16>,
    /// The cut is done: the rest passes straight through.
    cut: bool,
}

impl Lead {
    /// Takes `samples` at `rate`; once the first sound is among them, returns the events to
    /// send: the timings moved earlier by the silence cut, then the audio from the cut on.
    fn take(&mut self, samples: &[i16], rate: u32) -> Vec<TtsEvent> {
        if self.cut {
            return vec![TtsEvent::Audio { samples: samples.to_vec(), sample_rate: rate }];
        }
        self.audio.extend_from_slice(samples);
        let Some(sound) = self.audio.iter().position(|s| s.unsigned_abs() >= AUDIBLE) else { return Vec::new() };
        let keep = (LEAD_KEEP_MS * f64::from(rate) / 1000.0) as usize;
        let drop = sound.saturating_sub(keep);
        self.release(drop, rate)
    }

    /// Everything held, with `drop` samples cut from the start (none at the phrase's end: a
    /// phrase that never sounded is sent as it is).
    fn release(&mut self, drop: usize, rate: u32) -> Vec<TtsEvent> {
        self.cut = true;
        let shift = if rate == 0 { 0.0 } else { drop as f64 * 1000.0 / f64::from(rate) };
        let mut events = Vec::new();
        if let Some((phones, words)) = self.timings.take() {
            let moved = |start: f64, duration: f64| {
                let begin = (start - shift).max(0.0);
                (begin, (start + duration - shift).max(0.0) - begin)
            };
            let phones = phones
                .into_iter()
                .map(|p| {
                    let (start_ms, duration_ms) = moved(p.start_ms, p.duration_ms);
                    Phone { start_ms, duration_ms, ..p }
                })
                .collect();
            let words = words
                .into_iter()
                .map(|w| {
                    let (start_ms, duration_ms) = moved(w.start_ms, w.duration_ms);
                    WordTiming { start_ms, duration_ms, ..w }
                })
                .collect();
            events.push(TtsEvent::Phones(phones));
            events.push(TtsEvent::Words(words));
        }
        let audio = std::mem::take(&mut self.audio);
        if drop < audio.len() {
            events.push(TtsEvent::Audio { samples: audio[drop..].to_vec(), sample_rate: rate });
        }
        events
    }
}

impl Tts for VoiceTts {
    fn synthesize(&self, request: TtsRequest) -> EngineStream<TtsEvent> {
        let voice = self.0.clone();
        let pitch = request.voice.pitch_factor();
        let rate = request.voice.rate.unwrap_or(1.0) as f32 / pitch;
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        tokio::task::spawn_blocking(move || {
            let mut sample_rate = 0;
            let mut lead = Lead::default();
            let send = |events: Vec<TtsEvent>| events.into_iter().all(|e| tx.send(e).is_ok());
            let result = voice.speak(&request.text, &request.voice.name, rate, &mut |part| match part {
                SpeechPart::Timing(speech) => {
                    sample_rate = (speech.sample_rate as f32 * pitch).round() as u32;
                    let ms = |samples: usize| samples as f64 * 1000.0 / sample_rate as f64;
                    let words = speech
                        .words(&request.text)
                        .into_iter()
                        .map(|w| WordTiming { text: w.text, start_ms: ms(w.start), duration_ms: ms(w.len) })
                        .collect();
                    let phones = speech
                        .phonemes
                        .iter()
                        .map(|p| Phone { symbol: p.phoneme, start_ms: ms(p.start), duration_ms: ms(p.len) })
                        .collect();
                    lead.timings = Some((phones, words));
                    !tx.is_closed()
                }
                SpeechPart::Audio(samples) => send(lead.take(samples, sample_rate)) && !tx.is_closed(),
            });
            let _ = send(lead.release(0, sample_rate));
            let _ = tx.send(match result {
                Ok(()) => TtsEvent::Done,
                Err(e) => TtsEvent::Failed(e.to_string()),
            });
        });
        let mut rx = rx;
        Box::pin(futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx)))
    }
}

/// Smart Turn as a [`TurnModel`]: each pause is judged on a blocking thread; dropping the stream
/// drops the verdict.
pub struct SmartTurn(pub Arc<SmartTurnModel>);

impl TurnModel for SmartTurn {
    fn judge(&self, request: TurnRequest) -> EngineStream<TurnVerdict> {
        let model = self.0.clone();
        let verdict =
            tokio::task::spawn_blocking(move || match model.probability(&request.samples, request.sample_rate) {
                Ok(p) => TurnVerdict::Probability(p),
                Err(e) => TurnVerdict::Failed(e.to_string()),
            });
        Box::pin(futures_util::stream::once(async move {
            verdict.await.unwrap_or_else(|e| TurnVerdict::Failed(format!("the end-of-turn model stopped: {e}")))
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{PhonemeSpan, Speech, SpeechError};
    use brazen_protocol::Voice as VoiceConfig;
    use futures_util::StreamExt;

    /// A voice at 1 kHz (a sample per ms): 60 ms of silence, then a tone for each of two
    /// words, handed out in 25-sample chunks.
    struct Beeps;

    impl Voice for Beeps {
        fn speak(
            &self,
            _text: &str,
            _voice: &str,
            _rate: f32,
            sink: &mut dyn FnMut(SpeechPart<'_>) -> bool,
        ) -> Result<(), SpeechError> {
            let span = |phoneme, start, len| PhonemeSpan { phoneme, start, len };
            let timing = Speech {
                samples: Vec::new(),
                sample_rate: 1_000,
                ipa: "a b".into(),
                phonemes: vec![
                    span('^', 0, 70),
                    span('a', 70, 50),
                    span(' ', 120, 10),
                    span('b', 130, 50),
                    span('$', 180, 40),
                ],
            };
            sink(SpeechPart::Timing(&timing));
            let audio: Vec<i16> = (0..220)
                .map(|i| if (60..180).contains(&i) { if i % 2 == 0 { 4_000 } else { -4_000 } } else { 0 })
                .collect();
            for chunk in audio.chunks(25) {
                if !sink(SpeechPart::Audio(chunk)) {
                    break;
                }
            }
            Ok(())
        }
    }

    #[tokio::test]
    async fn the_silence_before_a_phrase_is_cut_and_its_timings_follow() {
        let tts = VoiceTts::new(Arc::new(Beeps));
        let events: Vec<TtsEvent> = tts
            .synthesize(TtsRequest {
                text: "a b".into(),
                voice: VoiceConfig {
                    name: "x".into(),
                    kind: None,
                    rate: None,
                    pitch: None,
                    volume: None,
                    extra: Default::default(),
                },
            })
            .collect()
            .await;
        let audio: Vec<i16> = events
            .iter()
            .flat_map(|e| if let TtsEvent::Audio { samples, .. } = e { samples.clone() } else { Vec::new() })
            .collect();
        // 60 ms of silence less the 20 kept: 40 samples gone, the rest whole.
        assert_eq!(audio.len(), 180);
        assert_eq!(audio.iter().position(|s| *s != 0), Some(20));
        let phones = events.iter().find_map(|e| if let TtsEvent::Phones(p) = e { Some(p.clone()) } else { None });
        let phones = phones.expect("phones before the audio");
        let spans: Vec<(char, f64, f64)> = phones.iter().map(|p| (p.symbol, p.start_ms, p.duration_ms)).collect();
        assert_eq!(
            spans,
            [('^', 0.0, 30.0), ('a', 30.0, 50.0), (' ', 80.0, 10.0), ('b', 90.0, 50.0), ('$', 140.0, 40.0)]
        );
        let words = events.iter().find_map(|e| if let TtsEvent::Words(w) = e { Some(w.clone()) } else { None });
        let starts: Vec<f64> = words.expect("words").iter().map(|w| w.start_ms).collect();
        assert_eq!(starts.first(), Some(&30.0), "the first word starts with its phoneme");
        let order: Vec<usize> = events
            .iter()
            .map(|e| match e {
                TtsEvent::Phones(_) | TtsEvent::Words(_) => 0,
                TtsEvent::Audio { .. } => 1,
                _ => 2,
            })
            .collect();
        assert!(order.is_sorted(), "timings, then audio, then the end: {events:?}");
        assert_eq!(events.last(), Some(&TtsEvent::Done));
    }
}
