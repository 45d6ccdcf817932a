//! The machine's own dense matrix-multiply rate through the OpenBLAS recflow links, single-threaded
//! BLAS on every rayon worker (as training and scoring run), so ALS speed can be reported as a
//! fraction of it (`make bench-als`). Prints one JSON line.
//! Usage: cargo bench --bench blas -- [n] [repeats]
// A benchmark reports its figures on stdout.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::time::Instant;

use ndarray::linalg::general_mat_mul;
use ndarray::Array2;
use rayon::prelude::*;

fn rate<T: ndarray::LinalgScalar + Send + Sync>(n: usize, reps: usize, one: T) -> f64 {
    let threads = rayon::current_num_threads();
    let a = Array2::<T>::from_elem((n, n), one);
    let b = Array2::<T>::from_elem((n, n), one);
    let mut best = f64::INFINITY;
    for _ in 0..reps {
        let t = Instant::now();
        (0..threads).into_par_iter().for_each(|_| {
            let mut c = Array2::<T>::zeros((n, n));
            general_mat_mul(one, &a, &b, T::zero(), &mut c);
            std::hint::black_box(&c);
        });
        best = best.min(t.elapsed().as_secs_f64());
    }
    2.0 * (n as f64).powi(3) * threads as f64 / best / 1e9
}

fn main() {
    recflow::model::als::linalg::blas_single_threaded();
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let n = args.first().copied().unwrap_or(1024);
    let reps = args.get(1).copied().unwrap_or(5);
    let s = rate::<f32>(n, reps, 1.0);
    let d = rate::<f64>(n, reps, 1.0);
    println!(
        "{{\"n\": {n}, \"threads\": {}, \"sgemm_gflops\": {s:.1}, \"dgemm_gflops\": {d:.1}}}",
        rayon::current_num_threads()
    );
}
