//! The local LLM as the engine's [`Llm`]: one worker thread owns the model and decodes every
//! turn in progress together, each turn's next tokens (or the next piece of its prompt) in one
//! shared forward pass ([`crate::model::Model::forward_batch`]): on a CPU a pass carrying three
//! conversations' tokens costs little more than one, so conversations do not queue behind each
//! other's replies. Each request's stream receives its events as they are generated, and
//! dropping the stream (a barge-in, `response.cancel`) stops the turn at its next step.
//!
//! Decoding pauses between tokens while urgent speech is being recognised (a user speaking over
//! the reply is heard first: whether they take the turn is decided from those words), at most
//! 0.8 s at a time. Judging whether a pausing user has finished ([`Llm::end_of_turn`]) comes
//! before prompts computed ahead (the user is waiting for it) and between two decoding steps of
//! the turns in progress; with a [`TextJudge`] the small model judges (in a fraction of the
//! time), else the conversational model itself. When no turn is in progress the worker computes prompts ahead
//! ([`Llm::prepare`]): only the latest such request is kept, a turn that arrives (or speech to
//! recognise) stops it between two blocks of its current pass, keeping the passes it finished,
//! and it waits while speech is being recognised (on the same cores, the transcript comes first:
//! the turn cannot start without it).

use crate::judge::TextJudge;
use crate::local::{GIVE_WAY_MAX, GIVE_WAY_POLL, PREFILL_CHUNK};
use crate::model::KvCache;
use crate::{Finish, Generation, LlmError, LocalModel, Output, Step};
use brazen_providers::{CancelOnDrop, EngineStream, Llm, LlmEvent, LlmRequest, LlmUsage, TurnVerdict, catch_panic};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc;

/// One turn waiting for the worker.
struct Job {
    request: LlmRequest,
    cancel: Arc<AtomicBool>,
    events: tokio::sync::mpsc::UnboundedSender<LlmEvent>,
}

/// A pause of the user's to judge from their words.
struct Judge {
    request: LlmRequest,
    cancel: Arc<AtomicBool>,
    verdict: tokio::sync::oneshot::Sender<TurnVerdict>,
}

/// What the worker is asked to do.
enum Work {
    /// Generate a turn.
    Turn(Job),
    /// Judge whether the user finished ([`Llm::end_of_turn`]); before prompts computed ahead,
    /// which then reuse what it computed.
    EndOfTurn(Judge),
    /// Compute a prompt ahead.
    Prepare(LlmRequest),
}

/// When the worker gives way to speech recognition on the same cores.
pub struct GiveWay {
    /// Prompts computed ahead wait while this holds (speech being recognised: the turn cannot
    /// start without its transcript).
    pub prepare: Box<dyn Fn() -> bool + Send>,
    /// A turn's decoding pauses between tokens while this holds (words someone waits on now:
    /// whether a user speaking over the reply takes the turn).
    pub turn: Box<dyn Fn() -> bool + Send>,
    /// Set to the number of turns being generated: optional work on the same cores (a speech
    /// recogniser's previews for computing ahead) waits for none to be.
    pub generating: Arc<AtomicUsize>,
}

/// The local model behind a job queue.
pub struct LocalLlm {
    jobs: mpsc::Sender<Work>,
    /// Set when a turn is queued: a prompt being computed ahead, or a pause being judged,
    /// stops for it.
    turn_waiting: Arc<AtomicBool>,
    /// Set when a pause is queued to be judged: a prompt being computed ahead stops for it.
    check_waiting: Arc<AtomicBool>,
    /// Set when a newer prompt to compute ahead is queued: the one being computed is stale (only
    /// the latest is kept) and stops for it, keeping the passes it finished.
    prepare_waiting: Arc<AtomicBool>,
}

impl LocalLlm {
    /// Starts the worker thread for `model` (and `judge`, which then judges pauses), giving way
    /// to speech recognition as `give_way` says.
    pub fn start(model: Arc<LocalModel>, judge: Option<TextJudge>, give_way: GiveWay) -> Result<LocalLlm, String> {
        let (jobs, queue) = mpsc::channel::<Work>();
        let turn_waiting = Arc::new(AtomicBool::new(false));
        let check_waiting = Arc::new(AtomicBool::new(false));
        let prepare_waiting = Arc::new(AtomicBool::new(false));
        let mut worker = Worker {
            model,
            judge,
            queue,
            give_way,
            waiting: turn_waiting.clone(),
            checking: check_waiting.clone(),
            newer: prepare_waiting.clone(),
            prepare: None,
            active: Vec::new(),
        };
        std::thread::Builder::new()
            .name("llm".into())
            .spawn(move || {
                // A panic in the model's code fails the turns it was working on, not the
                // thread: every later turn of every session still has a worker.
                while let Err(panic) = catch_panic(|| worker.run()) {
                    tracing::error!("the local LLM failed unexpectedly: {panic}; its turns in progress fail");
                    worker.prepare = None;
                    for turn in worker.active.drain(..) {
                        turn.outlet
                            .end(Err(LlmError::Generation(format!("the local LLM failed unexpectedly: {panic}"))));
                    }
                }
            })
            .map_err(|e| format!("cannot start the LLM worker: {e}"))?;
        Ok(LocalLlm { jobs, turn_waiting, check_waiting, prepare_waiting })
    }
}

/// The worker thread's state: the model, its queue, and what it is working on.
struct Worker {
    model: Arc<LocalModel>,
    /// The small model that judges pauses, when there is one.
    judge: Option<TextJudge>,
    queue: mpsc::Receiver<Work>,
    give_way: GiveWay,
    /// [`LocalLlm::turn_waiting`]: a turn is queued.
    waiting: Arc<AtomicBool>,
    /// [`LocalLlm::check_waiting`]: a pause is queued to be judged.
    checking: Arc<AtomicBool>,
    /// [`LocalLlm::prepare_waiting`]: a newer prompt to compute ahead is queued.
    newer: Arc<AtomicBool>,
    /// The latest prompt to compute ahead.
    prepare: Option<LlmRequest>,
    /// Turns in progress.
    active: Vec<Active>,
}

impl Worker {
    /// Works until the queue closes (the [`LocalLlm`] is dropped).
    fn run(&mut self) {
        let model = &*self.model;
        loop {
            // Turns first; of the prompts to compute ahead, only the latest matters. The flag is
            // cleared before looking, and a turn sets it before it is queued, so a turn queued
            // after the look still stops the prefill.
            self.give_way.generating.store(self.active.len(), Ordering::Relaxed);
            self.waiting.store(false, Ordering::Relaxed);
            self.checking.store(false, Ordering::Relaxed);
            self.newer.store(false, Ordering::Relaxed);
            let work = match self.queue.try_recv() {
                Ok(w) => w,
                // Turns in progress: their next step.
                Err(mpsc::TryRecvError::Empty) if !self.active.is_empty() => {
                    step(model, &mut self.active, &self.give_way.turn);
                    continue;
                }
                Err(mpsc::TryRecvError::Empty) => match self.prepare.take() {
                    Some(request) if (self.give_way.prepare)() => {
                        self.prepare = Some(request);
                        match self.queue.recv_timeout(GIVE_WAY_POLL) {
                            Ok(w) => w,
                            Err(mpsc::RecvTimeoutError::Timeout) => continue,
                            Err(mpsc::RecvTimeoutError::Disconnected) => return,
                        }
                    }
                    Some(request) => {
                        let (waiting, checking, newer) = (&self.waiting, &self.checking, &self.newer);
                        let preparing_waits = &self.give_way.prepare;
                        let busy = || {
                            waiting.load(Ordering::Relaxed)
                                || checking.load(Ordering::Relaxed)
                                || newer.load(Ordering::Relaxed)
                                || preparing_waits()
                        };
                        if let Some(judge) = &self.judge {
                            // The user speaks next: their first pause is judged from this.
                            if let Err(e) = judge.prepare(&request) {
                                tracing::debug!("preparing the turn judge failed: {e}");
                            }
                        }
                        prefill(model, &request, &busy);
                        // Stopped to give way: resumed later from where it got to (unless a
                        // newer one replaces it).
                        if !waiting.load(Ordering::Relaxed)
                            && !newer.load(Ordering::Relaxed)
                            && (preparing_waits() || checking.load(Ordering::Relaxed))
                        {
                            self.prepare = Some(request);
                        }
                        continue;
                    }
                    None => match self.queue.recv() {
                        Ok(w) => w,
                        Err(_) => return,
                    },
                },
                Err(mpsc::TryRecvError::Disconnected) => return,
            };
            match work {
                Work::Turn(job) if !job.cancel.load(Ordering::Relaxed) => {
                    if let Some(turn) = begin(model, job) {
                        self.active.push(turn);
                    }
                }
                Work::Turn(_) => {}
                Work::EndOfTurn(judge) if !judge.cancel.load(Ordering::Relaxed) => {
                    let waiting = &self.waiting;
                    let stop = || judge.cancel.load(Ordering::Relaxed) || waiting.load(Ordering::Relaxed);
                    let started = std::time::Instant::now();
                    let judged = match &self.judge {
                        Some(small) => small.judge(&judge.request, &stop).map_err(|e| {
                            tracing::debug!("the turn judge failed: {e}");
                            e.to_string()
                        }),
                        None => match model.turn(&judge.request, &stop) {
                            Ok(turn) => model.end_of_turn(&turn, &stop).map_err(|e| {
                                tracing::debug!("judging a pause from its words failed: {e}");
                                e.to_string()
                            }),
                            Err(e) => Err(e.to_string()),
                        },
                    };
                    let verdict = match judged {
                        Ok(Some(p)) => TurnVerdict::Probability(p),
                        Ok(None) => TurnVerdict::Failed("stopped for a turn".into()),
                        Err(e) => TurnVerdict::Failed(e),
                    };
                    tracing::debug!(
                        "judged a pause from its words in {:.0} ms{}: {verdict:?}",
                        started.elapsed().as_secs_f64() * 1000.0,
                        if self.judge.is_some() { " (the small judge)" } else { "" }
                    );
                    let _ = judge.verdict.send(verdict);
                }
                Work::EndOfTurn(_) => {}
                Work::Prepare(request) => self.prepare = Some(request),
            }
        }
    }
}

/// Computes a prompt ahead, stopping when a turn arrives; failures only cost the head start.
fn prefill(model: &LocalModel, request: &LlmRequest, stop: &dyn Fn() -> bool) {
    let started = std::time::Instant::now();
    match model.turn(request, stop) {
        Ok(turn) => match model.prefill(&turn, stop) {
            Ok(computed) => tracing::debug!(
                "computed {computed} prompt tokens ahead in {:.0} ms{}",
                started.elapsed().as_secs_f64() * 1000.0,
                if stop() { " (gave way)" } else { "" }
            ),
            Err(e) => tracing::debug!("computing a prompt ahead failed: {e}"),
        },
        Err(e) => tracing::debug!("no prompt to compute ahead: {e}"),
    }
}

/// A turn in progress: its generation, and where its events go.
struct Active {
    generation: Generation,
    outlet: Outlet,
}

/// Where a turn's events go, and what it took.
struct Outlet {
    job: Job,
    started: std::time::Instant,
    /// When its first text or call came.
    first_output: Option<std::time::Duration>,
    /// The id of the call being made.
    call_id: String,
}

impl Outlet {
    /// Sends one output of the turn to its stream.
    fn deliver(&mut self, output: Output) {
        let event = match output {
            Output::Text(t) => LlmEvent::TextDelta(t),
            Output::CallStart(name) => {
                self.call_id = crate::new_call_id();
                LlmEvent::ToolCallStart { call_id: self.call_id.clone(), name }
            }
            Output::CallDone { arguments, .. } => {
                LlmEvent::ToolCallArguments { call_id: self.call_id.clone(), delta: arguments }
            }
        };
        self.first_output.get_or_insert_with(|| self.started.elapsed());
        let _ = self.job.events.send(event);
    }

    /// Ends the turn: its last event, and a log line of what it took.
    fn end(self, result: Result<Finish, LlmError>) {
        let send = |e: LlmEvent| {
            let _ = self.job.events.send(e);
        };
        match result {
            Ok(f) => {
                tracing::debug!(
                    "turn: prompt {} tokens ({} cached), first output after {:.0} ms, {} tokens in {:.0} ms, {} passes{}",
                    f.prompt_tokens,
                    f.cached_tokens,
                    self.first_output.unwrap_or_default().as_secs_f64() * 1000.0,
                    f.output_tokens,
                    self.started.elapsed().as_secs_f64() * 1000.0,
                    f.passes,
                    if f.cancelled { ", cancelled" } else { "" }
                );
                if !f.cancelled {
                    send(LlmEvent::Done {
                        usage: LlmUsage {
                            input_tokens: f.prompt_tokens as u64,
                            cached_tokens: f.cached_tokens as u64,
                            output_tokens: f.output_tokens as u64,
                        },
                        hit_token_cap: f.hit_token_cap,
                    });
                }
            }
            Err(e) => send(LlmEvent::Failed(e.to_string())),
        }
    }
}

/// Starts `job`'s turn; `None` when it already ended (failed, or cancelled meanwhile).
fn begin(model: &LocalModel, job: Job) -> Option<Active> {
    let turn = match model.turn(&job.request, &|| job.cancel.load(Ordering::Relaxed)) {
        Ok(t) => t,
        Err(crate::request::RequestError::Cancelled) => return None,
        Err(e) => {
            let _ = job.events.send(LlmEvent::Failed(e.to_string()));
            return None;
        }
    };
    let outlet = Outlet { job, started: std::time::Instant::now(), first_output: None, call_id: String::new() };
    match Generation::start(model, turn) {
        Ok(generation) => Some(Active { generation, outlet }),
        Err(e) => {
            outlet.end(Err(e));
            None
        }
    }
}

/// Prompt tokens a turn computes per pass while other turns are decoding in the same passes.
const SHARED_PREFILL_CHUNK: usize = 16;

/// One decoding step of every turn in progress: each chooses its next tokens (and streams what
/// they say) or takes the next piece of its prompt, then one forward pass computes them all.
/// Turns that are over leave. The step waits first while `give_way` holds (urgent speech being
/// recognised on the same cores), at most [`GIVE_WAY_MAX`].
fn step(model: &LocalModel, active: &mut Vec<Active>, give_way: &dyn Fn() -> bool) {
    let paused = std::time::Instant::now();
    let live = |active: &[Active]| active.iter().any(|a| !a.outlet.job.cancel.load(Ordering::Relaxed));
    while give_way() && live(active) && paused.elapsed() < GIVE_WAY_MAX {
        std::thread::sleep(GIVE_WAY_POLL);
    }
    // A prompt being computed shares the pass with the others' next tokens in small chunks, so
    // their replies stall little; alone it takes larger, faster ones.
    let decoding = active.iter().any(|a| !a.generation.prompting());
    let chunk = if decoding { SHARED_PREFILL_CHUNK } else { PREFILL_CHUNK };
    let mut over = Vec::new();
    // One prompt at a time: turns that start together often share their instructions, which the
    // next one then reuses.
    let mut prompting = false;
    for (i, a) in active.iter_mut().enumerate() {
        let cancel = a.outlet.job.cancel.clone();
        match a.generation.advance(model, &cancel, chunk, !prompting, &mut |o| a.outlet.deliver(o)) {
            Ok(Step::Pass) => prompting |= a.generation.prompting(),
            Ok(Step::Waiting) => {}
            Ok(Step::Finished(f)) => over.push((i, Ok(f))),
            Err(e) => over.push((i, Err(e))),
        }
    }
    for (i, result) in over.into_iter().rev() {
        active.remove(i).outlet.end(result);
    }
    let mut runs: Vec<(&[u32], &mut KvCache)> = Vec::new();
    let mut fed = Vec::new();
    for (i, a) in active.iter_mut().enumerate() {
        if let Some(run) = a.generation.pending() {
            runs.push(run);
            fed.push(i);
        }
    }
    if runs.is_empty() {
        return;
    }
    let computed = model.model().forward_batch(&mut runs);
    drop(runs);
    let mut failed = Vec::new();
    match computed {
        Ok(logits) => {
            for (&i, l) in fed.iter().zip(&logits) {
                if let Err(e) = active[i].generation.fed(model, l) {
                    failed.push((i, e));
                }
            }
        }
        Err(e) => failed.extend(fed.iter().map(|&i| (i, LlmError::Generation(e.to_string())))),
    }
    for (i, e) in failed.into_iter().rev() {
        active.remove(i).outlet.end(Err(e));
    }
}

impl Llm for LocalLlm {
    fn generate(&self, request: LlmRequest) -> EngineStream<LlmEvent> {
        let (events, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let cancel = Arc::new(AtomicBool::new(false));
        self.turn_waiting.store(true, Ordering::Relaxed);
        if self.jobs.send(Work::Turn(Job { request, cancel: cancel.clone(), events: events.clone() })).is_err() {
            let _ = events.send(LlmEvent::Failed("the LLM worker stopped".into()));
        }
        drop(events);
        let guard = CancelOnDrop(cancel);
        Box::pin(futures_util::stream::poll_fn(move |cx| {
            let _keep = &guard;
            rx.poll_recv(cx)
        }))
    }

    fn end_of_turn(&self, request: LlmRequest) -> EngineStream<TurnVerdict> {
        let (verdict, rx) = tokio::sync::oneshot::channel();
        let cancel = Arc::new(AtomicBool::new(false));
        // A prompt being computed ahead stops for it: the user is waiting.
        self.check_waiting.store(true, Ordering::Relaxed);
        if self.jobs.send(Work::EndOfTurn(Judge { request, cancel: cancel.clone(), verdict })).is_err() {
            return Box::pin(futures_util::stream::iter([TurnVerdict::Failed("the LLM worker stopped".into())]));
        }
        let guard = CancelOnDrop(cancel);
        Box::pin(futures_util::stream::once(async move {
            let _keep = guard;
            rx.await.unwrap_or_else(|_| TurnVerdict::Failed("the local LLM gave no verdict".into()))
        }))
    }

    fn prepare(&self, request: LlmRequest) {
        self.prepare_waiting.store(true, Ordering::Relaxed);
        let _ = self.jobs.send(Work::Prepare(request));
    }

    fn computes_ahead(&self) -> bool {
        true
    }
}
