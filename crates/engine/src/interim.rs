//! [`Interim`]: the short line a spoken response says while a server-side tool runs or the model
//! is slow to start its answer (Voice Live's `interim_response`), so the user is not left in
//! silence. It owns its trigger state and, for `llm_interim_response`, the model job writing
//! the line; the [`Response`](crate::responder::Response) speaks what it returns.
//!
//! At most one line per response: the first trigger wins, and the answer's own first words
//! disarm it (an LLM line still being written is then cancelled).

use crate::JobId;
use brazen_protocol::{InterimResponse, InterimSource};
use brazen_providers::LlmEvent;
use std::time::{Duration, Instant};

/// Where an interim line stands.
enum State {
    /// Waiting for a trigger; the latency trigger fires at the instant, if set.
    Armed(Option<Instant>),
    /// The model is writing the line (job, text so far).
    Writing(JobId, String),
    /// Said, or no longer wanted.
    Spent,
}

/// What the response does after a trigger.
#[derive(Debug, PartialEq)]
pub(crate) enum Fire {
    /// Say this line now.
    Say(String),
    /// Ask the model for a line with these instructions and token cap.
    Write {
        /// What the model is told.
        instructions: String,
        /// Its token cap.
        max_tokens: u64,
    },
}

/// One response's interim line.
pub(crate) struct Interim {
    config: InterimResponse,
    /// Picks the static text (varies from response to response).
    pick: usize,
    state: State,
}

impl Interim {
    /// Armed for a response that starts at `now`; `pick` chooses among static texts.
    pub(crate) fn new(config: InterimResponse, pick: usize, now: Instant) -> Self {
        let at = config.on_latency.then(|| now + Duration::from_millis(config.latency_threshold_ms));
        Interim { config, pick, state: State::Armed(at) }
    }

    /// When the latency trigger fires, while it is armed.
    pub(crate) fn deadline(&self) -> Option<Instant> {
        match self.state {
            State::Armed(at) => at,
            _ => None,
        }
    }

    /// The model job writing the line, if any.
    pub(crate) fn job(&self) -> Option<JobId> {
        match self.state {
            State::Writing(job, _) => Some(job),
            _ => None,
        }
    }

    /// A server-side tool started: fires when the `tool` trigger is set and nothing was said.
    pub(crate) fn on_tool_started(&mut self) -> Option<Fire> {
        if !self.config.on_tool || !matches!(self.state, State::Armed(_)) {
            return None;
        }
        Some(self.fire())
    }

    /// Time passed: fires when the latency threshold is reached and nothing was said.
    pub(crate) fn on_tick(&mut self, now: Instant) -> Option<Fire> {
        match self.state {
            State::Armed(Some(at)) if at <= now => Some(self.fire()),
            _ => None,
        }
    }

    fn fire(&mut self) -> Fire {
        match &self.config.source {
            InterimSource::Static { texts } => {
                self.state = State::Spent;
                Fire::Say(texts[self.pick % texts.len().max(1)].clone())
            }
            InterimSource::Llm { instructions, max_completion_tokens } => {
                // The job id is set by `writing`, once the response has made the request.
                Fire::Write { instructions: instructions.clone(), max_tokens: *max_completion_tokens }
            }
        }
    }

    /// The model job `job` writes the line.
    pub(crate) fn writing(&mut self, job: JobId) {
        self.state = State::Writing(job, String::new());
    }

    /// The answer itself started: no line any more. Returns the job writing one, to cancel.
    pub(crate) fn answer_started(&mut self) -> Option<JobId> {
        let job = self.job();
        self.state = State::Spent;
        job
    }

    /// An event of the job writing the line: the line to say once it is written.
    pub(crate) fn on_llm(&mut self, event: LlmEvent) -> Option<String> {
        let State::Writing(_, text) = &mut self.state else { return None };
        match event {
            LlmEvent::TextDelta(delta) => {
                text.push_str(&delta);
                None
            }
            LlmEvent::Done { .. } => {
                let line = std::mem::take(text).trim().to_owned();
                self.state = State::Spent;
                (!line.is_empty()).then_some(line)
            }
            // No line then: the answer itself still comes (the main round reports its own errors).
            LlmEvent::Failed(_) => {
                self.state = State::Spent;
                None
            }
            LlmEvent::ToolCallStart { .. } | LlmEvent::ToolCallArguments { .. } => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use brazen_providers::LlmUsage;

    fn config(on_tool: bool, on_latency: bool, source: InterimSource) -> InterimResponse {
        InterimResponse { source, on_tool, on_latency, latency_threshold_ms: 1000 }
    }

    fn fixed() -> InterimSource {
        InterimSource::Static { texts: vec!["A.".into(), "B.".into()] }
    }

    #[test]
    fn the_latency_trigger_fires_once_at_the_threshold() {
        let t0 = Instant::now();
        let mut i = Interim::new(config(false, true, fixed()), 1, t0);
        assert_eq!(i.deadline(), Some(t0 + Duration::from_millis(1000)));
        assert_eq!(i.on_tick(t0 + Duration::from_millis(999)), None);
        assert_eq!(i.on_tool_started(), None, "no tool trigger");
        assert_eq!(i.on_tick(t0 + Duration::from_millis(1000)), Some(Fire::Say("B.".into())));
        assert_eq!(i.deadline(), None);
        assert_eq!(i.on_tick(t0 + Duration::from_secs(5)), None);
    }

    #[test]
    fn the_answer_disarms_it() {
        let t0 = Instant::now();
        let mut i = Interim::new(config(true, true, fixed()), 0, t0);
        assert_eq!(i.answer_started(), None);
        assert_eq!(i.on_tool_started(), None);
        assert_eq!(i.on_tick(t0 + Duration::from_secs(3)), None);
    }

    #[test]
    fn a_written_line_is_said_when_done_unless_the_answer_came_first() {
        let t0 = Instant::now();
        let source = InterimSource::Llm { instructions: "be brief".into(), max_completion_tokens: 20 };
        let mut i = Interim::new(config(true, false, source.clone()), 0, t0);
        assert_eq!(i.deadline(), None);
        assert!(matches!(i.on_tool_started(), Some(Fire::Write { max_tokens: 20, .. })));
        i.writing(7);
        assert_eq!(i.on_llm(LlmEvent::TextDelta(" Checking".into())), None);
        assert_eq!(i.on_llm(LlmEvent::TextDelta(" now. ".into())), None);
        let done = LlmEvent::Done { usage: LlmUsage::default(), hit_token_cap: false };
        assert_eq!(i.on_llm(done.clone()), Some("Checking now.".into()));
        let mut j = Interim::new(config(true, false, source), 0, t0);
        j.on_tool_started();
        j.writing(8);
        assert_eq!(j.answer_started(), Some(8), "the line being written is cancelled");
        assert_eq!(j.on_llm(done), None);
    }
}
