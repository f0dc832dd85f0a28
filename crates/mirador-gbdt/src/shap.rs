//! Exact path-dependent TreeSHAP (Lundberg, Erion & Lee 2018, Algorithm 2).
//!
//! For a row, each feature's contribution is its Shapley value under the value function
//! `v(S) = E[f(x) | x_S]`, where the expectation over features outside `S` follows both children
//! of a split weighted by their training cover. The contributions plus the bias `v(∅)` sum to the
//! margin.

use rayon::prelude::*;

use crate::booster::Booster;
use crate::dataset::{Column, Dataset};
use crate::error::Result;
use crate::params::MAX_TREE_DEPTH;
use crate::tree::{Node, Tree};

/// Feature index of the path's root element, which stands for no feature.
const NO_FEATURE: usize = usize::MAX;

/// Path elements unwound together at a leaf.
const LANES: usize = 8;

impl Booster {
    /// SHAP values per row: one value per feature, then the bias (expected margin) last.
    ///
    /// For every row the values sum to [`Booster::predict_margin`] up to rounding.
    pub fn contributions(&self, data: &Dataset) -> Result<Vec<Vec<f64>>> {
        self.check_schema(data)?;
        let n_features = self.feature_names.len();
        let bias = self.init_score + self.trees.iter().map(expected_value).sum::<f64>();
        let buffer_len = self.trees.iter().map(|tree| path_buffer_len(tree.depth())).max().unwrap_or(0);
        let rows: Vec<Vec<f64>> = (0..data.n_rows())
            .into_par_iter()
            .map_init(
                || vec![PathElement::default(); buffer_len],
                |buffer, row| {
                    let mut phi = vec![0.0; n_features + 1];
                    for tree in &self.trees {
                        tree_shap(tree, &data.columns, row, &mut phi, buffer);
                    }
                    phi[n_features] = bias;
                    phi
                },
            )
            .collect();
        Ok(rows)
    }
}

/// Cover-weighted mean output of a tree: `v(∅)`.
pub(crate) fn expected_value(tree: &Tree) -> f64 {
    fn walk(tree: &Tree, index: usize) -> f64 {
        match tree.nodes.get(index) {
            Some(Node::Leaf { value, .. }) => *value,
            Some(Node::Split { left, right, count, .. }) => {
                let (left, right) = (*left as usize, *right as usize);
                let share = |child: usize| tree.nodes.get(child).map_or(0.0, Node::count) / count;
                share(left) * walk(tree, left) + share(right) * walk(tree, right)
            }
            None => 0.0,
        }
    }
    walk(tree, 0)
}

/// One element of the unique-feature path.
#[derive(Clone, Copy, Debug)]
struct PathElement {
    feature: usize,
    zero_fraction: f64,
    one_fraction: f64,
    weight: f64,
}

impl Default for PathElement {
    fn default() -> Self {
        Self { feature: NO_FEATURE, zero_fraction: 0.0, one_fraction: 0.0, weight: 0.0 }
    }
}

/// Room for the nested paths of a tree of the given depth.
fn path_buffer_len(depth: usize) -> usize {
    (depth + 3) * (depth + 4) / 2
}

/// Adds one tree's SHAP values for `row` into `phi` (bias excluded); `buffer` must hold at least
/// [`path_buffer_len`] of the tree's depth.
fn tree_shap(tree: &Tree, columns: &[Column], row: usize, phi: &mut [f64], buffer: &mut [PathElement]) {
    if tree.nodes.len() < 2 {
        return;
    }
    let walker = Walker { tree, columns, row };
    let root = Step { node: 0, unique_depth: 0, parent_start: 0, zero_fraction: 1.0, one_fraction: 1.0, feature: NO_FEATURE };
    walker.recurse(root, buffer, phi);
}

/// Where the recursion is and what the edge into the node contributes.
#[derive(Clone, Copy)]
struct Step {
    node: usize,
    unique_depth: usize,
    parent_start: usize,
    zero_fraction: f64,
    one_fraction: f64,
    feature: usize,
}

struct Walker<'a> {
    tree: &'a Tree,
    columns: &'a [Column],
    row: usize,
}

impl Walker<'_> {
    fn recurse(&self, step: Step, buffer: &mut [PathElement], phi: &mut [f64]) {
        let mut unique_depth = step.unique_depth;
        // Each level works on its own copy of the parent's path, stored after the parent's.
        let start = step.parent_start + unique_depth + 1;
        buffer.copy_within(step.parent_start..start, start);
        let path = &mut buffer[start..=start + unique_depth];
        extend_path(path, unique_depth, step.zero_fraction, step.one_fraction, step.feature);

        let Some(node) = self.tree.nodes.get(step.node) else {
            return;
        };
        match node {
            Node::Leaf { value, .. } => leaf_contributions(path, unique_depth, *value, phi),
            Node::Split { feature, rule, default_left, left, right, count, .. } => {
                let goes_left = self.columns.get(*feature).is_some_and(|column| rule.goes_left(column, self.row, *default_left));
                let (hot, cold) = if goes_left { (*left, *right) } else { (*right, *left) };
                let (hot, cold) = (hot as usize, cold as usize);
                let cover = |child: usize| self.tree.nodes.get(child).map_or(0.0, Node::count) / count;
                let (mut incoming_zero, mut incoming_one) = (1.0, 1.0);
                // A feature already on the path is removed and re-added with combined fractions.
                if let Some(k) = (1..=unique_depth).find(|&k| path[k].feature == *feature) {
                    incoming_zero = path[k].zero_fraction;
                    incoming_one = path[k].one_fraction;
                    unwind_path(path, unique_depth, k);
                    unique_depth -= 1;
                }
                let child = |node: usize, zero_fraction: f64, one_fraction: f64| Step {
                    node,
                    unique_depth: unique_depth + 1,
                    parent_start: start,
                    zero_fraction,
                    one_fraction,
                    feature: *feature,
                };
                self.recurse(child(hot, cover(hot) * incoming_zero, incoming_one), buffer, phi);
                self.recurse(child(cold, cover(cold) * incoming_zero, 0.0), buffer, phi);
            }
        }
    }
}

/// `1 / k` for small `k`, so the path updates multiply instead of divide.
const RECIPROCALS: [f64; MAX_TREE_DEPTH + 4] = {
    let mut table = [0.0; MAX_TREE_DEPTH + 4];
    let mut k = 1;
    while k < table.len() {
        table[k] = 1.0 / k as f64;
        k += 1;
    }
    table
};

fn reciprocal(k: usize) -> f64 {
    RECIPROCALS.get(k).copied().unwrap_or(1.0 / k as f64)
}

fn extend_path(path: &mut [PathElement], unique_depth: usize, zero_fraction: f64, one_fraction: f64, feature: usize) {
    path[unique_depth] = PathElement { feature, zero_fraction, one_fraction, weight: if unique_depth == 0 { 1.0 } else { 0.0 } };
    let inverse_length = reciprocal(unique_depth + 1);
    for i in (0..unique_depth).rev() {
        let weight = path[i].weight * inverse_length;
        path[i + 1].weight += one_fraction * weight * (i + 1) as f64;
        path[i].weight = zero_fraction * weight * (unique_depth - i) as f64;
    }
}

fn unwind_path(path: &mut [PathElement], unique_depth: usize, index: usize) {
    let length = (unique_depth + 1) as f64;
    let inverse_length = reciprocal(unique_depth + 1);
    let one_fraction = path[index].one_fraction;
    let zero_fraction = path[index].zero_fraction;
    let mut next_one_portion = path[unique_depth].weight;
    if one_fraction == 0.0 {
        let factor = length / zero_fraction;
        for i in (0..unique_depth).rev() {
            path[i].weight *= factor * reciprocal(unique_depth - i);
        }
    } else {
        let factor = length / one_fraction;
        for i in (0..unique_depth).rev() {
            let previous = path[i].weight;
            path[i].weight = next_one_portion * factor * reciprocal(i + 1);
            next_one_portion = previous - path[i].weight * zero_fraction * (unique_depth - i) as f64 * inverse_length;
        }
    }
    for i in index..unique_depth {
        path[i].feature = path[i + 1].feature;
        path[i].zero_fraction = path[i + 1].zero_fraction;
        path[i].one_fraction = path[i + 1].one_fraction;
    }
}

/// Adds a leaf's share to every feature on the path.
///
/// Each element's share needs the path's total weight with that element unwound. The unwinding
/// loops are serial chains of multiply-adds, so up to [`LANES`] elements are unwound side by side;
/// every lane performs the same operations in the same order as a lone unwinding would.
fn leaf_contributions(path: &[PathElement], unique_depth: usize, value: f64, phi: &mut [f64]) {
    let length = (unique_depth + 1) as f64;
    let inverse_length = reciprocal(unique_depth + 1);
    let mut first = 1;
    while first <= unique_depth {
        let count = LANES.min(unique_depth + 1 - first);
        let elements = &path[first..first + count];
        let mut hot = [false; LANES];
        let mut factor = [0.0; LANES];
        let mut zero = [0.0; LANES];
        for (lane, element) in elements.iter().enumerate() {
            hot[lane] = element.one_fraction != 0.0;
            zero[lane] = element.zero_fraction;
            factor[lane] = if hot[lane] {
                length / element.one_fraction
            } else if element.zero_fraction != 0.0 {
                length / element.zero_fraction
            } else {
                0.0
            };
        }
        let mut next_one_portion = [path[unique_depth].weight; LANES];
        let mut total = [0.0; LANES];
        for i in (0..unique_depth).rev() {
            let weight = path[i].weight;
            let position = reciprocal(i + 1);
            let remaining = reciprocal(unique_depth - i);
            let shrink = (unique_depth - i) as f64 * inverse_length;
            for lane in 0..count {
                if hot[lane] {
                    let part = next_one_portion[lane] * factor[lane] * position;
                    total[lane] += part;
                    next_one_portion[lane] = weight - part * zero[lane] * shrink;
                } else {
                    total[lane] += weight * factor[lane] * remaining;
                }
            }
        }
        for (element, total) in elements.iter().zip(total) {
            if let Some(slot) = phi.get_mut(element.feature) {
                *slot += total * (element.one_fraction - element.zero_fraction) * value;
            }
        }
        first += count;
    }
}
