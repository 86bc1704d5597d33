//! How dates and times are written. Timestamps are stored as fixed-width UTC RFC 3339 strings
//! (`2026-11-22T15:33:11.123456Z`) so that text order equals time order on both backends.

use time::format_description::well_known::Rfc3339;
use time::macros::format_description;
use time::{Date, OffsetDateTime, UtcOffset};

const STORED: &[time::format_description::BorrowedFormatItem<'static>] =
    format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:6]Z");
const DATE: &[time::format_description::BorrowedFormatItem<'static>] = format_description!("[year]-[month]-[day]");

/// Formats an instant the way it is stored.
pub fn format_utc(t: OffsetDateTime) -> String {
    t.to_offset(UtcOffset::UTC)
        .format(STORED)
        .unwrap_or_else(|_| t.unix_timestamp().to_string())
}

/// The current instant, formatted for storage.
pub fn now_utc() -> String {
    format_utc(OffsetDateTime::now_utc())
}

/// Parses any RFC 3339 timestamp (any offset) and returns its stored form.
pub fn parse_datetime(s: &str) -> Option<String> {
    OffsetDateTime::parse(s.trim(), &Rfc3339).ok().map(format_utc)
}

/// Parses `YYYY-MM-DD`.
pub fn parse_date(s: &str) -> Option<Date> {
    Date::parse(s.trim(), DATE).ok()
}

/// Formats a date as `YYYY-MM-DD`.
pub fn format_date(d: Date) -> String {
    d.format(DATE).unwrap_or_default()
}

/// Today's date in China Standard Time, the default business time zone for numbering periods.
pub fn today_shanghai() -> Date {
    let offset = UtcOffset::from_hms(8, 0, 0).unwrap_or(UtcOffset::UTC);
    OffsetDateTime::now_utc().to_offset(offset).date()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_normalised_to_fixed_width_utc() {
        assert_eq!(
            parse_datetime("2026-11-22T08:00:00+08:00").as_deref(),
            Some("2026-11-22T00:00:00.000000Z")
        );
        assert_eq!(parse_datetime("yesterday"), None);
        assert_eq!(now_utc().len(), "2026-11-22T00:00:00.000000Z".len());
    }

    #[test]
    fn dates_must_be_real_calendar_days() {
        assert!(parse_date("2026-02-28").is_some());
        assert!(parse_date("2026-02-30").is_none());
        assert!(parse_date("2026/02/01").is_none());
    }
}
