//! Tests of the store: keys by any case and by `StoreKey`, in slots and
//! in the table, through every write, view and copy.

use super::*;

/// A store whose index holds `names` (registered now, so the index that
/// is frozen next holds them).
fn indexed(names: &[&str]) -> (Store, Vec<StoreKey>) {
    let keys: Vec<StoreKey> = names.iter().map(|n| StoreKey::new(n)).collect();
    let store = Store::with_index(KeyIndex::current());
    for key in &keys {
        assert!(store.index.slot_of(key).is_some(), "{key:?} has a slot");
    }
    (store, keys)
}

fn sorted(store: &Store) -> Vec<(String, Vec<u8>)> {
    let mut all: Vec<(String, Vec<u8>)> = store
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_vec()))
        .collect();
    all.sort();
    all
}

#[test]
fn capitals_are_found_anywhere_and_only_capitals() {
    for key in [
        "A",
        "xZ",
        "tx.Score",
        "é_K",
        "abcdefghijklmnopqrstuvwxyz0123456789Q",
    ] {
        assert!(has_capital(key), "{key}");
    }
    for key in [
        "",
        "@[`{",
        "tx.score",
        "é",
        "abcdefghijklmnopqrstuvwxyz0123456789_",
    ] {
        assert!(!has_capital(key), "{key}");
    }
    assert_eq!(lower("Tx.Score"), "tx.score");
    assert!(matches!(lower("tx.score"), Cow::Borrowed(_)));
}

#[test]
fn writes_by_any_case_and_by_interned_key_reach_one_entry() {
    let mut store = Store::default();
    store.set_shared("Header_Name_920450_Host", Bytes::from(&b"1"[..]));
    // The same key in another case overwrites, and is stored lower-case.
    store.set_shared("HEADER_NAME_920450_HOST", Bytes::from(&b"2"[..]));
    assert_eq!(store.len(), 1);
    let (key, value) = store.entry("header_name_920450_host").unwrap();
    assert_eq!((&**key, &**value), ("header_name_920450_host", &b"2"[..]));
    // An interned key reaches the entry a borrowed write made (by its
    // bytes: the entry's key is another allocation), and the other way
    // round; neither adds a second entry. A key known at load is
    // lower-cased when made.
    let interned = StoreKey::new("Header_Name_920450_HOST");
    assert_eq!(&**interned.name(), "header_name_920450_host");
    store.set_key(&interned, Bytes::from(&b"3"[..]));
    assert_eq!(store.len(), 1);
    assert_eq!(store.get("Header_Name_920450_Host"), Some(&b"3"[..]));
    assert_eq!(store.get_key(&interned).map(|v| &**v), Some(&b"3"[..]));
    let score = StoreKey::new("anomaly_score");
    assert_eq!(store.get_key(&score), None);
    store.set_key(&score, Bytes::from(&b"5"[..]));
    // The interned key itself is stored (no copy), once.
    let (stored, _) = store.entry("anomaly_score").unwrap();
    assert!(Arc::ptr_eq(stored, score.name()));
    // Every `StoreKey` of one text shares its allocation.
    let again = StoreKey::new("ANOMALY_SCORE");
    assert!(Arc::ptr_eq(again.name(), score.name()));
    assert_eq!(store.get_key(&again).map(|v| &**v), Some(&b"5"[..]));
    store.set_shared("Anomaly_Score", Bytes::from(&b"6"[..]));
    assert_eq!(store.len(), 2);
    assert_eq!(
        store.get_lowercase("anomaly_score").map(|v| &**v),
        Some(&b"6"[..])
    );
    // Every write is a new generation, overwrites included.
    let before = store.generation();
    store.set_key(&score, Bytes::from(&b"6"[..]));
    store.set_shared("anomaly_score", Bytes::from(&b"6"[..]));
    assert_eq!(store.generation(), before.wrapping_add(2));
    // Removal by a key known at load, by any case of the text.
    store.remove_key(&again);
    assert_eq!(store.get("anomaly_score"), None);
    store.remove("HEADER_NAME_920450_host");
    assert!(store.is_empty());
    assert_eq!(store.generation(), before.wrapping_add(4));
}

#[test]
fn keys_are_found_after_the_table_grows_and_when_copied() {
    // Growing the table moves entries by their kept hash: every key,
    // whether written by text or by `StoreKey`, must still be found.
    let mut store = Store::default();
    let known: Vec<StoreKey> = (0..40).map(|i| StoreKey::new(&format!("K{i}"))).collect();
    for (i, key) in known.iter().enumerate() {
        store.set_key(key, Bytes::from(i.to_string().as_bytes()));
        store.set(&format!("Dyn_{i}"), i.to_string().into_bytes());
    }
    let mut copy = Store::default();
    copy.set("stale", b"x".to_vec());
    copy.copy_from(&store);
    for s in [&store, &copy] {
        assert_eq!(s.len(), 80);
        assert_eq!(s.get("stale"), None);
        for (i, key) in known.iter().enumerate() {
            let text = i.to_string();
            assert_eq!(s.get_key(key).map(|v| &**v), Some(text.as_bytes()));
            assert_eq!(s.get(&format!("k{i}")), Some(text.as_bytes()));
            assert_eq!(s.get(&format!("DYN_{i}")), Some(text.as_bytes()));
        }
    }
}

#[test]
fn keys_with_line_breaks_are_counted_through_every_write() {
    let mut store = Store::default();
    assert!(store.keys_single_line());
    store.set("a", b"1".to_vec());
    assert!(store.keys_single_line());
    store.set("x\nHeader_a", b"1".to_vec());
    assert!(!store.keys_single_line());
    // Overwriting the key does not count it twice.
    store.set("X\nheader_A", b"2".to_vec());
    let interned = StoreKey::new("y\nB");
    store.set_key(&interned, Bytes::from(&b"3"[..]));
    store.set_key(&interned, Bytes::from(&b"4"[..]));
    assert_eq!(store.newline_keys, 2);
    let mut copy = Store::default();
    copy.copy_from(&store);
    assert_eq!(copy.newline_keys, 2);
    store.remove("X\nHEADER_A");
    store.remove("absent\n");
    assert_eq!(store.newline_keys, 1);
    store.remove("y\nb");
    assert!(store.keys_single_line());
    copy.clear();
    assert!(copy.keys_single_line());
}

#[test]
fn indexed_names_live_in_slots_whichever_way_they_are_written() {
    let (mut store, keys) = indexed(&["Slot_A", "slot_b", "x\nSlot"]);
    let (a, b, newline) = (&keys[0], &keys[1], &keys[2]);
    // Through the key, then through text in another case: one entry, in
    // the slot, never in the table.
    store.set_key(a, Bytes::from(&b"1"[..]));
    store.set_shared("SLOT_A", Bytes::from(&b"2"[..]));
    assert_eq!((store.len(), store.table.len(), store.in_slots), (1, 0, 1));
    assert_eq!(store.get_key(a).map(|v| &**v), Some(&b"2"[..]));
    // Through text first, then the key.
    store.set("Slot_B", b"3".to_vec());
    store.set_key(b, Bytes::from(&b"4"[..]));
    assert_eq!((store.len(), store.table.len()), (2, 0));
    assert_eq!(store.get("slot_b"), Some(&b"4"[..]));
    let (name, _) = store.entry("SLOT_B").unwrap();
    assert!(Arc::ptr_eq(name, b.name()), "the index's name is shared");
    // A key without a slot goes to the table; all views cover both.
    store.set("dyn_C", b"5".to_vec());
    assert_eq!((store.len(), store.table.len()), (3, 1));
    assert_eq!(
        sorted(&store),
        [
            ("dyn_c".to_string(), b"5".to_vec()),
            ("slot_a".to_string(), b"2".to_vec()),
            ("slot_b".to_string(), b"4".to_vec()),
        ]
    );
    // Line breaks in indexed names are counted like any other.
    store.set_key(newline, Bytes::from(&b"6"[..]));
    store.set_shared("X\nSLOT", Bytes::from(&b"7"[..]));
    assert_eq!(store.newline_keys, 1);
    store.remove("x\nslot");
    assert!(store.keys_single_line());
    // Removal by text empties the slot, by key too; every write is a new
    // generation, removals of absent keys included (as before).
    let before = store.generation();
    store.remove("SLOT_A");
    store.remove_key(b);
    store.remove_key(b);
    assert_eq!(store.generation(), before.wrapping_add(3));
    assert_eq!((store.len(), store.in_slots), (1, 0));
    assert_eq!(store.get_key(a), None);
    assert_eq!(sorted(&store), [("dyn_c".to_string(), b"5".to_vec())]);
}

#[test]
fn keys_registered_after_the_index_froze_live_in_the_table() {
    let (mut store, _) = indexed(&["frozen_key"]);
    let late = StoreKey::new("Late_Key_Only_Here");
    assert!(store.index.slot_of(&late).is_none());
    store.set_key(&late, Bytes::from(&b"1"[..]));
    assert_eq!((store.table.len(), store.in_slots), (1, 0));
    // Text reaches the same entry: the index does not hold the name.
    store.set("LATE_KEY_ONLY_HERE", b"2".to_vec());
    assert_eq!(store.len(), 1);
    assert_eq!(store.get_key(&late).map(|v| &**v), Some(&b"2"[..]));
    store.remove_key(&late);
    assert!(store.is_empty());
    // A store on a newer index gives the name a slot.
    let mut newer = Store::with_index(KeyIndex::current());
    newer.set_key(&late, Bytes::from(&b"3"[..]));
    assert_eq!((newer.table.len(), newer.in_slots), (0, 1));
}

#[test]
fn copies_clears_and_index_changes_keep_both_places_exact() {
    let (mut source, keys) = indexed(&["copy_a", "copy_b", "y\ncopy"]);
    source.set_key(&keys[0], Bytes::from(&b"1"[..]));
    source.set_key(&keys[2], Bytes::from(&b"2"[..]));
    source.set("copy_dyn", b"3".to_vec());
    // The destination holds other values, in slots and in the table.
    let mut copy = Store::with_index(source.index.clone());
    copy.set_key(&keys[1], Bytes::from(&b"stale"[..]));
    copy.set("stale_dyn", b"x".to_vec());
    copy.copy_from(&source);
    assert_eq!(sorted(&copy), sorted(&source));
    assert_eq!((copy.len(), copy.in_slots, copy.newline_keys), (3, 2, 1));
    assert_eq!(copy.get_key(&keys[1]), None);
    // A store of another index (a pooled store) takes the source's.
    let mut other = Store::default();
    other.set("copy_a", b"in the table".to_vec());
    other.copy_from(&source);
    assert_eq!(sorted(&other), sorted(&source));
    assert_eq!(other.get_key(&keys[0]).map(|v| &**v), Some(&b"1"[..]));
    // Clearing empties both places and keeps the slots for reuse.
    copy.clear();
    assert!(copy.is_empty() && copy.keys_single_line());
    assert_eq!(copy.iter().count(), 0);
    assert_eq!(copy.get_key(&keys[0]), None);
    copy.set_key(&keys[1], Bytes::from(&b"4"[..]));
    assert_eq!(sorted(&copy), [("copy_b".to_string(), b"4".to_vec())]);
    // Taking another index empties the store.
    copy.use_index(&KeyIndex::empty());
    assert!(copy.is_empty());
    copy.set_key(&keys[1], Bytes::from(&b"5"[..]));
    assert_eq!((copy.table.len(), copy.in_slots), (1, 0));
}

/// Through rules: the ids of the rules that matched on a GET whose TX was
/// given `suffix` first (so the key built from it has no slot), with the
/// shortcuts (and so the selectors' slot masks) on or off.
fn matched_through_rules(set: &mut crate::RuleSet, shortcuts: bool) -> Vec<u64> {
    set.set_prefilter(shortcuts);
    let mut tx = crate::Transaction::new(set);
    tx.set_tx_var("Suffix", b"dyn");
    // A name with a slot written as text by the host.
    tx.set_tx_var("LIT_SCORE", b"7");
    tx.set_request_line("GET", "/", "HTTP/1.1");
    tx.process_request_headers();
    tx.matched_rules().iter().map(|m| m.id).collect()
}

#[test]
fn rules_see_slots_and_table_as_one_collection() {
    let mut set = crate::RuleSet::from_text(
        "SecRuleEngine On\n\
         SecAction \"id:1,phase:1,pass,nolog,setvar:tx.header_name_lit=L,setvar:tx.other=O,\
         setvar:'tx.header_name_%{tx.suffix}=D'\"\n\
         SecRule &TX:/^header_name_/ \"@eq 2\" \"id:2,phase:1,pass,nolog\"\n\
         SecRule TX:/^header_name_/ \"@streq D\" \"id:3,phase:1,pass,nolog\"\n\
         SecRule TX:/^header_name_/ \"@streq L\" \"id:4,phase:1,pass,nolog\"\n\
         SecRule TX:/^header_name_/ \"@streq O\" \"id:5,phase:1,pass,nolog\"\n\
         SecRule &TX \"@eq 5\" \"id:6,phase:1,pass,nolog\"\n\
         SecRule TX:Lit_Score \"@streq 7\" \"id:7,phase:1,pass,nolog\"\n\
         SecAction \"id:8,phase:1,pass,nolog,setvar:!tx.header_name_lit,setvar:!tx.header_name_DYN\"\n\
         SecRule &TX:/^header_name_/ \"@eq 0\" \"id:9,phase:1,pass,nolog\"\n\
         SecRule TX:lit_score \"@streq 7\" \"id:10,phase:1,pass,nolog,t:none\"",
    )
    .unwrap();
    // The literal names have slots, the selector knows which it picks,
    // and the `TX:key` targets have keys made at load.
    let index = set.key_index().clone();
    let lit = StoreKey::new("header_name_lit");
    assert!(index.slot_of(&lit).is_some());
    let selector = match &set.rule(3).unwrap().targets[0].selector {
        Some(crate::parser::Selector::Regex(r)) => r.as_str(),
        _ => unreachable!(),
    };
    let matcher = set.key_matcher(selector);
    let mask = matcher
        .slot_mask(&index)
        .expect("a mask with the shortcuts on");
    // (The registry is the process's: other tests' names are in it too.)
    let picked: Vec<&str> = set_bits(mask).map(|id| &*index.names[id]).collect();
    assert!(picked.contains(&"header_name_lit"), "{picked:?}");
    assert!(picked.iter().all(|n| n.starts_with("header_name_")));
    let unpicked = index.names.iter().filter(|n| n.starts_with("header_name_"));
    assert_eq!(unpicked.count(), picked.len());
    // Not for a store of another index.
    assert!(matcher.slot_mask(&KeyIndex::empty()).is_none());
    for id in [7, 10] {
        let key = match &set.rule(id).unwrap().targets[0].selector {
            Some(crate::parser::Selector::Key(k)) => k.clone(),
            _ => unreachable!(),
        };
        // Another allocation of the same text is not the target's.
        assert!(set.tx_key(&key).is_none());
        let target_key = match &set.rule(id).unwrap().targets[0].selector {
            Some(crate::parser::Selector::Key(k)) => set.tx_key(k).cloned(),
            _ => None,
        };
        let target_key = target_key.expect("made at load");
        assert_eq!(&**target_key.name(), "lit_score");
        assert!(index.slot_of(&target_key).is_some());
    }
    // Both selected keys, slot and table, are seen (2, 3, 4), no other
    // (5); the whole collection counts both places (6: suffix,
    // lit_score, header_name_lit, other, header_name_dyn); deletes by
    // literal and by text reach both places (9).
    let expected = [1, 2, 3, 4, 6, 7, 8, 9, 10];
    assert_eq!(matched_through_rules(&mut set, true), expected);
    assert_eq!(matched_through_rules(&mut set, false), expected);
}
