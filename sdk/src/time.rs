//! Dates and times as OpenEMR writes them: `YYYY-MM-DD` and `YYYY-MM-DD HH:MM:SS`, UTC.

use crate::host;

/// A calendar date and time of day.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct DateTime {
    /// Year.
    pub year: i32,
    /// Month, 1–12.
    pub month: u32,
    /// Day, 1–31.
    pub day: u32,
    /// Hour, 0–23.
    pub hour: u32,
    /// Minute, 0–59.
    pub minute: u32,
    /// Second, 0–59.
    pub second: u32,
}

impl DateTime {
    /// The moment `secs` seconds after the Unix epoch.
    pub fn from_unix(secs: i64) -> DateTime {
        let days = secs.div_euclid(86_400);
        let rest = secs.rem_euclid(86_400) as u32;
        let (year, month, day) = civil_from_days(days);
        DateTime {
            year,
            month,
            day,
            hour: rest / 3600,
            minute: rest % 3600 / 60,
            second: rest % 60,
        }
    }

    /// `YYYY-MM-DD`.
    pub fn date(&self) -> String {
        let mut out = String::with_capacity(10);
        self.push_date(&mut out);
        out
    }

    /// `YYYY-MM-DD HH:MM:SS`.
    pub fn datetime(&self) -> String {
        let mut out = String::with_capacity(19);
        self.push_date(&mut out);
        out.push(' ');
        self.push_time(&mut out);
        out
    }

    /// A FHIR `instant` in UTC: `YYYY-MM-DDThh:mm:ssZ`.
    pub fn instant(&self) -> String {
        let mut out = String::with_capacity(20);
        self.push_date(&mut out);
        out.push('T');
        self.push_time(&mut out);
        out.push('Z');
        out
    }

    /// Appends `YYYY-MM-DD` (the year padded to four digits, as `{:04}` pads it). Written
    /// digit by digit: a search page writes a few dates for each of its thousands of
    /// resources, and the formatting machinery was a tenth of a Bulk Data page's CPU.
    fn push_date(&self, out: &mut String) {
        match u32::try_from(self.year) {
            Ok(year) if year <= 9999 => {
                push_two(out, year / 100);
                push_two(out, year % 100);
            }
            _ => {
                use std::fmt::Write as _;
                let _ = write!(out, "{:04}", self.year);
            }
        }
        out.push('-');
        push_two(out, self.month);
        out.push('-');
        push_two(out, self.day);
    }

    /// Appends `HH:MM:SS`.
    fn push_time(&self, out: &mut String) {
        push_two(out, self.hour);
        out.push(':');
        push_two(out, self.minute);
        out.push(':');
        push_two(out, self.second);
    }
}

/// Appends `n` (below 100, as every field but the year is) as two digits; a larger one
/// (no parsed or computed time has one) as `{:02}` writes it.
fn push_two(out: &mut String, n: u32) {
    if n < 100 {
        out.push(char::from(b'0' + (n / 10) as u8));
        out.push(char::from(b'0' + (n % 10) as u8));
    } else {
        use std::fmt::Write as _;
        let _ = write!(out, "{n:02}");
    }
}

/// The current time from the host's clock (UTC).
pub fn now() -> DateTime {
    DateTime::from_unix(host::now().0)
}

/// Days in `month` of `year`.
pub fn days_in_month(year: i32, month: u32) -> u32 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        2 => 28,
        _ => 0,
    }
}

/// Parses `value` against a PHP-style `format` made of `Y` (4-digit year), `m`, `d`, `H`,
/// `i`, `s` (2 digits each) and literal characters. The result must be a real date.
pub fn parse(value: &str, format: &str) -> Option<DateTime> {
    let mut out = DateTime {
        year: 0,
        month: 1,
        day: 1,
        hour: 0,
        minute: 0,
        second: 0,
    };
    let bytes = value.as_bytes();
    let mut at = 0;
    fn digits(bytes: &[u8], at: &mut usize, n: usize) -> Option<u32> {
        let slice = bytes.get(*at..*at + n)?;
        if !slice.iter().all(u8::is_ascii_digit) {
            return None;
        }
        *at += n;
        // At most four ASCII digits: no overflow.
        Some(
            slice
                .iter()
                .fold(0, |value, digit| value * 10 + u32::from(digit - b'0')),
        )
    }
    for f in format.chars() {
        match f {
            'Y' => out.year = digits(bytes, &mut at, 4)? as i32,
            'm' => out.month = digits(bytes, &mut at, 2)?,
            'd' => out.day = digits(bytes, &mut at, 2)?,
            'H' => out.hour = digits(bytes, &mut at, 2)?,
            'i' => out.minute = digits(bytes, &mut at, 2)?,
            's' => out.second = digits(bytes, &mut at, 2)?,
            literal => {
                let mut buf = [0u8; 4];
                let lit = literal.encode_utf8(&mut buf).as_bytes();
                if bytes.get(at..at + lit.len())? != lit {
                    return None;
                }
                at += lit.len();
            }
        }
    }
    let valid = at == bytes.len()
        && (1..=12).contains(&out.month)
        && out.day >= 1
        && out.day <= days_in_month(out.year, out.month)
        && out.hour < 24
        && out.minute < 60
        && out.second < 60;
    valid.then_some(out)
}

/// A date `YYYY-MM-DD` or a datetime `YYYY-MM-DD HH:MM:SS` (also with `T`), as a datetime.
/// OpenEMR's list routes want the datetime; people send dates.
pub fn parse_date_or_datetime(value: &str) -> Option<DateTime> {
    parse(value, "Y-m-d H:i:s")
        .or_else(|| parse(&value.replacen('T', " ", 1), "Y-m-d H:i:s"))
        .or_else(|| parse(value, "Y-m-d"))
}

/// (year, month, day) of the day `days` after 1970-01-01 (Howard Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i32, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = (yoe + era * 400 + i64::from(month <= 2)) as i32;
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_unix_times() {
        assert_eq!(DateTime::from_unix(0).datetime(), "1970-01-01 00:00:00");
        assert_eq!(
            DateTime::from_unix(1_709_210_096).datetime(),
            "2024-02-29 12:34:56"
        );
    }

    #[test]
    fn written_digit_by_digit_as_the_formatter_writes_them() {
        let formatted = |t: &DateTime| {
            format!(
                "{:04}-{:02}-{:02} {:02}:{:02}:{:02}",
                t.year, t.month, t.day, t.hour, t.minute, t.second
            )
        };
        // Years of one to five digits, before the epoch and before year 0.
        for secs in [
            0,
            1_709_210_096,
            -62_135_596_800,
            -62_167_219_200,
            -62_198_755_200,
            -61_000_000_000,
            253_402_300_799,
            253_402_300_800,
            4_000_000_000_000,
        ] {
            let t = DateTime::from_unix(secs);
            let expected = formatted(&t);
            assert_eq!(t.datetime(), expected, "{secs}");
            assert_eq!(t.date(), &expected[..expected.len() - 9], "{secs}");
            assert_eq!(t.instant(), expected.replacen(' ', "T", 1) + "Z", "{secs}");
        }
        let odd = DateTime {
            year: 7,
            month: 123,
            day: 1,
            hour: 0,
            minute: 0,
            second: 0,
        };
        assert_eq!(odd.datetime(), formatted(&odd));
    }

    #[test]
    fn parses_only_real_dates() {
        assert!(parse("2024-02-29", "Y-m-d").is_some());
        assert!(parse("2023-02-29", "Y-m-d").is_none());
        assert!(parse("2023-13-01", "Y-m-d").is_none());
        assert!(parse("2023-1-01", "Y-m-d").is_none());
        assert!(parse("2023-01-01 ", "Y-m-d").is_none());
        assert_eq!(
            parse("2023-01-02 03:04:05", "Y-m-d H:i:s").unwrap().second,
            5
        );
        assert!(parse("2023-01-02 24:00:00", "Y-m-d H:i:s").is_none());
    }

    #[test]
    fn list_dates_take_both_forms() {
        assert_eq!(
            parse_date_or_datetime("2013-04-13").unwrap().datetime(),
            "2013-04-13 00:00:00"
        );
        assert_eq!(
            parse_date_or_datetime("2013-04-13 10:11:12")
                .unwrap()
                .datetime(),
            "2013-04-13 10:11:12"
        );
        assert_eq!(
            parse_date_or_datetime("2013-04-13T10:11:12")
                .unwrap()
                .datetime(),
            "2013-04-13 10:11:12"
        );
        assert!(parse_date_or_datetime("13/04/2013").is_none());
    }
}
