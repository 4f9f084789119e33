//! The times of access-log lines, written in place: RFC 3339 for JSON and nginx's
//! `$time_local` (in UTC) for the combined format.

use std::time::{SystemTime, UNIX_EPOCH};

const MONTHS: [&[u8; 3]; 12] = [
    b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov", b"Dec",
];

/// A time in UTC, to the millisecond.
struct Utc {
    year: u64,
    month: u64,
    day: u64,
    hour: u64,
    minute: u64,
    second: u64,
    millis: u64,
}

impl Utc {
    fn of(time: SystemTime) -> Self {
        let elapsed = time.duration_since(UNIX_EPOCH).unwrap_or_default();
        let seconds = elapsed.as_secs();
        let days = i64::try_from(seconds / 86_400).unwrap_or_default();
        let (year, month, day) = civil_from_days(days);
        let of_day = seconds % 86_400;
        Self {
            year: u64::try_from(year).unwrap_or_default(),
            month: u64::from(month),
            day: u64::from(day),
            hour: of_day / 3_600,
            minute: of_day % 3_600 / 60,
            second: of_day % 60,
            millis: u64::from(elapsed.subsec_millis()),
        }
    }
}

/// Writes `time` as `2026-11-25T09:20:25.123Z`.
pub(super) fn write_rfc3339(out: &mut Vec<u8>, time: SystemTime) {
    let utc = Utc::of(time);
    push_padded(out, utc.year, 4);
    out.push(b'-');
    push_padded(out, utc.month, 2);
    out.push(b'-');
    push_padded(out, utc.day, 2);
    out.push(b'T');
    push_padded(out, utc.hour, 2);
    out.push(b':');
    push_padded(out, utc.minute, 2);
    out.push(b':');
    push_padded(out, utc.second, 2);
    out.push(b'.');
    push_padded(out, utc.millis, 3);
    out.push(b'Z');
}

/// Writes `time` as `25/Nov/2026:09:20:25 +0000`.
pub(super) fn write_combined(out: &mut Vec<u8>, time: SystemTime) {
    let utc = Utc::of(time);
    push_padded(out, utc.day, 2);
    out.push(b'/');
    let month = usize::try_from(utc.month.saturating_sub(1)).unwrap_or_default() % 12;
    out.extend_from_slice(MONTHS[month]);
    out.push(b'/');
    push_padded(out, utc.year, 4);
    out.push(b':');
    push_padded(out, utc.hour, 2);
    out.push(b':');
    push_padded(out, utc.minute, 2);
    out.push(b':');
    push_padded(out, utc.second, 2);
    out.extend_from_slice(b" +0000");
}

/// Writes `value` in decimal, with leading zeros up to `width` digits.
pub(super) fn push_padded(out: &mut Vec<u8>, mut value: u64, width: usize) {
    let mut digits = [b'0'; 20];
    let mut start = digits.len();
    loop {
        start -= 1;
        digits[start] = b"0123456789"[usize::try_from(value % 10).unwrap_or_default()];
        value /= 10;
        if value == 0 {
            break;
        }
    }
    let start = start.min(digits.len().saturating_sub(width));
    out.extend_from_slice(&digits[start..]);
}

/// The proleptic Gregorian date of a day count since 1970-01-01 (Howard Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let shifted = days + 719_468;
    let era = shifted.div_euclid(146_097);
    let day_of_era = shifted - era * 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1_460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = u32::try_from(day_of_year - (153 * month_index + 2) / 5 + 1).unwrap_or(1);
    let month = u32::try_from(if month_index < 10 {
        month_index + 3
    } else {
        month_index - 9
    })
    .unwrap_or(1);
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn text(write: fn(&mut Vec<u8>, SystemTime), millis: u64) -> String {
        let mut out = Vec::new();
        write(&mut out, UNIX_EPOCH + Duration::from_millis(millis));
        String::from_utf8(out).expect("ASCII")
    }

    #[test]
    fn calendar_dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
        assert_eq!(civil_from_days(20_782), (2026, 11, 25));
    }

    #[test]
    fn times_in_both_formats() {
        assert_eq!(
            text(write_rfc3339, 1_795_598_425_123),
            "2026-11-25T09:20:25.123Z"
        );
        assert_eq!(text(write_rfc3339, 7), "1970-01-01T00:00:00.007Z");
        assert_eq!(
            text(write_combined, 1_795_598_425_123),
            "25/Nov/2026:09:20:25 +0000"
        );
        assert_eq!(
            text(write_combined, 951_782_400_000),
            "29/Feb/2000:00:00:00 +0000"
        );
    }

    #[test]
    fn padding_never_truncates() {
        let mut out = Vec::new();
        push_padded(&mut out, 5, 3);
        push_padded(&mut out, 12_345, 2);
        push_padded(&mut out, u64::MAX, 1);
        assert_eq!(out, b"0051234518446744073709551615");
    }
}
