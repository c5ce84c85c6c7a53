//! `detect_sqli` runs on every argument of every request: it must not touch
//! the heap. A counting global allocator (this test binary only) checks it.
//!
//! Allocations are counted per thread: the test harness's own threads
//! allocate at moments of their choosing (a global count once saw four
//! allocations that were not the detector's, in one CI run of many).

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

struct Counting;

thread_local! {
    /// Allocations made by this thread (const, no destructor: reading it
    /// from the allocator never allocates).
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
}

/// Allocations made so far by the calling thread.
fn allocations() -> usize {
    ALLOCATIONS.with(Cell::get)
}

// SAFETY: forwards to the system allocator unchanged, only counting calls.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // A thread being torn down has no counter left: not counted.
        let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

#[test]
fn detect_sqli_does_not_allocate() {
    let inputs: [&[u8]; 6] = [
        b"Please ship the blue jacket to my office at 42 Elm Street. Thanks, Ann",
        b"1' UNION SELECT username, password FROM users WHERE '1'='1' -- comment",
        b"-1 lock in share mode union select table_name from information_schema.tables",
        b"1 into outfile 'asd'",
        b"\"a\" or 1=1#\n",
        b"x\xff\xfe caf\xe9 ` {``.``.id} sp_password",
    ];
    let mut flagged = 0;
    let before = allocations();
    for input in inputs {
        flagged += usize::from(rampart_libinjection::detect_sqli(input).is_some());
    }
    let after = allocations();
    assert_eq!(after - before, 0, "detect_sqli allocated");
    assert!(
        flagged >= 4,
        "the inputs should exercise the detection paths"
    );

    // The counter does see allocations: the port's own entry point makes
    // some, on this thread.
    let before = allocations();
    assert!(libinjectionrs::detect_sqli(inputs[1]).is_injection());
    assert!(allocations() > before, "counter is blind");
}
