//! `brazen eval`: an agent's tool calling with the local LLM, measured on the agent's own cases
//! (default: the built-in retail agent, its instructions, its tools and
//! `agents/retail/eval/cases.jsonl`). Prints each case, the failures with what the model did,
//! the accuracy per category and overall, and — for cases that name the document that should
//! answer (`expect.source`) — how often the model's `perform_search_based_qna` query finds that
//! document in the agent's knowledge base, first (top-1) and among the passages the tool
//! returns (top-3).

use crate::agent::{self, Agent};
use brazen_llm::LocalModel;
use brazen_llm::eval::{self, Case, Outcome};
use brazen_protocol::Tool;
use brazen_providers::Knowledge;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// What to evaluate.
pub struct EvalArgs {
    /// A GGUF file (default: the installed default model).
    pub model: Option<PathBuf>,
    /// A remote model instead of the local one: `openai` or `azure-openai`, at `remote`.
    pub llm: Option<String>,
    /// Where the remote model is.
    pub remote: brazen_runtime::engines::RemoteLlm,
    /// The agent: `retail` (the built-in one, the default) or an agent file.
    pub agent: Option<String>,
    /// The cases (JSON lines; default: the agent's `eval/cases.jsonl`).
    pub cases: Option<PathBuf>,
    /// The tools (a JSON array of function tools; default: the agent's own).
    pub tools: Option<PathBuf>,
    /// The system prompt (a text file; default: the agent's instructions).
    pub instructions: Option<PathBuf>,
    /// Where models are installed.
    pub models_dir: Option<PathBuf>,
    /// Leave out the agent's routing by meaning (the model chooses alone, to compare).
    pub no_routing: bool,
    /// Only check the routing, without the LLM.
    pub routing_only: bool,
}

/// Where an agent's documents are.
#[derive(Debug)]
enum Documents {
    /// The built-in agent's documents, as shipped.
    Builtin,
    /// A folder of documents.
    Folder(PathBuf),
}

/// Everything an evaluation needs but the models, read and checked.
#[derive(Debug)]
struct Plan {
    /// The agent's name.
    agent: String,
    cases: Vec<Case>,
    tools: Vec<Tool>,
    instructions: String,
    documents: Option<Documents>,
    routing: Option<agent::Routing>,
}

fn read(path: &Path, what: &str) -> Result<String, String> {
    std::fs::read_to_string(path).map_err(|e| format!("cannot read the {what} {}: {e}", path.display()))
}

/// Reads the agent, its cases, tools and instructions (flags first), and checks that every case
/// expects a tool the agent has.
fn plan(args: &EvalArgs) -> Result<Plan, String> {
    let (agent, default_cases, documents) = match args.agent.as_deref().unwrap_or("retail") {
        "retail" => {
            let agent = Agent::builtin_shipped()?;
            (agent, Ok(agent::builtin_eval_cases().to_owned()), Some(Documents::Builtin))
        }
        path => {
            let path = Path::new(path);
            let agent = Agent::load(path)?;
            let cases = path.parent().unwrap_or(Path::new(".")).join("eval").join("cases.jsonl");
            let default_cases = read(&cases, "cases").map_err(|e| format!("{e}; pass --cases FILE"));
            let documents = agent.knowledge.clone().map(Documents::Folder);
            (agent, default_cases, documents)
        }
    };
    let text = match &args.cases {
        Some(path) => read(path, "cases")?,
        None => default_cases?,
    };
    let cases = eval::parse_cases(&text).map_err(|e| format!("cases: {e}"))?;
    if cases.is_empty() {
        return Err("cases: there are none".into());
    }
    let tools = match &args.tools {
        Some(path) => eval::parse_tools(&read(path, "tools")?).map_err(|e| format!("tools: {e}"))?,
        None => {
            agent::pick_specs(&brazen_retail::tool_specs(), &agent.tools)?.into_iter().map(|s| s.definition).collect()
        }
    };
    let instructions = match &args.instructions {
        Some(path) => read(path, "instructions")?,
        None => agent.instructions(),
    };
    for case in &cases {
        if let Some(tool) = &case.expect.tool
            && !tools.iter().any(|t| &t.name == tool)
        {
            return Err(format!("case {} expects the tool {tool}, which the agent does not have", case.id));
        }
        if case.expect.source.is_some() && documents.is_none() {
            return Err(format!("case {} names a source, but the agent has no knowledge documents", case.id));
        }
    }
    let routing = agent.routing.clone().filter(|r| !args.no_routing && !r.examples.is_empty());
    Ok(Plan { agent: agent.name, cases, tools, instructions: instructions.trim().to_owned(), documents, routing })
}

/// all-MiniLM-L6-v2 (installed when missing), for the knowledge base and the routing.
fn embedder(models_dir: Option<PathBuf>) -> Result<Arc<brazen_knowledge::Embedder>, String> {
    let store = brazen_models::Store::new(models_dir.unwrap_or_else(brazen_models::Store::default_root));
    let spec = brazen_models::Manifest::builtin()
        .get(brazen_knowledge::MODEL_NAME)
        .ok_or("the built-in manifest has no embedding model")?
        .clone();
    let dir = store.install(&spec, &brazen_models::progress()).map_err(|e| {
        format!(
            "model {} is not installed and could not be installed: {e}; run `brazen models install --only {}`",
            brazen_knowledge::MODEL_NAME,
            brazen_knowledge::MODEL_NAME
        )
    })?;
    Ok(Arc::new(brazen_knowledge::Embedder::load(&dir).map_err(|e| e.to_string())?))
}

impl Plan {
    /// Whether the knowledge base is needed: the agent has documents and a case names a source.
    fn needs_knowledge(&self) -> bool {
        self.documents.is_some() && self.cases.iter().any(|c| c.expect.source.is_some())
    }

    /// Whether the embedding model is needed: for the knowledge base or the routing.
    fn needs_embedder(&self) -> bool {
        self.routing.is_some() || self.needs_knowledge()
    }
}

/// The agent's knowledge base, cached apart from `serve`'s index of the same agent, when a case
/// names a source.
fn knowledge(plan: &Plan, embedder: &Arc<brazen_knowledge::Embedder>) -> Result<Option<Arc<dyn Knowledge>>, String> {
    let (Some(documents), true) = (&plan.documents, plan.needs_knowledge()) else { return Ok(None) };
    let embedder = embedder.clone();
    let cache = brazen_knowledge::KnowledgeBase::default_cache_dir(&format!("{}-eval", plan.agent));
    let kb = match documents {
        Documents::Builtin => {
            let docs = agent::builtin_documents()
                .iter()
                .map(|(name, text)| brazen_knowledge::Document::new(*name, *text))
                .collect();
            brazen_knowledge::KnowledgeBase::build(embedder, docs, Some(&cache))
        }
        Documents::Folder(folder) => brazen_knowledge::KnowledgeBase::from_folder(embedder, folder, Some(&cache)),
    }
    .map_err(|e| format!("the knowledge base could not be built: {e}"))?;
    Ok(Some(Arc::new(kb)))
}

/// The documents the query of a `perform_search_based_qna` call finds, best first, as the tool
/// would search them.
fn sources(kb: &dyn Knowledge, called: &Option<(String, String)>) -> Vec<String> {
    let Some((name, arguments)) = called else { return Vec::new() };
    if name != brazen_retail::names::QNA {
        return Vec::new();
    }
    let query = serde_json::from_str::<serde_json::Value>(arguments)
        .ok()
        .and_then(|a| a.get("query").and_then(|q| q.as_str()).map(str::to_owned))
        .unwrap_or_default();
    if query.trim().is_empty() {
        return Vec::new();
    }
    match kb.search(&query, brazen_retail::QNA_PASSAGES) {
        Ok(found) => found.into_iter().map(|p| p.source).collect(),
        Err(e) => {
            tracing::warn!("knowledge search for {query:?} failed: {e}");
            Vec::new()
        }
    }
}

/// Where the routing sends each case's last words (over all the agent's tools and `respond`),
/// against the tool the case expects (`respond` when none): each case, the misroutes, and how
/// many cases got a prior and how many of those the right one.
fn routing_report(cases: &[Case], prior: &dyn brazen_providers::ToolPrior, tools: &[Tool]) -> String {
    let names: Vec<&str> = tools.iter().map(|t| t.name.as_str()).chain([brazen_llm::RESPOND]).collect();
    let (mut given, mut right, mut out, mut wrong) = (0, 0, String::new(), String::new());
    for case in cases.iter().filter(|c| c.user.is_some()) {
        let said = brazen_llm::spoken::normalize(case.user.as_deref().unwrap_or_default().trim());
        let expected = case.expect.tool.as_deref().unwrap_or(brazen_llm::RESPOND);
        let line = match prior.prior(&said, &names).first() {
            Some((tool, bias)) => {
                given += 1;
                let ok = tool == expected;
                right += ok as usize;
                let routed = format!("{tool} +{bias:.1}  ({said})");
                if !ok {
                    wrong.push_str(&format!("  {}: expected {expected}; {routed}\n", case.id));
                }
                format!("{} {:<14} {routed}\n", if ok { "ok  " } else { "MISS" }, case.id)
            }
            None => format!("--   {:<14} no prior  ({said})\n", case.id),
        };
        out.push_str(&line);
    }
    let n = cases.iter().filter(|c| c.user.is_some()).count();
    if !wrong.is_empty() {
        out.push_str("misrouted:\n");
        out.push_str(&wrong);
    }
    out.push_str(&format!(
        "routing: a prior for {given}/{n} cases; the expected tool in {right}/{given} ({:.1}%)\n",
        100.0 * right as f64 / given.max(1) as f64
    ));
    out
}

/// What the model did, in one line.
fn what(o: &Outcome) -> String {
    let mut out = match &o.called {
        Some((name, arguments)) => format!("{name}({arguments})"),
        None => format!("says {:?}", o.said),
    };
    if o.expected_source.is_some() && !o.sources.is_empty() {
        out.push_str(&format!(" → {}", o.sources.join(", ")));
    }
    out
}

/// The model the cases run on.
enum Model {
    /// The local model, run directly.
    Local(Box<LocalModel>),
    /// A remote model, with the runtime its requests run on.
    Remote(brazen_llm::openai::OpenAiLlm, tokio::runtime::Runtime),
}

/// Runs the evaluation, printing each case, the failures and then the summary.
pub fn run(args: EvalArgs) -> Result<(), String> {
    let plan = plan(&args)?;
    let (kb, routing) = match plan.needs_embedder().then(|| embedder(args.models_dir.clone())).transpose()? {
        Some(embedder) => {
            let routing = match &plan.routing {
                Some(r) => Some(brazen_providers::Routing(Arc::new(
                    brazen_knowledge::ToolRouter::build(embedder.clone(), &r.examples, r.strength)
                        .map_err(|e| format!("the agent's routing could not be built: {e}"))?,
                ))),
                None => None,
            };
            (knowledge(&plan, &embedder)?, routing)
        }
        None => (None, None),
    };
    if args.routing_only {
        let routing = routing.ok_or_else(|| format!("the agent {} has no [routing] examples", plan.agent))?;
        print!("{}", routing_report(&plan.cases, routing.0.as_ref(), &plan.tools));
        return Ok(());
    }
    let started = std::time::Instant::now();
    let (model, described) = match args.llm.as_deref() {
        None => {
            let path = match args.model.clone() {
                Some(p) => p,
                None => brazen_runtime::engines::default_llm_path(args.models_dir.clone())?,
            };
            (Model::Local(Box::new(LocalModel::load(&path).map_err(|e| e.to_string())?)), path.display().to_string())
        }
        Some(which @ ("openai" | "azure-openai")) => {
            let llm = brazen_runtime::engines::remote_llm(&args.remote, which == "azure-openai")?;
            let runtime = tokio::runtime::Runtime::new().map_err(|e| format!("cannot start the async runtime: {e}"))?;
            let described = format!("{which} at {}", llm.endpoint());
            (Model::Remote(llm, runtime), described)
        }
        Some(other) => {
            return Err(format!(
                "--llm {other:?} is not an option for eval: use openai or azure-openai (or --model FILE.gguf)"
            ));
        }
    };
    // The routing sways the local model's own scores; a remote model chooses alone.
    let routing = routing.filter(|_| matches!(model, Model::Local(_)));
    println!(
        "agent {}{}; model {described} loaded in {:.1} s; {} cases, {} tools",
        plan.agent,
        if routing.is_some() { " (routing by meaning)" } else { "" },
        started.elapsed().as_secs_f64(),
        plan.cases.len(),
        plan.tools.len()
    );
    let mut outcomes: Vec<Outcome> = Vec::new();
    for case in &plan.cases {
        let (tools, instructions) = (&plan.tools, &plan.instructions);
        let outcome = match &model {
            Model::Local(model) => eval::run_case(model, case, tools, instructions, routing.as_ref()),
            Model::Remote(llm, rt) => rt.block_on(eval::run_case_on(llm, case, tools, instructions, None)),
        };
        // A case the model cannot finish counts as a failure; the others still run.
        let mut o = outcome.unwrap_or_else(|e| Outcome::failed(case, e));
        if let (Some(kb), Some(_)) = (&kb, &case.expect.source) {
            o.sources = sources(kb.as_ref(), &o.called);
        }
        let source_missed = o.expected_source.is_some() && o.source_rank() != Some(0);
        let mark = match (o.ok, source_missed) {
            (false, _) => "FAIL",
            (true, true) => "src ",
            (true, false) => "ok  ",
        };
        println!("{mark} {:<14} {:5.2}s  {}", o.id, o.seconds, what(&o));
        std::io::stdout().flush().ok();
        outcomes.push(o);
    }
    let failures: Vec<&Outcome> = outcomes.iter().filter(|o| !o.ok).collect();
    if !failures.is_empty() {
        println!("failures:");
        for o in failures {
            println!("  {} ({}): expected {}; got {}", o.id, o.category, o.expected, what(o));
        }
    }
    let misses: Vec<&Outcome> =
        outcomes.iter().filter(|o| o.expected_source.is_some() && o.source_rank() != Some(0)).collect();
    if !misses.is_empty() {
        println!("policy source not first:");
        for o in misses {
            println!("  {}: expected {}; got {}", o.id, o.expected_source.as_deref().unwrap_or_default(), what(o));
        }
    }
    print!("{}", eval::report(&outcomes));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use brazen_retail::{CATEGORIES, names};

    fn args(agent: Option<&str>, cases: Option<&str>) -> EvalArgs {
        EvalArgs {
            model: None,
            llm: None,
            remote: Default::default(),
            agent: agent.map(str::to_owned),
            cases: cases.map(PathBuf::from),
            tools: None,
            instructions: None,
            models_dir: None,
            no_routing: false,
            routing_only: false,
        }
    }

    #[test]
    fn the_built_in_cases_cover_the_agent_as_the_issue_asks() {
        let plan = plan(&args(None, None)).unwrap();
        let cases = &plan.cases;
        assert_eq!(plan.agent, "retail");
        assert!(plan.instructions.contains("Contoso"));
        assert_eq!(plan.tools.len(), 7);
        let count = |f: &dyn Fn(&Case) -> bool| cases.iter().filter(|c| f(c)).count();
        let ordering = |c: &Case| matches!(c.category.as_str(), "order" | "delivery" | "status");
        assert!(count(&|c| ordering(c) && !c.history.is_empty()) >= 40, "multi-turn ordering");
        assert!(count(&|c| c.category == "order" && !c.history.is_empty()) >= 20, "orders after a search");
        assert!(count(&|c| c.category == "search") >= 10, "search");
        assert!(count(&|c| c.category == "policy" && c.expect.source.is_some()) >= 20, "policy with a source");
        assert!(count(&|c| c.category == "small_talk" && c.expect.tool.is_none()) >= 8, "small talk");
        assert!(count(&|c| c.category == "recovery") >= 3, "recoveries");
        // Recoveries follow a tool's error.
        for c in cases.iter().filter(|c| c.category == "recovery") {
            assert!(
                c.history.iter().any(|s| matches!(s, eval::Step::Call { result, .. } if result.get("error").is_some())),
                "{}",
                c.id
            );
        }
        let documents: Vec<&str> = agent::builtin_documents().iter().map(|(n, _)| *n).collect();
        for c in cases {
            if let Some(source) = &c.expect.source {
                assert!(documents.contains(&source.as_str()), "{}: no document {source}", c.id);
                assert_eq!(c.expect.tool.as_deref(), Some(names::QNA), "{}", c.id);
            }
            if let Some(category) = c.expect.args.get("category") {
                assert!(CATEGORIES.contains(&category.as_str().unwrap_or_default()), "{}: {category}", c.id);
            }
            // Spoken style: what the user says is lower case, without punctuation or digits.
            let user = c.user.as_deref().unwrap_or_default();
            assert!(
                user.chars().all(|ch| ch.is_ascii_lowercase() || ch == ' ' || ch == '\''),
                "{}: not spoken style: {user:?}",
                c.id
            );
        }
        for tool in &plan.tools {
            assert!(
                count(&|c| c.expect.tool.as_deref() == Some(tool.name.as_str())) >= 1,
                "no case calls {}",
                tool.name
            );
        }
        let mut ids: Vec<&str> = cases.iter().map(|c| c.id.as_str()).collect();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), cases.len(), "ids are unique");
        // Every id a case orders is in that case's history: a listed product, or one the
        // customer named in an earlier call.
        for c in cases.iter().filter(|c| c.expect.tool.as_deref() == Some(names::ORDER_PRODUCTS)) {
            let id = c.expect.args["product_id"].as_str().unwrap();
            let known = c.history.iter().any(|s| match s {
                eval::Step::Call { call, result } => {
                    result.to_string().contains(&format!("\"id\":\"{id}\"")) || call["arguments"]["product_id"] == id
                }
                _ => false,
            });
            assert!(known, "{}: {id} is not in the history", c.id);
        }
    }

    #[test]
    fn a_bad_agent_or_cases_path_is_named() {
        let e = plan(&args(Some("/nonexistent/agent.toml"), None)).unwrap_err();
        assert!(e.contains("cannot read the agent file /nonexistent/agent.toml"), "{e}");
        let e = plan(&args(None, Some("/nonexistent/cases.jsonl"))).unwrap_err();
        assert!(e.contains("cannot read the cases /nonexistent/cases.jsonl"), "{e}");
        let dir = std::env::temp_dir().join(format!("brazen-eval-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let agent = dir.join("agent.toml");
        std::fs::write(&agent, "name = 'shop'\ntools = ['get_order_status']\n").unwrap();
        let e = plan(&args(Some(agent.to_str().unwrap()), None)).unwrap_err();
        assert!(e.contains("eval/cases.jsonl") && e.contains("--cases"), "{e}");
        let cases = dir.join("cases.jsonl");
        std::fs::write(
            &cases,
            "{\"id\":\"a\",\"category\":\"x\",\"user\":\"hi\",\"expect\":{\"tool\":\"order_products\"}}\n",
        )
        .unwrap();
        let e = plan(&args(Some(agent.to_str().unwrap()), Some(cases.to_str().unwrap()))).unwrap_err();
        assert!(e.contains("case a expects the tool order_products"), "{e}");
        std::fs::write(&cases, "not json\n").unwrap();
        let e = plan(&args(None, Some(cases.to_str().unwrap()))).unwrap_err();
        assert!(e.starts_with("cases: line 1"), "{e}");
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn an_agent_file_brings_its_own_cases_tools_and_instructions() {
        let dir = std::env::temp_dir().join(format!("brazen-eval-agent-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("eval")).unwrap();
        let agent = dir.join("agent.toml");
        std::fs::write(&agent, "name = 'shop'\ntools = ['get_order_status']\n[session]\ninstructions = 'Be brief.'\n")
            .unwrap();
        std::fs::write(
            dir.join("eval/cases.jsonl"),
            "{\"id\":\"a\",\"category\":\"status\",\"user\":\"where is my order\",\"expect\":{\"tool\":\"get_order_status\"}}\n",
        )
        .unwrap();
        let plan = plan(&args(Some(agent.to_str().unwrap()), None)).unwrap();
        assert_eq!(plan.agent, "shop");
        assert_eq!(plan.instructions, "Be brief.");
        assert_eq!(plan.tools.iter().map(|t| t.name.as_str()).collect::<Vec<_>>(), ["get_order_status"]);
        assert_eq!(plan.cases.len(), 1);
        assert!(plan.documents.is_none());
        std::fs::remove_dir_all(&dir).ok();
    }
}
