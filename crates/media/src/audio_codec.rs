//! The avatar's sound, encoded for its transport: Opus in 20 ms packets over WebRTC, AAC-LC in
//! 1024-sample frames inside fragmented MP4 over the WebSocket (what the Voice Live samples'
//! MediaSource player asks for: `mp4a.40.2`).
//!
//! AAC comes from `syom`, a pure-Rust AAC-LC encoder: it builds offline with nothing but
//! rustc (the usual encoders, FDK AAC and libxaac, are C/C++ trees with licences and build steps of
//! their own), and browsers decode its output.

/// Both codecs run at this rate.
pub const RATE: u32 = 48_000;

/// How the stream's sound is encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AudioCodec {
    /// Opus, 20 ms packets (WebRTC).
    #[default]
    Opus,
    /// AAC-LC, 1024-sample frames (fragmented MP4).
    AacLc,
}

impl AudioCodec {
    /// Samples in one encoded frame.
    pub fn frame_samples(self) -> usize {
        match self {
            AudioCodec::Opus => 960,
            AudioCodec::AacLc => 1024,
        }
    }

    /// How many samples a decoder's output lags its input: AAC's priming frame (the first
    /// decoded frame is the encoder's warm-up); Opus over WebRTC is played as it comes.
    pub fn delay_samples(self) -> u64 {
        match self {
            AudioCodec::Opus => 0,
            AudioCodec::AacLc => 1024,
        }
    }
}

/// An encoder of one of the codecs (mono, [`RATE`]).
pub(crate) enum AudioEncoder {
    Opus(Box<opus::Encoder>),
    Aac(Box<syom::Encoder>),
}

impl AudioEncoder {
    /// A mono encoder for `codec`.
    pub(crate) fn new(codec: AudioCodec) -> Result<AudioEncoder, String> {
        match codec {
            AudioCodec::Opus => {
                let mut opus = opus::Encoder::new(RATE, opus::Channels::Mono, opus::Application::Voip)
                    .map_err(|e| format!("cannot start the Opus encoder: {e}"))?;
                opus.set_bitrate(opus::Bitrate::Bits(32_000)).map_err(|e| format!("Opus bitrate: {e}"))?;
                Ok(AudioEncoder::Opus(Box::new(opus)))
            }
            AudioCodec::AacLc => {
                let options = syom::EncodeOptions::raw().with_bitrate_bps(64_000);
                let aac =
                    syom::Encoder::new(RATE, 1, &options).map_err(|e| format!("cannot start the AAC encoder: {e}"))?;
                Ok(AudioEncoder::Aac(Box::new(aac)))
            }
        }
    }

    /// The decoder's configuration (AAC's AudioSpecificConfig; nothing for Opus).
    pub(crate) fn config(&self) -> Vec<u8> {
        match self {
            AudioEncoder::Opus(_) => Vec::new(),
            AudioEncoder::Aac(aac) => aac.asc().to_vec(),
        }
    }

    /// Encodes one frame of [`AudioCodec::frame_samples`] samples.
    pub(crate) fn encode(&mut self, pcm: &[i16]) -> Result<Vec<u8>, String> {
        match self {
            AudioEncoder::Opus(opus) => opus.encode_vec(pcm, 1500).map_err(|e| format!("Opus encoding failed: {e}")),
            AudioEncoder::Aac(aac) => {
                let plane: Vec<f32> = pcm.iter().map(|s| f32::from(*s) / 32_768.0).collect();
                let mut unit = Vec::new();
                aac.feed(&[plane.as_slice()], |frame| {
                    unit.extend_from_slice(frame.payload);
                    Ok(())
                })
                .map_err(|e| format!("AAC encoding failed: {e}"))?;
                Ok(unit)
            }
        }
    }
}
