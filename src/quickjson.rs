//! A cursor for reading values of a known, plain layout straight from text, without serde:
//! strings without escapes, non-negative integers, objects and arrays. It reads no further than
//! it understands: anything else (an escape, a float, a sign, a leading zero, a value cut by the
//! end of the text) is `None`, and the caller hands the value to serde, which parses it or says
//! what is wrong with it. So a quick reader never accepts what serde refuses, nor reads a value
//! differently; it only spares serde's generic machinery on the records that are most of a
//! large answer.

/// Where a quick read is in its text. A copy is a mark to come back to.
#[derive(Clone, Copy)]
pub struct Cursor<'a> {
    text: &'a str,
    at: usize,
}

impl<'a> Cursor<'a> {
    pub fn new(text: &'a str) -> Cursor<'a> {
        Cursor { text, at: 0 }
    }

    /// The bytes read so far.
    pub fn used(&self) -> usize {
        self.at
    }

    /// The next byte that is not whitespace, not taken.
    fn peek(&mut self) -> Option<u8> {
        let bytes = self.text.as_bytes();
        while let Some(&b) = bytes.get(self.at) {
            if !matches!(b, b' ' | b'\n' | b'\r' | b'\t') {
                return Some(b);
            }
            self.at += 1;
        }
        None
    }

    /// Exactly these bytes (a layout's fixed part, such as `,"ops":`), with no whitespace.
    pub fn literal(&mut self, expected: &str) -> Option<()> {
        let found = self.text.as_bytes()[self.at..].starts_with(expected.as_bytes());
        found.then(|| self.at += expected.len())
    }

    fn take(&mut self, byte: u8) -> Option<()> {
        (self.peek()? == byte).then(|| self.at += 1)
    }

    /// A string without escapes or control characters, borrowed.
    pub fn string(&mut self) -> Option<&'a str> {
        self.take(b'"')?;
        let start = self.at;
        let len = string_end(&self.text.as_bytes()[start..])?;
        self.at = start + len;
        self.take(b'"')?;
        // Both ends are ASCII quotes: character boundaries.
        self.text.get(start..start + len)
    }

    /// A non-negative integer of at most 64 bits, written plainly and followed by something.
    pub fn u64(&mut self) -> Option<u64> {
        self.peek()?;
        let bytes = &self.text.as_bytes()[self.at..];
        let digits = bytes.iter().take_while(|b| b.is_ascii_digit()).count();
        // What ends a number must be there: a number at the end of the text may go on.
        match (digits, bytes.get(digits)) {
            (0, _) | (_, None | Some(b'.' | b'e' | b'E')) => return None,
            (2.., _) if bytes[0] == b'0' => return None,
            _ => {}
        }
        let mut n: u64 = 0;
        for &d in &bytes[..digits] {
            n = n.checked_mul(10)?.checked_add(u64::from(d - b'0'))?;
        }
        self.at += digits;
        Some(n)
    }

    /// An object: `member` reads each member's value, given its name.
    pub fn object(
        &mut self,
        mut member: impl FnMut(&mut Self, &'a str) -> Option<()>,
    ) -> Option<()> {
        self.delimited(b'{', b'}', |c| {
            let name = c.string()?;
            c.take(b':')?;
            member(c, name)
        })
    }

    /// An array: `element` reads each element.
    pub fn array(&mut self, element: impl FnMut(&mut Self) -> Option<()>) -> Option<()> {
        self.delimited(b'[', b']', element)
    }

    /// `open`, then items separated by commas, then `close`.
    fn delimited(
        &mut self,
        open: u8,
        close: u8,
        mut item: impl FnMut(&mut Self) -> Option<()>,
    ) -> Option<()> {
        self.take(open)?;
        if self.take(close).is_some() {
            return Some(());
        }
        loop {
            item(self)?;
            match self.peek()? {
                b',' => self.at += 1,
                b if b == close => {
                    self.at += 1;
                    return Some(());
                }
                _ => return None,
            }
        }
    }
}

/// Where a string's plain text ends: the first `"`, `\\` or control character of `bytes`.
/// Eight bytes at a time (most strings here are names of 5 to 20 bytes), then byte by byte.
fn string_end(bytes: &[u8]) -> Option<usize> {
    const ONES: u64 = u64::from_ne_bytes([0x01; 8]);
    const HIGH: u64 = u64::from_ne_bytes([0x80; 8]);
    // The high bit of each byte that is zero in `x` (or, above such a byte, may be set too:
    // the lowest one is exact, which is the one taken).
    let zero = |x: u64| x.wrapping_sub(ONES) & !x & HIGH;
    let mut at = 0;
    while let Some(word) = bytes.get(at..at + 8) {
        let mut eight = [0; 8];
        eight.copy_from_slice(word);
        let x = u64::from_le_bytes(eight);
        // Bytes below 0x20: `x - 0x20` borrows into the high bit where `x` had none.
        let found = zero(x ^ (ONES * u64::from(b'"')))
            | zero(x ^ (ONES * u64::from(b'\\')))
            | (x.wrapping_sub(ONES * 0x20) & !x & HIGH);
        if found != 0 {
            return Some(at + found.trailing_zeros() as usize / 8);
        }
        at += 8;
    }
    let rest = bytes[at..]
        .iter()
        .position(|&b| b == b'"' || b == b'\\' || b < 0x20)?;
    Some(at + rest)
}

/// Keeps the first value of a member; a second is `None` (serde calls it a duplicate field).
pub fn once<T>(slot: &mut Option<T>, value: T) -> Option<()> {
    match slot {
        Some(_) => None,
        None => {
            *slot = Some(value);
            Some(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_string_ends_at_the_first_quote_backslash_or_control_character_wherever_it_is() {
        for len in 0..20 {
            for stop in [b'"', b'\\', 0x00, 0x1f, b'\n'] {
                // Bytes around the stops that must not stop it: high, 0x20, 0x7f, UTF-8.
                let mut bytes: Vec<u8> = (0..len)
                    .map(|i| [b'a', 0x20, 0x7f, 0xc3, 0xa9, b'!'][i % 6])
                    .collect();
                bytes.push(stop);
                bytes.extend_from_slice(b"\"x\\");
                assert_eq!(string_end(&bytes), Some(len), "{len} {stop:#x}");
            }
            assert_eq!(string_end(&vec![b'a'; len]), None);
        }
    }

    #[test]
    fn plain_values_are_read_and_anything_else_left_to_serde() {
        let n = |t: &str| Cursor::new(t).u64();
        assert_eq!(n("0,"), Some(0));
        assert_eq!(n(" 18446744073709551615}"), Some(u64::MAX));
        for t in [
            "18446744073709551616,",
            "01,",
            "-1,",
            "1.5,",
            "1e3,",
            "12",
            "",
            "x,",
        ] {
            assert_eq!(n(t), None, "{t}");
        }
        fn s(t: &str) -> Option<&str> {
            Cursor::new(t).string()
        }
        assert_eq!(s(r#" "été",""#), Some("été"));
        for t in [r#""a\"b""#, "\"a\tb\"", "\"ab", "ab"] {
            assert_eq!(s(t), None, "{t}");
        }
        let mut c = Cursor::new(r#"{ "a" : [1, 2], "b":[] } x"#);
        let (mut a, mut sum) = (None, 0);
        c.object(|c, name| match name {
            "a" => {
                once(&mut a, ())?;
                c.array(|c| c.u64().map(|n| sum += n))
            }
            _ => c.array(|_| None),
        })
        .unwrap();
        assert_eq!((a, sum, c.used()), (Some(()), 3, 24));
        let mut c = Cursor::new(r#"{"a":1}"#);
        assert_eq!((c.literal("{\"b\":"), c.used()), (None, 0));
        assert_eq!((c.literal("{\"a\":"), c.used()), (Some(()), 5));
        // A duplicate member, a missing separator, a cut object.
        for t in [r#"{"a":[],"a":[]}"#, r#"{"a":[] "b":[]}"#, r#"{"a":[1]"#] {
            let mut a = None;
            let read = Cursor::new(t).object(|c, _| {
                once(&mut a, ())?;
                c.array(|c| c.u64().map(drop))
            });
            assert_eq!(read, None, "{t}");
        }
    }
}
