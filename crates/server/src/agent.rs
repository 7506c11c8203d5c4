//! Agents: what a session starts as (instructions, voice, avatar, turn detection, interim line —
//! any field of a Voice Live `session.update`), which of brazen's own tools it runs, the folder
//! of documents it answers from, and whether its calls are analysed; one TOML file
//! (docs/agents.md). The retail agent (`agents/retail`) is built in.

use brazen_protocol::SessionPatch;
use brazen_protocol::read::Obj;
use brazen_providers::{EngineStream, ToolCall, ToolEvent, ToolSpec, Tools};
use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::sync::Arc;

mod builtin {
    include!(concat!(env!("OUT_DIR"), "/builtin_agent.rs"));
}

/// Largest agent file read.
const MAX_AGENT_BYTES: u64 = 1 << 20;

/// An agent, loaded and checked.
#[derive(Debug, Clone)]
pub struct Agent {
    /// Its name (`retail`).
    pub name: String,
    /// One line about it.
    pub description: String,
    /// brazen's own tools it runs, by name.
    pub tools: Vec<String>,
    /// Its documents' folder, if it has one.
    pub knowledge: Option<PathBuf>,
    /// Analyse each call when it ends.
    pub analyse_calls: bool,
    /// What each session starts as.
    pub session: Arc<SessionPatch>,
    /// What callers say for each tool, to route their words by meaning (`[routing]`).
    pub routing: Option<Routing>,
}

/// An agent's routing examples ([`brazen_knowledge::ToolRouter`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Routing {
    /// The prior at full lead (logits).
    pub strength: f32,
    /// For each tool (or `respond`: answering without one), things callers say for it.
    pub examples: Vec<(String, Vec<String>)>,
}

/// The `[routing]` table.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RoutingFile {
    strength: Option<f32>,
    #[serde(default)]
    examples: std::collections::BTreeMap<String, Vec<String>>,
}

/// The file's shape.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AgentFile {
    name: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    tools: Vec<String>,
    knowledge: Option<PathBuf>,
    #[serde(default)]
    analyse_calls: bool,
    #[serde(default)]
    session: Option<toml::Table>,
    routing: Option<RoutingFile>,
}

impl Agent {
    /// The built-in retail agent, its knowledge folder in `data_dir` (the shipped documents
    /// are copied there when missing, so documents a user adds beside them are indexed too).
    pub fn builtin(data_dir: &Path) -> Result<Agent, String> {
        let mut agent = Agent::parse(builtin::AGENT_TOML, None, "the built-in agent")?;
        let dir = data_dir.join("agents").join(&agent.name).join("knowledge");
        install_documents(&dir)?;
        agent.knowledge = Some(dir);
        Ok(agent)
    }

    /// The built-in retail agent as it is shipped, installing nothing: its knowledge folder is
    /// left unresolved (its documents are [`builtin_documents`]).
    pub fn builtin_shipped() -> Result<Agent, String> {
        Agent::parse(builtin::AGENT_TOML, None, "the built-in agent")
    }

    /// The instructions every session starts with (`[session].instructions`; empty if unset).
    pub fn instructions(&self) -> String {
        match &self.session.instructions {
            brazen_protocol::read::Field::Set(text) => text.clone(),
            _ => String::new(),
        }
    }

    /// The agent file at `path` (its `knowledge` folder is relative to the file).
    pub fn load(path: &Path) -> Result<Agent, String> {
        let size =
            std::fs::metadata(path).map_err(|e| format!("cannot read the agent file {}: {e}", path.display()))?;
        if size.len() > MAX_AGENT_BYTES {
            return Err(format!("the agent file {} is larger than 1 MiB", path.display()));
        }
        let text =
            std::fs::read_to_string(path).map_err(|e| format!("cannot read the agent file {}: {e}", path.display()))?;
        let base = path.parent().unwrap_or(Path::new("."));
        Agent::parse(&text, Some(base), &path.display().to_string())
    }

    /// Reads an agent from TOML; `base` resolves its knowledge folder (`None`: left unresolved).
    fn parse(text: &str, base: Option<&Path>, origin: &str) -> Result<Agent, String> {
        let file: AgentFile = toml::from_str(text).map_err(|e| format!("{origin}: {e}"))?;
        if file.name.trim().is_empty() || !file.name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Err(format!("{origin}: 'name' must be letters, digits, '-' or '_' (got {:?})", file.name));
        }
        let session_json = serde_json::to_value(file.session.unwrap_or_default())
            .map_err(|e| format!("{origin}: [session] cannot be read as JSON: {e}"))?;
        let obj = Obj::expect(&session_json, "session").map_err(|e| format!("{origin}: {}", e.message))?;
        let session = SessionPatch::read(obj).map_err(|e| {
            let at = e.param.as_deref().map(|p| format!(" (at {p})")).unwrap_or_default();
            format!("{origin}: [session] is not a valid session: {}{at}", e.message)
        })?;
        let knowledge = match (file.knowledge, base) {
            (Some(dir), Some(base)) => {
                let dir = base.join(dir);
                if !dir.is_dir() {
                    return Err(format!("{origin}: the knowledge folder {} does not exist", dir.display()));
                }
                Some(dir)
            }
            (dir, None) => dir,
            (None, _) => None,
        };
        let routing = match file.routing {
            Some(r) => Some(read_routing(r, &file.tools).map_err(|e| format!("{origin}: [routing] {e}"))?),
            None => None,
        };
        Ok(Agent {
            routing,
            name: file.name,
            description: file.description,
            tools: file.tools,
            knowledge,
            analyse_calls: file.analyse_calls,
            session: Arc::new(session),
        })
    }
}

/// Checks the routing table: examples only for the agent's tools or `respond`, at most
/// [`brazen_knowledge::MAX_EXAMPLES`] each, a strength between 0 and 50.
fn read_routing(file: RoutingFile, tools: &[String]) -> Result<Routing, String> {
    let strength = file.strength.unwrap_or(brazen_knowledge::DEFAULT_STRENGTH);
    if !(strength > 0.0 && strength <= 50.0) {
        return Err(format!("'strength' must be above 0 and at most 50 (got {strength})"));
    }
    let mut examples = Vec::new();
    for (tool, said) in file.examples {
        if tool != brazen_llm::RESPOND && !tools.contains(&tool) {
            return Err(format!(
                "examples for {tool:?}, which is not one of the agent's tools (nor \"respond\", answering without one)"
            ));
        }
        if said.len() > brazen_knowledge::MAX_EXAMPLES {
            return Err(format!("{tool} has {} examples; at most {}", said.len(), brazen_knowledge::MAX_EXAMPLES));
        }
        if said.iter().any(|s| s.trim().is_empty()) {
            return Err(format!("{tool} has an empty example"));
        }
        examples.push((tool, said));
    }
    Ok(Routing { strength, examples })
}

/// The built-in agent's knowledge documents as shipped: (file name, text).
pub fn builtin_documents() -> &'static [(&'static str, &'static str)] {
    builtin::KNOWLEDGE
}

/// The built-in agent's evaluation cases (`agents/retail/eval/cases.jsonl`, JSON lines).
pub fn builtin_eval_cases() -> &'static str {
    builtin::EVAL_CASES
}

/// The tools of `all` that the agent names, in its order; a name `all` lacks is an error that
/// lists the ones it has.
pub fn select_tools(all: Arc<dyn Tools>, names: &[String]) -> Result<Arc<dyn Tools>, String> {
    let specs = pick_specs(&all.specs(), names)?;
    Ok(Arc::new(Selected { all, specs }))
}

/// The specs of `offered` that `names` names, in that order; a name not offered is an error
/// that lists the ones offered.
pub fn pick_specs(offered: &[ToolSpec], names: &[String]) -> Result<Vec<ToolSpec>, String> {
    names
        .iter()
        .map(|name| {
            offered.iter().find(|s| &s.definition.name == name).cloned().ok_or_else(|| {
                let known: Vec<&str> = offered.iter().map(|s| s.definition.name.as_str()).collect();
                format!("the agent names a tool '{name}' brazen does not have (it has: {})", known.join(", "))
            })
        })
        .collect()
}

/// Some of a tool set.
struct Selected {
    all: Arc<dyn Tools>,
    specs: Vec<ToolSpec>,
}

impl Tools for Selected {
    fn specs(&self) -> Vec<ToolSpec> {
        self.specs.clone()
    }

    fn call(&self, call: ToolCall) -> EngineStream<ToolEvent> {
        if self.specs.iter().any(|s| s.definition.name == call.name) {
            return self.all.call(call);
        }
        let message = format!("This agent has no tool named '{}'.", call.name);
        Box::pin(futures_util::stream::iter([ToolEvent::Failed(message)]))
    }
}

/// Writes the built-in agent's documents into `dir` where they are missing (a document the user
/// edited is left as it is).
fn install_documents(dir: &Path) -> Result<(), String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}; set data_dir", dir.display()))?;
    for (name, text) in builtin::KNOWLEDGE {
        let path = dir.join(name);
        if !path.exists() {
            std::fs::write(&path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_builtin_agent_is_valid_and_installs_its_documents() {
        let dir = std::env::temp_dir().join(format!("brazen-agent-{}", std::process::id()));
        let agent = Agent::builtin(&dir).unwrap();
        assert_eq!(agent.name, "retail");
        assert!(agent.tools.contains(&"order_products".to_owned()));
        assert!(agent.analyse_calls);
        let ok = |s: &str| s.contains("Contoso");
        assert!(matches!(&agent.session.instructions, brazen_protocol::read::Field::Set(text) if ok(text)));
        let knowledge = agent.knowledge.unwrap();
        assert_eq!(std::fs::read_dir(&knowledge).unwrap().count(), builtin::KNOWLEDGE.len());
        // An edited document survives the next start.
        if let Some((name, _)) = builtin::KNOWLEDGE.first() {
            std::fs::write(knowledge.join(name), "edited").unwrap();
            Agent::builtin(&dir).unwrap();
            assert_eq!(std::fs::read_to_string(knowledge.join(name)).unwrap(), "edited");
        }
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn mistakes_are_named() {
        let cases = [
            ("name = 'a b'", "'name' must be"),
            ("name = 'x'\nsurprise = 1", "unknown field `surprise`"),
            ("name = 'x'\n[session]\nmodalities = ['audio']", "at session.modalities"),
            ("name = 'x'\n[session]\ninterim_response = { type = 'loud' }", "at session.interim_response.type"),
            ("name = 'x'\nknowledge = 'nowhere'", "does not exist"),
            ("name = 'x'\n[routing]\nexamples.order = ['one please']", "not one of the agent's tools"),
            ("name = 'x'\n[routing]\nstrength = 0.0", "'strength' must be above 0"),
            ("name = 'x'\ntools = ['t']\n[routing]\nexamples.t = [' ']", "t has an empty example"),
            ("name = 'x'\n[routing]\nsurprise = 1", "unknown field `surprise`"),
        ];
        for (text, expected) in cases {
            let e = Agent::parse(text, Some(Path::new("/nonexistent-base")), "t.toml").unwrap_err();
            assert!(e.contains(expected), "{text}: {e}");
        }
    }
}
