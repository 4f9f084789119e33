//! Closing HTTP/2 connections that flood the server with PING or SETTINGS frames.
//!
//! Every PING and every SETTINGS frame obliges the server to answer with an acknowledgement.
//! The `h2` crate keeps memory bounded on its own: it holds at most one unsent PING ACK and one
//! unapplied SETTINGS frame, and reads no further frame until the acknowledgement is buffered, so
//! a client that never reads its ACKs is stalled by TCP backpressure. But a client that does read
//! them can go on forever, making the server do a little work for every few bytes it sends. The
//! guard here watches the raw bytes of each connection that starts with the HTTP/2 preface, and
//! fails the connection's reads (so hyper drops it) once a client sends more than
//! [`MAX_CONTROL_FRAMES`] such frames within [`CONTROL_FRAME_WINDOW`]. Acknowledgements, and
//! every other frame, are not counted; legitimate clients send a handful of SETTINGS and at most
//! a few PINGs per round trip. HTTP/1 connections are not watched past their first bytes.

use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::inspect::Inspector;

/// The client connection preface of HTTP/2 (RFC 9113 section 3.4).
const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
/// The length of a frame header.
const FRAME_HEADER: usize = 9;
const SETTINGS: u8 = 0x4;
const PING: u8 = 0x6;
/// The ACK flag of SETTINGS and PING frames.
const ACK: u8 = 0x1;
/// The most PING and SETTINGS frames (not acknowledgements) a client may send in one window.
const MAX_CONTROL_FRAMES: u32 = 10_000;
/// The window [`MAX_CONTROL_FRAMES`] counts over.
const CONTROL_FRAME_WINDOW: Duration = Duration::from_secs(1);

/// Where the reader is in the byte stream.
#[derive(Debug)]
enum State {
    /// Matching the preface; this many bytes matched so far.
    Preface(usize),
    /// Reading a frame header; the first `have` bytes of `bytes` are in.
    Header {
        bytes: [u8; FRAME_HEADER],
        have: usize,
    },
    /// Skipping this many payload bytes.
    Payload(usize),
    /// Not HTTP/2: nothing to watch.
    Off,
}

/// Counts the PING and SETTINGS frames of one HTTP/2 connection, from its raw bytes.
#[derive(Debug)]
pub(crate) struct ControlFrames {
    state: State,
    window_start: Option<Instant>,
    in_window: u32,
}

impl Default for ControlFrames {
    fn default() -> Self {
        Self {
            state: State::Preface(0),
            window_start: None,
            in_window: 0,
        }
    }
}

impl ControlFrames {
    /// Follows `data`, the next bytes the client sent; an error once the client floods.
    /// `now` is asked for the time at the start of each window only.
    fn observe(&mut self, mut data: &[u8], mut now: impl FnMut() -> Instant) -> io::Result<()> {
        while !data.is_empty() {
            match &mut self.state {
                State::Off => return Ok(()),
                State::Preface(matched) => {
                    let n = (PREFACE.len() - *matched).min(data.len());
                    if data[..n] != PREFACE[*matched..*matched + n] {
                        self.state = State::Off;
                        return Ok(());
                    }
                    *matched += n;
                    data = &data[n..];
                    if *matched == PREFACE.len() {
                        self.state = State::Header {
                            bytes: [0; FRAME_HEADER],
                            have: 0,
                        };
                    }
                }
                State::Header { bytes, have } => {
                    let n = (FRAME_HEADER - *have).min(data.len());
                    bytes[*have..*have + n].copy_from_slice(&data[..n]);
                    *have += n;
                    data = &data[n..];
                    if *have == FRAME_HEADER {
                        let length = usize::from(bytes[0]) << 16
                            | usize::from(bytes[1]) << 8
                            | usize::from(bytes[2]);
                        let (kind, flags) = (bytes[3], bytes[4]);
                        self.state = State::Payload(length);
                        if matches!(kind, PING | SETTINGS) && flags & ACK == 0 {
                            self.count(&mut now)?;
                        }
                    }
                }
                State::Payload(remaining) => {
                    let n = (*remaining).min(data.len());
                    *remaining -= n;
                    data = &data[n..];
                    if *remaining == 0 {
                        self.state = State::Header {
                            bytes: [0; FRAME_HEADER],
                            have: 0,
                        };
                    }
                }
            }
        }
        Ok(())
    }

    fn count(&mut self, now: &mut impl FnMut() -> Instant) -> io::Result<()> {
        let start = *self.window_start.get_or_insert_with(&mut *now);
        self.in_window += 1;
        if self.in_window <= MAX_CONTROL_FRAMES {
            return Ok(());
        }
        let at = now();
        if at.duration_since(start) < CONTROL_FRAME_WINDOW {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "HTTP/2 flood: more than {MAX_CONTROL_FRAMES} PING or SETTINGS frames within {CONTROL_FRAME_WINDOW:?}"
                ),
            ));
        }
        self.window_start = Some(at);
        self.in_window = 1;
        Ok(())
    }
}

/// The [`Inspector`] of a client connection that fails its reads once it floods the server with
/// PING or SETTINGS frames.
pub(crate) struct FloodGuard {
    frames: ControlFrames,
    peer: SocketAddr,
}

impl FloodGuard {
    /// A guard for the connection from `peer`.
    pub fn new(peer: SocketAddr) -> Self {
        Self {
            frames: ControlFrames::default(),
            peer,
        }
    }
}

impl Inspector for FloodGuard {
    fn inspecting(&self) -> bool {
        !matches!(self.frames.state, State::Off)
    }

    fn inspect(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.frames.observe(bytes, Instant::now).inspect_err(
            |error| tracing::warn!(peer = %self.peer, %error, "closing the connection"),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(kind: u8, flags: u8, payload: &[u8]) -> Vec<u8> {
        let length = u32::try_from(payload.len()).expect("small").to_be_bytes();
        let mut frame = vec![length[1], length[2], length[3], kind, flags, 0, 0, 0, 0];
        frame.extend_from_slice(payload);
        frame
    }

    fn connection(frames: &[Vec<u8>]) -> Vec<u8> {
        let mut bytes = PREFACE.to_vec();
        for frame in frames {
            bytes.extend_from_slice(frame);
        }
        bytes
    }

    /// A clock that never moves.
    fn frozen() -> impl FnMut() -> Instant {
        let at = Instant::now();
        move || at
    }

    #[test]
    fn a_ping_flood_is_refused() {
        let pings = vec![frame(PING, 0, b"12345678"); MAX_CONTROL_FRAMES as usize + 1];
        let mut counter = ControlFrames::default();
        let error = counter
            .observe(&connection(&pings), frozen())
            .expect_err("a flood");
        assert_eq!(error.kind(), io::ErrorKind::InvalidData);
    }

    #[test]
    fn a_settings_flood_is_refused_even_one_byte_at_a_time() {
        let settings =
            vec![frame(SETTINGS, 0, &[0, 4, 0, 0, 255, 255]); MAX_CONTROL_FRAMES as usize + 1];
        let mut counter = ControlFrames::default();
        let mut clock = frozen();
        let refused = connection(&settings)
            .chunks(1)
            .any(|byte| counter.observe(byte, &mut clock).is_err());
        assert!(refused);
    }

    #[test]
    fn acknowledgements_and_other_frames_are_not_counted() {
        let mut frames = vec![frame(PING, ACK, b"12345678"); MAX_CONTROL_FRAMES as usize * 2];
        frames.extend(vec![
            frame(SETTINGS, ACK, &[]);
            MAX_CONTROL_FRAMES as usize * 2
        ]);
        frames.extend(vec![
            frame(0x8, 0, &[0, 0, 1, 0]);
            MAX_CONTROL_FRAMES as usize * 2
        ]);
        frames.extend(vec![
            frame(PING, 0, b"12345678");
            MAX_CONTROL_FRAMES as usize
        ]);
        let mut counter = ControlFrames::default();
        assert!(counter.observe(&connection(&frames), frozen()).is_ok());
    }

    #[test]
    fn the_count_starts_over_each_window() {
        let start = Instant::now();
        let mut ticks = 0u32;
        let mut clock = move || {
            ticks += 1;
            start + CONTROL_FRAME_WINDOW * ticks
        };
        let pings = vec![frame(PING, 0, b"12345678"); MAX_CONTROL_FRAMES as usize * 5];
        let mut counter = ControlFrames::default();
        assert!(counter.observe(&connection(&pings), &mut clock).is_ok());
    }

    #[test]
    fn http1_is_not_watched() {
        let mut bytes = b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 170000\r\n\r\n".to_vec();
        for _ in 0..MAX_CONTROL_FRAMES * 2 {
            bytes.extend_from_slice(&frame(PING, 0, b"12345678"));
        }
        let mut counter = ControlFrames::default();
        assert!(counter.observe(&bytes, frozen()).is_ok());
        assert!(matches!(counter.state, State::Off));
    }
}
