//! A budget of log lines per window, so that a flood of failed
//! authentications cannot fill a disk: the first [`LINES_PER_WINDOW`]
//! failures of each [`WINDOW`] are logged one by one, the rest counted and
//! reported in one line when the next window opens.

use std::sync::Mutex;
use std::time::{Duration, Instant};

pub(crate) const WINDOW: Duration = Duration::from_secs(10);
pub(crate) const LINES_PER_WINDOW: u32 = 20;

/// What to do with one more line.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Log it; `suppressed` lines were dropped in the window before.
    Log {
        suppressed: u64,
    },
    Drop,
}

struct Window {
    opened: Instant,
    logged: u32,
    dropped: u64,
}

pub(crate) struct LogBudget {
    window: Mutex<Option<Window>>,
}

impl Default for LogBudget {
    fn default() -> Self {
        LogBudget { window: Mutex::new(None) }
    }
}

impl LogBudget {
    pub(crate) fn take(&self) -> Verdict {
        self.take_at(Instant::now())
    }

    fn take_at(&self, now: Instant) -> Verdict {
        let mut window = self.window.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let mut suppressed = 0;
        match &mut *window {
            Some(w) if now.saturating_duration_since(w.opened) < WINDOW => {
                if w.logged >= LINES_PER_WINDOW {
                    w.dropped += 1;
                    return Verdict::Drop;
                }
                w.logged += 1;
            }
            previous => {
                suppressed = previous.as_ref().map_or(0, |w| w.dropped);
                *previous = Some(Window { opened: now, logged: 1, dropped: 0 });
            }
        }
        Verdict::Log { suppressed }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_window_logs_its_budget_and_the_next_reports_the_rest() {
        let budget = LogBudget::default();
        let start = Instant::now();
        let verdicts: Vec<_> = (0..1000).map(|_| budget.take_at(start)).collect();
        assert_eq!(verdicts.iter().filter(|v| **v != Verdict::Drop).count(), LINES_PER_WINDOW as usize);
        assert_eq!(
            budget.take_at(start + WINDOW),
            Verdict::Log { suppressed: 1000 - LINES_PER_WINDOW as u64 }
        );
        assert_eq!(budget.take_at(start + WINDOW * 3), Verdict::Log { suppressed: 0 });
    }
}
