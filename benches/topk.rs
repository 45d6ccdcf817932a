//! Times full-catalogue top-K against the same blocked sgemm without selection (`make bench-als`).
//! Usage: cargo bench --bench topk -- [users] [items] [rank] [k] [block_users] [item_tile] [repeats]
//! Runs alternate (sgemm only, then top-K) so both see the same machine load; minima reported.
// A benchmark reports its figures on stdout.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::time::Instant;

use ndarray::linalg::general_mat_mul;
use ndarray::{s, Array2, Axis};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use recflow::data::interactions::Csr;
use recflow::eval::topk::{top_k_with, TopKOptions};

fn main() {
    recflow::model::als::linalg::blas_single_threaded();
    // `cargo bench` adds `--bench`: keep the numeric arguments only.
    let a: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|x| x.parse().ok())
        .collect();
    let get = |i: usize, d: usize| a.get(i).copied().unwrap_or(d);
    let (m, n, f, k) = (get(0, 192_403), get(1, 63_001), get(2, 64), get(3, 10));
    let d = TopKOptions::default();
    let opts = TopKOptions {
        block_users: get(4, d.block_users),
        item_tile: get(5, d.item_tile),
    };
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let u = Array2::from_shape_fn((m, f), |_| rng.gen::<f32>() - 0.5);
    let v = Array2::from_shape_fn((n, f), |_| rng.gen::<f32>() - 0.5);
    // Electronics-sized training matrix to exclude: 1,689,188 ratings scaled to m users.
    let nnz = 1_689_188usize * m / 192_403;
    let rows: Vec<u32> = (0..nnz).map(|_| rng.gen_range(0..m as u32)).collect();
    let cols: Vec<u32> = (0..nnz).map(|_| rng.gen_range(0..n as u32)).collect();
    let ex = Csr::from_triples(m, n, &rows, &cols, &vec![1.0; nnz]);
    let users: Vec<u32> = (0..m as u32).collect();
    eprintln!(
        "{m} users x {n} items x rank {f}, k {k}, {} threads, block {} users x {} items",
        rayon::current_num_threads(),
        opts.block_users,
        opts.item_tile
    );
    let gflop = 2.0 * m as f64 * n as f64 * f as f64 / 1e9;

    let reps = get(6, 3);
    let (mut best_gemm, mut best_topk) = (f64::INFINITY, f64::INFINITY);
    for rep in 0..reps {
        let t_gemm = sgemm_only(&u, &v, &users, opts);
        let t = Instant::now();
        let out = top_k_with(u.view(), v.view(), &users, Some(&ex), k, opts).unwrap();
        let t_topk = t.elapsed().as_secs_f64();
        eprintln!(
            "run {rep}: sgemm only {t_gemm:.2} s ({:.0} GFLOP/s), top-k {t_topk:.2} s ({:.0} GFLOP/s), \
             ratio {:.2} [user 0: {:?}]",
            gflop / t_gemm,
            gflop / t_topk,
            t_topk / t_gemm,
            &out[0][..out[0].len().min(2)]
        );
        best_gemm = best_gemm.min(t_gemm);
        best_topk = best_topk.min(t_topk);
    }
    eprintln!(
        "best: sgemm only {best_gemm:.2} s ({:.0} GFLOP/s), top-k {best_topk:.2} s ({:.0} GFLOP/s), ratio {:.2}",
        gflop / best_gemm,
        gflop / best_topk,
        best_topk / best_gemm
    );
    println!(
        "{{\"users\": {m}, \"items\": {n}, \"rank\": {f}, \"k\": {k}, \"threads\": {}, \"products_seconds\": {best_gemm:.3}, \"topk_seconds\": {best_topk:.3}, \"ratio\": {:.3}}}",
        rayon::current_num_threads(),
        best_topk / best_gemm
    );
}

/// The same blocked products as the scorer (same blocks, tiles and parallel layout), no selection.
fn sgemm_only(u: &Array2<f32>, v: &Array2<f32>, users: &[u32], opts: TopKOptions) -> f64 {
    let n = v.nrows();
    let t = Instant::now();
    let blocks: Vec<&[u32]> = users.chunks(opts.block_users).collect();
    let checksum: f64 = blocks
        .par_iter()
        .map_init(
            || Array2::<f32>::zeros((opts.block_users, opts.item_tile.min(n))),
            |c, block| {
                let idx: Vec<usize> = block.iter().map(|&x| x as usize).collect();
                let ub = u.select(Axis(0), &idx);
                let mut acc = 0f64;
                let mut start = 0;
                while start < n {
                    let end = (start + opts.item_tile).min(n);
                    let mut cv = c.slice_mut(s![..block.len(), ..end - start]);
                    general_mat_mul(1.0, &ub, &v.slice(s![start..end, ..]).t(), 0.0, &mut cv);
                    acc += f64::from(cv[[0, 0]]);
                    start = end;
                }
                acc
            },
        )
        .sum();
    std::hint::black_box(checksum);
    t.elapsed().as_secs_f64()
}
