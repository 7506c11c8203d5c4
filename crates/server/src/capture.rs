//! Conversation capture and call analysis: every session's transcript (both sides, tool calls
//! and their outputs, with times) is written to the database as it happens ([`StoreRecorder`],
//! the runtime's [`Recorder`]); when a session ends, its call is analysed by the language model
//! ([`Analyst`]) — after the sessions that are talking, never before them — and a failure is
//! recorded and retried, never lost.

use brazen_protocol::{Content, Item, ItemBody, Role};
use brazen_providers::Llm;
use brazen_runtime::{Recorder, Restored, Runtime};
use brazen_store::{Entry, EntryKind, EntryRole, Store, StoreError};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::Duration;
use tokio::sync::mpsc;

/// How long a finished call's analysis waits for busy sessions before it runs anyway.
const MAX_DEFER: Duration = Duration::from_secs(120);
/// How often a deferred analysis looks again, and how long a failed one waits to retry.
const POLL: Duration = Duration::from_secs(2);
const RETRY: Duration = Duration::from_secs(30);

/// One write, in the order the session made it.
enum Write {
    Start {
        session: String,
        at: i64,
    },
    Entry {
        session: String,
        entry: Entry,
    },
    /// The end; `analyse` when the customer said or wrote anything.
    End {
        session: String,
        at: i64,
        analyse: bool,
    },
    /// Everything before it is written: answer.
    Flush(tokio::sync::oneshot::Sender<()>),
}

/// Per-session numbering: an item keeps its first position and time when it changes later.
#[derive(Default)]
struct Numbering {
    /// The stored conversation the session writes to (its own id, or the one it continues).
    conversation: String,
    /// Item id → (position, when it was first seen).
    seq: HashMap<String, (i64, i64)>,
    /// The next position.
    next: i64,
    /// Tool names by call id (an output item carries only the id).
    calls: HashMap<String, String>,
    /// The user said or wrote something.
    heard_user: bool,
}

/// Writes each session's conversation to the store, in order, on a task of its own (the
/// session never waits for the database).
pub struct StoreRecorder {
    writes: mpsc::UnboundedSender<Write>,
    numbering: Mutex<HashMap<String, Numbering>>,
}

impl StoreRecorder {
    /// A recorder writing to `store` as agent `agent`; ended calls go to `analyst` when set.
    ///
    /// A write the database refuses for being away or full ([`StoreError::Unavailable`]:
    /// unreachable, restarting, disk full) is retried, in order, until it is taken — every write
    /// is idempotent — while the sessions go on; later writes wait behind it, in memory. A write
    /// refused for what it holds is logged and dropped, so it cannot hold up the others.
    pub fn start(store: Store, agent: String, analyst: Option<Arc<Analyst>>) -> Arc<StoreRecorder> {
        let (tx, mut rx) = mpsc::unbounded_channel::<Write>();
        tokio::spawn(async move {
            let mut failing_since: Option<std::time::Instant> = None;
            while let Some(write) = rx.recv().await {
                let mut wait = RETRY_FIRST;
                loop {
                    match perform(&store, &agent, analyst.as_deref(), &write).await {
                        Ok(()) => {
                            if let Some(since) = failing_since.take() {
                                tracing::info!(
                                    "the database takes the conversations' writes again (after {} s)",
                                    since.elapsed().as_secs()
                                );
                            }
                            break;
                        }
                        Err(StoreError::Unavailable(e)) => {
                            if failing_since.is_none() {
                                tracing::warn!(
                                    "the database failed ({e}); the conversations' writes wait and are retried"
                                );
                                failing_since = Some(std::time::Instant::now());
                            }
                            tokio::time::sleep(wait).await;
                            wait = (wait * 2).min(RETRY_MAX);
                        }
                        Err(e) => {
                            tracing::warn!("the conversation could not be stored: {e}");
                            break;
                        }
                    }
                }
                if let Write::Flush(done) = write {
                    let _ = done.send(());
                }
            }
        });
        Arc::new(StoreRecorder { writes: tx, numbering: Mutex::new(HashMap::new()) })
    }

    /// Waits until every write handed over so far is done (at shutdown).
    pub async fn flush(&self) {
        let (done, written) = tokio::sync::oneshot::channel();
        if self.writes.send(Write::Flush(done)).is_ok() {
            let _ = written.await;
        }
    }
}

impl Recorder for StoreRecorder {
    fn opened(&self, session: &str, at_ms: i64) {
        if let Ok(mut n) = self.numbering.lock() {
            n.insert(session.to_owned(), Numbering { conversation: session.to_owned(), ..Numbering::default() });
        }
        let _ = self.writes.send(Write::Start { session: session.to_owned(), at: at_ms });
    }

    fn resumed(&self, session: &str, conversation: &str, items: &[Restored], at_ms: i64) {
        if let Ok(mut n) = self.numbering.lock() {
            let numbering = Numbering {
                conversation: conversation.to_owned(),
                // Written again as they were: same place, same time.
                seq: items.iter().map(|i| (i.item.id.clone(), (i.seq, i.at_ms))).collect(),
                next: items.iter().map(|i| i.seq + 1).max().unwrap_or(0),
                // A conversation resumed is analysed again when it ends, with what was said before.
                heard_user: !items.is_empty(),
                ..Numbering::default()
            };
            n.insert(session.to_owned(), numbering);
        }
        // In case it was never written (ignored when it was).
        let _ = self.writes.send(Write::Start { session: conversation.to_owned(), at: at_ms });
    }

    fn item(&self, session: &str, item: &Item, at_ms: i64) {
        let Ok(mut all) = self.numbering.lock() else { return };
        let Some(numbering) = all.get_mut(session) else { return };
        let (seq, first_at) = match numbering.seq.get(&item.id) {
            Some(known) => *known,
            None => {
                let known = (numbering.next, at_ms);
                numbering.next += 1;
                numbering.seq.insert(item.id.clone(), known);
                known
            }
        };
        let Some(entry) = entry_of(item, seq, first_at, &mut numbering.calls) else { return };
        numbering.heard_user |= entry.role == EntryRole::User;
        let _ = self.writes.send(Write::Entry { session: numbering.conversation.clone(), entry });
    }

    fn closed(&self, session: &str, at_ms: i64) {
        let Some(numbering) = self.numbering.lock().ok().and_then(|mut n| n.remove(session)) else { return };
        let write = Write::End { session: numbering.conversation, at: at_ms, analyse: numbering.heard_user };
        let _ = self.writes.send(write);
    }
}

/// The item a stored entry was made from, as a resumed session starts with it (`id` names it
/// in the session): a message with its text, a function call, or a call's output.
pub fn item_of(entry: &Entry, id: String) -> Item {
    let body = match entry.kind {
        EntryKind::Message => {
            let (role, content) = match entry.role {
                EntryRole::User => (Role::User, Content::InputText(entry.text.clone())),
                EntryRole::System => (Role::System, Content::InputText(entry.text.clone())),
                EntryRole::Assistant | EntryRole::Tool => (Role::Assistant, Content::Text(entry.text.clone())),
            };
            ItemBody::Message { role, content: vec![content] }
        }
        EntryKind::FunctionCall => ItemBody::FunctionCall {
            call_id: entry.call_id.clone().unwrap_or_default(),
            name: entry.name.clone().unwrap_or_default(),
            arguments: entry.text.clone(),
        },
        EntryKind::FunctionCallOutput => ItemBody::FunctionCallOutput {
            call_id: entry.call_id.clone().unwrap_or_default(),
            output: entry.text.clone(),
        },
    };
    Item { id, status: brazen_protocol::ItemStatus::Completed, body }
}

/// The first wait before a failed write is tried again, and the longest.
const RETRY_FIRST: Duration = Duration::from_millis(200);
const RETRY_MAX: Duration = Duration::from_secs(5);

/// Carries out one write.
async fn perform(store: &Store, agent: &str, analyst: Option<&Analyst>, write: &Write) -> Result<(), StoreError> {
    match write {
        Write::Flush(_) => Ok(()),
        Write::Start { session, at } => store.start_conversation(session, session, agent, *at).await,
        Write::Entry { session, entry } => store.append_entry(session, entry).await,
        Write::End { session, at, analyse } => {
            store.end_conversation(session, *at).await?;
            if let (true, Some(analyst)) = (*analyse, analyst) {
                // Pending first, so a crash before the analysis leaves it to the next start.
                store.mark_analysis_pending(session).await?;
                analyst.enqueue(session.clone()).await;
            }
            Ok(())
        }
    }
}

/// The stored entry of an item (`None`: nothing to keep yet, e.g. a message still empty).
fn entry_of(item: &Item, seq: i64, at_ms: i64, calls: &mut HashMap<String, String>) -> Option<Entry> {
    let (role, kind, name, call_id) = match &item.body {
        ItemBody::Message { role, .. } => {
            let role = match role {
                Role::User => EntryRole::User,
                Role::Assistant => EntryRole::Assistant,
                Role::System => EntryRole::System,
            };
            (role, EntryKind::Message, None, None)
        }
        ItemBody::FunctionCall { call_id, name, .. } => {
            calls.insert(call_id.clone(), name.clone());
            (EntryRole::Assistant, EntryKind::FunctionCall, Some(name.clone()), Some(call_id.clone()))
        }
        ItemBody::FunctionCallOutput { call_id, .. } => {
            (EntryRole::Tool, EntryKind::FunctionCallOutput, calls.get(call_id).cloned(), Some(call_id.clone()))
        }
    };
    let text = item.text();
    if kind == EntryKind::Message && text.trim().is_empty() {
        return None;
    }
    Some(Entry { seq, at_ms, role, kind, name, call_id, text })
}

/// Analyses ended calls one at a time, when no session is talking (or after [`MAX_DEFER`]).
pub struct Analyst {
    queue: mpsc::Sender<String>,
    /// The runtime whose open sessions go first (set once it exists).
    runtime: Arc<OnceLock<Weak<Runtime>>>,
}

impl Analyst {
    /// Starts the worker over `store` with `llm`; calls left pending by an earlier run (a crash,
    /// a failure) are queued first.
    pub fn start(store: Store, llm: Arc<dyn Llm>) -> Arc<Analyst> {
        let runtime: Arc<OnceLock<Weak<Runtime>>> = Arc::default();
        let watched = runtime.clone();
        let (tx, mut rx) = mpsc::channel::<String>(1024);
        let retry = tx.clone();
        let pending_store = store.clone();
        let requeue = tx.clone();
        tokio::spawn(async move {
            match pending_store.pending_analyses().await {
                Ok(ids) => {
                    for id in ids {
                        let _ = requeue.send(id).await;
                    }
                }
                Err(e) => tracing::warn!("cannot read the pending call analyses: {e}"),
            }
        });
        tokio::spawn(async move {
            while let Some(id) = rx.recv().await {
                wait_for_quiet(watched.get()).await;
                // A session that opens meanwhile goes first: the analysis is dropped (its model
                // job with it) and run again once the server is quiet.
                let analysis = brazen_retail::analyse_conversation(&store, llm.as_ref(), &id);
                let outcome = tokio::select! {
                    outcome = analysis => outcome,
                    () = session_opens(watched.get()) => {
                        tracing::debug!(conversation = %id, "call analysis put off: a session opened");
                        let _ = retry.try_send(id);
                        continue;
                    }
                };
                match outcome {
                    Ok(a) => tracing::info!(conversation = %id, rating = a.rating, "call analysed"),
                    Err(e) => {
                        tracing::warn!(conversation = %id, "call analysis failed: {e}");
                        // Retried while it is pending — and while the database cannot say (it is
                        // marked pending there, so a restart would find it too).
                        let again = store.pending_analyses().await.map(|p| p.contains(&id)).unwrap_or(true);
                        if again {
                            let retry = retry.clone();
                            tokio::spawn(async move {
                                tokio::time::sleep(RETRY).await;
                                let _ = retry.send(id).await;
                            });
                        }
                    }
                }
            }
        });
        Arc::new(Analyst { queue: tx, runtime })
    }

    /// Lets sessions of `runtime` go first: an analysis waits while any is open.
    pub fn watch(&self, runtime: &Arc<Runtime>) {
        let _ = self.runtime.set(Arc::downgrade(runtime));
    }

    /// Queues a call whose analysis is marked pending.
    async fn enqueue(&self, conversation_id: String) {
        let _ = self.queue.send(conversation_id).await;
    }
}

/// Resolves when a session opens (never, without a runtime, or once [`MAX_DEFER`] passed since
/// it was called: an analysis then finishes even on a busy server).
async fn session_opens(runtime: Option<&Weak<Runtime>>) {
    let started = tokio::time::Instant::now();
    loop {
        tokio::time::sleep(Duration::from_millis(100)).await;
        if started.elapsed() >= MAX_DEFER {
            return std::future::pending().await;
        }
        if runtime.and_then(Weak::upgrade).is_some_and(|rt| rt.open_sessions() > 0) {
            return;
        }
    }
}

/// Waits until no session is open, or [`MAX_DEFER`] passed.
async fn wait_for_quiet(runtime: Option<&Weak<Runtime>>) {
    let started = tokio::time::Instant::now();
    while started.elapsed() < MAX_DEFER {
        match runtime.and_then(Weak::upgrade) {
            Some(rt) if rt.open_sessions() > 0 => tokio::time::sleep(POLL).await,
            _ => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use brazen_protocol::{Content, ItemStatus};

    #[test]
    fn items_become_entries_with_names_for_outputs() {
        let mut calls = HashMap::new();
        let call = Item {
            id: "i2".into(),
            status: ItemStatus::Completed,
            body: ItemBody::FunctionCall {
                call_id: "c1".into(),
                name: "order_products".into(),
                arguments: "{}".into(),
            },
        };
        let e = entry_of(&call, 1, 5, &mut calls).unwrap();
        assert_eq!(
            (e.kind, e.name.as_deref(), e.role),
            (EntryKind::FunctionCall, Some("order_products"), EntryRole::Assistant)
        );
        let output = Item {
            id: "i3".into(),
            status: ItemStatus::Completed,
            body: ItemBody::FunctionCallOutput { call_id: "c1".into(), output: "{\"OrderId\":\"ORD_1\"}".into() },
        };
        let e = entry_of(&output, 2, 6, &mut calls).unwrap();
        assert_eq!(
            (e.kind, e.name.as_deref(), e.text.as_str()),
            (EntryKind::FunctionCallOutput, Some("order_products"), "{\"OrderId\":\"ORD_1\"}")
        );
        let empty = Item::message(
            "i4",
            Role::Assistant,
            vec![Content::Audio { transcript: String::new() }],
            ItemStatus::InProgress,
        );
        assert!(entry_of(&empty, 3, 7, &mut calls).is_none(), "an empty message waits for its words");
    }
}
