//! A fast reader for the YAML manifests are usually written in.
//!
//! serde-saphyr reads any YAML, with budgets against hostile input and precise error messages,
//! but at about 14 MB/s: 10,000 Ingresses with their Services took a second to read. This reader
//! builds values straight from the events of the same parser (granit-parser, which serde-saphyr
//! is built on), about twice as fast. It reads only what it is sure to read as serde-saphyr does:
//! mappings with text keys, sequences, quoted scalars, and plain scalars that are `null`, `true`,
//! `false`, a decimal integer or unmistakably text. Anything else (anchors, aliases, tags,
//! directives, duplicate keys, other plain scalars, syntax errors, input near serde-saphyr's
//! budgets) makes it give up, and the caller reads the text with serde-saphyr.
//!
//! The plainest YAML, which most manifests are, is read line by line without the parser
//! ([`lines`]), faster still; the same values are built from either source.

use std::borrow::Cow;

use granit_parser::{Event, Options, Parser, ScalarStyle};
use serde_json::{Map, Value};

/// Deeper nesting is left to serde-saphyr, whose own limit is 64.
const MAX_DEPTH: usize = 32;
/// More nodes in one text are left to serde-saphyr, whose own limit is 250,000.
const MAX_NODES: usize = 100_000;
/// More documents in one text, null ones included, are left to serde-saphyr, whose own limit is
/// 1,024.
const MAX_DOCUMENTS: usize = 512;
/// More scalar text is left to serde-saphyr, whose own limit is 64 MiB.
const MAX_SCALAR_BYTES: usize = 16 << 20;

/// Plain scalars that some YAML reader takes for something other than text.
const KEYWORDS: [&str; 12] = [
    "true", "false", "null", "yes", "no", "on", "off", "y", "n", "nan", "inf", "infinity",
];

/// The letters YAML numbers and dates can hold: hexadecimal digits, radix prefixes, the
/// exponent (among the digits), and a date's `T` and `Z`.
const NUMBER_LETTERS: &[u8] = b"abcdefABCDEFxXoOtTzZ";

mod lines;

/// A collection being read.
enum Open {
    Sequence(Vec<Value>),
    Mapping(Map<String, Value>, Option<String>),
}

/// The documents of `text` that are not null, as serde-saphyr's `from_multiple` reads them; `None`
/// when this reader is not sure it would read them the same.
pub(crate) fn read_documents(text: &str) -> Option<Vec<Value>> {
    lines::read_documents(text).or_else(|| read_events(text))
}

/// Reads `text` from granit-parser's events.
fn read_events(text: &str) -> Option<Vec<Value>> {
    let mut options = Options::default();
    options.emit_comments = false;
    let mut documents = Documents::default();
    for event in Parser::new_from_str_with_options(text, options) {
        let (event, _span) = event.ok()?;
        match event {
            Event::StreamStart | Event::DocumentStart(_, None) => {}
            Event::DocumentEnd => documents.end_document()?,
            Event::StreamEnd => break,
            Event::Scalar(scalar, style, 0, None) => {
                documents.scalar(scalar, style == ScalarStyle::Plain)?;
            }
            Event::SequenceStart(_, 0, None) => documents.open_sequence()?,
            Event::MappingStart(_, 0, None) => documents.open_mapping()?,
            Event::SequenceEnd => documents.close_sequence()?,
            Event::MappingEnd => documents.close_mapping()?,
            _ => return None,
        }
    }
    documents.finish()
}

/// Values built from a stream of YAML node events, within serde-saphyr's budgets; each method
/// returns `None` when the reader should give up.
#[derive(Default)]
struct Documents {
    documents: Vec<Value>,
    open: Vec<Open>,
    nodes: usize,
    scalar_bytes: usize,
    ended: usize,
}

impl Documents {
    fn end_document(&mut self) -> Option<()> {
        // Null documents count towards serde-saphyr's limit too.
        self.ended += 1;
        (self.ended <= MAX_DOCUMENTS).then_some(())
    }

    fn scalar(&mut self, scalar: Cow<'_, str>, plain: bool) -> Option<()> {
        self.scalar_bytes += scalar.len();
        if self.scalar_bytes > MAX_SCALAR_BYTES {
            return None;
        }
        let value = match plain {
            true => plain_scalar(&scalar)?,
            false => Value::String(scalar.into_owned()),
        };
        self.add(value)
    }

    fn open_sequence(&mut self) -> Option<()> {
        self.open(Open::Sequence(Vec::new()))
    }

    fn open_mapping(&mut self) -> Option<()> {
        self.open(Open::Mapping(Map::new(), None))
    }

    fn open(&mut self, collection: Open) -> Option<()> {
        self.open.push(collection);
        (self.open.len() <= MAX_DEPTH).then_some(())
    }

    fn close_sequence(&mut self) -> Option<()> {
        match self.open.pop()? {
            Open::Sequence(items) => self.add(Value::Array(items)),
            Open::Mapping(..) => None,
        }
    }

    fn close_mapping(&mut self) -> Option<()> {
        match self.open.pop()? {
            Open::Mapping(entries, None) => self.add(Value::Object(entries)),
            _ => None,
        }
    }

    fn add(&mut self, value: Value) -> Option<()> {
        self.nodes += 1;
        if self.nodes > MAX_NODES {
            return None;
        }
        match self.open.last_mut() {
            None if value.is_null() => {}
            None => self.documents.push(value),
            Some(Open::Sequence(items)) => items.push(value),
            Some(Open::Mapping(entries, pending_key)) => match pending_key.take() {
                None => {
                    let Value::String(key) = value else {
                        return None;
                    };
                    *pending_key = Some(key);
                }
                Some(key) => {
                    if entries.insert(key, value).is_some() {
                        return None;
                    }
                }
            },
        }
        Some(())
    }

    fn finish(self) -> Option<Vec<Value>> {
        self.open.is_empty().then_some(self.documents)
    }
}

/// What a plain scalar means, if it is one whose meaning no YAML reader disputes.
fn plain_scalar(scalar: &str) -> Option<Value> {
    match scalar {
        "" | "~" | "null" => return Some(Value::Null),
        "true" => return Some(Value::Bool(true)),
        "false" => return Some(Value::Bool(false)),
        _ => {}
    }
    let bytes = scalar.as_bytes();
    if bytes.iter().all(u8::is_ascii_digit) {
        let octal_in_yaml_1_1 = bytes.len() > 1 && bytes[0] == b'0';
        return match octal_in_yaml_1_1 {
            true => None,
            false => scalar.parse::<i64>().ok().map(Value::from),
        };
    }
    let is_text = match bytes[0] {
        b'/' => true,
        first if first.is_ascii_alphabetic() => !is_keyword(scalar),
        first if first.is_ascii_digit() => {
            is_dotted_numbers(scalar) || has_unit(bytes) || is_uuid(bytes)
        }
        _ => false,
    };
    is_text.then(|| Value::String(scalar.to_owned()))
}

fn is_keyword(scalar: &str) -> bool {
    KEYWORDS
        .iter()
        .any(|keyword| scalar.eq_ignore_ascii_case(keyword))
}

/// Whether a scalar holds a letter that no YAML number or date has, as `8m`, `30s` or `1Gi` do.
fn has_unit(bytes: &[u8]) -> bool {
    bytes
        .iter()
        .any(|byte| byte.is_ascii_alphabetic() && !NUMBER_LETTERS.contains(byte))
}

/// Whether a scalar is a UUID, such as an object's `metadata.uid`: 8-4-4-4-12 hexadecimal digits.
fn is_uuid(bytes: &[u8]) -> bool {
    bytes.len() == 36
        && bytes.iter().enumerate().all(|(at, byte)| match at {
            8 | 13 | 18 | 23 => *byte == b'-',
            _ => byte.is_ascii_hexdigit(),
        })
}

/// Three or more runs of digits joined by single dots, such as an IPv4 address or a version.
fn is_dotted_numbers(scalar: &str) -> bool {
    let mut parts = 0;
    for part in scalar.split('.') {
        if part.is_empty() || !part.bytes().all(|byte| byte.is_ascii_digit()) {
            return false;
        }
        parts += 1;
    }
    parts >= 3
}

/// Reads `text` with `read` and with serde-saphyr, and fails the test if `read` read it
/// differently; says whether `read` read it.
#[cfg(test)]
fn agrees_with_serde_saphyr(read: fn(&str) -> Option<Vec<Value>>, text: &str) -> bool {
    let Some(quick) = read(text) else {
        return false;
    };
    let full = serde_saphyr::from_multiple::<Value>(text).map_err(|error| error.to_string());
    assert_eq!(Ok(quick), full, "{text:?}");
    true
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    fn agrees(text: &str) -> bool {
        agrees_with_serde_saphyr(read_documents, text)
    }

    #[test]
    fn reads_manifests_as_serde_saphyr_does() {
        assert!(agrees(
            "apiVersion: v1\nkind: Service\nmetadata:\n  name: web\n  annotations: {a: \"true\", 'b': x}\nspec:\n  ports:\n  - port: 80\n    targetPort: http\n  clusterIP: 10.0.0.1\n"
        ));
        assert!(agrees(
            "# leading\n---\na: [1, two, \"3\"]\n---\n~\n---\nb: |\n  line one\n  line two\nc: >\n  folded\n  text\n...\n"
        ));
        assert!(agrees("plain: multi\n  line text\nempty:\nnone: ~\n"));
        assert!(agrees("size: 8m\ntimeout: 30s\nmemory: 1Gi\n"));
        assert!(agrees("uid: 5b0c3f3e-7d0c-4c55-9f55-5a4c1d0b8f1a\n"));
        assert!(agrees("uid: 12345678-1234-1234-1234-123456789012\n"));
        assert!(agrees(""));
        assert!(agrees("just text"));
    }

    #[test]
    fn leaves_everything_else_to_serde_saphyr() {
        for text in [
            "a: &x 1\nb: *x\n",
            "a: !!str 1\n",
            "%YAML 1.2\n---\na: 1\n",
            "a: 1\na: 2\n",
            "1: a\n",
            "? [a]\n: b\n",
            "a: [unclosed\n",
            "a: 1.5\n",
            "a: 1e3\n",
            "a: 0x1F\n",
            "a: 2001-12-14t21:59:43Z\n",
            "a: yes\n",
            "a: 0755\n",
            "a: -1\n",
            "a: 9223372036854775808\n",
        ] {
            assert_eq!(read_documents(text), None, "{text:?}");
        }
        let deep = format!("{}{}", "[".repeat(MAX_DEPTH + 1), "]".repeat(MAX_DEPTH + 1));
        assert_eq!(read_documents(&deep), None);
        let empty_documents = "---\n~\n".repeat(MAX_DOCUMENTS + 1);
        assert_eq!(read_documents(&empty_documents), None);
        assert_eq!(
            read_documents(&"---\n~\n".repeat(MAX_DOCUMENTS)),
            Some(vec![])
        );
    }

    /// Every plain scalar of up to four characters from an alphabet that reaches numbers,
    /// keywords, dates, addresses and quantities, read both ways.
    #[test]
    fn plain_scalars_mean_what_serde_saphyr_says() {
        let alphabet = [
            '0', '1', '9', '.', '-', '+', ':', 'e', 'x', 'n', 'o', 'y', '_', '/', '~', 'm', 'G',
            'T',
        ];
        let mut scalars = vec![String::new()];
        for _ in 0..4 {
            let longer: Vec<String> = scalars
                .iter()
                .flat_map(|scalar| alphabet.iter().map(move |c| format!("{scalar}{c}")))
                .collect();
            scalars.extend(longer);
        }
        scalars.extend(KEYWORDS.iter().flat_map(|keyword| {
            [
                keyword.to_string(),
                keyword.to_uppercase(),
                format!("{keyword}s"),
            ]
        }));
        let mut read = 0;
        for scalar in &scalars {
            let text = format!("key: {scalar}\n");
            if agrees(&text) {
                read += 1;
            }
        }
        assert!(read > 1_000, "only {read} of {} read", scalars.len());
    }

    /// Every YAML file in the repository (examples, test cases, benchmarks) reads the same both ways.
    #[test]
    fn the_repository_s_yaml_reads_the_same_both_ways() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let mut pending = vec![root.clone()];
        let mut read = 0;
        while let Some(dir) = pending.pop() {
            for entry in std::fs::read_dir(&dir).expect("readable") {
                let path = entry.expect("entry").path();
                let name = path
                    .file_name()
                    .and_then(|name| name.to_str())
                    .unwrap_or("");
                if path.is_dir() && !name.starts_with('.') && name != "target" {
                    pending.push(path);
                } else if name.ends_with(".yaml") || name.ends_with(".yml") {
                    let text = std::fs::read_to_string(&path).expect("utf-8");
                    if agrees(&text) {
                        read += 1;
                    }
                }
            }
        }
        assert!(read > 20, "only {read} files read");
    }
}
