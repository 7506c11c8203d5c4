//! Conversations (every session's transcript) and their call analyses.

use crate::{Page, Store, StoreError, now_ms, page_bounds};
use serde::{Deserialize, Serialize};
use sqlx::Row;
use sqlx::any::AnyRow;

/// A failed analysis is retried at start-up until it has been tried this many times.
pub const MAX_ANALYSIS_ATTEMPTS: i64 = 3;

/// Who wrote a transcript entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum EntryRole {
    /// The person.
    User,
    /// The agent.
    Assistant,
    /// Instructions or notes.
    System,
    /// A tool's output.
    Tool,
}

impl EntryRole {
    /// Its stored name.
    pub fn name(self) -> &'static str {
        match self {
            EntryRole::User => "user",
            EntryRole::Assistant => "assistant",
            EntryRole::System => "system",
            EntryRole::Tool => "tool",
        }
    }

    fn parse(s: &str) -> EntryRole {
        match s {
            "user" => EntryRole::User,
            "assistant" => EntryRole::Assistant,
            "tool" => EntryRole::Tool,
            _ => EntryRole::System,
        }
    }
}

/// What a transcript entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum EntryKind {
    /// Something said or written.
    Message,
    /// The model called a function (`text` holds the arguments).
    FunctionCall,
    /// A function's result (`text` holds the output).
    FunctionCallOutput,
}

impl EntryKind {
    /// Its stored name.
    pub fn name(self) -> &'static str {
        match self {
            EntryKind::Message => "message",
            EntryKind::FunctionCall => "function_call",
            EntryKind::FunctionCallOutput => "function_call_output",
        }
    }

    fn parse(s: &str) -> EntryKind {
        match s {
            "function_call" => EntryKind::FunctionCall,
            "function_call_output" => EntryKind::FunctionCallOutput,
            _ => EntryKind::Message,
        }
    }
}

/// One entry of a conversation's transcript.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Entry {
    /// Its position in the conversation (entries are ordered by it; writing the same `seq` again
    /// replaces the entry).
    pub seq: i64,
    /// When it happened (unix ms).
    pub at_ms: i64,
    /// Who wrote it.
    pub role: EntryRole,
    /// What it is.
    pub kind: EntryKind,
    /// The function's name, for calls and outputs.
    pub name: Option<String>,
    /// The call's id, for calls and outputs.
    pub call_id: Option<String>,
    /// The text, arguments or output.
    pub text: String,
}

/// A conversation as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Conversation {
    /// Its id.
    pub id: String,
    /// The session it belongs to.
    pub session_id: String,
    /// The agent that spoke (e.g. `retail`).
    pub agent: String,
    /// When it started (unix ms).
    pub started_at: i64,
    /// When it ended, once it has.
    pub ended_at: Option<i64>,
}

/// A conversation in a list: with its entry count and its analysis' status and rating.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct ConversationSummary {
    /// The conversation.
    #[serde(flatten)]
    pub conversation: Conversation,
    /// How many transcript entries it has.
    pub entries: i64,
    /// Its analysis' status, if one was asked for.
    pub analysis_status: Option<AnalysisStatus>,
    /// The analysis' rating (1–5), once done.
    pub rating: Option<i64>,
    /// The analysis' customer sentiment, once done.
    pub customer_sentiment: Option<String>,
}

/// A conversation with its transcript and analysis.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct ConversationDetail {
    /// The conversation.
    #[serde(flatten)]
    pub conversation: Conversation,
    /// Its transcript, ordered by `seq`.
    pub entries: Vec<Entry>,
    /// Its analysis, if one was asked for.
    pub analysis: Option<AnalysisRecord>,
}

/// Where an analysis stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AnalysisStatus {
    /// Asked for, not done yet.
    Pending,
    /// Done.
    Done,
    /// The last try failed (`last_error` says why).
    Failed,
}

impl AnalysisStatus {
    /// Its stored name.
    pub fn name(self) -> &'static str {
        match self {
            AnalysisStatus::Pending => "pending",
            AnalysisStatus::Done => "done",
            AnalysisStatus::Failed => "failed",
        }
    }

    fn parse(s: &str) -> AnalysisStatus {
        match s {
            "done" => AnalysisStatus::Done,
            "failed" => AnalysisStatus::Failed,
            _ => AnalysisStatus::Pending,
        }
    }
}

/// What an analysis of a call found (the seed's call-log shape).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CallAnalysis {
    /// Why the customer called, in a few words.
    pub call_reason: String,
    /// `satisfied`, `neutral` or `dissatisfied` (the retail crate's schema).
    pub customer_satisfaction: String,
    /// `positive`, `neutral` or `negative` (the retail crate's schema).
    pub customer_sentiment: String,
    /// 1 (poor) to 5 (excellent).
    pub rating: i64,
    /// Why that rating.
    pub rating_justification: String,
    /// The product the call was about, or `none`.
    pub product: String,
}

/// A conversation's analysis as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct AnalysisRecord {
    /// The conversation analysed.
    pub conversation_id: String,
    /// Where it stands.
    pub status: AnalysisStatus,
    /// Tries so far (successful or not).
    pub attempts: i64,
    /// Why the last try failed.
    pub last_error: Option<String>,
    /// The result, once done.
    pub analysis: Option<CallAnalysis>,
    /// When it was first asked for (unix ms).
    pub created_at: i64,
    /// When it last changed (unix ms).
    pub updated_at: i64,
}

impl AnalysisRecord {
    fn from_row(row: &AnyRow) -> Result<AnalysisRecord, sqlx::Error> {
        let status = AnalysisStatus::parse(&row.try_get::<String, _>("status")?);
        let analysis = match (status, row.try_get::<Option<i64>, _>("rating")?) {
            (AnalysisStatus::Done, Some(rating)) => Some(CallAnalysis {
                call_reason: row.try_get::<Option<String>, _>("call_reason")?.unwrap_or_default(),
                customer_satisfaction: row.try_get::<Option<String>, _>("customer_satisfaction")?.unwrap_or_default(),
                customer_sentiment: row.try_get::<Option<String>, _>("customer_sentiment")?.unwrap_or_default(),
                rating,
                rating_justification: row.try_get::<Option<String>, _>("rating_justification")?.unwrap_or_default(),
                product: row.try_get::<Option<String>, _>("product")?.unwrap_or_default(),
            }),
            _ => None,
        };
        Ok(AnalysisRecord {
            conversation_id: row.try_get("conversation_id")?,
            status,
            attempts: row.try_get("attempts")?,
            last_error: row.try_get("last_error")?,
            analysis,
            created_at: row.try_get("created_at")?,
            updated_at: row.try_get("updated_at")?,
        })
    }
}

fn conversation_from_row(row: &AnyRow) -> Result<Conversation, sqlx::Error> {
    Ok(Conversation {
        id: row.try_get("id")?,
        session_id: row.try_get("session_id")?,
        agent: row.try_get("agent")?,
        started_at: row.try_get("started_at")?,
        ended_at: row.try_get("ended_at")?,
    })
}

const ANALYSIS_COLUMNS: &str = "conversation_id, status, attempts, last_error, call_reason, customer_satisfaction, \
                                customer_sentiment, rating, rating_justification, product, created_at, updated_at";

impl Store {
    /// Records that a conversation started. Starting one that exists changes nothing.
    pub async fn start_conversation(
        &self,
        id: &str,
        session_id: &str,
        agent: &str,
        started_at: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO conversations (id, session_id, agent, started_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (id) DO NOTHING",
        )
        .bind(id)
        .bind(session_id)
        .bind(agent)
        .bind(started_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Writes one transcript entry; writing the same `seq` again replaces it (a transcript
    /// completed later, an item rewritten).
    pub async fn append_entry(&self, conversation_id: &str, entry: &Entry) -> Result<(), StoreError> {
        let result = sqlx::query(
            "INSERT INTO conversation_entries (conversation_id, seq, at_ms, role, kind, name, call_id, text) \
             SELECT $1, $2, $3, $4, $5, $6, $7, $8 WHERE EXISTS (SELECT 1 FROM conversations WHERE id = $1) \
             ON CONFLICT (conversation_id, seq) DO UPDATE SET at_ms = excluded.at_ms, role = excluded.role, \
             kind = excluded.kind, name = excluded.name, call_id = excluded.call_id, text = excluded.text",
        )
        .bind(conversation_id)
        .bind(entry.seq)
        .bind(entry.at_ms)
        .bind(entry.role.name())
        .bind(entry.kind.name())
        .bind(entry.name.as_deref().map(storable))
        .bind(entry.call_id.as_deref().map(storable))
        .bind(storable(&entry.text))
        .execute(&self.pool)
        .await?;
        if result.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!(
                "There is no conversation '{conversation_id}'; start it before writing its entries."
            )));
        }
        Ok(())
    }

    /// Records that a conversation ended.
    pub async fn end_conversation(&self, id: &str, ended_at: i64) -> Result<(), StoreError> {
        let n = sqlx::query("UPDATE conversations SET ended_at = $2 WHERE id = $1")
            .bind(id)
            .bind(ended_at)
            .execute(&self.pool)
            .await?
            .rows_affected();
        if n == 0 {
            return Err(StoreError::NotFound(format!("There is no conversation '{id}'.")));
        }
        Ok(())
    }

    /// Conversations, newest first, with their entry counts and analysis status and rating.
    pub async fn conversations(&self, limit: i64, offset: i64) -> Result<Page<ConversationSummary>, StoreError> {
        let (limit, offset) = page_bounds(limit, offset);
        let total: i64 =
            sqlx::query("SELECT COUNT(*) AS n FROM conversations").fetch_one(&self.pool).await?.try_get("n")?;
        let rows = sqlx::query(
            "SELECT c.id, c.session_id, c.agent, c.started_at, c.ended_at, \
             (SELECT COUNT(*) FROM conversation_entries e WHERE e.conversation_id = c.id) AS entries, \
             a.status AS analysis_status, a.rating AS rating, a.customer_sentiment AS customer_sentiment \
             FROM conversations c LEFT JOIN call_analyses a ON a.conversation_id = c.id \
             ORDER BY c.started_at DESC, c.id LIMIT $1 OFFSET $2",
        )
        .bind(limit)
        .bind(offset)
        .fetch_all(&self.pool)
        .await?;
        let items = rows
            .iter()
            .map(|row| {
                let status: Option<String> = row.try_get("analysis_status")?;
                let status = status.as_deref().map(AnalysisStatus::parse);
                let done = status == Some(AnalysisStatus::Done);
                Ok(ConversationSummary {
                    conversation: conversation_from_row(row)?,
                    entries: row.try_get("entries")?,
                    rating: if done { row.try_get("rating")? } else { None },
                    customer_sentiment: if done { row.try_get("customer_sentiment")? } else { None },
                    analysis_status: status,
                })
            })
            .collect::<Result<_, sqlx::Error>>()?;
        Ok(Page { items, total, limit, offset })
    }

    /// A conversation with its transcript (ordered by `seq`) and analysis.
    pub async fn conversation(&self, id: &str) -> Result<Option<ConversationDetail>, StoreError> {
        let row = sqlx::query("SELECT id, session_id, agent, started_at, ended_at FROM conversations WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        let Some(row) = row else { return Ok(None) };
        let conversation = conversation_from_row(&row)?;
        let rows = sqlx::query(
            "SELECT seq, at_ms, role, kind, name, call_id, text FROM conversation_entries \
             WHERE conversation_id = $1 ORDER BY seq",
        )
        .bind(id)
        .fetch_all(&self.pool)
        .await?;
        let entries = rows
            .iter()
            .map(|r| {
                Ok(Entry {
                    seq: r.try_get("seq")?,
                    at_ms: r.try_get("at_ms")?,
                    role: EntryRole::parse(&r.try_get::<String, _>("role")?),
                    kind: EntryKind::parse(&r.try_get::<String, _>("kind")?),
                    name: r.try_get("name")?,
                    call_id: r.try_get("call_id")?,
                    text: r.try_get("text")?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()?;
        let analysis = self.analysis(id).await?;
        Ok(Some(ConversationDetail { conversation, entries, analysis }))
    }

    /// Asks for a conversation's analysis: `pending` (attempts kept). An analysis already done
    /// stays done.
    pub async fn mark_analysis_pending(&self, conversation_id: &str) -> Result<(), StoreError> {
        let now = now_ms();
        let result = sqlx::query(
            "INSERT INTO call_analyses (conversation_id, status, attempts, created_at, updated_at) \
             SELECT $1, 'pending', 0, $2, $2 WHERE EXISTS (SELECT 1 FROM conversations WHERE id = $1) \
             ON CONFLICT (conversation_id) DO UPDATE SET status = 'pending', updated_at = excluded.updated_at \
             WHERE call_analyses.status <> 'done'",
        )
        .bind(conversation_id)
        .bind(now)
        .execute(&self.pool)
        .await?;
        if result.rows_affected() == 0 && self.analysis(conversation_id).await?.is_none() {
            return Err(StoreError::NotFound(format!("There is no conversation '{conversation_id}' to analyse.")));
        }
        Ok(())
    }

    /// Records a successful analysis (status `done`, one more attempt, no error).
    pub async fn record_analysis(&self, conversation_id: &str, analysis: &CallAnalysis) -> Result<(), StoreError> {
        if !(1..=5).contains(&analysis.rating) {
            return Err(StoreError::Invalid(format!("A rating is 1 to 5; got {}.", analysis.rating)));
        }
        let now = now_ms();
        let result = sqlx::query(
            "INSERT INTO call_analyses (conversation_id, status, attempts, last_error, call_reason, \
             customer_satisfaction, customer_sentiment, rating, rating_justification, product, created_at, updated_at) \
             SELECT $1, 'done', 1, NULL, $2, $3, $4, $5, $6, $7, $8, $8 \
             WHERE EXISTS (SELECT 1 FROM conversations WHERE id = $1) \
             ON CONFLICT (conversation_id) DO UPDATE SET status = 'done', attempts = call_analyses.attempts + 1, \
             last_error = NULL, call_reason = excluded.call_reason, \
             customer_satisfaction = excluded.customer_satisfaction, \
             customer_sentiment = excluded.customer_sentiment, rating = excluded.rating, \
             rating_justification = excluded.rating_justification, product = excluded.product, \
             updated_at = excluded.updated_at",
        )
        .bind(conversation_id)
        .bind(&analysis.call_reason)
        .bind(&analysis.customer_satisfaction)
        .bind(&analysis.customer_sentiment)
        .bind(analysis.rating)
        .bind(&analysis.rating_justification)
        .bind(&analysis.product)
        .bind(now)
        .execute(&self.pool)
        .await?;
        if result.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!("There is no conversation '{conversation_id}' to analyse.")));
        }
        Ok(())
    }

    /// Records a failed try (status `failed`, one more attempt, the error kept).
    pub async fn record_analysis_failure(&self, conversation_id: &str, error: &str) -> Result<(), StoreError> {
        let now = now_ms();
        let result = sqlx::query(
            "INSERT INTO call_analyses (conversation_id, status, attempts, last_error, created_at, updated_at) \
             SELECT $1, 'failed', 1, $2, $3, $3 WHERE EXISTS (SELECT 1 FROM conversations WHERE id = $1) \
             ON CONFLICT (conversation_id) DO UPDATE SET status = 'failed', \
             attempts = call_analyses.attempts + 1, last_error = excluded.last_error, updated_at = excluded.updated_at",
        )
        .bind(conversation_id)
        .bind(error)
        .bind(now)
        .execute(&self.pool)
        .await?;
        if result.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!("There is no conversation '{conversation_id}' to analyse.")));
        }
        Ok(())
    }

    /// The conversations whose analysis should be (re)tried: `pending`, or `failed` with fewer
    /// than [`MAX_ANALYSIS_ATTEMPTS`] attempts; oldest first.
    pub async fn pending_analyses(&self) -> Result<Vec<String>, StoreError> {
        let rows = sqlx::query(
            "SELECT conversation_id FROM call_analyses WHERE status = 'pending' OR (status = 'failed' AND attempts < $1) \
             ORDER BY created_at, conversation_id",
        )
        .bind(MAX_ANALYSIS_ATTEMPTS)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(|r| r.try_get("conversation_id")).collect::<Result<_, _>>()?)
    }

    /// A conversation's analysis, if one was asked for.
    pub async fn analysis(&self, conversation_id: &str) -> Result<Option<AnalysisRecord>, StoreError> {
        let row = sqlx::query(&format!("SELECT {ANALYSIS_COLUMNS} FROM call_analyses WHERE conversation_id = $1"))
            .bind(conversation_id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.as_ref().map(AnalysisRecord::from_row).transpose()?)
    }
}

/// Text as every backend stores it: PostgreSQL refuses NUL characters in text, which a client
/// may well send, so they become U+FFFD (a write that could never succeed would be retried
/// forever).
fn storable(text: &str) -> String {
    text.replace('\0', "\u{FFFD}")
}
