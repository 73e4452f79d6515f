//! Callback retry schedules, as data.

use std::fmt;
use std::time::Duration;

/// The gaps between consecutive delivery attempts. The first attempt is immediate; after
/// the n-th failure the next attempt waits `gaps[n-1]`; when the gaps run out the delivery
/// is exhausted. So a schedule of 9 gaps means 10 attempts.
#[derive(Clone, PartialEq, Eq)]
pub struct RetrySchedule {
    gaps: Vec<Duration>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid retry schedule {0:?}: expected durations like \"15s,1m,5m,1h\"")]
pub struct InvalidSchedule(pub String);

impl Default for RetrySchedule {
    /// docs/envelope.md, Callbacks: 15s, 1m, 5m, 15m, 1h, 3h, 6h, 12h, 24h — 10 attempts over 46 h 21 m.
    fn default() -> Self {
        let m = 60;
        let h = 3600;
        Self::new(
            [15, m, 5 * m, 15 * m, h, 3 * h, 6 * h, 12 * h, 24 * h]
                .map(Duration::from_secs)
                .to_vec(),
        )
    }
}

impl RetrySchedule {
    pub fn new(gaps: Vec<Duration>) -> Self {
        Self { gaps }
    }

    /// Parses `"15s,1m,5m"` (units `ms`, `s`, `m`, `h`, `d`). An empty string means a
    /// single attempt with no retries.
    pub fn parse(s: &str) -> Result<Self, InvalidSchedule> {
        let bad = || InvalidSchedule(s.to_owned());
        if s.trim().is_empty() {
            return Ok(Self::new(Vec::new()));
        }
        s.split(',')
            .map(|part| parse_duration(part.trim()).ok_or_else(bad))
            .collect::<Result<_, _>>()
            .map(Self::new)
    }

    pub fn max_attempts(&self) -> u32 {
        u32::try_from(self.gaps.len())
            .unwrap_or(u32::MAX)
            .saturating_add(1)
    }

    /// How long to wait after `attempts_made` failed attempts, or `None` when there are no
    /// retries left.
    pub fn delay_after(&self, attempts_made: u32) -> Option<Duration> {
        let index = usize::try_from(attempts_made.checked_sub(1)?).ok()?;
        self.gaps.get(index).copied()
    }

    pub fn gaps(&self) -> &[Duration] {
        &self.gaps
    }
}

fn parse_duration(s: &str) -> Option<Duration> {
    let split = s.find(|c: char| !c.is_ascii_digit())?;
    let (n, unit) = s.split_at(split);
    let n: u64 = n.parse().ok()?;
    let d = match unit {
        "ms" => Duration::from_millis(n),
        "s" => Duration::from_secs(n),
        "m" => Duration::from_secs(n.checked_mul(60)?),
        "h" => Duration::from_secs(n.checked_mul(3600)?),
        "d" => Duration::from_secs(n.checked_mul(86_400)?),
        _ => return None,
    };
    Some(d)
}

fn format_duration(d: Duration) -> String {
    let s = d.as_secs();
    if d.subsec_millis() != 0 {
        format!("{}ms", d.as_millis())
    } else if s.is_multiple_of(86_400) && s > 0 {
        format!("{}d", s / 86_400)
    } else if s.is_multiple_of(3600) && s > 0 {
        format!("{}h", s / 3600)
    } else if s.is_multiple_of(60) && s > 0 {
        format!("{}m", s / 60)
    } else {
        format!("{s}s")
    }
}

impl fmt::Display for RetrySchedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self.gaps.iter().copied().map(format_duration).collect();
        f.write_str(&parts.join(","))
    }
}

impl fmt::Debug for RetrySchedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RetrySchedule({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_schedule_is_ten_attempts_over_46_hours() {
        let s = RetrySchedule::default();
        assert_eq!(s.max_attempts(), 10);
        let total: Duration = s.gaps().iter().sum();
        assert_eq!(
            total,
            Duration::from_secs(
                15 + 60 + 300 + 900 + 3600 + 3 * 3600 + 6 * 3600 + 12 * 3600 + 24 * 3600
            )
        );
        // Often rounded to "about 47 h"; exactly it is 46 h 21 m 15 s.
        assert_eq!(total.as_secs(), 166_875);
        assert_eq!(s.to_string(), "15s,1m,5m,15m,1h,3h,6h,12h,1d");
    }

    #[test]
    fn delay_after_walks_the_gaps_then_stops() {
        let s = RetrySchedule::parse("15s,1m").unwrap();
        assert_eq!(s.delay_after(0), None);
        assert_eq!(s.delay_after(1), Some(Duration::from_secs(15)));
        assert_eq!(s.delay_after(2), Some(Duration::from_secs(60)));
        assert_eq!(s.delay_after(3), None);
    }

    #[test]
    fn schedules_parse_and_print_symmetrically() {
        let s = RetrySchedule::parse("500ms, 2s,3m,1h,2d").unwrap();
        assert_eq!(RetrySchedule::parse(&s.to_string()).unwrap(), s);
        assert!(RetrySchedule::parse("5x").is_err());
        assert!(RetrySchedule::parse("s").is_err());
    }
}
