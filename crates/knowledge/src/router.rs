//! Routing by meaning: which of an agent's tools a caller's words call for.
//!
//! An agent lists, for some of its tools, a few things callers say when they want that tool
//! (its routing examples, `[routing]` in the agent's TOML; `respond` stands for answering
//! without a tool). [`ToolRouter::build`] embeds them once with the knowledge base's model;
//! for a new utterance each tool scores the mean cosine similarity of its two closest examples,
//! and when the best tool stands out — similar enough ([`MIN_SIMILARITY`]) and ahead of the
//! next one — it gets a prior, [`ToolRouter::strength`] at a lead of [`FULL_LEAD`] or more and
//! proportionally less below. The language model adds that prior to its score for the tool's
//! name ([`brazen_providers::ToolPrior`]), so a clear choice of its own still wins.
//!
//! One utterance is often routed twice (its prompt computed ahead while the caller pauses,
//! then the turn): the last answer is kept.

use crate::{Embedder, KnowledgeError};
use brazen_providers::ToolPrior;
use std::sync::{Arc, Mutex};

/// Below this similarity to its closest examples a tool gets no prior, whatever its lead.
pub const MIN_SIMILARITY: f32 = 0.35;
/// The lead over the runner-up (in cosine similarity) at which the prior is at full strength.
pub const FULL_LEAD: f32 = 0.10;
/// The prior at full strength when the agent does not set one (logits).
pub const DEFAULT_STRENGTH: f32 = 4.0;
/// The most examples one tool may have.
pub const MAX_EXAMPLES: usize = 200;
/// Examples averaged for a tool's similarity.
const CLOSEST: usize = 2;
/// Characters of an utterance read (a long message is routed by its beginning).
const MAX_SAID_CHARS: usize = 1000;

/// Each tool's similarity to some words, best first.
type Similarities = Vec<(String, f32)>;

/// One tool's examples, embedded.
struct Route {
    tool: String,
    vectors: Vec<Vec<f32>>,
}

/// An agent's tools with their routing examples; see the module documentation.
pub struct ToolRouter {
    embedder: Arc<Embedder>,
    routes: Vec<Route>,
    strength: f32,
    last: Mutex<Option<(String, Similarities)>>,
}

impl ToolRouter {
    /// Embeds each tool's examples. `strength` is the prior at full lead (logits, > 0).
    pub fn build(
        embedder: Arc<Embedder>,
        examples: &[(String, Vec<String>)],
        strength: f32,
    ) -> Result<ToolRouter, KnowledgeError> {
        if !(strength.is_finite() && strength > 0.0) {
            return Err(KnowledgeError::Query(format!(
                "the routing strength must be a positive number, not {strength}"
            )));
        }
        let mut routes = Vec::new();
        for (tool, said) in examples {
            let said: Vec<&str> = said.iter().map(|s| s.trim()).filter(|s| !s.is_empty()).collect();
            if said.is_empty() {
                continue;
            }
            if said.len() > MAX_EXAMPLES {
                return Err(KnowledgeError::Query(format!(
                    "{tool} has {} routing examples; at most {MAX_EXAMPLES}",
                    said.len()
                )));
            }
            routes.push(Route { tool: tool.clone(), vectors: embedder.embed(&said)? });
        }
        Ok(ToolRouter { embedder, routes, strength, last: Mutex::new(None) })
    }

    /// The prior at full lead.
    pub fn strength(&self) -> f32 {
        self.strength
    }

    /// The tools with examples, in the order given.
    pub fn tools(&self) -> impl Iterator<Item = &str> {
        self.routes.iter().map(|r| r.tool.as_str())
    }

    /// Each tool's similarity to `said` (the mean cosine of its closest examples), best first.
    pub fn similarities(&self, said: &str) -> Result<Similarities, KnowledgeError> {
        let said: String = said.chars().take(MAX_SAID_CHARS).collect();
        if said.trim().is_empty() {
            return Ok(Vec::new());
        }
        let q = self.embedder.embed(&[said.as_str()])?.remove(0);
        let mut out: Vec<(String, f32)> = self
            .routes
            .iter()
            .map(|r| {
                let mut cos: Vec<f32> = r.vectors.iter().map(|v| v.iter().zip(&q).map(|(a, b)| a * b).sum()).collect();
                cos.sort_by(|a, b| b.total_cmp(a));
                let n = cos.len().min(CLOSEST);
                (r.tool.clone(), cos[..n].iter().sum::<f32>() / n as f32)
            })
            .collect();
        out.sort_by(|a, b| b.1.total_cmp(&a.1));
        Ok(out)
    }

    /// The prior from similarities (best first) over the tools a turn may call.
    fn prior_from(&self, similarities: &[(String, f32)], tools: &[&str]) -> Vec<(String, f32)> {
        let mut open = similarities.iter().filter(|(t, _)| tools.contains(&t.as_str()));
        let Some((best, top)) = open.next() else { return Vec::new() };
        let runner_up = open.next().map_or(0.0, |(_, s)| *s);
        let lead = top - runner_up;
        if *top < MIN_SIMILARITY || lead <= 0.0 {
            return Vec::new();
        }
        vec![(best.clone(), self.strength * (lead / FULL_LEAD).min(1.0))]
    }
}

impl ToolPrior for ToolRouter {
    fn prior(&self, said: &str, tools: &[&str]) -> Vec<(String, f32)> {
        let cached = self.last.lock().unwrap_or_else(|e| e.into_inner()).as_ref().filter(|(s, _)| s == said).cloned();
        let similarities = match cached {
            Some((_, similarities)) => similarities,
            None => match self.similarities(said) {
                Ok(s) => {
                    *self.last.lock().unwrap_or_else(|e| e.into_inner()) = Some((said.to_owned(), s.clone()));
                    s
                }
                Err(e) => {
                    tracing::warn!("routing {said:?}: {e}; the model chooses alone");
                    return Vec::new();
                }
            },
        };
        self.prior_from(&similarities, tools)
    }
}
