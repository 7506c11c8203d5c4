//! Server configuration: defaults, then a TOML file, then `BRAZEN_*` environment variables, then
//! command-line flags (each overriding the one before).

use brazen_runtime::engines::EngineChoice;
use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// Everything `brazen serve` can be told.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Address to bind.
    pub host: String,
    /// Port to bind; 0 picks a free one.
    pub port: u16,
    /// Accepted API keys; empty means no authentication (and loopback only).
    pub api_keys: Vec<String>,
    /// Most concurrent sessions; more are refused with HTTP 503.
    pub max_sessions: usize,
    /// Sustained client events per second per session.
    pub events_per_second: f64,
    /// Burst of client events above the sustained rate.
    pub event_burst: f64,
    /// Longest a session lasts, in seconds (0: no limit); it is told a minute ahead (Voice
    /// Live's `warning`) and closed with an `error` event `session_expired`.
    pub max_session_seconds: f64,
    /// Longest a session may go without anything happening in it (speech, a client event
    /// other than appended audio, a response), in seconds (0: no limit); closed with an
    /// `error` event `session_idle_timeout`.
    pub idle_timeout_seconds: f64,
    /// On SIGTERM, how long responses in progress may go on before their sessions are closed.
    pub drain_seconds: f64,
    /// New sessions each client address may open per minute (0: no limit); more are refused
    /// with HTTP 429. Behind a proxy on the same machine every client has the proxy's address.
    pub connections_per_minute: f64,
    /// New sessions each API key (or client secret's key) may open per minute (0: no limit).
    pub connections_per_minute_per_key: f64,
    /// Voice-activity detector: `silero` (the model, installed on first run) or `energy`
    /// (loudness only, no model).
    pub vad: String,
    /// The end-of-turn model of semantic turn detection (`semantic_vad`,
    /// `azure_semantic_vad`, `end_of_utterance_detection`): `smart-turn` (Smart Turn v3.2,
    /// installed on first run) or `none` (the pause's words and silence alone).
    pub turn: String,
    /// What judges a pause from its words with the local language model: `llm` (default; the
    /// conversational model itself, whose verdict's pass computes the words the reply starts from),
    /// `smollm2-135m` (SmolLM2-135M-Instruct, installed on first use: a verdict in a sixth of
    /// the time, mapped onto the conversational model's scale), or the path of a ChatML GGUF
    /// file.
    pub turn_judge: String,
    /// Speech recognition: `whisper-tiny-en` (default; English), `whisper-base` (multilingual,
    /// honours the session's transcription `language`), both installed on first run, `azure`
    /// (Azure AI Speech's REST API for short audio), or `echo`
    /// (the labelled stand-in: the transcript is the audio's length).
    pub asr: String,
    /// Parallel Whisper decodes (each with `asr_threads` CPU threads).
    pub asr_workers: usize,
    /// CPU threads per Whisper decode (0: half the cores, 1 to 4).
    pub asr_threads: usize,
    /// The language model: `qwen2.5-coder-1.5b` (default; the local model, installed on first
    /// run), the path of a qwen2 GGUF file, `openai` (any OpenAI-compatible server at
    /// `llm_url`: OpenAI, vLLM, TGI, llama.cpp, Ollama), `azure-openai` (an Azure OpenAI
    /// deployment), or `echo` (the labelled stand-in that repeats the user).
    pub llm: String,
    /// The OpenAI-compatible API's base URL (`https://api.openai.com/v1`,
    /// `http://127.0.0.1:8000/v1`) or the Azure OpenAI resource's endpoint
    /// (`https://NAME.openai.azure.com`; default `$AZURE_OPENAI_ENDPOINT`).
    pub llm_url: Option<String>,
    /// The model the server should run (`gpt-4o-mini`, the name vLLM serves) or the Azure
    /// deployment's name.
    pub llm_model: Option<String>,
    /// The key for `llm_url` (default `$OPENAI_API_KEY`, for Azure `$AZURE_OPENAI_API_KEY`;
    /// for Azure with Entra ID, `$AZURE_OPENAI_AD_TOKEN` gives a bearer token instead).
    pub llm_api_key: Option<String>,
    /// Azure OpenAI's `api-version` (default 2024-10-21).
    pub llm_api_version: Option<String>,
    /// Seconds a remote model may take to start answering, and between two pieces of its
    /// answer, before the response fails.
    pub llm_timeout_s: u64,
    /// CPU threads for the language model (0: all cores, at most 4).
    pub llm_threads: usize,
    /// Speech synthesis: `piper` (default; the Piper voice en_US joe), `kokoro` (Kokoro-82M;
    /// the session's voice picks one of its voices), both installed on first run, `azure`
    /// (Azure AI Speech; the session's voice picks an Azure voice), or `tone` (the labelled
    /// stand-in, 40 ms of tone per character, no model).
    pub tts: String,
    /// The Azure Speech resource's region (`westeurope`) for `asr`/`tts = "azure"` (default
    /// `$AZURE_SPEECH_REGION`).
    pub azure_speech_region: Option<String>,
    /// A custom domain or private endpoint of the Speech resource
    /// (`https://NAME.cognitiveservices.azure.com`), instead of the region.
    pub azure_speech_endpoint: Option<String>,
    /// The Speech resource's key (default `$AZURE_SPEECH_KEY`; a bearer token in
    /// `$AZURE_SPEECH_TOKEN` instead).
    pub azure_speech_key: Option<String>,
    /// The Speech resource's Azure resource id (`/subscriptions/…/accounts/NAME`), with which
    /// Entra ID tokens are sent to a regional endpoint (default `$AZURE_SPEECH_RESOURCE_ID`).
    pub azure_speech_resource_id: Option<String>,
    /// The Azure voice spoken when a session names none of Azure's (default
    /// en-US-AvaMultilingualNeural).
    pub azure_tts_voice: Option<String>,
    /// The recognition locale when a session names no language (default en-US).
    pub azure_speech_language: Option<String>,
    /// Where models are installed (default `$BRAZEN_MODELS_DIR` or `~/.cache/brazen/models`).
    pub models_dir: Option<std::path::PathBuf>,
    /// A folder of avatar character descriptions (`*.toml`) offered besides the built-in ones.
    pub characters_dir: Option<std::path::PathBuf>,
    /// The UDP port of the avatars' WebRTC media and of brazen's STUN responder, shared by
    /// every session (default: the HTTP port's number; 0 picks a free one).
    pub media_port: Option<u16>,
    /// The IP address browsers reach the media port at (default: the address bound, or this
    /// machine's outgoing address when bound to every interface). Behind NAT: the public
    /// address, with the port forwarded.
    pub media_address: Option<String>,
    /// ICE servers given to clients besides brazen's own STUN, e.g. a TURN relay
    /// (`[[ice_servers]] urls = ["turn:relay.example:3478"]`, `username`, `credential`).
    pub ice_servers: Vec<brazen_runtime::avatar_media::IceServer>,
    /// Hosts (`images.internal`), addresses or networks (`10.0.0.0/8`) pictures may be fetched
    /// from although they are not public (`image_url`, `photo_url`); by default only public
    /// addresses are.
    pub fetch_allow: Vec<String>,
    /// Web origins (`https://app.example.com`, `http://localhost:5173`) whose pages may open
    /// the Realtime WebSocket besides the server's own; `"*"` admits every origin. With no API
    /// key, only these, the server's own pages and pages from loopback origins can connect from
    /// a browser; with a key, an empty list admits every origin (the key is the check).
    pub allowed_origins: Vec<String>,
    /// Host names the server answers to besides loopback names, when it has no API key (it
    /// then listens on loopback only, and refuses other `Host` headers so that a web page cannot
    /// reach it through a DNS name rebound to 127.0.0.1).
    pub allowed_hosts: Vec<String>,
    /// The agent every session starts as: `retail` (default; the built-in retail agent), the
    /// path of an agent file (`*.toml`, docs/agents.md), or `none` (the protocol's defaults, no
    /// server-side tools, nothing stored).
    pub agent: String,
    /// A folder of the user's own static pages served at `/` in place of the built-in app
    /// (e.g. the official Voice Live avatar sample's `static/` folder, whose backend protocol
    /// brazen speaks at `/api/config` and `/ws/{clientId}`).
    pub web_root: Option<std::path::PathBuf>,
    /// Relay every Realtime session to this Azure Voice Live resource
    /// (`https://NAME.services.ai.azure.com`) instead of answering it here: brazen becomes the
    /// server-side proxy that holds the Azure credential (docs/relay.md).
    pub relay: Option<String>,
    /// The Voice Live key for the relay (default `$AZURE_VOICELIVE_API_KEY`; without one, an
    /// Entra ID token from the environment's identity).
    pub relay_api_key: Option<String>,
    /// Where brazen keeps its data (the database, the built-in agent's documents, the
    /// knowledge index): default `$BRAZEN_DATA_DIR` or `~/.local/share/brazen`.
    pub data_dir: Option<std::path::PathBuf>,
    /// The database: `sqlite://PATH` or `postgres://USER:PASSWORD@HOST:PORT/DB`; default a
    /// SQLite file `brazen.db` in the data directory.
    pub database_url: Option<String>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            host: "127.0.0.1".into(),
            port: 8080,
            api_keys: Vec::new(),
            max_sessions: 10_000,
            events_per_second: 500.0,
            event_burst: 2_000.0,
            max_session_seconds: 3_600.0,
            idle_timeout_seconds: 300.0,
            drain_seconds: 10.0,
            connections_per_minute: 600.0,
            connections_per_minute_per_key: 6_000.0,
            vad: "silero".into(),
            turn: "smart-turn".into(),
            turn_judge: "llm".into(),
            asr: "whisper-tiny-en".into(),
            asr_workers: 1,
            asr_threads: 0,
            llm: "qwen2.5-coder-1.5b".into(),
            llm_url: None,
            llm_model: None,
            llm_api_key: None,
            llm_api_version: None,
            llm_timeout_s: 60,
            llm_threads: 0,
            tts: "piper".into(),
            azure_speech_region: None,
            azure_speech_endpoint: None,
            azure_speech_key: None,
            azure_speech_resource_id: None,
            azure_tts_voice: None,
            azure_speech_language: None,
            models_dir: None,
            characters_dir: None,
            media_port: None,
            media_address: None,
            ice_servers: Vec::new(),
            fetch_allow: Vec::new(),
            allowed_origins: Vec::new(),
            allowed_hosts: Vec::new(),
            agent: "retail".into(),
            web_root: None,
            relay: None,
            relay_api_key: None,
            data_dir: None,
            database_url: None,
        }
    }
}

impl Config {
    /// The engines this configuration names, and how the local ones run.
    pub fn engine_choice(&self) -> EngineChoice {
        EngineChoice {
            vad: self.vad.clone(),
            turn: self.turn.clone(),
            turn_judge: self.turn_judge.clone(),
            asr: self.asr.clone(),
            asr_workers: self.asr_workers,
            asr_threads: self.asr_threads,
            llm: self.llm.clone(),
            remote_llm: brazen_runtime::engines::RemoteLlm {
                url: self.llm_url.clone(),
                model: self.llm_model.clone(),
                api_key: self.llm_api_key.clone(),
                api_version: self.llm_api_version.clone(),
                timeout_s: self.llm_timeout_s,
            },
            azure_speech: brazen_runtime::engines::AzureSpeech {
                region: self.azure_speech_region.clone(),
                endpoint: self.azure_speech_endpoint.clone(),
                key: self.azure_speech_key.clone(),
                resource_id: self.azure_speech_resource_id.clone(),
                voice: self.azure_tts_voice.clone(),
                language: self.azure_speech_language.clone(),
            },
            tts: self.tts.clone(),
            models_dir: self.models_dir.clone(),
        }
    }

    /// The data directory: `data_dir`, else `$XDG_DATA_HOME/brazen`, else
    /// `~/.local/share/brazen`.
    pub fn data_dir(&self) -> std::path::PathBuf {
        if let Some(dir) = &self.data_dir {
            return dir.clone();
        }
        if let Some(xdg) = std::env::var_os("XDG_DATA_HOME").filter(|v| !v.is_empty()) {
            return std::path::PathBuf::from(xdg).join("brazen");
        }
        let home = std::env::var_os("HOME").map(std::path::PathBuf::from).unwrap_or_else(|| ".".into());
        home.join(".local/share/brazen")
    }
}

/// The configuration keys read from `BRAZEN_<KEY>` variables; other `BRAZEN_*` variables
/// (`BRAZEN_LOG`, a test harness's own) are left alone.
const ENV_KEYS: &[&str] = &[
    "host",
    "port",
    "api_keys",
    "max_sessions",
    "events_per_second",
    "event_burst",
    "max_session_seconds",
    "idle_timeout_seconds",
    "drain_seconds",
    "connections_per_minute",
    "connections_per_minute_per_key",
    "vad",
    "turn",
    "turn_judge",
    "asr",
    "asr_workers",
    "asr_threads",
    "llm",
    "llm_url",
    "llm_model",
    "llm_api_key",
    "llm_api_version",
    "llm_timeout_s",
    "llm_threads",
    "tts",
    "azure_speech_region",
    "azure_speech_endpoint",
    "azure_speech_key",
    "azure_speech_resource_id",
    "azure_tts_voice",
    "azure_speech_language",
    "models_dir",
    "characters_dir",
    "media_port",
    "media_address",
    "fetch_allow",
    "allowed_origins",
    "allowed_hosts",
    "agent",
    "web_root",
    "relay",
    "relay_api_key",
    "data_dir",
    "database_url",
];

/// Flags given on the command line (only those set override).
#[derive(Debug, Default, Serialize)]
pub struct Overrides {
    /// `--host`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// `--port`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    /// `--api-key` (repeatable).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub api_keys: Vec<String>,
    /// `--vad`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vad: Option<String>,
    /// `--turn`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub turn: Option<String>,
    /// `--turn-judge`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub turn_judge: Option<String>,
    /// `--asr`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub asr: Option<String>,
    /// `--llm`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub llm: Option<String>,
    /// `--llm-url`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub llm_url: Option<String>,
    /// `--llm-model`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub llm_model: Option<String>,
    /// `--llm-api-key`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub llm_api_key: Option<String>,
    /// `--tts`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tts: Option<String>,
    /// `--models-dir`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub models_dir: Option<std::path::PathBuf>,
    /// `--agent`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agent: Option<String>,
    /// `--web-root`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub web_root: Option<std::path::PathBuf>,
    /// `--relay`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub relay: Option<String>,
    /// `--data-dir`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_dir: Option<std::path::PathBuf>,
    /// `--database-url`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub database_url: Option<String>,
}

/// Loads the configuration; a config file that is named but missing is an error.
pub fn load(file: Option<&Path>, overrides: Overrides) -> Result<Config, String> {
    let mut figment = Figment::from(Serialized::defaults(Config::default()));
    if let Some(path) = file {
        if !path.exists() {
            return Err(format!("config file {} does not exist", path.display()));
        }
        figment = figment.merge(Toml::file(path));
    }
    figment = figment.merge(Env::prefixed("BRAZEN_").only(ENV_KEYS)).merge(Serialized::defaults(overrides));
    let config: Config = figment.extract().map_err(|e| format!("invalid configuration: {e}"))?;
    for key in &config.api_keys {
        crate::auth::check_configured_key(key).map_err(|e| format!("invalid configuration: {e}"))?;
    }
    brazen_runtime::backgrounds::FetchPolicy::parse(&config.fetch_allow)
        .map_err(|e| format!("invalid configuration: {e}"))?;
    for origin in &config.allowed_origins {
        crate::origin::check_configured_origin(origin).map_err(|e| format!("invalid configuration: {e}"))?;
    }
    for (name, value) in [
        ("max_session_seconds", config.max_session_seconds),
        ("idle_timeout_seconds", config.idle_timeout_seconds),
        ("drain_seconds", config.drain_seconds),
        ("connections_per_minute", config.connections_per_minute),
        ("connections_per_minute_per_key", config.connections_per_minute_per_key),
    ] {
        if !(value.is_finite() && (0.0..=1e9).contains(&value)) {
            return Err(format!("invalid configuration: {name} = {value}: give a number of 0 or more (0: no limit)"));
        }
    }
    Ok(config)
}

impl Config {
    /// A limit in seconds as milliseconds, 0 meaning none (infinite).
    fn limit_ms(seconds: f64) -> f64 {
        if seconds > 0.0 { seconds * 1000.0 } else { f64::INFINITY }
    }

    /// What the runtime enforces: the session count, each session's limits, the drain.
    pub fn runtime_limits(&self) -> brazen_runtime::RuntimeLimits {
        brazen_runtime::RuntimeLimits {
            max_sessions: self.max_sessions,
            session: brazen_engine::Limits {
                events_per_second: self.events_per_second,
                burst: self.event_burst,
                max_session_ms: Config::limit_ms(self.max_session_seconds),
                idle_timeout_ms: Config::limit_ms(self.idle_timeout_seconds),
                ..brazen_engine::Limits::default()
            },
            drain: std::time::Duration::from_secs_f64(self.drain_seconds),
        }
    }
}

#[cfg(test)]
#[allow(clippy::result_large_err)] // figment::Jail's closures return figment::Error
mod tests {
    use super::*;

    #[test]
    fn file_then_env_then_flags() {
        figment::Jail::expect_with(|jail| {
            jail.create_file("brazen.toml", "port = 9000\nhost = \"0.0.0.0\"\napi_keys = [\"from-file\"]")?;
            jail.set_env("BRAZEN_PORT", "9100");
            jail.set_env("BRAZEN_BIN", "/somewhere/else");
            let cfg = load(Some(Path::new("brazen.toml")), Overrides::default()).unwrap();
            assert_eq!((cfg.host.as_str(), cfg.port), ("0.0.0.0", 9100));
            assert_eq!(cfg.api_keys, vec!["from-file".to_string()]);
            let flags = Overrides { port: Some(7000), api_keys: vec!["k".into()], ..Default::default() };
            let cfg = load(Some(Path::new("brazen.toml")), flags).unwrap();
            assert_eq!((cfg.port, cfg.api_keys.clone()), (7000, vec!["k".to_string()]));
            Ok(())
        });
    }

    /// The container image and the Kubernetes manifests name settings that exist, and the
    /// manifests' configuration file loads.
    #[test]
    fn the_deployment_files_speak_this_configuration() {
        // Variables read elsewhere than the configuration (the log filter, the installer's).
        const OTHERS: &[&str] = &["log", "config"];
        let files = [
            include_str!("../../../Dockerfile"),
            include_str!("../../../deploy/kubernetes/brazen.yaml"),
            include_str!("../../../deploy/kubernetes/vllm.yaml"),
        ];
        for text in files {
            for (at, _) in text.match_indices("BRAZEN_") {
                let name: String = text[at + 7..].chars().take_while(|c| c.is_ascii_uppercase() || *c == '_').collect();
                let key = name.to_ascii_lowercase();
                assert!(
                    ENV_KEYS.contains(&key.as_str()) || OTHERS.contains(&key.as_str()),
                    "BRAZEN_{name} is no setting"
                );
            }
        }
        let manifest = include_str!("../../../deploy/kubernetes/brazen.yaml");
        let block = manifest.split("config.toml: |\n").nth(1).unwrap();
        let toml: String = block
            .lines()
            .take_while(|l| l.starts_with("    ") || l.is_empty())
            .map(|l| l.trim_start_matches("    "))
            .collect::<Vec<_>>()
            .join("\n");
        assert!(toml.contains("llm = \"openai\""), "{toml}");
        figment::Jail::expect_with(|jail| {
            jail.create_file("k8s.toml", &toml)?;
            let cfg = load(Some(Path::new("k8s.toml")), Overrides::default()).unwrap();
            assert_eq!((cfg.llm.as_str(), cfg.drain_seconds, cfg.connections_per_minute), ("openai", 20.0, 0.0));
            Ok(())
        });
    }

    #[test]
    fn blank_keys_and_bad_allow_lists_are_refused() {
        let keys = |k: &str| Overrides { api_keys: vec![k.into()], ..Default::default() };
        let err = load(None, keys("")).unwrap_err();
        assert!(err.contains("API key is empty") && err.contains("--api-key"), "{err}");
        assert!(load(None, keys("   ")).is_err());
        assert!(load(None, keys("a-real-key")).is_ok());
        figment::Jail::expect_with(|jail| {
            jail.create_file("allow.toml", "fetch_allow = [\"10.0.0.0/99\"]")?;
            let err = load(Some(Path::new("allow.toml")), Overrides::default()).unwrap_err();
            assert!(err.contains("fetch_allow"), "{err}");
            jail.create_file("origins.toml", "allowed_origins = [\"localhost:5173\"]")?;
            let err = load(Some(Path::new("origins.toml")), Overrides::default()).unwrap_err();
            assert!(err.contains("http://localhost:5173"), "{err}");
            Ok(())
        });
    }

    #[test]
    fn bad_files_are_clear_errors() {
        figment::Jail::expect_with(|jail| {
            jail.create_file("bad.toml", "prot = 1")?;
            let err = load(Some(Path::new("bad.toml")), Overrides::default()).unwrap_err();
            assert!(err.contains("prot"), "{err}");
            let err = load(Some(Path::new("missing.toml")), Overrides::default()).unwrap_err();
            assert!(err.contains("does not exist"), "{err}");
            Ok(())
        });
    }
}
