//! Tests of the value memo: bounds, exact-bytes keys, stale references,
//! and one memo per rule set.

use std::hash::{BuildHasherDefault, Hasher};

use super::{MemoRef, ValueMemo, CHAIN_BITS, CHAIN_OUTPUTS, MEMO_ENTRIES, OUTPUT_LEN, WAYS};
use crate::compile::RuleSet;
use crate::eval::vars::Shared;
use crate::eval::Transaction;

/// A hasher under which every value collides (all in one set).
#[derive(Default)]
struct Colliding;

impl Hasher for Colliding {
    fn finish(&self) -> u64 {
        7
    }
    fn write(&mut self, _: &[u8]) {}
}

type CollidingMemo = ValueMemo<BuildHasherDefault<Colliding>>;

fn present_of(value: &[u8]) -> [u64; 4] {
    let mut present = [0; 4];
    crate::transform::presence(value, &mut present);
    present
}

fn record<S: std::hash::BuildHasher>(memo: &mut ValueMemo<S>, value: &[u8]) -> MemoRef {
    memo.record(value, || present_of(value)).at
}

/// Values that hash alike but differ in their bytes never share an entry
/// or a verdict: the bytes are compared in full.
#[test]
fn equal_hashes_with_other_bytes_are_other_values() {
    let mut memo = CollidingMemo::with_hasher(8, Default::default());
    let evil = record(&mut memo, b"union select");
    let benign = record(&mut memo, b"union selecT");
    assert_ne!(evil, benign, "two entries");
    memo.note_rejected(benign, 3);
    assert!(memo.rejects(benign, 3));
    assert!(!memo.rejects(evil, 3), "a verdict leaked to other bytes");
    // Found again by their bytes, each with its own verdicts.
    let mut rejects = |value: &[u8]| {
        let at = record(&mut memo, value);
        memo.rejects(at, 3)
    };
    assert!(rejects(b"union selecT"));
    assert!(!rejects(b"union select"));
    // A prefix or extension is another value too.
    assert!(!rejects(b"union sele"));
    assert!(!rejects(b"union selecT "));
}

/// A found entry gives back the presence set and bits stored with it.
#[test]
fn entries_keep_their_bytes_bits_and_verdicts() {
    let mut memo = ValueMemo::new(130);
    let found = memo.record(b"Ab", || present_of(b"Ab"));
    assert!(found.bits.is_none(), "not scanned yet");
    let at = found.at;
    memo.note_bits(at, &[0b10, 0b1]);
    memo.note_rejected(at, 129);
    let again = memo.record(b"Ab", || unreachable!("found, not computed"));
    assert_eq!(again.at, at);
    assert_eq!(again.present, present_of(b"Ab"));
    assert_eq!(again.bits, Some(&[0b10, 0b1][..]));
    assert!(memo.rejects(at, 129) && !memo.rejects(at, 128));
    // A bit beyond the rule set's verdicts is never set.
    memo.note_rejected(at, 4000);
    assert!(!memo.rejects(at, 4000));
}

/// Bits after a chain are found for that chain only, an entry keeps at
/// most `CHAIN_BITS` chains, and a new value in the entry starts with none.
#[test]
fn chain_bits_belong_to_their_chain_and_value() {
    let mut memo = CollidingMemo::with_hasher(1, Default::default());
    let at = record(&mut memo, b"%41b");
    memo.note_chain_bits(at, 3, &[0b1, 0]);
    memo.note_chain_bits(at, 3, &[0b10, 0]); // the first stays
    assert_eq!(memo.chain_bits(at, 3), Some(&[0b1, 0][..]));
    assert_eq!(memo.chain_bits(at, 4), None);
    for chain in 10..10 + CHAIN_BITS as u32 {
        memo.note_chain_bits(at, chain, &[u64::from(chain)]);
    }
    let kept = (10..10 + CHAIN_BITS as u32)
        .filter(|c| memo.chain_bits(at, *c) == Some(&[u64::from(*c)][..]))
        .count();
    assert_eq!(kept, CHAIN_BITS - 1, "one chain was there first");
    // Other bytes in the same set, then the entry replaced.
    let other = record(&mut memo, b"%41c");
    assert_eq!(memo.chain_bits(other, 3), None);
    for i in 0..WAYS {
        record(&mut memo, format!("w{i}").as_bytes());
    }
    assert_eq!(memo.chain_bits(at, 3), None, "a replaced entry's bits");
    let again = record(&mut memo, b"%41b");
    assert_eq!(memo.chain_bits(again, 3), None, "refilled with old bits");
}

fn shared(bytes: &[u8]) -> Shared {
    Shared::Bytes(bytes.into())
}

/// Chain outputs are kept for values found again, per chain, at most
/// `CHAIN_OUTPUTS` of them and each shorter than `OUTPUT_LEN`, and a new
/// value in the entry starts with none.
#[test]
fn chain_outputs_are_kept_for_values_found_again() {
    let mut memo = CollidingMemo::with_hasher(1, Default::default());
    let at = record(&mut memo, b"AbC");
    memo.note_chain_output(at, 1, &shared(b"abc"));
    assert!(
        memo.chain_output(at, 1).is_none(),
        "kept for a value seen once"
    );
    assert_eq!(record(&mut memo, b"AbC"), at, "found again");
    memo.note_chain_output(at, 1, &shared(b"abc"));
    memo.note_chain_output(at, 1, &shared(b"other")); // the first stays
    assert_eq!(memo.chain_output(at, 1).map(|o| &o[..]), Some(&b"abc"[..]));
    assert!(memo.chain_output(at, 2).is_none());
    memo.note_chain_output(at, 2, &shared(&vec![b'a'; OUTPUT_LEN]));
    assert!(memo.chain_output(at, 2).is_none(), "too long to keep");
    for chain in 10..10 + CHAIN_OUTPUTS as u32 {
        memo.note_chain_output(at, chain, &shared(b"x"));
    }
    let kept = (10..10 + CHAIN_OUTPUTS as u32)
        .filter(|c| memo.chain_output(at, *c).is_some())
        .count();
    assert_eq!(kept, CHAIN_OUTPUTS - 1, "one chain was there first");
    // The entry replaced (a value found again goes only once every way
    // was found again), then refilled with the same bytes: nothing kept.
    for i in 0..WAYS - 1 {
        record(&mut memo, format!("w{i}").as_bytes());
        record(&mut memo, format!("w{i}").as_bytes());
    }
    record(&mut memo, b"new");
    assert!(
        memo.chain_output(at, 1).is_none(),
        "a replaced entry's output"
    );
    let again = record(&mut memo, b"AbC");
    assert!(
        memo.chain_output(again, 1).is_none(),
        "refilled with old outputs"
    );
}

/// What a chain makes of a repeated value comes from the memo after the
/// first transactions, and rules see the same transformed value.
#[test]
fn remembered_outputs_give_the_same_matches() {
    let rules = RuleSet::from_text(
        r#"
SecRuleEngine On
SecRule REQUEST_HEADERS_NAMES "@streq x-evil" "id:1,phase:1,deny,status:403,t:none,t:lowercase"
"#,
    )
    .expect("loads");
    let run = |name: &str| {
        let mut tx = Transaction::new(&rules);
        tx.set_request_line("GET", "/", "HTTP/1.1");
        tx.add_request_header(name, b"1");
        tx.process_request_headers();
        tx.intervention().is_some()
    };
    for _ in 0..4 {
        assert!(run("X-Evil"), "lower-cased name matched");
        assert!(!run("X-Fine"));
    }
}

/// Endless distinct values never grow the memo past its entries, and a
/// value found between them keeps its entry.
#[test]
fn distinct_values_stay_within_bounds() {
    let mut memo = ValueMemo::new(1);
    let frequent = record(&mut memo, b"Mozilla/5.0");
    memo.note_rejected(frequent, 0);
    for i in 0..20 * MEMO_ENTRIES {
        record(&mut memo, format!("page={i}").as_bytes());
        if i % 64 == 0 {
            // Seen on every request.
            assert_eq!(record(&mut memo, b"Mozilla/5.0"), frequent);
        }
        assert!(memo.len() <= MEMO_ENTRIES);
    }
    assert_eq!(memo.len(), MEMO_ENTRIES);
    assert!(memo.rejects(frequent, 0), "the frequent value was evicted");
}

/// A reference to a replaced entry finds nothing, and a verdict noted
/// through it is dropped (not given to the entry's new value).
#[test]
fn references_to_replaced_entries_find_nothing() {
    let mut memo = CollidingMemo::with_hasher(1, Default::default());
    let old = record(&mut memo, b"first");
    // One set: WAYS more values replace every entry, `first` included.
    for i in 0..WAYS {
        record(&mut memo, format!("v{i}").as_bytes());
    }
    assert!(memo.len() <= WAYS);
    memo.note_rejected(old, 0);
    assert!(!memo.rejects(old, 0));
    for i in 0..WAYS {
        let now = record(&mut memo, format!("v{i}").as_bytes());
        assert!(!memo.rejects(now, 0), "v{i} got first's verdict");
    }
    assert!(!memo.rejects(MemoRef::NONE, 0));
}

/// `@streq` has no prefilter: every value reaches the link's test (a
/// prefiltered link is mostly ruled out before, by the union of bits).
const DENY_EVIL: &str = r#"
SecRuleEngine On
SecRule ARGS "@streq evil" "id:1,phase:1,deny,status:403"
"#;

const DENY_GOOD: &str = r#"
SecRuleEngine On
SecRule ARGS "@streq good" "id:1,phase:1,deny,status:403"
"#;

fn blocked(rules: &RuleSet, query: &str) -> bool {
    let mut tx = Transaction::new(rules);
    tx.set_request_line("GET", &format!("/?q={query}"), "HTTP/1.1");
    tx.process_request_headers();
    tx.intervention().is_some()
}

/// A new rule set starts with its own memo: verdicts of the old one (same
/// verdict bits, other operators) do not carry over.
#[test]
fn a_new_rule_set_has_a_new_memo() {
    let old = RuleSet::from_text(DENY_EVIL).expect("loads");
    assert!(!blocked(&old, "good") && !blocked(&old, "good"));
    let verdict = old.rules()[0].verdict_bit.expect("a pure link");
    let mut memo = old.take_memo().expect("on");
    let at = record(&mut memo, b"good");
    assert!(memo.rejects(at, verdict), "remembered under the old set");
    old.give_memo(memo);

    let new = RuleSet::from_text(DENY_GOOD).expect("loads");
    assert_eq!(new.rules()[0].verdict_bit, Some(verdict));
    assert!(blocked(&new, "good"), "the old set's verdict was used");
    assert!(!blocked(&old, "good"));
}

/// A verdict is remembered after a miss and used on a hit, with the same
/// result; values the link matches get no verdict.
#[test]
fn hits_give_the_results_of_misses() {
    let rules = RuleSet::from_text(DENY_EVIL).expect("loads");
    let verdict = rules.rules()[0].verdict_bit.expect("a pure link");
    for _ in 0..3 {
        assert!(!blocked(&rules, "fine"));
        assert!(blocked(&rules, "evil"));
    }
    let mut memo = rules.take_memo().expect("on");
    let fine = record(&mut memo, b"fine");
    let evil = record(&mut memo, b"evil");
    assert!(memo.rejects(fine, verdict));
    assert!(!memo.rejects(evil, verdict));
    rules.give_memo(memo);
}

/// With the memo off, transactions neither read nor fill it.
#[test]
fn off_means_unused() {
    let mut rules = RuleSet::from_text(DENY_EVIL).expect("loads");
    rules.set_value_memo(false);
    assert!(rules.take_memo().is_none());
    assert!(!blocked(&rules, "fine"));
    rules.set_value_memo(true);
    let mut memo = rules.take_memo().expect("on");
    assert_eq!(memo.len(), 0, "filled while off");
    let fine = record(&mut memo, b"fine");
    assert!(!memo.rejects(fine, 0));
    rules.give_memo(memo);
}

/// A transaction's references into the memo survive other transactions
/// on the thread replacing every entry: they then find nothing (here, the
/// entry of `good` now holds another value that rule 2 rejected), and the
/// link is evaluated again.
#[test]
fn interleaved_transactions_never_read_replaced_entries() {
    let rules = RuleSet::from_text(
        r#"
SecRuleEngine On
SecRequestBodyAccess On
SecRule ARGS "@streq x" "id:1,phase:1,pass"
SecRule ARGS "@streq good" "id:2,phase:2,deny,status:403"
"#,
    )
    .expect("loads");
    let mut held = Transaction::new(&rules);
    held.set_request_line("GET", "/?a=good", "HTTP/1.1");
    held.process_request_headers(); // `good` recorded, rule 1's verdict noted
    for batch in 0..8 {
        let query: Vec<String> = (0..400).map(|i| format!("v{i}=n{batch}x{i}")).collect();
        let mut other = Transaction::new(&rules);
        other.set_request_line("GET", &format!("/?{}", query.join("&")), "HTTP/1.1");
        other.process_request_headers();
        other.process_request_body(); // rule 2 rejects each value
        assert!(other.intervention().is_none());
    }
    held.process_request_body();
    assert_eq!(held.intervention().map(|i| i.rule_id), Some(2));
}

/// Matches are remembered apart from findings of nothing, per bit, and a
/// refilled entry starts with neither.
#[test]
fn matches_and_rejections_are_separate_verdicts() {
    let mut memo = CollidingMemo::with_hasher(70, Default::default());
    let at = record(&mut memo, b"GET");
    memo.note_matched(at, 65);
    memo.note_rejected(at, 3);
    assert!(memo.matches(at, 65) && !memo.rejects(at, 65));
    assert!(memo.rejects(at, 3) && !memo.matches(at, 3));
    assert!(!memo.matches(at, 64));
    for i in 0..WAYS {
        record(&mut memo, format!("w{i}").as_bytes());
    }
    let again = record(&mut memo, b"GET");
    assert!(!memo.matches(again, 65), "refilled with an old match");
}

/// A link remembered as matching a value gives the same matched value
/// (transformed, as `MATCHED_VAR` shows) as evaluating it.
#[test]
fn remembered_matches_give_the_transformed_value() {
    let rules = RuleSet::from_text(
        r#"
SecRuleEngine On
SecRule REQUEST_HEADERS:User-Agent "!@rx ^curl" "id:1,phase:1,pass,nolog,t:none,t:lowercase,setvar:'tx.ua=%{MATCHED_VAR}'"
"#,
    )
    .expect("loads");
    for _ in 0..4 {
        let mut tx = Transaction::new(&rules);
        tx.set_request_line("GET", "/", "HTTP/1.1");
        tx.add_request_header("User-Agent", b"Mozilla/5.0");
        tx.process_request_headers();
        assert_eq!(tx.tx_var("ua"), Some(&b"mozilla/5.0"[..]));
    }
}

/// Two memos hash the same bytes apart (their seeds are random), unless
/// the `fixed-seeds` measurement feature fixes them.
#[test]
fn memos_are_seeded_apart() {
    use std::hash::BuildHasher;
    let (a, b) = (super::memo_hasher(), super::memo_hasher());
    let same = a.hash_one(b"User-Agent") == b.hash_one(b"User-Agent");
    assert_eq!(same, cfg!(feature = "fixed-seeds"));
}
