use std::time::Duration;

use super::vs;
use crate::check::retry::{Outcome, Retry};
use crate::check::Status;
use crate::conf::Checker;

fn checker(body: &str) -> Checker {
    let c = vs(&format!(
        " delay_loop 3\n real_server 10.0.0.1 80 {{\n {body}\n }}"
    ));
    c.virtual_servers[0].real_servers[0].checkers[0].clone()
}

const LOOP: Duration = Duration::from_secs(3);
const RETRY: Duration = Duration::from_millis(500);

#[test]
fn retries_before_down_then_one_success_is_up() {
    let c = checker("TCP_CHECK {\n nb_sock_retry 2\n delay_before_retry 0.5\n }");
    let mut r = Retry::new(&c, true);
    assert_eq!(r.on_outcome(Outcome::Up), (vec![], LOOP));
    // Two retries, delay_before_retry apart, then DOWN.
    assert_eq!(r.on_outcome(Outcome::Down), (vec![], RETRY));
    assert_eq!(r.on_outcome(Outcome::Down), (vec![], RETRY));
    assert_eq!(r.on_outcome(Outcome::Down), (vec![Status::Down], LOOP));
    assert!(!r.is_up());
    // Still down: retried again, no new event.
    assert_eq!(r.on_outcome(Outcome::Down), (vec![], RETRY));
    assert_eq!(r.on_outcome(Outcome::Down), (vec![], RETRY));
    assert_eq!(r.on_outcome(Outcome::Down), (vec![], LOOP));
    // One success: UP.
    assert_eq!(r.on_outcome(Outcome::Up), (vec![Status::Up], LOOP));
}

#[test]
fn a_success_between_failures_starts_the_count_again() {
    let c = checker("TCP_CHECK {\n retry 1\n delay_before_retry 0.5\n }");
    let mut r = Retry::new(&c, true);
    assert_eq!(r.on_outcome(Outcome::Down), (vec![], RETRY));
    assert_eq!(r.on_outcome(Outcome::Up), (vec![], LOOP));
    assert_eq!(r.on_outcome(Outcome::Down), (vec![], RETRY));
    assert_eq!(r.on_outcome(Outcome::Down), (vec![Status::Down], LOOP));
}

#[test]
fn misc_check_defaults_to_no_retry_and_alpha_starts_down() {
    let c = checker("MISC_CHECK {\n misc_path /bin/true\n }");
    assert_eq!(c.retry, 0);
    let mut r = Retry::new(&c, true);
    assert_eq!(r.on_outcome(Outcome::Down), (vec![Status::Down], LOOP));
    let mut alpha = Retry::new(&c, false);
    assert_eq!(alpha.on_outcome(Outcome::Down), (vec![], LOOP));
    assert_eq!(alpha.on_outcome(Outcome::Up), (vec![Status::Up], LOOP));
}

#[test]
fn dynamic_weight_is_reported_when_it_changes() {
    let c = checker("MISC_CHECK {\n misc_path /bin/true\n misc_dynamic\n }");
    let mut r = Retry::new(&c, false);
    assert_eq!(
        r.on_outcome(Outcome::UpWeight(10)).0,
        vec![Status::Up, Status::Weight(10)]
    );
    assert_eq!(r.on_outcome(Outcome::UpWeight(10)).0, vec![]);
    assert_eq!(r.on_outcome(Outcome::Up).0, vec![]);
    assert_eq!(
        r.on_outcome(Outcome::UpWeight(3)).0,
        vec![Status::Weight(3)]
    );
}
