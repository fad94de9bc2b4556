//! The text form of `compressed_image` data: syzkaller writes the zlib bytes as standard,
//! padded base64 inside `"$…"`. Only the encoding lives here; the image is never inflated on
//! the host (the executor does that in the guest).

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Standard base64 with `=` padding.
pub fn encode_base64(data: &[u8]) -> String {
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Decodes standard base64; padding is optional, whitespace and other characters are errors
/// (the offset of the first bad one).
pub fn decode_base64(text: &[u8]) -> Result<Vec<u8>, usize> {
    let body_len = text.iter().rposition(|c| *c != b'=').map_or(0, |i| i + 1);
    if text.len() - body_len > 2 {
        return Err(body_len);
    }
    let mut out = Vec::with_capacity(body_len * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0u32);
    for (i, &c) in text[..body_len].iter().enumerate() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return Err(i),
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    // A lone trailing character carries fewer than 8 bits: not base64.
    if bits >= 6 {
        return Err(body_len);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_the_standard_vectors_both_ways() {
        for (raw, enc) in [
            (&b""[..], ""),
            (b"f", "Zg=="),
            (b"fo", "Zm8="),
            (b"foo", "Zm9v"),
            (b"foob", "Zm9vYg=="),
            (b"fooba", "Zm9vYmE="),
            (b"foobar", "Zm9vYmFy"),
            (b"\xff\xfe\x00", "//4A"),
        ] {
            assert_eq!(encode_base64(raw), enc);
            assert_eq!(decode_base64(enc.as_bytes()).as_deref(), Ok(raw));
        }
        assert_eq!(decode_base64(b"Zm8").as_deref(), Ok(&b"fo"[..]));
        assert_eq!(decode_base64(b"Zm 8="), Err(2));
        assert_eq!(decode_base64(b"Z"), Err(1));
        assert_eq!(decode_base64(b"Zg==="), Err(2));
    }
}
