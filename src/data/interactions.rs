//! Ratings over dense ids, held as parallel columns, and their sparse matrix forms.
//!
//! This is the common currency between the ETL, the splits, the models and the evaluator. It knows
//! nothing about files, ids as strings, or the command line.

use thiserror::Error;

/// Errors building interaction tables.
#[derive(Debug, Error, PartialEq)]
pub enum InteractionsError {
    #[error("columns have different lengths: {users} users, {items} items, {ratings} ratings")]
    LengthMismatch {
        users: usize,
        items: usize,
        ratings: usize,
    },
    #[error("timestamp column has {got} rows, expected {expected}")]
    TimestampLength { got: usize, expected: usize },
    #[error("{what} index {index} is out of range (there are {n} {what}s)")]
    OutOfRange {
        what: &'static str,
        index: u32,
        n: usize,
    },
    #[error("rating at row {row} is not finite")]
    NonFinite { row: usize },
}

/// Ratings as parallel columns: row `k` says user `user[k]` rated item `item[k]` with `rating[k]`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Interactions {
    pub user: Vec<u32>,
    pub item: Vec<u32>,
    pub rating: Vec<f32>,
    /// Unix seconds, when the source had them.
    pub timestamp: Option<Vec<i64>>,
    /// Size of the user id space (ids are `0..n_users`), not the number of distinct users present.
    pub n_users: usize,
    /// Size of the item id space.
    pub n_items: usize,
}

impl Interactions {
    /// Builds a table, checking column lengths, id ranges and that ratings are finite.
    pub fn new(
        user: Vec<u32>,
        item: Vec<u32>,
        rating: Vec<f32>,
        timestamp: Option<Vec<i64>>,
        n_users: usize,
        n_items: usize,
    ) -> Result<Self, InteractionsError> {
        if user.len() != item.len() || user.len() != rating.len() {
            return Err(InteractionsError::LengthMismatch {
                users: user.len(),
                items: item.len(),
                ratings: rating.len(),
            });
        }
        if let Some(ts) = &timestamp {
            if ts.len() != user.len() {
                return Err(InteractionsError::TimestampLength {
                    got: ts.len(),
                    expected: user.len(),
                });
            }
        }
        if let Some(&u) = user.iter().find(|&&u| u as usize >= n_users) {
            return Err(InteractionsError::OutOfRange {
                what: "user",
                index: u,
                n: n_users,
            });
        }
        if let Some(&i) = item.iter().find(|&&i| i as usize >= n_items) {
            return Err(InteractionsError::OutOfRange {
                what: "item",
                index: i,
                n: n_items,
            });
        }
        if let Some(row) = rating.iter().position(|r| !r.is_finite()) {
            return Err(InteractionsError::NonFinite { row });
        }
        Ok(Self {
            user,
            item,
            rating,
            timestamp,
            n_users,
            n_items,
        })
    }

    /// A table from `(user, item, rating)` rows, for tests.
    #[cfg(test)]
    pub(crate) fn from_rows(rows: &[(u32, u32, f32)], n_users: usize, n_items: usize) -> Self {
        Self::new(
            rows.iter().map(|r| r.0).collect(),
            rows.iter().map(|r| r.1).collect(),
            rows.iter().map(|r| r.2).collect(),
            None,
            n_users,
            n_items,
        )
        .expect("valid test rows")
    }

    pub fn len(&self) -> usize {
        self.user.len()
    }

    pub fn is_empty(&self) -> bool {
        self.user.is_empty()
    }

    /// The rows at `rows`, in that order, keeping the id spaces.
    pub fn select(&self, rows: &[usize]) -> Self {
        Self {
            user: rows.iter().map(|&k| self.user[k]).collect(),
            item: rows.iter().map(|&k| self.item[k]).collect(),
            rating: rows.iter().map(|&k| self.rating[k]).collect(),
            timestamp: self
                .timestamp
                .as_ref()
                .map(|ts| rows.iter().map(|&k| ts[k]).collect()),
            n_users: self.n_users,
            n_items: self.n_items,
        }
    }

    /// User-major sparse matrix (rows are users).
    pub fn by_user(&self) -> Csr {
        Csr::from_triples(
            self.n_users,
            self.n_items,
            &self.user,
            &self.item,
            &self.rating,
        )
    }

    /// Item-major sparse matrix (rows are items).
    pub fn by_item(&self) -> Csr {
        Csr::from_triples(
            self.n_items,
            self.n_users,
            &self.item,
            &self.user,
            &self.rating,
        )
    }
}

/// Compressed sparse rows. Within a row, columns are sorted ascending; the CSC form of a matrix is
/// the CSR of its transpose.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Csr {
    pub n_rows: usize,
    pub n_cols: usize,
    pub indptr: Vec<usize>,
    pub indices: Vec<u32>,
    pub values: Vec<f32>,
}

impl Csr {
    /// Builds from coordinate triples by a counting sort (O(nnz + rows)); duplicates are kept.
    pub fn from_triples(
        n_rows: usize,
        n_cols: usize,
        rows: &[u32],
        cols: &[u32],
        vals: &[f32],
    ) -> Self {
        let mut indptr = vec![0usize; n_rows + 1];
        for &r in rows {
            indptr[r as usize + 1] += 1;
        }
        for r in 0..n_rows {
            indptr[r + 1] += indptr[r];
        }
        let nnz = rows.len();
        let mut next = indptr.clone();
        let mut indices = vec![0u32; nnz];
        let mut values = vec![0f32; nnz];
        for k in 0..nnz {
            let r = rows[k] as usize;
            let at = next[r];
            indices[at] = cols[k];
            values[at] = vals[k];
            next[r] += 1;
        }
        let mut m = Self {
            n_rows,
            n_cols,
            indptr,
            indices,
            values,
        };
        m.sort_rows();
        m
    }

    fn sort_rows(&mut self) {
        for r in 0..self.n_rows {
            let (s, e) = (self.indptr[r], self.indptr[r + 1]);
            let idx = &self.indices[s..e];
            if idx.windows(2).all(|w| w[0] <= w[1]) {
                continue;
            }
            let mut pairs: Vec<(u32, f32)> = idx
                .iter()
                .copied()
                .zip(self.values[s..e].iter().copied())
                .collect();
            pairs.sort_by_key(|p| p.0);
            for (k, (c, v)) in pairs.into_iter().enumerate() {
                self.indices[s + k] = c;
                self.values[s + k] = v;
            }
        }
    }

    pub fn nnz(&self) -> usize {
        self.indices.len()
    }

    /// Column indices and values of row `r`.
    pub fn row(&self, r: usize) -> (&[u32], &[f32]) {
        let (s, e) = (self.indptr[r], self.indptr[r + 1]);
        (&self.indices[s..e], &self.values[s..e])
    }

    pub fn row_len(&self, r: usize) -> usize {
        self.indptr[r + 1] - self.indptr[r]
    }

    /// The transpose, also in CSR form (so the CSC of `self`).
    pub fn transpose(&self) -> Csr {
        let mut rows = Vec::with_capacity(self.nnz());
        for r in 0..self.n_rows {
            rows.extend(std::iter::repeat_n(r as u32, self.row_len(r)));
        }
        Csr::from_triples(self.n_cols, self.n_rows, &self.indices, &rows, &self.values)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csr_rows_are_sorted_and_transpose_round_trips() {
        let m = Csr::from_triples(2, 3, &[1, 0, 1, 0], &[2, 1, 0, 0], &[1.0, 2.0, 3.0, 4.0]);
        assert_eq!(m.row(0), (&[0u32, 1][..], &[4.0f32, 2.0][..]));
        assert_eq!(m.row(1), (&[0u32, 2][..], &[3.0f32, 1.0][..]));
        assert_eq!(m.transpose().transpose(), m);
        assert_eq!(m.transpose().row(0), (&[0u32, 1][..], &[4.0f32, 3.0][..]));
    }

    #[test]
    fn new_rejects_out_of_range_ids() {
        let e = Interactions::new(vec![3], vec![0], vec![1.0], None, 3, 1).unwrap_err();
        assert!(matches!(
            e,
            InteractionsError::OutOfRange { what: "user", .. }
        ));
    }

    #[test]
    fn new_rejects_mismatched_columns() {
        assert!(Interactions::new(vec![0, 1], vec![0], vec![1.0], None, 2, 1).is_err());
    }
}
