//! Time: an injectable clock, and OTT Pay's Beijing-time timestamps.
//!
//! Every OTT Pay timestamp on the wire is Beijing time (UTC+8, no daylight saving),
//! formatted `yyyyMMddHHmmss`. Internally we keep UTC epoch milliseconds.

use chrono::{DateTime, FixedOffset, NaiveDateTime, Offset, TimeZone, Utc};
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

/// An instant, as UTC epoch milliseconds.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(i64);

const BEIJING_OFFSET_SECS: i32 = 8 * 3600;

fn beijing() -> FixedOffset {
    // +8 h is within FixedOffset's ±24 h, so the fallback is never taken.
    FixedOffset::east_opt(BEIJING_OFFSET_SECS).unwrap_or(Utc.fix())
}

impl Timestamp {
    pub const fn from_epoch_millis(ms: i64) -> Self {
        Self(ms)
    }

    pub const fn epoch_millis(self) -> i64 {
        self.0
    }

    pub fn epoch_seconds(self) -> i64 {
        self.0.div_euclid(1000)
    }

    pub fn plus(self, d: Duration) -> Self {
        Self(
            self.0
                .saturating_add(i64::try_from(d.as_millis()).unwrap_or(i64::MAX)),
        )
    }

    pub fn minus(self, d: Duration) -> Self {
        Self(
            self.0
                .saturating_sub(i64::try_from(d.as_millis()).unwrap_or(i64::MAX)),
        )
    }

    /// Time from `self` until `later`, zero if `later` is not after `self`.
    pub fn until(self, later: Timestamp) -> Duration {
        Duration::from_millis(u64::try_from(later.0.saturating_sub(self.0)).unwrap_or(0))
    }

    fn to_utc(self) -> DateTime<Utc> {
        DateTime::from_timestamp_millis(self.0).unwrap_or_default()
    }

    /// `yyyyMMddHHmmss` in Beijing time, the format of `expire_time` and `finish_time`.
    pub fn beijing_compact(self) -> String {
        self.to_utc()
            .with_timezone(&beijing())
            .format("%Y%m%d%H%M%S")
            .to_string()
    }

    /// `yyyy-MM-dd HH:mm:ss` in Beijing time, for display.
    pub fn beijing_display(self) -> String {
        self.to_utc()
            .with_timezone(&beijing())
            .format("%Y-%m-%d %H:%M:%S")
            .to_string()
    }

    /// `Mar 13, 2023 10:52:49 AM` in Beijing time: the Java-style text OTT Pay's REST API
    /// shows in `tradeTime`.
    pub fn beijing_java(self) -> String {
        self.to_utc()
            .with_timezone(&beijing())
            .format("%b %-d, %Y %-I:%M:%S %p")
            .to_string()
    }

    /// RFC 3339 in UTC, for logs and JSON meant for people.
    pub fn rfc3339(self) -> String {
        self.to_utc()
            .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
    }

    /// `yyyy-MM-dd HH:mm:ss` in UTC: how the merchant center and its CSV show times.
    pub fn utc_display(self) -> String {
        self.to_utc().format("%Y-%m-%d %H:%M:%S").to_string()
    }

    /// `yyyy-MM-dd` in UTC.
    pub fn utc_date(self) -> String {
        self.to_utc().format("%Y-%m-%d").to_string()
    }

    /// The start (00:00 UTC) of the day `yyyy-MM-dd`.
    pub fn parse_utc_date(s: &str) -> Option<Self> {
        let date = chrono::NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d").ok()?;
        Some(Self(
            date.and_hms_opt(0, 0, 0)?.and_utc().timestamp_millis(),
        ))
    }

    /// The start (00:00 UTC) of this instant's day.
    pub fn utc_day_start(self) -> Self {
        Self(self.0 - self.0.rem_euclid(86_400_000))
    }

    /// Parses a Beijing-time wall clock in either format OTT Pay is seen to use:
    /// `yyyyMMddHHmmss` (documented) or `yyyy-MM-dd HH:mm:ss` (seen in examples).
    pub fn parse_beijing(s: &str) -> Option<Self> {
        let s = s.trim();
        let naive = NaiveDateTime::parse_from_str(s, "%Y%m%d%H%M%S")
            .or_else(|_| NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S"))
            .ok()?;
        let local = beijing().from_local_datetime(&naive).single()?;
        Some(Self(local.timestamp_millis()))
    }
}

impl fmt::Debug for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Timestamp({})", self.rfc3339())
    }
}

/// Where "now" comes from. Production uses [`SystemClock`]; tests use [`ManualClock`] so
/// that expiry and retry timing are tested without sleeping.
pub trait Clock: Send + Sync + fmt::Debug + 'static {
    fn now(&self) -> Timestamp;
}

#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        Timestamp(Utc::now().timestamp_millis())
    }
}

/// A clock that moves only when told to. Clones share the same time.
#[derive(Debug, Clone)]
pub struct ManualClock(Arc<AtomicI64>);

impl ManualClock {
    pub fn new(start: Timestamp) -> Self {
        Self(Arc::new(AtomicI64::new(start.0)))
    }

    pub fn advance(&self, d: Duration) {
        self.0.fetch_add(
            i64::try_from(d.as_millis()).unwrap_or(i64::MAX),
            Ordering::SeqCst,
        );
    }

    pub fn set(&self, t: Timestamp) {
        self.0.store(t.0, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        Timestamp(self.0.load(Ordering::SeqCst))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    #[test]
    fn utc_days_read_and_print_alike() {
        let t = Timestamp::from_epoch_millis(1_700_000_000_123);
        assert_eq!(t.utc_display(), "2023-11-14 22:13:20");
        assert_eq!(t.utc_date(), "2023-11-14");
        let day = Timestamp::parse_utc_date("2023-11-14").unwrap();
        assert_eq!(day, t.utc_day_start());
        assert_eq!(day.utc_display(), "2023-11-14 00:00:00");
        for bad in ["", "2023-13-01", "14/11/2023", "2023-11-14T00:00"] {
            assert_eq!(Timestamp::parse_utc_date(bad), None, "{bad}");
        }
    }

    #[test]
    fn beijing_is_eight_hours_ahead_of_utc_all_year() {
        // 2023-03-22T17:21:53Z is 2023-03-23 01:21:53 in Beijing (the spec's example time).
        let t = Timestamp::from_epoch_millis(1_679_505_713_000);
        assert_eq!(t.beijing_compact(), "20230323012153");
        assert_eq!(t.beijing_display(), "2023-03-23 01:21:53");
        assert_eq!(t.beijing_java(), "Mar 23, 2023 1:21:53 AM");
        // Northern-hemisphere summer: still +8 (China has no DST).
        let summer = Timestamp::from_epoch_millis(1_690_000_000_000);
        assert_eq!(summer.beijing_compact(), "20230722122640");
    }

    #[rstest]
    #[case("20230323012153")]
    #[case("2023-03-23 01:21:53")]
    fn both_beijing_formats_parse_to_the_same_instant(#[case] s: &str) {
        assert_eq!(
            Timestamp::parse_beijing(s),
            Some(Timestamp::from_epoch_millis(1_679_505_713_000))
        );
    }

    #[test]
    fn manual_clock_moves_only_when_told() {
        let c = ManualClock::new(Timestamp::from_epoch_millis(0));
        assert_eq!(c.now().epoch_millis(), 0);
        c.advance(Duration::from_secs(15));
        assert_eq!(c.clone().now().epoch_millis(), 15_000);
    }
}
