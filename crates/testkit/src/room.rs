//! A loudspeaker and a microphone in one room: a client that plays the assistant aloud and
//! sends its own microphone back, so the assistant hears itself — 120 ms later, 10 dB quieter,
//! with a room's reflections — mixed with whatever the user says. All audio is 24 kHz PCM16.

use std::collections::VecDeque;

/// The room, the loudspeaker's queue and the user's voice.
#[derive(Debug, Clone)]
pub struct Room {
    /// Delay (samples) and gain of the direct sound and its reflections.
    taps: Vec<(usize, f32)>,
    /// Everything the loudspeaker played.
    played: Vec<i16>,
    /// Audio received and not yet played.
    queue: VecDeque<i16>,
    /// What the user says, from the next sample the microphone hears.
    voice: VecDeque<i16>,
}

impl Default for Room {
    fn default() -> Self {
        Room::new()
    }
}

impl Room {
    /// A room whose echo comes 120 ms after the sound, at -10 dB, with 23 reflections decaying
    /// over about 140 ms (fixed, pseudo-random).
    pub fn new() -> Room {
        let mut taps = vec![(24 * 120, 0.32)];
        let mut seed = 0x2545_f491u32;
        for k in 1..24 {
            seed ^= seed << 13;
            seed ^= seed >> 17;
            seed ^= seed << 5;
            let lag = 24 * 120 + k * 24 * 6 + (seed % 97) as usize;
            let sign = if seed & 1 == 0 { 1.0 } else { -1.0 };
            taps.push((lag, sign * 0.2 * (-(k as f32) / 6.0).exp()));
        }
        Room { taps, played: Vec::new(), queue: VecDeque::new(), voice: VecDeque::new() }
    }

    /// The assistant's audio arrived: it plays after what is queued.
    pub fn receive(&mut self, pcm: &[i16]) {
        self.queue.extend(pcm);
    }

    /// The client stops playing (on `speech_started`, as the protocol asks).
    pub fn stop(&mut self) {
        self.queue.clear();
    }

    /// The user says `voice`, starting with the next sample the microphone hears.
    pub fn say(&mut self, voice: impl IntoIterator<Item = i16>) {
        self.voice.extend(voice);
    }

    /// Whether the loudspeaker still has audio to play.
    pub fn is_playing(&self) -> bool {
        !self.queue.is_empty()
    }

    /// Whether the user is still speaking.
    pub fn is_speaking(&self) -> bool {
        !self.voice.is_empty()
    }

    /// Plays the next `n` samples and returns what the microphone heard meanwhile.
    pub fn tick(&mut self, n: usize) -> Vec<i16> {
        let from_queue = self.queue.len().min(n);
        self.played.extend(self.queue.drain(..from_queue));
        self.played.extend(std::iter::repeat_n(0, n - from_queue));
        let end = self.played.len();
        (end - n..end)
            .map(|i| {
                let echo: f32 = self
                    .taps
                    .iter()
                    .map(|&(lag, g)| i.checked_sub(lag).map_or(0.0, |j| f32::from(self.played[j]) * g))
                    .sum();
                let own = self.voice.pop_front().map_or(0.0, f32::from);
                (echo + own).clamp(-32_768.0, 32_767.0) as i16
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::Room;

    #[test]
    fn the_microphone_hears_the_loudspeaker_late_and_quieter_and_the_user_at_once() {
        let mut room = Room::new();
        room.receive(&[10_000; 2_400]);
        room.say([500; 10]);
        let mic = room.tick(24 * 120);
        assert_eq!(&mic[..10], &[500; 10], "the user at once");
        assert!(mic[10..].iter().all(|&s| s == 0), "the echo not yet");
        let mic = room.tick(24 * 10);
        assert_eq!(mic[0], 3_200, "the direct sound, 10 dB down");
        assert!(!room.is_speaking());
    }
}
