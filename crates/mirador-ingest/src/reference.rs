//! Reference tables that disagree with themselves: the same key given twice.
//!
//! A tariff line, an exchange rate or a mirror flow is one value per key. Given twice with the
//! same value, the copy is quarantined as `duplicate` and the first kept. Given with different
//! values, every row of the key is quarantined as `conflict`: no rule can tell which one is right
//! (the last, the largest, the first are all guesses that change the figures silently), so the key
//! is left out and the quarantine says why; the analyst fixes the source. Nothing is summed or
//! overwritten.

use std::collections::HashMap;
use std::hash::Hash;

use crate::rules::Reject;

/// One valid row of a reference table: its key, its content (what must agree) and its line.
pub(crate) struct Keyed<K, C> {
    pub(crate) key: K,
    pub(crate) content: C,
    pub(crate) line: usize,
}

/// For each row, in order: `None` to keep it, or why it is quarantined (`duplicate`, `conflict`).
/// `what` names a key for messages, `show` a content.
pub(crate) fn repeats<K: Hash + Eq, C: PartialEq>(
    rows: &[Keyed<K, C>],
    column: &str,
    what: impl Fn(&K) -> String,
    show: impl Fn(&C) -> String,
) -> Vec<Option<Reject>> {
    let mut groups: HashMap<&K, Vec<usize>, foldhash::fast::FixedState> = HashMap::default();
    for (i, row) in rows.iter().enumerate() {
        groups.entry(&row.key).or_default().push(i);
    }
    let mut out: Vec<Option<Reject>> = (0..rows.len()).map(|_| None).collect();
    for members in groups.values().filter(|m| m.len() > 1) {
        let first = &rows[members[0]];
        if members.iter().all(|&i| rows[i].content == first.content) {
            for &i in &members[1..] {
                out[i] =
                    Some(Reject::new("duplicate", column, format!("{}: exact copy of line {} (kept)", what(&rows[i].key), first.line)));
            }
        } else {
            let values: Vec<String> = members.iter().map(|&i| format!("{} (line {})", show(&rows[i].content), rows[i].line)).collect();
            for &i in members {
                out[i] = Some(Reject::new(
                    "conflict",
                    column,
                    format!("{}: {} rows disagree: {}; none is used", what(&rows[i].key), members.len(), values.join(", ")),
                ));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keyed(key: &str, content: f64, line: usize) -> Keyed<String, f64> {
        Keyed { key: key.to_owned(), content, line }
    }

    #[test]
    fn copies_are_duplicates_and_disagreements_conflict_on_every_row() {
        let rows = [keyed("a", 1.0, 2), keyed("b", 2.0, 3), keyed("a", 1.0, 4), keyed("c", 3.0, 5), keyed("c", 4.0, 6), keyed("c", 3.0, 7)];
        let out = repeats(&rows, "k", Clone::clone, ToString::to_string);
        let codes: Vec<Option<&str>> = out.iter().map(|r| r.as_ref().map(|r| r.code)).collect();
        assert_eq!(codes, [None, None, Some("duplicate"), Some("conflict"), Some("conflict"), Some("conflict")]);
        assert!(out[2].as_ref().unwrap().message.contains("line 2"));
        assert!(out[4].as_ref().unwrap().message.contains("3 (line 5), 4 (line 6), 3 (line 7)"), "{:?}", out[4]);
    }

    #[test]
    fn unique_keys_are_all_kept() {
        let rows: Vec<_> = (0..100).map(|i| keyed(&i.to_string(), 1.0, i + 2)).collect();
        assert!(repeats(&rows, "k", Clone::clone, ToString::to_string).iter().all(Option::is_none));
    }
}
