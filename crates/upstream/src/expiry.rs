//! Reading the time fields of a token response.
//!
//! Managed-identity endpoints send numbers as JSON strings, Entra sends JSON numbers, and the
//! legacy App Service protocol sends `expires_on` as a date such as
//! `9/14/2017 12:00:00 PM +00:00`. Each reader here accepts all of those forms.

use serde_json::Value;

/// Seconds since the Unix epoch from a number, a numeric string or a date string.
pub(crate) fn epoch_seconds(value: &Value) -> Option<u64> {
    if let Some(secs) = seconds(value) {
        return Some(secs);
    }
    let text = value.as_str()?.trim();
    us_date(text)
        .or_else(|| rfc3339(text))
        .or_else(|| http_date(text))
}

/// A non-negative count of seconds from a number or a numeric string.
pub(crate) fn seconds(value: &Value) -> Option<u64> {
    match value {
        Value::Number(n) => n.as_u64().or_else(|| whole(n.as_f64()?)),
        Value::String(s) => {
            let s = s.trim();
            s.parse::<u64>()
                .ok()
                .or_else(|| whole(s.parse::<f64>().ok()?))
        }
        _ => None,
    }
}

fn whole(f: f64) -> Option<u64> {
    // Casting a finite, in-range float truncates toward zero, which is what we want.
    (f.is_finite() && f >= 0.0 && f < u64::MAX as f64).then_some(f as u64)
}

/// `M/D/YYYY h:mm:ss [AM|PM] ±HH:MM`, the legacy App Service form.
fn us_date(text: &str) -> Option<u64> {
    let mut parts = text.split_whitespace();
    let date = parts.next()?;
    let time = parts.next()?;
    let mut next = parts.next()?;
    let meridiem = match next.to_ascii_uppercase().as_str() {
        "AM" => Some(false),
        "PM" => Some(true),
        _ => None,
    };
    if meridiem.is_some() {
        next = parts.next()?;
    }
    if parts.next().is_some() {
        return None;
    }
    let [month, day, year] = numbers::<3>(date, '/')?;
    let [mut hour, minute, second] = numbers::<3>(time, ':')?;
    if let Some(pm) = meridiem {
        if !(1..=12).contains(&hour) {
            return None;
        }
        hour = hour % 12 + if pm { 12 } else { 0 };
    }
    let offset = utc_offset(next)?;
    civil_to_epoch(year, month, day, hour, minute, second, offset)
}

/// `YYYY-MM-DDTHH:MM:SS[.frac](Z|±HH:MM)`.
fn rfc3339(text: &str) -> Option<u64> {
    let (date, rest) = text.split_once(['T', 't', ' '])?;
    let [year, month, day] = numbers::<3>(date, '-')?;
    let split = rest.find(['Z', 'z', '+', '-'])?;
    let (time, zone) = rest.split_at(split);
    let time = time.split('.').next()?;
    let [hour, minute, second] = numbers::<3>(time, ':')?;
    let offset = if zone.eq_ignore_ascii_case("z") {
        0
    } else {
        utc_offset(zone)?
    };
    civil_to_epoch(year, month, day, hour, minute, second, offset)
}

fn http_date(text: &str) -> Option<u64> {
    let time = httpdate::parse_http_date(text).ok()?;
    Some(time.duration_since(std::time::UNIX_EPOCH).ok()?.as_secs())
}

fn numbers<const N: usize>(text: &str, sep: char) -> Option<[i64; N]> {
    let mut out = [0; N];
    let mut parts = text.split(sep);
    for slot in &mut out {
        let part = parts.next()?;
        if part.is_empty() || part.len() > 4 || !part.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        *slot = part.parse().ok()?;
    }
    parts.next().is_none().then_some(out)
}

/// `+HH:MM` or `-HH:MM` as seconds east of UTC.
fn utc_offset(text: &str) -> Option<i64> {
    let (sign, rest) = match text.as_bytes().first()? {
        b'+' => (1, &text[1..]),
        b'-' => (-1, &text[1..]),
        _ => return None,
    };
    let [hours, minutes] = numbers::<2>(rest, ':')?;
    (hours < 24 && minutes < 60).then_some(sign * (hours * 3600 + minutes * 60))
}

fn civil_to_epoch(
    year: i64,
    month: i64,
    day: i64,
    hour: i64,
    minute: i64,
    second: i64,
    offset: i64,
) -> Option<u64> {
    let valid = (1970..=9999).contains(&year)
        && (1..=12).contains(&month)
        && (1..=31).contains(&day)
        && hour < 24
        && minute < 60
        && second < 61;
    if !valid {
        return None;
    }
    let secs = days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second;
    u64::try_from(secs - offset).ok()
}

/// Days since 1970-01-01 in the proleptic Gregorian calendar (Howard Hinnant's algorithm).
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
    use super::*;
    use serde_json::json;

    #[test]
    fn numbers_and_numeric_strings_are_both_read() {
        assert_eq!(epoch_seconds(&json!(1586984735)), Some(1586984735));
        assert_eq!(epoch_seconds(&json!("1586984735")), Some(1586984735));
        assert_eq!(seconds(&json!("3599")), Some(3599));
        assert_eq!(seconds(&json!(3599)), Some(3599));
        assert_eq!(seconds(&json!(3599.7)), Some(3599));
    }

    #[test]
    fn negative_or_non_numeric_values_are_refused() {
        for bad in [
            json!(-5),
            json!("-5"),
            json!("abc"),
            json!(null),
            json!(true),
            json!(""),
        ] {
            assert_eq!(seconds(&bad), None, "{bad}");
        }
        assert_eq!(seconds(&json!("1e309")), None);
    }

    #[test]
    fn legacy_app_service_dates_are_read() {
        // 2017-09-14T12:00:00Z
        assert_eq!(
            epoch_seconds(&json!("9/14/2017 12:00:00 PM +00:00")),
            Some(1505390400)
        );
        assert_eq!(
            epoch_seconds(&json!("09/14/2017 12:00:00 AM +00:00")),
            Some(1505347200)
        );
        assert_eq!(
            epoch_seconds(&json!("09/14/2017 14:30:05 +00:00")),
            Some(1505399405)
        );
        assert_eq!(
            epoch_seconds(&json!("09/14/2017 14:30:05 +02:00")),
            Some(1505392205)
        );
    }

    #[test]
    fn rfc3339_and_http_dates_are_read() {
        assert_eq!(
            epoch_seconds(&json!("2017-09-14T12:00:00Z")),
            Some(1505390400)
        );
        assert_eq!(
            epoch_seconds(&json!("2017-09-14T12:00:00.123-01:00")),
            Some(1505394000)
        );
        assert_eq!(
            epoch_seconds(&json!("Thu, 14 Sep 2017 12:00:00 GMT")),
            Some(1505390400)
        );
    }

    #[test]
    fn malformed_dates_are_refused() {
        for bad in [
            "13/14/2017 12:00:00 PM +00:00",
            "9/14/2017 13:00:00 PM +00:00",
            "9/14/2017 12:00:00 PM",
            "9/14/2017 12:00:00 PM +00:00 extra",
            "2017-09-14T25:00:00Z",
            "yesterday",
        ] {
            assert_eq!(epoch_seconds(&json!(bad)), None, "{bad}");
        }
    }
}
