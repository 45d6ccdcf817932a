//! Full-catalogue top-K: every user's K best items by the dot product of factor rows.
//!
//! Scores are computed block by block through BLAS `sgemm` (ndarray's `general_mat_mul` on `f32`)
//! and reduced to K items right away, so the score matrix is never held whole: each worker holds
//! one tile of `block_users × item_tile` scores, sized to stay in the core's cache, so the matrix
//! product writes and the selection reads the same hot memory. Blocks of users run in parallel on
//! rayon's current pool; BLAS itself should be single-threaded (the caller's job, e.g.
//! `OPENBLAS_NUM_THREADS=1`), otherwise the two thread pools fight over the cores.
//!
//! Selection rules: a user's training items (a row of a user-major [`Csr`]) are never candidates;
//! ties are broken by item index, ascending; a score that is NaN or `-inf` is never recommended.
//! Results are the same for any thread count and block shape. This module knows nothing about
//! which model made the factors, about ratings or about metrics.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

use ndarray::linalg::general_mat_mul;
use ndarray::{s, Array2, ArrayView2, ArrayViewMut2, Axis};
// ndarray's `blas` feature calls `cblas_sgemm` but links no library; naming the crate links the
// OpenBLAS that ndarray-linalg's `openblas-system` feature brings.
use ndarray_linalg as _;
use rayon::prelude::*;
use thiserror::Error;

use crate::data::interactions::Csr;

/// Default bytes of scores per worker: half of a 1 MiB L2 cache, so a tile survives between the
/// product that writes it and the selection that reads it.
pub const DEFAULT_TILE_BYTES: usize = 512 * 1024;

/// Errors from the top-K scorer.
#[derive(Debug, Error, PartialEq)]
pub enum TopKError {
    #[error(
        "user factors have rank `{user_rank}` but item factors have rank `{item_rank}`; \
         both must come from the same model"
    )]
    RankMismatch { user_rank: usize, item_rank: usize },
    #[error("user index `{user}` is out of range: the model has {n_users} user factor rows")]
    UserOutOfRange { user: u32, n_users: usize },
}

/// Block shape of the scorer. The defaults suit any size; results do not depend on the shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TopKOptions {
    /// Users per block (one parallel task). Larger blocks repack the item factors less often.
    pub block_users: usize,
    /// Items per score tile. `block_users × item_tile × 4` bytes are held per worker.
    pub item_tile: usize,
}

impl Default for TopKOptions {
    fn default() -> Self {
        Self::from_tile_bytes(DEFAULT_TILE_BYTES)
    }
}

impl TopKOptions {
    /// 512 users per block (enough to amortize BLAS packing of the item tile) and as many items
    /// per tile as `bytes` of scores allow, at least 64.
    pub fn from_tile_bytes(bytes: usize) -> Self {
        let block_users = 512;
        let item_tile = (bytes / (4 * block_users)).max(64);
        Self {
            block_users,
            item_tile,
        }
    }
}

/// The `k` best items for each of `users` (rows of `user_factors`) among the rows of
/// `item_factors`, skipping each user's row of `exclude` when given. Each list is sorted by score
/// descending, then item index ascending, and is shorter than `k` only when fewer candidates
/// exist. Output order follows `users`.
pub fn top_k(
    user_factors: ArrayView2<f32>,
    item_factors: ArrayView2<f32>,
    users: &[u32],
    exclude: Option<&Csr>,
    k: usize,
) -> Result<Vec<Vec<(u32, f32)>>, TopKError> {
    top_k_with(
        user_factors,
        item_factors,
        users,
        exclude,
        k,
        TopKOptions::default(),
    )
}

/// [`top_k`] with an explicit block shape.
pub fn top_k_with(
    user_factors: ArrayView2<f32>,
    item_factors: ArrayView2<f32>,
    users: &[u32],
    exclude: Option<&Csr>,
    k: usize,
    options: TopKOptions,
) -> Result<Vec<Vec<(u32, f32)>>, TopKError> {
    let mut out = Vec::with_capacity(users.len());
    for_each_top_k(
        user_factors,
        item_factors,
        users,
        exclude,
        k,
        options,
        |_, list| {
            out.push(list);
            Ok::<(), TopKError>(())
        },
    )?;
    Ok(out)
}

/// Streaming form of [`top_k`]: calls `sink(user, list)` for each of `users`, in order, while
/// later blocks are still to be scored, so results for all users (for example to write a file)
/// never need to be held at once. Stops at the first error `sink` returns.
pub fn for_each_top_k<E: From<TopKError>>(
    user_factors: ArrayView2<f32>,
    item_factors: ArrayView2<f32>,
    users: &[u32],
    exclude: Option<&Csr>,
    k: usize,
    options: TopKOptions,
    mut sink: impl FnMut(u32, Vec<(u32, f32)>) -> Result<(), E>,
) -> Result<(), E> {
    let rank = user_factors.ncols();
    if item_factors.ncols() != rank {
        return Err(TopKError::RankMismatch {
            user_rank: rank,
            item_rank: item_factors.ncols(),
        }
        .into());
    }
    if let Some(&user) = users.iter().find(|&&u| u as usize >= user_factors.nrows()) {
        return Err(TopKError::UserOutOfRange {
            user,
            n_users: user_factors.nrows(),
        }
        .into());
    }
    let n_items = item_factors.nrows();
    if k == 0 || n_items == 0 {
        for &u in users {
            sink(u, Vec::new())?;
        }
        return Ok(());
    }
    // BLAS wants one unit stride; copy only when the view has none.
    let items = item_factors.as_standard_layout();
    let block_users = options.block_users.max(1);
    let item_tile = options.item_tile.max(1);
    let blocks: Vec<&[u32]> = users.chunks(block_users).collect();
    // A wave is a few blocks per thread: enough for load balance, few enough to stream.
    let wave = 4 * rayon::current_num_threads().max(1);
    for group in blocks.chunks(wave) {
        let results: Vec<Vec<Vec<(u32, f32)>>> = group
            .par_iter()
            .map_init(
                || Array2::<f32>::zeros((block_users, item_tile.min(n_items))),
                |scores, block| {
                    score_block(
                        user_factors,
                        items.view(),
                        block,
                        exclude,
                        k,
                        item_tile,
                        scores,
                    )
                },
            )
            .collect();
        for (block, lists) in group.iter().zip(results) {
            for (&u, list) in block.iter().zip(lists) {
                sink(u, list)?;
            }
        }
    }
    Ok(())
}

/// [`for_each_top_k`] for models scored by a function instead of factors: `score(block, out)`
/// fills one row of `out` per user of `block` with a score for every item. Blocks are sized so a
/// worker's scores stay near `options`' tile bytes (at least one user) and run in parallel; the
/// selection rules are the same.
pub fn for_each_top_k_scored<E>(
    score: &(dyn Fn(&[u32], ArrayViewMut2<'_, f32>) + Sync),
    n_items: usize,
    users: &[u32],
    exclude: Option<&Csr>,
    k: usize,
    options: TopKOptions,
    mut sink: impl FnMut(u32, Vec<(u32, f32)>) -> Result<(), E>,
) -> Result<(), E> {
    if k == 0 || n_items == 0 {
        for &u in users {
            sink(u, Vec::new())?;
        }
        return Ok(());
    }
    let bytes = 4 * options.block_users.max(1) * options.item_tile.max(1);
    let block_users = (bytes / (4 * n_items)).clamp(1, 512);
    let blocks: Vec<&[u32]> = users.chunks(block_users).collect();
    let wave = 4 * rayon::current_num_threads().max(1);
    for group in blocks.chunks(wave) {
        let results: Vec<Vec<Vec<(u32, f32)>>> = group
            .par_iter()
            .map_init(
                || Array2::<f32>::zeros((block_users, n_items)),
                |scores, block| {
                    let mut out = scores.slice_mut(s![..block.len(), ..]);
                    score(block, out.view_mut());
                    out.outer_iter_mut()
                        .zip(block.iter())
                        .map(|(mut row, &u)| {
                            let row = row.as_slice_mut().unwrap_or(&mut []);
                            if let Some(csr) = exclude.filter(|c| (u as usize) < c.n_rows) {
                                for &i in csr.row(u as usize).0 {
                                    if let Some(x) = row.get_mut(i as usize) {
                                        *x = f32::NEG_INFINITY;
                                    }
                                }
                            }
                            let mut top = TopK::new(k);
                            top.scan(row, 0);
                            top.into_sorted()
                        })
                        .collect()
                },
            )
            .collect();
        for (block, lists) in group.iter().zip(results) {
            for (&u, list) in block.iter().zip(lists) {
                sink(u, list)?;
            }
        }
    }
    Ok(())
}

/// Top-K for one block of users, tile by tile over the items.
fn score_block(
    user_factors: ArrayView2<f32>,
    items: ArrayView2<f32>,
    block: &[u32],
    exclude: Option<&Csr>,
    k: usize,
    item_tile: usize,
    scores: &mut Array2<f32>,
) -> Vec<Vec<(u32, f32)>> {
    let b = block.len();
    let n_items = items.nrows();
    let u_block = user_factors.select(
        Axis(0),
        &block.iter().map(|&u| u as usize).collect::<Vec<_>>(),
    );
    let mut heaps: Vec<TopK> = (0..b).map(|_| TopK::new(k)).collect();
    let seen: Vec<&[u32]> = block
        .iter()
        .map(|&u| match exclude {
            Some(csr) if (u as usize) < csr.n_rows => csr.row(u as usize).0,
            _ => &[],
        })
        .collect();
    let mut start = 0;
    while start < n_items {
        let end = (start + item_tile).min(n_items);
        let mut c = scores.slice_mut(s![..b, ..end - start]);
        general_mat_mul(
            1.0,
            &u_block,
            &items.slice(s![start..end, ..]).t(),
            0.0,
            &mut c,
        );
        for (r, mut row) in c.outer_iter_mut().enumerate() {
            let row = match row.as_slice_mut() {
                Some(row) => row,
                // Unreachable for the standard-layout buffer; a skipped row would only lose hits.
                None => continue,
            };
            // Mask this tile's training items so the scan needs no per-item check.
            let ex = seen[r];
            let from = ex.partition_point(|&i| (i as usize) < start);
            for &i in ex[from..].iter().take_while(|&&i| (i as usize) < end) {
                row[i as usize - start] = f32::NEG_INFINITY;
            }
            heaps[r].scan(row, start as u32);
        }
        start = end;
    }
    heaps.into_iter().map(TopK::into_sorted).collect()
}

/// A heap entry ordered so that the heap's top is the worst kept item: lowest score, then
/// highest index.
#[derive(Debug, Clone, Copy)]
struct Worst(f32, u32);

impl PartialEq for Worst {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Worst {}
impl PartialOrd for Worst {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Worst {
    fn cmp(&self, other: &Self) -> Ordering {
        other.0.total_cmp(&self.0).then(self.1.cmp(&other.1))
    }
}

/// The K best (score, index) pairs seen so far. Shared with the server's scorer.
pub(crate) struct TopK {
    k: usize,
    heap: BinaryHeap<Worst>,
    /// Score an item must beat to enter: the worst kept score once full, `-inf` before.
    threshold: f32,
}

/// Scores checked per branch in [`TopK::scan`]: one vectorized compare over the chunk decides
/// whether any of them can enter, which is rare once the heap is full.
const SCAN_CHUNK: usize = 64;

impl TopK {
    pub(crate) fn new(k: usize) -> Self {
        Self {
            k,
            // A request's K is user-controlled: do not reserve more than a sane heap up front.
            heap: BinaryHeap::with_capacity(k.min(4096) + 1),
            threshold: f32::NEG_INFINITY,
        }
    }

    /// Offers `row[j]` as item `offset + j`, for `j` ascending. Strict `>` keeps the lower index
    /// on a tie, since lower indices are offered first; NaN and `-inf` never pass.
    pub(crate) fn scan(&mut self, row: &[f32], offset: u32) {
        if self.k == 0 {
            return;
        }
        let mut base = offset;
        for chunk in row.chunks(SCAN_CHUNK) {
            let t = self.threshold;
            let any = chunk.iter().fold(false, |a, &s| a | (s > t));
            if any {
                for (j, &s) in chunk.iter().enumerate() {
                    if s > self.threshold {
                        self.push(s, base + j as u32);
                    }
                }
            }
            base += chunk.len() as u32;
        }
    }

    fn push(&mut self, score: f32, item: u32) {
        self.heap.push(Worst(score, item));
        if self.heap.len() > self.k {
            self.heap.pop();
        }
        if self.heap.len() == self.k {
            if let Some(w) = self.heap.peek() {
                self.threshold = w.0;
            }
        }
    }

    /// Best first: score descending, then index ascending.
    pub(crate) fn into_sorted(self) -> Vec<(u32, f32)> {
        // Ascending `Worst` order is best first.
        self.heap
            .into_sorted_vec()
            .into_iter()
            .map(|w| (w.1, w.0))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array2;
    use proptest::prelude::*;

    /// Sorts every candidate: the definition the scorer must match.
    fn brute_force(
        u: &Array2<f32>,
        v: &Array2<f32>,
        users: &[u32],
        exclude: Option<&Csr>,
        k: usize,
    ) -> Vec<Vec<(u32, f32)>> {
        users
            .iter()
            .map(|&user| {
                let seen = exclude.map_or(&[][..], |c| c.row(user as usize).0);
                let mut all: Vec<(u32, f32)> = (0..v.nrows() as u32)
                    .filter(|i| !seen.contains(i))
                    .map(|i| (i, u.row(user as usize).dot(&v.row(i as usize))))
                    .filter(|p| p.1 > f32::NEG_INFINITY)
                    .collect();
                all.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
                all.truncate(k);
                all
            })
            .collect()
    }

    #[test]
    fn ties_are_broken_by_item_index() {
        // Every item scores 1.
        let u = Array2::from_elem((1, 2), 1.0f32);
        let v = Array2::from_shape_vec((5, 2), vec![0.5; 10]).unwrap();
        let got = top_k(u.view(), v.view(), &[0], None, 3).unwrap();
        assert_eq!(got, vec![vec![(0, 1.0), (1, 1.0), (2, 1.0)]]);
    }

    #[test]
    fn training_items_are_excluded_but_others_kept() {
        let u = Array2::from_shape_vec((2, 1), vec![1.0f32, -1.0]).unwrap();
        let v = Array2::from_shape_vec((4, 1), vec![4.0f32, 3.0, 2.0, 1.0]).unwrap();
        let ex = Csr::from_triples(2, 4, &[0, 0, 1], &[0, 2, 3], &[1.0; 3]);
        let got = top_k(u.view(), v.view(), &[0, 1], Some(&ex), 10).unwrap();
        assert_eq!(got[0], vec![(1, 3.0), (3, 1.0)]);
        assert_eq!(got[1], vec![(2, -2.0), (1, -3.0), (0, -4.0)]);
    }

    #[test]
    fn rank_mismatch_and_unknown_users_are_errors() {
        let u = Array2::<f32>::zeros((2, 3));
        let v = Array2::<f32>::zeros((4, 2));
        assert!(matches!(
            top_k(u.view(), v.view(), &[0], None, 1),
            Err(TopKError::RankMismatch { .. })
        ));
        let v = Array2::<f32>::zeros((4, 3));
        assert_eq!(
            top_k(u.view(), v.view(), &[2], None, 1),
            Err(TopKError::UserOutOfRange {
                user: 2,
                n_users: 2
            })
        );
    }

    #[test]
    fn zero_rank_and_zero_k_give_index_order_and_empty_lists() {
        let u = Array2::<f32>::zeros((1, 0));
        let v = Array2::<f32>::zeros((3, 0));
        let got = top_k(u.view(), v.view(), &[0], None, 2).unwrap();
        assert_eq!(got, vec![vec![(0, 0.0), (1, 0.0)]]);
        let got = top_k(u.view(), v.view(), &[0, 0], None, 0).unwrap();
        assert_eq!(got, vec![vec![], vec![]]);
    }

    #[test]
    fn nan_and_negative_infinity_scores_are_never_recommended() {
        let u = Array2::from_shape_vec((1, 1), vec![1.0f32]).unwrap();
        let v = Array2::from_shape_vec((3, 1), vec![f32::NAN, f32::NEG_INFINITY, 2.0]).unwrap();
        let got = top_k(u.view(), v.view(), &[0], None, 3).unwrap();
        assert_eq!(got, vec![vec![(2, 2.0)]]);
    }

    #[test]
    fn streaming_visits_users_in_order_and_stops_on_error() {
        let u = Array2::from_shape_fn((6, 2), |(i, j)| (i + j) as f32);
        let v = Array2::from_shape_fn((5, 2), |(i, j)| (i * j) as f32);
        let users = [5, 0, 3, 3, 1];
        let opts = TopKOptions {
            block_users: 2,
            item_tile: 2,
        };
        let mut seen = Vec::new();
        for_each_top_k(u.view(), v.view(), &users, None, 2, opts, |user, _| {
            seen.push(user);
            Ok::<(), TopKError>(())
        })
        .unwrap();
        assert_eq!(seen, users);
        let mut calls = 0;
        let r = for_each_top_k(u.view(), v.view(), &users, None, 2, opts, |_, _| {
            calls += 1;
            if calls == 2 {
                Err(TopKError::RankMismatch {
                    user_rank: 0,
                    item_rank: 0,
                })
            } else {
                Ok(())
            }
        });
        assert!(r.is_err());
        assert_eq!(calls, 2);
    }

    fn arb_case(
    ) -> impl Strategy<Value = (Array2<f32>, Array2<f32>, Vec<u32>, Csr, usize, TopKOptions)> {
        (1usize..7, 1usize..40, 0usize..4).prop_flat_map(|(nu, ni, f)| {
            (
                // Small integer factors make exact ties common.
                proptest::collection::vec(-2i8..=2, nu * f),
                proptest::collection::vec(-2i8..=2, ni * f),
                proptest::collection::vec(0..nu as u32, 0..10),
                proptest::collection::vec((0..nu as u32, 0..ni as u32), 0..40),
                0usize..12,
                1usize..9,
                1usize..50,
            )
                .prop_map(move |(uf, vf, users, seen, k, bu, tile)| {
                    let u =
                        Array2::from_shape_vec((nu, f), uf.into_iter().map(f32::from).collect())
                            .unwrap();
                    let v =
                        Array2::from_shape_vec((ni, f), vf.into_iter().map(f32::from).collect())
                            .unwrap();
                    let (r, c): (Vec<u32>, Vec<u32>) = seen.into_iter().unzip();
                    let ex = Csr::from_triples(nu, ni, &r, &c, &vec![1.0; r.len()]);
                    let opts = TopKOptions {
                        block_users: bu,
                        item_tile: tile,
                    };
                    (u, v, users, ex, k, opts)
                })
        })
    }

    proptest! {
        #[test]
        fn top_k_matches_brute_force_with_ties_and_exclusions(
            (u, v, users, ex, k, opts) in arb_case()
        ) {
            let got = top_k_with(u.view(), v.view(), &users, Some(&ex), k, opts).unwrap();
            prop_assert_eq!(got, brute_force(&u, &v, &users, Some(&ex), k));
            let got = top_k_with(u.view(), v.view(), &users, None, k, opts).unwrap();
            prop_assert_eq!(got, brute_force(&u, &v, &users, None, k));
        }
    }

    #[test]
    fn top_k_matches_brute_force_on_blas_sized_blocks() {
        // Above ndarray's BLAS cutoff, so sgemm is used, with an F-ordered item view.
        let u = Array2::from_shape_fn((300, 16), |(i, j)| ((i * 7 + j * 3) % 11) as f32 - 5.0);
        let v = Array2::from_shape_fn((16, 500), |(j, i)| ((i * 5 + j) % 13) as f32 - 6.0);
        let v = v.t();
        let users: Vec<u32> = (0..300).rev().collect();
        let rows: Vec<u32> = (0..300u32).flat_map(|r| [r, r]).collect();
        let cols: Vec<u32> = (0..300u32).flat_map(|r| [r % 500, (r * 3) % 500]).collect();
        let ex = Csr::from_triples(300, 500, &rows, &cols, &vec![1.0; rows.len()]);
        let opts = TopKOptions {
            block_users: 70,
            item_tile: 128,
        };
        let got = top_k_with(u.view(), v, &users, Some(&ex), 10, opts).unwrap();
        let want = brute_force(&u, &v.to_owned(), &users, Some(&ex), 10);
        assert_eq!(got, want);
    }
}
