//! FHIR `date`, `dateTime` and `instant` values as the time ranges they stand for.
//!
//! A search value covers everything at its precision: `2020` is the whole year,
//! `2020-03-04` the whole day, `2020-03-04T10:00:00Z` one second. A range is half-open,
//! `[start, end)`, in seconds since the Unix epoch (UTC). A time without a zone is read
//! as UTC, the zone Hearth stores times in.

use hearth_sdk::time::DateTime;

/// A half-open range of seconds since the Unix epoch, `[start, end)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Range {
    /// The first second in the range.
    pub start: i64,
    /// The first second after it.
    pub end: i64,
}

/// Days from 1970-01-01 to `year-month-day` (proleptic Gregorian).
pub fn days_from_civil(year: i32, month: u32, day: u32) -> i64 {
    let y = i64::from(year) - i64::from(month <= 2);
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn digits(text: &str, at: usize, n: usize) -> Option<u32> {
    let part = text.get(at..at + n)?;
    if part.bytes().all(|b| b.is_ascii_digit()) {
        part.parse().ok()
    } else {
        None
    }
}

/// Parses a FHIR `date` / `dateTime` / `instant` (`YYYY`, `YYYY-MM`, `YYYY-MM-DD`,
/// `YYYY-MM-DDThh:mm[:ss[.fff]][Z|±hh:mm]`) into the range it covers, or `None` when it
/// is not one.
pub fn parse(text: &str) -> Option<Range> {
    let year = digits(text, 0, 4)? as i32;
    if text.len() == 4 {
        return Some(Range {
            start: days_from_civil(year, 1, 1) * 86_400,
            end: days_from_civil(year + 1, 1, 1) * 86_400,
        });
    }
    if text.as_bytes().get(4) != Some(&b'-') {
        return None;
    }
    let month = digits(text, 5, 2)?;
    if !(1..=12).contains(&month) {
        return None;
    }
    if text.len() == 7 {
        let (ny, nm) = if month == 12 {
            (year + 1, 1)
        } else {
            (year, month + 1)
        };
        return Some(Range {
            start: days_from_civil(year, month, 1) * 86_400,
            end: days_from_civil(ny, nm, 1) * 86_400,
        });
    }
    if text.as_bytes().get(7) != Some(&b'-') {
        return None;
    }
    let day = digits(text, 8, 2)?;
    if day == 0 || day > hearth_sdk::time::days_in_month(year, month) {
        return None;
    }
    let midnight = days_from_civil(year, month, day) * 86_400;
    if text.len() == 10 {
        return Some(Range {
            start: midnight,
            end: midnight + 86_400,
        });
    }
    if text.as_bytes().get(10) != Some(&b'T') {
        return None;
    }
    let hour = digits(text, 11, 2)?;
    if text.as_bytes().get(13) != Some(&b':') {
        return None;
    }
    let minute = digits(text, 14, 2)?;
    let mut at = 16;
    let mut width = 60;
    let mut second = 0;
    if text.as_bytes().get(16) == Some(&b':') {
        second = digits(text, 17, 2)?;
        at = 19;
        width = 1;
        if text.as_bytes().get(19) == Some(&b'.') {
            at = 20;
            while text.as_bytes().get(at).is_some_and(u8::is_ascii_digit) {
                at += 1;
            }
            if at == 20 {
                return None;
            }
        }
    }
    if hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    let offset = match &text[at..] {
        "" | "Z" => 0,
        zone => {
            let sign = match zone.as_bytes()[0] {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            if zone.len() != 6 || zone.as_bytes()[3] != b':' {
                return None;
            }
            let (h, m) = (digits(zone, 1, 2)?, digits(zone, 4, 2)?);
            if h > 14 || m > 59 {
                return None;
            }
            sign * i64::from(h * 3600 + m * 60)
        }
    };
    let start = midnight + i64::from(hour * 3600 + minute * 60 + second) - offset;
    Some(Range {
        start,
        end: start + width,
    })
}

/// `YYYY-MM-DD HH:MM:SS` (UTC), the form Hearth stores times in.
pub fn sql_datetime(secs: i64) -> String {
    DateTime::from_unix(secs).datetime()
}

/// `YYYY-MM-DD` of the day holding `secs`.
pub fn sql_date(secs: i64) -> String {
    DateTime::from_unix(secs).date()
}

/// A stored `YYYY-MM-DD HH:MM:SS` time as a FHIR `instant` (`YYYY-MM-DDThh:mm:ssZ`), or
/// `None` when the text is not one.
pub fn instant(stored: &str) -> Option<String> {
    Some(hearth_sdk::time::parse_date_or_datetime(stored)?.instant())
}

/// Seconds since the Unix epoch of a stored `YYYY-MM-DD[ HH:MM:SS]` time.
pub fn unix(stored: &str) -> Option<i64> {
    let t = hearth_sdk::time::parse_date_or_datetime(stored)?;
    Some(
        days_from_civil(t.year, t.month, t.day) * 86_400
            + i64::from(t.hour * 3600 + t.minute * 60 + t.second),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: i64 = 86_400;

    #[test]
    fn each_precision_covers_its_whole_period() {
        let y2020 = days_from_civil(2020, 1, 1) * DAY;
        assert_eq!(y2020, 1_577_836_800);
        assert_eq!(
            parse("2020"),
            Some(Range {
                start: y2020,
                end: days_from_civil(2021, 1, 1) * DAY
            })
        );
        let feb = parse("2020-02").unwrap();
        assert_eq!(feb.end - feb.start, 29 * DAY, "a leap February");
        let dec = parse("2019-12").unwrap();
        assert_eq!(dec.end, y2020);
        assert_eq!(
            parse("2020-01-01"),
            Some(Range {
                start: y2020,
                end: y2020 + DAY
            })
        );
        assert_eq!(
            parse("2020-01-01T10:00:00Z"),
            Some(Range {
                start: y2020 + 36_000,
                end: y2020 + 36_001
            })
        );
        assert_eq!(parse("2020-01-01T10:00").unwrap().end, y2020 + 36_060);
        assert_eq!(
            parse("2020-01-01T10:00:00.123+02:00").unwrap().start,
            y2020 + 8 * 3600,
            "an offset moves the time to UTC"
        );
    }

    #[test]
    fn malformed_values_are_refused() {
        for bad in [
            "",
            "20",
            "2020-13",
            "2020-02-30",
            "2020-1-1",
            "2020-01-01X",
            "2020-01-01T25:00",
            "2020-01-01T10:00:00+2",
            "2020-01-01T10:00:00.",
            "abcd",
            "2020-01-01T10:00:00ZZ",
        ] {
            assert_eq!(parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn stored_times_become_instants() {
        assert_eq!(
            instant("2024-05-06 07:08:09").as_deref(),
            Some("2024-05-06T07:08:09Z")
        );
        assert_eq!(unix("1970-01-02"), Some(DAY));
        assert_eq!(sql_datetime(DAY + 61), "1970-01-02 00:01:01");
        assert_eq!(sql_date(DAY + 61), "1970-01-02");
    }
}
