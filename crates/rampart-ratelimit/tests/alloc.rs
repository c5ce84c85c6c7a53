//! Heap allocations per local check, counted by a global allocator.
//!
//! The speed goal (≤ 200 ns per check) rests on the hot path touching no
//! allocator: a known key is found by borrowed bytes, up to four limits are
//! handled on the stack, and short keys are stored inline. The count is
//! per thread, so the test harness's own threads do not disturb it.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::Arc;
use std::time::Duration;

use rampart_ratelimit::{CheckItem, Limit, LocalConfig, LocalStore, ManualClock, Outcome};

struct Counting;

thread_local! {
    static ALLOCS: Cell<usize> = const { Cell::new(0) };
}

// SAFETY: forwards every call to the system allocator unchanged; the only
// addition is a thread-local counter that never allocates.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCS.with(|c| c.set(c.get() + 1));
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCS.with(|c| c.set(c.get() + 1));
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocations<R>(f: impl FnOnce() -> R) -> (usize, R) {
    let before = ALLOCS.with(Cell::get);
    let r = f();
    (ALLOCS.with(Cell::get) - before, r)
}

fn item(key: &[u8], limit: Limit) -> CheckItem {
    CheckItem {
        key: key.into(),
        limit,
        cost: 1,
    }
}

fn store() -> LocalStore {
    LocalStore::new(LocalConfig::default(), Arc::new(ManualClock::new(1 << 30)))
}

#[test]
fn known_key_check_allocates_only_the_returned_outcomes() {
    let s = store();
    let l = Limit::per(1000, Duration::from_secs(1)).unwrap();
    let items = [item(b"S\x03apiI\x04\x0a\x00\x00\x01", l)];
    s.check_now(&items);
    let (n, checked) = allocations(|| s.check_now(&items));
    assert!(checked.admitted);
    // The one allocation is `Checked::outcomes`, owned by the caller.
    assert_eq!(n, 1);
}

#[test]
fn check_into_a_reused_buffer_allocates_nothing() {
    let s = store();
    let l = Limit::per(1000, Duration::from_secs(1)).unwrap();
    let one = [item(b"S\x03apiI\x04\x0a\x00\x00\x01", l)];
    let four: Vec<CheckItem> = (0u8..4).map(|i| item(&[b'k', i], l)).collect();
    let mut out: Vec<Outcome> = Vec::with_capacity(4);
    assert!(s.check_now_into(&one, &mut out));
    out.clear();
    let (n, _) = allocations(|| s.check_now_into(&one, &mut out));
    assert_eq!(n, 0, "known key");
    out.clear();
    s.check_now_into(&four, &mut out);
    out.clear();
    let (n, admitted) = allocations(|| s.check_now_into(&four, &mut out));
    assert!(admitted);
    assert_eq!(out.len(), 4);
    assert_eq!(n, 0, "four limits");
}

#[test]
fn known_long_key_is_found_without_allocating() {
    let s = store();
    let l = Limit::per(1000, Duration::from_secs(1)).unwrap();
    let long = [item(&[7u8; 64], l)];
    let mut out = Vec::with_capacity(1);
    s.check_now_into(&long, &mut out);
    out.clear();
    let (n, _) = allocations(|| s.check_now_into(&long, &mut out));
    assert_eq!(n, 0);
}
