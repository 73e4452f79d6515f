//! Reading OTT Pay's Beijing-time timestamps without a date library.

/// Parses a `finish_time` (Beijing time, UTC+8) in either format seen from OTT Pay —
/// `yyyyMMddHHmmss` (documented) or `yyyy-MM-dd HH:mm:ss` (seen in examples, sometimes
/// followed by a zone name) — into UTC epoch seconds.
pub fn parse_finish_time(s: &str) -> Option<i64> {
    let digits: String = s
        .trim()
        .chars()
        .take_while(|c| !c.is_ascii_alphabetic())
        .filter(char::is_ascii_digit)
        .collect();
    if digits.len() != 14 {
        return None;
    }
    let n = |range: std::ops::Range<usize>| digits.get(range).and_then(|d| d.parse::<i64>().ok());
    let (y, mo, d, h, mi, se) = (
        n(0..4)?,
        n(4..6)?,
        n(6..8)?,
        n(8..10)?,
        n(10..12)?,
        n(12..14)?,
    );
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || se > 60 {
        return None;
    }
    Some(days_from_civil(y, mo, d) * 86_400 + h * 3600 + mi * 60 + se - 8 * 3600)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (m + if m > 2 { -3 } else { 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    #[rstest]
    #[case("20230323012153")]
    #[case("2023-03-23 01:21:53")]
    #[case("2023-03-23 01:21:53 CST")]
    fn both_formats_give_the_same_instant(#[case] s: &str) {
        // 2023-03-22T17:21:53Z
        assert_eq!(parse_finish_time(s), Some(1_679_505_713));
    }

    #[rstest]
    #[case("")]
    #[case("2023-13-01 00:00:00")]
    #[case("yesterday")]
    fn nonsense_is_refused(#[case] s: &str) {
        assert_eq!(parse_finish_time(s), None);
    }
}
