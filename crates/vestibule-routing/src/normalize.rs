//! Request paths in the one form matching sees and backends receive.

use std::borrow::Cow;
use std::fmt;

/// Why a request path cannot be routed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InvalidPath {
    /// The path does not start with `/` (only origin-form targets are routed).
    NotAbsolute,
    /// A `%` is not followed by two hex digits.
    BadPercentEncoding,
}

impl fmt::Display for InvalidPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::NotAbsolute => "the request path does not start with '/'",
            Self::BadPercentEncoding => "the request path has an invalid percent-encoding",
        })
    }
}

impl std::error::Error for InvalidPath {}

/// Normalises a request path (without query) so that it cannot reach a rule it does not
/// visibly name: percent-encoded unreserved characters are decoded (`%2e` is `.`), other
/// escapes get upper-case hex and stay encoded (an encoded `/` never separates elements),
/// dot-segments are removed (RFC 3986 section 5.2.4) and repeated slashes merged.
///
/// `/public/../admin`, `/public/%2e%2e/admin` and `//admin` all become `/admin`.
pub fn normalize_path(path: &str) -> Result<Cow<'_, str>, InvalidPath> {
    if !path.starts_with('/') {
        return Err(InvalidPath::NotAbsolute);
    }
    let plain = !path.contains(['%', '.']) && !path.contains("//");
    if plain {
        return Ok(Cow::Borrowed(path));
    }
    let decoded = decode_unreserved(path)?;
    let mut segments: Vec<&str> = Vec::new();
    let mut parts = decoded.split('/').skip(1).peekable();
    let mut trailing_slash = false;
    while let Some(segment) = parts.next() {
        let last = parts.peek().is_none();
        match segment {
            "" | "." => trailing_slash = last,
            ".." => {
                segments.pop();
                trailing_slash = last;
            }
            other => {
                segments.push(other);
                trailing_slash = false;
            }
        }
    }
    let mut normal = String::with_capacity(decoded.len());
    for segment in &segments {
        normal.push('/');
        normal.push_str(segment);
    }
    if trailing_slash || normal.is_empty() {
        normal.push('/');
    }
    Ok(Cow::Owned(normal))
}

fn decode_unreserved(path: &str) -> Result<String, InvalidPath> {
    let bytes = path.as_bytes();
    let mut out = String::with_capacity(path.len());
    let mut index = 0;
    while index < bytes.len() {
        if bytes[index] != b'%' {
            let next = path[index..]
                .find('%')
                .map_or(bytes.len(), |offset| index + offset);
            out.push_str(&path[index..next]);
            index = next;
            continue;
        }
        let hex = |at: usize| {
            bytes
                .get(at)
                .and_then(|digit| char::from(*digit).to_digit(16))
                .ok_or(InvalidPath::BadPercentEncoding)
        };
        let value = u8::try_from(hex(index + 1)? * 16 + hex(index + 2)?)
            .map_err(|_| InvalidPath::BadPercentEncoding)?;
        if value.is_ascii_alphanumeric() || matches!(value, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(value));
        } else {
            out.push('%');
            out.push_str(&format!("{value:02X}"));
        }
        index += 3;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dot_segments_and_duplicate_slashes_go() {
        let cases = [
            ("/public/../admin", "/admin"),
            ("/public/%2e%2e/admin", "/admin"),
            ("/public/%2E%2E/admin", "/admin"),
            ("/public/./../admin", "/admin"),
            ("//admin", "/admin"),
            ("/a//b///c", "/a/b/c"),
            ("/a/b/..", "/a/"),
            ("/a/b/.", "/a/b/"),
            ("/../../etc/passwd", "/etc/passwd"),
            ("/", "/"),
            ("/..", "/"),
            ("/a/", "/a/"),
            ("/%7Euser/%41bc", "/~user/Abc"),
            ("/a%2fb/../c", "/c"),
            ("/a%2fb", "/a%2Fb"),
            ("/files/a%20b.txt", "/files/a%20b.txt"),
            ("/v1.2/x", "/v1.2/x"),
            ("/plain/path", "/plain/path"),
        ];
        for (raw, expected) in cases {
            assert_eq!(normalize_path(raw).as_deref(), Ok(expected), "{raw}");
        }
    }

    #[test]
    fn encoded_slashes_never_separate() {
        assert_eq!(
            normalize_path("/public%2F..%2Fadmin").as_deref(),
            Ok("/public%2F..%2Fadmin")
        );
    }

    #[test]
    fn invalid_paths_are_errors() {
        assert_eq!(normalize_path("*"), Err(InvalidPath::NotAbsolute));
        assert_eq!(
            normalize_path("/a%zz"),
            Err(InvalidPath::BadPercentEncoding)
        );
        assert_eq!(normalize_path("/a%2"), Err(InvalidPath::BadPercentEncoding));
        assert_eq!(normalize_path("/a%"), Err(InvalidPath::BadPercentEncoding));
    }

    #[test]
    fn plain_paths_are_borrowed() {
        assert!(matches!(
            normalize_path("/api/v1/items"),
            Ok(Cow::Borrowed(_))
        ));
    }
}
