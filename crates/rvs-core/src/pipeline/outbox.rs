//! Frames the pipeline produces besides the verdict of the frame in hand, such
//! as packets that waited for a neighbour's MAC. Preallocated; the I/O layer
//! drains it after each burst.

use crate::addr::PortId;

/// Room kept before each frame (a VLAN tag).
pub const HEADROOM: usize = 4;

/// A bounded queue of frames to transmit.
#[derive(Debug)]
pub struct Outbox {
    data: Vec<u8>,
    frame_size: usize,
    frames: Vec<(PortId, usize)>,
    cap: usize,
    dropped: u64,
}

impl Outbox {
    /// Room for `cap` frames of up to `frame_size` bytes.
    pub fn new(cap: usize, frame_size: usize) -> Outbox {
        Outbox {
            data: vec![0; cap * (frame_size + HEADROOM)],
            frame_size,
            frames: Vec::with_capacity(cap),
            cap,
            dropped: 0,
        }
    }

    /// Queues a copy of `frame` for `port`; false (and counted) when full or too big.
    pub fn push(&mut self, port: PortId, frame: &[u8]) -> bool {
        let n = self.frames.len();
        if n >= self.cap || frame.len() > self.frame_size {
            self.dropped += 1;
            return false;
        }
        let off = n * self.slot() + HEADROOM;
        self.data[off..off + frame.len()].copy_from_slice(frame);
        self.frames.push((port, frame.len()));
        true
    }

    /// Hands every queued frame to `f` and empties the queue.
    pub fn drain(&mut self, mut f: impl FnMut(PortId, &[u8])) {
        let slot = self.slot();
        for (i, (port, len)) in self.frames.iter().enumerate() {
            let off = i * slot + HEADROOM;
            f(*port, &self.data[off..off + len]);
        }
        self.frames.clear();
    }

    /// Hands every queued frame to `f` as its slot, the frame's offset in it
    /// and its length (with [`HEADROOM`] bytes before the frame, e.g. for a
    /// VLAN tag), and empties the queue.
    pub fn drain_mut(&mut self, mut f: impl FnMut(PortId, &mut [u8], usize, usize)) {
        let slot = self.slot();
        for (i, (port, len)) in self.frames.iter().enumerate() {
            let off = i * slot;
            f(*port, &mut self.data[off..off + slot], HEADROOM, *len);
        }
        self.frames.clear();
    }

    fn slot(&self) -> usize {
        self.frame_size + HEADROOM
    }

    /// Frames waiting.
    pub fn len(&self) -> usize {
        self.frames.len()
    }

    /// Whether nothing waits.
    pub fn is_empty(&self) -> bool {
        self.frames.is_empty()
    }

    /// Frames refused because the outbox was full.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }
}
