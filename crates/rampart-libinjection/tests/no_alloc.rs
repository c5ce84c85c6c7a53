//! `detect_sqli` runs on every argument of every request: it must not touch
//! the heap. A counting global allocator (this test binary only) checks it.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

struct Counting;

static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards to the system allocator unchanged, only counting calls.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::SeqCst);
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
    let before = ALLOCATIONS.load(Ordering::SeqCst);
    for input in inputs {
        flagged += usize::from(rampart_libinjection::detect_sqli(input).is_some());
    }
    let after = ALLOCATIONS.load(Ordering::SeqCst);
    assert_eq!(after - before, 0, "detect_sqli allocated");
    assert!(
        flagged >= 4,
        "the inputs should exercise the detection paths"
    );

    // The counter does see allocations: the port's own entry point makes
    // some. (Same test, so no other test thread allocates in between.)
    let before = ALLOCATIONS.load(Ordering::SeqCst);
    assert!(libinjectionrs::detect_sqli(inputs[1]).is_injection());
    assert!(
        ALLOCATIONS.load(Ordering::SeqCst) > before,
        "counter is blind"
    );
}
