//! Unique Device Identifiers as the three FDA-accredited issuing agencies print them,
//! read into what US Core's Implantable Device profile asks for: the device identifier
//! and the production identifiers (lot, serial, manufacture and expiry dates).
//!
//! - **GS1**: application identifiers, human readable (`(01)…(17)…(10)…`) or as the
//!   barcode carries them (`01…17…10…` with the group separator `\x1d` after a
//!   variable-length field, optionally behind a symbology identifier such as `]d2`):
//!   `01` device identifier (GTIN-14), `11` manufacture date and `17` expiry (`YYMMDD`,
//!   day `00` meaning the month's last day), `10` lot, `21` serial.
//! - **HIBCC**: `+`, the primary data (labeler code, product number, unit of measure),
//!   then after `/` the secondary data: `$$` and a date format (`2` MMDDYY, `3` YYMMDD,
//!   `4` YYMMDDHH, `5` YYJJJ, `6` YYJJJHH, `7` none; a leading `0`/`1` is MMYY) then the
//!   lot, `$$+` the same then the serial, `$+` a serial, `$` a lot; and the supplementary
//!   fields `/S` serial, `/14D` expiry and `/16D` manufacture date (`YYYYMMDD`). The last
//!   character is the check character.
//! - **ICCBBA** (ISBT 128): data structures, each behind its identifier: `=/` the
//!   processor product identification code (the device identifier, 16 characters), `=,`
//!   a serial number (6), `=` and a letter the donation identification number (13, then
//!   2 flag characters), `=>` expiry and `=}` manufacture date (`cyyjjj`), `&,` a lot.

/// What a UDI carrier says.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Udi {
    /// The agency whose format the carrier is in.
    pub issuer: Issuer,
    /// The device identifier (DI).
    pub device_identifier: String,
    /// The lot or batch number.
    pub lot: Option<String>,
    /// The serial number.
    pub serial: Option<String>,
    /// The manufacture date, `YYYY-MM-DD`.
    pub manufactured: Option<String>,
    /// The expiry date, `YYYY-MM-DD`.
    pub expires: Option<String>,
    /// ISBT 128's donation identification number (FHIR's `distinctIdentifier`).
    pub distinct: Option<String>,
}

/// The issuing agency of a UDI.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub enum Issuer {
    /// GS1.
    #[default]
    Gs1,
    /// Health Industry Business Communications Council.
    Hibcc,
    /// ICCBBA (ISBT 128).
    Iccbba,
}

impl Issuer {
    /// The FHIR NamingSystem of the agency's device identifiers (`udiCarrier.issuer`).
    pub fn system(self) -> &'static str {
        match self {
            Issuer::Gs1 => "http://hl7.org/fhir/NamingSystem/gs1-di",
            Issuer::Hibcc => "http://hl7.org/fhir/NamingSystem/hibcc-dI",
            Issuer::Iccbba => "http://hl7.org/fhir/NamingSystem/iccbba-other-di",
        }
    }
}

/// Reads a UDI in any of the three formats; `None` when it is none of them or carries no
/// device identifier.
pub fn parse(carrier: &str) -> Option<Udi> {
    let text = carrier.trim();
    // A scanner's symbology identifier (`]d2`, `]C1`, `]Q3`) is not part of the data.
    let text = match text.strip_prefix(']') {
        Some(rest) if rest.len() >= 2 => &rest[2..],
        _ => text,
    };
    let udi = if let Some(rest) = text.strip_prefix('+') {
        hibcc(rest)
    } else if text.starts_with("=/") || (text.starts_with('=') && text.contains("=/")) {
        iccbba(text)
    } else if text.starts_with('(') {
        gs1_readable(text)
    } else if text.starts_with("01") {
        gs1_raw(text)
    } else {
        None
    }?;
    (!udi.device_identifier.is_empty()).then_some(udi)
}

fn non_empty(text: &str) -> Option<String> {
    let text = text.trim();
    (!text.is_empty()).then(|| text.to_owned())
}

fn days_in_month(year: i32, month: u32) -> u32 {
    match month {
        2 if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// `YYYY-MM-DD` when the parts make a real day.
fn ymd(year: i32, month: u32, day: u32) -> Option<String> {
    ((1..=12).contains(&month) && (1..=days_in_month(year, month)).contains(&day))
        .then(|| format!("{year:04}-{month:02}-{day:02}"))
}

fn digits(text: &str) -> Option<u32> {
    (!text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()))
        .then(|| text.parse().ok())
        .flatten()
}

/// A two-digit year as GS1 reads it: within 49 years ahead or 50 behind of 2000+yy's
/// century; Hearth takes the 2000s, where every UDI date falls.
fn year2(yy: u32) -> i32 {
    2000 + yy as i32
}

/// GS1's `YYMMDD`; day `00` is the month's last day.
fn gs1_date(text: &str) -> Option<String> {
    if text.len() != 6 {
        return None;
    }
    let year = year2(digits(&text[0..2])?);
    let month = digits(&text[2..4])?;
    let day = match digits(&text[4..6])? {
        0 if (1..=12).contains(&month) => days_in_month(year, month),
        day => day,
    };
    ymd(year, month, day)
}

/// Year and day of year (`jjj`) as a date.
fn ordinal(year: i32, day: u32) -> Option<String> {
    let mut left = day;
    for month in 1..=12 {
        let n = days_in_month(year, month);
        if left >= 1 && left <= n {
            return ymd(year, month, left);
        }
        left = left.checked_sub(n)?;
    }
    None
}

fn gs1_field(udi: &mut Udi, ai: &str, value: &str) {
    match ai {
        "01" => udi.device_identifier = value.trim().to_owned(),
        "10" => udi.lot = non_empty(value),
        "21" => udi.serial = non_empty(value),
        "11" => udi.manufactured = gs1_date(value),
        "17" => udi.expires = gs1_date(value),
        _ => {}
    }
}

/// `(01)00844588003288(17)141120(10)7654321D(21)10987654d321`.
fn gs1_readable(text: &str) -> Option<Udi> {
    let mut udi = Udi {
        issuer: Issuer::Gs1,
        ..Udi::default()
    };
    let mut rest = text;
    while let Some(open) = rest.strip_prefix('(') {
        let (ai, after) = open.split_once(')')?;
        let end = after.find('(').unwrap_or(after.len());
        gs1_field(&mut udi, ai, &after[..end]);
        rest = &after[end..];
    }
    rest.is_empty().then_some(udi)
}

/// The fixed length of a GS1 application identifier's data, `None` for variable ones.
fn gs1_fixed(ai: &str) -> Option<usize> {
    match ai {
        "01" => Some(14),
        "11" | "17" => Some(6),
        _ => None,
    }
}

/// `010084458800328817141120107654321D\x1d2110987654d321`.
fn gs1_raw(text: &str) -> Option<Udi> {
    let mut udi = Udi {
        issuer: Issuer::Gs1,
        ..Udi::default()
    };
    let mut rest = text;
    while !rest.is_empty() {
        rest = rest.trim_start_matches('\u{1d}');
        if rest.len() < 2 {
            break;
        }
        let ai = &rest[..2];
        if !matches!(ai, "01" | "10" | "11" | "17" | "21") {
            return None;
        }
        let data = &rest[2..];
        let len = match gs1_fixed(ai) {
            Some(n) if data.len() >= n => n,
            Some(_) => return None,
            None => data.find('\u{1d}').unwrap_or(data.len()),
        };
        gs1_field(&mut udi, ai, &data[..len]);
        rest = &data[len..];
    }
    Some(udi)
}

/// HIBCC's date of a `$$` field: the format and what follows the date.
fn hibcc_dated(text: &str) -> (Option<String>, &str) {
    let take = |n: usize| text.get(1..1 + n);
    let first = text.chars().next().unwrap_or('7');
    let parsed = match first {
        // MMYY without a format character: the month's last day.
        '0' | '1' => text.get(..4).and_then(|d| {
            let month = digits(&d[..2])?;
            let year = year2(digits(&d[2..])?);
            Some((
                ymd(year, month, days_in_month(year, month.clamp(1, 12)))?,
                4,
            ))
        }),
        '2' => take(6).and_then(|d| {
            Some((
                ymd(
                    year2(digits(&d[4..6])?),
                    digits(&d[..2])?,
                    digits(&d[2..4])?,
                )?,
                7,
            ))
        }),
        '3' | '4' => {
            let n = if first == '3' { 6 } else { 8 };
            take(n).and_then(|d| Some((gs1_date_strict(&d[..6])?, 1 + n)))
        }
        '5' | '6' => {
            let n = if first == '5' { 5 } else { 7 };
            take(n)
                .and_then(|d| Some((ordinal(year2(digits(&d[..2])?), digits(&d[2..5])?)?, 1 + n)))
        }
        _ => None,
    };
    match parsed {
        Some((date, used)) => (Some(date), &text[used..]),
        // `7`: no date; anything else is read as the data itself.
        None if first == '7' => (None, &text[1..]),
        None => (None, text),
    }
}

/// `YYMMDD` with no day-00 rule.
fn gs1_date_strict(text: &str) -> Option<String> {
    ymd(
        year2(digits(&text[0..2])?),
        digits(&text[2..4])?,
        digits(&text[4..6])?,
    )
}

/// `+B066000325011NS1/$$420020216LOT123456789012345/SXYZ456789012345678/16D20130202C`.
fn hibcc(text: &str) -> Option<Udi> {
    let mut udi = Udi {
        issuer: Issuer::Hibcc,
        ..Udi::default()
    };
    let mut parts = text.split('/');
    let primary = parts.next()?;
    let secondary: Vec<&str> = parts.collect();
    let alnum = |s: &str| s.bytes().all(|b| b.is_ascii_alphanumeric());
    // Without secondary data the primary's last character is its check character.
    let primary = if secondary.is_empty() {
        primary.get(..primary.len().checked_sub(1)?)?
    } else {
        primary
    };
    // Labeler code (4, a letter first), product number (1-18) and unit of measure (1).
    if primary.len() < 6 || !alnum(primary) || !primary.as_bytes()[0].is_ascii_alphabetic() {
        return None;
    }
    udi.device_identifier = primary.to_owned();
    let last = secondary.len().saturating_sub(1);
    for (i, field) in secondary.iter().enumerate() {
        // The last field ends with the check character (link character folded in).
        let field = if i == last {
            field.get(..field.len().saturating_sub(1)).unwrap_or("")
        } else {
            field
        };
        if let Some(rest) = field.strip_prefix("$$+") {
            let (date, serial) = hibcc_dated(rest);
            udi.expires = date.or(udi.expires.take());
            udi.serial = non_empty(serial);
        } else if let Some(rest) = field.strip_prefix("$$") {
            let (date, lot) = hibcc_dated(rest);
            udi.expires = date.or(udi.expires.take());
            udi.lot = non_empty(lot);
        } else if let Some(rest) = field.strip_prefix("$+") {
            udi.serial = non_empty(rest);
        } else if let Some(rest) = field.strip_prefix('$') {
            udi.lot = non_empty(rest);
        } else if let Some(rest) = field.strip_prefix("14D") {
            udi.expires = yyyymmdd(rest).or(udi.expires.take());
        } else if let Some(rest) = field.strip_prefix("16D") {
            udi.manufactured = yyyymmdd(rest);
        } else if let Some(rest) = field.strip_prefix('S') {
            udi.serial = non_empty(rest);
        }
    }
    Some(udi)
}

fn yyyymmdd(text: &str) -> Option<String> {
    let d = text.get(..8)?;
    ymd(
        digits(&d[..4])? as i32,
        digits(&d[4..6])?,
        digits(&d[6..8])?,
    )
}

/// ISBT 128's `cyyjjj`: century digit (0 is 2000), year, day of year.
fn isbt_date(text: &str) -> Option<String> {
    let d = text.get(..6)?;
    let year = 2000 + digits(&d[..1])? as i32 * 100 + digits(&d[1..3])? as i32;
    ordinal(year, digits(&d[3..6])?)
}

/// `=/A9999XYZ100T0944=,000025=A99971312345600=>014032=}013032&,1000000000000XYZ123`.
fn iccbba(text: &str) -> Option<Udi> {
    let mut udi = Udi {
        issuer: Issuer::Iccbba,
        ..Udi::default()
    };
    // Each data structure starts at a `=` or `&` and runs to the next one.
    let mut starts: Vec<usize> = text
        .char_indices()
        .filter(|(_, c)| *c == '=' || *c == '&')
        .map(|(i, _)| i)
        .collect();
    starts.push(text.len());
    for pair in starts.windows(2) {
        let field = &text[pair[0]..pair[1]];
        if let Some(rest) = field.strip_prefix("=/") {
            udi.device_identifier = rest.get(..16.min(rest.len()))?.to_owned();
        } else if let Some(rest) = field.strip_prefix("=,") {
            udi.serial = non_empty(rest);
        } else if let Some(rest) = field.strip_prefix("=>") {
            udi.expires = isbt_date(rest);
        } else if let Some(rest) = field.strip_prefix("=}") {
            udi.manufactured = isbt_date(rest);
        } else if let Some(rest) = field.strip_prefix("&,") {
            udi.lot = non_empty(rest);
        } else if let Some(rest) = field.strip_prefix('=')
            && rest.starts_with(|c: char| c.is_ascii_alphabetic())
        {
            // The donation identification number without its two flag characters.
            udi.distinct = rest.get(..13).map(str::to_owned);
        }
    }
    Some(udi)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gs1_human_readable_and_raw_read_alike() {
        let readable = parse("(01)00844588003288(17)141120(10)7654321D(21)10987654d321").unwrap();
        assert_eq!(readable.issuer, Issuer::Gs1);
        assert_eq!(readable.device_identifier, "00844588003288");
        assert_eq!(readable.expires.as_deref(), Some("2014-11-20"));
        assert_eq!(readable.lot.as_deref(), Some("7654321D"));
        assert_eq!(readable.serial.as_deref(), Some("10987654d321"));
        let raw = parse("]d2010084458800328817141120107654321D\u{1d}2110987654d321").unwrap();
        assert_eq!(raw, readable);
        let made = parse("(01)10884521062856(11)141231(17)150707(10)A213B1(21)1234").unwrap();
        assert_eq!(made.manufactured.as_deref(), Some("2014-12-31"));
        assert_eq!(made.expires.as_deref(), Some("2015-07-07"));
        let last_day = parse("(01)00844588003288(17)240200").unwrap();
        assert_eq!(last_day.expires.as_deref(), Some("2024-02-29"));
    }

    #[test]
    fn hibcc_primary_and_secondary_data() {
        let udi = parse(
            "+B066000325011NS1/$$420020216LOT123456789012345/SXYZ456789012345678/16D20130202C",
        )
        .unwrap();
        assert_eq!(udi.issuer, Issuer::Hibcc);
        assert_eq!(udi.device_identifier, "B066000325011NS1");
        assert_eq!(udi.expires.as_deref(), Some("2020-02-02"));
        assert_eq!(udi.lot.as_deref(), Some("LOT123456789012345"));
        assert_eq!(udi.serial.as_deref(), Some("XYZ456789012345678"));
        assert_eq!(udi.manufactured.as_deref(), Some("2013-02-02"));
        let primary = parse("+H123PARTNO1234567890120").unwrap();
        assert_eq!(primary.device_identifier, "H123PARTNO123456789012");
        assert_eq!(primary.lot, None);
        let serial = parse("+A99912345/$$+3251231SER42L").unwrap();
        assert_eq!(serial.expires.as_deref(), Some("2025-12-31"));
        assert_eq!(serial.serial.as_deref(), Some("SER42"));
    }

    #[test]
    fn iccbba_data_structures() {
        let udi = parse(
            "=/A9999XYZ100T0944=,000025=A99971312345600=>014032=}013032&,1000000000000XYZ123",
        )
        .unwrap();
        assert_eq!(udi.issuer, Issuer::Iccbba);
        assert_eq!(udi.device_identifier, "A9999XYZ100T0944");
        assert_eq!(udi.serial.as_deref(), Some("000025"));
        assert_eq!(udi.distinct.as_deref(), Some("A999713123456"));
        assert_eq!(udi.expires.as_deref(), Some("2014-02-01"));
        assert_eq!(udi.manufactured.as_deref(), Some("2013-02-01"));
        assert_eq!(udi.lot.as_deref(), Some("1000000000000XYZ123"));
    }

    #[test]
    fn a_removed_or_inactive_device_is_inactive() {
        // The device's status (the plugin's), tested here: the crate's tests live in
        // this module so that scripts/plugin-lines counts every line before them.
        let now = "2025-01-01 00:00:00";
        assert_eq!(crate::status(true, None, now), "active");
        assert_eq!(crate::status(true, Some(""), now), "active");
        assert_eq!(
            crate::status(true, Some("2024-05-01 00:00:00"), now),
            "inactive"
        );
        assert_eq!(
            crate::status(true, Some("2026-05-01 00:00:00"), now),
            "active"
        );
        assert_eq!(crate::status(false, None, now), "inactive");
    }

    #[test]
    fn what_is_no_udi_is_none() {
        for text in ["", "hello", "(01", "+AB", "(99)123", "0112"] {
            assert_eq!(parse(text), None, "{text}");
        }
    }
}
