//! Routing hints: which of its tools a turn's words call for, as a prior the language model adds
//! to its own choice.
//!
//! A small local model picks a tool by the words it sees in the tool list; asked "can I swap
//! these jeans for a bigger size", a 1.5B model reaches for the product list because it names a
//! garment. A [`ToolPrior`] (in brazen, the agent's routing examples compared by meaning,
//! `brazen-knowledge`) says which tool such words usually call, and the model adds that to its
//! score for the tool's name: a nudge where it is unsure, not an override of a clear choice.
//!
//! [`Routed`] wraps any [`Llm`] so that every request carries the prior; an engine that cannot
//! bias its choice (a remote API) ignores it. The prior is computed where the request is turned
//! into a prompt (the local model's worker thread), not on the caller's.

use crate::{EngineStream, Llm, LlmEvent, LlmRequest};
use std::sync::Arc;

/// Says which tools a user's words call for.
pub trait ToolPrior: Send + Sync {
    /// For what the user `said`, an extra score (in the model's logits, ≥ 0) for each of
    /// `tools` that the words call for; tools left out get none. Empty when nothing stands out.
    fn prior(&self, said: &str, tools: &[&str]) -> Vec<(String, f32)>;
}

/// A [`ToolPrior`] carried by an [`LlmRequest`]; two are equal when they are the same one.
#[derive(Clone)]
pub struct Routing(pub Arc<dyn ToolPrior>);

impl std::fmt::Debug for Routing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Routing(..)")
    }
}

impl PartialEq for Routing {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

/// An [`Llm`] whose requests all carry a [`Routing`] (unless they carry one already).
pub struct Routed {
    inner: Arc<dyn Llm>,
    routing: Routing,
}

impl Routed {
    /// `inner`, with `prior` on every request.
    pub fn new(inner: Arc<dyn Llm>, prior: Arc<dyn ToolPrior>) -> Routed {
        Routed { inner, routing: Routing(prior) }
    }

    fn route(&self, mut request: LlmRequest) -> LlmRequest {
        request.routing.get_or_insert_with(|| self.routing.clone());
        request
    }
}

impl Llm for Routed {
    fn generate(&self, request: LlmRequest) -> EngineStream<LlmEvent> {
        self.inner.generate(self.route(request))
    }

    fn prepare(&self, request: LlmRequest) {
        self.inner.prepare(self.route(request))
    }

    fn computes_ahead(&self) -> bool {
        self.inner.computes_ahead()
    }

    fn end_of_turn(&self, request: LlmRequest) -> EngineStream<crate::TurnVerdict> {
        self.inner.end_of_turn(self.route(request))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    struct Seen(Mutex<Vec<bool>>);
    impl Llm for Seen {
        fn generate(&self, request: LlmRequest) -> EngineStream<LlmEvent> {
            self.0.lock().unwrap().push(request.routing.is_some());
            Box::pin(futures_util::stream::empty())
        }
        fn prepare(&self, request: LlmRequest) {
            self.0.lock().unwrap().push(request.routing.is_some());
        }
    }
    struct Always;
    impl ToolPrior for Always {
        fn prior(&self, _: &str, tools: &[&str]) -> Vec<(String, f32)> {
            tools.iter().map(|t| (t.to_string(), 1.0)).collect()
        }
    }

    #[test]
    fn every_request_carries_the_prior() {
        let seen = Arc::new(Seen(Mutex::new(Vec::new())));
        let routed = Routed::new(seen.clone(), Arc::new(Always));
        let config = brazen_protocol::session::SessionConfig::new("s", "m");
        let request = LlmRequest::new(&config, Vec::new());
        assert!(request.routing.is_none());
        drop(routed.generate(request.clone()));
        routed.prepare(request);
        assert_eq!(*seen.0.lock().unwrap(), [true, true]);
    }

    #[test]
    fn whether_it_computes_ahead_is_the_wrapped_models_answer() {
        struct Ahead;
        impl Llm for Ahead {
            fn generate(&self, _: LlmRequest) -> EngineStream<LlmEvent> {
                Box::pin(futures_util::stream::empty())
            }
            fn computes_ahead(&self) -> bool {
                true
            }
        }
        assert!(Routed::new(Arc::new(Ahead), Arc::new(Always)).computes_ahead());
        assert!(!Routed::new(Arc::new(Seen(Mutex::new(Vec::new()))), Arc::new(Always)).computes_ahead());
    }
}
