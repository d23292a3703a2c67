//! The streams of one connection: each stream's protocol state (which halves are open, its
//! flow-control windows, what waits to be sent) beside the user's data for it, in a slab whose
//! slots are reused, found by stream id through a small map.

use std::hash::BuildHasherDefault;

use hashbrown::HashMap;

use crate::fxhash::FxHasher;

/// A stream's handle: its slot and its id, so a handle kept past the stream's end never
/// reaches the stream that reuses the slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct StreamKey {
    slot: u32,
    id: u32,
}

impl StreamKey {
    /// The stream id.
    pub fn id(self) -> u32 {
        self.id
    }
}

/// What must follow a stream's queued data.
#[derive(Debug, Default)]
pub(super) enum PendingEnd {
    /// Nothing yet: more data may come.
    #[default]
    None,
    /// END_STREAM on the last DATA frame.
    EndStream,
    /// A trailer block, already encoded, ending the stream.
    Trailers(Vec<u8>),
}

/// One stream's protocol state and its user data.
#[derive(Debug)]
pub struct Stream<U> {
    /// What the relay keeps for the stream.
    pub user: U,
    pub(super) id: u32,
    /// The peer may still send (no END_STREAM or reset received).
    pub(super) recv_open: bool,
    /// This side may still send.
    pub(super) send_open: bool,
    /// This side sent its (response or request) head.
    pub(super) head_sent: bool,
    /// A client stream received its final response head.
    pub(super) final_received: bool,
    /// How many more bytes the peer may send before it needs a WINDOW_UPDATE.
    pub(super) recv_window: i64,
    /// Bytes received and taken by the relay, not yet given back.
    pub(super) recv_unacked: u32,
    /// How many more bytes this side may send.
    pub(super) send_window: i64,
    /// Body bytes still to come by the `content-length` the peer announced.
    pub(super) body_left: Option<u64>,
    /// DATA payload waiting for window.
    pub(super) outq: Vec<u8>,
    /// What ends the stream once `outq` is sent.
    pub(super) pending_end: PendingEnd,
}

impl<U> Stream<U> {
    /// Whether both halves are closed.
    pub fn is_closed(&self) -> bool {
        !self.recv_open && !self.send_open
    }

    /// Whether the peer may still send on it.
    pub fn is_receiving(&self) -> bool {
        self.recv_open
    }

    /// Whether this side may still send on it.
    pub fn is_sending(&self) -> bool {
        self.send_open
    }

    /// Whether this side sent its head.
    pub fn head_sent(&self) -> bool {
        self.head_sent
    }

    /// Whether data or an end waits for window.
    pub fn is_blocked(&self) -> bool {
        !self.outq.is_empty() || !matches!(self.pending_end, PendingEnd::None)
    }

    /// Payload bytes received and not yet given back: what the window of `initial` bytes
    /// granted lacks beside what is still open and what is owed in the next WINDOW_UPDATE.
    pub(super) fn held(&self, initial: u32) -> u32 {
        let held = i64::from(initial) - self.recv_window - i64::from(self.recv_unacked);
        u32::try_from(held.max(0)).unwrap_or(u32::MAX)
    }
}

type FxMap<K, V> = HashMap<K, V, BuildHasherDefault<FxHasher>>;

/// The streams of a connection.
#[derive(Debug)]
pub struct Streams<U> {
    slots: Vec<Option<Stream<U>>>,
    free: Vec<u32>,
    by_id: FxMap<u32, u32>,
    /// Streams not closed both ways.
    pub(super) active: usize,
}

impl<U> Default for Streams<U> {
    fn default() -> Self {
        Streams {
            slots: Vec::new(),
            free: Vec::new(),
            by_id: FxMap::default(),
            active: 0,
        }
    }
}

impl<U> Streams<U> {
    /// Adds an open stream.
    pub(super) fn insert(&mut self, stream: Stream<U>) -> StreamKey {
        let id = stream.id;
        let slot = match self.free.pop() {
            Some(slot) => {
                self.slots[slot as usize] = Some(stream);
                slot
            }
            None => {
                self.slots.push(Some(stream));
                (self.slots.len() - 1) as u32
            }
        };
        self.by_id.insert(id, slot);
        self.active += 1;
        StreamKey { slot, id }
    }

    /// The stream with this id.
    pub fn find(&self, id: u32) -> Option<StreamKey> {
        self.by_id.get(&id).map(|&slot| StreamKey { slot, id })
    }

    /// The stream a key names, if it is still there.
    pub fn get(&self, key: StreamKey) -> Option<&Stream<U>> {
        self.slots
            .get(key.slot as usize)?
            .as_ref()
            .filter(|s| s.id == key.id)
    }

    /// The stream a key names, if it is still there.
    pub fn get_mut(&mut self, key: StreamKey) -> Option<&mut Stream<U>> {
        self.slots
            .get_mut(key.slot as usize)?
            .as_mut()
            .filter(|s| s.id == key.id)
    }

    /// Takes the stream out, giving back its user data.
    pub(super) fn remove(&mut self, key: StreamKey) -> Option<U> {
        self.get(key)?;
        let stream = self.slots[key.slot as usize].take()?;
        self.by_id.remove(&key.id);
        self.free.push(key.slot);
        if !stream.is_closed() {
            self.active -= 1;
        }
        Some(stream.user)
    }

    /// Every stream's key.
    pub fn keys(&self) -> impl Iterator<Item = StreamKey> + '_ {
        self.slots.iter().enumerate().filter_map(|(slot, s)| {
            s.as_ref().map(|s| StreamKey {
                slot: slot as u32,
                id: s.id,
            })
        })
    }

    /// How many streams are there, closed or not.
    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }
}
