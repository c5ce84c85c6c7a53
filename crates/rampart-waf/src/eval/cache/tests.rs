//! Tests of the transformation cache and its presence records.

use super::{slot_of, TransformCache, RECORDED_LEN};
use crate::compile::prefilter::{slot_set, FilterBuilder, Prefilter};
use crate::eval::vars::Shared;

/// A filter with slot 0 for `evil` and slot 1 for `bad`.
fn filter() -> Prefilter {
    let mut builder = FilterBuilder::default();
    builder.add(0, vec![b"evil".to_vec()]);
    builder.add(0, vec![b"bad".to_vec()]);
    builder.finish(1).unwrap().0.unwrap()
}

fn slots(bits: Option<&[u64]>) -> Option<(bool, bool)> {
    bits.map(|b| (slot_set(b, 0), slot_set(b, 1)))
}

/// Bits are found again after a scan, whether they are kept in the
/// value's record (short values), in the map (long values, or a value
/// whose slot another value holds), and never for another value.
#[test]
fn scanned_bits_are_found_wherever_they_are_kept() {
    let filter = filter();
    let mut cache = TransformCache::new();
    let short = Shared::from(b"an evil value".to_vec());
    assert!(cache.bits(&short).is_none());
    cache.scan_bits(&short, &filter);
    assert_eq!(slots(cache.bits(&short)), Some((true, false)));
    assert!(
        cache.bits.is_empty(),
        "a short value's bits are in its record"
    );
    // Equal bytes in another allocation are another value.
    assert!(cache
        .bits(&Shared::from(b"an evil value".to_vec()))
        .is_none());

    let long = Shared::from([&b"bad"[..], &[b'x'; RECORDED_LEN]].concat());
    cache.scan_bits(&long, &filter);
    assert_eq!(slots(cache.bits(&long)), Some((false, true)));
    assert_eq!(cache.bits.len(), 1, "a long value's bits are in the map");

    // A short value whose slot `short` holds.
    let mut held = Vec::new();
    let rival = loop {
        let v = Shared::from(b"a bad one".to_vec());
        if slot_of(v.identity()) == slot_of(short.identity()) {
            break v;
        }
        held.push(v); // keeps the allocation from being reused
    };
    assert!(cache.bits(&rival).is_none());
    cache.scan_bits(&rival, &filter);
    assert_eq!(slots(cache.bits(&rival)), Some((false, true)));
    assert_eq!(slots(cache.bits(&short)), Some((true, false)));
    assert_eq!(cache.bits.len(), 2);

    cache.clear();
    assert!(cache.bits(&short).is_none() && cache.bits(&long).is_none());
    assert!(cache.bits(&rival).is_none());
}

/// A value whose presence slot another value holds reads and gets its
/// verdicts from the memo itself, found by its bytes: a slot collision
/// does not hide what the memo knows of it. No entry is made that way.
#[test]
fn a_value_without_a_slot_finds_its_verdicts_by_its_bytes() {
    let mut cache = TransformCache::new();
    cache.memo = Some(Box::new(crate::eval::memo::ValueMemo::new(64)));
    // An earlier transaction, where the value had a free slot.
    cache
        .known(&Shared::from(b"a rival".to_vec()))
        .expect("a free slot");
    cache.clear();
    let first = Shared::from(b"first".to_vec());
    cache.known(&first).expect("a free slot");
    // Values are 16-byte aligned: an odd length gives an odd slot, as
    // `first`'s.
    let mut held = Vec::new();
    let mut colliding = |bytes: &[u8]| loop {
        let v = Shared::from(bytes.to_vec());
        if slot_of(v.identity()) == slot_of(first.identity()) {
            break v;
        }
        held.push(v); // keeps the allocation from being reused
    };
    let rival = colliding(b"a rival");
    let stranger = colliding(b"a strangers");
    assert!(cache.known(&rival).is_none(), "the slot is taken");
    assert_eq!(
        cache.memo_rejected_by_bytes((&rival).into()),
        Some(&[0][..])
    );
    cache.memo_note_rejected_by_bytes((&rival).into(), 3);
    assert_eq!(
        cache.memo_rejected_by_bytes((&rival).into()),
        Some(&[1 << 3][..])
    );
    // Never recorded: nothing to read, and noting makes no entry.
    cache.memo_note_rejected_by_bytes((&stranger).into(), 3);
    assert_eq!(cache.memo_rejected_by_bytes((&stranger).into()), None);
    // The next transaction reads the same bytes through a free slot.
    cache.clear();
    let again = Shared::from(b"a rival".to_vec());
    let known = cache.known(&again).expect("a free slot");
    assert!(cache.memo_rejects(&known, 3));
    assert!(!cache.memo_rejects(&known, 2));
}

/// A record answers for its own value only, values of `RECORDED_LEN`
/// bytes or more get none, and `clear` frees every slot.
#[test]
fn records_hold_short_values_until_cleared() {
    let mut cache = TransformCache::new();
    let value = Shared::from(b"Ab".to_vec());
    let known = cache.known(&value).expect("a free slot");
    let has = |b: u8| known.present[usize::from(b >> 6)] & (1 << (b & 63)) != 0;
    assert!(has(b'A') && has(b'b') && !has(b'a'));
    assert_eq!(cache.presence(&value), Some(known.present));
    assert_eq!(cache.held.len(), 1, "found again, not recorded twice");
    let long = Shared::from(vec![b'a'; RECORDED_LEN]);
    assert!(cache.known(&long).is_none() && cache.held.len() == 1);
    // A value in another allocation whose slot `value` holds.
    let mut kept = Vec::new();
    let rival = loop {
        let v = Shared::from(b"Ab".to_vec());
        if slot_of(v.identity()) == slot_of(value.identity()) {
            break v;
        }
        kept.push(v);
    };
    assert!(cache.known(&rival).is_none(), "the slot is taken");
    cache.clear();
    assert!(cache.held.is_empty());
    assert!(cache.known(&rival).is_some(), "the slot is free again");
}

/// A borrowed value has the identity of the `Shared` it would become:
/// a record made through one is found through the other (and the
/// record keeps the allocation alive after the borrow ends); its bits
/// come from the record, else are scanned once and found again.
#[test]
fn borrowed_and_shared_values_are_the_same_value() {
    use super::ValueRef;
    use std::sync::Arc;
    let filter = filter();
    let mut cache = TransformCache::new();
    let bytes: crate::eval::data::Bytes = Arc::from(&b"an evil value"[..]);
    let name: Arc<str> = Arc::from("bad name");
    let known = cache.known(ValueRef::Bytes(&bytes)).expect("a free slot");
    let shared = Shared::Bytes(bytes.clone());
    assert_eq!(ValueRef::from(&shared).identity(), shared.identity());
    assert_eq!(cache.held.len(), 1);
    assert!(cache.known(&shared).is_some() && cache.held.len() == 1);
    // Not scanned yet: `raw_bits` scans, then the record has the bits.
    let bits = cache.raw_bits(ValueRef::Bytes(&bytes), Some(&known), &filter);
    assert_eq!(slots(Some(bits)), Some((true, false)));
    let known = cache.known(&shared).unwrap();
    assert!(cache.known_bits(&known).is_some(), "kept in the record");
    assert_eq!(slots(cache.bits(&shared)), Some((true, false)));
    // A key used as a value, without a record given.
    let text = Shared::Text(name.clone());
    let bits = cache.raw_bits(ValueRef::Text(&name), None, &filter);
    assert_eq!(slots(Some(bits)), Some((false, true)));
    assert_eq!(slots(cache.bits(&text)), Some((false, true)));
    drop((shared, text));
    // The cache's clones keep both allocations (and identities).
    assert_eq!(Arc::strong_count(&bytes), 2);
    assert_eq!(Arc::strong_count(&name), 2);
}

/// `union_has` says what `slot_set` says on the union: set and clear
/// bits, words past the union's end, unions of another generation.
#[test]
fn union_has_reads_the_slot_of_valid_unions() {
    let mut cache = TransformCache::new();
    assert_eq!(cache.union_has(3, 0, 1), None, "never built");
    cache.insert_union(3, &[0b100, 1 << 63]);
    for slot in [0, 2, 64, 127, 128, 700] {
        let (word, mask) = (slot as usize / 64, 1u64 << (slot % 64));
        let want = cache.union(3).map(|bits| slot_set(bits, slot));
        assert_eq!(cache.union_has(3, word, mask), want, "slot {slot}");
    }
    assert_eq!(cache.union_has(3, 0, 0b100), Some(true));
    assert_eq!(cache.union_has(3, 1, 1 << 63), Some(true));
    assert_eq!(cache.union_has(3, 2, 1), Some(false), "past the end");
    cache.clear_unions();
    assert_eq!(cache.union_has(3, 0, 0b100), None, "old generation");
}

/// Entries of an old generation must not become valid again when the
/// generation counter wraps round to the value they were made at.
#[test]
fn summaries_and_unions_do_not_revive_when_the_generation_wraps() {
    let mut cache = TransformCache::new();
    cache.insert_summary(3, [1, 0, 0, 0], &[0b101]);
    assert_eq!(cache.alias_union(7, 3), Some(&[0b101][..]));
    assert_eq!(cache.union(7), Some(&[0b101][..]));
    // ~4 billion clears later, the counter wraps back to 1.
    cache.union_generation = u32::MAX;
    assert!(cache.summary(3).is_none() && cache.union(7).is_none());
    cache.clear_unions();
    assert_eq!(cache.union_generation, 1);
    assert!(cache.summary(3).is_none(), "summary revived");
    assert!(cache.union(7).is_none(), "union revived");
}

/// Forgetting a phase-dependent variable drops its summary and the
/// unions listed, and no other.
#[test]
fn forgetting_a_variable_keeps_the_others() {
    let mut cache = TransformCache::new();
    cache.insert_summary(2, [0; 4], &[1]);
    cache.insert_summary(5, [0; 4], &[2]);
    cache.alias_union(0, 2);
    cache.alias_union(1, 5);
    cache.forget_unions_of(&[5], &[1]);
    assert_eq!(cache.summary(2).map(|(_, b)| b), Some(&[1][..]));
    assert_eq!(cache.union(0), Some(&[1][..]));
    assert!(cache.summary(5).is_none() && cache.union(1).is_none());
    assert!(cache.alias_union(1, 5).is_none(), "no summary to share");
}
