//! A small binary codec: big-endian integers and length-prefixed fields, total on any input.

use crate::{Error, Result};

/// Appends encoded fields to a byte vector.
#[derive(Default)]
pub struct Writer {
    buf: Vec<u8>,
}

impl Writer {
    /// An empty writer.
    pub fn new() -> Writer {
        Writer::default()
    }

    /// One byte.
    pub fn u8(&mut self, v: u8) -> &mut Self {
        self.buf.push(v);
        self
    }

    /// A big-endian u16.
    pub fn u16(&mut self, v: u16) -> &mut Self {
        self.buf.extend_from_slice(&v.to_be_bytes());
        self
    }

    /// A big-endian u32.
    pub fn u32(&mut self, v: u32) -> &mut Self {
        self.buf.extend_from_slice(&v.to_be_bytes());
        self
    }

    /// A big-endian u64.
    pub fn u64(&mut self, v: u64) -> &mut Self {
        self.buf.extend_from_slice(&v.to_be_bytes());
        self
    }

    /// Raw bytes with no length prefix.
    pub fn raw(&mut self, b: &[u8]) -> &mut Self {
        self.buf.extend_from_slice(b);
        self
    }

    /// Bytes prefixed by their length as a u16. Panics only on programmer error (> 65535).
    pub fn bytes16(&mut self, b: &[u8]) -> &mut Self {
        let len = u16::try_from(b.len()).expect("field longer than u16::MAX");
        self.u16(len).raw(b)
    }

    /// Bytes prefixed by their length as a u32.
    pub fn bytes32(&mut self, b: &[u8]) -> &mut Self {
        let len = u32::try_from(b.len()).expect("field longer than u32::MAX");
        self.u32(len).raw(b)
    }

    /// The bytes written so far.
    pub fn as_bytes(&self) -> &[u8] {
        &self.buf
    }

    /// The encoded bytes.
    pub fn finish(self) -> Vec<u8> {
        self.buf
    }
}

/// Reads encoded fields from a byte slice; every read names the field it was reading.
pub struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    /// A reader over `bytes`.
    pub fn new(bytes: &'a [u8]) -> Reader<'a> {
        Reader { rest: bytes }
    }

    /// `n` raw bytes.
    pub fn take(&mut self, n: usize, field: &'static str) -> Result<&'a [u8]> {
        if self.rest.len() < n {
            return Err(Error::Truncated(field));
        }
        let (head, tail) = self.rest.split_at(n);
        self.rest = tail;
        Ok(head)
    }

    /// A fixed-size array.
    pub fn array<const N: usize>(&mut self, field: &'static str) -> Result<[u8; N]> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N, field)?);
        Ok(out)
    }

    /// One byte.
    pub fn u8(&mut self, field: &'static str) -> Result<u8> {
        Ok(self.array::<1>(field)?[0])
    }

    /// A big-endian u16.
    pub fn u16(&mut self, field: &'static str) -> Result<u16> {
        Ok(u16::from_be_bytes(self.array(field)?))
    }

    /// A big-endian u32.
    pub fn u32(&mut self, field: &'static str) -> Result<u32> {
        Ok(u32::from_be_bytes(self.array(field)?))
    }

    /// A big-endian u64.
    pub fn u64(&mut self, field: &'static str) -> Result<u64> {
        Ok(u64::from_be_bytes(self.array(field)?))
    }

    /// Bytes prefixed by a u16 length.
    pub fn bytes16(&mut self, field: &'static str) -> Result<&'a [u8]> {
        let n = self.u16(field)? as usize;
        self.take(n, field)
    }

    /// Bytes prefixed by a u32 length.
    pub fn bytes32(&mut self, field: &'static str) -> Result<&'a [u8]> {
        let n = self.u32(field)? as usize;
        self.take(n, field)
    }

    /// A UTF-8 string prefixed by a u16 length.
    pub fn str16(&mut self, field: &'static str) -> Result<&'a str> {
        core::str::from_utf8(self.bytes16(field)?).map_err(|_| Error::malformed(field, "not UTF-8"))
    }

    /// How many bytes remain.
    pub fn remaining(&self) -> usize {
        self.rest.len()
    }

    /// Succeeds only if every byte was consumed.
    pub fn finish(self, what: &'static str) -> Result<()> {
        if self.rest.is_empty() {
            Ok(())
        } else {
            Err(Error::TrailingBytes(what))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_truncation() {
        let mut w = Writer::new();
        w.u8(7)
            .u16(513)
            .u32(70000)
            .u64(1 << 40)
            .bytes16(b"hi")
            .bytes32(b"there");
        let bytes = w.finish();
        let mut r = Reader::new(&bytes);
        assert_eq!(r.u8("a").ok(), Some(7));
        assert_eq!(r.u16("b").ok(), Some(513));
        assert_eq!(r.u32("c").ok(), Some(70000));
        assert_eq!(r.u64("d").ok(), Some(1 << 40));
        assert_eq!(r.str16("e").ok(), Some("hi"));
        assert_eq!(r.bytes32("f").ok(), Some(&b"there"[..]));
        assert!(r.finish("all").is_ok());
        for cut in 0..bytes.len() {
            let mut r = Reader::new(&bytes[..cut]);
            let ok = r.u8("a").is_ok()
                && r.u16("b").is_ok()
                && r.u32("c").is_ok()
                && r.u64("d").is_ok()
                && r.str16("e").is_ok()
                && r.bytes32("f").is_ok();
            assert!(!ok, "cut at {cut} decoded");
        }
    }
}
