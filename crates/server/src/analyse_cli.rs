//! `brazen analyse [ID | --all]`: (re-)runs the call analysis of stored conversations with the
//! configured language model and records each result (or its failure) in the database, as the
//! server does when a call ends.

use crate::config::Config;
use brazen_providers::Llm;
use brazen_store::Store;
use std::sync::Arc;

/// Which conversations to analyse.
pub enum Which {
    /// This one.
    One(String),
    /// Every stored conversation in which the customer said something.
    All,
    /// The ones still waiting (pending, or failed and not yet given up).
    Pending,
}

/// Runs the analyses; `Err` when the database or model cannot be used, or when any analysis
/// failed (each failure is printed and recorded).
pub async fn run(cfg: &Config, which: Which) -> Result<(), String> {
    let url = cfg.database_url.clone().unwrap_or_else(|| Store::default_url(&cfg.data_dir()));
    let store = Store::open(&url).await.map_err(|e| e.to_string())?;
    let ids = match which {
        Which::One(id) => {
            if store.conversation(&id).await.map_err(|e| e.to_string())?.is_none() {
                return Err(format!("there is no conversation '{id}' in {url}"));
            }
            vec![id]
        }
        Which::Pending => store.pending_analyses().await.map_err(|e| e.to_string())?,
        Which::All => {
            let mut ids = Vec::new();
            let mut offset = 0;
            loop {
                let page = store.conversations(500, offset).await.map_err(|e| e.to_string())?;
                ids.extend(page.items.iter().filter(|c| c.entries > 0).map(|c| c.conversation.id.clone()));
                offset += page.items.len() as i64;
                if page.items.is_empty() || offset >= page.total {
                    break;
                }
            }
            ids
        }
    };
    if ids.is_empty() {
        println!("nothing to analyse");
        return Ok(());
    }
    let llm = language_model(cfg)?;
    let mut failed = 0;
    for id in &ids {
        match brazen_retail::analyse_conversation(&store, llm.as_ref(), id).await {
            Ok(a) => println!(
                "{id}: rating {}/5, {} ({}), reason: {}; product: {}",
                a.rating, a.customer_sentiment, a.customer_satisfaction, a.call_reason, a.product
            ),
            Err(e) => {
                failed += 1;
                println!("{id}: FAILED: {e}");
            }
        }
    }
    store.close().await;
    if failed > 0 {
        return Err(format!("{failed} of {} analyses failed (recorded; `brazen analyse` retries them)", ids.len()));
    }
    Ok(())
}

/// The configured language model (`echo`: the stand-in, which cannot write an analysis).
fn language_model(cfg: &Config) -> Result<Arc<dyn Llm>, String> {
    // Nothing is judged here: no turn judge to install or load.
    let choice = brazen_runtime::engines::EngineChoice { turn_judge: "llm".into(), ..cfg.engine_choice() };
    Ok(brazen_runtime::engines::language_model(&choice, None)?.1)
}
