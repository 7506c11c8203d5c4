//! [`Out`]: what a session's parts hand to the driver, in order, and the ids they name things
//! with. Every part writes here; only the session reads it back (through `poll_output`).

use crate::{JobId, Output};
use brazen_protocol::{Item, ProtocolError, ServerEvent};
use std::collections::VecDeque;

/// The session's output queue and id counter.
pub(crate) struct Out {
    queue: VecDeque<Output>,
    /// The session's short tag, in every id it makes.
    tag: String,
    counter: u64,
}

impl Out {
    /// An empty queue for the session tagged `tag`.
    pub(crate) fn new(tag: String) -> Self {
        Out { queue: VecDeque::new(), tag, counter: 0 }
    }

    /// Queues an output.
    pub(crate) fn push(&mut self, output: Output) {
        self.queue.push_back(output);
    }

    /// Queues an event for the client.
    pub(crate) fn emit(&mut self, event: ServerEvent) {
        self.push(Output::Event(event));
    }

    /// Sends `conversation.item.created` and `conversation.item.done` for a complete item.
    pub(crate) fn announce(&mut self, previous_item_id: Option<String>, item: Item) {
        self.emit(ServerEvent::ItemCreated { previous_item_id: previous_item_id.clone(), item: item.clone() });
        self.emit(ServerEvent::ItemDone { previous_item_id, item });
    }

    /// Queues an `error` event.
    pub(crate) fn error(&mut self, e: ProtocolError) {
        self.emit(ServerEvent::Error(e));
    }

    /// The next output for the driver.
    pub(crate) fn pop(&mut self) -> Option<Output> {
        self.queue.pop_front()
    }

    /// A new id such as `item_<tag>0007`.
    pub(crate) fn next_id(&mut self, prefix: &str) -> String {
        self.counter += 1;
        format!("{prefix}_{}{:04}", self.tag, self.counter)
    }

    /// A new job id.
    pub(crate) fn next_job(&mut self) -> JobId {
        self.counter += 1;
        self.counter
    }

    /// The outputs queued so far, oldest first (for the parts' tests).
    #[cfg(test)]
    pub(crate) fn drain(&mut self) -> Vec<Output> {
        self.queue.drain(..).collect()
    }
}
