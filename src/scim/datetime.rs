//! SCIM `dateTime` values (RFC 7643 §2.3.5: xsd:dateTime, e.g.
//! `2011-05-13T04:42:34Z`) as instants, so `meta.lastModified gt "..."`
//! compares points in time rather than text: `2011-05-13T06:42:34+02:00`
//! and `2011-05-13T04:42:34.000Z` are the same instant.
//!
//! Accepted: `YYYY-MM-DDTHH:MM:SS`, an optional fraction (digits past the
//! ninth are ignored), then `Z`, `±HH:MM`, or nothing (xsd:dateTime allows a
//! missing zone; it is read as UTC). `T` and `Z` may be lower case
//! (RFC 3339 §5.6). Everything else, including out-of-range fields and
//! 24:00:00, is refused.

/// An instant: seconds since 1970-01-01T00:00:00Z, and nanoseconds.
pub(crate) type Instant = (i64, u32);

pub(crate) fn parse(text: &str) -> Option<Instant> {
    let b = text.as_bytes();
    let num = |from: usize, len: usize| -> Option<i64> {
        let digits = b.get(from..from + len)?;
        digits.iter().try_fold(0i64, |acc, d| {
            d.is_ascii_digit().then(|| acc * 10 + i64::from(d - b'0'))
        })
    };
    let sep = |at: usize, ok: &[u8]| b.get(at).is_some_and(|c| ok.contains(c));
    let (year, month, day) = (num(0, 4)?, num(5, 2)?, num(8, 2)?);
    let (hour, minute, second) = (num(11, 2)?, num(14, 2)?, num(17, 2)?);
    if !(sep(4, b"-") && sep(7, b"-") && sep(10, b"Tt") && sep(13, b":") && sep(16, b":")) {
        return None;
    }
    let mut at = 19;
    let mut nanos = 0u32;
    if sep(at, b".") {
        at += 1;
        let start = at;
        while let Some(d) = b.get(at).filter(|d| d.is_ascii_digit()) {
            if at - start < 9 {
                nanos = nanos * 10 + u32::from(d - b'0');
            }
            at += 1;
        }
        let used = (at - start).min(9);
        if used == 0 {
            return None;
        }
        nanos *= 10u32.pow(9 - used as u32);
    }
    let offset = match b.get(at) {
        None => 0,
        Some(b'Z' | b'z') => {
            at += 1;
            0
        }
        Some(&sign @ (b'+' | b'-')) => {
            let (hours, minutes) = (num(at + 1, 2)?, num(at + 4, 2)?);
            if !sep(at + 3, b":") || hours > 23 || minutes > 59 {
                return None;
            }
            at += 6;
            let offset = hours * 3600 + minutes * 60;
            if sign == b'-' {
                -offset
            } else {
                offset
            }
        }
        Some(_) => return None,
    };
    let valid = at == b.len()
        && (1..=12).contains(&month)
        && (1..=days_in_month(year, month)).contains(&day)
        && hour <= 23
        && minute <= 59
        && second <= 60;
    if !valid {
        return None;
    }
    let seconds = days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second - offset;
    Some((seconds, nanos))
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::parse;

    #[test]
    fn instants() {
        assert_eq!(parse("1970-01-01T00:00:00Z"), Some((0, 0)));
        assert_eq!(parse("2011-05-13T04:42:34Z"), Some((1_305_261_754, 0)));
        assert_eq!(parse("2011-05-13T06:42:34+02:00"), parse("2011-05-13T04:42:34Z"));
        assert_eq!(parse("2011-05-13t04:42:34.5z"), Some((1_305_261_754, 500_000_000)));
        assert_eq!(parse("2018-03-27T19:59:26.000Z"), parse("2018-03-27T19:59:26Z"));
        assert_eq!(parse("2025-03-25T16:17:00"), parse("2025-03-25T16:17:00Z"));
        assert_eq!(parse("2000-02-29T00:00:00.1234567891Z").map(|t| t.1), Some(123_456_789));
    }

    #[test]
    fn refusals() {
        for bad in [
            "",
            "2011-05-13",
            "2011-05-13 04:42:34Z",
            "2011-13-01T00:00:00Z",
            "2011-02-29T00:00:00Z",
            "2011-05-13T24:00:00Z",
            "2011-05-13T04:42:34.Z",
            "2011-05-13T04:42:34+2:00",
            "2011-05-13T04:42:34Zjunk",
            "２011-05-13T04:42:34Z",
            "2011-05-13T04:42:34+24:00",
        ] {
            assert_eq!(parse(bad), None, "{bad}");
        }
    }
}
