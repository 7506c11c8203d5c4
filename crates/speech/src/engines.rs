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

/// A [`Voice`] as a streaming [`Tts`]: each phrase is spoken on the blocking
/// pool; its word timings go out first, then its audio chunk by chunk as the voice makes it.
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

impl Tts for VoiceTts {
    fn synthesize(&self, request: TtsRequest) -> EngineStream<TtsEvent> {
        let voice = self.0.clone();
        let pitch = request.voice.pitch_factor();
        let rate = request.voice.rate.unwrap_or(1.0) as f32 / pitch;
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        tokio::task::spawn_blocking(move || {
            let mut sample_rate = 0;
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
                    tx.send(TtsEvent::Phones(phones)).is_ok() && tx.send(TtsEvent::Words(words)).is_ok()
                }
                SpeechPart::Audio(samples) => {
                    tx.send(TtsEvent::Audio { samples: samples.to_vec(), sample_rate }).is_ok()
                }
            });
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
