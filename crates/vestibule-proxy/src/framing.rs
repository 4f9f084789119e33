//! Watching the raw bytes of HTTP/1 request heads for what the parser forgives but a careful
//! intermediary must refuse.
//!
//! hyper accepts a bare LF as a line end, and when a request carries both `Content-Length` and
//! `Transfer-Encoding` it drops the length and reads the chunks (as RFC 9112 allows). Both are
//! classic request-smuggling signs, so Vestibule refuses them instead. The watcher sees each
//! head before hyper hands the request over, and flags the connection; the handler then
//! answers 400 and closes. It never changes a byte, and whenever the framing is not simply
//! "head, then Content-Length bytes" (chunked bodies, upgrades, HTTP/2) it stops watching that
//! connection, so legitimate traffic can never be refused by it.

use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};

use crate::inspect::Inspector;

/// The largest head the watcher buffers; past it, hyper's own limit answers 431.
const MAX_HEAD: usize = 64 * 1024;

/// What the watcher found on a connection.
#[derive(Clone, Debug, Default)]
pub(crate) struct FramingFlag(Arc<AtomicU8>);

const CLEAN: u8 = 0;
const BARE_LF: u8 = 1;
const LENGTH_AND_CHUNKED: u8 = 2;

impl FramingFlag {
    /// The reason to refuse the connection's request, if the watcher found one.
    pub fn refusal(&self) -> Option<&'static str> {
        match self.0.load(Ordering::Acquire) {
            BARE_LF => Some("a header line ends in a bare LF"),
            LENGTH_AND_CHUNKED => Some("both Content-Length and Transfer-Encoding"),
            _ => None,
        }
    }

    fn set(&self, finding: u8) {
        let _ = self
            .0
            .compare_exchange(CLEAN, finding, Ordering::AcqRel, Ordering::Acquire);
    }
}

enum State {
    /// Reading a request head into the buffer.
    Head,
    /// Skipping this many body bytes.
    Body(u64),
    /// No longer watching this connection.
    Done,
}

/// Watches the HTTP/1 request heads a connection receives, as the [`Inspector`] of its stream.
pub(crate) struct FramingWatch {
    state: State,
    head: Vec<u8>,
    flag: FramingFlag,
}

impl FramingWatch {
    /// A watch reporting its findings through `flag`.
    pub fn new(flag: FramingFlag) -> Self {
        Self {
            state: State::Head,
            head: Vec::new(),
            flag,
        }
    }

    fn observe(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            match self.state {
                State::Done => return,
                State::Body(remaining) => {
                    let skipped = bytes
                        .len()
                        .min(usize::try_from(remaining).unwrap_or(usize::MAX));
                    let left = remaining - skipped as u64;
                    bytes = &bytes[skipped..];
                    self.state = if left == 0 {
                        State::Head
                    } else {
                        State::Body(left)
                    };
                }
                State::Head => {
                    let before = self.head.len();
                    self.head.extend_from_slice(bytes);
                    let Some(end) = head_end(&self.head) else {
                        if self.head.len() > MAX_HEAD {
                            self.state = State::Done;
                        }
                        return;
                    };
                    bytes = &bytes[end - before..];
                    self.state = judge(&self.head[..end], &self.flag);
                    self.head.clear();
                }
            }
        }
    }
}

/// Checks one complete head and decides how to go on.
fn judge(head: &[u8], flag: &FramingFlag) -> State {
    let head = trim_leading_empty_lines(head);
    let bare_lf = head
        .iter()
        .enumerate()
        .any(|(at, byte)| *byte == b'\n' && (at == 0 || head[at - 1] != b'\r'));
    if bare_lf {
        flag.set(BARE_LF);
        return State::Done;
    }
    let mut lines = head.split(|byte| *byte == b'\n');
    let request_line = lines.next().unwrap_or_default();
    if request_line.starts_with(b"PRI ") || request_line.starts_with(b"CONNECT ") {
        return State::Done;
    }
    let (mut length, mut chunked, mut upgrade) = (None, false, false);
    for line in lines {
        let Some(colon) = line.iter().position(|byte| *byte == b':') else {
            continue;
        };
        let (name, value) = (&line[..colon], trim(&line[colon + 1..]));
        if name.eq_ignore_ascii_case(b"content-length") {
            length = Some(
                std::str::from_utf8(value)
                    .ok()
                    .and_then(|text| text.parse::<u64>().ok()),
            );
        } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
            chunked = true;
        } else if name.eq_ignore_ascii_case(b"upgrade") {
            upgrade = true;
        }
    }
    match (length, chunked) {
        (Some(_), true) => {
            flag.set(LENGTH_AND_CHUNKED);
            State::Done
        }
        (_, true) | (Some(None), false) => State::Done,
        _ if upgrade => State::Done,
        (Some(Some(0)) | None, false) => State::Head,
        (Some(Some(length)), false) => State::Body(length),
    }
}

/// The index just past the empty line that ends a head, if the head is complete.
fn head_end(head: &[u8]) -> Option<usize> {
    let start = head.len() - trim_leading_empty_lines(head).len();
    let mut line_start = start;
    for at in start..head.len() {
        if head[at] != b'\n' {
            continue;
        }
        let line = &head[line_start..at];
        if line_start > start && (line.is_empty() || line == b"\r") {
            return Some(at + 1);
        }
        line_start = at + 1;
    }
    None
}

fn trim_leading_empty_lines(mut head: &[u8]) -> &[u8] {
    loop {
        if let Some(rest) = head.strip_prefix(b"\r\n") {
            head = rest;
        } else if let Some(rest) = head.strip_prefix(b"\n") {
            head = rest;
        } else {
            return head;
        }
    }
}

fn trim(value: &[u8]) -> &[u8] {
    let start = value
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(value.len());
    let end = value
        .iter()
        .rposition(|b| !b.is_ascii_whitespace())
        .map_or(start, |at| at + 1);
    &value[start..end]
}

impl Inspector for FramingWatch {
    fn inspecting(&self) -> bool {
        !matches!(self.state, State::Done)
    }

    fn inspect(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.observe(bytes);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn watch(chunks: &[&[u8]]) -> Option<&'static str> {
        let flag = FramingFlag::default();
        let mut watch = FramingWatch::new(flag.clone());
        for chunk in chunks {
            watch.observe(chunk);
        }
        flag.refusal()
    }

    #[test]
    fn clean_requests_pass_even_pipelined_and_split() {
        assert_eq!(watch(&[b"GET / HTTP/1.1\r\nHost: a\r\n\r\n"]), None);
        assert_eq!(
            watch(&[
                b"POST / HTTP/1.1\r\nContent-Length: 5\r\n\r\nab\n\nc",
                b"GET / HTTP/1.1\r\nHost: a\r\n\r\n"
            ]),
            None,
            "body bytes are not mistaken for a head"
        );
        assert_eq!(
            watch(&[b"GET / HT", b"TP/1.1\r\nHo", b"st: a\r\n\r", b"\n"]),
            None
        );
        assert_eq!(watch(&[b"\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n"]), None);
    }

    #[test]
    fn bare_line_feeds_are_flagged() {
        assert!(watch(&[b"GET / HTTP/1.1\nHost: a\n\n"]).is_some());
        assert!(watch(&[b"GET / HTTP/1.1\r\nX: a\nHost: a\r\n\r\n"]).is_some());
        assert!(
            watch(&[b"POST / HTTP/1.1\r\nContent-Length: 1\r\n\r\nxGET / HTTP/1.1\nHost: a\n\n"])
                .is_some(),
            "the next head on a keep-alive connection is watched too"
        );
    }

    #[test]
    fn length_with_chunked_is_flagged_in_either_order() {
        let cl_te = b"POST / HTTP/1.1\r\nContent-Length: 13\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nX";
        let te_cl = b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\ncontent-length: 3\r\n\r\n";
        assert!(watch(&[cl_te]).is_some());
        assert!(watch(&[te_cl]).is_some());
    }

    #[test]
    fn watching_stops_where_framing_gets_complicated() {
        let chunked =
            b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\na\nb\r\n0\r\n\r\n";
        assert_eq!(
            watch(&[chunked]),
            None,
            "chunk data is never read as a head"
        );
        let preface = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\n";
        assert_eq!(watch(&[preface]), None);
    }
}
