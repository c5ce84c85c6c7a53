//! Header maps kept for reuse, per thread.
//!
//! Every proxied HTTP/1 exchange builds two header maps (the request's and
//! the upstream response's) and drops both once their heads are written.
//! A map is two allocations (its index table and its entries) plus the
//! table's initialisation; a cleared map keeps both, so the next head
//! reuses them. hyper's HTTP/1 server keeps its last response map for the
//! same reason. Only small maps are kept, and only a few per thread, so a
//! huge head cannot pin memory.

use std::cell::RefCell;

use http::HeaderMap;

/// Maps kept per thread: enough for the exchanges a worker has in flight
/// at one moment of its loop, not for every connection.
const KEPT_PER_THREAD: usize = 32;
/// Larger maps (a head with many fields) are freed rather than kept.
const MAX_KEPT_CAPACITY: usize = 64;

thread_local! {
    static SPARE: RefCell<Vec<HeaderMap>> = const { RefCell::new(Vec::new()) };
}

/// A per-thread list of things kept for reuse.
pub(crate) type Spares<T> = std::thread::LocalKey<RefCell<Vec<T>>>;

/// The last thing kept in `spares`, if any.
pub(crate) fn take_spare<T>(spares: &'static Spares<T>) -> Option<T> {
    spares.with(|s| s.try_borrow_mut().ok().and_then(|mut s| s.pop()))
}

/// Keeps `item` in `spares` unless it holds `most` already (then it is
/// dropped).
pub(crate) fn keep_spare<T>(spares: &'static Spares<T>, item: T, most: usize) {
    spares.with(|s| {
        if let Ok(mut s) = s.try_borrow_mut() {
            if s.len() < most {
                s.push(item);
            }
        }
    });
}

/// An empty map with room for at least `fields` fields, reused when the
/// thread has one.
pub fn take(fields: usize) -> HeaderMap {
    match take_spare(&SPARE) {
        Some(mut map) => {
            // Empty, so this only grows a map kept smaller than needed.
            map.reserve(fields);
            map
        }
        None => HeaderMap::with_capacity(fields),
    }
}

/// Gives a map that is no longer needed back for reuse (or frees it).
pub fn give_back(mut map: HeaderMap) {
    // A map that never allocated (a response whose fields stayed raw) has
    // nothing to reuse, and kept it would crowd out one that has.
    if map.capacity() == 0 || map.capacity() > MAX_KEPT_CAPACITY {
        return;
    }
    // Dropping the fields (and their shared bytes) happens here either way.
    map.clear();
    keep_spare(&SPARE, map, KEPT_PER_THREAD);
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    /// Empties this thread's list (with one test thread, earlier tests on
    /// it may have left maps).
    fn forget_spares() {
        SPARE.with(|s| s.borrow_mut().clear());
    }

    #[test]
    fn a_map_given_back_comes_back_empty_with_its_room() {
        forget_spares();
        let mut map = take(8);
        let room = map.capacity();
        map.insert("x-secret", HeaderValue::from_static("value"));
        map.append("x-secret", HeaderValue::from_static("second"));
        give_back(map);
        let again = take(4);
        assert!(again.is_empty(), "{again:?}");
        assert_eq!(again.capacity(), room);
        assert!(again.get("x-secret").is_none());
    }

    #[test]
    fn large_and_empty_maps_are_not_kept_and_small_ones_are_bounded() {
        forget_spares();
        let big = take(MAX_KEPT_CAPACITY * 2);
        assert!(big.capacity() > MAX_KEPT_CAPACITY);
        give_back(big);
        give_back(HeaderMap::new());
        assert_eq!(SPARE.with(|s| s.borrow().len()), 0);
        for _ in 0..KEPT_PER_THREAD + 5 {
            give_back(HeaderMap::with_capacity(4));
        }
        assert_eq!(SPARE.with(|s| s.borrow().len()), KEPT_PER_THREAD);
        // A kept map smaller than asked for grows to fit.
        let map = take(MAX_KEPT_CAPACITY);
        assert!(map.capacity() >= MAX_KEPT_CAPACITY);
    }
}
