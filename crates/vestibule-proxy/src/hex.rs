//! Lowercase hexadecimal digits written in place, for ids in headers and logs.

/// Fills `out` with the low `out.len()` hexadecimal digits of `value`, most significant first
/// and zero-padded, as `{:0N$x}` would for N = `out.len()` (up to 32).
pub(crate) fn write_hex(out: &mut [u8], mut value: u128) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for digit in out.iter_mut().rev() {
        *digit = DIGITS[usize::from(value.to_le_bytes()[0] & 0x0f)];
        value >>= 4;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digits_match_formatting() {
        for value in [
            0,
            1,
            0xab,
            u128::from(u64::MAX),
            u128::MAX,
            0x4bf9_2f35_77b3,
        ] {
            for width in [2, 16, 32] {
                let mut out = vec![0; width];
                write_hex(&mut out, value);
                let mask = if width == 32 {
                    u128::MAX
                } else {
                    (1 << (4 * width)) - 1
                };
                assert_eq!(out, format!("{:0width$x}", value & mask).as_bytes());
            }
        }
    }
}
