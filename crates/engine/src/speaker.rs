//! [`Speech`]: one assistant message spoken aloud — its text cut into phrases, each phrase
//! synthesised (never far ahead of playback), the audio paced on the client's playback clock,
//! the transcript released word by word with it, and the lip-sync computed from its phonemes.

use crate::avatar_link::AvatarCommand;
use crate::echo::Echo;
use crate::out::Out;
use crate::playback::{Playback, Segment};
use crate::text::{take_phrase, take_rest};
use crate::{JobId, Limits, Output, sample_format, seed_of};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use brazen_audio::Resampler;
use brazen_avatar::LipSync;
use brazen_protocol::error::code;
use brazen_protocol::{AnimationOutputs, AudioFormat, PartRef, ProtocolError, ServerEvent, SessionConfig, Voice};
use brazen_providers::{Phone, TtsEvent, TtsRequest, WordTiming};
use std::collections::VecDeque;
use std::time::Instant;

/// How a response speaks, fixed when its message opens.
#[derive(Debug, Clone)]
pub(crate) struct Voicing {
    /// The client's audio format.
    pub format: AudioFormat,
    /// The voice.
    pub voice: Voice,
    /// The volume's gain (≤ 1).
    pub gain: f32,
    /// Whether word timestamps are sent (`output_audio_timestamp_types` has `word`).
    pub word_timestamps: bool,
    /// Whether the socket gets the audio even when the avatar plays it (`output_audit_audio`).
    pub audit_audio: bool,
    /// The animation events asked for.
    pub animation: AnimationOutputs,
}

impl Voicing {
    /// How a response with `config` speaks.
    pub(crate) fn of(config: &SessionConfig) -> Self {
        Voicing {
            format: config.output_audio_format,
            voice: config.voice.clone(),
            gain: config.voice.gain(),
            word_timestamps: config.output_audio_timestamp_types.iter().any(|t| t == "word"),
            audit_audio: config.avatar.as_ref().is_some_and(|a| a.output_audit_audio),
            animation: config.animation_outputs(),
        }
    }
}

struct TtsJob {
    job: JobId,
    phrase: String,
    started: bool,
}

/// The start of a synthesised phrase.
#[derive(Default)]
struct PhraseOut {
    text: String,
    /// The length of its audio synthesised so far, ms.
    duration_ms: f64,
    /// Its word timings, if the synthesiser gave them.
    words: Vec<WordTiming>,
    /// Its phonemes, if the synthesiser gave them (for lip-sync).
    phones: Vec<Phone>,
}

/// Synthesised output waiting for its time on the playback clock.
enum Paced {
    /// A phrase begins.
    Phrase(PhraseOut),
    /// Audio at the output rate, and its length in ms.
    Audio(Vec<i16>, f64),
}

/// What was spoken of a message when it closed.
pub(crate) struct Spoken {
    /// The transcript sent.
    pub transcript: String,
    /// The audio sent, ms.
    pub audio_ms: f64,
    /// Its phrases on the audio clock (to cut the transcript at a truncation).
    pub segments: Vec<Segment>,
}

/// One assistant message being spoken.
pub(crate) struct Speech {
    at: PartRef,
    voicing: Voicing,
    /// The transcript sent so far.
    text: String,
    /// Text not yet cut into a phrase.
    pending: String,
    /// Characters of text cut into phrases so far (the first ones are cut early,
    /// [`crate::text::EARLY_CHARS`]).
    phrased: usize,
    queue: VecDeque<String>,
    tts: Option<TtsJob>,
    resampler: Option<(u32, Resampler)>,
    /// Synthesised but not yet sent.
    paced: VecDeque<Paced>,
    /// Words of released phrases waiting for their audio: (start ms in the item's audio, timing).
    words: VecDeque<(f64, WordTiming)>,
    /// Milliseconds of audio sent.
    audio_ms: f64,
    segments: Vec<Segment>,
    lipsync: Option<LipSync>,
}

impl Speech {
    /// Nothing said yet of the message content part `at`.
    pub(crate) fn new(at: PartRef, voicing: Voicing) -> Self {
        Speech {
            at,
            voicing,
            text: String::new(),
            pending: String::new(),
            phrased: 0,
            queue: VecDeque::new(),
            tts: None,
            resampler: None,
            paced: VecDeque::new(),
            words: VecDeque::new(),
            audio_ms: 0.0,
            segments: Vec::new(),
            lipsync: None,
        }
    }

    /// Whether no phrase has been sent, queued or started (the message has said nothing yet).
    pub(crate) fn nothing_spoken_yet(&self) -> bool {
        self.text.is_empty() && self.queue.is_empty() && self.tts.is_none() && self.paced.is_empty()
    }

    /// Whether anything is still to be synthesised or sent (the text still coming aside).
    pub(crate) fn is_busy(&self) -> bool {
        self.tts.is_some() || !self.queue.is_empty() || !self.paced.is_empty() || !self.words.is_empty()
    }

    /// More of the message's text.
    pub(crate) fn push_text(&mut self, delta: &str, limits: &Limits, out: &mut Out) {
        self.pending.push_str(delta);
        while let Some(phrase) = take_phrase(&mut self.pending, self.phrased) {
            self.phrased += phrase.chars().count();
            self.queue.push_back(phrase);
        }
        self.pump(limits, out);
    }

    /// The message's text is complete: its rest becomes the last phrases.
    pub(crate) fn end_text(&mut self, limits: &Limits, out: &mut Out) {
        self.queue.extend(take_rest(&mut self.pending, self.phrased));
        self.pump(limits, out);
    }

    /// Starts synthesising the next queued phrase if none is being synthesised and the audio
    /// synthesised but not yet sent is under [`Limits::synthesis_ahead_ms`] (a long reply is
    /// synthesised as it is spoken, not all at once into memory).
    fn pump(&mut self, limits: &Limits, out: &mut Out) {
        let unsent_ms: f64 = self.paced.iter().map(|p| if let Paced::Audio(_, ms) = p { *ms } else { 0.0 }).sum();
        if self.tts.is_some() || unsent_ms >= limits.synthesis_ahead_ms {
            return;
        }
        let Some(phrase) = self.queue.pop_front() else { return };
        let job = out.next_job();
        self.tts = Some(TtsJob { job, phrase: phrase.clone(), started: false });
        out.push(Output::StartTts(job, TtsRequest { text: phrase, voice: self.voicing.voice.clone() }));
    }

    /// Whether `job` is the phrase being synthesised.
    pub(crate) fn owns(&self, job: JobId) -> bool {
        self.tts.as_ref().is_some_and(|t| t.job == job)
    }

    /// An event of the synthesis job [`Speech::owns`]; an error fails the response.
    pub(crate) fn on_tts(&mut self, event: TtsEvent, limits: &Limits, out: &mut Out) -> Result<(), ProtocolError> {
        match event {
            TtsEvent::Audio { sample_rate: 0, .. } => {
                return Err(ProtocolError::server(code::ENGINE_ERROR, "Speech synthesis returned audio at 0 Hz."));
            }
            TtsEvent::Audio { samples, sample_rate } => self.on_audio(samples, sample_rate, limits),
            TtsEvent::Words(words) => {
                if let Some(p) = self.phrase_out() {
                    p.words = words;
                }
            }
            TtsEvent::Phones(phones) => {
                if let Some(p) = self.phrase_out() {
                    p.phones = phones;
                }
            }
            TtsEvent::Done => {
                // The phrase's audio is complete: release what the resampler held back.
                let mut tail = Vec::new();
                if let Some((_, r)) = self.resampler.as_mut() {
                    r.flush_i16(&mut tail);
                }
                self.queue_audio(tail, limits);
                self.tts = None;
                self.pump(limits, out);
            }
            TtsEvent::Failed(message) => {
                return Err(ProtocolError::server(code::ENGINE_ERROR, format!("Speech synthesis failed: {message}")));
            }
        }
        Ok(())
    }

    /// The marker of the phrase being synthesised, queued when its first timing or audio
    /// comes.
    fn phrase_out(&mut self) -> Option<&mut PhraseOut> {
        let tts = self.tts.as_mut()?;
        if !tts.started {
            tts.started = true;
            self.paced.push_back(Paced::Phrase(PhraseOut { text: tts.phrase.clone(), ..PhraseOut::default() }));
        }
        self.paced.iter_mut().rev().find_map(|p| if let Paced::Phrase(p) = p { Some(p) } else { None })
    }

    /// Converts synthesised audio to the output rate and queues it for pacing.
    fn on_audio(&mut self, samples: Vec<i16>, sample_rate: u32, limits: &Limits) {
        self.phrase_out();
        let out_rate = self.voicing.format.sample_rate();
        if self.resampler.as_ref().is_none_or(|(rate, _)| *rate != sample_rate) {
            self.resampler = Some((sample_rate, Resampler::new(sample_rate, out_rate)));
        }
        let mut converted = Vec::with_capacity(samples.len());
        if let Some((_, r)) = self.resampler.as_mut() {
            r.process_i16(&samples, &mut converted);
        }
        self.queue_audio(converted, limits);
    }

    /// Applies the volume and queues audio at the output rate for pacing, in deltas of at most
    /// [`Limits::audio_delta_ms`].
    fn queue_audio(&mut self, mut converted: Vec<i16>, limits: &Limits) {
        if converted.is_empty() {
            return;
        }
        let out_rate = self.voicing.format.sample_rate();
        let gain = self.voicing.gain;
        if gain < 1.0 {
            converted.iter_mut().for_each(|s| *s = (*s as f32 * gain) as i16);
        }
        // The phrase's segment spans all of its audio, sent or not, so a cut inside it keeps a
        // proportional share of its words.
        let synthesised = converted.len() as f64 * 1000.0 / out_rate as f64;
        match self.paced.iter_mut().rev().find_map(|p| if let Paced::Phrase(p) = p { Some(p) } else { None }) {
            Some(p) => p.duration_ms += synthesised,
            None => {
                if let Some(seg) = self.segments.last_mut() {
                    seg.duration_ms += synthesised;
                }
            }
        }
        let chunk = ((limits.audio_delta_ms * out_rate as f64 / 1000.0) as usize).max(1);
        for piece in converted.chunks(chunk) {
            let ms = piece.len() as f64 * 1000.0 / out_rate as f64;
            self.paced.push_back(Paced::Audio(piece.to_vec(), ms));
        }
    }

    /// When paced audio is next due: only audio waits for the playback clock (a phrase waits
    /// for its audio, which wakes the session when it comes).
    pub(crate) fn due(&self, playback: Option<&Playback>, limits: &Limits) -> Option<Instant> {
        if !matches!(self.paced.front(), Some(Paced::Audio(..))) {
            return None;
        }
        playback?.drains_to(limits.audio_lead_ms)
    }

    /// Sends queued transcript and audio while the client's buffer is under the lead. A phrase
    /// with word timings releases each word (transcript delta, and timestamp when asked) as the
    /// audio that holds it goes out; a phrase without them releases its text before its audio.
    /// With `to_avatar`, phrases and audio also go to the avatar; with `echo`, the audio is
    /// laid on the echo canceller's timeline as it starts playing.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn release(
        &mut self,
        now: Instant,
        playback: &mut Option<Playback>,
        to_avatar: bool,
        mut echo: Option<&mut Echo>,
        limits: &Limits,
        out: &mut Out,
    ) {
        if self.paced.is_empty() && self.words.is_empty() {
            return;
        }
        // Over WebRTC the avatar plays the audio; the socket gets it only when asked to audit it.
        let audio_events = !to_avatar || self.voicing.audit_audio;
        if playback.as_ref().is_none_or(|p| p.item_id != self.at.item_id) {
            *playback = Some(Playback::new(self.at.response_id.clone(), self.at.item_id.clone(), 0));
        }
        let Some(playback) = playback.as_mut() else { return };
        loop {
            // Words are due once the audio they start in goes out; when synthesis has finished
            // and everything is sent, the rest are due (a timing may end past the audio).
            let held =
                matches!(self.paced.front(), Some(Paced::Audio(..))) && playback.ahead_ms(now) > limits.audio_lead_ms;
            let sent_until = match self.paced.front() {
                Some(Paced::Audio(_, ms)) if !held => self.audio_ms + ms,
                None if self.tts.is_none() => f64::INFINITY,
                _ => self.audio_ms,
            };
            while self.words.front().is_some_and(|(start, _)| *start < sent_until) {
                let Some((start, w)) = self.words.pop_front() else { break };
                self.say(&w.text, start, w.duration_ms, out);
                if self.voicing.word_timestamps {
                    out.emit(ServerEvent::AudioTimestampDelta {
                        at: self.at.clone(),
                        audio_offset_ms: start.round() as u64,
                        audio_duration_ms: w.duration_ms.round() as u64,
                        text: w.text,
                    });
                }
            }
            match self.paced.front() {
                None => break,
                // A phrase starts with its audio: its timings may still be coming until then.
                Some(Paced::Phrase(_)) if self.paced.len() == 1 && self.tts.is_some() => break,
                Some(Paced::Phrase(_)) => {
                    let Some(Paced::Phrase(p)) = self.paced.pop_front() else { break };
                    if p.words.is_empty() {
                        self.say(&p.text, self.audio_ms, p.duration_ms, out);
                    } else {
                        let base = self.audio_ms;
                        self.words.extend(p.words.iter().map(|w| (base + w.start_ms, w.clone())));
                    }
                    let end = p.phones.last().map_or(0.0, |l| l.start_ms + l.duration_ms);
                    if to_avatar {
                        out.push(Output::Avatar(AvatarCommand::Phrase { duration_ms: end, phones: p.phones.clone() }));
                    }
                    if self.voicing.animation != AnimationOutputs::default() {
                        let seed = seed_of(&self.at.item_id);
                        let lipsync = self.lipsync.get_or_insert_with(|| LipSync::new(seed, 0.0));
                        lipsync.add_phrase(self.audio_ms, end, &p.phones);
                    }
                }
                Some(Paced::Audio(..)) if held => break,
                Some(Paced::Audio(..)) => {
                    let Some(Paced::Audio(pcm, ms)) = self.paced.pop_front() else { break };
                    self.audio_ms += ms;
                    let starts = playback.sent(ms, now);
                    let format = self.voicing.format;
                    if let Some(echo) = echo.as_deref_mut() {
                        echo.played(starts, &pcm, format.sample_rate());
                    }
                    if audio_events {
                        let delta = B64.encode(sample_format(format).encode(&pcm));
                        out.emit(ServerEvent::AudioDelta { at: self.at.clone(), delta });
                    }
                    if to_avatar {
                        out.push(Output::Avatar(AvatarCommand::Audio {
                            samples: pcm,
                            sample_rate: format.sample_rate(),
                        }));
                    }
                    if let Some(lipsync) = self.lipsync.as_mut() {
                        animate(lipsync, self.voicing.animation, self.audio_ms, &self.at, out);
                    }
                }
            }
        }
        self.pump(limits, out);
    }

    /// Sends a piece of the transcript that starts at `start_ms` of the audio.
    fn say(&mut self, text: &str, start_ms: f64, duration_ms: f64, out: &mut Out) {
        let delta = if self.text.is_empty() { text.to_owned() } else { format!(" {text}") };
        self.text.push_str(&delta);
        self.segments.push(Segment { start_ms, duration_ms, text: text.to_owned() });
        out.emit(ServerEvent::AudioTranscriptDelta { at: self.at.clone(), delta });
    }

    /// Stops: cancels the phrase being synthesised, sends the audio part's closing events and
    /// returns what was spoken.
    pub(crate) fn close(mut self, out: &mut Out) -> Spoken {
        if let Some(tts) = self.tts.take() {
            out.push(Output::Cancel(tts.job));
        }
        let at = self.at;
        out.emit(ServerEvent::AudioDone { at: at.clone() });
        if self.voicing.animation.visemes {
            out.emit(ServerEvent::AnimationVisemeDone { at: at.clone() });
        }
        if self.voicing.animation.blendshapes {
            out.emit(ServerEvent::AnimationBlendshapesDone { at: at.clone() });
        }
        if self.voicing.word_timestamps {
            out.emit(ServerEvent::AudioTimestampDone { at: at.clone() });
        }
        out.emit(ServerEvent::AudioTranscriptDone { at, transcript: self.text.clone() });
        Spoken { transcript: self.text, audio_ms: self.audio_ms, segments: self.segments }
    }
}

/// The lip-sync of the audio sent up to `audio_ms` (on the item's audio clock) as the events
/// the session asked for: viseme changes, and blendshape frames at 60 fps.
fn animate(lipsync: &mut LipSync, outputs: AnimationOutputs, audio_ms: f64, at: &PartRef, out: &mut Out) {
    lipsync.extend_audio(audio_ms);
    let visemes = lipsync.take_visemes(audio_ms);
    if outputs.visemes {
        for v in visemes {
            out.emit(ServerEvent::AnimationVisemeDelta {
                at: at.clone(),
                audio_offset_ms: v.audio_offset_ms,
                viseme_id: v.viseme_id,
            });
        }
    }
    let (frame_index, frames) = lipsync.take_frames(audio_ms);
    if outputs.blendshapes && !frames.is_empty() {
        let frames = frames.iter().map(|f| f.to_vec()).collect();
        out.emit(ServerEvent::AnimationBlendshapesDelta { at: at.clone(), frame_index, frames });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn speech() -> (Speech, Out) {
        let at = PartRef { response_id: "resp_1".into(), item_id: "item_1".into(), output_index: 0, content_index: 0 };
        (Speech::new(at, Voicing::of(&SessionConfig::new("sess_t", "m"))), Out::new("t".into()))
    }

    fn tts_jobs(outputs: &[Output]) -> Vec<(JobId, String)> {
        outputs
            .iter()
            .filter_map(|o| if let Output::StartTts(j, r) = o { Some((*j, r.text.clone())) } else { None })
            .collect()
    }

    fn audio_ms(outputs: &[Output]) -> f64 {
        outputs
            .iter()
            .filter_map(|o| match o {
                Output::Event(ServerEvent::AudioDelta { delta, .. }) => {
                    Some(B64.decode(delta).unwrap().len() as f64 / 48.0)
                }
                _ => None,
            })
            .sum()
    }

    fn synthesise(s: &mut Speech, ms: usize, limits: &Limits, out: &mut Out) {
        let samples = vec![100i16; ms * 24];
        s.on_tts(TtsEvent::Audio { samples, sample_rate: 24_000 }, limits, out).unwrap();
        s.on_tts(TtsEvent::Done, limits, out).unwrap();
    }

    #[test]
    fn audio_goes_out_no_further_than_the_lead_ahead_of_playback() {
        let limits = Limits::default();
        let (mut s, mut out) = speech();
        let mut playback = None;
        s.push_text("Hello there.", &limits, &mut out);
        s.end_text(&limits, &mut out);
        assert_eq!(tts_jobs(&out.drain()).len(), 1);
        synthesise(&mut s, 2_000, &limits, &mut out);
        let t0 = Instant::now();
        s.release(t0, &mut playback, false, None, &limits, &mut out);
        let first = out.drain();
        assert_eq!(audio_ms(&first), 600.0, "three 200 ms deltas reach the 500 ms lead");
        assert!(
            matches!(&first[0], Output::Event(ServerEvent::AudioTranscriptDelta { delta, .. }) if delta == "Hello there.")
        );
        let due = s.due(playback.as_ref(), &limits).expect("more audio is due");
        assert_eq!(due, t0 + Duration::from_millis(100));
        s.release(due, &mut playback, false, None, &limits, &mut out);
        assert_eq!(audio_ms(&out.drain()), 200.0);
        // A client that played everything gets the lead again, not the rest at once.
        s.release(t0 + Duration::from_secs(10), &mut playback, false, None, &limits, &mut out);
        assert_eq!(audio_ms(&out.drain()), 600.0);
        assert!(s.is_busy());
        s.release(t0 + Duration::from_secs(20), &mut playback, false, None, &limits, &mut out);
        assert_eq!(audio_ms(&out.drain()), 600.0);
        assert!(!s.is_busy());
    }

    #[test]
    fn the_next_phrase_waits_while_enough_audio_is_unsent() {
        let limits = Limits { synthesis_ahead_ms: 1_000.0, ..Limits::default() };
        let (mut s, mut out) = speech();
        let mut playback = None;
        s.push_text("First phrase here. Second one follows.", &limits, &mut out);
        s.end_text(&limits, &mut out);
        assert_eq!(tts_jobs(&out.drain()).len(), 1);
        synthesise(&mut s, 1_500, &limits, &mut out);
        assert!(tts_jobs(&out.drain()).is_empty(), "1.5 s unsent is past the 1 s ahead");
        let t0 = Instant::now();
        s.release(t0, &mut playback, false, None, &limits, &mut out);
        // 600 ms went out, 900 ms are left: under the limit, the next phrase starts.
        assert_eq!(tts_jobs(&out.drain()).len(), 1);
    }

    #[test]
    fn closing_cancels_the_synthesis_and_keeps_what_was_said() {
        let limits = Limits::default();
        let (mut s, mut out) = speech();
        let mut playback = None;
        s.push_text("One. Two three four five six seven.", &limits, &mut out);
        s.end_text(&limits, &mut out);
        let jobs = tts_jobs(&out.drain());
        synthesise(&mut s, 300, &limits, &mut out);
        s.release(Instant::now(), &mut playback, false, None, &limits, &mut out);
        let running = tts_jobs(&out.drain());
        assert_eq!(running.len(), 1, "the second phrase is being synthesised");
        let spoken = s.close(&mut out);
        assert!(out.drain().contains(&Output::Cancel(running[0].0)));
        assert_ne!(jobs[0].0, running[0].0);
        assert_eq!(spoken.transcript, "One.");
        assert_eq!(spoken.audio_ms, 300.0);
    }
}
