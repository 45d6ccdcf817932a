//! Implicit ratings turned into the values the confidence `1 + alpha * v` is taken of: BM25 or
//! TF-IDF weighting (benfred/implicit's `bm25_weight` and `tfidf_weight`, items as documents and
//! users as terms), then the log form of Hu, Koren and Volinsky, `v = ln(1 + w / epsilon)`.
//!
//! The preference stays `[r > 0]`: a value keeps its rating's sign, and a positive rating never
//! becomes 0 (a user whose idf is not positive, one who rated nearly every item, keeps a tiny
//! weight), so weighting changes how sure the model is, never what it is sure of.

use super::params::{Confidence, ValidAlsParams, Weighting};
use crate::data::interactions::Interactions;

/// The smallest weight a positive rating keeps.
const FLOOR: f64 = 1e-6;

/// `train` with every rating replaced by its transformed value (same rows, same order).
pub fn implicit_values(params: &ValidAlsParams, train: &Interactions) -> Interactions {
    let weights = weights(params, train);
    let rating = train
        .rating
        .iter()
        .zip(&weights)
        .map(|(&r, &w)| {
            let v = match params.confidence() {
                Confidence::Linear => w,
                Confidence::Log => (w / params.epsilon()).ln_1p(),
            };
            if r == 0.0 {
                0.0
            } else {
                (v.max(FLOOR) as f32).copysign(r)
            }
        })
        .collect();
    Interactions {
        user: train.user.clone(),
        item: train.item.clone(),
        rating,
        timestamp: None,
        n_users: train.n_users,
        n_items: train.n_items,
    }
}

/// The weighted magnitude of every rating, in f64.
fn weights(params: &ValidAlsParams, train: &Interactions) -> Vec<f64> {
    let magnitude = || train.rating.iter().map(|&r| (r as f64).abs());
    if params.weighting() == Weighting::None {
        return magnitude().collect();
    }
    // idf of a user (a term): ln(N / (1 + n_u)), N the number of items (documents).
    let mut per_user = vec![0usize; train.n_users];
    for &u in &train.user {
        per_user[u as usize] += 1;
    }
    let n_items = train.n_items as f64;
    let idf: Vec<f64> = per_user
        .iter()
        .map(|&n| (n_items / (1.0 + n as f64)).ln())
        .collect();
    match params.weighting() {
        Weighting::None => unreachable!("handled above"),
        Weighting::Tfidf => magnitude()
            .zip(&train.user)
            .map(|(r, &u)| r.sqrt() * idf[u as usize])
            .collect(),
        Weighting::Bm25 => {
            let (k1, b) = (params.bm25_k1(), params.bm25_b());
            // An item's length is the sum of its ratings; the mean runs over every item of the
            // id space, as implicit's row sums do.
            let mut length = vec![0.0f64; train.n_items];
            for (r, &i) in magnitude().zip(&train.item) {
                length[i as usize] += r;
            }
            let mean = length.iter().sum::<f64>() / n_items.max(1.0);
            magnitude()
                .zip(train.user.iter().zip(&train.item))
                .map(|(r, (&u, &i))| {
                    let norm = if mean > 0.0 {
                        (1.0 - b) + b * length[i as usize] / mean
                    } else {
                        1.0
                    };
                    r * (k1 + 1.0) / (k1 * norm + r) * idf[u as usize]
                })
                .collect()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::als::AlsParams;

    fn table() -> Interactions {
        // 3 users x 4 items; user 2 rated every item but one.
        Interactions::new(
            vec![0, 0, 1, 2, 2, 2],
            vec![0, 1, 1, 0, 1, 2],
            vec![1.0, 20.0, 3.0, 5.0, 1.0, 100.0],
            None,
            3,
            4,
        )
        .unwrap()
    }

    fn implicit() -> AlsParams {
        AlsParams::new().implicit(true)
    }

    fn values(p: AlsParams) -> Vec<f32> {
        implicit_values(&p.check().unwrap(), &table()).rating
    }

    #[test]
    fn log_confidence_is_ln_one_plus_r_over_epsilon() {
        let v = values(implicit().confidence(Confidence::Log).epsilon(2.0));
        for (got, r) in v.iter().zip(table().rating) {
            assert!((*got as f64 - (1.0 + r as f64 / 2.0).ln()).abs() < 1e-6);
        }
    }

    #[test]
    fn tfidf_is_sqrt_r_times_the_users_idf() {
        let v = values(implicit().weighting(Weighting::Tfidf));
        // User 0 rated 2 of 4 items: idf ln(4/3).
        assert!((v[1] as f64 - 20f64.sqrt() * (4.0f64 / 3.0).ln()).abs() < 1e-5);
        // User 2 rated 3 of 4: idf ln(1) = 0, floored so the preference stays.
        assert!(v[3] > 0.0 && (v[3] as f64) < 1e-5);
    }

    #[test]
    fn bm25_matches_implicits_formula() {
        let v = values(implicit().weighting(Weighting::Bm25).bm25(1.2, 0.75));
        // Item lengths 6, 24, 100, 0: mean 32.5. Rating 20 of user 0 on item 1.
        let norm = 0.25 + 0.75 * 24.0 / 32.5;
        let want = 20.0 * 2.2 / (1.2 * norm + 20.0) * (4.0f64 / 3.0).ln();
        assert!((v[1] as f64 - want).abs() < 1e-5, "{} vs {want}", v[1]);
    }

    #[test]
    fn weighting_keeps_each_ratings_sign_and_zeros() {
        let t = Interactions::new(
            vec![0, 0, 1],
            vec![0, 1, 0],
            vec![-4.0, 0.0, 2.0],
            None,
            2,
            3,
        )
        .unwrap();
        let p = implicit()
            .confidence(Confidence::Log)
            .weighting(Weighting::Bm25)
            .check()
            .unwrap();
        let v = implicit_values(&p, &t).rating;
        assert!(v[0] < 0.0 && v[1] == 0.0 && v[2] > 0.0, "{v:?}");
    }

    #[test]
    fn without_a_transform_the_values_are_the_ratings() {
        assert_eq!(values(implicit()), table().rating);
    }
}
