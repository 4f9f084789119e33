//! A line-by-line reader for the plainest YAML, which generated and hand-written manifests
//! mostly are: block mappings and sequences indented with spaces, plain keys, one-line plain and
//! quoted scalars, one-line flow collections, comments and `---` separators. It needs no
//! tokens or events, and reads such text several times faster than granit-parser.
//!
//! Anything else (tabs, carriage returns, non-ASCII text, block and multi-line scalars, escapes,
//! quoted or complex keys, anchors, aliases, tags, directives, plain scalars that begin with an
//! indicator) makes it give up, and the caller reads the text from the parser's events.

use std::borrow::Cow;

use serde_json::Value;

use super::Documents;

/// The documents of `text` that are not null; `None` when the text is not of the plainest kind.
pub(super) fn read_documents(text: &str) -> Option<Vec<Value>> {
    if !text
        .bytes()
        .all(|byte| byte == b'\n' || (b' '..=b'~').contains(&byte))
    {
        return None;
    }
    let mut reader = Lines::default();
    for line in text.split('\n') {
        reader.line(line)?;
    }
    reader.end_document()?;
    reader.documents.finish()
}

/// A block collection being read, and the column its entries start at.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Block {
    Mapping(usize),
    Sequence(usize),
}

impl Block {
    fn indent(self) -> usize {
        match self {
            Self::Mapping(indent) | Self::Sequence(indent) => indent,
        }
    }
}

#[derive(Default)]
struct Lines {
    documents: Documents,
    blocks: Vec<Block>,
    /// The last entry (`key:` or `-`) has its value on the lines that follow.
    value_follows: bool,
    /// The document's root node has been read.
    rooted: bool,
}

impl Lines {
    fn line(&mut self, line: &str) -> Option<()> {
        let content = line.trim_start_matches(' ');
        let indent = line.len() - content.len();
        if content.is_empty() || content.starts_with('#') {
            return Some(());
        }
        if indent == 0 && (content.starts_with("---") || content.starts_with("...")) {
            return match content.trim_end_matches(' ') {
                "---" => self.end_document(),
                _ => None,
            };
        }
        let item = content == "-" || content.starts_with("- ");
        if self.value_follows {
            self.value_follows = false;
            let owner = *self.blocks.last()?;
            let nested = indent > owner.indent() || (item && owner == Block::Mapping(indent));
            if nested {
                return self.open(indent, item, content);
            }
            self.documents.scalar(Cow::Borrowed(""), true)?;
        }
        while self
            .blocks
            .last()
            .is_some_and(|block| block.indent() > indent)
        {
            self.close()?;
        }
        // A sequence indented as far as its key ends at the mapping's next key.
        if !item && self.blocks.last() == Some(&Block::Sequence(indent)) {
            self.close()?;
        }
        match self.blocks.last() {
            None if !self.rooted => {
                self.rooted = true;
                self.open(indent, item, content)
            }
            Some(&Block::Sequence(at)) if item && at == indent => self.item(indent, content),
            Some(&Block::Mapping(at)) if !item && at == indent => self.mapping_entry(content),
            _ => None,
        }
    }

    fn open(&mut self, indent: usize, item: bool, content: &str) -> Option<()> {
        if item {
            self.documents.open_sequence()?;
            self.blocks.push(Block::Sequence(indent));
            self.item(indent, content)
        } else {
            self.documents.open_mapping()?;
            self.blocks.push(Block::Mapping(indent));
            self.mapping_entry(content)
        }
    }

    /// A sequence entry: `-`, then its value on this line or the next ones.
    fn item(&mut self, indent: usize, content: &str) -> Option<()> {
        let value = content[1..].trim_start_matches(' ');
        if value.is_empty() || value.starts_with('#') {
            self.value_follows = true;
            return Some(());
        }
        if value == "-" || value.starts_with("- ") {
            return None;
        }
        if split_key(value).is_some() {
            self.documents.open_mapping()?;
            self.blocks
                .push(Block::Mapping(indent + content.len() - value.len()));
            return self.mapping_entry(value);
        }
        self.inline_value(value)
    }

    /// A mapping entry: a plain key, `:`, then its value on this line or the next ones.
    fn mapping_entry(&mut self, content: &str) -> Option<()> {
        let (key, rest) = split_key(content)?;
        self.documents.scalar(Cow::Borrowed(key), true)?;
        let value = rest.trim_start_matches(' ');
        if value.is_empty() || value.starts_with('#') {
            self.value_follows = true;
            return Some(());
        }
        self.inline_value(value)
    }

    /// A value that ends with its line, but for spaces and a comment.
    fn inline_value(&mut self, value: &str) -> Option<()> {
        let mut cursor = Cursor { text: value, at: 0 };
        match value.as_bytes()[0] {
            b'{' | b'[' | b'"' | b'\'' => {
                self.flow_node(&mut cursor)?;
                let rest = &value[cursor.at..];
                let after = rest.trim_start_matches(' ');
                let ends = after.is_empty() || (after.starts_with('#') && after.len() < rest.len());
                ends.then_some(())
            }
            _ => {
                let scalar = match value.find(" #") {
                    Some(comment) => &value[..comment],
                    None => value,
                }
                .trim_end_matches(' ');
                let plain =
                    starts_plain(scalar) && !scalar.contains(": ") && !scalar.ends_with(':');
                plain.then_some(())?;
                self.documents.scalar(Cow::Borrowed(scalar), true)
            }
        }
    }

    /// A one-line flow collection, quoted scalar, or (inside a flow collection) plain scalar.
    fn flow_node(&mut self, cursor: &mut Cursor<'_>) -> Option<()> {
        match cursor.peek()? {
            b'{' => {
                cursor.at += 1;
                self.documents.open_mapping()?;
                self.flow_entries(cursor, b'}', |lines, cursor| {
                    let key = cursor.take_while(is_key_byte);
                    let key = key.starts_with(is_key_start).then_some(key)?;
                    lines.documents.scalar(Cow::Borrowed(key), true)?;
                    cursor.expect(b':')?;
                    cursor.expect(b' ')?;
                    cursor.skip_spaces();
                    lines.flow_node(cursor)
                })?;
                self.documents.close_mapping()
            }
            b'[' => {
                cursor.at += 1;
                self.documents.open_sequence()?;
                self.flow_entries(cursor, b']', Self::flow_node)?;
                self.documents.close_sequence()
            }
            b'"' | b'\'' => {
                let scalar = cursor.quoted()?;
                self.documents.scalar(scalar, false)
            }
            _ => {
                let scalar = cursor
                    .take_while(|byte| !b",[]{}#:".contains(&byte))
                    .trim_end_matches(' ');
                starts_plain(scalar).then_some(())?;
                self.documents.scalar(Cow::Borrowed(scalar), true)
            }
        }
    }

    /// The entries of a flow collection up to its `close` byte, separated by commas.
    fn flow_entries(
        &mut self,
        cursor: &mut Cursor<'_>,
        close: u8,
        mut entry: impl FnMut(&mut Self, &mut Cursor<'_>) -> Option<()>,
    ) -> Option<()> {
        cursor.skip_spaces();
        if cursor.peek()? == close {
            cursor.at += 1;
            return Some(());
        }
        loop {
            entry(self, cursor)?;
            cursor.skip_spaces();
            match cursor.next()? {
                b',' => cursor.skip_spaces(),
                byte if byte == close => return Some(()),
                _ => return None,
            }
        }
    }

    fn close(&mut self) -> Option<()> {
        match self.blocks.pop()? {
            Block::Mapping(_) => self.documents.close_mapping(),
            Block::Sequence(_) => self.documents.close_sequence(),
        }
    }

    fn end_document(&mut self) -> Option<()> {
        if std::mem::take(&mut self.value_follows) {
            self.documents.scalar(Cow::Borrowed(""), true)?;
        }
        while !self.blocks.is_empty() {
            self.close()?;
        }
        self.rooted = false;
        self.documents.end_document()
    }
}

/// The plain key that starts `content` and what follows its `:`, if a `:` ends the line or is
/// followed by a space.
fn split_key(content: &str) -> Option<(&str, &str)> {
    let length = content
        .bytes()
        .take_while(|&byte| is_key_byte(byte))
        .count();
    let (key, rest) = content.split_at(length);
    let rest = rest.strip_prefix(':')?;
    let ends = rest.is_empty() || rest.starts_with(' ');
    (key.starts_with(is_key_start) && ends).then_some((key, rest))
}

fn is_key_byte(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || b"._/-".contains(&byte)
}

fn is_key_start(first: char) -> bool {
    first.is_ascii_alphanumeric() || first == '_' || first == '/'
}

/// Whether `scalar` is not empty and does not begin with a YAML indicator.
fn starts_plain(scalar: &str) -> bool {
    scalar
        .bytes()
        .next()
        .is_some_and(|first| !b"-?:,[]{}#&*!|>'\"%@`".contains(&first))
}

/// A position in one line's value.
struct Cursor<'a> {
    text: &'a str,
    at: usize,
}

impl<'a> Cursor<'a> {
    fn peek(&self) -> Option<u8> {
        self.text.as_bytes().get(self.at).copied()
    }

    fn next(&mut self) -> Option<u8> {
        let byte = self.peek()?;
        self.at += 1;
        Some(byte)
    }

    fn expect(&mut self, byte: u8) -> Option<()> {
        (self.next()? == byte).then_some(())
    }

    fn skip_spaces(&mut self) {
        self.take_while(|byte| byte == b' ');
    }

    fn take_while(&mut self, keep: impl Fn(u8) -> bool) -> &'a str {
        let start = self.at;
        let length = self.text.as_bytes()[start..]
            .iter()
            .take_while(|&&byte| keep(byte))
            .count();
        self.at += length;
        &self.text[start..self.at]
    }

    /// A single- or double-quoted scalar that ends on this line and has no escapes but `''`.
    fn quoted(&mut self) -> Option<Cow<'a, str>> {
        let quote = self.next()?;
        let start = self.at;
        let end = start + self.text[start..].find(quote as char)?;
        self.at = end + 1;
        let scalar = &self.text[start..end];
        if quote == b'"' {
            return (!scalar.contains('\\')).then_some(Cow::Borrowed(scalar));
        }
        if self.peek() != Some(b'\'') {
            return Some(Cow::Borrowed(scalar));
        }
        let mut owned = String::from(scalar);
        while self.peek() == Some(b'\'') {
            owned.push('\'');
            let start = self.at + 1;
            let end = start + self.text[start..].find('\'')?;
            owned.push_str(&self.text[start..end]);
            self.at = end + 1;
        }
        Some(Cow::Owned(owned))
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::super::agrees_with_serde_saphyr;
    use super::*;

    fn agrees(text: &str) -> bool {
        agrees_with_serde_saphyr(read_documents, text)
    }

    #[test]
    fn reads_plain_manifests_as_serde_saphyr_does() {
        for text in [
            "apiVersion: v1\nkind: Service\nmetadata:\n  name: web\n  annotations: {a: \"true\", b: 'it''s'}\nspec:\n  ports:\n  - port: 80\n    targetPort: http\n  clusterIP: 10.0.0.1\n",
            "# leading\n---\na: [1, two, \"3\"]\n---\n---\nb: {}\nc: []\n",
            "items:\n- a\n-\n-\n  # comment\n-   k: v # comment\n    l:\n    - x\n    m: 'q' # c\n",
            "empty:\nnone: ~\nurl: http://example.com/a#b\nsize: 8m\nspaced: a  b  \n",
            "- [a b, {c: d}, [e]]\n- {x: [], z: {}}\n",
            "",
            "  indented: root\n  next: 1\n",
        ] {
            assert!(agrees(text), "not read: {text:?}");
        }
    }

    #[test]
    fn leaves_anything_else_to_the_parser() {
        for text in [
            "a:\tb\n",
            "a: b\r\n",
            "a: caf\u{e9}\n",
            "a: |\n  text\n",
            "a: >-\n  text\n",
            "plain: multi\n  line\n",
            "a:\n  text\n",
            "a: \"esc\\n\"\n",
            "a: 'open\n  close'\n",
            "\"quoted\": key\n",
            "? complex\n: key\n",
            "a: &x 1\nb: *x\n",
            "a: !t 1\n",
            "%YAML 1.2\n---\na: 1\n",
            "--- a: 1\n",
            "a: 1\n...\n",
            "a:b\n",
            "a: b: c\n",
            "a: - b\n",
            "- - a\n",
            "just text\n",
            "a: 1\n- b\n",
            "- a\nb: 1\n",
            "a: {b: c\n",
            "a: [b, ]\n",
            "a: {b: }\n",
            "a: {b:c}\n",
            "a: [http://x]\n",
            "a: \"b\"c\n",
            "a: 1\n b: 2\n",
        ] {
            assert_eq!(read_documents(text), None, "{text:?}");
        }
    }

    /// Random texts from pieces of YAML, most of them not YAML at all: whatever this reader
    /// reads, serde-saphyr reads the same.
    #[test]
    fn random_texts_read_as_serde_saphyr_reads_them() {
        const INDENTS: [&str; 5] = ["", " ", "  ", "    ", "      "];
        const STARTS: [&str; 8] = ["", "", "", "- ", "-", "- - ", "-  ", "---"];
        const KEYS: [&str; 10] = [
            "a", "b", "name", "x.y/z-w", "1", "on", "-k", "k k", "\"q\"", "_",
        ];
        const SEPARATORS: [&str; 5] = [": ", ":", ":  ", ": ", " : "];
        const VALUES: [&str; 40] = [
            "",
            "v",
            "1",
            "true",
            "'s'",
            "'it''s'",
            "\"d\"",
            "\"e\\n\"",
            "{a: 1, b: [x, y]}",
            "[]",
            "{}",
            "[a,b]",
            "a #c",
            "a#b",
            "b: c",
            "http://x",
            "|",
            "&a x",
            "*a",
            "!t x",
            "- x",
            "a b",
            "x]",
            "{a: }",
            "[a, ]",
            "# c",
            "~",
            "null",
            "0755",
            "1.5",
            "8m",
            "{a: [b, {c: d}]} # e",
            "[ a , b ]",
            "a: ",
            "'",
            "\"",
            "{",
            "b}",
            "a  b",
            "x,y",
        ];
        let mut state: u64 = 0x5eed;
        let mut pick = |count: usize| {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (state >> 33) as usize % count
        };
        let mut read = 0;
        for _ in 0..50_000 {
            let mut text = String::new();
            for _ in 0..1 + pick(4) {
                text.push_str(INDENTS[pick(INDENTS.len())]);
                text.push_str(STARTS[pick(STARTS.len())]);
                if pick(4) > 0 {
                    text.push_str(KEYS[pick(KEYS.len())]);
                    text.push_str(SEPARATORS[pick(SEPARATORS.len())]);
                }
                text.push_str(VALUES[pick(VALUES.len())]);
                text.push('\n');
            }
            if agrees(&text) {
                read += 1;
            }
        }
        assert!(read > 1_500, "only {read} texts read");
    }

    /// The shortest example manifests with one byte deleted or a space inserted anywhere:
    /// whatever this reader reads, serde-saphyr reads the same.
    #[test]
    fn mutated_examples_read_the_same_both_ways() {
        let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/quickstart");
        let mut texts: Vec<String> = std::fs::read_dir(examples)
            .expect("readable")
            .map(|entry| entry.expect("entry").path())
            .filter(|path| {
                path.extension()
                    .is_some_and(|extension| extension == "yaml")
            })
            .map(|path| std::fs::read_to_string(path).expect("utf-8"))
            .filter(|text| agrees(text))
            .collect();
        texts.sort_by_key(String::len);
        assert!(texts.len() >= 2, "only {} examples read", texts.len());
        for text in &texts[..2] {
            for at in 0..text.len() {
                let mut deleted = text.clone();
                deleted.remove(at);
                agrees(&deleted);
                let mut inserted = text.clone();
                inserted.insert(at, ' ');
                agrees(&inserted);
            }
        }
    }
}
