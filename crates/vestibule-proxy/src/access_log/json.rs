//! Access-log lines as JSON objects, written straight into the line buffer.
//!
//! The keys come in alphabetical order and numbers and strings are written exactly as
//! `serde_json` writes them, so lines read the same as when they were built through it.

use std::io::Write as _;

use http::HeaderValue;

use super::AccessRecord;
use super::clock::{push_padded, write_rfc3339};
use crate::hex::write_hex;

/// Writes `record` as one JSON object and a newline.
pub(super) fn line(record: &AccessRecord, out: &mut Vec<u8>) {
    let head = &record.head;
    let route = &record.route;
    key(out, "{\"bytes_in\":");
    push_padded(out, record.bytes_in, 1);
    key(out, ",\"bytes_out\":");
    push_padded(out, record.bytes_out, 1);
    key(out, ",\"client\":\"");
    let _ = write!(out, "{}", record.client);
    key(out, "\",\"duration\":");
    float(out, Some(record.duration));
    key(out, ",\"host\":");
    lossy(out, head.host());
    key(out, ",\"ingress\":");
    string(out, &route.ingress);
    key(out, ",\"method\":");
    string(out, head.method.as_str());
    key(out, ",\"namespace\":");
    string(out, &route.namespace);
    key(out, ",\"path\":");
    string(out, &head.target());
    key(out, ",\"protocol\":");
    string(out, &super::protocol(head.version));
    key(out, ",\"request_id\":");
    header(out, record.request_id.as_ref());
    key(out, ",\"service\":");
    string(out, &route.service);
    key(out, ",\"status\":");
    push_padded(out, u64::from(record.status), 1);
    key(out, ",\"time\":\"");
    write_rfc3339(out, head.time);
    key(out, "\",\"tls_version\":");
    match record.tls_version {
        Some(version) => string(out, version),
        None => key(out, "null"),
    }
    key(out, ",\"trace_id\":");
    match &record.trace {
        Some(trace) => {
            let mut hex = [0; 32];
            write_hex(&mut hex, trace.trace_id);
            out.push(b'"');
            out.extend_from_slice(&hex);
            out.push(b'"');
        }
        None => key(out, "null"),
    }
    key(out, ",\"upstream_addr\":");
    match &record.upstream_addr {
        Some(addr) => string(out, addr.as_str()),
        None => key(out, "null"),
    }
    key(out, ",\"upstream_status\":");
    match record.upstream_status {
        Some(status) => push_padded(out, u64::from(status), 1),
        None => key(out, "null"),
    }
    key(out, ",\"upstream_time\":");
    float(out, record.upstream_time);
    key(out, ",\"user_agent\":");
    header(out, record.head.user_agent.as_ref());
    key(out, "}\n");
}

fn key(out: &mut Vec<u8>, text: &str) {
    out.extend_from_slice(text.as_bytes());
}

/// A number as `serde_json` writes it (shortest round-trip form; `null` when not finite).
fn float(out: &mut Vec<u8>, value: Option<f64>) {
    if serde_json::to_writer(&mut *out, &value).is_err() {
        key(out, "null");
    }
}

/// A header's text as a string (invalid UTF-8 replaced), or `null`.
fn header(out: &mut Vec<u8>, value: Option<&HeaderValue>) {
    match value {
        Some(value) => lossy(out, value.as_bytes()),
        None => key(out, "null"),
    }
}

/// Bytes as a JSON string, each run of invalid UTF-8 replaced by U+FFFD as
/// `String::from_utf8_lossy` does.
pub(super) fn lossy(out: &mut Vec<u8>, bytes: &[u8]) {
    out.push(b'"');
    for chunk in bytes.utf8_chunks() {
        escape(out, chunk.valid());
        if !chunk.invalid().is_empty() {
            out.extend_from_slice(
                char::REPLACEMENT_CHARACTER
                    .encode_utf8(&mut [0; 4])
                    .as_bytes(),
            );
        }
    }
    out.push(b'"');
}

/// Text as a JSON string.
fn string(out: &mut Vec<u8>, text: &str) {
    out.push(b'"');
    escape(out, text);
    out.push(b'"');
}

/// Escapes what JSON requires (quotes, backslashes, control characters), with the short
/// forms where JSON has them; everything else, non-ASCII included, is copied as is.
fn escape(out: &mut Vec<u8>, text: &str) {
    let bytes = text.as_bytes();
    let mut start = 0;
    for (at, &byte) in bytes.iter().enumerate() {
        let short = match byte {
            b'"' => b'"',
            b'\\' => b'\\',
            b'\n' => b'n',
            b'\r' => b'r',
            b'\t' => b't',
            0x08 => b'b',
            0x0c => b'f',
            0x00..=0x1f => b'u',
            _ => continue,
        };
        out.extend_from_slice(&bytes[start..at]);
        out.push(b'\\');
        out.push(short);
        if short == b'u' {
            let mut hex = [0; 4];
            write_hex(&mut hex, u128::from(byte));
            out.extend_from_slice(&hex);
        }
        start = at + 1;
    }
    out.extend_from_slice(&bytes[start..]);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::access_log::tests::record;
    use http::Uri;

    fn text(record: &AccessRecord) -> String {
        let mut out = Vec::new();
        line(record, &mut out);
        String::from_utf8(out).expect("UTF-8")
    }

    /// The line as it was built before: through a `serde_json::Value`.
    fn through_value(record: &AccessRecord) -> String {
        let header = |value: Option<&HeaderValue>| {
            value.map(|value| String::from_utf8_lossy(value.as_bytes()).into_owned())
        };
        let mut time = Vec::new();
        write_rfc3339(&mut time, record.head.time);
        let mut line = serde_json::json!({
            "time": String::from_utf8(time).expect("ASCII"),
            "request_id": header(record.request_id.as_ref()),
            "trace_id": record.trace.map(|trace| format!("{:032x}", trace.trace_id)),
            "client": record.client.to_string(),
            "method": record.head.method.as_str(),
            "host": String::from_utf8_lossy(record.head.host()),
            "path": record.head.target(),
            "protocol": format!("{:?}", record.head.version),
            "status": record.status,
            "bytes_in": record.bytes_in,
            "bytes_out": record.bytes_out,
            "duration": record.duration,
            "upstream_addr": record.upstream_addr.as_ref().map(ToString::to_string),
            "upstream_status": record.upstream_status,
            "upstream_time": record.upstream_time,
            "namespace": &*record.route.namespace,
            "ingress": &*record.route.ingress,
            "service": &*record.route.service,
            "user_agent": header(record.head.user_agent.as_ref()),
            "tls_version": record.tls_version,
        })
        .to_string();
        line.push('\n');
        line
    }

    #[test]
    fn json_lines_carry_every_field() {
        let line = text(&record());
        let json: serde_json::Value = serde_json::from_str(&line).expect("JSON");
        assert_eq!(json["time"], "2026-11-25T09:20:25.123Z");
        assert_eq!(json["status"], 200);
        assert_eq!(json["service"], "cart");
        assert_eq!(json["upstream_addr"], "10.0.0.7:8080");
        assert_eq!(json["tls_version"], "TLSv1.3");
        assert_eq!(json["protocol"], "HTTP/1.1");
        assert_eq!(json["trace_id"], "4bf92f3577b34da6a3ce929d0e0e4736");
        assert!(line.ends_with('\n'));
    }

    #[test]
    fn lines_are_those_a_json_value_gave() {
        let mut tricky = record();
        tricky.head.user_agent = Some(
            HeaderValue::from_bytes(b"tab\there \"quoted\" back\\slash caf\xc3\xa9 bad\xff\xfeend")
                .expect("header"),
        );
        tricky.head.uri = Uri::from_static("/caf%C3%A9/\"x\"?q={a}");
        tricky.head.host = Some(HeaderValue::from_bytes(b"h\xe9st").expect("header"));
        tricky.duration = 0.000_008_2;
        tricky.upstream_time = Some(12.5);
        let mut empty = record();
        empty.upstream_addr = None;
        empty.upstream_status = None;
        empty.upstream_time = None;
        empty.request_id = None;
        empty.trace = None;
        empty.head.user_agent = None;
        empty.tls_version = None;
        empty.route = Default::default();
        empty.head.version = http::Version::HTTP_2;
        empty.head.uri = Uri::from_static("https://h2.example/");
        for record in [record(), tricky, empty] {
            assert_eq!(text(&record), through_value(&record));
        }
    }

    fn escaped(bytes: &[u8]) -> String {
        let mut out = Vec::new();
        lossy(&mut out, bytes);
        String::from_utf8(out).expect("UTF-8")
    }

    #[test]
    fn strings_are_escaped() {
        assert_eq!(escaped(b"say \"hi\""), r#""say \"hi\"""#);
        assert_eq!(escaped(br"C:\dir"), r#""C:\\dir""#);
        assert_eq!(
            escaped(b"\x00\x01\x08\t\n\x0b\x0c\r\x1b\x1f\x7f"),
            "\"\\u0000\\u0001\\b\\t\\n\\u000b\\f\\r\\u001b\\u001f\x7f\""
        );
        assert_eq!(escaped("café ☕ 🦀".as_bytes()), "\"café ☕ 🦀\"");
        assert_eq!(escaped(b"a\xffb\xc3"), "\"a\u{fffd}b\u{fffd}\"");
        assert_eq!(escaped(b"\xf0\x9f\xa6"), "\"\u{fffd}\"");
        assert_eq!(escaped(b""), "\"\"");
        for bytes in [&b"\x00 \"\\\x7f\xc3\xa9 \xff"[..], b"plain", b"\xe2\x82"] {
            let expected = serde_json::to_string(&String::from_utf8_lossy(bytes)).expect("JSON");
            assert_eq!(escaped(bytes), expected);
        }
    }
}
