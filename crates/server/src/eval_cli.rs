//! `brazen eval`: the local LLM's tool-calling evaluation (accuracy per category and overall).

use brazen_llm::LocalModel;
use brazen_llm::eval::{self, Outcome};
use std::io::Write;
use std::path::PathBuf;

/// What to evaluate.
pub struct EvalArgs {
    /// A GGUF file (default: the installed default model).
    pub model: Option<PathBuf>,
    /// The cases (JSON lines; default: the built-in retail set).
    pub cases: Option<PathBuf>,
    /// The tools (JSON array; default: the retail tools).
    pub tools: Option<PathBuf>,
    /// The system prompt (default: the retail agent's).
    pub instructions: Option<PathBuf>,
    /// Where models are installed.
    pub models_dir: Option<PathBuf>,
}

fn read(path: &Option<PathBuf>, builtin: &str) -> Result<String, String> {
    match path {
        Some(p) => std::fs::read_to_string(p).map_err(|e| format!("cannot read {}: {e}", p.display())),
        None => Ok(builtin.to_owned()),
    }
}

/// Runs the evaluation, printing each case and then the summary.
pub fn run(args: EvalArgs) -> Result<(), String> {
    let cases = eval::parse_cases(&read(&args.cases, eval::RETAIL_CASES)?).map_err(|e| format!("cases: {e}"))?;
    let tools = eval::parse_tools(&read(&args.tools, eval::RETAIL_TOOLS)?).map_err(|e| format!("tools: {e}"))?;
    let instructions = read(&args.instructions, eval::RETAIL_INSTRUCTIONS)?;
    let path = match args.model {
        Some(p) => p,
        None => brazen_runtime::engines::default_llm_path(args.models_dir)?,
    };
    let started = std::time::Instant::now();
    let model = LocalModel::load(&path).map_err(|e| e.to_string())?;
    println!("model {} loaded in {:.1} s; {} cases", path.display(), started.elapsed().as_secs_f64(), cases.len());
    let mut outcomes: Vec<Outcome> = Vec::new();
    for case in &cases {
        let o =
            eval::run_case(&model, case, &tools, instructions.trim()).map_err(|e| format!("case {}: {e}", case.id))?;
        let what = match &o.called {
            Some((name, arguments)) => format!("{name}({arguments})"),
            None => format!("says {:?}", o.said),
        };
        println!("{} {:<10} {:5.2}s  {what}", if o.ok { "ok  " } else { "FAIL" }, o.id, o.seconds);
        std::io::stdout().flush().ok();
        outcomes.push(o);
    }
    print!("{}", eval::report(&outcomes));
    Ok(())
}
