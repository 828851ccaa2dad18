//! Counters labelled by a name clients choose (a topic, a group), with a cap on how many
//! names a shard keeps: a client creating topics or groups in a loop must not grow the
//! scrape, or the shard's memory, without bound. Names past the cap share one series,
//! [`OTHER`].

use hashbrown::HashMap;
use std::sync::Arc;

/// The label of everything counted past the cap.
pub const OTHER: &str = "_other";

/// Values of type `V` by name, at most `limit` names (0: none, counting is off).
pub struct CappedLabels<V> {
    limit: usize,
    values: HashMap<Arc<str>, V>,
    /// What names past the cap counted, once one has.
    other: Option<V>,
}

impl<V: Default + Clone> CappedLabels<V> {
    pub fn new(limit: usize) -> Self {
        Self {
            limit,
            values: HashMap::new(),
            other: None,
        }
    }

    /// The value of `name`, or of [`OTHER`] once `limit` names are taken; `None` when the
    /// limit is 0. A name is copied once, the first time it is counted.
    pub fn get_mut(&mut self, name: &str) -> Option<&mut V> {
        if self.limit == 0 {
            return None;
        }
        if self.values.len() >= self.limit && !self.values.contains_key(name) {
            return Some(self.other.get_or_insert_with(V::default));
        }
        Some(self.values.entry_ref(name).or_default())
    }

    /// Every name with its value, [`OTHER`] last if anything was counted there.
    pub fn snapshot(&self) -> Vec<(String, V)> {
        let mut named: Vec<_> = self
            .values
            .iter()
            .map(|(name, value)| (name.to_string(), value.clone()))
            .collect();
        named.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        named.extend(self.other.iter().map(|v| (OTHER.to_string(), v.clone())));
        named
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_past_the_cap_share_other() {
        let mut counts = CappedLabels::<u64>::new(2);
        for name in ["a", "b", "c", "a", "d"] {
            *counts.get_mut(name).expect("counted") += 1;
        }
        let counted = counts.snapshot();
        let expected = [("a", 2), ("b", 1), (OTHER, 2)].map(|(n, c)| (n.to_string(), c));
        assert_eq!(counted, expected);
    }

    #[test]
    fn a_limit_of_zero_counts_nothing() {
        let mut counts = CappedLabels::<u64>::new(0);
        assert!(counts.get_mut("a").is_none());
        assert!(counts.snapshot().is_empty());
    }
}
