//! Writing a deflate stream's bits: values packed from the least significant bit of each byte
//! (RFC 1951 §3.1.1), Huffman codes already reversed by the caller (they are packed most
//! significant bit first).
//!
//! Values enter through [`BitWriter::put`]; the bytes leave through [`BitWriter::finish`], the
//! last one padded with zero bits.

/// Bits into a buffer sized for the worst case up front.
pub(super) struct BitWriter {
    out: Vec<u8>,
    /// Bytes of `out` written so far.
    written: usize,
    pending: u64,
    pending_bits: u32,
}

impl BitWriter {
    /// Room for `bytes`; a put past them appends, more slowly.
    pub(super) fn with_capacity(bytes: usize) -> Self {
        BitWriter {
            out: vec![0; bytes],
            written: 0,
            pending: 0,
            pending_bits: 0,
        }
    }

    /// Appends the low `count` bits of `value`; `count` ≤ 32.
    pub(super) fn put(&mut self, value: u32, count: u32) {
        self.pending |= u64::from(value) << self.pending_bits;
        self.pending_bits += count;
        if self.pending_bits >= 32 {
            let word = (self.pending as u32).to_le_bytes();
            match self.out.get_mut(self.written..self.written + 4) {
                Some(room) => room.copy_from_slice(&word),
                None => {
                    self.out.truncate(self.written);
                    self.out.extend_from_slice(&word);
                }
            }
            self.written += 4;
            self.pending >>= 32;
            self.pending_bits -= 32;
        }
    }

    /// The bytes, the last one padded with zero bits.
    pub(super) fn finish(mut self) -> Vec<u8> {
        let bytes = self.pending_bits.div_ceil(8) as usize;
        self.out.truncate(self.written);
        self.out
            .extend_from_slice(&self.pending.to_le_bytes()[..bytes]);
        self.out
    }
}

/// The low `count` bits of `code` in reverse order: how a Huffman code is put.
pub(super) const fn reverse(code: u16, count: u8) -> u16 {
    if count == 0 {
        return 0;
    }
    let reversed = (REVERSED_BYTES[(code & 0xff) as usize] as u16) << 8
        | REVERSED_BYTES[(code >> 8) as usize] as u16;
    reversed >> (16 - count as u32)
}

/// Each byte with its bits in reverse order (no instruction does it on x86).
const REVERSED_BYTES: [u8; 256] = {
    let mut bytes = [0; 256];
    let mut byte = 0;
    while byte < 256 {
        bytes[byte] = (byte as u8).reverse_bits();
        byte += 1;
    }
    bytes
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bits_fill_bytes_from_the_least_significant_end() {
        let mut bits = BitWriter::with_capacity(2);
        bits.put(0b1, 1);
        bits.put(0b10, 2);
        bits.put(0x1f, 5);
        bits.put(0xabcd_ef01, 32);
        bits.put(0b101, 3);
        assert_eq!(bits.finish(), [0b1111_1101, 0x01, 0xef, 0xcd, 0xab, 0b101]);
        assert_eq!(reverse(0b110, 3), 0b011);
        assert_eq!(reverse(0b1, 1), 0b1);
        assert_eq!(reverse(0, 0), 0);
    }
}
