//! HPACK's Huffman code (RFC 7541 §5.2, Appendix B), decoding only: statuscope writes its own
//! header blocks with raw literals, which every decoder must accept, and so never spends cycles
//! compressing a field the peer then spends cycles decompressing.
//!
//! The code is canonical — within each length the codes count up in symbol order — so the
//! whole table follows from the 257 code lengths below, and the decoder tables are computed
//! from them at compile time: a 9-bit lookup for the short codes nearly every header byte has,
//! and a first-code-per-length walk for the rest.

/// The code length of each symbol, 0–255 and 256 for EOS (RFC 7541 Appendix B).
const LENGTHS: [u8; 257] = [
    13, 23, 28, 28, 28, 28, 28, 28, 28, 24, 30, 28, 28, 30, 28, 28, //
    28, 28, 28, 28, 28, 28, 30, 28, 28, 28, 28, 28, 28, 28, 28, 28, //
    6, 10, 10, 12, 13, 6, 8, 11, 10, 10, 8, 11, 8, 6, 6, 6, //
    5, 5, 5, 6, 6, 6, 6, 6, 6, 6, 7, 8, 15, 6, 12, 10, //
    13, 6, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, //
    7, 7, 7, 7, 7, 7, 7, 7, 8, 7, 8, 13, 19, 13, 14, 6, //
    15, 5, 6, 5, 6, 5, 6, 6, 6, 5, 7, 7, 6, 6, 6, 5, //
    6, 7, 6, 5, 5, 6, 7, 7, 7, 7, 7, 15, 11, 14, 13, 28, //
    20, 22, 20, 20, 22, 22, 22, 23, 22, 23, 23, 23, 23, 23, 24, 23, //
    24, 24, 22, 23, 24, 23, 23, 23, 23, 21, 22, 23, 22, 23, 23, 24, //
    22, 21, 20, 22, 22, 23, 23, 21, 23, 22, 22, 24, 21, 22, 23, 23, //
    21, 21, 22, 21, 23, 22, 23, 23, 20, 22, 22, 22, 23, 22, 22, 23, //
    26, 26, 20, 19, 22, 23, 22, 25, 26, 26, 26, 27, 27, 26, 24, 25, //
    19, 21, 26, 27, 27, 26, 27, 24, 21, 21, 26, 26, 28, 27, 27, 27, //
    20, 24, 20, 21, 22, 21, 21, 23, 22, 22, 25, 25, 24, 24, 26, 23, //
    26, 27, 26, 26, 27, 27, 27, 27, 27, 28, 27, 27, 27, 27, 27, 26, //
    30,
];

const EOS: u16 = 256;
const MAX_LEN: usize = 30;
/// Codes this long or shorter are decoded by one table lookup.
const FAST_BITS: u32 = 9;

/// The canonical code's shape: how many codes of each length, the first code of each length,
/// where each length's symbols start in `SYMBOLS`, and the symbols sorted by (length, symbol).
struct Canonical {
    count: [u32; MAX_LEN + 1],
    first: [u32; MAX_LEN + 1],
    offset: [u16; MAX_LEN + 1],
    symbols: [u16; 257],
}

const CANONICAL: Canonical = {
    let mut count = [0u32; MAX_LEN + 1];
    let mut i = 0;
    while i < 257 {
        count[LENGTHS[i] as usize] += 1;
        i += 1;
    }
    let mut first = [0u32; MAX_LEN + 1];
    let mut offset = [0u16; MAX_LEN + 1];
    let mut code = 0u32;
    let mut placed = 0u16;
    let mut len = 1;
    while len <= MAX_LEN {
        first[len] = code;
        offset[len] = placed;
        code = (code + count[len]) << 1;
        placed += count[len] as u16;
        len += 1;
    }
    let mut symbols = [0u16; 257];
    let mut next = offset;
    let mut symbol = 0;
    while symbol < 257 {
        let len = LENGTHS[symbol] as usize;
        symbols[next[len] as usize] = symbol as u16;
        next[len] += 1;
        symbol += 1;
    }
    Canonical {
        count,
        first,
        offset,
        symbols,
    }
};

/// For each 9-bit prefix: the symbol whose code of at most 9 bits it starts with and that
/// code's length, or length 0 when the code is longer.
const FAST: [(u8, u8); 1 << FAST_BITS] = {
    let mut table = [(0u8, 0u8); 1 << FAST_BITS];
    let mut len = 1;
    while len <= FAST_BITS as usize {
        let mut k = 0;
        while k < CANONICAL.count[len] {
            let symbol = CANONICAL.symbols[CANONICAL.offset[len] as usize + k as usize];
            let code = CANONICAL.first[len] + k;
            let spread = FAST_BITS as usize - len;
            let mut low = 0;
            while low < (1 << spread) {
                table[((code << spread) | low) as usize] = (symbol as u8, len as u8);
                low += 1;
            }
            k += 1;
        }
        len += 1;
    }
    table
};

/// Why a Huffman-coded string could not be decoded (a COMPRESSION_ERROR for the connection).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InvalidHuffman;

/// Appends the decoding of `src` to `out`.
pub fn decode(src: &[u8], out: &mut Vec<u8>) -> Result<(), InvalidHuffman> {
    out.reserve(src.len() * 8 / 5);
    // Bits not yet decoded, right-aligned in `acc`; `n` of them.
    let mut acc: u64 = 0;
    let mut n: u32 = 0;
    let mut at = 0;
    loop {
        while n <= 56 && at < src.len() {
            acc = (acc << 8) | u64::from(src[at]);
            n += 8;
            at += 1;
        }
        if n == 0 {
            return Ok(());
        }
        // The next 9 bits, padded with ones past the end (the padding is EOS's prefix).
        let peek = if n >= FAST_BITS {
            (acc >> (n - FAST_BITS)) as usize & ((1 << FAST_BITS) - 1)
        } else {
            ((acc << (FAST_BITS - n)) as usize | ((1 << (FAST_BITS - n)) - 1))
                & ((1 << FAST_BITS) - 1)
        };
        let (symbol, len) = FAST[peek];
        if len != 0 && u32::from(len) <= n {
            out.push(symbol);
            n -= u32::from(len);
            continue;
        }
        match long_symbol(acc, n) {
            Some((symbol, len)) => {
                out.push(symbol);
                n -= len;
            }
            // RFC 7541 §5.2: what is left must be fewer than 8 bits, all ones.
            None if at == src.len() && n < 8 && acc & ((1 << n) - 1) == (1 << n) - 1 => {
                return Ok(())
            }
            None => return Err(InvalidHuffman),
        }
    }
}

/// The symbol whose code of more than 9 bits starts the `n` bits in `acc`, if they hold a
/// whole one that is not EOS.
fn long_symbol(acc: u64, n: u32) -> Option<(u8, u32)> {
    let mut len = FAST_BITS as usize + 1;
    while len <= MAX_LEN && len as u32 <= n {
        let code = (acc >> (n - len as u32)) as u32 & ((1u32 << len) - 1);
        let index = code.wrapping_sub(CANONICAL.first[len]);
        if index < CANONICAL.count[len] {
            let symbol = CANONICAL.symbols[CANONICAL.offset[len] as usize + index as usize];
            return (symbol != EOS).then_some((symbol as u8, len as u32));
        }
        len += 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::super::hex;
    use super::*;

    fn decoded(text: &str) -> Result<Vec<u8>, InvalidHuffman> {
        let mut out = Vec::new();
        decode(&hex(text), &mut out).map(|()| out)
    }

    #[test]
    fn the_table_is_the_rfc_s_canonical_code() {
        // A few codes of RFC 7541 Appendix B, rebuilt from the lengths alone.
        let code_of = |symbol: usize| {
            let len = LENGTHS[symbol] as usize;
            let rank = CANONICAL.symbols[CANONICAL.offset[len] as usize..]
                .iter()
                .position(|&s| s == symbol as u16)
                .unwrap() as u32;
            (CANONICAL.first[len] + rank, len)
        };
        assert_eq!(code_of(b'0' as usize), (0x0, 5));
        assert_eq!(code_of(b'a' as usize), (0x3, 5));
        assert_eq!(code_of(b'!' as usize), (0x3f8, 10));
        assert_eq!(code_of(0), (0x1ff8, 13));
        assert_eq!(code_of(256), (0x3fff_ffff, 30));
    }

    #[test]
    fn decodes_the_rfc_examples() {
        // RFC 7541 Appendix C.4 and C.6.
        for (coded, plain) in [
            ("f1e3 c2e5 f23a 6ba0 ab90 f4ff", "www.example.com"),
            ("a8eb 1064 9cbf", "no-cache"),
            ("25a8 49e9 5ba9 7d7f", "custom-key"),
            ("25a8 49e9 5bb8 e8b4 bf", "custom-value"),
            ("6402", "302"),
            ("aec3 771a 4b", "private"),
            (
                "d07a be94 1054 d444 a820 0595 040b 8166 e082 a62d 1bff",
                "Mon, 21 Oct 2013 20:13:21 GMT",
            ),
            (
                "9d29 ad17 1863 c78f 0b97 c8e9 ae82 ae43 d3",
                "https://www.example.com",
            ),
        ] {
            assert_eq!(decoded(coded).unwrap(), plain.as_bytes(), "{plain}");
        }
    }

    #[test]
    fn refuses_bad_padding_and_eos() {
        // 'a' (00011) padded with zeros, not ones.
        assert_eq!(decoded("18"), Err(InvalidHuffman));
        // A whole byte of padding after a complete symbol.
        assert_eq!(decoded("1f ff"), Err(InvalidHuffman));
        // EOS itself, with two bits of padding.
        assert_eq!(decoded("ff ff ff ff"), Err(InvalidHuffman));
        // An empty string is empty.
        assert_eq!(decoded("").unwrap(), b"");
    }

    #[test]
    fn every_byte_round_trips_through_its_code() {
        // Encode each symbol with the canonical code, pad, decode.
        for symbol in 0..=255u8 {
            let len = LENGTHS[symbol as usize] as u32;
            let rank = CANONICAL.symbols[CANONICAL.offset[len as usize] as usize..]
                .iter()
                .position(|&s| s == u16::from(symbol))
                .unwrap() as u64;
            let code = u64::from(CANONICAL.first[len as usize]) + rank;
            let total = len.div_ceil(8) * 8;
            let padded = (code << (total - len)) | ((1 << (total - len)) - 1);
            let bytes: Vec<u8> = (0..total / 8)
                .rev()
                .map(|i| (padded >> (i * 8)) as u8)
                .collect();
            let mut out = Vec::new();
            decode(&bytes, &mut out).unwrap();
            assert_eq!(out, [symbol]);
        }
    }
}
