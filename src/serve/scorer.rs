//! The scoring threads: every query computes its own scores, and queries that arrive while the
//! threads are busy are scored together in one matrix product.
//!
//! A query is "the K best rows of a candidate matrix for this vector, minus these rows": a user's
//! recommendations (user factors against item factors, minus the training items when asked) or an
//! item's neighbours (its unit vector against all unit item vectors, minus itself). Each thread
//! takes everything queued (up to [`MAX_BATCH`]), scores each group of same-model, same-kind
//! queries with one BLAS `sgemm` per tile of candidates (one `sgemv` for a lone query) and selects
//! each query's K best. Grouping changes no answer: a query's scores are the same dot products
//! whatever else is in its batch. Scoring stays off the async reactor, and a client that has gone
//! away (timed out, disconnected) is not scored. Ties are broken by index, ascending; NaN and
//! `-inf` scores are never returned. Knows nothing about HTTP or ids as strings.

use std::collections::VecDeque;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;

use ndarray::linalg::{general_mat_mul, general_mat_vec_mul};
use ndarray::{s, ArrayView2, ArrayViewMut2};
use thiserror::Error;
use tokio::sync::oneshot;

use super::model::ServingModel;
use crate::eval::topk::TopK;

/// Most queries scored in one product. Larger batches amortize reading the candidate matrix
/// further but make the first query in a batch wait for the last.
pub const MAX_BATCH: usize = 64;

/// Queries waiting beyond this many are refused (`503`), so an overload shows up as errors the
/// client can back off from instead of unbounded memory and latency.
pub const MAX_QUEUE: usize = 16_384;

/// Bytes of scores per tile in a batch: the tile stays in the core's L2 cache between the
/// product that writes it and the selection that reads it.
const TILE_BYTES: usize = 512 * 1024;

/// A ranked list: (row index, score), best first.
pub type Ranked = Vec<(u32, f32)>;

/// Why a query got no answer.
#[derive(Debug, Clone, Copy, Error, PartialEq, Eq)]
pub enum ScoreError {
    #[error("the server is overloaded ({MAX_QUEUE} queries waiting); retry later")]
    Overloaded,
    #[error("the server is shutting down")]
    Closed,
}

/// What to score.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueryKind {
    /// User `user`'s best items; the user's training items are left out when `exclude_seen`.
    User { user: u32, exclude_seen: bool },
    /// The items most similar to `item` by cosine, `item` itself left out.
    Similar { item: u32 },
}

struct Query {
    model: Arc<ServingModel>,
    kind: QueryKind,
    k: usize,
    reply: oneshot::Sender<Ranked>,
}

#[derive(Default)]
struct Queue {
    jobs: VecDeque<Query>,
    closed: bool,
    /// Threads waiting for work: a submit wakes one only when there is one to wake (a busy
    /// thread picks the query up with its next batch).
    idle: usize,
    /// Batches scored and queries in them, for the mean batch size in `/metrics`.
    batches: u64,
    batched: u64,
}

struct Shared {
    queue: Mutex<Queue>,
    ready: Condvar,
}

impl Shared {
    /// The queue, even if a thread panicked while holding it: the queue itself stays consistent
    /// (every mutation is a single push, drain or flag).
    fn lock(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A pool of scoring threads fed by one queue.
pub struct Scorer {
    shared: Arc<Shared>,
    workers: Vec<JoinHandle<()>>,
}

impl std::fmt::Debug for Scorer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scorer")
            .field("threads", &self.workers.len())
            .finish()
    }
}

impl Scorer {
    /// Starts `threads` scoring threads (at least one). BLAS is made single-threaded: the
    /// parallelism is across queries.
    pub fn new(threads: usize) -> Self {
        crate::model::als::linalg::blas_single_threaded();
        let shared = Arc::new(Shared {
            queue: Mutex::new(Queue::default()),
            ready: Condvar::new(),
        });
        let workers = (0..threads.max(1))
            .filter_map(|n| {
                let shared = Arc::clone(&shared);
                std::thread::Builder::new()
                    .name(format!("recflow-score-{n}"))
                    .spawn(move || worker(&shared))
                    .ok()
            })
            .collect();
        Self { shared, workers }
    }

    pub fn threads(&self) -> usize {
        self.workers.len()
    }

    /// Queues a query; the answer arrives on the returned channel.
    pub fn submit(
        &self,
        model: Arc<ServingModel>,
        kind: QueryKind,
        k: usize,
    ) -> Result<oneshot::Receiver<Ranked>, ScoreError> {
        let (reply, rx) = oneshot::channel();
        let mut q = self.shared.lock();
        if q.closed || self.workers.is_empty() {
            return Err(ScoreError::Closed);
        }
        if q.jobs.len() >= MAX_QUEUE {
            return Err(ScoreError::Overloaded);
        }
        q.jobs.push_back(Query {
            model,
            kind,
            k,
            reply,
        });
        let wake = q.idle > 0;
        drop(q);
        if wake {
            self.shared.ready.notify_one();
        }
        Ok(rx)
    }

    /// Scores one query.
    pub async fn score(
        &self,
        model: Arc<ServingModel>,
        kind: QueryKind,
        k: usize,
    ) -> Result<Ranked, ScoreError> {
        let rx = self.submit(model, kind, k)?;
        rx.await.map_err(|_| ScoreError::Closed)
    }

    /// Queries waiting for a thread.
    pub fn queued(&self) -> usize {
        self.shared.lock().jobs.len()
    }

    /// Batches taken so far and the queries they held.
    pub fn batch_counts(&self) -> (u64, u64) {
        let q = self.shared.lock();
        (q.batches, q.batched)
    }
}

impl Drop for Scorer {
    fn drop(&mut self) {
        self.shared.lock().closed = true;
        self.shared.ready.notify_all();
        for w in self.workers.drain(..) {
            let _ = w.join();
        }
    }
}

fn worker(shared: &Shared) {
    let mut scratch = Vec::new();
    loop {
        let batch: Vec<Query> = {
            let mut q = shared.lock();
            while q.jobs.is_empty() && !q.closed {
                q.idle += 1;
                q = shared.ready.wait(q).unwrap_or_else(|e| e.into_inner());
                q.idle -= 1;
            }
            if q.jobs.is_empty() {
                return;
            }
            let n = q.jobs.len().min(MAX_BATCH);
            q.batches += 1;
            q.batched += n as u64;
            q.jobs.drain(..n).collect()
        };
        // Nobody waits for these any more.
        let mut batch: Vec<Query> = batch.into_iter().filter(|q| !q.reply.is_closed()).collect();
        while !batch.is_empty() {
            let first = &batch[0];
            let (model, similar) = (Arc::clone(&first.model), is_similar(first.kind));
            let (group, rest): (Vec<Query>, Vec<Query>) = batch
                .into_iter()
                .partition(|q| Arc::ptr_eq(&q.model, &model) && is_similar(q.kind) == similar);
            batch = rest;
            // A bug in scoring must cost its queries (their senders drop: the handler answers
            // 500), never the thread.
            let answers = catch_unwind(AssertUnwindSafe(|| {
                score_group(&model, &group, &mut scratch)
            }));
            if let Ok(answers) = answers {
                for (q, a) in group.into_iter().zip(answers) {
                    let _ = q.reply.send(a);
                }
            }
        }
    }
}

fn is_similar(kind: QueryKind) -> bool {
    matches!(kind, QueryKind::Similar { .. })
}

/// Scores queries of one kind against one model.
fn score_group(model: &ServingModel, group: &[Query], scratch: &mut Vec<f32>) -> Vec<Ranked> {
    let rows: Vec<usize> = group
        .iter()
        .map(|q| match q.kind {
            QueryKind::User { user, .. } => user as usize,
            QueryKind::Similar { item } => item as usize,
        })
        .collect();
    let similar = matches!(
        group.first().map(|q| q.kind),
        Some(QueryKind::Similar { .. })
    );
    if similar && model.item_unit.is_none() {
        // Item-item families know their neighbours.
        return group
            .iter()
            .zip(&rows)
            .map(|(q, &i)| model.model.similar_items(i as u32, q.k))
            .collect();
    }
    // `Similar` leaves out its own row.
    let own: Vec<[u32; 1]> = rows.iter().map(|&r| [r as u32]).collect();
    let excludes: Vec<&[u32]> = group
        .iter()
        .zip(&own)
        .map(|(q, own)| match q.kind {
            QueryKind::User {
                user,
                exclude_seen: true,
            } => model.seen_items(user),
            QueryKind::User { .. } => &[],
            QueryKind::Similar { .. } => &own[..],
        })
        .collect();
    let ks: Vec<usize> = group.iter().map(|q| q.k).collect();
    let factors = if similar {
        model.item_unit.as_ref().map(|u| (u.view(), u.view()))
    } else {
        model.factors()
    };
    let Some((vectors, candidates)) = factors else {
        // Families scored block by block: one score row per query.
        let users: Vec<u32> = rows.iter().map(|&r| r as u32).collect();
        if users.iter().any(|&u| u as usize >= model.model.n_users()) {
            return vec![Vec::new(); group.len()];
        }
        let mut scores = ndarray::Array2::<f32>::zeros((users.len(), model.model.n_items()));
        model
            .model
            .score_block(&users, &model.seen, scores.view_mut());
        return scores
            .outer_iter_mut()
            .enumerate()
            .map(|(q, mut row)| {
                let row = row.as_slice_mut().unwrap_or(&mut []);
                let n = row.len();
                mask(row, excludes[q], 0, n);
                let mut heap = TopK::new(ks[q]);
                heap.scan(row, 0);
                heap.into_sorted()
            })
            .collect();
    };
    if rows.iter().any(|&r| r >= vectors.nrows()) {
        // Ids are checked by the handlers; an index past the end means a mismatched model.
        return vec![Vec::new(); group.len()];
    }
    let queries = vectors.select(ndarray::Axis(0), &rows);
    top_k_batch(queries.view(), candidates, &excludes, &ks, scratch)
}

/// For each row `q` of `queries`, the `ks[q]` best rows of `candidates` by dot product, leaving
/// out the (ascending) indices in `excludes[q]`. Best first: score descending, index ascending.
pub fn top_k_batch(
    queries: ArrayView2<f32>,
    candidates: ArrayView2<f32>,
    excludes: &[&[u32]],
    ks: &[usize],
    scratch: &mut Vec<f32>,
) -> Vec<Ranked> {
    let b = queries.nrows();
    let n = candidates.nrows();
    let mut heaps: Vec<TopK> = (0..b)
        .map(|q| TopK::new(ks.get(q).copied().unwrap_or(0)))
        .collect();
    if n == 0 || b == 0 || queries.ncols() != candidates.ncols() {
        return heaps.into_iter().map(TopK::into_sorted).collect();
    }
    let exclude = |q: usize| excludes.get(q).copied().unwrap_or(&[]);
    if b == 1 {
        // One query: a matrix-vector product over all candidates (N floats fit in L2).
        scratch.resize(n, 0.0);
        let mut out = ndarray::ArrayViewMut1::from(&mut scratch[..n]);
        general_mat_vec_mul(1.0, &candidates, &queries.row(0), 0.0, &mut out);
        mask(&mut scratch[..n], exclude(0), 0, n);
        heaps[0].scan(&scratch[..n], 0);
    } else {
        let tile = (TILE_BYTES / (4 * b)).max(64).min(n);
        scratch.resize(b * tile, 0.0);
        let mut start = 0;
        while start < n {
            let end = (start + tile).min(n);
            let w = end - start;
            let Ok(mut c) = ArrayViewMut2::from_shape((b, w), &mut scratch[..b * w]) else {
                break;
            };
            general_mat_mul(
                1.0,
                &queries,
                &candidates.slice(s![start..end, ..]).t(),
                0.0,
                &mut c,
            );
            for (q, heap) in heaps.iter_mut().enumerate() {
                let row = &mut scratch[q * w..(q + 1) * w];
                mask(row, exclude(q), start, end);
                heap.scan(row, start as u32);
            }
            start = end;
        }
    }
    heaps.into_iter().map(TopK::into_sorted).collect()
}

/// Sets the scores of excluded items in `start..end` to `-inf` (`row[0]` is item `start`).
fn mask(row: &mut [f32], excluded: &[u32], start: usize, end: usize) {
    let from = excluded.partition_point(|&i| (i as usize) < start);
    for &i in excluded[from..].iter().take_while(|&&i| (i as usize) < end) {
        row[i as usize - start] = f32::NEG_INFINITY;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::{Array2, ArrayView1};
    use proptest::prelude::*;

    /// Sorts every candidate: the definition the scorer must match.
    fn brute_force(q: ArrayView1<f32>, c: ArrayView2<f32>, ex: &[u32], k: usize) -> Ranked {
        let s = c.dot(&q);
        let mut all: Ranked = (0..c.nrows() as u32)
            .filter(|i| !ex.contains(i))
            .map(|i| (i, s[i as usize]))
            .filter(|p| p.1 > f32::NEG_INFINITY)
            .collect();
        all.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        all.truncate(k);
        all
    }

    #[test]
    fn ties_are_broken_by_index_ascending() {
        let q = Array2::from_elem((1, 2), 1.0f32);
        let c = Array2::from_elem((5, 2), 0.5f32);
        let got = top_k_batch(q.view(), c.view(), &[&[1]], &[3], &mut Vec::new());
        assert_eq!(got, vec![vec![(0, 1.0), (2, 1.0), (3, 1.0)]]);
    }

    #[test]
    fn excluded_rows_are_never_returned_and_short_lists_are_allowed() {
        let q = Array2::from_shape_vec((2, 1), vec![1.0f32, -1.0]).unwrap();
        let c = Array2::from_shape_vec((4, 1), vec![4.0f32, 3.0, 2.0, 1.0]).unwrap();
        let got = top_k_batch(
            q.view(),
            c.view(),
            &[&[0, 2], &[3]],
            &[10, 2],
            &mut Vec::new(),
        );
        assert_eq!(got[0], vec![(1, 3.0), (3, 1.0)]);
        assert_eq!(got[1], vec![(2, -2.0), (1, -3.0)]);
    }

    #[test]
    fn zero_k_gives_an_empty_list() {
        let q = Array2::from_elem((1, 2), 1.0f32);
        let c = Array2::from_elem((3, 2), 1.0f32);
        let got = top_k_batch(q.view(), c.view(), &[&[]], &[0], &mut Vec::new());
        assert_eq!(got, vec![Vec::<(u32, f32)>::new()]);
    }

    proptest! {
        #[test]
        fn batched_answers_equal_one_query_at_a_time(
            (b, n, r) in (1usize..9, 1usize..300, 1usize..6),
            seed in proptest::collection::vec(-3i8..=3, 9 * 300 * 6 * 2),
            ks in proptest::collection::vec(0usize..20, 9),
            ex in proptest::collection::vec(proptest::collection::btree_set(0u32..300, 0..20), 9),
        ) {
            // Small integers make exact ties common.
            let q = Array2::from_shape_fn((b, r), |(i, j)| f32::from(seed[i * r + j]));
            let c = Array2::from_shape_fn((n, r), |(i, j)| f32::from(seed[9 * 6 + i * r + j]));
            let ex: Vec<Vec<u32>> = ex.iter().map(|s| s.iter().copied().collect()).collect();
            let exs: Vec<&[u32]> = ex.iter().take(b).map(Vec::as_slice).collect();
            let got = top_k_batch(q.view(), c.view(), &exs, &ks[..b], &mut Vec::new());
            for i in 0..b {
                let want = brute_force(q.row(i), c.view(), exs[i], ks[i]);
                prop_assert_eq!(&got[i], &want);
                let alone = top_k_batch(
                    q.slice(s![i..i + 1, ..]), c.view(), &exs[i..i + 1], &ks[i..i + 1],
                    &mut Vec::new(),
                );
                prop_assert_eq!(&alone[0], &want);
            }
        }
    }
}
