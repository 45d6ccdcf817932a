//! Times the bootstrap intervals of an evaluation against the evaluation itself, at the
//! Electronics 5-core size (`make bench-runs`).
//! Usage: cargo bench --bench bootstrap -- [users] [items] [rank] [resamples]
//! Prints one JSON line: evaluation seconds, bootstrap seconds and their ratio.
// A benchmark reports its figures on stdout.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::time::Instant;

use ndarray::Array2;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use recflow::data::interactions::Interactions;
use recflow::eval::stats::Bootstrap;
use recflow::eval::{evaluate, EvalSettings};
use recflow::model::als::family::FactorModel;

fn main() {
    recflow::model::als::linalg::blas_single_threaded();
    let a: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|x| x.parse().ok())
        .collect();
    let get = |i: usize, d: usize| a.get(i).copied().unwrap_or(d);
    let (m, n, f, b) = (get(0, 192_403), get(1, 63_001), get(2, 32), get(3, 1000));
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let users = Array2::from_shape_fn((m, f), |_| rng.gen::<f32>() - 0.5);
    let items = Array2::from_shape_fn((n, f), |_| rng.gen::<f32>() - 0.5);
    let model = FactorModel::new(users, items, true, f);
    // Electronics 5-core: 1,689,188 ratings, about a fifth of them held out.
    let nnz = 1_689_188usize * m / 192_403;
    let table = |rows: usize, seed: u64| {
        let mut r = ChaCha8Rng::seed_from_u64(seed);
        // Every user once, the rest at random: each user has a test item.
        let user: Vec<u32> = (0..rows)
            .map(|i| {
                if i < m {
                    i as u32
                } else {
                    r.gen_range(0..m as u32)
                }
            })
            .collect();
        let item: Vec<u32> = (0..rows).map(|_| r.gen_range(0..n as u32)).collect();
        let rating: Vec<f32> = (0..rows).map(|_| r.gen_range(1..=5) as f32).collect();
        Interactions::new(user, item, rating, None, m, n).expect("a valid table")
    };
    let train = table(nnz - nnz / 5, 1);
    let test = table(nnz / 5, 2);
    let settings = EvalSettings::default();
    let pool = rayon::ThreadPoolBuilder::new()
        .build()
        .expect("a thread pool");
    let (eval_s, boot_s, users_evaluated) = pool.install(|| {
        let t = Instant::now();
        let report = evaluate(&model, &train, &test, &settings).expect("an evaluation");
        let eval_s = t.elapsed().as_secs_f64();
        let t = Instant::now();
        let ci = report.intervals(Bootstrap {
            resamples: b,
            seed: 42,
        });
        let boot_s = t.elapsed().as_secs_f64();
        assert!(!ci.is_empty());
        (eval_s, boot_s, report.per_user.ranking.len())
    });
    eprintln!(
        "{m} users x {n} items x rank {f}: evaluation {eval_s:.2} s, {b} bootstrap resamples of \
         {users_evaluated} users (RMSE, MAE and 4 ranking metrics) {boot_s:.2} s, ratio {:.3}, {} threads",
        boot_s / eval_s,
        rayon::current_num_threads()
    );
    println!(
        "{{\"users\": {m}, \"items\": {n}, \"rank\": {f}, \"resamples\": {b}, \"users_evaluated\": {users_evaluated}, \"eval_seconds\": {eval_s:.4}, \"bootstrap_seconds\": {boot_s:.4}, \"ratio\": {:.4}}}",
        boot_s / eval_s
    );
}
