//! Trees as saved in a model: splits on raw feature values, readable by callers.

use serde::{Deserialize, Serialize};

use crate::dataset::{Column, MISSING_CATEGORY};

/// Category codes a split may list are below this (a vocabulary of 16 million values is far
/// beyond any categorical feature; scoring keeps a bitset as long as the largest code).
pub const MAX_CATEGORY_CODE: u32 = 1 << 24;

/// One decision tree. `nodes[0]` is the root; children always come after their parent.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Tree {
    /// The nodes, root first.
    pub nodes: Vec<Node>,
}

/// A node of a [`Tree`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Node {
    /// An internal node.
    Split {
        /// Feature index (position in the dataset).
        feature: usize,
        /// Which present values go left.
        rule: SplitRule,
        /// Whether missing values go left.
        default_left: bool,
        /// Index of the left child in [`Tree::nodes`].
        left: u32,
        /// Index of the right child in [`Tree::nodes`].
        right: u32,
        /// Loss reduction of the split (before shrinkage).
        gain: f64,
        /// Training rows that reached the node (the cover used by TreeSHAP).
        count: f64,
    },
    /// A leaf.
    Leaf {
        /// Contribution to the margin (log-odds), learning rate included.
        value: f64,
        /// Training rows that reached the leaf.
        count: f64,
    },
}

impl Node {
    /// Training rows that reached the node.
    pub fn count(&self) -> f64 {
        match self {
            Node::Split { count, .. } | Node::Leaf { count, .. } => *count,
        }
    }
}

/// The test of a split node on a present value.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SplitRule {
    /// Numeric: `x <= threshold` goes left. The threshold may be `+inf` (present vs missing); in
    /// JSON non-finite thresholds are written as the strings `"inf"` and `"-inf"`.
    Threshold(#[serde(with = "threshold_serde")] f64),
    /// Categorical: these codes (sorted ascending) go left; all other codes go right.
    Categories(Vec<u32>),
}

impl SplitRule {
    /// Whether row `row` of `column` goes left; missing values and kind mismatches use `default_left`.
    pub fn goes_left(&self, column: &Column, row: usize, default_left: bool) -> bool {
        match (self, column) {
            (SplitRule::Threshold(threshold), Column::Numeric(values)) => match values.get(row) {
                Some(&value) if !value.is_nan() => value <= *threshold,
                _ => default_left,
            },
            (SplitRule::Categories(codes), Column::Categorical(values)) => match values.get(row) {
                Some(&code) if code != MISSING_CATEGORY => codes.binary_search(&code).is_ok(),
                _ => default_left,
            },
            _ => default_left,
        }
    }
}

impl Tree {
    /// Index of the leaf that row `row` of `columns` reaches, or `None` for a malformed tree.
    pub fn leaf_index(&self, columns: &[Column], row: usize) -> Option<usize> {
        let mut index = 0usize;
        // Children come after parents, so a well-formed walk takes fewer steps than there are nodes.
        for _ in 0..self.nodes.len() {
            match self.nodes.get(index)? {
                Node::Leaf { .. } => return Some(index),
                Node::Split { feature, rule, default_left, left, right, .. } => {
                    let goes_left = columns.get(*feature).map_or(*default_left, |column| rule.goes_left(column, row, *default_left));
                    index = if goes_left { *left } else { *right } as usize;
                }
            }
        }
        None
    }

    /// The tree's output for one row (0 for a malformed tree).
    pub fn predict_row(&self, columns: &[Column], row: usize) -> f64 {
        match self.leaf_index(columns, row).and_then(|index| self.nodes.get(index)) {
            Some(Node::Leaf { value, .. }) => *value,
            _ => 0.0,
        }
    }

    /// Number of leaves.
    pub fn n_leaves(&self) -> usize {
        self.nodes.iter().filter(|node| matches!(node, Node::Leaf { .. })).count()
    }

    /// Depth of the deepest leaf (0 for a single leaf).
    pub fn depth(&self) -> usize {
        let mut depths = vec![0usize; self.nodes.len()];
        let mut deepest = 0;
        for (index, node) in self.nodes.iter().enumerate() {
            if let Node::Split { left, right, .. } = node {
                for child in [*left as usize, *right as usize] {
                    if child > index && child < depths.len() {
                        depths[child] = depths[index] + 1;
                        deepest = deepest.max(depths[child]);
                    }
                }
            }
        }
        deepest
    }

    /// Checks child indices point forward and features exist; returns a description of the fault.
    pub(crate) fn check(&self, n_features: usize) -> Result<(), String> {
        if self.nodes.is_empty() {
            return Err("tree without nodes".into());
        }
        let mut parents = vec![0usize; self.nodes.len()];
        for (index, node) in self.nodes.iter().enumerate() {
            match node {
                Node::Split { feature, rule, left, right, .. } => {
                    if *feature >= n_features {
                        return Err(format!("node {index} splits on unknown feature {feature}"));
                    }
                    if let SplitRule::Categories(codes) = rule {
                        if !codes.is_sorted() {
                            return Err(format!("node {index} has unsorted categories"));
                        }
                        if codes.last().is_some_and(|&c| c >= MAX_CATEGORY_CODE) {
                            return Err(format!("node {index} lists a category code of {MAX_CATEGORY_CODE} or more"));
                        }
                    }
                    for child in [*left as usize, *right as usize] {
                        if child <= index || child >= self.nodes.len() {
                            return Err(format!("node {index} has child {child} out of order"));
                        }
                        parents[child] += 1;
                    }
                }
                Node::Leaf { value, .. } if !value.is_finite() => {
                    return Err(format!("leaf {index} has a non-finite value"));
                }
                Node::Leaf { .. } => {}
            }
        }
        if parents[1..].iter().any(|&count| count != 1) {
            return Err("a node has no parent or several".into());
        }
        Ok(())
    }
}

/// Writes non-finite thresholds as strings, since JSON has no infinity.
mod threshold_serde {
    use std::fmt;

    use serde::de::{self, Visitor};
    use serde::{Deserializer, Serializer};

    #[allow(clippy::trivially_copy_pass_by_ref, reason = "the signature serde's `with` expects")]
    pub(super) fn serialize<S: Serializer>(value: &f64, serializer: S) -> Result<S::Ok, S::Error> {
        if value.is_finite() {
            serializer.serialize_f64(*value)
        } else if value.is_nan() {
            serializer.serialize_str("nan")
        } else if *value > 0.0 {
            serializer.serialize_str("inf")
        } else {
            serializer.serialize_str("-inf")
        }
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<f64, D::Error> {
        deserializer.deserialize_any(ThresholdVisitor)
    }

    struct ThresholdVisitor;

    impl Visitor<'_> for ThresholdVisitor {
        type Value = f64;

        fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
            formatter.write_str("a number or one of \"inf\", \"-inf\", \"nan\"")
        }

        fn visit_f64<E: de::Error>(self, value: f64) -> Result<f64, E> {
            Ok(value)
        }

        fn visit_i64<E: de::Error>(self, value: i64) -> Result<f64, E> {
            Ok(value as f64)
        }

        fn visit_u64<E: de::Error>(self, value: u64) -> Result<f64, E> {
            Ok(value as f64)
        }

        fn visit_str<E: de::Error>(self, value: &str) -> Result<f64, E> {
            match value {
                "inf" => Ok(f64::INFINITY),
                "-inf" => Ok(f64::NEG_INFINITY),
                "nan" => Ok(f64::NAN),
                other => Err(E::invalid_value(de::Unexpected::Str(other), &self)),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stump() -> Tree {
        Tree {
            nodes: vec![
                Node::Split {
                    feature: 0,
                    rule: SplitRule::Threshold(f64::INFINITY),
                    default_left: false,
                    left: 1,
                    right: 2,
                    gain: 1.0,
                    count: 10.0,
                },
                Node::Leaf { value: -1.0, count: 6.0 },
                Node::Leaf { value: 2.0, count: 4.0 },
            ],
        }
    }

    #[test]
    fn infinite_threshold_round_trips_through_json() {
        let tree = stump();
        let json = serde_json::to_string(&tree).unwrap();
        assert!(json.contains("\"inf\""), "{json}");
        let back: Tree = serde_json::from_str(&json).unwrap();
        assert_eq!(back, tree);
    }

    #[test]
    #[allow(clippy::float_cmp, reason = "leaf values are copied, not computed")]
    fn routes_present_and_missing_values() {
        let tree = stump();
        let columns = vec![Column::Numeric(vec![1.0, f64::NAN, f64::INFINITY])];
        assert_eq!(tree.predict_row(&columns, 0), -1.0);
        assert_eq!(tree.predict_row(&columns, 1), 2.0);
        assert_eq!(tree.predict_row(&columns, 2), -1.0);
        assert_eq!(tree.depth(), 1);
        assert_eq!(tree.n_leaves(), 2);
    }

    #[test]
    fn check_rejects_backward_children() {
        let mut tree = stump();
        if let Node::Split { right, .. } = &mut tree.nodes[0] {
            *right = 0;
        }
        assert!(tree.check(1).is_err());
        assert!(stump().check(1).is_ok());
        assert!(stump().check(0).is_err());
    }
}
