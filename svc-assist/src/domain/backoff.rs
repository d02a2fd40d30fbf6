//! When a failed Slack send is tried again: exponential backoff with jitter (backon's), for at
//! most `attempts` tries and within `window` of the first, then the delivery fails.

use std::time::Duration;

use backon::{BackoffBuilder as _, ExponentialBuilder};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetrySchedule {
    /// Delay after the first failure.
    pub min_delay: Duration,
    /// Largest delay between two tries.
    pub max_delay: Duration,
    /// Most tries in all.
    pub attempts: u32,
    /// No try starts later than this after the delivery was created.
    pub window: Duration,
}

impl RetrySchedule {
    /// The delay before try `attempts_made + 1`, or `None` when the delivery should give up:
    /// tries exhausted, or the next one would start after the window (`elapsed` since creation).
    pub fn next_delay(&self, attempts_made: u32, elapsed: Duration) -> Option<Duration> {
        if attempts_made >= self.attempts {
            return None;
        }
        let mut backoff = ExponentialBuilder::default()
            .with_min_delay(self.min_delay)
            .with_max_delay(self.max_delay)
            .with_factor(2.0)
            .with_jitter()
            .with_max_times(self.attempts as usize)
            .build();
        let delay = backoff.nth(attempts_made.saturating_sub(1) as usize)?;
        (elapsed + delay <= self.window).then_some(delay)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_stay_bounded_and_end() {
        let schedule = RetrySchedule {
            min_delay: Duration::from_secs(10),
            max_delay: Duration::from_secs(600),
            attempts: 8,
            window: Duration::from_secs(1800),
        };
        let first = schedule.next_delay(1, Duration::ZERO);
        assert!(
            first.is_some_and(|d| d >= Duration::from_secs(10) && d <= Duration::from_secs(20))
        );
        let later = schedule.next_delay(5, Duration::from_secs(60));
        assert!(
            later.is_some_and(|d| d >= Duration::from_secs(160) && d <= Duration::from_secs(1200))
        );
        assert_eq!(schedule.next_delay(8, Duration::from_secs(60)), None);
        assert_eq!(schedule.next_delay(2, Duration::from_secs(1799)), None);
    }
}
