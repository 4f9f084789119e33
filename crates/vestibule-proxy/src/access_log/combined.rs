//! Access-log lines in the combined log format of nginx and Apache, written straight into the
//! line buffer.

use std::io::Write as _;

use http::HeaderValue;

use super::AccessRecord;
use super::clock::{push_padded, write_combined};

/// Writes `record` as `CLIENT - - [TIME] "REQUEST LINE" STATUS BYTES "REFERER" "USER AGENT"`
/// and a newline.
pub(super) fn line(record: &AccessRecord, out: &mut Vec<u8>) {
    let head = &record.head;
    let _ = write!(out, "{}", record.client.ip());
    out.extend_from_slice(b" - - [");
    write_combined(out, head.time);
    out.extend_from_slice(b"] \"");
    out.extend_from_slice(head.method.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(head.target().as_bytes());
    out.push(b' ');
    out.extend_from_slice(super::protocol(head.version).as_bytes());
    out.extend_from_slice(b"\" ");
    push_padded(out, u64::from(record.status), 1);
    out.push(b' ');
    push_padded(out, record.bytes_out, 1);
    out.push(b' ');
    quoted(out, head.referer.as_ref());
    out.push(b' ');
    quoted(out, head.user_agent.as_ref());
    out.push(b'\n');
}

/// A header's text in double quotes, its own double quotes escaped and invalid UTF-8
/// replaced; `"-"` without it.
fn quoted(out: &mut Vec<u8>, value: Option<&HeaderValue>) {
    out.push(b'"');
    match value {
        None => out.push(b'-'),
        Some(value) => {
            for chunk in value.as_bytes().utf8_chunks() {
                for (at, part) in chunk.valid().split('"').enumerate() {
                    if at > 0 {
                        out.extend_from_slice(b"\\\"");
                    }
                    out.extend_from_slice(part.as_bytes());
                }
                if !chunk.invalid().is_empty() {
                    out.extend_from_slice("\u{fffd}".as_bytes());
                }
            }
        }
    }
    out.push(b'"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::access_log::tests::record;

    fn text(record: &AccessRecord) -> String {
        let mut out = Vec::new();
        line(record, &mut out);
        String::from_utf8(out).expect("UTF-8")
    }

    #[test]
    fn combined_lines_look_like_nginx() {
        assert_eq!(
            text(&record()),
            "192.0.2.4 - - [25/Nov/2026:09:20:25 +0000] \"GET /cart?id=1 HTTP/1.1\" 200 512 \"-\" \"curl/8.0\"\n"
        );
    }

    #[test]
    fn quotes_are_escaped_and_bytes_replaced() {
        let mut record = record();
        record.head.referer = Some(HeaderValue::from_static("https://a.example/\"q\""));
        record.head.user_agent =
            Some(HeaderValue::from_bytes(b"say \"hi\" caf\xc3\xa9\xff\\").expect("header"));
        record.client = "[2001:db8::1]:443".parse().expect("address");
        assert_eq!(
            text(&record),
            "2001:db8::1 - - [25/Nov/2026:09:20:25 +0000] \"GET /cart?id=1 HTTP/1.1\" 200 512 \
             \"https://a.example/\\\"q\\\"\" \"say \\\"hi\\\" café\u{fffd}\\\"\n"
        );
    }
}
