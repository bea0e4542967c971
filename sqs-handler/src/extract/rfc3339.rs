//! RFC 3339 timestamps, as SNS (`2012-03-29T05:12:16.901Z`) and EventBridge
//! (`2017-12-22T18:43:48Z`) write them; parsed here rather than pulling a date crate into the
//! runtime for two fields.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Parses `YYYY-MM-DDTHH:MM:SS[.fraction](Z|+HH:MM|-HH:MM)`.
pub(crate) fn parse(text: &str) -> Option<SystemTime> {
    let b = text.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') {
        return None;
    }
    if b[13] != b':' || b[16] != b':' {
        return None;
    }
    let year = digits(&b[0..4])?;
    let month = digits(&b[5..7])?;
    let day = digits(&b[8..10])?;
    let (hour, minute, second) = (
        digits(&b[11..13])?,
        digits(&b[14..16])?,
        digits(&b[17..19])?,
    );
    if !(1..=12).contains(&month) || day == 0 || day > days_in_month(year, month) {
        return None;
    }
    if hour > 23 || minute > 59 || second > 59 {
        return None;
    }
    let mut rest = &b[19..];
    let mut nanos = 0u32;
    if let Some(fraction) = rest.strip_prefix(b".") {
        let len = fraction.iter().take_while(|c| c.is_ascii_digit()).count();
        if len == 0 {
            return None;
        }
        for (i, c) in fraction[..len].iter().enumerate() {
            if i < 9 {
                nanos += u32::from(c - b'0') * 10u32.pow(8 - i as u32);
            }
        }
        rest = &fraction[len..];
    }
    let offset_secs: i64 = match rest {
        [b'Z' | b'z'] => 0,
        [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] => {
            let (h, m) = (digits(&[*h1, *h2])?, digits(&[*m1, *m2])?);
            if h > 23 || m > 59 {
                return None;
            }
            let secs = h * 3600 + m * 60;
            if *sign == b'+' { secs } else { -secs }
        }
        _ => return None,
    };
    let days = days_from_civil(year, month, day);
    let secs = days * 86_400 + hour * 3600 + minute * 60 + second - offset_secs;
    let whole = Duration::from_secs(secs.unsigned_abs());
    if secs >= 0 {
        UNIX_EPOCH.checked_add(whole + Duration::from_nanos(nanos.into()))
    } else {
        UNIX_EPOCH
            .checked_sub(whole)?
            .checked_add(Duration::from_nanos(nanos.into()))
    }
}

fn digits(b: &[u8]) -> Option<i64> {
    b.iter().try_fold(0i64, |n, c| {
        c.is_ascii_digit().then(|| n * 10 + i64::from(c - b'0'))
    })
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's `days_from_civil`).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let year_of_era = y - era * 400;
    let day_of_year = (153 * ((month + 9) % 12) + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: u64, millis: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs) + Duration::from_millis(millis)
    }

    #[test]
    fn parses_what_sns_and_eventbridge_write() {
        // `date -u -d 2012-03-29T05:12:16Z +%s` = 1332997936
        assert_eq!(
            parse("2012-03-29T05:12:16.901Z"),
            Some(at(1_332_997_936, 901))
        );
        // `date -u -d 2017-12-22T18:43:48Z +%s` = 1513968228
        assert_eq!(parse("2017-12-22T18:43:48Z"), Some(at(1_513_968_228, 0)));
        assert_eq!(parse("1970-01-01T00:00:00Z"), Some(UNIX_EPOCH));
        assert_eq!(
            parse("2024-02-29T23:59:59.5z"),
            Some(at(1_709_251_199, 500))
        );
    }

    #[test]
    fn offsets_are_applied() {
        assert_eq!(
            parse("2017-12-22T20:43:48+02:00"),
            parse("2017-12-22T18:43:48Z")
        );
        assert_eq!(
            parse("2017-12-22T16:13:48-02:30"),
            parse("2017-12-22T18:43:48Z")
        );
    }

    #[test]
    fn before_1970_is_before_the_epoch() {
        assert_eq!(
            parse("1969-12-31T23:59:59.250Z"),
            Some(UNIX_EPOCH - Duration::from_millis(750))
        );
    }

    #[test]
    fn rejects_what_is_not_a_timestamp() {
        for text in [
            "",
            "yesterday",
            "2017-12-22",
            "2017-12-22T18:43:48",
            "2017-12-22T18:43:48+0200",
            "2017-13-22T18:43:48Z",
            "2023-02-29T18:43:48Z",
            "2017-12-22T24:00:00Z",
            "2017-12-22T18:43:48.Z",
            "2017-12-22T18:43:48Zjunk",
            "1512-12-22X18:43:48Z",
            "+017-12-22T18:43:48Z",
        ] {
            assert_eq!(parse(text), None, "{text:?}");
        }
    }
}
