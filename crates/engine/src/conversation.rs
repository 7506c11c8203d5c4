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
}

impl Entry {
    /// An entry holding just an item.
    pub fn new(item: Item) -> Self {
        Entry { item, audio_ms: 0.0, segments: Vec::new() }
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

    /// The entry with this id, to change.
    pub fn get_mut(&mut self, id: &str) -> Option<&mut Entry> {
        self.index(id).map(|i| &mut self.entries[i])
    }

    /// Removes an item.
    pub fn remove(&mut self, id: &str) -> Option<Entry> {
        self.index(id).map(|i| self.entries.remove(i))
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

    /// The bytes of text the items hold (messages' text and transcripts, function calls'
    /// names and arguments, their outputs): what a session's memory budget counts.
    pub fn text_bytes(&self) -> usize {
        self.entries.iter().map(|e| item_bytes(&e.item)).sum()
    }

    /// Whether there are no items.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// The bytes of text one item holds (see [`Conversation::text_bytes`]).
pub fn item_bytes(item: &Item) -> usize {
    match &item.body {
        brazen_protocol::ItemBody::Message { content, .. } => {
            content.iter().map(|c| c.text().map_or(0, str::len)).sum()
        }
        brazen_protocol::ItemBody::FunctionCall { call_id, name, arguments } => {
            call_id.len() + name.len() + arguments.len()
        }
        brazen_protocol::ItemBody::FunctionCallOutput { call_id, output } => call_id.len() + output.len(),
    }
}

/// An error for an unknown item id.
pub fn not_found(id: &str, param: &str) -> ProtocolError {
    ProtocolError::invalid(code::ITEM_NOT_FOUND, format!("Item '{id}' is not in the conversation.")).with_param(param)
}
