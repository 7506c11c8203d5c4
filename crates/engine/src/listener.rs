//! [`Listener`]: the user's side of the session — the input audio buffer with turn detection,
//! the turn being heard with its transcript previews, and the transcriptions of committed
//! turns.

use crate::backchannel::{Held, judge};
use crate::conversation::{Conversation, Entry};
use crate::echo::Echo;
use crate::end_of_turn::{Verdict, Waits};
use crate::out::Out;
use crate::turn::{InputAudio, TurnEvent};
use crate::{JobId, Limits, Output, sample_format};
use brazen_audio::{Denoiser, Vad};
use brazen_protocol::error::code;
use brazen_protocol::{Content, Item, ItemBody, ItemStatus, ProtocolError, Role, ServerEvent, SessionConfig};
use brazen_providers::{AsrEvent, AsrRequest, TurnRequest, TurnVerdict};
use std::collections::HashMap;
use std::time::Instant;

/// Shortest audio a manual commit accepts, in ms.
const MIN_COMMIT_MS: f64 = 100.0;
/// New speech between two transcript previews, in ms.
const PREVIEW_STEP_MS: f64 = 700.0;
/// A pause in the speech this long gets a preview of the whole turn so far (it is likely the
/// end of the turn, still being confirmed), in ms.
const PAUSE_PREVIEW_MS: f64 = 150.0;
/// With semantic detection a pause is judged this soon (its words are asked for sooner
/// still, as it is heard ([`crate::turn::InputAudio::heard_pause`]), unless an older preview
/// is still decoding: that one is cancelled for them only now): the finished turn it may end
/// is answered after ~200 ms, so its words and their verdict must be in by then (they take
/// ~0.25 s).
const SEMANTIC_PAUSE_MS: f64 = 60.0;
/// The end-of-turn model hears the turn up to this far into the pause, in ms.
const TURN_MODEL_PAUSE_MS: f64 = 100.0;
/// The end of the turn the end-of-turn model hears, in ms (it uses the last 8 s).
const TURN_MODEL_MS: f64 = 8_100.0;
/// Turns longer than this get no more previews (the final transcript still comes), in ms.
const PREVIEW_MAX_MS: f64 = 30_000.0;

/// [`PREVIEW_MAX_MS`] in samples at `rate`.
fn preview_max_samples(rate: u32) -> usize {
    (PREVIEW_MAX_MS * rate as f64 / 1000.0) as usize
}
/// Speech held back as a possible backchannel is previewed this often, in ms.
const HELD_STEP_MS: f64 = 300.0;
/// ... and first once this much of it was spoken (the recogniser makes words up from less), or
/// at its first pause, in ms.
const HELD_FIRST_MS: f64 = 300.0;
/// Speech held back this long (from its start to its last speech frame) interrupts whatever its
/// words: backchannels are short, and the recogniser may be slow or silent, in ms.
const HELD_MAX_MS: f64 = 2_000.0;
/// The longest a held-back turn's end waits for the words of its last pause, in ms.
const HELD_WORDS_WAIT_MS: f64 = 1_500.0;

struct AsrJob {
    item_id: String,
    audio_seconds: f64,
    /// Transcript already sent as deltas (from previews while the user spoke, or the engine's).
    sent: String,
    /// For a preview standing in as the final transcript: the turn's audio (and its rate), to
    /// transcribe after all if the preview comes back empty or fails (an engine may decline
    /// previews).
    fallback: Option<(Vec<i16>, u32)>,
}

/// A turn the detector is hearing: its item id (announced with `speech_started`) and the
/// previews of its transcript decoded while the user speaks.
struct SpeechTurn {
    item_id: String,
    /// The preview being decoded.
    preview_job: Option<JobId>,
    /// Samples of the turn the last preview was asked for.
    previewed_samples: usize,
    /// The preview asked for during the current pause: it holds every word of the turn if
    /// the turn ends without more speech, and then serves as its final transcript.
    covering: Option<Covering>,
    /// The pause being judged (semantic detection).
    pause: Option<Pause>,
    /// The last preview's words.
    words: Vec<String>,
    /// How many of them were sent as deltas (the stable prefix), and as what text.
    sent_words: usize,
    sent: String,
    /// Speech that began while the assistant spoke, held back as a possible backchannel
    /// ([`crate::backchannel`]): where it began. `speech_started` is sent when its words show it
    /// is more ([`Listener::take_confirmed`]); until then nothing of it is.
    held: Option<u64>,
}

/// A preview of all the speech of a turn, asked for when the speaker paused.
struct Covering {
    job: JobId,
    /// Where the speech it holds ends (audio clock, ms).
    speech_end_ms: f64,
    /// [`SpeechTurn::previewed_samples`] before it was asked for.
    previewed_before: usize,
    /// Its transcript, once decoded.
    text: Option<String>,
}

/// A pause being judged (semantic detection).
struct Pause {
    /// Where the speech before it ends (audio clock, ms).
    speech_end_ms: f64,
    /// The end-of-turn model's verdict on the audio, and its job while it is coming.
    audio: Verdict,
    audio_job: Option<JobId>,
    /// The end-of-turn model was asked ([`Listener::hear_pause`]: once per pause).
    audio_asked: bool,
    /// The language model's verdict on the words, and its job while it is coming.
    text: Verdict,
    text_job: Option<JobId>,
}

/// The words of the preview that holds all of `turn`'s speech up to `speech_end_ms`, once
/// decoded (empty when it heard nothing or failed).
fn covered(turn: &SpeechTurn, speech_end_ms: f64) -> Option<&str> {
    turn.covering.as_ref().filter(|c| c.speech_end_ms == speech_end_ms).and_then(|c| c.text.as_deref())
}

impl Pause {
    /// The verdicts still being computed.
    fn jobs(&self) -> impl Iterator<Item = JobId> + use<> {
        self.audio_job.into_iter().chain(self.text_job)
    }
}

/// What the listener heard that other parts may act on.
#[derive(Debug, PartialEq)]
pub(crate) enum Heard {
    /// Nothing for the others.
    Nothing,
    /// A preview of the turn still being spoken: the user's words so far.
    Preview(String),
    /// The words of the pause being judged (semantic detection): the language model may judge
    /// them ([`Listener::judge_words`]). The user's words so far, like a preview.
    PauseWords(String),
    /// A transcription ended (done or failed).
    Transcribed,
}

/// The input side of a session.
pub(crate) struct Listener {
    input: InputAudio,
    speech: Option<SpeechTurn>,
    asr_jobs: HashMap<JobId, AsrJob>,
    /// A held-back turn was announced since [`Listener::take_confirmed`] was last asked.
    confirmed: bool,
    /// The echo canceller of the appended audio (`input_audio_echo_cancellation`).
    echo: Option<Echo>,
    /// The noise suppressor of the appended audio (`input_audio_noise_reduction`).
    denoiser: Option<Denoiser>,
    /// The language model's last verdict on a pause failed (an engine that does not judge
    /// turns, or one stopped for a turn): the end-of-turn model is then asked at each pause at
    /// once, not after the words, until a verdict comes again.
    words_unjudged: bool,
    /// The language model computes a prompt ahead: with semantic detection the words are
    /// previewed while the user speaks, for it.
    words_ahead: bool,
}

impl Listener {
    /// An empty buffer at `rate` Hz, with `vad` for server turn detection; `words_ahead`: the
    /// language model computes a prompt ahead.
    pub(crate) fn new(vad: Box<dyn Vad>, rate: u32, words_ahead: bool) -> Self {
        Listener {
            input: InputAudio::new(vad, rate),
            speech: None,
            asr_jobs: HashMap::new(),
            confirmed: false,
            echo: None,
            denoiser: None,
            words_unjudged: false,
            words_ahead,
        }
    }

    /// The input rate.
    pub(crate) fn rate(&self) -> u32 {
        self.input.rate()
    }

    /// Whether the user is speaking (speech started and not yet stopped).
    pub(crate) fn hears_speech(&self) -> bool {
        self.input.in_speech()
    }

    /// Whether committed audio is still being transcribed.
    pub(crate) fn is_transcribing(&self) -> bool {
        !self.asr_jobs.is_empty()
    }

    /// The input format changed to `rate` Hz: the buffer and the turn being heard are dropped.
    pub(crate) fn set_rate(&mut self, rate: u32, out: &mut Out) {
        self.input.set_rate(rate);
        self.end_speech(out);
        if self.denoiser.is_some() {
            self.denoiser = Some(Denoiser::new(rate));
        }
        if self.echo.is_some() {
            self.echo = Some(Echo::new(rate));
        }
    }

    /// Follows `input_audio_echo_cancellation` and `input_audio_noise_reduction`: the appended
    /// audio has the assistant's voice removed ([`crate::echo`]), then steady noise (any type:
    /// `azure_deep_noise_suppression`, `near_field`, `far_field`), before detection,
    /// transcription and storage; `null` turns either off.
    pub(crate) fn follow_input_processing(&mut self, config: &SessionConfig) {
        let wanted = |key: &str| config.extra.get(key).is_some_and(|v| !v.is_null());
        let rate = self.input.rate();
        match (wanted("input_audio_echo_cancellation"), self.echo.is_some()) {
            (true, false) => self.echo = Some(Echo::new(rate)),
            (false, true) => self.echo = None,
            _ => {}
        }
        match (wanted("input_audio_noise_reduction"), self.denoiser.is_some()) {
            (true, false) => self.denoiser = Some(Denoiser::new(rate)),
            (false, true) => self.denoiser = None,
            _ => {}
        }
    }

    /// The echo canceller, when on: the assistant's audio is laid on its timeline as it plays.
    pub(crate) fn echo_mut(&mut self) -> Option<&mut Echo> {
        self.echo.as_mut()
    }

    /// Empties the buffer and drops the turn being heard.
    pub(crate) fn clear(&mut self, out: &mut Out) {
        self.input.clear();
        self.end_speech(out);
    }

    /// Decodes a client's audio bytes in the input format.
    pub(crate) fn decode(&self, config: &SessionConfig, bytes: &[u8], param: &str) -> Result<Vec<i16>, ProtocolError> {
        let format = sample_format(config.input_audio_format);
        let mut samples = Vec::with_capacity(bytes.len() / format.bytes_per_sample());
        format.decode_into(bytes, &mut samples).map_err(|e| {
            ProtocolError::invalid(code::INVALID_AUDIO, format!("Invalid audio for input format pcm16: {e}."))
                .with_param(param)
        })?;
        Ok(samples)
    }

    /// Refuses `samples` more audio (at the input rate) when the audio the session holds (the
    /// input buffer and the audio waiting to be transcribed) would pass
    /// [`Limits::max_buffer_ms`].
    pub(crate) fn check_held(&self, limits: &Limits, samples: usize, param: &str) -> Result<(), ProtocolError> {
        let waiting_ms: f64 = self.asr_jobs.values().map(|j| j.audio_seconds * 1000.0).sum();
        let held_ms = self.input.buffered_ms() + waiting_ms;
        let added_ms = samples as f64 * 1000.0 / self.input.rate() as f64;
        if held_ms + added_ms <= limits.max_buffer_ms {
            return Ok(());
        }
        Err(ProtocolError::invalid(
            code::SESSION_MEMORY_EXCEEDED,
            format!(
                "The session already holds {:.0} s of audio (buffered or being transcribed) and this is {:.0} s more; the most is {:.0} s. Wait for the transcriptions, or commit or clear the buffer, first.",
                held_ms / 1000.0,
                added_ms / 1000.0,
                limits.max_buffer_ms / 1000.0
            ),
        )
        .with_param(param))
    }

    /// Appends `input_audio_buffer.append`'s samples and returns what turn detection found in
    /// them, for the session to pass back one by one ([`Listener::speech_started`],
    /// [`Listener::speech_stopped`]) between its own rules.
    pub(crate) fn append(
        &mut self,
        limits: &Limits,
        config: &SessionConfig,
        samples: &[i16],
        now: Instant,
    ) -> Result<Vec<TurnEvent>, ProtocolError> {
        let added_ms = samples.len() as f64 * 1000.0 / self.input.rate() as f64;
        if self.input.buffered_ms() + added_ms > limits.max_buffer_ms {
            return Err(ProtocolError::invalid(
                code::INVALID_AUDIO,
                format!(
                    "The input audio buffer is full ({} s); commit or clear it first.",
                    limits.max_buffer_ms / 1000.0
                ),
            )
            .with_param("audio"));
        }
        self.check_held(limits, samples.len(), "audio")?;
        let unechoed = self.echo.as_mut().map(|echo| echo.cancel(samples, now));
        let samples = unechoed.as_deref().unwrap_or(samples);
        let Some(denoiser) = self.denoiser.as_mut() else {
            return Ok(self.input.append(samples, config.turn_detection.as_ref()));
        };
        let mut clean = Vec::with_capacity(samples.len());
        denoiser.process(samples, &mut clean);
        Ok(self.input.append(&clean, config.turn_detection.as_ref()))
    }

    /// The detector heard speech begin: a new turn (and its item id) is announced, or, with
    /// `hold`, held back until its words show it is not a backchannel.
    pub(crate) fn speech_started(&mut self, audio_start_ms: u64, hold: bool, out: &mut Out) {
        let item_id = out.next_id("item");
        self.end_speech(out);
        self.speech = Some(SpeechTurn {
            item_id: item_id.clone(),
            preview_job: None,
            previewed_samples: 0,
            covering: None,
            pause: None,
            words: Vec::new(),
            sent_words: 0,
            sent: String::new(),
            held: hold.then_some(audio_start_ms),
        });
        if !hold {
            out.emit(ServerEvent::SpeechStarted { audio_start_ms, item_id });
        }
    }

    /// Whether a turn held back as a possible backchannel was announced since last asked (it
    /// interrupts the assistant now).
    pub(crate) fn take_confirmed(&mut self) -> bool {
        std::mem::take(&mut self.confirmed)
    }

    /// The held-back turn is more than a backchannel: it is announced, where it began.
    fn confirm(&mut self, out: &mut Out) {
        let Some(turn) = self.speech.as_mut() else { return };
        let Some(audio_start_ms) = turn.held.take() else { return };
        out.emit(ServerEvent::SpeechStarted { audio_start_ms, item_id: turn.item_id.clone() });
        self.confirmed = true;
    }

    /// The held-back turn was a backchannel: it and its audio are dropped, unannounced.
    fn drop_backchannel(&mut self, out: &mut Out) {
        self.end_speech(out);
        self.input.take(None);
    }

    /// A held-back turn is announced once the assistant is no longer `speaking`, or once it has
    /// gone on for [`HELD_MAX_MS`], whatever its words; while it pauses, its end waits for the
    /// pause's words. Called after each append.
    pub(crate) fn follow_held(&mut self, config: &SessionConfig, speaking: bool, out: &mut Out) {
        if self.speech.as_ref().is_none_or(|t| t.held.is_none()) {
            return;
        }
        if !speaking || self.input.spoken_ms().is_some_and(|ms| ms >= HELD_MAX_MS) {
            self.confirm(out);
        }
        self.set_end_silence(config);
    }

    /// The detector confirmed the end of the turn: it is committed to `conversation` (true), or
    /// dropped as a backchannel (false).
    pub(crate) fn speech_stopped(
        &mut self,
        (audio_end_ms, speech_end_ms, turn_start_ms): (u64, f64, f64),
        config: &SessionConfig,
        speaking: bool,
        conversation: &mut Conversation,
        out: &mut Out,
    ) -> Result<bool, ProtocolError> {
        // A preview asked for in this final pause already holds every word: it is the final
        // transcript (kept running if it is still being decoded).
        let covering = self.speech.as_mut().and_then(|t| {
            let c = t.covering.take().filter(|c| c.speech_end_ms == speech_end_ms)?;
            if t.preview_job == Some(c.job) {
                t.preview_job = None;
            }
            Some(c)
        });
        if self.speech.as_ref().is_some_and(|t| t.held.is_some()) {
            // Held back as a possible backchannel: its words decide (unknown words interrupt),
            // while the assistant still speaks.
            let padding = config.turn_detection.as_ref().map_or(0.0, |t| t.prefix_padding_ms as f64);
            let spoken_ms = (speech_end_ms - turn_start_ms - padding).max(0.0);
            let words = covering.as_ref().and_then(|c| c.text.as_deref());
            if speaking && words.is_some_and(|w| judge(w, spoken_ms) == Held::Backchannel) {
                self.drop_backchannel(out);
                return Ok(false);
            }
            self.confirm(out);
        }
        let (item_id, sent) = self.end_speech(out).unwrap_or_else(|| (out.next_id("item"), String::new()));
        out.emit(ServerEvent::SpeechStopped { audio_end_ms, item_id: item_id.clone() });
        let (samples, _) = self.input.take(Some(turn_start_ms));
        self.commit(item_id, samples, sent, covering, config, conversation, out)?;
        Ok(true)
    }

    /// `input_audio_buffer.commit`.
    pub(crate) fn commit_manually(
        &mut self,
        config: &SessionConfig,
        conversation: &mut Conversation,
        out: &mut Out,
    ) -> Result<(), ProtocolError> {
        let buffered = self.input.buffered_ms();
        if buffered < MIN_COMMIT_MS {
            return Err(ProtocolError::invalid(
                code::INPUT_AUDIO_BUFFER_COMMIT_EMPTY,
                format!(
                    "Error committing input audio buffer: buffer too small. Expected at least {MIN_COMMIT_MS}ms of audio, but buffer only has {buffered:.2}ms of audio."
                ),
            ));
        }
        // A turn held back as a possible backchannel is the client's to commit: it is announced.
        self.confirm(out);
        let (item_id, sent) = self.end_speech(out).unwrap_or_else(|| (out.next_id("item"), String::new()));
        let (samples, _) = self.input.take(None);
        self.commit(item_id, samples, sent, None, config, conversation, out)
    }

    /// While the user speaks (and transcripts are asked for), decodes the turn so far once at
    /// each pause of [`PAUSE_PREVIEW_MS`] and, for a transcription model that streams its words
    /// ([`Transcription::streams`](brazen_protocol::Transcription::streams): not `whisper-1`),
    /// every [`PREVIEW_STEP_MS`] of speech, one preview at a time; what successive previews agree
    /// on is sent as transcription deltas (only for such a model). A pause's
    /// preview holds all the words of a turn that is about to end, so the language model can
    /// compute its prompt while the silence is still being confirmed.
    ///
    /// With semantic detection the turn is previewed even when no transcripts are: every
    /// [`PREVIEW_STEP_MS`] when the language model computes the words so far ahead (judging a
    /// pause then computes only the last ones), and as each pause is heard (the sound stopped
    /// for [`crate::turn::QUIET_PAUSE_MS`], [`crate::turn::InputAudio::heard_pause`]), whose
    /// words decide whether the turn is over: a preview still decoding older speech is
    /// cancelled for it once the pause is [`SEMANTIC_PAUSE_MS`] long, and it is cancelled
    /// itself if the sound comes back before it is decoded.
    pub(crate) fn preview(&mut self, config: &SessionConfig, out: &mut Out) {
        let Some(detection) = &config.turn_detection else { return };
        let semantic = Waits::of(detection).is_some();
        // A turn held back as a possible backchannel is previewed often: its words decide.
        let held = self.speech.as_ref().is_some_and(|t| t.held.is_some());
        let reported = config.input_audio_transcription.is_some() || held;
        // Words while the user speaks: for a model that streams them (not `whisper-1`), and with
        // semantic detection for a language model that computes them ahead (no deltas unless
        // the transcription model streams).
        let streams = config.input_audio_transcription.as_ref().is_some_and(|t| t.streams());
        let streamed = streams || held || (semantic && self.words_ahead);
        if !self.input.in_speech() || (!reported && !semantic) {
            return;
        }
        if semantic && !held && !streams {
            self.drop_interrupted_preview(out);
        }
        let rate = self.input.rate();
        let pause_ms = self.input.pause_ms().unwrap_or(0.0);
        // Someone waits on a pause's words (with semantic detection, or held speech): they are
        // asked for as soon as it is heard.
        let pausing = if semantic || held { self.input.heard_pause() } else { pause_ms >= PAUSE_PREVIEW_MS };
        if !pausing && (!streamed || (held && self.input.spoken_ms().is_some_and(|ms| ms < HELD_FIRST_MS))) {
            return;
        }
        let Some(turn) = self.speech.as_mut() else { return };
        let step = (if held { HELD_STEP_MS } else { PREVIEW_STEP_MS } * rate as f64 / 1000.0) as usize;
        let longest = preview_max_samples(rate);
        let Some(samples) = self.input.speech_audio(detection.prefix_padding_ms as f64) else { return };
        // During a pause, once: if the last preview began before its words ended (with semantic
        // detection: unless a preview already holds all its words, wherever it began).
        let due = if pausing && (semantic || held) {
            let speech_end = self.input.last_speech_ms();
            !turn.covering.as_ref().is_some_and(|c| Some(c.speech_end_ms) == speech_end)
        } else if pausing {
            let spoken = samples.len().saturating_sub((pause_ms * rate as f64 / 1000.0) as usize);
            turn.previewed_samples < spoken
        } else {
            samples.len() >= turn.previewed_samples + step
        };
        if !due || samples.len() > longest {
            return;
        }
        if let Some(job) = turn.preview_job {
            // Someone waits on this pause's words: a preview that does not hold them (it began
            // before the pause) gives way, once the pause is long enough to be judged (a pause
            // of a frame or two is often a word's own stop).
            if !(pausing && (semantic || held)) || pause_ms < SEMANTIC_PAUSE_MS {
                return;
            }
            out.push(Output::Cancel(job));
        }
        let previewed_before = std::mem::replace(&mut turn.previewed_samples, samples.len());
        let samples = samples.to_vec();
        let job = out.next_job();
        turn.preview_job = Some(job);
        // Started in a pause, it holds every word so far.
        if let (true, Some(speech_end_ms)) = (pausing, self.input.last_speech_ms()) {
            turn.covering = Some(Covering { job, speech_end_ms, previewed_before, text: None });
        }
        let mut request = asr_request(config, turn.item_id.clone(), samples, rate, true);
        // Someone waits on these words: whether held speech interrupts, or (semantic detection)
        // whether a pause ends the turn. Other conversations' replies pause for them.
        request.urgent = held || (semantic && pausing);
        // Words so far that only the language model's head start needs (no deltas go out):
        // not worth delaying anyone's pause for.
        request.optional = semantic && !held && !pausing && !streams;
        out.push(Output::StartAsr(job, request));
    }

    /// Stops the preview of a pause that ended in speech before it was decoded: no one waits
    /// on its words (a pause heard from the sound alone is often a stop inside a word), and the
    /// cores are the speaker's next pause's. The next step preview comes as if it was never
    /// asked for.
    fn drop_interrupted_preview(&mut self, out: &mut Out) {
        let speech_end_ms = self.input.last_speech_ms();
        let Some(turn) = self.speech.as_mut() else { return };
        let Some(c) = turn.covering.as_ref() else { return };
        if c.text.is_some() || turn.preview_job != Some(c.job) || speech_end_ms == Some(c.speech_end_ms) {
            return;
        }
        out.push(Output::Cancel(c.job));
        turn.preview_job = None;
        turn.previewed_samples = c.previewed_before;
        turn.covering = None;
    }

    /// Semantic turn detection: each pause of [`SEMANTIC_PAUSE_MS`] is judged (once; a pause
    /// that ends in speech is forgotten) from its words and, when they do not settle it, the
    /// end-of-turn model ([`Listener::hear_pause`]), and the silence that ends the turn is set
    /// from what is known of this pause
    /// ([`Waits::silence_ms`]). Returns the pause's words when they were already transcribed
    /// as it began: the language model may judge them ([`Heard::PauseWords`]).
    pub(crate) fn judge(&mut self, config: &SessionConfig, out: &mut Out) -> Option<String> {
        let detection = config.turn_detection.as_ref()?;
        Waits::of(detection)?;
        let (speech_end_ms, pause_ms) = (self.input.last_speech_ms()?, self.input.pause_ms()?);
        let turn = self.speech.as_mut()?;
        if turn.held.is_some() {
            // Held back as a possible backchannel: judged once announced.
            return None;
        }
        let mut words = None;
        if turn.pause.as_ref().is_some_and(|p| p.speech_end_ms != speech_end_ms) {
            // The user spoke again: that pause was not the end.
            for job in turn.pause.take().into_iter().flat_map(|p| p.jobs()) {
                out.push(Output::Cancel(job));
            }
        }
        if turn.pause.is_none() && pause_ms >= SEMANTIC_PAUSE_MS {
            words = covered(turn, speech_end_ms).filter(|t| !t.trim().is_empty()).map(str::to_owned);
            turn.pause = Some(Pause {
                speech_end_ms,
                audio: Verdict::Unknown,
                audio_job: None,
                audio_asked: false,
                text: Verdict::Unknown,
                text_job: None,
            });
            // No words will come for a turn past the previews' limit.
            let longest = preview_max_samples(self.input.rate());
            let wordless =
                self.input.speech_audio(detection.prefix_padding_ms as f64).is_some_and(|a| a.len() > longest);
            if self.words_unjudged || wordless || self.pause_unheard() {
                self.hear_pause(config, out);
            }
        }
        self.set_end_silence(config);
        words
    }

    /// Asks the end-of-turn model about the pause being judged, once: it hears the turn's
    /// audio up to [`TURN_MODEL_PAUSE_MS`] into the pause (its last 8 s).
    ///
    /// It is asked only when the words do not settle the pause: when the language model's
    /// verdict is not a finished message (and the words do not go on whatever the audio), when
    /// the pause has no words, or when the language model does not judge. Nothing else then
    /// runs beside the pause's words (Whisper), and a finished question costs no call of
    /// the audio model.
    fn hear_pause(&mut self, config: &SessionConfig, out: &mut Out) {
        let Some(detection) = config.turn_detection.as_ref() else { return };
        let Some(pause_ms) = self.input.pause_ms() else { return };
        let Some(audio) = self.input.speech_audio(detection.prefix_padding_ms as f64) else { return };
        let rate = self.input.rate();
        let Some(pause) = self.speech.as_mut().and_then(|t| t.pause.as_mut()) else { return };
        if pause.audio_asked {
            return;
        }
        pause.audio_asked = true;
        let later = (((pause_ms - TURN_MODEL_PAUSE_MS).max(0.0) * rate as f64 / 1000.0) as usize).min(audio.len());
        let audio = &audio[..audio.len() - later];
        let keep = (TURN_MODEL_MS * rate as f64 / 1000.0) as usize;
        let samples = audio[audio.len().saturating_sub(keep)..].to_vec();
        let job = out.next_job();
        pause.audio = Verdict::Pending;
        pause.audio_job = Some(job);
        out.push(Output::StartTurnCheck(job, TurnRequest { samples, sample_rate: rate }));
    }

    /// The language model is judging the pause's words, as job `job`: the turn waits for it.
    pub(crate) fn judge_words(&mut self, job: JobId, config: &SessionConfig) {
        if let Some(pause) = self.speech.as_mut().and_then(|t| t.pause.as_mut()) {
            pause.text = Verdict::Pending;
            pause.text_job = Some(job);
        }
        self.set_end_silence(config);
    }

    /// A verdict on a pause, from the end-of-turn model or the language model (others are
    /// ignored); true when it was one of this listener's. A language model's verdict that is
    /// not a finished message asks the end-of-turn model ([`Listener::hear_pause`]).
    pub(crate) fn on_turn(&mut self, job: JobId, verdict: TurnVerdict, config: &SessionConfig, out: &mut Out) -> bool {
        let Some(pause) = self.speech.as_mut().and_then(|t| t.pause.as_mut()) else { return false };
        let said = match verdict {
            TurnVerdict::Probability(p) => Verdict::Finished(p),
            TurnVerdict::Failed(_) => Verdict::Unknown,
        };
        if pause.audio_job == Some(job) {
            pause.audio_job = None;
            pause.audio = said;
        } else if pause.text_job == Some(job) {
            pause.text_job = None;
            pause.text = said;
            self.words_unjudged = said == Verdict::Unknown;
            if self.audio_matters(config) {
                self.hear_pause(config, out);
            }
        } else {
            return false;
        }
        self.set_end_silence(config);
        true
    }

    /// Sets the silence that ends the speech in progress from what is known of its pause.
    /// A turn held back as a possible backchannel also waits (up to [`HELD_WORDS_WAIT_MS`])
    /// for the words of its pause, which decide whether it was one.
    fn set_end_silence(&mut self, config: &SessionConfig) {
        let Some(detection) = config.turn_detection.as_ref() else { return };
        let Some(turn) = self.speech.as_ref() else { return };
        let words_of = |speech_end_ms: Option<f64>| speech_end_ms.and_then(|end| covered(turn, end));
        let silence = Waits::of(detection).map(|waits| match turn.pause.as_ref() {
            None => waits.unsure_ms,
            Some(pause) => {
                let words = words_of(Some(pause.speech_end_ms)).filter(|w| !w.trim().is_empty());
                waits.silence_ms(pause.audio, pause.text, words)
            }
        });
        let waiting = turn.held.is_some() && words_of(self.input.last_speech_ms()).is_none();
        let silence = match silence {
            _ if waiting => Some(silence.unwrap_or(detection.silence_duration_ms as f64).max(HELD_WORDS_WAIT_MS)),
            silence => silence,
        };
        self.input.set_end_silence(silence);
    }

    /// Ends the turn now if its pause has lasted the silence that ends it (after a verdict or
    /// the pause's words arrived between two pieces of audio).
    pub(crate) fn end_if_due(&mut self, config: &SessionConfig) -> Option<TurnEvent> {
        self.input.end_if_due(config.turn_detection.as_ref()?)
    }

    /// Whether the pause being judged has words, and they are none (silence, or a failed
    /// preview): the language model has nothing to judge.
    fn pause_unheard(&self) -> bool {
        let Some(turn) = self.speech.as_ref() else { return false };
        let Some(pause) = turn.pause.as_ref() else { return false };
        covered(turn, pause.speech_end_ms).is_some_and(|t| t.trim().is_empty())
    }

    /// Whether the end-of-turn model's verdict could change the silence that ends the pause
    /// being judged, given its words and the language model's verdict on them.
    fn audio_matters(&self, config: &SessionConfig) -> bool {
        let Some(waits) = config.turn_detection.as_ref().and_then(Waits::of) else { return false };
        let Some(turn) = self.speech.as_ref() else { return false };
        let Some(pause) = turn.pause.as_ref() else { return false };
        let words = covered(turn, pause.speech_end_ms).filter(|w| !w.trim().is_empty());
        let silence = |audio: f32| waits.silence_ms(Verdict::Finished(audio), pause.text, words);
        silence(0.0) != silence(1.0)
    }

    /// A preview came back: sends the words it shares with the previous one as a delta.
    fn on_preview(&mut self, event: AsrEvent, report: bool, speaking: bool, out: &mut Out) -> Heard {
        let Some(turn) = self.speech.as_mut() else { return Heard::Nothing };
        let text = match event {
            // A preview's partial words are not used: its whole text comes with `Done`.
            AsrEvent::Delta(_) => return Heard::Nothing,
            AsrEvent::Failed(_) => {
                // A failed preview cannot stand in for the final transcript: it stays as the
                // pause's preview with no words (so the pause is not previewed again, and the
                // turn is transcribed when it ends). Held-back speech whose words cannot be
                // known interrupts.
                let job = turn.preview_job.take();
                if let Some(c) = turn.covering.as_mut().filter(|c| Some(c.job) == job) {
                    c.text = Some(String::new());
                }
                self.confirm(out);
                return Heard::Nothing;
            }
            AsrEvent::Done(text) => text,
        };
        let job = turn.preview_job.take();
        let mut pause_words = false;
        let mut whole_pause = false;
        if let Some(c) = turn.covering.as_mut().filter(|c| Some(c.job) == job) {
            c.text = Some(text.clone());
            pause_words = turn.pause.as_ref().is_some_and(|p| p.speech_end_ms == c.speech_end_ms);
            whole_pause = self.input.last_speech_ms() == Some(c.speech_end_ms);
        }
        if turn.held.is_some() {
            match judge(&text, self.input.spoken_ms().unwrap_or(0.0)) {
                // A backchannel so far: held, and dropped if the speech ends so (a question
                // pauses between its words, and its next words may take the turn).
                Held::Backchannel if speaking || !whole_pause => return Heard::Nothing,
                // More than one, or said as the assistant finished: a turn.
                _ => self.confirm(out),
            }
        }
        let Some(turn) = self.speech.as_mut() else { return Heard::Nothing };
        let words: Vec<String> = text.split_whitespace().map(str::to_owned).collect();
        let agreed = words.iter().zip(&turn.words).take_while(|(a, b)| same_word(a, b)).count();
        turn.words = words;
        if report && agreed > turn.sent_words {
            let new = turn.words[turn.sent_words..agreed].join(" ");
            let delta = if turn.sent.is_empty() { new } else { format!(" {new}") };
            turn.sent.push_str(&delta);
            turn.sent_words = agreed;
            out.emit(ServerEvent::TranscriptionDelta { item_id: turn.item_id.clone(), content_index: 0, delta });
        }
        match text.trim() {
            "" => Heard::Nothing,
            heard if pause_words => Heard::PauseWords(heard.to_owned()),
            heard => Heard::Preview(heard.to_owned()),
        }
    }

    /// The detected turn is over (committed or dropped): stops its preview and returns its item
    /// id and what was sent of its transcript.
    fn end_speech(&mut self, out: &mut Out) -> Option<(String, String)> {
        let turn = self.speech.take()?;
        for job in turn.preview_job.into_iter().chain(turn.pause.iter().flat_map(Pause::jobs)) {
            out.push(Output::Cancel(job));
        }
        Some((turn.item_id, turn.sent))
    }

    /// Commits a turn's audio as a user item and transcribes it (`sent`: what previews already
    /// sent of it), unless `covering`, a preview of all its speech, is its transcript.
    #[allow(clippy::too_many_arguments)]
    fn commit(
        &mut self,
        item_id: String,
        samples: Vec<i16>,
        sent: String,
        covering: Option<Covering>,
        config: &SessionConfig,
        conversation: &mut Conversation,
        out: &mut Out,
    ) -> Result<(), ProtocolError> {
        let item = Item::message(
            item_id.clone(),
            Role::User,
            vec![Content::InputAudio { audio: None, transcript: None }],
            ItemStatus::Completed,
        );
        let rate = self.input.rate();
        let mut entry = Entry::new(item.clone());
        entry.audio_ms = samples.len() as f64 * 1000.0 / rate as f64;
        let previous_item_id = conversation.insert(crate::conversation::Position::End, entry)?;
        out.emit(ServerEvent::InputAudioCommitted {
            previous_item_id: previous_item_id.clone(),
            item_id: item_id.clone(),
        });
        out.announce(previous_item_id, item);
        let audio_seconds = samples.len() as f64 / rate as f64;
        match covering {
            // A preview that gave words is the transcript.
            Some(Covering { job, text: Some(text), .. }) if !text.trim().is_empty() => {
                self.asr_jobs.insert(job, AsrJob { item_id, audio_seconds, sent, fallback: None });
                self.on_asr(job, AsrEvent::Done(text), config, conversation, false, out);
            }
            // One still being decoded becomes the final job, with the audio kept in case.
            Some(Covering { job, text: None, .. }) => {
                let fallback = Some((samples, rate));
                self.asr_jobs.insert(job, AsrJob { item_id, audio_seconds, sent, fallback });
            }
            _ => self.transcribe(item_id, samples, rate, sent, config, out),
        }
        Ok(())
    }

    /// Transcribes the audio of item `item_id` (`sent`: what was already sent of its
    /// transcript).
    pub(crate) fn transcribe(
        &mut self,
        item_id: String,
        samples: Vec<i16>,
        sample_rate: u32,
        sent: String,
        config: &SessionConfig,
        out: &mut Out,
    ) {
        let job = out.next_job();
        let audio_seconds = samples.len() as f64 / sample_rate as f64;
        self.asr_jobs.insert(job, AsrJob { item_id: item_id.clone(), audio_seconds, sent, fallback: None });
        out.push(Output::StartAsr(job, asr_request(config, item_id, samples, sample_rate, false)));
    }

    /// A recogniser's event for one of the listener's jobs (others are ignored).
    pub(crate) fn on_asr(
        &mut self,
        job: JobId,
        event: AsrEvent,
        config: &SessionConfig,
        conversation: &mut Conversation,
        speaking: bool,
        out: &mut Out,
    ) -> Heard {
        if self.speech.as_ref().is_some_and(|t| t.preview_job == Some(job)) {
            // Words go out while the user speaks only for a model that streams them.
            let streams = config.input_audio_transcription.as_ref().is_some_and(|t| t.streams());
            let heard = self.on_preview(event, streams, speaking, out);
            if self.pause_unheard() {
                self.hear_pause(config, out);
            }
            self.set_end_silence(config);
            return heard;
        }
        let report = config.input_audio_transcription.is_some();
        let declined = match &event {
            AsrEvent::Done(text) => text.trim().is_empty(),
            AsrEvent::Failed(_) => true,
            AsrEvent::Delta(_) => false,
        };
        if declined && let Some((samples, rate)) = self.asr_jobs.get_mut(&job).and_then(|a| a.fallback.take()) {
            // The preview standing in for the final transcript gave nothing: transcribe the turn.
            if let Some(asr) = self.asr_jobs.remove(&job) {
                self.transcribe(asr.item_id, samples, rate, asr.sent, config, out);
            }
            return Heard::Nothing;
        }
        let Some(asr) = self.asr_jobs.get_mut(&job) else { return Heard::Nothing };
        let item_id = asr.item_id.clone();
        match event {
            AsrEvent::Delta(delta) => {
                asr.sent.push_str(&delta);
                if report {
                    out.emit(ServerEvent::TranscriptionDelta { item_id, content_index: 0, delta });
                }
                return Heard::Nothing;
            }
            AsrEvent::Done(transcript) => {
                let audio_seconds = asr.audio_seconds;
                // The rest of the transcript, when it continues what was sent.
                let rest = transcript.strip_prefix(asr.sent.as_str()).filter(|r| !r.is_empty()).map(str::to_owned);
                if let Some(mut entry) = conversation.get_mut(&item_id) {
                    set_user_transcript(&mut entry.item, &transcript);
                }
                if report {
                    if let Some(delta) = rest {
                        out.emit(ServerEvent::TranscriptionDelta { item_id: item_id.clone(), content_index: 0, delta });
                    }
                    out.emit(ServerEvent::TranscriptionCompleted {
                        item_id,
                        content_index: 0,
                        transcript,
                        audio_seconds,
                    });
                }
            }
            AsrEvent::Failed(message) => {
                if report {
                    let error = ProtocolError::server(code::ENGINE_ERROR, format!("Transcription failed: {message}"));
                    out.emit(ServerEvent::TranscriptionFailed { item_id, content_index: 0, error });
                }
            }
        }
        self.asr_jobs.remove(&job);
        Heard::Transcribed
    }
}

fn asr_request(
    config: &SessionConfig,
    item_id: String,
    samples: Vec<i16>,
    sample_rate: u32,
    preview: bool,
) -> AsrRequest {
    let t = config.input_audio_transcription.as_ref();
    AsrRequest {
        item_id,
        samples,
        sample_rate,
        language: t.and_then(|t| t.language.clone()),
        prompt: t.and_then(|t| t.prompt.clone()),
        preview,
        urgent: false,
        optional: false,
    }
}

/// Whether two words of successive previews are the same word (case and punctuation aside).
fn same_word(a: &str, b: &str) -> bool {
    let key = |w: &str| w.chars().filter(|c| c.is_alphanumeric()).flat_map(char::to_lowercase).collect::<String>();
    key(a) == key(b)
}

fn set_user_transcript(item: &mut Item, transcript: &str) {
    if let ItemBody::Message { content, .. } = &mut item.body {
        for part in content.iter_mut() {
            if let Content::InputAudio { transcript: t, .. } = part {
                *t = Some(transcript.to_owned());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use brazen_protocol::TurnDetection;

    /// A detector that hears speech in any non-zero frame.
    struct Loud;

    impl Vad for Loud {
        fn sample_rate(&self) -> u32 {
            16_000
        }
        fn frame_len(&self) -> usize {
            320
        }
        fn process(&mut self, frame: &[f32]) -> f32 {
            if frame.iter().any(|s| s.abs() > 0.01) { 1.0 } else { 0.0 }
        }
        fn reset(&mut self) {}
    }

    fn setup() -> (Listener, SessionConfig, Conversation, Out) {
        let mut config = SessionConfig::new("sess_t", "m");
        config.turn_detection = Some(TurnDetection::default());
        config.input_audio_transcription = Some(brazen_protocol::session::Transcription {
            model: "gpt-4o-transcribe".into(),
            language: None,
            prompt: None,
            extra: Default::default(),
        });
        (Listener::new(Box::new(Loud), 24_000, true), config, Conversation::default(), Out::new("t".into()))
    }

    #[test]
    fn a_manual_commit_needs_100_ms() {
        let (mut l, config, mut conversation, mut out) = setup();
        l.append(&Limits::default(), &config, &[0; 2_000], Instant::now()).unwrap();
        let e = l.commit_manually(&config, &mut conversation, &mut out).unwrap_err();
        assert_eq!(e.code, code::INPUT_AUDIO_BUFFER_COMMIT_EMPTY);
        l.append(&Limits::default(), &config, &[0; 1_000], Instant::now()).unwrap();
        l.commit_manually(&config, &mut conversation, &mut out).unwrap();
        assert_eq!(conversation.len(), 1);
        assert!(l.is_transcribing());
    }

    #[test]
    fn audio_held_for_transcription_counts_against_the_limit() {
        let (mut l, mut config, mut conversation, mut out) = setup();
        // Without turn detection the buffer keeps all it is given.
        config.turn_detection = None;
        let limits = Limits { max_buffer_ms: 1_000.0, ..Limits::default() };
        l.append(&limits, &config, &[0; 18_000], Instant::now()).unwrap();
        l.commit_manually(&config, &mut conversation, &mut out).unwrap();
        // 750 ms wait for their transcript: 300 ms more is too much, 200 ms is not.
        assert_eq!(
            l.append(&limits, &config, &[0; 7_200], Instant::now()).unwrap_err().code,
            code::SESSION_MEMORY_EXCEEDED
        );
        assert!(l.append(&limits, &config, &[0; 4_800], Instant::now()).is_ok());
    }

    #[test]
    fn a_turn_is_committed_with_its_transcript_and_previews_send_the_words_they_agree_on() {
        let (mut l, config, mut conversation, mut out) = setup();
        let limits = Limits::default();
        let mut events = l.append(&limits, &config, &[3_000; 24_000], Instant::now()).unwrap();
        let Some(TurnEvent::SpeechStarted { audio_start_ms }) = events.pop() else { panic!("speech started") };
        l.speech_started(audio_start_ms, false, &mut out);
        l.preview(&config, &mut out);
        let preview = out
            .drain()
            .into_iter()
            .find_map(|o| if let Output::StartAsr(j, r) = o { r.preview.then_some(j) } else { None });
        let job = preview.expect("a preview of the first second");
        let heard = l.on_asr(job, AsrEvent::Done("I would like".into()), &config, &mut conversation, false, &mut out);
        assert_eq!(heard, Heard::Preview("I would like".into()));
        assert!(
            out.drain().iter().all(|o| !matches!(o, Output::Event(ServerEvent::TranscriptionDelta { .. }))),
            "one preview agrees with nothing yet"
        );
        let events = l.append(&limits, &config, &[3_000; 24_000], Instant::now()).unwrap();
        assert!(events.is_empty());
        l.preview(&config, &mut out);
        let job =
            out.drain().into_iter().find_map(|o| if let Output::StartAsr(j, _) = o { Some(j) } else { None }).unwrap();
        l.on_asr(job, AsrEvent::Done("I would like two".into()), &config, &mut conversation, false, &mut out);
        let deltas: Vec<String> = out
            .drain()
            .into_iter()
            .filter_map(|o| {
                if let Output::Event(ServerEvent::TranscriptionDelta { delta, .. }) = o { Some(delta) } else { None }
            })
            .collect();
        assert_eq!(deltas, ["I would like"]);
        let events = l.append(&limits, &config, &[0; 24_000], Instant::now()).unwrap();
        let Some(TurnEvent::SpeechStopped { audio_end_ms, speech_end_ms, turn_start_ms }) = events.into_iter().next()
        else {
            panic!("speech stopped")
        };
        l.speech_stopped((audio_end_ms, speech_end_ms, turn_start_ms), &config, false, &mut conversation, &mut out)
            .unwrap();
        assert_eq!(conversation.len(), 1);
        let (job, request) = out
            .drain()
            .into_iter()
            .rev()
            .find_map(|o| if let Output::StartAsr(j, r) = o { Some((j, r)) } else { None })
            .unwrap();
        assert!(!request.preview || request.samples.len() >= 48_000);
        let heard =
            l.on_asr(job, AsrEvent::Done("I would like two boots".into()), &config, &mut conversation, false, &mut out);
        assert_eq!(heard, Heard::Transcribed);
        assert!(!l.is_transcribing());
        let done = out.drain().into_iter().find_map(|o| match o {
            Output::Event(ServerEvent::TranscriptionCompleted { transcript, .. }) => Some(transcript),
            _ => None,
        });
        assert_eq!(done.as_deref(), Some("I would like two boots"));
    }
}
