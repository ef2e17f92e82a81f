//! Walking a large JSON document in bounded memory, at the speed of parsing from a slice.
//!
//! serde_json parses a slice about half again as fast as it parses a reader, but a slice means
//! the whole document in memory. [`Walker`] takes the middle road: the caller walks the outer
//! structure (the objects and arrays that grow with the document) token by token, and hands each
//! inner value (a record of modest size) to serde as a slice of a block buffer. A value that runs
//! past the buffered bytes is parsed again once more are read. The buffer grows only as large as
//! the largest single value, and refuses to grow past a limit.
//!
//! The buffer is text: each block is checked to be UTF-8 once, as it is read, and serde parses
//! values from a `&str`, which spares it checking every string again (a third of the parse when
//! it did).

use std::io::{self, Read};
use std::marker::PhantomData;

use serde::de::{DeserializeOwned, IgnoredAny};
use serde::Deserialize;

/// How much is read at a time.
const BLOCK: usize = 1 << 20;
/// The largest single value the walker holds.
const LIMIT: usize = 64 << 20;

#[derive(Debug, thiserror::Error)]
pub enum WalkError {
    #[error("reading the document: {0}")]
    Io(#[from] io::Error),
    #[error("at byte {offset}: expected {expected}, found {found}")]
    Unexpected {
        offset: u64,
        expected: &'static str,
        found: String,
    },
    /// What serde said of a value, with its position made absolute.
    #[error("at byte {offset}: {reason}")]
    Value { offset: u64, reason: String },
    #[error("at byte {offset}: the document ends inside this value (truncated?)")]
    Truncated { offset: u64 },
    #[error("at byte {offset}: a single value larger than {limit} bytes")]
    TooLarge { offset: u64, limit: usize },
    #[error("at byte {offset}: {reason}")]
    Shape { offset: u64, reason: String },
    #[error("at byte {offset}: not UTF-8 (or a character cut short by the end of the document)")]
    Utf8 { offset: u64 },
}

impl WalkError {
    /// An error about the document's shape (what the caller expected of it), at `offset`.
    pub fn shape(offset: u64, reason: impl Into<String>) -> WalkError {
        WalkError::Shape {
            offset,
            reason: reason.into(),
        }
    }
}

/// A type deserialized from the walker's buffer, possibly borrowing from it. Lets one method
/// serve both owned values and records that borrow their strings.
pub trait Borrowed {
    type Value<'a>: Deserialize<'a>;
}

/// Any owned type, through [`Borrowed`].
pub struct Owned<T>(PhantomData<T>);

impl<T: DeserializeOwned> Borrowed for Owned<T> {
    type Value<'a> = T;
}

/// A quick reader for [`Walker::value_quick`]: the value and the bytes it took, or `None`.
pub type Quick<P> = for<'a> fn(&'a str) -> Option<(<P as Borrowed>::Value<'a>, usize)>;

pub struct Walker<R> {
    reader: R,
    /// The document's text, from `base` on: checked to be UTF-8 once, when it was read.
    buf: String,
    /// The next byte of `buf` to look at.
    pos: usize,
    /// Where `buf[0]` is in the document.
    base: u64,
    /// Bytes read and not in `buf` yet: the start of a character cut by the end of a read.
    raw: Vec<u8>,
    /// The reader has no more bytes, and `buf` holds all the rest of the document.
    eof: bool,
    /// Where the document stops being UTF-8: `buf` ends there, and reading on is an error.
    not_utf8: Option<u64>,
    block: usize,
    limit: usize,
}

impl<R: Read> Walker<R> {
    pub fn new(reader: R) -> Walker<R> {
        Walker::with_sizes(reader, BLOCK, LIMIT)
    }

    /// A walker that reads `block` bytes at a time and holds values of up to `limit` bytes.
    pub fn with_sizes(reader: R, block: usize, limit: usize) -> Walker<R> {
        Walker {
            reader,
            buf: String::new(),
            pos: 0,
            base: 0,
            raw: Vec::new(),
            eof: false,
            not_utf8: None,
            block: block.max(1),
            limit,
        }
    }

    /// Where the walker is in the document, in bytes.
    pub fn offset(&self) -> u64 {
        self.base + self.pos as u64
    }

    /// The next byte that is not whitespace, without taking it; `None` at the end.
    pub fn peek(&mut self) -> Result<Option<u8>, WalkError> {
        loop {
            while let Some(&b) = self.buf.as_bytes().get(self.pos) {
                if !matches!(b, b' ' | b'\n' | b'\r' | b'\t') {
                    return Ok(Some(b));
                }
                self.pos += 1;
            }
            if self.eof {
                return Ok(None);
            }
            self.fill()?;
        }
    }

    /// Walks an object, calling `member` with each member's name; `member` must take the value.
    pub fn object<E: From<WalkError>>(
        &mut self,
        mut member: impl FnMut(&mut Self, String) -> Result<(), E>,
    ) -> Result<(), E> {
        self.delimited((b'{', "an object"), (b'}', "`,` or `}`"), |w| {
            if w.peek()? != Some(b'"') {
                return Err(w.unexpected("a member name").into());
            }
            let name: String = w.value()?;
            w.take(b':', "`:`")?;
            member(w, name)
        })
    }

    /// Walks an array, calling `element` for each element; `element` must take it.
    pub fn array<E: From<WalkError>>(
        &mut self,
        element: impl FnMut(&mut Self) -> Result<(), E>,
    ) -> Result<(), E> {
        self.delimited((b'[', "an array"), (b']', "`,` or `]`"), element)
    }

    /// `open`, then items separated by commas, then `close`.
    fn delimited<E: From<WalkError>>(
        &mut self,
        (open, what): (u8, &'static str),
        (close, after_item): (u8, &'static str),
        mut item: impl FnMut(&mut Self) -> Result<(), E>,
    ) -> Result<(), E> {
        self.take(open, what)?;
        if self.peek()? == Some(close) {
            self.pos += 1;
            return Ok(());
        }
        loop {
            item(self)?;
            match self.peek()? {
                Some(b',') => self.pos += 1,
                Some(b) if b == close => {
                    self.pos += 1;
                    return Ok(());
                }
                _ => return Err(self.unexpected(after_item).into()),
            }
        }
    }

    /// Takes the next value as a `T`.
    pub fn value<T: DeserializeOwned>(&mut self) -> Result<T, WalkError> {
        self.value_with::<Owned<T>, T>(|v| v)
    }

    /// Takes the next value, whatever it is.
    pub fn skip(&mut self) -> Result<(), WalkError> {
        self.value::<IgnoredAny>().map(drop)
    }

    /// Takes the next value and gives it to `use_value`, which may borrow from the buffer:
    /// `use_value` runs once, after the value is known to be whole.
    pub fn value_with<P: Borrowed, O>(
        &mut self,
        use_value: impl FnOnce(P::Value<'_>) -> O,
    ) -> Result<O, WalkError> {
        if self.peek()?.is_none() {
            return Err(self.unexpected("a value"));
        }
        let start = self.offset();
        loop {
            {
                let slice = &self.buf[self.pos..];
                let mut values = serde_json::Deserializer::from_str(slice).into_iter();
                let parsed: Option<Result<P::Value<'_>, _>> = values.next();
                let used = values.byte_offset();
                match parsed {
                    // A number that ends where the buffer ends may go on in the next block.
                    Some(Ok(value)) if used < slice.len() || self.eof => {
                        self.pos += used;
                        return Ok(use_value(value));
                    }
                    // serde ends some values (a number after `-`, `.` or `e`) by looking at the
                    // byte after them: an error at the buffer's end may be a cut, not an error.
                    Some(Err(e)) if !e.is_eof() && (self.eof || !at_end(&e, slice.as_bytes())) => {
                        return Err(value_error(&e, slice.as_bytes(), start))
                    }
                    _ if self.eof => return Err(WalkError::Truncated { offset: start }),
                    // Cut by the end of the buffer: read more and parse again.
                    _ => {}
                }
            }
            self.fill()?;
        }
    }

    /// Like [`Self::value_with`], trying `quick` first: a reader of the value's usual layout
    /// that answers `None` for anything else or for a value cut by the buffer's end (see
    /// [`quickjson`](crate::quickjson)), which serde then parses. Whenever `quick` answers, it
    /// must answer what serde would: it is only faster.
    pub fn value_quick<P: Borrowed, O>(
        &mut self,
        quick: Quick<P>,
        use_value: impl FnOnce(P::Value<'_>) -> O,
    ) -> Result<O, WalkError> {
        if self.peek()?.is_some() {
            if let Some((value, used)) = quick(&self.buf[self.pos..]) {
                self.pos += used;
                return Ok(use_value(value));
            }
        }
        self.value_with::<P, O>(use_value)
    }

    /// Nothing but whitespace may follow the document.
    pub fn end(&mut self) -> Result<(), WalkError> {
        match self.peek()? {
            None => Ok(()),
            Some(_) => Err(self.unexpected("the end of the document")),
        }
    }

    fn take(&mut self, byte: u8, expected: &'static str) -> Result<(), WalkError> {
        if self.peek()? == Some(byte) {
            self.pos += 1;
            Ok(())
        } else {
            Err(self.unexpected(expected))
        }
    }

    fn unexpected(&self, expected: &'static str) -> WalkError {
        let found = match self.buf.as_bytes().get(self.pos) {
            None => "the end of the document (truncated?)".to_string(),
            Some(&b) if b.is_ascii_graphic() => format!("`{}`", b as char),
            Some(&b) => format!("byte 0x{b:02x}"),
        };
        WalkError::Unexpected {
            offset: self.offset(),
            expected,
            found,
        }
    }

    /// Reads more: drops what was taken, keeps what was not, and reads a block (or as much
    /// again as is kept, when one value outgrows a block). The block is checked to be UTF-8
    /// here, once; a character cut by its end waits in `raw` for the rest of it.
    fn fill(&mut self) -> Result<(), WalkError> {
        self.buf.drain(..self.pos);
        self.base += self.pos as u64;
        self.pos = 0;
        if let Some(offset) = self.not_utf8 {
            return Err(WalkError::Utf8 { offset });
        }
        let kept = self.buf.len();
        if kept >= self.limit {
            return Err(WalkError::TooLarge {
                offset: self.base,
                limit: self.limit,
            });
        }
        let want = self.block.max(kept).min(self.limit - kept);
        let carried = self.raw.len();
        self.raw.resize(carried + want, 0);
        let mut got = 0;
        while got < want {
            match self.reader.read(&mut self.raw[carried + got..]) {
                Ok(0) => break,
                Ok(n) => got += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    self.raw.truncate(carried);
                    return Err(e.into());
                }
            }
        }
        self.raw.truncate(carried + got);
        let ended = got < want;
        match std::str::from_utf8(&self.raw) {
            Ok(text) => {
                self.buf.push_str(text);
                self.raw.clear();
                self.eof = ended;
            }
            Err(e) => {
                let valid = e.valid_up_to();
                // The prefix is UTF-8 (checked again: the only way to a `&str` without `unsafe`,
                // and rare: a character cut by a block's end, or a bad byte).
                self.buf
                    .push_str(&String::from_utf8_lossy(&self.raw[..valid]));
                self.raw.drain(..valid);
                if e.error_len().is_some() || ended {
                    self.not_utf8 = Some(self.base + self.buf.len() as u64);
                    self.raw.clear();
                }
            }
        }
        Ok(())
    }
}

/// Where in `slice` serde's error `e` is: its line and column turned into an index.
fn error_index(e: &serde_json::Error, slice: &[u8]) -> Option<usize> {
    let line_start = match e.line() {
        0 | 1 => Some(0),
        n => slice
            .iter()
            .enumerate()
            .filter(|(_, b)| **b == b'\n')
            .nth(n - 2)
            .map(|(i, _)| i + 1),
    };
    line_start.map(|at| at + e.column().saturating_sub(1))
}

/// Whether serde's error `e` is at the last byte of `slice` or after it, where the next bytes
/// of the document could have made it no error.
fn at_end(e: &serde_json::Error, slice: &[u8]) -> bool {
    error_index(e, slice).is_some_and(|i| i + 1 >= slice.len())
}

/// serde's error for a value parsed from `slice`, which starts at `start` in the document: its
/// line and column are turned into a byte offset in the document.
fn value_error(e: &serde_json::Error, slice: &[u8], start: u64) -> WalkError {
    let full = e.to_string();
    let position = format!(" at line {} column {}", e.line(), e.column());
    let reason = full.strip_suffix(&position).unwrap_or(&full).to_string();
    match error_index(e, slice) {
        Some(at) => WalkError::Value {
            offset: start + at as u64,
            reason,
        },
        None => WalkError::Value {
            offset: start,
            reason: full,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::borrow::Cow;

    /// `[{"name": ..., "n": ...}, ...]` summed through the walker, with the given buffer sizes.
    fn names_and_sum(doc: &[u8], block: usize, limit: usize) -> Result<(String, u64), WalkError> {
        #[derive(Deserialize)]
        struct Item<'a> {
            #[serde(borrow)]
            name: Cow<'a, str>,
            n: u64,
        }
        struct ItemRef;
        impl Borrowed for ItemRef {
            type Value<'a> = Item<'a>;
        }
        let mut w = Walker::with_sizes(doc, block, limit);
        let (mut names, mut sum) = (String::new(), 0);
        w.array(|w| {
            w.value_with::<ItemRef, _>(|item| {
                names.push_str(&item.name);
                sum += item.n;
            })
        })?;
        w.end()?;
        Ok((names, sum))
    }

    #[test]
    fn every_block_size_reads_the_same_values() {
        let doc = br#" [ {"name":"a\"b","n":1}, {"n":22,"name":"\u00e9t\u00e9"},
                         {"name":"c","n":333,"extra":[1,{"x":null}]} ] "#;
        for block in 1..doc.len() + 2 {
            assert_eq!(
                names_and_sum(doc, block, 1 << 20).unwrap(),
                ("a\"bétéc".to_string(), 356),
                "block {block}"
            );
        }
    }

    #[test]
    fn text_is_checked_once_a_block_characters_cut_by_a_block_read_whole() {
        // 2-, 3- and 4-byte characters, in names, a value and a value skipped.
        let doc = "[{\"name\":\"été 日本 🪣\",\"n\":7,\"x\":\"ß\"},{\"n\":1,\"name\":\"€\"}]";
        for block in 1..doc.len() + 2 {
            assert_eq!(
                names_and_sum(doc.as_bytes(), block, 1 << 10).unwrap(),
                ("été 日本 🪣€".to_string(), 8),
                "block {block}"
            );
        }
    }

    #[test]
    fn bytes_that_are_not_utf8_are_an_error_at_their_offset_whatever_the_block() {
        let good = r#"[{"name":"été","n":1},{"name":"a"#.as_bytes();
        for (bad, offset) in [
            // A byte that starts no character, inside a string.
            (&b"\xff\",\"n\":2}]"[..], good.len()),
            // A character's start without the rest of it.
            (b"\xc3\",\"n\":2}]", good.len()),
            // Outside a string.
            (b"\",\"n\":2}\xe2\x82]", good.len() + 8),
            // A character cut by the end of the document.
            (b"\",\"n\":2}]\xf0\x9f", good.len() + 9),
        ] {
            let doc = [good, bad].concat();
            assert!(serde_json::from_slice::<serde_json::Value>(&doc).is_err());
            for block in [1, 2, 3, 5, 16, 1 << 10] {
                let err = names_and_sum(&doc, block, 1 << 10).unwrap_err();
                assert!(
                    matches!(err, WalkError::Utf8 { offset: o } if o == offset as u64),
                    "block {block}, {doc:?}: {err}"
                );
            }
        }
    }

    #[test]
    fn a_number_cut_by_the_block_end_is_read_whole() {
        for block in 1..8 {
            let mut w = Walker::with_sizes(&b"[12345678]"[..], block, 64);
            let mut got = vec![];
            w.array(|w| w.value::<u64>().map(|n| got.push(n))).unwrap();
            assert_eq!(got, [12345678], "block {block}");
        }
    }

    /// Found by fuzzing (`fuzz/`, target `usage`): serde ends a number cut right after its `-`,
    /// `.` or `e` with "invalid number" rather than "end of input", and the walker took that for
    /// an error in the document, refusing a valid one wherever a block ended there.
    #[test]
    fn a_number_cut_after_its_sign_point_or_exponent_is_read_on_not_refused() {
        let doc = br#"[{"name":"a","n":1,"x":-12.5e-3,"y":[-0.25E+2]}]"#;
        for block in 1..doc.len() + 2 {
            assert_eq!(
                names_and_sum(doc, block, 1 << 10).unwrap(),
                ("a".to_string(), 1),
                "block {block}"
            );
        }
        for (doc, want) in [
            (&b"[-"[..], "at byte 1: invalid number"),
            (b"[1.", "at byte 2"),
        ] {
            let mut w = Walker::with_sizes(doc, 1, 64);
            let err = w.array(|w| w.skip()).unwrap_err().to_string();
            assert!(err.contains(want), "{err:?} lacks {want:?}");
        }
    }

    #[test]
    fn broken_documents_say_what_and_where() {
        let cases: [(&[u8], &str); 7] = [
            (b"<html>", "at byte 0: expected an array, found `<`"),
            (
                br#"[{"name":"a","n":1}"#,
                "found the end of the document (truncated?)",
            ),
            (
                br#"[{"name":"a","n":1},{"name":"b""#,
                "at byte 20: the document ends inside",
            ),
            (
                br#"[{"name":"a","n":"1"}]"#,
                "at byte 19: invalid type: string \"1\", expected u64",
            ),
            (
                b"[{\"name\":\"a\",\n\"n\":-1}]",
                "at byte 19: invalid value: integer `-1`",
            ),
            (
                br#"[{"name":"a","n":1} {"#,
                "at byte 20: expected `,` or `]`, found `{`",
            ),
            (
                br#"[] x"#,
                "at byte 3: expected the end of the document, found `x`",
            ),
        ];
        for (doc, want) in cases {
            for block in [1, 3, 1 << 10] {
                let err = names_and_sum(doc, block, 1 << 10).unwrap_err().to_string();
                assert!(err.contains(want), "block {block}: {err:?} lacks {want:?}");
            }
        }
    }

    #[test]
    fn a_value_larger_than_the_limit_is_refused_not_buffered() {
        let doc = format!(r#"[{{"name":"{}","n":1}}]"#, "x".repeat(1000));
        let err = names_and_sum(doc.as_bytes(), 16, 256).unwrap_err();
        assert!(
            matches!(
                err,
                WalkError::TooLarge {
                    offset: 1,
                    limit: 256
                }
            ),
            "{err}"
        );
        assert!(names_and_sum(doc.as_bytes(), 16, 2048).is_ok());
    }

    #[test]
    fn objects_give_each_member_name() {
        let mut w = Walker::new(&br#"{"a":1,"b":{"c":[true]},"d":"x"}"#[..]);
        let mut names = vec![];
        w.object(|w, name| {
            names.push(name);
            w.skip()
        })
        .unwrap();
        assert_eq!(names, ["a", "b", "d"]);
        let mut w = Walker::new(&br#"{1:2}"#[..]);
        let err = w.object(|w, _| w.skip()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "at byte 1: expected a member name, found `1`"
        );
    }
}
