//! `@within` answers remembered per worker thread.
//!
//! CRS tests request data against lists held in TX (`@within
//! %{tx.restricted_headers_basic}` once per header name in 920450,
//! `%{tx.allowed_methods}` in 911100, `%{tx.allowed_http_versions}` in
//! 920430). Searching a ~100-byte list for `/host/` costs ~470
//! instructions (one `memchr` per candidate byte and its verification),
//! and the same names are looked for in the same lists on every request.
//!
//! The answer depends only on the list's bytes and the tested value's
//! bytes. A list is recognised by its allocation: the memo holds a clone
//! of the list's `Bytes` (an `Arc<[u8]>`, never written once made), so
//! while it is remembered its address cannot be reused for other bytes,
//! and the same address means the same bytes. CRS sets these lists from
//! `setvar` literals prepared at load, so every transaction shares the
//! same allocation and the answers carry over from one request to the
//! next. Values are compared in full. Nothing else is read, so a
//! remembered answer is the answer the search would give.

use std::cell::RefCell;
use std::sync::Arc;

use super::data::Bytes;
use super::ops::find;

/// Lists shorter than this are searched directly: cheaper than the memo.
/// (`memchr` on 20-30 bytes, `%{tx.allowed_methods}`, still costs ~470.)
pub(super) const MIN_LIST: usize = 8;
/// How many lists a thread remembers answers for (replaced in turn).
const LISTS: usize = 8;
/// How many values per list; a full list of answers starts again, so that
/// varied values (attacker-chosen header names) cost a search each, as
/// before, and bounded memory.
const VALUES: usize = 32;
/// Longer values are searched, not remembered.
const MAX_VALUE: usize = 64;

struct List {
    list: Bytes,
    answers: Vec<(Box<[u8]>, bool)>,
}

struct Memo {
    lists: Vec<List>,
    /// The list replaced next once `LISTS` are remembered.
    next: usize,
}

thread_local! {
    static MEMO: RefCell<Memo> = const {
        RefCell::new(Memo {
            lists: Vec::new(),
            next: 0,
        })
    };
}

/// Whether `value` occurs in `list` (`@within list` before negation),
/// remembered per thread.
pub(super) fn within(list: &Bytes, value: &[u8]) -> bool {
    MEMO.with(|memo| {
        let mut memo = memo.borrow_mut();
        let at = memo.lists.iter().position(|l| Arc::ptr_eq(&l.list, list));
        if let Some(at) = at {
            let answers = &memo.lists[at].answers;
            if let Some((_, found)) = answers.iter().find(|(v, _)| **v == *value) {
                return *found;
            }
        }
        let found = find(list, value).is_some();
        if value.len() > MAX_VALUE {
            return found;
        }
        let at = match at {
            Some(at) => at,
            None => {
                let fresh = List {
                    list: list.clone(),
                    answers: Vec::new(),
                };
                if memo.lists.len() < LISTS {
                    memo.lists.push(fresh);
                    memo.lists.len() - 1
                } else {
                    let at = memo.next;
                    memo.next = (at + 1) % LISTS;
                    memo.lists[at] = fresh;
                    at
                }
            }
        };
        let answers = &mut memo.lists[at].answers;
        if answers.len() >= VALUES {
            answers.clear();
        }
        answers.push((value.into(), found));
        found
    })
}

#[cfg(test)]
mod tests {
    use super::{within, Bytes, LISTS, VALUES};

    fn bytes(b: &[u8]) -> Bytes {
        Bytes::from(b)
    }

    #[test]
    fn remembered_answers_are_the_search_answers() {
        let list = bytes(b"/content-encoding/ /proxy/ /lock-token/ /content-range/ /if/");
        for _ in 0..3 {
            assert!(within(&list, b"/proxy/"));
            assert!(!within(&list, b"/host/"));
            assert!(within(&list, b"/if/"));
            assert!(!within(&list, b"/IF/"));
            assert!(within(&list, b""));
        }
        // Same bytes in another allocation, and other bytes: each its own.
        let same = bytes(&list[..]);
        assert!(within(&same, b"/proxy/"));
        let other = bytes(b"/host/ /accept/ /user-agent/ /connection/ /x-y/");
        assert!(within(&other, b"/host/"));
        assert!(!within(&other, b"/proxy/"));
        assert!(within(&list, b"/proxy/"));
        assert!(!within(&list, b"/host/"));
    }

    #[test]
    fn full_memos_start_again_and_stay_exact() {
        let lists: Vec<Bytes> = (0..LISTS + 3)
            .map(|i| {
                bytes(format!("/name-{i}/ /other-list-entry/ /and-one-more-entry/").as_bytes())
            })
            .collect();
        for round in 0..2 {
            for (i, list) in lists.iter().enumerate() {
                for v in 0..VALUES + 5 {
                    let value = format!("/name-{v}/");
                    assert_eq!(within(list, value.as_bytes()), v == i, "{round} {i} {v}");
                }
                let long = vec![b'a'; 100];
                assert!(!within(list, &long));
            }
        }
    }
}
