//! The conversation: ordered items with their audio and phrase timings.

use crate::playback::Segment;
use brazen_protocol::error::code;
use brazen_protocol::{Item, ProtocolError};

/// An item and what brazen keeps beside it.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    /// The item as the protocol shows it.
    pub item: Item,
    /// Milliseconds of audio the item holds: the user's committed audio, or the assistant's
    /// spoken audio (after any truncation).
    pub audio_ms: f64,
    /// The assistant audio's phrases on the item's audio clock.
    pub segments: Vec<Segment>,
    /// The bytes the conversation counts for it (see [`item_bytes`]), as of its last change.
    counted: usize,
}

impl Entry {
    /// An entry holding just an item.
    pub fn new(item: Item) -> Self {
        Entry { item, audio_ms: 0.0, segments: Vec::new(), counted: 0 }
    }
}

/// An entry being changed; the conversation's byte count follows the change when it is dropped.
pub struct EntryMut<'a> {
    entry: &'a mut Entry,
    bytes: &'a mut usize,
}

impl std::ops::Deref for EntryMut<'_> {
    type Target = Entry;
    fn deref(&self) -> &Entry {
        self.entry
    }
}

impl std::ops::DerefMut for EntryMut<'_> {
    fn deref_mut(&mut self) -> &mut Entry {
        self.entry
    }
}

impl Drop for EntryMut<'_> {
    fn drop(&mut self) {
        let now = item_bytes(&self.entry.item);
        *self.bytes = *self.bytes - self.entry.counted + now;
        self.entry.counted = now;
    }
}

/// Where to insert a new item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Position {
    /// After the last item.
    End,
    /// Before every item (`previous_item_id: "root"`).
    Root,
    /// After this item.
    After(String),
}

impl Position {
    /// From a `previous_item_id` field.
    pub fn from_previous(previous: Option<&str>) -> Self {
        match previous {
            None => Position::End,
            Some("root") => Position::Root,
            Some(id) => Position::After(id.to_owned()),
        }
    }
}

/// The ordered items of one session.
#[derive(Debug, Default)]
pub struct Conversation {
    entries: Vec<Entry>,
    /// The sum of the entries' `counted` bytes.
    bytes: usize,
}

/// Most items one conversation holds.
pub const MAX_ITEMS: usize = 10_000;

impl Conversation {
    /// The id of the last item.
    pub fn last_id(&self) -> Option<String> {
        self.entries.last().map(|e| e.item.id.clone())
    }

    fn index(&self, id: &str) -> Option<usize> {
        self.entries.iter().rposition(|e| e.item.id == id)
    }

    /// Whether an item with this id exists.
    pub fn contains(&self, id: &str) -> bool {
        self.index(id).is_some()
    }

    /// Inserts an entry and returns the id of the item before it.
    pub fn insert(&mut self, at: Position, entry: Entry) -> Result<Option<String>, ProtocolError> {
        if self.entries.len() >= MAX_ITEMS {
            return Err(ProtocolError::invalid(
                code::INVALID_VALUE,
                format!("The conversation holds {MAX_ITEMS} items, the most allowed; delete some first."),
            ));
        }
        if self.contains(&entry.item.id) {
            return Err(ProtocolError::invalid(
                code::DUPLICATE_ITEM_ID,
                format!("Item id '{}' is already in the conversation.", entry.item.id),
            )
            .with_param("item.id"));
        }
        let index = match &at {
            Position::End => self.entries.len(),
            Position::Root => 0,
            Position::After(id) => self.index(id).map(|i| i + 1).ok_or_else(|| {
                ProtocolError::invalid(
                    code::ITEM_NOT_FOUND,
                    format!("Previous item '{id}' is not in the conversation."),
                )
                .with_param("previous_item_id")
            })?,
        };
        let previous = index.checked_sub(1).map(|i| self.entries[i].item.id.clone());
        let mut entry = entry;
        entry.counted = item_bytes(&entry.item);
        self.bytes += entry.counted;
        self.entries.insert(index, entry);
        Ok(previous)
    }

    /// The id of the item before this one (`None` for the first, or an unknown id).
    pub fn previous_id(&self, id: &str) -> Option<String> {
        let i = self.index(id)?;
        i.checked_sub(1).map(|p| self.entries[p].item.id.clone())
    }

    /// The entry with this id.
    pub fn get(&self, id: &str) -> Option<&Entry> {
        self.index(id).map(|i| &self.entries[i])
    }

    /// The entry with this id, to change (the byte count follows the change).
    pub fn get_mut(&mut self, id: &str) -> Option<EntryMut<'_>> {
        let i = self.index(id)?;
        Some(EntryMut { entry: &mut self.entries[i], bytes: &mut self.bytes })
    }

    /// Removes an item.
    pub fn remove(&mut self, id: &str) -> Option<Entry> {
        let entry = self.index(id).map(|i| self.entries.remove(i))?;
        self.bytes -= entry.counted;
        Some(entry)
    }

    /// The entries, oldest first.
    pub fn entries(&self) -> impl Iterator<Item = &Entry> {
        self.entries.iter()
    }

    /// The items, oldest first.
    pub fn items(&self) -> Vec<Item> {
        self.entries.iter().map(|e| e.item.clone()).collect()
    }

    /// Number of items.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// The bytes the items hold as a session's memory budget counts them ([`item_bytes`]).
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Whether there are no items.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// What an item costs besides its text, bytes (its id, status, kind, bookkeeping).
const ITEM_OVERHEAD: usize = 128;
/// What each content part costs besides its text, bytes: a message of many empty parts is not
/// free.
const PART_OVERHEAD: usize = 32;

/// The bytes one item counts for in a session's memory budget: its text (messages' text and
/// transcripts, function calls' ids, names and arguments, their outputs) and a fixed cost per
/// item and per content part.
pub fn item_bytes(item: &Item) -> usize {
    let body = match &item.body {
        brazen_protocol::ItemBody::Message { content, .. } => {
            content.iter().map(|c| PART_OVERHEAD + c.text().map_or(0, str::len)).sum()
        }
        brazen_protocol::ItemBody::FunctionCall { call_id, name, arguments } => {
            call_id.len() + name.len() + arguments.len()
        }
        brazen_protocol::ItemBody::FunctionCallOutput { call_id, output } => call_id.len() + output.len(),
    };
    ITEM_OVERHEAD + item.id.len() + body
}

/// An error for an unknown item id.
pub fn not_found(id: &str, param: &str) -> ProtocolError {
    ProtocolError::invalid(code::ITEM_NOT_FOUND, format!("Item '{id}' is not in the conversation.")).with_param(param)
}
