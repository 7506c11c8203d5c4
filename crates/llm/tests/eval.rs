//! The retail tool-calling evaluation on the default model, as `brazen eval` runs it, with
//! floors that catch a regression (the figures measured with it are in bench/README.md).

use brazen_llm::LocalModel;
use brazen_llm::eval::{RETAIL_CASES, RETAIL_INSTRUCTIONS, RETAIL_TOOLS, parse_cases, parse_tools, report, run_case};
use brazen_models::{Manifest, Store, progress};

#[test]
fn the_retail_evaluation_stays_above_its_floors() {
    let store = Store::new(Store::default_root());
    let dir = store.install(Manifest::builtin().get("qwen2.5-coder-1.5b").unwrap(), &progress()).unwrap();
    let model = LocalModel::load(&dir.join("model.gguf")).unwrap();
    let tools = parse_tools(RETAIL_TOOLS).unwrap();
    let outcomes: Vec<_> = parse_cases(RETAIL_CASES)
        .unwrap()
        .iter()
        .map(|c| run_case(&model, c, &tools, RETAIL_INSTRUCTIONS.trim(), None).unwrap())
        .collect();
    for o in outcomes.iter().filter(|o| !o.ok) {
        eprintln!("FAIL {}: {:?} {:?}", o.id, o.called, o.said);
    }
    eprintln!("{}", report(&outcomes));
    let share = |f: &dyn Fn(&&brazen_llm::eval::Outcome) -> bool, of: &dyn Fn(&&brazen_llm::eval::Outcome) -> bool| {
        let all: Vec<_> = outcomes.iter().filter(of).collect();
        all.iter().filter(|o| f(o)).count() as f64 / all.len() as f64
    };
    let tools_right = share(&|o| o.ok, &|o| o.expects_tool);
    let none_right = share(&|o| o.called.is_none(), &|o| !o.expects_tool);
    let overall = share(&|o| o.ok, &|_| true);
    assert!(tools_right >= 0.88, "tool + arguments {:.1}%", tools_right * 100.0);
    assert!(none_right >= 0.85, "no tool when none is needed {:.1}%", none_right * 100.0);
    assert!(overall >= 0.85, "overall {:.1}%", overall * 100.0);
}
