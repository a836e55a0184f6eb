//! keepalived's timing around check attempts, without I/O: what an attempt's
//! result changes and how long to wait before the next attempt.

use std::time::Duration;

use super::Status;
use crate::conf::Checker;

/// The result of one attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// It worked.
    Up,
    /// It worked and sets the real server's weight (`misc_dynamic`).
    UpWeight(u32),
    /// It failed.
    Down,
}

/// One checker's state between attempts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Retry {
    retry: u32,
    delay_loop: Duration,
    delay_before_retry: Duration,
    up: bool,
    failures: u32,
    weight: Option<u32>,
}

impl Retry {
    /// The state of `checker` before its first attempt: UP, or DOWN when
    /// `up` is false (`alpha`, or a checker found DOWN before a reload).
    pub fn new(checker: &Checker, up: bool) -> Retry {
        Retry {
            retry: checker.retry,
            delay_loop: checker.delay_loop,
            delay_before_retry: checker.delay_before_retry,
            up,
            failures: 0,
            weight: None,
        }
    }

    /// Whether the checker is UP.
    pub fn is_up(&self) -> bool {
        self.up
    }

    /// Takes an attempt's outcome: the changes to report (none, `Up`,
    /// `Down`, `Weight`, or `Up` then `Weight`) and the delay before the
    /// next attempt (`delay_before_retry` while retries are left after a
    /// failure, else `delay_loop`). Failures count across rounds only
    /// within one series of retries: after `retry + 1` failures in a row
    /// the checker is DOWN and the count starts again.
    pub fn on_outcome(&mut self, o: Outcome) -> (Vec<Status>, Duration) {
        let mut changes = Vec::new();
        match o {
            Outcome::Down => {
                if self.failures < self.retry {
                    self.failures += 1;
                    return (changes, self.delay_before_retry);
                }
                self.failures = 0;
                if self.up {
                    self.up = false;
                    changes.push(Status::Down);
                }
            }
            Outcome::Up | Outcome::UpWeight(_) => {
                self.failures = 0;
                if !self.up {
                    self.up = true;
                    changes.push(Status::Up);
                }
                if let Outcome::UpWeight(w) = o {
                    if self.weight != Some(w) {
                        self.weight = Some(w);
                        changes.push(Status::Weight(w));
                    }
                }
            }
        }
        (changes, self.delay_loop)
    }
}
