//! The session configuration: one canonical form, read from both wire shapes and written in each.
//!
//! Voice Live and the OpenAI beta use a flat session (`input_audio_format`, `turn_detection`, …);
//! the OpenAI GA API nests it (`audio.input.format`, `audio.output.voice`, `output_modalities`).
//! [`SessionPatch::read`] accepts either shape (and both in one object), [`SessionConfig::apply`]
//! merges a patch (absent keeps, `null` unsets, a value sets), and [`SessionConfig::to_json`]
//! writes the session in the connection's [`Dialect`].

use crate::Dialect;
use crate::avatar::AvatarConfig;
use crate::error::{ProtocolError, code};
use crate::interim::InterimResponse;
use crate::read::{Field, Obj, as_str, bad_value, in_range, join, one_of, wrong_type};
use serde_json::{Map, Value, json};

/// An audio encoding on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AudioFormat {
    /// Signed 16-bit little-endian mono PCM at `rate` Hz.
    Pcm16 {
        /// Samples per second: 24000 (default), 16000 or 8000.
        rate: u32,
    },
    /// G.711 µ-law, 8 kHz.
    G711Ulaw,
    /// G.711 A-law, 8 kHz.
    G711Alaw,
}

impl AudioFormat {
    /// PCM16 at 24 kHz, the default in both directions.
    pub const DEFAULT: AudioFormat = AudioFormat::Pcm16 { rate: 24_000 };

    /// Samples per second.
    pub fn sample_rate(self) -> u32 {
        match self {
            AudioFormat::Pcm16 { rate } => rate,
            _ => 8_000,
        }
    }

    /// Bytes per sample on the wire.
    pub fn bytes_per_sample(self) -> usize {
        match self {
            AudioFormat::Pcm16 { .. } => 2,
            _ => 1,
        }
    }

    /// The flat (Voice Live / beta) name of an input format.
    fn input_name(self) -> &'static str {
        match self {
            AudioFormat::Pcm16 { .. } => "pcm16",
            AudioFormat::G711Ulaw => "g711_ulaw",
            AudioFormat::G711Alaw => "g711_alaw",
        }
    }

    /// The flat name of an output format (the rate is part of the name).
    pub(crate) fn output_name(self) -> &'static str {
        match self {
            AudioFormat::Pcm16 { rate: 16_000 } => "pcm16_16000hz",
            AudioFormat::Pcm16 { rate: 8_000 } => "pcm16_8000hz",
            other => other.input_name(),
        }
    }

    /// The GA object form: `{"type":"audio/pcm","rate":24000}`.
    fn ga_json(self) -> Value {
        match self {
            AudioFormat::Pcm16 { rate } => json!({"type": "audio/pcm", "rate": rate}),
            AudioFormat::G711Ulaw => json!({"type": "audio/pcmu"}),
            AudioFormat::G711Alaw => json!({"type": "audio/pcma"}),
        }
    }

    /// Reads a flat format name (`pcm16`, `pcm16_16000hz`, `g711_ulaw`, …) or a GA format object.
    fn read(v: &Value, param: &str, output: bool) -> Result<AudioFormat, ProtocolError> {
        if let Some(obj) = v.as_object() {
            let o = Obj::new(obj, param);
            let kind = one_of(o.required_str("type")?, &["audio/pcm", "audio/pcmu", "audio/pcma"], &o.param("type"))?;
            return Ok(match kind {
                "audio/pcm" => {
                    let rate = o.u64("rate")?.value().unwrap_or(24_000);
                    AudioFormat::Pcm16 { rate: check_rate(rate, &o.param("rate"), output)? }
                }
                "audio/pcmu" => AudioFormat::G711Ulaw,
                _ => AudioFormat::G711Alaw,
            });
        }
        let name = as_str(v, param)?;
        let allowed: &[&str] = if output {
            &["pcm16", "pcm16_16000hz", "pcm16_8000hz", "g711_ulaw", "g711_alaw"]
        } else {
            &["pcm16", "g711_ulaw", "g711_alaw"]
        };
        Ok(match one_of(name, allowed, param)? {
            "pcm16" => AudioFormat::DEFAULT,
            "pcm16_16000hz" => AudioFormat::Pcm16 { rate: 16_000 },
            "pcm16_8000hz" => AudioFormat::Pcm16 { rate: 8_000 },
            "g711_ulaw" => AudioFormat::G711Ulaw,
            _ => AudioFormat::G711Alaw,
        })
    }
}

fn check_rate(rate: u64, param: &str, output: bool) -> Result<u32, ProtocolError> {
    let allowed: &[u64] = if output { &[24_000, 16_000, 8_000] } else { &[24_000, 16_000] };
    if allowed.contains(&rate) {
        Ok(rate as u32)
    } else {
        Err(bad_value(param, format!("Invalid value for '{param}': {rate} Hz. Supported rates: {allowed:?}.")))
    }
}

/// What a response produces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Modality {
    /// Text (also the transcript of audio).
    Text,
    /// Spoken audio.
    Audio,
    /// Avatar video (Voice Live lists it here or configures `avatar` alone).
    Avatar,
    /// Visemes / blendshapes.
    Animation,
}

impl Modality {
    fn name(self) -> &'static str {
        match self {
            Modality::Text => "text",
            Modality::Audio => "audio",
            Modality::Avatar => "avatar",
            Modality::Animation => "animation",
        }
    }

    fn read_list(v: &Value, param: &str) -> Result<Vec<Modality>, ProtocolError> {
        let arr = v.as_array().ok_or_else(|| wrong_type(param, "an array of strings", v))?;
        let mut out = Vec::new();
        for (i, m) in arr.iter().enumerate() {
            let p = format!("{param}[{i}]");
            let m = match one_of(as_str(m, &p)?, &["text", "audio", "avatar", "animation"], &p)? {
                "text" => Modality::Text,
                "audio" => Modality::Audio,
                "avatar" => Modality::Avatar,
                _ => Modality::Animation,
            };
            if !out.contains(&m) {
                out.push(m);
            }
        }
        if out.is_empty() {
            return Err(bad_value(param, format!("Invalid value for '{param}': at least one modality is required.")));
        }
        Ok(out)
    }
}

/// The voice a response speaks with.
#[derive(Debug, Clone, PartialEq)]
pub struct Voice {
    /// Voice name (`alloy`, `en-US-AvaNeural`, a local voice such as `en_US-joe-medium`).
    pub name: String,
    /// Voice Live's voice `type` (`openai`, `azure-standard`, …) when the client sent an object.
    pub kind: Option<String>,
    /// Speaking rate, 0.5–1.5 (1.0 = normal).
    pub rate: Option<f64>,
    /// Pitch as the client wrote it (`+5%`, `high`, …).
    pub pitch: Option<String>,
    /// Volume as the client wrote it.
    pub volume: Option<String>,
    /// Other voice fields the client sent, kept and echoed back.
    pub extra: Map<String, Value>,
}

impl Default for Voice {
    fn default() -> Self {
        Voice { name: "alloy".into(), kind: None, rate: None, pitch: None, volume: None, extra: Map::new() }
    }
}

/// The gain of an Azure-style `volume`: `silent`, `x-soft`, `soft`, `medium`, `loud`, `x-loud`,
/// `default`, an absolute 0–100 (100 = full, the default), or relative to full: `-20%`, `+0%`,
/// `-30` (units of the 0–100 scale). `None` if it is none of these.
pub fn volume_gain(volume: &str) -> Option<f32> {
    let v = volume.trim().to_ascii_lowercase();
    let level = match v.as_str() {
        "silent" => 0.0,
        "x-soft" => 20.0,
        "soft" => 40.0,
        "medium" => 60.0,
        "loud" => 80.0,
        "x-loud" | "default" => 100.0,
        _ => {
            let relative = v.starts_with(['+', '-']);
            let (number, percent) = match v.strip_suffix('%') {
                Some(n) => (n, true),
                None => (v.as_str(), false),
            };
            let x: f32 = number.parse().ok().filter(|x: &f32| x.is_finite())?;
            match (relative, percent) {
                (true, true) => 100.0 * (1.0 + x / 100.0),
                (true, false) => 100.0 + x,
                (false, _) => x,
            }
        }
    };
    Some((level / 100.0).clamp(0.0, 1.0))
}

/// The pitch factor of an Azure/SSML-style `pitch`: `x-low` (0.8), `low` (0.9), `medium` /
/// `default` (1), `high` (1.1), `x-high` (1.2), a relative change in percent (`+10%`) or
/// semitones (`-2st`), kept within 0.5–2. `None` if it is none of these.
pub fn pitch_factor(pitch: &str) -> Option<f32> {
    let p = pitch.trim().to_ascii_lowercase();
    let factor = match p.as_str() {
        "x-low" => 0.8,
        "low" => 0.9,
        "medium" | "default" => 1.0,
        "high" => 1.1,
        "x-high" => 1.2,
        _ => {
            let number = |s: &str| s.parse::<f32>().ok().filter(|x| x.is_finite());
            if let Some(n) = p.strip_suffix('%') {
                1.0 + number(n)? / 100.0
            } else if let Some(n) = p.strip_suffix("st") {
                2f32.powf(number(n)? / 12.0)
            } else {
                return None;
            }
        }
    };
    Some(factor.clamp(0.5, 2.0))
}

impl Voice {
    /// The pitch factor its `pitch` asks for (1.0 when none is set).
    pub fn pitch_factor(&self) -> f32 {
        self.pitch.as_deref().and_then(pitch_factor).unwrap_or(1.0)
    }

    /// The gain its `volume` asks for (1.0 when none is set).
    pub fn gain(&self) -> f32 {
        self.volume.as_deref().and_then(volume_gain).unwrap_or(1.0)
    }

    /// Reads `"alloy"`, `{"type":"azure-standard","name":…,"rate":"1.0",…}` or GA `{"id":…}`.
    fn read(v: &Value, param: &str) -> Result<Voice, ProtocolError> {
        if let Some(name) = v.as_str() {
            if name.trim().is_empty() {
                return Err(bad_value(param, format!("Invalid value for '{param}': empty voice name.")));
            }
            return Ok(Voice { name: name.to_owned(), ..Voice::default() });
        }
        let o = Obj::expect(v, param)?;
        let name = match o.str("name")?.value().or(o.str("id")?.value()) {
            Some(n) => n.to_owned(),
            None => return Err(o.missing("name")),
        };
        let rate = o.f64("rate")?.value().map(|r| in_range(r, 0.5, 1.5, &o.param("rate"))).transpose()?;
        let text = |key: &str| -> Result<Option<String>, ProtocolError> {
            Ok(o.field(key, |v, _| Ok(v.as_str().map(str::to_owned).unwrap_or_else(|| v.to_string())))?.value())
        };
        let mut extra = Map::new();
        for (k, val) in o.raw_map() {
            if !matches!(k.as_str(), "name" | "id" | "type" | "rate" | "pitch" | "volume") {
                extra.insert(k.clone(), val.clone());
            }
        }
        let volume = text("volume")?;
        if let Some(v) = &volume
            && volume_gain(v).is_none()
        {
            return Err(bad_value(
                &o.param("volume"),
                format!(
                    "Invalid volume '{v}': use silent, x-soft, soft, medium, loud, x-loud, 0-100, or a change such as -20%."
                ),
            ));
        }
        let pitch = text("pitch")?;
        if let Some(p) = &pitch
            && pitch_factor(p).is_none()
        {
            return Err(bad_value(
                &o.param("pitch"),
                format!("Invalid pitch '{p}': use x-low, low, medium, high, x-high, or a change such as +10% or -2st."),
            ));
        }
        Ok(Voice { name, kind: o.str("type")?.value().map(str::to_owned), rate, pitch, volume, extra })
    }

    fn to_json(&self, dialect: Dialect) -> Value {
        let plain = self.kind.is_none()
            && self.rate.is_none()
            && self.pitch.is_none()
            && self.volume.is_none()
            && self.extra.is_empty();
        if dialect != Dialect::VoiceLive || plain {
            return Value::String(self.name.clone());
        }
        let mut m = self.extra.clone();
        if let Some(k) = &self.kind {
            m.insert("type".into(), json!(k));
        }
        m.insert("name".into(), json!(self.name));
        if let Some(r) = self.rate {
            m.insert("rate".into(), json!(format!("{r}")));
        }
        if let Some(p) = &self.pitch {
            m.insert("pitch".into(), json!(p));
        }
        if let Some(v) = &self.volume {
            m.insert("volume".into(), json!(v));
        }
        Value::Object(m)
    }
}

/// Server-side turn detection (`turn_detection`).
#[derive(Debug, Clone, PartialEq)]
pub struct TurnDetection {
    /// `server_vad`, or a semantic variant (`semantic_vad`, `azure_semantic_vad`, …), whose
    /// turns brazen ends by what was said (the engine's `end_of_turn` module).
    pub kind: String,
    /// Speech probability above which a frame counts as speech, in [0, 1).
    pub threshold: f64,
    /// Audio kept before the detected start of speech, in ms.
    pub prefix_padding_ms: u64,
    /// Silence that ends a turn, in ms.
    pub silence_duration_ms: u64,
    /// Speech needed before `speech_started` is sent, in ms.
    pub speech_duration_ms: u64,
    /// Start a response when a turn ends.
    pub create_response: bool,
    /// Cancel a playing response when the user starts speaking (barge-in).
    pub interrupt_response: bool,
    /// Truncate the interrupted assistant item at what the client had played.
    pub auto_truncate: bool,
    /// Time without speech after which `input_audio_buffer.timeout_triggered` fires (GA).
    pub idle_timeout_ms: Option<u64>,
    /// Other fields the client sent (`eagerness`, `end_of_utterance_detection`, …), echoed back.
    pub extra: Map<String, Value>,
}

impl Default for TurnDetection {
    fn default() -> Self {
        TurnDetection {
            kind: "server_vad".into(),
            threshold: 0.5,
            prefix_padding_ms: 300,
            silence_duration_ms: 500,
            speech_duration_ms: 200,
            create_response: true,
            interrupt_response: true,
            auto_truncate: false,
            idle_timeout_ms: None,
            extra: Map::new(),
        }
    }
}

const TURN_KINDS: &[&str] =
    &["server_vad", "semantic_vad", "azure_semantic_vad", "azure_semantic_vad_en", "azure_semantic_vad_multilingual"];

impl TurnDetection {
    /// Reads a turn-detection object on top of the defaults (a new object replaces the old one).
    fn read(v: &Value, param: &str) -> Result<TurnDetection, ProtocolError> {
        let o = Obj::expect(v, param)?;
        let mut t = TurnDetection::default();
        if let Some(kind) = o.str("type")?.value() {
            t.kind = one_of(kind, TURN_KINDS, &o.param("type"))?.to_owned();
        }
        if let Some(x) = o.f64("threshold")?.value() {
            t.threshold = in_range(x, 0.0, 1.0, &o.param("threshold"))?;
        }
        let ms = |key: &str| -> Result<Option<u64>, ProtocolError> {
            match o.u64(key)?.value() {
                Some(x) if x > 60_000 => Err(bad_value(
                    &o.param(key),
                    format!("Invalid value for '{}': {x} ms is more than 60000.", o.param(key)),
                )),
                other => Ok(other),
            }
        };
        if let Some(x) = ms("prefix_padding_ms")? {
            t.prefix_padding_ms = x;
        }
        if let Some(x) = ms("silence_duration_ms")? {
            t.silence_duration_ms = x;
        }
        if let Some(x) = ms("speech_duration_ms")? {
            t.speech_duration_ms = x;
        }
        t.idle_timeout_ms = ms("idle_timeout_ms")?;
        for (key, slot) in [
            ("create_response", &mut t.create_response),
            ("interrupt_response", &mut t.interrupt_response),
            ("auto_truncate", &mut t.auto_truncate),
        ] {
            if let Some(b) = o.bool(key)?.value() {
                *slot = b;
            }
        }
        for (k, val) in o.raw_map() {
            if !matches!(
                k.as_str(),
                "type"
                    | "threshold"
                    | "prefix_padding_ms"
                    | "silence_duration_ms"
                    | "speech_duration_ms"
                    | "create_response"
                    | "interrupt_response"
                    | "auto_truncate"
                    | "idle_timeout_ms"
            ) {
                t.extra.insert(k.clone(), val.clone());
            }
        }
        Ok(t)
    }

    fn to_json(&self, dialect: Dialect) -> Value {
        let mut m = self.extra.clone();
        m.insert("type".into(), json!(self.kind));
        m.insert("threshold".into(), json!(self.threshold));
        m.insert("prefix_padding_ms".into(), json!(self.prefix_padding_ms));
        m.insert("silence_duration_ms".into(), json!(self.silence_duration_ms));
        m.insert("create_response".into(), json!(self.create_response));
        m.insert("interrupt_response".into(), json!(self.interrupt_response));
        if dialect == Dialect::VoiceLive {
            m.insert("speech_duration_ms".into(), json!(self.speech_duration_ms));
            m.insert("auto_truncate".into(), json!(self.auto_truncate));
        }
        if dialect == Dialect::Ga {
            m.insert("idle_timeout_ms".into(), json!(self.idle_timeout_ms));
        }
        Value::Object(m)
    }
}

/// Transcription of the user's audio (`input_audio_transcription`).
#[derive(Debug, Clone, PartialEq)]
pub struct Transcription {
    /// The model the client asked for (`whisper-1`, `azure-speech`, …); brazen uses its local ASR.
    pub model: String,
    /// BCP-47 language hint.
    pub language: Option<String>,
    /// Prompt / phrase hints.
    pub prompt: Option<String>,
    /// Other fields, echoed back.
    pub extra: Map<String, Value>,
}

impl Transcription {
    /// Whether the model streams the transcript while the user speaks. OpenAI's `whisper-1`
    /// (also what a session that names no model gets, as at OpenAI) does not: its one delta
    /// holds the whole transcript, sent with the final one. The others (`gpt-4o-transcribe`,
    /// `gpt-4o-mini-transcribe`, Voice Live's `azure-speech`, `mai-transcribe`, …) send words as
    /// they are recognised.
    pub fn streams(&self) -> bool {
        self.model != "whisper-1"
    }

    fn read(v: &Value, param: &str) -> Result<Transcription, ProtocolError> {
        let o = Obj::expect(v, param)?;
        let mut extra = Map::new();
        for (k, val) in o.raw_map() {
            if !matches!(k.as_str(), "model" | "language" | "prompt") {
                extra.insert(k.clone(), val.clone());
            }
        }
        Ok(Transcription {
            model: o.str("model")?.value().unwrap_or("whisper-1").to_owned(),
            language: o.str("language")?.value().map(str::to_owned),
            prompt: o.str("prompt")?.value().map(str::to_owned),
            extra,
        })
    }

    fn to_json(&self) -> Value {
        let mut m = self.extra.clone();
        m.insert("model".into(), json!(self.model));
        if let Some(l) = &self.language {
            m.insert("language".into(), json!(l));
        }
        if let Some(p) = &self.prompt {
            m.insert("prompt".into(), json!(p));
        }
        Value::Object(m)
    }
}

/// A function the model may call.
#[derive(Debug, Clone, PartialEq)]
pub struct Tool {
    /// Function name.
    pub name: String,
    /// What the function does, for the model.
    pub description: String,
    /// JSON Schema of the arguments.
    pub parameters: Value,
}

impl Tool {
    fn read_list(v: &Value, param: &str) -> Result<Vec<Tool>, ProtocolError> {
        let arr = v.as_array().ok_or_else(|| wrong_type(param, "an array", v))?;
        let mut tools: Vec<Tool> = Vec::with_capacity(arr.len());
        for (i, t) in arr.iter().enumerate() {
            let p = format!("{param}[{i}]");
            let o = Obj::expect(t, &p)?;
            let kind = o.str("type")?.value().unwrap_or("function");
            if kind != "function" {
                return Err(ProtocolError::invalid(
                    code::UNSUPPORTED,
                    format!("Tools of type '{kind}' are not supported yet; use type 'function'."),
                )
                .with_param(o.param("type")));
            }
            // Chat-completions style `{"type":"function","function":{...}}` is accepted too.
            let inner_path = o.param("function");
            let o = match o.obj("function")?.value() {
                Some(m) => Obj::new(m, &inner_path),
                None => o,
            };
            let name = o.required_str("name")?;
            if tools.iter().any(|t| t.name == name) {
                return Err(bad_value(&o.param("name"), format!("Duplicate tool name '{name}'.")));
            }
            let parameters = o.raw("parameters").cloned().unwrap_or(Value::Null);
            if !(parameters.is_object() || parameters.is_null()) {
                return Err(wrong_type(&o.param("parameters"), "a JSON Schema object", &parameters));
            }
            tools.push(Tool {
                name: name.to_owned(),
                description: o.str("description")?.value().unwrap_or_default().to_owned(),
                parameters: if parameters.is_null() { json!({"type": "object", "properties": {}}) } else { parameters },
            });
        }
        Ok(tools)
    }

    /// The tool as it appears in a session.
    pub fn to_json(&self) -> Value {
        json!({"type": "function", "name": self.name, "description": self.description, "parameters": self.parameters})
    }
}

/// Whether and which tool the model must call.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum ToolChoice {
    /// The model decides.
    #[default]
    Auto,
    /// No tool calls.
    None,
    /// The model must call some tool.
    Required,
    /// The model must call this function.
    Function(String),
}

impl ToolChoice {
    fn read(v: &Value, param: &str) -> Result<ToolChoice, ProtocolError> {
        if let Some(s) = v.as_str() {
            return Ok(match one_of(s, &["auto", "none", "required"], param)? {
                "auto" => ToolChoice::Auto,
                "none" => ToolChoice::None,
                _ => ToolChoice::Required,
            });
        }
        let o = Obj::expect(v, param)?;
        let name = match o.obj("function")?.value() {
            Some(f) => Obj::new(f, param).required_str("name")?,
            None => o.required_str("name")?,
        };
        Ok(ToolChoice::Function(name.to_owned()))
    }

    fn to_json(&self) -> Value {
        match self {
            ToolChoice::Auto => json!("auto"),
            ToolChoice::None => json!("none"),
            ToolChoice::Required => json!("required"),
            ToolChoice::Function(n) => json!({"type": "function", "name": n}),
        }
    }
}

/// What `animation.outputs` may ask for.
pub const ANIMATION_OUTPUTS: [&str; 2] = ["blendshapes", "viseme_id"];

/// The animation a session asks for with its audio.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AnimationOutputs {
    /// `response.animation_viseme.*`.
    pub visemes: bool,
    /// `response.animation_blendshapes.*`.
    pub blendshapes: bool,
}

/// The whole configuration of a session, in one canonical form.
#[derive(Debug, Clone, PartialEq)]
pub struct SessionConfig {
    /// `sess_…`.
    pub id: String,
    /// The model name the client asked for (informational; brazen's engines serve it).
    pub model: String,
    /// What responses produce.
    pub modalities: Vec<Modality>,
    /// The system prompt.
    pub instructions: String,
    /// The output voice.
    pub voice: Voice,
    /// Format of `input_audio_buffer.append` audio.
    pub input_audio_format: AudioFormat,
    /// Format of `response.audio.delta` audio.
    pub output_audio_format: AudioFormat,
    /// Transcribe the user's audio; `None` = off.
    pub input_audio_transcription: Option<Transcription>,
    /// Server turn detection; `None` = the client commits turns itself.
    pub turn_detection: Option<TurnDetection>,
    /// Functions the model may call.
    pub tools: Vec<Tool>,
    /// Tool choice.
    pub tool_choice: ToolChoice,
    /// Sampling temperature.
    pub temperature: f64,
    /// Output token cap; `None` = `inf`.
    pub max_output_tokens: Option<u64>,
    /// `["word"]` asks for `response.audio_timestamp.*` events.
    pub output_audio_timestamp_types: Vec<String>,
    /// Avatar configuration (Voice Live), parsed; echoed as sent (boxed: most sessions have
    /// none).
    pub avatar: Option<Box<AvatarConfig>>,
    /// Animation output configuration (Voice Live), kept as sent.
    pub animation: Option<Value>,
    /// Other session fields the client set (noise reduction, echo cancellation, metadata,
    /// tracing, `interim_response`, …): kept and echoed back as sent. `interim_response` is
    /// validated when set and read through [`SessionConfig::interim_response`].
    pub extra: Map<String, Value>,
}

impl SessionConfig {
    /// The animation streams asked for: none without an `animation` object; its `outputs`, or
    /// blendshapes when it names none (Voice Live's default).
    pub fn animation_outputs(&self) -> AnimationOutputs {
        let Some(animation) = self.animation.as_ref().filter(|a| a.is_object()) else {
            return AnimationOutputs::default();
        };
        match animation.get("outputs").and_then(Value::as_array) {
            Some(list) => AnimationOutputs {
                visemes: list.iter().any(|o| o == "viseme_id"),
                blendshapes: list.iter().any(|o| o == "blendshapes"),
            },
            None => AnimationOutputs { visemes: false, blendshapes: true },
        }
    }

    /// The interim-response configuration (`interim_response` or `interim-response`), if set.
    /// Validated when the session was updated, so an invalid one is `None`.
    pub fn interim_response(&self) -> Option<InterimResponse> {
        let value = INTERIM_KEYS.iter().find_map(|k| self.extra.get(*k)).filter(|v| !v.is_null())?;
        InterimResponse::read(value, "session.interim_response").ok()
    }

    /// The configuration of a new session.
    pub fn new(id: impl Into<String>, model: impl Into<String>) -> Self {
        SessionConfig {
            id: id.into(),
            model: model.into(),
            modalities: vec![Modality::Text, Modality::Audio],
            instructions: String::new(),
            voice: Voice::default(),
            input_audio_format: AudioFormat::DEFAULT,
            output_audio_format: AudioFormat::DEFAULT,
            input_audio_transcription: None,
            turn_detection: Some(TurnDetection::default()),
            tools: Vec::new(),
            tool_choice: ToolChoice::Auto,
            temperature: 0.8,
            max_output_tokens: None,
            output_audio_timestamp_types: Vec::new(),
            avatar: None,
            animation: None,
            extra: Map::new(),
        }
    }

    /// Whether responses produce audio.
    pub fn has_audio(&self) -> bool {
        self.modalities.contains(&Modality::Audio)
    }

    /// Merges a patch: absent fields are kept, `null` resets a field, values replace it.
    pub fn apply(&mut self, patch: SessionPatch) {
        let SessionPatch {
            model,
            modalities,
            instructions,
            voice,
            input_audio_format,
            input_sampling_rate,
            output_audio_format,
            input_audio_transcription,
            turn_detection,
            tools,
            tool_choice,
            temperature,
            max_output_tokens,
            output_audio_timestamp_types,
            avatar,
            animation,
            extra,
            ga_shape: _,
            flat_shape: _,
        } = patch;
        if let Field::Set(m) = model {
            self.model = m;
        }
        modalities.apply_to(&mut self.modalities, || vec![Modality::Text, Modality::Audio]);
        instructions.apply_to(&mut self.instructions, String::new);
        voice.apply_to(&mut self.voice, Voice::default);
        input_audio_format.apply_to(&mut self.input_audio_format, || AudioFormat::DEFAULT);
        if let (Some(rate), AudioFormat::Pcm16 { .. }) = (input_sampling_rate, self.input_audio_format) {
            self.input_audio_format = AudioFormat::Pcm16 { rate };
        }
        output_audio_format.apply_to(&mut self.output_audio_format, || AudioFormat::DEFAULT);
        input_audio_transcription.apply_option(&mut self.input_audio_transcription);
        turn_detection.apply_option(&mut self.turn_detection);
        tools.apply_to(&mut self.tools, Vec::new);
        tool_choice.apply_to(&mut self.tool_choice, ToolChoice::default);
        temperature.apply_to(&mut self.temperature, || 0.8);
        max_output_tokens.apply_to(&mut self.max_output_tokens, || None);
        output_audio_timestamp_types.apply_to(&mut self.output_audio_timestamp_types, Vec::new);
        avatar.apply_option(&mut self.avatar);
        animation.apply_option(&mut self.animation);
        for (key, field) in extra {
            match field {
                Field::Set(v) => {
                    self.extra.insert(key, v);
                }
                Field::Null => {
                    self.extra.remove(&key);
                }
                Field::Absent => {}
            }
        }
    }

    /// The session object as sent in `session.created` / `session.updated`.
    pub fn to_json(&self, dialect: Dialect) -> Value {
        match dialect {
            Dialect::Ga => self.ga_json(),
            _ => self.flat_json(dialect),
        }
    }

    fn flat_json(&self, dialect: Dialect) -> Value {
        let mut m = self.extra.clone();
        let fields = json!({
            "id": self.id,
            "object": "realtime.session",
            "model": self.model,
            "modalities": self
                .modalities
                .iter()
                .filter(|m| dialect == Dialect::VoiceLive || matches!(m, Modality::Text | Modality::Audio))
                .map(|m| m.name())
                .collect::<Vec<_>>(),
            "instructions": self.instructions,
            "voice": self.voice.to_json(dialect),
            "input_audio_format": self.input_audio_format.input_name(),
            "output_audio_format": self.output_audio_format.output_name(),
            "input_audio_transcription": self.input_audio_transcription.as_ref().map(Transcription::to_json),
            "turn_detection": self.turn_detection.as_ref().map(|t| t.to_json(dialect)),
            "tools": self.tools.iter().map(Tool::to_json).collect::<Vec<_>>(),
            "tool_choice": self.tool_choice.to_json(),
            "temperature": self.temperature,
            "max_response_output_tokens": self.max_output_tokens.map_or(json!("inf"), |n| json!(n)),
        });
        merge(&mut m, fields);
        if dialect == Dialect::VoiceLive {
            m.insert("input_audio_sampling_rate".into(), json!(self.input_audio_format.sample_rate()));
            m.insert("output_audio_timestamp_types".into(), json!(self.output_audio_timestamp_types));
            m.insert("avatar".into(), self.avatar.as_ref().map_or(Value::Null, |a| a.to_json()));
            m.insert("animation".into(), self.animation.clone().unwrap_or(Value::Null));
        } else {
            // The beta SDK types `model` as a closed list of OpenAI model names: leave it out.
            m.remove("model");
        }
        Value::Object(m)
    }

    fn ga_json(&self) -> Value {
        let input = json!({
            "format": self.input_audio_format.ga_json(),
            "noise_reduction": self.extra.get("input_audio_noise_reduction").cloned().unwrap_or(Value::Null),
            "transcription": self.input_audio_transcription.as_ref().map(Transcription::to_json),
            "turn_detection": self.turn_detection.as_ref().map(|t| t.to_json(Dialect::Ga)),
        });
        let output = ga_audio_output(self.output_audio_format, &self.voice);
        let mut m = Map::new();
        for (k, v) in &self.extra {
            if GA_TOP_LEVEL.contains(&k.as_str()) {
                m.insert(k.clone(), v.clone());
            }
        }
        merge(
            &mut m,
            json!({
                "type": "realtime",
                "object": "realtime.session",
                "id": self.id,
                "model": self.model,
                "output_modalities": [if self.has_audio() { "audio" } else { "text" }],
                "instructions": self.instructions,
                "audio": {"input": input, "output": output},
                "tools": self.tools.iter().map(Tool::to_json).collect::<Vec<_>>(),
                "tool_choice": self.tool_choice.to_json(),
                "max_output_tokens": self.max_output_tokens.map_or(json!("inf"), |n| json!(n)),
            }),
        );
        Value::Object(m)
    }
}

/// GA `audio.output` of a session or response.
pub(crate) fn ga_audio_output(format: AudioFormat, voice: &Voice) -> Value {
    json!({"format": format.ga_json(), "voice": voice.to_json(Dialect::Ga), "speed": voice.rate.unwrap_or(1.0)})
}

/// Extra keys that exist at the top level of a GA session and are echoed there.
const GA_TOP_LEVEL: &[&str] = &["tracing", "truncation", "prompt", "include"];

fn merge(into: &mut Map<String, Value>, from: Value) {
    if let Value::Object(from) = from {
        into.extend(from);
    }
}

/// A partial session configuration, as read from `session.update` or `response.create`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SessionPatch {
    /// `model`.
    pub model: Field<String>,
    /// `modalities` / GA `output_modalities`.
    pub modalities: Field<Vec<Modality>>,
    /// `instructions`.
    pub instructions: Field<String>,
    /// `voice` / GA `audio.output.voice` (+ `speed`).
    pub voice: Field<Voice>,
    /// `input_audio_format` / GA `audio.input.format`.
    pub input_audio_format: Field<AudioFormat>,
    /// Voice Live `input_audio_sampling_rate`.
    pub input_sampling_rate: Option<u32>,
    /// `output_audio_format` / GA `audio.output.format`.
    pub output_audio_format: Field<AudioFormat>,
    /// `input_audio_transcription` / GA `audio.input.transcription`.
    pub input_audio_transcription: Field<Transcription>,
    /// `turn_detection` / GA `audio.input.turn_detection`.
    pub turn_detection: Field<TurnDetection>,
    /// `tools`.
    pub tools: Field<Vec<Tool>>,
    /// `tool_choice`.
    pub tool_choice: Field<ToolChoice>,
    /// `temperature`.
    pub temperature: Field<f64>,
    /// `max_response_output_tokens` / `max_output_tokens` (`"inf"` = no cap).
    pub max_output_tokens: Field<Option<u64>>,
    /// `output_audio_timestamp_types`.
    pub output_audio_timestamp_types: Field<Vec<String>>,
    /// `avatar`.
    pub avatar: Field<Box<AvatarConfig>>,
    /// `animation`.
    pub animation: Field<Value>,
    /// Other known keys, kept as sent.
    pub extra: Vec<(String, Field<Value>)>,
    /// The object had the GA shape (`type: "realtime"`, `audio`, or `output_modalities`).
    pub ga_shape: bool,
    /// The object had the flat shape of Voice Live and the beta (`modalities`,
    /// `input_audio_format`, `turn_detection`, `voice`, … at the top level).
    pub flat_shape: bool,
}

/// Keys that only the flat (Voice Live / beta) session shape has at its top level.
const FLAT_ONLY_KEYS: &[&str] = &[
    "modalities",
    "voice",
    "input_audio_format",
    "output_audio_format",
    "input_audio_transcription",
    "turn_detection",
    "max_response_output_tokens",
];

/// The two spellings of Voice Live's interim-response key.
const INTERIM_KEYS: &[&str] = &["interim_response", "interim-response"];

/// Session keys kept as sent and echoed back.
const KEPT_KEYS: &[&str] = &[
    "input_audio_noise_reduction",
    "input_audio_echo_cancellation",
    "interim-response",
    "interim_response",
    "reasoning_effort",
    "metadata",
    "tracing",
    "truncation",
    "prompt",
    "include",
    "speech_config",
];

impl SessionPatch {
    /// Reads a session object in the flat (Voice Live / beta) or nested (GA) shape.
    pub fn read(o: Obj<'_>) -> Result<SessionPatch, ProtocolError> {
        let mut p = SessionPatch {
            ga_shape: o.raw("type").and_then(Value::as_str) == Some("realtime")
                || o.has("audio")
                || o.has("output_modalities"),
            flat_shape: FLAT_ONLY_KEYS.iter().any(|k| o.has(k)),
            model: o.str("model")?.map(str::to_owned),
            instructions: o.str("instructions")?.map(str::to_owned),
            ..SessionPatch::default()
        };
        p.modalities = o.field("modalities", Modality::read_list)?;
        if let Field::Set(list) = o.field("output_modalities", Modality::read_list)? {
            // GA: ["audio"] means audio with its transcript.
            let mut list = list;
            if !list.contains(&Modality::Text) {
                list.insert(0, Modality::Text);
            }
            p.modalities = Field::Set(list);
        }
        if let Field::Set(m) = &p.modalities
            && m == &[Modality::Audio]
        {
            return Err(bad_value(
                &o.param("modalities"),
                "Invalid modalities: ['audio'] alone is not supported; use ['text', 'audio'].",
            ));
        }
        p.voice = o.field("voice", Voice::read)?;
        p.input_audio_format = o.field("input_audio_format", |v, path| AudioFormat::read(v, path, false))?;
        p.input_sampling_rate = match o.u64("input_audio_sampling_rate")?.value() {
            Some(8_000) => None, // the G.711 rate: implied by the format
            Some(rate) => Some(check_rate(rate, &o.param("input_audio_sampling_rate"), false)?),
            None => None,
        };
        p.output_audio_format = o.field("output_audio_format", |v, path| AudioFormat::read(v, path, true))?;
        p.input_audio_transcription = o.field("input_audio_transcription", Transcription::read)?;
        p.turn_detection = o.field("turn_detection", TurnDetection::read)?;
        p.tools = o.field("tools", Tool::read_list)?;
        p.tool_choice = o.field("tool_choice", ToolChoice::read)?;
        p.temperature = o.field("temperature", |v, path| in_range(crate::read::as_f64(v, path)?, 0.0, 2.0, path))?;
        for key in ["max_response_output_tokens", "max_output_tokens"] {
            let f = o.field(key, read_token_cap)?;
            if f != Field::Absent {
                p.max_output_tokens = f;
            }
        }
        p.output_audio_timestamp_types = o.strings("output_audio_timestamp_types")?;
        if let Field::Set(types) = &p.output_audio_timestamp_types {
            for (i, t) in types.iter().enumerate() {
                one_of(t, &["word"], &join(&o.param("output_audio_timestamp_types"), &i.to_string()))?;
            }
        }
        p.avatar = o.field("avatar", |v, path| AvatarConfig::read(v, path).map(Box::new))?;
        p.animation = o.field("animation", |v, path| {
            Obj::expect(v, path)?;
            if let Some(outputs) = v.get("outputs").filter(|o| !o.is_null()) {
                let param = format!("{path}.outputs");
                let list = outputs.as_array().ok_or_else(|| wrong_type(&param, "an array of strings", outputs))?;
                for (i, o) in list.iter().enumerate() {
                    let p = format!("{param}[{i}]");
                    one_of(as_str(o, &p)?, &ANIMATION_OUTPUTS, &p)?;
                }
            }
            if let Some(name) = v.get("model_name").filter(|n| !n.is_null()) {
                as_str(name, &format!("{path}.model_name"))?;
            }
            Ok(v.clone())
        })?;
        if let Some(audio) = o.obj("audio")?.value() {
            p.read_ga_audio(Obj::new(audio, &o.param("audio")))?;
        }
        for (key, value) in o.raw_map() {
            // Unknown keys are ignored: the published SDKs add fields over time.
            if KEPT_KEYS.contains(&key.as_str()) {
                if INTERIM_KEYS.contains(&key.as_str()) && !value.is_null() {
                    InterimResponse::read(value, &o.param(key))?;
                }
                let field = if value.is_null() { Field::Null } else { Field::Set(value.clone()) };
                p.extra.push((key.clone(), field));
            }
        }
        Ok(p)
    }

    /// GA `audio: {input: {format, transcription, turn_detection, noise_reduction}, output: {format, voice, speed}}`.
    fn read_ga_audio(&mut self, audio: Obj<'_>) -> Result<(), ProtocolError> {
        let input_path = audio.param("input");
        if let Some(input) = audio.obj("input")?.value() {
            let i = Obj::new(input, &input_path);
            self.input_audio_format = i.field("format", |v, path| AudioFormat::read(v, path, false))?;
            self.input_audio_transcription = i.field("transcription", Transcription::read)?;
            self.turn_detection = i.field("turn_detection", TurnDetection::read)?;
            if let Some(v) = i.raw("noise_reduction") {
                self.extra.push((
                    "input_audio_noise_reduction".into(),
                    if v.is_null() { Field::Null } else { Field::Set(v.clone()) },
                ));
            }
        }
        let output_path = audio.param("output");
        if let Some(output) = audio.obj("output")?.value() {
            let out = Obj::new(output, &output_path);
            self.output_audio_format = out.field("format", |v, path| AudioFormat::read(v, path, true))?;
            self.voice = out.field("voice", Voice::read)?;
            if let Some(speed) = out.f64("speed")?.value() {
                let speed = in_range(speed, 0.25, 1.5, &out.param("speed"))?;
                let mut voice = match std::mem::replace(&mut self.voice, Field::Absent) {
                    Field::Set(v) => v,
                    _ => Voice::default(),
                };
                voice.rate = Some(speed);
                self.voice = Field::Set(voice);
            }
        }
        Ok(())
    }
}

fn read_token_cap(v: &Value, param: &str) -> Result<Option<u64>, ProtocolError> {
    if v.as_str() == Some("inf") {
        return Ok(None);
    }
    let n = crate::read::as_u64(v, param)?;
    if !(1..=1_000_000).contains(&n) {
        return Err(bad_value(param, format!("Invalid value for '{param}': {n}; use 1..=1000000 or \"inf\".")));
    }
    Ok(Some(n))
}
