//! Near-duplicate groups: pages linked by cosine similarity at or above a threshold, joined
//! into connected components with a union-find.

use ndarray::{ArrayView2, Axis, s};

use crate::linalg::dot_rows;

const DUPLICATE_BLOCK: usize = 1024;

struct UnionFind {
    parents: Vec<usize>,
}

impl UnionFind {
    fn new(size: usize) -> Self {
        Self { parents: (0..size).collect() }
    }

    fn find(&mut self, mut item: usize) -> usize {
        while self.parents[item] != item {
            // Path halving keeps later finds short.
            self.parents[item] = self.parents[self.parents[item]];
            item = self.parents[item];
        }
        item
    }

    /// Joins two sets; the smaller root index becomes the root, so results do not depend
    /// on the order of the unions.
    fn union(&mut self, left: usize, right: usize) {
        let (left, right) = (self.find(left), self.find(right));
        if left != right {
            let (root, child) = if left < right { (left, right) } else { (right, left) };
            self.parents[child] = root;
        }
    }
}

/// Returns groups of row indices whose vectors are near-duplicates, comparing every pair of
/// rows that share a label. Vectors are L2-normalised here, so unnormalised input also works.
///
/// Groups have at least two rows, rows ascending inside a group, groups ordered by size
/// (largest first) and then by first row.
pub(crate) fn near_duplicate_groups(
    vectors: ArrayView2<'_, f32>,
    labels: &[u32],
    k: usize,
    threshold: f32,
) -> Vec<Vec<usize>> {
    let mut rows_by_cluster = vec![Vec::new(); k];
    for (row, &label) in labels.iter().enumerate() {
        rows_by_cluster[label as usize].push(row);
    }

    let mut union_find = UnionFind::new(labels.len());
    for rows in rows_by_cluster.iter().filter(|rows| rows.len() > 1) {
        let mut members = vectors.select(Axis(0), rows);
        for mut row in members.rows_mut() {
            let norm = row.dot(&row).sqrt();
            if norm > 0.0 {
                row /= norm;
            }
        }

        for start in (0..rows.len()).step_by(DUPLICATE_BLOCK) {
            let end = (start + DUPLICATE_BLOCK).min(rows.len());
            // Only pairs (i, j) with j > i: compare this block with itself and later rows.
            let later = members.slice(s![start.., ..]);
            let block = members.slice(s![start..end, ..]);
            let cosines = dot_rows(&block, &later);
            for (offset, cosine_row) in cosines.rows().into_iter().enumerate() {
                for (other_offset, &cosine) in cosine_row.iter().enumerate().skip(offset + 1) {
                    if cosine >= threshold {
                        union_find.union(rows[start + offset], rows[start + other_offset]);
                    }
                }
            }
        }
    }

    let mut groups_by_root: std::collections::BTreeMap<usize, Vec<usize>> = Default::default();
    for row in 0..labels.len() {
        let root = union_find.find(row);
        groups_by_root.entry(root).or_default().push(row);
    }
    let mut groups: Vec<Vec<usize>> = groups_by_root.into_values().filter(|group| group.len() > 1).collect();
    groups.sort_by(|a, b| b.len().cmp(&a.len()).then(a[0].cmp(&b[0])));
    groups
}
