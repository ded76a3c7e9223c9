//! The rules the types keep — one lease out per job slot, given back; an owed `on_close`
//! consumed exactly once — each tried the way it could be broken.

use super::*;
use crate::dispatch::{Lease, Output};

fn conn() -> ConnId {
    ConnId::new(0, 7, 1)
}

fn reply(lease: Lease, after: After) -> Reply {
    Reply {
        lease,
        output: Output::default(),
        after,
        session: None,
    }
}

#[test]
fn a_slot_lends_one_lease_and_takes_the_next_job_only_once_it_is_back() {
    let mut slot = JobSlot::default();
    let lease = slot.lend(conn(), 10);
    assert_eq!(slot.bytes(), 10, "the job out is charged");
    assert!(matches!(slot, JobSlot::InFlight(10)));
    slot.give_back(lease);
    assert!(matches!(slot, JobSlot::Idle));
    let again = slot.lend(conn(), 3);
    slot.give_back(again);
}

#[test]
#[should_panic(expected = "the slot is not idle")]
fn a_second_lease_while_one_is_out_is_refused() {
    let mut slot = JobSlot::default();
    let first = slot.lend(conn(), 1);
    std::mem::forget(first);
    let _second = slot.lend(conn(), 1);
}

#[test]
#[should_panic(expected = "a job's lease was dropped")]
fn a_lease_dropped_instead_of_given_back_is_caught() {
    let mut slot = JobSlot::default();
    drop(slot.lend(conn(), 1));
}

#[test]
#[should_panic(expected = "an owed on_close was dropped")]
fn an_owed_on_close_dropped_unconsumed_is_caught() {
    drop(OwedClose::new(OnClose::Call(CloseInfo::abnormal())));
}

#[test]
fn owing_nothing_may_be_dropped_and_each_debt_is_paid_once() {
    drop(OwedClose::new(OnClose::Nothing));
    let call = OwedClose::new(OnClose::Call(CloseInfo::abnormal()));
    assert!(matches!(call.now(conn(), None), Some(Job::Close { .. })));
    // An upgrade that was running when the connection went: owed only if it accepted.
    let mut slot = JobSlot::default();
    let mut accepted = reply(slot.lend(conn(), 0), After::Upgraded { deflate: None });
    let owed = OwedClose::new(OnClose::IfUpgradeAccepted);
    assert!(matches!(
        owed.settle(&mut accepted),
        Some(Job::Close { .. })
    ));
    accepted.lease.end();
    let mut slot = JobSlot::default();
    let after = After::CloseHttp { bad_request: false };
    let mut rejected = reply(slot.lend(conn(), 0), after);
    let owed = OwedClose::new(OnClose::IfUpgradeAccepted);
    assert!(owed.settle(&mut rejected).is_none());
    rejected.lease.end();
    OwedClose::new(OnClose::Call(CloseInfo::abnormal())).skip();
}
