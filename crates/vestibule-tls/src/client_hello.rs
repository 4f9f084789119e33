//! Reading the server name from the first bytes of a TLS connection, without terminating it.
//!
//! [`read_client_hello`] looks at the bytes a client sent so far and finds the `server_name`
//! extension of its ClientHello (RFC 8446 §4.1.2, RFC 6066 §3), reassembled from up to
//! [`MAX_HELLO_RECORDS`] handshake records. Every length is checked against the bytes present;
//! nothing here panics or allocates more than the input's size.

/// The largest ClientHello handshake message read, in bytes; real ones are a few KiB.
pub const MAX_HELLO_BYTES: usize = 16 * 1024;

/// The most TLS records a ClientHello may span (real clients send one).
pub const MAX_HELLO_RECORDS: usize = 16;

/// The largest record fragment TLS allows (2^14 bytes).
const MAX_FRAGMENT: usize = 16 * 1024;
/// Record content type of handshake messages.
const HANDSHAKE: u8 = 22;
/// Handshake message type of a ClientHello.
const CLIENT_HELLO: u8 = 1;
/// Extension type of `server_name`.
const SERVER_NAME: u16 = 0;
/// `NameType` of a DNS host name in the `server_name` extension.
const HOST_NAME: u8 = 0;

/// What the bytes a client sent so far say about its ClientHello.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClientHello {
    /// Not complete yet: nothing more can be told before the client has sent this many bytes in
    /// all.
    Incomplete(usize),
    /// A whole ClientHello, and the host name it asks for (lower case, without a trailing dot),
    /// if it names one.
    Complete(Option<String>),
    /// Not a ClientHello a TLS server would accept (or larger than the limits above).
    Invalid,
}

/// Reads the ClientHello at the start of `bytes`, the first bytes received on a connection.
/// Bytes past the ClientHello are ignored.
pub fn read_client_hello(bytes: &[u8]) -> ClientHello {
    let mut message = Vec::new();
    let mut at = 0;
    for _ in 0..MAX_HELLO_RECORDS {
        let Some(header) = bytes.get(at..at + 5) else {
            return ClientHello::Incomplete(at + 5);
        };
        let length = usize::from(u16::from_be_bytes([header[3], header[4]]));
        if header[0] != HANDSHAKE || header[1] != 3 || length == 0 || length > MAX_FRAGMENT {
            return ClientHello::Invalid;
        }
        let end = at + 5 + length;
        let Some(fragment) = bytes.get(at + 5..end) else {
            return early_verdict(bytes.get(at + 5..).unwrap_or_default(), &message, end);
        };
        message.extend_from_slice(fragment);
        match declared_length(&message) {
            Err(()) => return ClientHello::Invalid,
            Ok(Some(total)) if message.len() >= total => {
                return match message.get(4..total).and_then(server_name) {
                    Some(name) => ClientHello::Complete(name),
                    None => ClientHello::Invalid,
                };
            }
            Ok(_) => at = end,
        }
    }
    ClientHello::Invalid
}

/// The verdict while a record is still arriving: invalid as soon as the handshake header is
/// wrong, else wait for the whole record ending at `end`.
fn early_verdict(partial: &[u8], message: &[u8], end: usize) -> ClientHello {
    if message.len() < 4 {
        let head: Vec<u8> = message.iter().chain(partial).take(4).copied().collect();
        if declared_length(&head).is_err() {
            return ClientHello::Invalid;
        }
    }
    ClientHello::Incomplete(end)
}

/// The length of the whole handshake message (header included) once its header is there;
/// `Err` when it is not a ClientHello or is too large.
fn declared_length(message: &[u8]) -> Result<Option<usize>, ()> {
    let Some(&kind) = message.first() else {
        return Ok(None);
    };
    if kind != CLIENT_HELLO {
        return Err(());
    }
    let Some(length) = message.get(1..4) else {
        return Ok(None);
    };
    let length =
        usize::from(length[0]) << 16 | usize::from(length[1]) << 8 | usize::from(length[2]);
    if length > MAX_HELLO_BYTES {
        return Err(());
    }
    Ok(Some(4 + length))
}

/// A cursor over a byte slice whose reads fail instead of running past its end.
struct Cursor<'a>(&'a [u8]);

impl<'a> Cursor<'a> {
    fn take(&mut self, count: usize) -> Option<&'a [u8]> {
        let (taken, rest) = self.0.split_at_checked(count)?;
        self.0 = rest;
        Some(taken)
    }

    fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|bytes| bytes[0])
    }

    fn u16(&mut self) -> Option<u16> {
        self.take(2)
            .map(|bytes| u16::from_be_bytes([bytes[0], bytes[1]]))
    }

    /// A block preceded by its one-byte length.
    fn block8(&mut self) -> Option<&'a [u8]> {
        let length = self.u8()?;
        self.take(usize::from(length))
    }

    /// A block preceded by its two-byte length.
    fn block16(&mut self) -> Option<&'a [u8]> {
        let length = self.u16()?;
        self.take(usize::from(length))
    }

    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// The host name in a ClientHello body; `None` when the body is malformed.
fn server_name(body: &[u8]) -> Option<Option<String>> {
    let mut body = Cursor(body);
    let (major, _minor) = (body.u8()?, body.u8()?);
    let _random = body.take(32)?;
    let session_id = body.block8()?;
    let cipher_suites = body.block16()?;
    let compression = body.block8()?;
    if major != 3 || session_id.len() > 32 || cipher_suites.is_empty() || compression.is_empty() {
        return None;
    }
    if cipher_suites.len() % 2 != 0 {
        return None;
    }
    if body.is_empty() {
        return Some(None);
    }
    let mut extensions = Cursor(body.block16()?);
    if !body.is_empty() {
        return None;
    }
    let mut found = None;
    while !extensions.is_empty() {
        let kind = extensions.u16()?;
        let data = extensions.block16()?;
        if kind == SERVER_NAME {
            if found.is_some() {
                return None;
            }
            found = Some(host_name(data)?);
        }
    }
    Some(found.flatten())
}

/// The host name in a `server_name` extension's data; `Some(None)` when it names no host.
fn host_name(data: &[u8]) -> Option<Option<String>> {
    let mut data = Cursor(data);
    let mut list = Cursor(data.block16()?);
    if !data.is_empty() || list.is_empty() {
        return None;
    }
    let mut host = None;
    while !list.is_empty() {
        let kind = list.u8()?;
        let name = list.block16()?;
        if kind == HOST_NAME {
            if host.is_some() {
                return None;
            }
            host = Some(valid_host(name)?);
        }
    }
    Some(host)
}

/// `name` as a lower-case host name without its trailing dot, if it is a plausible DNS name:
/// labels of 1 to 63 letters, digits, `-` or `_`, 253 bytes in all.
fn valid_host(name: &[u8]) -> Option<String> {
    let name = name.strip_suffix(b".").unwrap_or(name);
    let label = |label: &[u8]| {
        (1..=63).contains(&label.len())
            && label
                .iter()
                .all(|byte| byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_'))
    };
    let plausible = name.len() <= 253 && name.split(|&byte| byte == b'.').all(label);
    plausible.then(|| String::from_utf8_lossy(name).to_ascii_lowercase())
}

#[cfg(test)]
mod tests;
