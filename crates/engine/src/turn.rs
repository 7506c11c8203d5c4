//! The input audio buffer and server-side turn detection.
//!
//! Audio is placed on the session's audio clock: milliseconds since the first sample the client
//! appended (the clock of `audio_start_ms` / `audio_end_ms`). The detector runs the VAD over every
//! frame and moves through three states:
//!
//! - **silence**: the buffer keeps only the last `prefix_padding_ms` (plus the onset window), so
//!   an idle stream costs constant memory;
//! - **onset**: speech frames are adding up; after `speech_duration_ms` of them (gaps of at most
//!   100 ms allowed) it reports `SpeechStarted` at the first speech frame;
//! - **speech**: after `silence_duration_ms` without a speech frame (or the silence a semantic
//!   detector set for the current pause, [`InputAudio::set_end_silence`]) it reports `SpeechStopped` at
//!   the end of the last speech frame, and the turn's audio runs from `prefix_padding_ms` before
//!   the start to the present.
//!
//! With semantic detection the speech ends where its sound stops (`sound_end`), not where the
//! VAD stops hearing it (60–110 ms later with Silero): the silence that ends the turn is
//! counted from there, and a pause is heard once the sound has stopped for
//! [`QUIET_PAUSE_MS`], before the VAD's first silent frame. The turn still ends only after the
//! VAD has heard silence.

use crate::end_of_turn::Waits;
use crate::sound_end::SoundEnd;
use brazen_audio::{Vad, VadStream};
use brazen_protocol::TurnDetection;

/// Longest pause inside an onset before it is abandoned, in ms.
const ONSET_GAP_MS: f64 = 100.0;
/// With semantic detection, a pause is heard once the sound has stopped this long, in ms
/// (before the VAD's first silent frame, ~110 ms after the sound with Silero). Stops inside
/// words are often as long; a pause heard there ends when the sound comes back.
pub const QUIET_PAUSE_MS: f64 = 40.0;

/// What the detector saw in the audio just appended.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum TurnEvent {
    /// Speech began at this point of the audio clock.
    SpeechStarted {
        /// ms.
        audio_start_ms: u64,
    },
    /// Speech ended at this point; the turn is ready to commit.
    SpeechStopped {
        /// ms.
        audio_end_ms: u64,
        /// The same point, unrounded (it matches [`InputAudio::last_speech_ms`] during the
        /// speech).
        speech_end_ms: f64,
        /// Where the turn's audio begins (start minus prefix padding), ms.
        turn_start_ms: f64,
    },
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum State {
    Silence,
    Onset { start_ms: f64, speech_ms: f64, last_speech_ms: f64 },
    Speech { start_ms: f64, last_speech_ms: f64 },
}

/// The input audio buffer with its turn detector.
pub struct InputAudio {
    rate: u32,
    samples: Vec<i16>,
    /// Audio-clock position of `samples[0]`, in ms.
    start_ms: f64,
    /// Audio-clock position of the end of all audio appended, in ms.
    clock_ms: f64,
    vad: VadStream,
    /// Audio-clock position where the VAD stream's own clock began, in ms.
    vad_origin_ms: f64,
    state: State,
    /// The silence that ends the pause after the speech that ends at `.0` (audio clock, ms),
    /// when not `silence_duration_ms`.
    end_silence_ms: Option<(f64, f64)>,
    /// Where the sound stops, for semantic detection.
    sound: SoundEnd,
    /// The detection is semantic: the speech ends where its sound stops.
    by_sound: bool,
    /// The VAD judged its latest frame silent (during speech).
    heard_silence: bool,
}

impl InputAudio {
    /// An empty buffer for audio at `rate` Hz, detecting speech with `vad`.
    pub fn new(vad: Box<dyn Vad>, rate: u32) -> Self {
        InputAudio {
            rate,
            samples: Vec::new(),
            start_ms: 0.0,
            clock_ms: 0.0,
            vad: VadStream::new(vad, rate),
            vad_origin_ms: 0.0,
            state: State::Silence,
            end_silence_ms: None,
            sound: SoundEnd::new(rate),
            by_sound: false,
            heard_silence: false,
        }
    }

    /// The sample rate of the buffer.
    pub fn rate(&self) -> u32 {
        self.rate
    }

    /// Milliseconds of audio waiting in the buffer.
    pub fn buffered_ms(&self) -> f64 {
        self.samples.len() as f64 * 1000.0 / self.rate as f64
    }

    /// Whether speech is in progress (started and not yet stopped).
    pub fn in_speech(&self) -> bool {
        matches!(self.state, State::Speech { .. })
    }

    /// Where the speech in progress last ended (audio clock, ms): its last speech frame's end,
    /// or with semantic detection where its sound stopped (see the module's doc); `None` outside
    /// speech.
    pub fn last_speech_ms(&self) -> Option<f64> {
        let State::Speech { last_speech_ms, .. } = self.state else { return None };
        Some(last_speech_ms)
    }

    /// How long the speech in progress has paused: ms since it last ended
    /// ([`InputAudio::last_speech_ms`]); `None` outside speech.
    pub fn pause_ms(&self) -> Option<f64> {
        self.last_speech_ms().map(|last| (self.clock_ms - last).max(0.0))
    }

    /// Whether the detector has heard a pause in the speech in progress: a silent VAD frame
    /// since its last speech frame, or with semantic detection the sound stopped for
    /// [`QUIET_PAUSE_MS`].
    pub fn heard_pause(&self) -> bool {
        let Some(pause_ms) = self.pause_ms() else { return false };
        if self.by_sound {
            let quiet =
                pause_ms >= QUIET_PAUSE_MS && self.last_speech_ms().is_some_and(|end| self.sound.quiet_since(end));
            return self.heard_silence || quiet;
        }
        // The VAD's resampler is causal, so what is not framed yet is shorter than a frame: a
        // pause of a frame or more holds at least one frame the detector judged.
        pause_ms >= self.vad.frame_ms()
    }

    /// Sets the silence that ends the current pause of the speech in progress, in ms (`None`:
    /// the detection's `silence_duration_ms`). It applies to this pause only: once speech
    /// resumes, the next pause ends after `silence_duration_ms` unless set again.
    pub fn set_end_silence(&mut self, ms: Option<f64>) {
        self.end_silence_ms = self.last_speech_ms().zip(ms);
    }

    /// The silence that ends the pause after speech ending at `last_speech_ms`.
    fn end_silence(&self, last_speech_ms: f64, td: &TurnDetection) -> f64 {
        match self.end_silence_ms {
            Some((at, ms)) if at == last_speech_ms => ms,
            _ => td.silence_duration_ms as f64,
        }
    }

    /// Ends the speech in progress now if its pause has already lasted the silence that ends
    /// it: the `SpeechStopped` that [`InputAudio::append`] would have reported.
    pub fn end_if_due(&mut self, td: &TurnDetection) -> Option<TurnEvent> {
        let State::Speech { start_ms, last_speech_ms } = self.state else { return None };
        // Not before the VAD heard silence (the sound may stop before it does).
        if !self.heard_silence || self.clock_ms - last_speech_ms < self.end_silence(last_speech_ms, td) {
            return None;
        }
        self.state = State::Silence;
        self.end_silence_ms = None;
        Some(TurnEvent::SpeechStopped {
            audio_end_ms: last_speech_ms.round() as u64,
            speech_end_ms: last_speech_ms,
            turn_start_ms: (start_ms - td.prefix_padding_ms as f64).max(self.start_ms),
        })
    }

    /// Changes the input rate: the buffer is emptied and detection restarts.
    pub fn set_rate(&mut self, rate: u32) {
        self.rate = rate;
        self.vad.set_input_rate(rate);
        self.sound.clear(rate);
        self.clear();
    }

    /// Empties the buffer and forgets any speech in progress; detection restarts from here (the
    /// audio appended while detection was off never reached the detector).
    pub fn clear(&mut self) {
        self.samples.clear();
        self.start_ms = self.clock_ms;
        self.state = State::Silence;
        self.end_silence_ms = None;
        self.vad.restart();
        self.vad_origin_ms = self.clock_ms;
    }

    /// Appends samples; with `detection` set, runs the detector and reports what it saw.
    pub fn append(&mut self, samples: &[i16], detection: Option<&TurnDetection>) -> Vec<TurnEvent> {
        self.samples.extend_from_slice(samples);
        self.clock_ms += samples.len() as f64 * 1000.0 / self.rate as f64;
        let Some(td) = detection else {
            return Vec::new();
        };
        self.by_sound = Waits::of(td).is_some();
        if self.by_sound {
            self.sound.push(samples, self.rate, self.clock_ms);
        }
        let frame_ms = self.vad.frame_ms();
        let mut events = Vec::new();
        for frame in self.vad.push(samples) {
            let end = self.vad_origin_ms + frame.end_ms;
            let begin = end - frame_ms;
            let speech = f64::from(frame.probability) >= td.threshold;
            self.state = match (self.state, speech) {
                (State::Silence, false) => State::Silence,
                (State::Silence, true) => State::Onset { start_ms: begin, speech_ms: frame_ms, last_speech_ms: end },
                (State::Onset { start_ms, speech_ms, .. }, true) => {
                    State::Onset { start_ms, speech_ms: speech_ms + frame_ms, last_speech_ms: end }
                }
                (State::Onset { last_speech_ms, .. }, false) if end - last_speech_ms > ONSET_GAP_MS => State::Silence,
                (onset @ State::Onset { .. }, false) => onset,
                (State::Speech { start_ms, last_speech_ms }, true) => {
                    self.heard_silence = false;
                    let end = if self.by_sound { self.sound.speech_end(end).max(last_speech_ms) } else { end };
                    State::Speech { start_ms, last_speech_ms: end }
                }
                (State::Speech { start_ms, last_speech_ms }, false) => {
                    self.heard_silence = true;
                    if end - last_speech_ms >= self.end_silence(last_speech_ms, td) {
                        self.end_silence_ms = None;
                        events.push(TurnEvent::SpeechStopped {
                            audio_end_ms: last_speech_ms.round() as u64,
                            speech_end_ms: last_speech_ms,
                            turn_start_ms: (start_ms - td.prefix_padding_ms as f64).max(self.start_ms),
                        });
                        State::Silence
                    } else {
                        State::Speech { start_ms, last_speech_ms }
                    }
                }
            };
            if let State::Onset { start_ms, speech_ms, last_speech_ms } = self.state
                && speech_ms >= td.speech_duration_ms as f64
            {
                events.push(TurnEvent::SpeechStarted { audio_start_ms: start_ms.round() as u64 });
                // A short word may have ended before the detector was sure of it.
                let last_speech_ms =
                    if self.by_sound { self.sound.speech_end(last_speech_ms).max(start_ms) } else { last_speech_ms };
                self.state = State::Speech { start_ms, last_speech_ms };
                self.heard_silence = false;
            }
        }
        if self.state == State::Silence && events.is_empty() {
            // Keep only what a future turn could need as prefix padding.
            let keep_ms = td.prefix_padding_ms as f64 + td.speech_duration_ms as f64 + ONSET_GAP_MS + frame_ms;
            self.drop_before(self.clock_ms - keep_ms);
        }
        events
    }

    fn drop_before(&mut self, ms: f64) {
        if ms <= self.start_ms {
            return;
        }
        let n = (((ms - self.start_ms) * self.rate as f64 / 1000.0) as usize).min(self.samples.len());
        self.samples.drain(..n);
        self.start_ms += n as f64 * 1000.0 / self.rate as f64;
    }

    /// How long the speech in progress has been spoken: from its start to where it last ended
    /// ([`InputAudio::last_speech_ms`]), in ms (the pause it may be in is not counted); `None`
    /// outside speech.
    pub fn spoken_ms(&self) -> Option<f64> {
        let State::Speech { start_ms, last_speech_ms } = self.state else { return None };
        Some(last_speech_ms - start_ms)
    }

    /// The speech in progress, from `prefix_padding_ms` before its start to the present;
    /// `None` outside speech.
    pub fn speech_audio(&self, prefix_padding_ms: f64) -> Option<&[i16]> {
        let State::Speech { start_ms, .. } = self.state else { return None };
        let from = (start_ms - prefix_padding_ms).max(self.start_ms);
        let skip = (((from - self.start_ms) * self.rate as f64 / 1000.0) as usize).min(self.samples.len());
        Some(&self.samples[skip..])
    }

    /// Takes the buffered audio from `from_ms` (clock) to the end, leaving the buffer empty.
    /// Returns the samples and the clock position of the first one.
    pub fn take(&mut self, from_ms: Option<f64>) -> (Vec<i16>, f64) {
        if let Some(ms) = from_ms {
            self.drop_before(ms);
        }
        let start = self.start_ms;
        let samples = std::mem::take(&mut self.samples);
        self.start_ms = self.clock_ms;
        if !matches!(self.state, State::Silence) {
            self.state = State::Silence;
            self.vad.reset();
        }
        self.end_silence_ms = None;
        (samples, start)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use brazen_audio::EnergyVad;

    fn tone(ms: usize) -> Vec<i16> {
        (0..ms * 24).map(|i| ((i as f32 * 0.07).sin() * 10_000.0) as i16).collect()
    }

    fn silence(ms: usize) -> Vec<i16> {
        vec![0; ms * 24]
    }

    fn feed(input: &mut InputAudio, td: &TurnDetection, audio: &[i16]) -> Vec<TurnEvent> {
        audio.chunks(2_400).flat_map(|c| input.append(c, Some(td))).collect()
    }

    #[test]
    fn a_turn_starts_and_stops_where_the_speech_is() {
        let td = TurnDetection::default();
        let mut input = InputAudio::new(Box::new(EnergyVad), 24_000);
        let audio = [silence(1_000), tone(800), silence(700)].concat();
        let mut events = Vec::new();
        let mut turn = None;
        for chunk in audio.chunks(2_400) {
            for event in input.append(chunk, Some(&td)) {
                if let TurnEvent::SpeechStopped { turn_start_ms, .. } = event {
                    turn = Some(input.take(Some(turn_start_ms)));
                }
                events.push(event);
            }
        }
        assert_eq!(
            events,
            vec![
                TurnEvent::SpeechStarted { audio_start_ms: 1_000 },
                // The detector's resampler lags half a millisecond, so the tone's last 0.5 ms
                // falls in the next 20 ms frame.
                TurnEvent::SpeechStopped { audio_end_ms: 1_820, speech_end_ms: 1_820.0, turn_start_ms: 700.0 },
            ]
        );
        // Decided at 2320 ms (500 ms after the speech), inside the chunk that ends at 2400 ms.
        let (samples, start) = turn.unwrap();
        assert_eq!(start, 700.0);
        assert_eq!(samples.len(), (2_400 - 700) * 24);
        assert_eq!(input.buffered_ms(), 100.0, "audio after the turn waits for the next one");
    }

    #[test]
    fn short_blips_do_not_start_a_turn() {
        let td = TurnDetection::default(); // 200 ms of speech needed
        let mut input = InputAudio::new(Box::new(EnergyVad), 24_000);
        let mut events = Vec::new();
        for _ in 0..5 {
            events.extend(feed(&mut input, &td, &tone(100)));
            events.extend(feed(&mut input, &td, &silence(300)));
        }
        assert!(events.is_empty(), "{events:?}");
    }

    #[test]
    fn silence_keeps_the_buffer_bounded() {
        let td = TurnDetection::default();
        let mut input = InputAudio::new(Box::new(EnergyVad), 24_000);
        feed(&mut input, &td, &silence(60_000));
        assert!(input.buffered_ms() <= 700.0, "{}", input.buffered_ms());
    }

    #[test]
    fn audio_heard_with_detection_off_keeps_the_clock() {
        // A client streams with detection off, then turns it on: turns are placed on the
        // session's clock, which counted the audio sent meanwhile.
        let td = TurnDetection::default();
        let mut input = InputAudio::new(Box::new(EnergyVad), 24_000);
        input.append(&tone(1_000), None);
        input.clear();
        let events = feed(&mut input, &td, &[silence(500), tone(500), silence(700)].concat());
        assert_eq!(events[0], TurnEvent::SpeechStarted { audio_start_ms: 1_500 });
    }

    #[test]
    fn without_detection_everything_is_kept() {
        let mut input = InputAudio::new(Box::new(EnergyVad), 16_000);
        assert!(input.append(&vec![1_000; 16_000], None).is_empty());
        assert_eq!(input.buffered_ms(), 1_000.0);
    }
}
