//! Reading a certificate's expiry (`notAfter`) from its DER encoding.
//!
//! Only the path Certificate → TBSCertificate → Validity is walked, with every length checked, so
//! no X.509 parser is needed for the one field Vestibule reports.

const SEQUENCE: u8 = 0x30;
const EXPLICIT_VERSION: u8 = 0xa0;
const UTC_TIME: u8 = 0x17;
const GENERALIZED_TIME: u8 = 0x18;

/// The leaf's `notAfter`, in seconds since the Unix epoch.
pub(crate) fn not_after(der: &[u8]) -> Result<i64, String> {
    let (certificate, _) = element(der, SEQUENCE)?;
    let (mut tbs, _) = element(certificate, SEQUENCE)?;
    if tbs.first() == Some(&EXPLICIT_VERSION) {
        tbs = element(tbs, EXPLICIT_VERSION)?.1;
    }
    let (_serial, rest) = any_element(tbs)?;
    let (_signature, rest) = element(rest, SEQUENCE)?;
    let (_issuer, rest) = element(rest, SEQUENCE)?;
    let (validity, _) = element(rest, SEQUENCE)?;
    let (_not_before, rest) = any_element(validity)?;
    let (tag, content, _) = tagged(rest)?;
    let text = std::str::from_utf8(content).map_err(|_| "notAfter is not ASCII".to_owned())?;
    match tag {
        UTC_TIME => parse_time(text, 2),
        GENERALIZED_TIME => parse_time(text, 4),
        _ => Err("notAfter is not a UTCTime or GeneralizedTime".to_owned()),
    }
}

/// The content of the element at the start of `input`, which must have tag `tag`, and the rest.
fn element(input: &[u8], tag: u8) -> Result<(&[u8], &[u8]), String> {
    let (found, content, rest) = tagged(input)?;
    if found == tag {
        Ok((content, rest))
    } else {
        Err(format!("expected DER tag {tag:#04x}, found {found:#04x}"))
    }
}

fn any_element(input: &[u8]) -> Result<(&[u8], &[u8]), String> {
    tagged(input).map(|(_, content, rest)| (content, rest))
}

/// Splits the element at the start of `input` into tag, content and what follows.
fn tagged(input: &[u8]) -> Result<(u8, &[u8], &[u8]), String> {
    let truncated = || "certificate DER is truncated".to_owned();
    let (&tag, rest) = input.split_first().ok_or_else(truncated)?;
    let (&first, rest) = rest.split_first().ok_or_else(truncated)?;
    let (length, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let count = usize::from(first & 0x7f);
        if count == 0 || count > 4 || rest.len() < count {
            return Err("certificate DER has an invalid length".to_owned());
        }
        let length = rest[..count]
            .iter()
            .fold(0usize, |length, byte| (length << 8) | usize::from(*byte));
        (length, &rest[count..])
    };
    if rest.len() < length {
        return Err(truncated());
    }
    let (content, rest) = rest.split_at(length);
    Ok((tag, content, rest))
}

/// Parses `YYMMDDHHMMSSZ` (`year_digits` = 2, years 1950–2049) or `YYYYMMDDHHMMSSZ`.
fn parse_time(text: &str, year_digits: usize) -> Result<i64, String> {
    let invalid = || format!("notAfter {text:?} is not a valid time");
    let digits = text.strip_suffix('Z').ok_or_else(invalid)?;
    if digits.len() != year_digits + 10 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(invalid());
    }
    let number = |from: usize, len: usize| -> i64 {
        digits[from..from + len]
            .bytes()
            .fold(0, |n, b| n * 10 + i64::from(b - b'0'))
    };
    let mut year = number(0, year_digits);
    if year_digits == 2 {
        year += if year < 50 { 2000 } else { 1900 };
    }
    let at = year_digits;
    let (month, day) = (number(at, 2), number(at + 2, 2));
    let (hour, minute, second) = (number(at + 4, 2), number(at + 6, 2), number(at + 8, 2));
    if !(1..=12).contains(&month)
        || !(1..=31).contains(&day)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return Err(invalid());
    }
    Ok(days_from_civil(year, month, day) * 86_400 + hour * 3_600 + minute * 60 + second)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month_index = (month + 9) % 12;
    let day_of_year = (153 * month_index + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_expiry_rcgen_wrote() {
        let mut params =
            rcgen::CertificateParams::new(vec!["a.example".to_owned()]).expect("params");
        params.not_after = rcgen::date_time_ymd(2031, 7, 15);
        let key = rcgen::KeyPair::generate().expect("key");
        let cert = params.self_signed(&key).expect("certificate");
        assert_eq!(not_after(cert.der()), Ok(1_941_840_000));
        params.not_after = rcgen::date_time_ymd(2060, 1, 1);
        let cert = params.self_signed(&key).expect("certificate");
        assert_eq!(not_after(cert.der()), Ok(2_840_140_800));
    }

    #[test]
    fn times_and_dates() {
        assert_eq!(parse_time("700101000000Z", 2), Ok(0));
        assert_eq!(parse_time("491231235959Z", 2), Ok(2_524_607_999));
        assert_eq!(parse_time("20000229120000Z", 4), Ok(951_825_600));
        assert!(parse_time("2000022912000Z", 4).is_err());
        assert!(parse_time("20001329120000Z", 4).is_err());
        assert!(parse_time("20000229120000", 4).is_err());
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        for input in [
            &b""[..],
            b"\x30",
            b"\x30\x84\xff\xff\xff\xff",
            b"\x30\x02\x30\x05",
            b"\x30\x80",
        ] {
            assert!(not_after(input).is_err(), "{input:?}");
        }
    }
}
