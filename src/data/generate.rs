//! Synthetic product reviews in the SNAP Amazon 2014 layout, for tests, demos and benchmarks.
//!
//! The output is one gzip member of JSON lines with the nine fields of the real files, in their
//! order (`reviewerID`, `asin`, `reviewerName`, `helpful`, `reviewText`, `overall`, `summary`,
//! `unixReviewTime`, `reviewTime`). User and item degrees are long-tailed with at least
//! [`MIN_DEGREE`] distinct ratings each; stars come from a planted low-rank model with biases and
//! noise, cut at quantiles so the star shares match Amazon's. Which items a user reviews follows
//! the same planted taste (items fall into genres; users favour the genres they like, and popular
//! items within them), so implicit models have more than popularity to learn. The same seed gives
//! the same bytes whatever the thread count: the graph and ratings are drawn on one thread, the
//! text is drawn in fixed chunks with one random stream per chunk, and each chunk is deflated on
//! its own and joined into one gzip member (as pigz does). This module knows nothing about the
//! reader, the ETL or the command line.

use std::collections::HashSet;
use std::fs;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use crate::progress::{Bar, Progress};
use flate2::{Compress, Compression, Crc, FlushCompress, Status};
use rand::seq::SliceRandom;
use rand::{Rng, RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::StandardNormal;
use rayon::prelude::*;
use serde::Serialize;
use thiserror::Error;

/// Fewest distinct ratings every user and every item gets (the 5-core of the real data).
pub const MIN_DEGREE: usize = 5;

/// Rank of the planted preference model.
const RANK: usize = 10;
/// Items fall into this many genres (contiguous index ranges of log-normal sizes). An item's
/// factor is mostly its genre's centre, so the items of a genre are alike and a user's few
/// ratings say something about the rest of the genre.
const GENRES: usize = 8;
/// Share of an item factor's variance that comes from its genre's centre.
const GENRE_SHARE: f64 = 0.9;
/// Which items a user reviews follows taste, as in real data. A pick is a taste pick with
/// probability TASTE_SHARE, else a popularity pick. A taste pick takes genre `g` with weight
/// (remaining degree of `g`) x exp(GENRE_PULL <p_u, c_g>), then the best of ITEM_CANDIDATES items
/// of `g` drawn by remaining degree, scored by ITEM_PULL <p_u, q_i> plus Gumbel noise (which
/// samples in proportion to exp(ITEM_PULL <p_u, q_i>) among them). A popularity pick weighs
/// genres by remaining degree alone and takes one item. Both dot products have standard
/// deviation 1 over random pairs. Popularity picks land in genres of any taste, so a user's
/// stars vary in a way a factor model can learn and biases cannot. Tuned on `make run`'s sample
/// (5000 x 2000, 60000 ratings): rank-16 ALS reaches about 0.96 RMSE against 1.06 for biases
/// alone and 1.21 for the mean, and implicit ALS about 2.4x the NDCG@10 of popularity.
const TASTE_SHARE: f64 = 0.6;
const GENRE_PULL: f64 = 4.0;
const ITEM_PULL: f64 = 1.5;
const ITEM_CANDIDATES: usize = 4;
/// Share of each star, 1 to 5, as in the Amazon 2014 review files.
const STAR_SHARES: [f64; 5] = [0.07, 0.05, 0.08, 0.20, 0.60];
/// Spread of the planted parts. The interaction term has variance 1 over random pairs; the noise
/// is small because the star cut points already hide most of the score (60% are 5 stars).
const USER_BIAS_SD: f64 = 0.5;
const ITEM_BIAS_SD: f64 = 0.6;
const NOISE_SD: f64 = 0.3;
/// Lomax tail index of the degree weights: smaller is heavier. Chosen so the largest degrees at
/// the Electronics size land near the real ones (a few hundred per user, thousands per item).
const USER_TAIL: f64 = 3.0;
const ITEM_TAIL: f64 = 2.3;

/// Reviews span 2000-01-01 to 2014-07-23 (days since 1970-01-01), with volume growing by about
/// e^GROWTH over the span as it did on Amazon.
const FIRST_DAY: i64 = 10_957;
const LAST_DAY: i64 = 16_274;
const GROWTH: f64 = 4.0;

/// Reviews per text chunk: the unit of parallel work and of the random streams.
const CHUNK_RECORDS: usize = 2_048;
/// Deflate level. Measured at the Electronics size (1.17 GB of JSON, 2 cores): level 1 gives
/// 512 MB, level 2 396 MB for about a fifth more time, level 3 366 MB for a third more again,
/// level 6 352 MB in three times the time.
const LEVEL: u32 = 2;

/// Random streams, one per stage, so one stage's draws never shift another's.
const STREAM_DEGREES: u64 = 1;
const STREAM_EDGES: u64 = 2;
const STREAM_MODEL: u64 = 3;
const STREAM_TIME: u64 = 4;
const STREAM_IDS: u64 = 5;
const STREAM_NOISE: u64 = 6;
const STREAM_TEXT: u64 = 1 << 32;

/// What to generate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct GenerateParams {
    pub users: usize,
    pub items: usize,
    pub ratings: usize,
    pub seed: u64,
}

/// What was written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GenerateSummary {
    pub path: PathBuf,
    pub users: usize,
    pub items: usize,
    pub ratings: usize,
    /// Reviews with 1 to 5 stars.
    pub stars: [u64; 5],
    /// Size of the JSON lines before compression.
    pub uncompressed_bytes: u64,
    /// Size of the gzip file.
    pub bytes: u64,
}

#[derive(Debug, Error)]
pub enum GenerateError {
    #[error("`users` must be at least 1")]
    NoUsers,
    #[error("`items` must be at least 1")]
    NoItems,
    #[error(
        "`ratings` = `{ratings}` is too few: every user and item needs {MIN_DEGREE} ratings, so \
         {users} users and {items} items need at least `{min}`"
    )]
    TooFewRatings {
        ratings: usize,
        min: u128,
        users: usize,
        items: usize,
    },
    #[error(
        "`ratings` = `{ratings}` is more than the `{max}` distinct (user, item) pairs of {users} \
         users and {items} items"
    )]
    TooManyRatings {
        ratings: usize,
        max: u128,
        users: usize,
        items: usize,
    },
    #[error("`{what}` = `{value}` is larger than the supported `{max}`")]
    TooLarge {
        what: &'static str,
        value: usize,
        max: u64,
    },
    #[error("cannot write `{}`", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

impl GenerateParams {
    /// Checks the sizes: each rule has its own error.
    pub fn check(&self) -> Result<(), GenerateError> {
        let max = u64::from(u32::MAX);
        for (what, value) in [
            ("users", self.users),
            ("items", self.items),
            ("ratings", self.ratings),
        ] {
            if value as u64 > max {
                return Err(GenerateError::TooLarge { what, value, max });
            }
        }
        if self.users == 0 {
            return Err(GenerateError::NoUsers);
        }
        if self.items == 0 {
            return Err(GenerateError::NoItems);
        }
        let min = MIN_DEGREE as u128 * self.users.max(self.items) as u128;
        if (self.ratings as u128) < min {
            return Err(GenerateError::TooFewRatings {
                ratings: self.ratings,
                min,
                users: self.users,
                items: self.items,
            });
        }
        let max = self.users as u128 * self.items as u128;
        if self.ratings as u128 > max {
            return Err(GenerateError::TooManyRatings {
                ratings: self.ratings,
                max,
                users: self.users,
                items: self.items,
            });
        }
        Ok(())
    }
}

/// Writes `params.ratings` reviews to `out` (gzipped JSON lines), through a temporary file in the
/// same folder renamed at the end, so `out` is either absent, the old file, or complete.
pub fn generate(
    params: &GenerateParams,
    out: &Path,
    progress: &Progress,
) -> Result<GenerateSummary, GenerateError> {
    params.check()?;
    let io_err = |source| GenerateError::Io {
        path: out.to_path_buf(),
        source,
    };
    let bar = progress.items(params.ratings as u64, "reviews", "planning");
    let plan = Plan::draw(params);

    let tmp = temp_beside(out).map_err(io_err)?;
    bar.set_message("writing");
    let mut sink = BufWriter::with_capacity(1 << 20, tmp.as_file());
    let written = write_gzip(&plan, params.seed, &mut sink, &bar).map_err(io_err)?;
    sink.flush().map_err(io_err)?;
    drop(sink);
    tmp.persist(out).map_err(|e| io_err(e.error))?;
    bar.finish();

    let mut stars = [0u64; 5];
    for &s in &plan.star {
        stars[usize::from(s - 1)] += 1;
    }
    Ok(GenerateSummary {
        path: out.to_path_buf(),
        users: params.users,
        items: params.items,
        ratings: params.ratings,
        stars,
        uncompressed_bytes: written.uncompressed,
        bytes: written.compressed,
    })
}

/// A temporary file in `out`'s folder (created if missing), renamed over `out` once complete.
fn temp_beside(out: &Path) -> io::Result<tempfile::NamedTempFile> {
    let dir = match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    fs::create_dir_all(&dir)?;
    let mut builder = tempfile::Builder::new();
    builder.prefix(".recflow-generate-");
    #[cfg(unix)]
    {
        // A temporary file is private (0600); the result is an ordinary data file.
        use std::os::unix::fs::PermissionsExt;
        builder.permissions(fs::Permissions::from_mode(0o644));
    }
    builder.tempfile_in(&dir)
}

/// What `--items-meta` wrote.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ItemsMetaSummary {
    pub path: PathBuf,
    pub items: usize,
}

/// Each genre's category and the product kinds its titles use, so a person looking at
/// recommendations can see the planted taste (a user who likes headphones gets headphones).
const GENRE_NAMES: [(&str, [&str; 3]); GENRES] = [
    (
        "Headphones",
        ["Over-Ear Headphones", "Wireless Earbuds", "Gaming Headset"],
    ),
    (
        "Camera & Photo",
        ["Camera Lens", "Travel Tripod", "Camera Bag"],
    ),
    (
        "Computer Accessories",
        ["Mechanical Keyboard", "Wireless Mouse", "USB Hub"],
    ),
    (
        "Cables & Adapters",
        ["HDMI Cable", "USB-C Adapter", "Charging Cable"],
    ),
    (
        "Home Audio",
        ["Bookshelf Speakers", "Soundbar", "AV Receiver"],
    ),
    (
        "Portable Power",
        ["Power Bank", "Wall Charger", "Car Charger"],
    ),
    (
        "Data Storage",
        ["microSD Card", "USB Flash Drive", "Portable SSD"],
    ),
    (
        "Television & Video",
        ["TV Wall Mount", "Streaming Stick", "HD Antenna"],
    ),
];
const BRANDS: [&str; 8] = [
    "Arclite", "Bolton", "Corvex", "Dunmore", "Elvia", "Fennix", "Galvo", "Hartwell",
];
const VARIANTS: [&str; 4] = ["", "Pro ", "Mini ", "Plus "];
const STREAM_META: u64 = 7;

/// Writes product metadata matching the reviews [`generate`] writes for `params` (the same
/// asins): one JSON object per line in the SNAP 2014 metadata layout (`asin`, `title`, `brand`,
/// `price`, `imUrl`, `categories`), gzipped, through a temporary file renamed at the end. Titles
/// name the item's planted genre. Image URLs point at `example.com` and are never fetched.
pub fn generate_items_meta(
    params: &GenerateParams,
    out: &Path,
) -> Result<ItemsMetaSummary, GenerateError> {
    params.check()?;
    let io_err = |source| GenerateError::Io {
        path: out.to_path_buf(),
        source,
    };
    // The same draws as the plan, in the same streams: genres, then reviewer ids and asins.
    let planted = Planted::draw(
        params.users,
        params.items,
        &mut stream(params.seed, STREAM_MODEL),
    );
    let mut rng = stream(params.seed, STREAM_IDS);
    let _ = unique_ids(params.users, &mut rng, reviewer_id);
    let asins = unique_ids(params.items, &mut rng, asin);
    let mut rng = stream(params.seed, STREAM_META);
    let mut text = Vec::with_capacity(params.items * 200);
    for g in 0..planted.genres() {
        let (genre, kinds) = GENRE_NAMES[g];
        for id in &asins[planted.genre_start[g]..planted.genre_start[g + 1]] {
            let asin = std::str::from_utf8(id).unwrap_or_default();
            let brand = BRANDS[rng.gen_range(0..BRANDS.len())];
            let kind = kinds[rng.gen_range(0..kinds.len())];
            let variant = VARIANTS[rng.gen_range(0..VARIANTS.len())];
            let model = rng.gen_range(100..1000);
            let price = f64::from(rng.gen_range(599..20_000u32)) / 100.0;
            let line = serde_json::json!({
                "asin": asin,
                "title": format!("{brand} {variant}{kind} {}{model}", &genre[..1]),
                "brand": brand,
                "price": price,
                "imUrl": format!("https://example.com/images/{asin}.jpg"),
                "categories": [["Electronics", genre]],
            });
            serde_json::to_writer(&mut text, &line).map_err(|e| io_err(e.into()))?;
            text.push(b'\n');
        }
    }
    let tmp = temp_beside(out).map_err(io_err)?;
    let mut gz =
        flate2::write::GzEncoder::new(BufWriter::new(tmp.as_file()), Compression::new(LEVEL));
    gz.write_all(&text).map_err(io_err)?;
    gz.finish().and_then(|mut w| w.flush()).map_err(io_err)?;
    tmp.persist(out).map_err(|e| io_err(e.error))?;
    Ok(ItemsMetaSummary {
        path: out.to_path_buf(),
        items: params.items,
    })
}

// ---------------------------------------------------------------------------------------------
// The plan: who rated what, how many stars, and when. Drawn on one thread.

/// Reviews in output order (by asin, then day, then reviewer), as columns.
struct Plan {
    reviewer_ids: Vec<[u8; 14]>,
    asins: Vec<[u8; 10]>,
    user: Vec<u32>,
    item: Vec<u32>,
    star: Vec<u8>,
    /// Days since 1970-01-01.
    day: Vec<u32>,
    /// The planted score without noise: what a model could learn.
    #[cfg_attr(not(test), allow(dead_code))]
    signal: Vec<f32>,
    /// The interaction part of the signal, <p_u, q_i>.
    #[cfg_attr(not(test), allow(dead_code))]
    taste: Vec<f32>,
}

fn stream(seed: u64, stream: u64) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(stream);
    rng
}

impl Plan {
    /// Draws the plan; `params` must have passed [`GenerateParams::check`].
    fn draw(params: &GenerateParams) -> Plan {
        let (users, items, ratings) = (params.users, params.items, params.ratings);
        let mut rng = stream(params.seed, STREAM_DEGREES);
        let mut user_deg = long_tail_degrees(
            users,
            ratings,
            degree_cap(users, items, ratings),
            USER_TAIL,
            &mut rng,
        );
        let mut item_deg = long_tail_degrees(
            items,
            ratings,
            degree_cap(items, users, ratings),
            ITEM_TAIL,
            &mut rng,
        );
        if !is_bigraphic(&user_deg, &item_deg) {
            // Only in dense corners: near-equal degrees always fit (Gale–Ryser).
            user_deg = balanced_degrees(users, ratings);
            item_deg = balanced_degrees(items, ratings);
        }
        let mut rng = stream(params.seed, STREAM_MODEL);
        let planted = Planted::draw(users, items, &mut rng);
        let mut rng = stream(params.seed, STREAM_EDGES);
        let graph = random_graph(&user_deg, &item_deg, &planted, &mut rng)
            .unwrap_or_else(|| greedy_graph(&user_deg, &item_deg, &mut rng));

        // Edges as columns in user order.
        let mut user = Vec::with_capacity(ratings);
        for (u, &d) in user_deg.iter().enumerate() {
            user.extend(std::iter::repeat_n(u as u32, d as usize));
        }
        let item = graph;

        // Stars: bias + bias + <p_u, q_i> + noise, cut at quantiles.
        let mut rng = stream(params.seed, STREAM_NOISE);
        let mut signal = Vec::with_capacity(ratings);
        let mut taste = Vec::with_capacity(ratings);
        let mut score = Vec::with_capacity(ratings);
        for (&u, &i) in user.iter().zip(&item) {
            let (u, i) = (u as usize, i as usize);
            let t = planted.taste(u, i);
            let s = planted.user_bias[u] + planted.item_bias[i] + t;
            taste.push(t);
            signal.push(s);
            score.push(s + (rng.sample::<f64, _>(StandardNormal) * NOISE_SD) as f32);
        }
        let star = stars_by_quantile(&score);

        // Days: each item appears at a launch day; its reviews follow, more of them in later years.
        let mut rng = stream(params.seed, STREAM_TIME);
        let launch: Vec<f64> = (0..items)
            .map(|_| growth_sample(0.0, 0.97, rng.gen()))
            .collect();
        let span = (LAST_DAY - FIRST_DAY) as f64;
        let day: Vec<u32> = item
            .iter()
            .map(|&i| {
                let x = growth_sample(launch[i as usize], 1.0, rng.gen());
                (FIRST_DAY + (x * span).round() as i64) as u32
            })
            .collect();

        let mut rng = stream(params.seed, STREAM_IDS);
        let reviewer_ids = unique_ids(users, &mut rng, reviewer_id);
        let asins = unique_ids(items, &mut rng, asin);

        // Output order: by asin (as the SNAP files are), then day, then reviewer.
        let mut order: Vec<u32> = (0..ratings as u32).collect();
        order.sort_unstable_by_key(|&e| {
            let e = e as usize;
            (
                asins[item[e] as usize],
                day[e],
                reviewer_ids[user[e] as usize],
            )
        });
        let pick = |col: &[u32]| order.iter().map(|&e| col[e as usize]).collect::<Vec<_>>();
        let (user, item, day) = (pick(&user), pick(&item), pick(&day));
        let star = order.iter().map(|&e| star[e as usize]).collect();
        let signal = order.iter().map(|&e| signal[e as usize]).collect();
        let taste = order.iter().map(|&e| taste[e as usize]).collect();
        Plan {
            reviewer_ids,
            asins,
            user,
            item,
            star,
            day,
            signal,
            taste,
        }
    }
}

/// The planted preference model: biases, user factors `p`, item factors `q` built from genre
/// centres `c`, all row-major with [`RANK`] columns.
struct Planted {
    user_bias: Vec<f32>,
    item_bias: Vec<f32>,
    p: Vec<f32>,
    q: Vec<f32>,
    c: Vec<f32>,
    /// Genre `g` holds the items `genre_start[g]..genre_start[g + 1]`.
    genre_start: Vec<usize>,
}

impl Planted {
    fn draw(users: usize, items: usize, rng: &mut ChaCha8Rng) -> Planted {
        // Factor entries with variance RANK^-1/2, so a dot product of two has variance 1.
        let factor_sd = (RANK as f64).powf(-0.25);
        let mut normal = |sd: f64| (rng.sample::<f64, _>(StandardNormal) * sd) as f32;
        let user_bias: Vec<f32> = (0..users).map(|_| normal(USER_BIAS_SD)).collect();
        let item_bias: Vec<f32> = (0..items).map(|_| normal(ITEM_BIAS_SD)).collect();
        let p: Vec<f32> = (0..users * RANK).map(|_| normal(factor_sd)).collect();
        let genres = GENRES.min(items);
        let c: Vec<f32> = (0..genres * RANK).map(|_| normal(factor_sd)).collect();
        // Genre sizes vary (log-normal shares); every genre has at least one item. Item indices
        // carry no other meaning, so contiguous ranges are as good as a random assignment.
        let shares: Vec<f64> = (0..genres).map(|_| normal(0.5).exp() as f64).collect();
        let sum: f64 = shares.iter().sum();
        let mut genre_start = Vec::with_capacity(genres + 1);
        let mut cum = 0.0;
        for (g, share) in shares.iter().enumerate() {
            let at = ((cum / sum * items as f64).round() as usize)
                .max(genre_start.last().map_or(0, |&s| s + 1))
                .min(items - (genres - g));
            genre_start.push(at);
            cum += share;
        }
        genre_start.push(items);
        let (own, shared) = ((1.0 - GENRE_SHARE).sqrt(), GENRE_SHARE.sqrt() as f32);
        let mut q = Vec::with_capacity(items * RANK);
        for g in 0..genres {
            for _ in genre_start[g]..genre_start[g + 1] {
                for k in 0..RANK {
                    q.push(shared * c[g * RANK + k] + normal(own * factor_sd));
                }
            }
        }
        Planted {
            user_bias,
            item_bias,
            p,
            q,
            c,
            genre_start,
        }
    }

    fn genres(&self) -> usize {
        self.genre_start.len() - 1
    }

    fn user(&self, u: usize) -> &[f32] {
        &self.p[u * RANK..(u + 1) * RANK]
    }

    /// <p_u, q_i>: the interaction part of the score.
    fn taste(&self, u: usize, i: usize) -> f32 {
        dot(self.user(u), &self.q[i * RANK..(i + 1) * RANK])
    }

    /// <p_u, c_g>: how much user `u` likes genre `g` as a whole.
    fn genre_taste(&self, u: usize, g: usize) -> f32 {
        dot(self.user(u), &self.c[g * RANK..(g + 1) * RANK])
    }
}

fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// A point in [a, b] (fractions of the span) drawn from a density growing as e^(GROWTH x).
fn growth_sample(a: f64, b: f64, u: f64) -> f64 {
    let (ea, eb) = ((GROWTH * a).exp(), (GROWTH * b).exp());
    ((ea + u * (eb - ea)).ln() / GROWTH).clamp(a, b)
}

/// Largest degree on a side of `n` vertices facing `other`: at most a twentieth of the other side
/// (the real files stay well under that), but never so low that `total` cannot be reached.
fn degree_cap(n: usize, other: usize, total: usize) -> usize {
    (other / 20)
        .max(total.div_ceil(n))
        .max(MIN_DEGREE)
        .min(other)
}

/// Stars 1..=5 from quantile cut points of `score`, so the shares match [`STAR_SHARES`] exactly
/// (up to rounding) whatever the spread of the score.
fn stars_by_quantile(score: &[f32]) -> Vec<u8> {
    let n = score.len();
    let mut sorted = score.to_vec();
    sorted.sort_unstable_by(f32::total_cmp);
    let mut cuts = [0f32; 4];
    let mut cum = 0.0;
    for (k, cut) in cuts.iter_mut().enumerate() {
        cum += STAR_SHARES[k];
        let rank = ((cum * n as f64).round() as usize).min(n.saturating_sub(1));
        *cut = sorted.get(rank).copied().unwrap_or(f32::INFINITY);
    }
    score
        .iter()
        .map(|&s| 1 + cuts.iter().filter(|&&c| s >= c).count() as u8)
        .collect()
}

/// Degrees of `n` vertices summing to `total`, each in [MIN_DEGREE, cap]: every vertex starts at
/// the minimum and the rest are handed out one by one in proportion to a Lomax-distributed
/// weight, which gives the long tail. `total` must lie in [MIN_DEGREE n, cap n].
fn long_tail_degrees(
    n: usize,
    total: usize,
    cap: usize,
    tail: f64,
    rng: &mut impl Rng,
) -> Vec<u32> {
    let raw: Vec<f64> = (0..n)
        .map(|_| (1.0 - rng.gen::<f64>()).powf(-1.0 / tail) - 1.0 + 1e-3)
        .collect();
    let sum: f64 = raw.iter().sum();
    // Integer weights keep the sampler exact; the scale keeps their sum far from overflow.
    let scale = (2f64.powi(62) / sum).min(2f64.powi(20));
    let weights: Vec<u64> = raw.iter().map(|w| ((w * scale) as u64).max(1)).collect();
    let mut sampler = Fenwick::new(&weights);
    let mut deg = vec![MIN_DEGREE as u32; n];
    let extra_cap = (cap - MIN_DEGREE) as u32;
    let mut extra = total - MIN_DEGREE * n;
    if extra_cap == 0 {
        return deg;
    }
    while extra > 0 && sampler.total() > 0 {
        let v = sampler.find(rng.gen_range(0..sampler.total()));
        deg[v] += 1;
        extra -= 1;
        if deg[v] - MIN_DEGREE as u32 == extra_cap {
            sampler.sub(v, weights[v]);
        }
    }
    deg
}

/// Degrees as equal as possible: `total / n` each, one more for the first `total % n`.
fn balanced_degrees(n: usize, total: usize) -> Vec<u32> {
    (0..n)
        .map(|v| (total / n + usize::from(v < total % n)) as u32)
        .collect()
}

/// Whether a simple bipartite graph with these degrees exists (Gale–Ryser).
fn is_bigraphic(a: &[u32], b: &[u32]) -> bool {
    let sum = |d: &[u32]| d.iter().map(|&x| u64::from(x)).sum::<u64>();
    if sum(a) != sum(b) {
        return false;
    }
    let mut a = a.to_vec();
    a.sort_unstable_by(|x, y| y.cmp(x));
    // at_least[t] = how many of b are >= t, so sum_j min(b_j, k) = sum_{t<=k} at_least[t].
    let max_b = b.iter().copied().max().unwrap_or(0) as usize;
    let mut at_least = vec![0u64; max_b + 2];
    for &x in b {
        at_least[x as usize] += 1;
    }
    for t in (0..=max_b).rev() {
        at_least[t] += at_least[t + 1];
    }
    let (mut lhs, mut rhs) = (0u64, 0u64);
    for (k, &x) in a.iter().enumerate() {
        lhs += u64::from(x);
        rhs += at_least.get(k + 1).copied().unwrap_or(0);
        if lhs > rhs {
            return false;
        }
    }
    true
}

/// A random simple bipartite graph with exactly these degrees, as the item of each edge in user
/// order (user `u` owns the slots after the degrees of users before it). Users are served in random
/// order; each draws distinct items in proportion to their remaining degree, steered by taste
/// (see [`TASTE_SHARE`]). When a user is left short (every item with room is one it already has),
/// an edge is moved over from another user. `None` when that repair fails, which only dense
/// corners reach.
fn random_graph(
    user_deg: &[u32],
    item_deg: &[u32],
    planted: &Planted,
    rng: &mut impl Rng,
) -> Option<Vec<u32>> {
    let total: usize = user_deg.iter().map(|&d| d as usize).sum();
    let mut offsets = Vec::with_capacity(user_deg.len() + 1);
    offsets.push(0usize);
    for &d in user_deg {
        offsets.push(offsets[offsets.len() - 1] + d as usize);
    }
    let mut order: Vec<u32> = (0..user_deg.len() as u32).collect();
    // Random order, not heaviest first: users served last find the genres others wanted most
    // depleted, and that should not always be the light users.
    order.shuffle(rng);

    let genres = planted.genres();
    let starts = &planted.genre_start;
    let genre_of = |i: usize| starts.partition_point(|&s| s <= i) - 1;
    let mut targets = vec![u32::MAX; total];
    let mut filled = vec![0u32; user_deg.len()];
    let mut rem: Vec<u64> = item_deg.iter().map(|&d| u64::from(d)).collect();
    let mut sampler = Fenwick::new(&rem);
    // Weight left in each genre, kept equal to the sampler's sums over the genre's range.
    let mut genre_rem: Vec<u64> = (0..genres)
        .map(|g| rem[starts[g]..starts[g + 1]].iter().sum())
        .collect();
    let mut pull = vec![0f64; genres];
    let flat = vec![1f64; genres];
    let mut short = Vec::new();
    for &u in &order {
        let u = u as usize;
        let (base, d) = (offsets[u], user_deg[u] as usize);
        for (g, w) in pull.iter_mut().enumerate() {
            *w = (GENRE_PULL * f64::from(planted.genre_taste(u, g))).exp();
        }
        let mut got = 0;
        while got < d && sampler.total() > 0 {
            let taste = rng.gen::<f64>() < TASTE_SHARE;
            let g = pick_genre(&genre_rem, if taste { &pull } else { &flat }, rng.gen());
            let (from, left) = (sampler.prefix(starts[g]), genre_rem[g]);
            let mut i = sampler.find(from + rng.gen_range(0..left));
            if taste {
                let mut best = ITEM_PULL * f64::from(planted.taste(u, i)) + gumbel(rng);
                for _ in 1..ITEM_CANDIDATES {
                    let j = sampler.find(from + rng.gen_range(0..left));
                    let key = ITEM_PULL * f64::from(planted.taste(u, j)) + gumbel(rng);
                    if key > best {
                        (best, i) = (key, j);
                    }
                }
            }
            targets[base + got] = i as u32;
            got += 1;
            // Take all of the item's weight while this user draws, so it is not drawn twice.
            sampler.sub(i, rem[i]);
            genre_rem[g] -= rem[i];
            rem[i] -= 1;
        }
        for &i in &targets[base..base + got] {
            let i = i as usize;
            if rem[i] > 0 {
                sampler.add(i, rem[i]);
                genre_rem[genre_of(i)] += rem[i];
            }
        }
        filled[u] = got as u32;
        if got < d {
            short.push(u);
        }
    }
    if short.is_empty() {
        return Some(targets);
    }

    let has = |targets: &[u32], filled: &[u32], v: usize, i: u32| {
        targets[offsets[v]..offsets[v] + filled[v] as usize].contains(&i)
    };
    let mut open: Vec<u32> = (0..rem.len() as u32)
        .filter(|&i| rem[i as usize] > 0)
        .collect();
    for u in short {
        while (filled[u] as usize) < user_deg[u] as usize {
            open.retain(|&i| rem[i as usize] > 0);
            let mut placed = false;
            for _ in 0..10_000 {
                let i = *open.choose(rng)?;
                if !has(&targets, &filled, u, i) {
                    targets[offsets[u] + filled[u] as usize] = i;
                } else {
                    // Move edge (v, j) to (u, j) and give v the open item i instead.
                    let p = rng.gen_range(0..total);
                    let v = offsets.partition_point(|&o| o <= p) - 1;
                    if v == u || p - offsets[v] >= filled[v] as usize {
                        continue;
                    }
                    let j = targets[p];
                    if has(&targets, &filled, u, j) || has(&targets, &filled, v, i) {
                        continue;
                    }
                    targets[p] = i;
                    targets[offsets[u] + filled[u] as usize] = j;
                }
                filled[u] += 1;
                rem[i as usize] -= 1;
                placed = true;
                break;
            }
            if !placed {
                return None;
            }
        }
    }
    Some(targets)
}

/// A genre with weight left, drawn in proportion to `rem[g] * pull[g]` from `u` in [0, 1).
/// `rem` must not be all zero.
fn pick_genre(rem: &[u64], pull: &[f64], u: f64) -> usize {
    let total: f64 = rem.iter().zip(pull).map(|(&r, &p)| r as f64 * p).sum();
    let mut r = u * total;
    let mut last = 0;
    for (g, (&w, &p)) in rem.iter().zip(pull).enumerate() {
        if w == 0 {
            continue;
        }
        last = g;
        r -= w as f64 * p;
        if r < 0.0 {
            return g;
        }
    }
    // Rounding can leave a sliver past the end: it belongs to the last genre with weight.
    last
}

/// A standard Gumbel draw: the maximum of key + Gumbel noise picks each key with probability
/// proportional to e^key.
fn gumbel(rng: &mut impl Rng) -> f64 {
    let u = 1.0 - rng.gen::<f64>(); // in (0, 1]
    -(-u.ln()).ln()
}

/// A simple bipartite graph with exactly these degrees, for degrees [`random_graph`] could not
/// place: each user takes the items with the most remaining degree (Gale–Ryser's construction,
/// which cannot fail on a bigraphic pair). Ties are broken at random.
fn greedy_graph(user_deg: &[u32], item_deg: &[u32], rng: &mut impl Rng) -> Vec<u32> {
    let mut rem = item_deg.to_vec();
    let mut ord: Vec<u32> = (0..rem.len() as u32).collect();
    ord.shuffle(rng);
    ord.sort_by_key(|&i| std::cmp::Reverse(rem[i as usize]));
    let mut targets = Vec::with_capacity(user_deg.iter().map(|&d| d as usize).sum());
    for &d in user_deg {
        let d = (d as usize).min(ord.len());
        if d == 0 {
            continue;
        }
        // `ord` is sorted by remaining degree, descending. Taking the first d and decrementing
        // them keeps it sorted once the taken members of the cut-off tie group move to its end.
        let v = rem[ord[d - 1] as usize];
        let s = ord.partition_point(|&i| rem[i as usize] > v);
        let e = ord.partition_point(|&i| rem[i as usize] >= v);
        for &i in &ord[..d] {
            targets.push(i);
            rem[i as usize] = rem[i as usize].saturating_sub(1);
        }
        let (taken, kept) = (d - s, e - d);
        let n = taken.min(kept);
        let (left, right) = ord.split_at_mut(e - n);
        left[s..s + n].swap_with_slice(&mut right[..n]);
    }
    targets
}

/// Prefix sums over integer weights, for drawing an index in proportion to its weight.
struct Fenwick {
    tree: Vec<u64>,
    total: u64,
    top: usize,
}

impl Fenwick {
    fn new(weights: &[u64]) -> Self {
        let n = weights.len();
        let mut tree = vec![0u64; n + 1];
        tree[1..].copy_from_slice(weights);
        for i in 1..=n {
            let parent = i + (i & i.wrapping_neg());
            if parent <= n {
                tree[parent] += tree[i];
            }
        }
        let top = if n == 0 {
            0
        } else {
            1 << (usize::BITS - 1 - n.leading_zeros())
        };
        Fenwick {
            tree,
            total: weights.iter().sum(),
            top,
        }
    }

    fn total(&self) -> u64 {
        self.total
    }

    fn add(&mut self, i: usize, w: u64) {
        self.total += w;
        let mut k = i + 1;
        while k < self.tree.len() {
            self.tree[k] += w;
            k += k & k.wrapping_neg();
        }
    }

    fn sub(&mut self, i: usize, w: u64) {
        self.total -= w;
        let mut k = i + 1;
        while k < self.tree.len() {
            self.tree[k] -= w;
            k += k & k.wrapping_neg();
        }
    }

    /// Sum of the weights of indices below `i`.
    fn prefix(&self, i: usize) -> u64 {
        let (mut k, mut sum) = (i.min(self.tree.len() - 1), 0);
        while k > 0 {
            sum += self.tree[k];
            k &= k - 1;
        }
        sum
    }

    /// The index whose weight interval holds `r`, for `r < total()`.
    fn find(&self, mut r: u64) -> usize {
        let (mut pos, mut step) = (0, self.top);
        while step > 0 {
            let next = pos + step;
            if next < self.tree.len() && self.tree[next] <= r {
                pos = next;
                r -= self.tree[next];
            }
            step >>= 1;
        }
        pos.min(self.tree.len().saturating_sub(2))
    }
}

const ALNUM: &[u8; 36] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ";

/// `n` distinct ids from `make`.
fn unique_ids<const N: usize>(
    n: usize,
    rng: &mut ChaCha8Rng,
    make: fn(&mut ChaCha8Rng) -> [u8; N],
) -> Vec<[u8; N]> {
    let mut seen = HashSet::with_capacity(n);
    let mut ids = Vec::with_capacity(n);
    while ids.len() < n {
        let id = make(rng);
        if seen.insert(id) {
            ids.push(id);
        }
    }
    ids
}

/// `A` and 13 upper-case letters or digits, like `A2SUAM1J3GNN3B`.
fn reviewer_id(rng: &mut ChaCha8Rng) -> [u8; 14] {
    let mut id = [b'A'; 14];
    for c in &mut id[1..] {
        *c = ALNUM[rng.gen_range(0..36)];
    }
    id
}

/// Mostly `B00` and 7 letters or digits (`B00004Z5M1`); some ISBN-10s (`0528881469`), as in the
/// real files.
fn asin(rng: &mut ChaCha8Rng) -> [u8; 10] {
    let mut id = [b'0'; 10];
    if rng.gen_bool(0.15) {
        for c in &mut id[..9] {
            *c = b'0' + rng.gen_range(0..10);
        }
        id[9] = b"0123456789X"[rng.gen_range(0..11)];
    } else {
        id[0] = b'B';
        for c in &mut id[3..] {
            *c = ALNUM[rng.gen_range(0..36)];
        }
    }
    id
}

// ---------------------------------------------------------------------------------------------
// Writing: text in fixed chunks, each deflated on its own, joined into one gzip member.

struct Written {
    uncompressed: u64,
    compressed: u64,
}

/// Chunks in flight at once: enough to keep every thread busy, few enough to bound memory
/// (a chunk is a few MB).
fn window() -> usize {
    8 * rayon::current_num_threads().max(1)
}

fn write_gzip(plan: &Plan, seed: u64, out: &mut impl Write, bar: &Bar) -> io::Result<Written> {
    // Header: no name, mtime 0 (so bytes depend on the seed only), OS unknown.
    let header = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff];
    out.write_all(&header)?;
    let mut compressed = header.len() as u64;
    let mut crc = Crc::new();
    let mut uncompressed = 0u64;
    let n = plan.user.len();
    let chunks = n.div_ceil(CHUNK_RECORDS);
    let mut first = 0;
    while first < chunks {
        let last = (first + window()).min(chunks);
        let parts: Vec<io::Result<(Vec<u8>, Crc)>> = (first..last)
            .into_par_iter()
            .map(|c| {
                let lo = c * CHUNK_RECORDS;
                let hi = (lo + CHUNK_RECORDS).min(n);
                let text = render_chunk(plan, seed, c as u64, lo..hi);
                let mut part_crc = Crc::new();
                part_crc.update(&text);
                Ok((deflate_sync(&text)?, part_crc))
            })
            .collect();
        for part in parts {
            let (bytes, part_crc) = part?;
            out.write_all(&bytes)?;
            compressed += bytes.len() as u64;
            uncompressed += u64::from(part_crc.amount());
            crc.combine(&part_crc);
        }
        bar.set_position((last * CHUNK_RECORDS).min(n) as u64);
        first = last;
    }
    let end = deflate_finish()?;
    out.write_all(&end)?;
    out.write_all(&crc.sum().to_le_bytes())?;
    // ISIZE is the length modulo 2^32, as gzip defines it.
    out.write_all(&(uncompressed as u32).to_le_bytes())?;
    compressed += end.len() as u64 + 8;
    Ok(Written {
        uncompressed,
        compressed,
    })
}

/// Free room kept at the end of a deflate output buffer, so every call can make progress.
const DEFLATE_SPARE: usize = 64 << 10;

fn make_room(out: &mut Vec<u8>) {
    if out.capacity() - out.len() < DEFLATE_SPARE {
        out.reserve(out.capacity().max(DEFLATE_SPARE));
    }
}

/// Raw deflate of `input` ending on a byte boundary without a final block (a sync flush), so
/// such pieces concatenate into one stream. Done as flate2's own writer does: the input goes in
/// without flushing, then one sync flush, then the compressor is drained until it gives nothing
/// more (the Rust backend does not say when a flush is complete, and stopping at the first call
/// that leaves room in the buffer loses the tail).
fn deflate_sync(input: &[u8]) -> io::Result<Vec<u8>> {
    let mut c = Compress::new(Compression::new(LEVEL), false);
    let mut out = Vec::with_capacity(input.len() / 3 + DEFLATE_SPARE);
    while (c.total_in() as usize) < input.len() {
        make_room(&mut out);
        let done = c.total_in() as usize;
        c.compress_vec(&input[done..], &mut out, FlushCompress::None)
            .map_err(io::Error::other)?;
    }
    make_room(&mut out);
    c.compress_vec(&[], &mut out, FlushCompress::Sync)
        .map_err(io::Error::other)?;
    loop {
        make_room(&mut out);
        let before = c.total_out();
        c.compress_vec(&[], &mut out, FlushCompress::None)
            .map_err(io::Error::other)?;
        if c.total_out() == before {
            break;
        }
    }
    // A sync flush ends with an empty stored block: LEN 0, NLEN 0xffff.
    if !out.ends_with(&[0, 0, 0xff, 0xff]) {
        return Err(io::Error::other(
            "internal error: the deflate stream did not end on a sync flush",
        ));
    }
    Ok(out)
}

/// The final (empty) deflate block.
fn deflate_finish() -> io::Result<Vec<u8>> {
    let mut c = Compress::new(Compression::new(LEVEL), false);
    let mut out = Vec::new();
    for _ in 0..16 {
        make_room(&mut out);
        let status = c
            .compress_vec(&[], &mut out, FlushCompress::Finish)
            .map_err(io::Error::other)?;
        if status == Status::StreamEnd {
            return Ok(out);
        }
    }
    Err(io::Error::other(
        "internal error: the deflate stream did not finish",
    ))
}

/// The JSON lines of reviews `range`, with their text drawn from the chunk's own stream.
fn render_chunk(plan: &Plan, seed: u64, chunk: u64, range: std::ops::Range<usize>) -> Vec<u8> {
    let mut rng = stream(seed, STREAM_TEXT + chunk);
    let name_key = seed ^ 0x6e61_6d65_7365_6564;
    let mut out = Vec::with_capacity(range.len() * 720);
    for e in range {
        let (u, i, star) = (plan.user[e] as usize, plan.item[e] as usize, plan.star[e]);
        out.extend_from_slice(b"{\"reviewerID\": \"");
        out.extend_from_slice(&plan.reviewer_ids[u]);
        out.extend_from_slice(b"\", \"asin\": \"");
        out.extend_from_slice(&plan.asins[i]);
        out.extend_from_slice(b"\", \"reviewerName\": \"");
        push_name(&mut out, splitmix(name_key ^ u as u64));
        out.extend_from_slice(b"\", \"helpful\": [");
        let (yes, total) = helpful(&mut rng, star);
        push_u64(&mut out, yes);
        out.extend_from_slice(b", ");
        push_u64(&mut out, total);
        out.extend_from_slice(b"], \"reviewText\": \"");
        push_text(&mut out, &mut rng, star);
        out.extend_from_slice(b"\", \"overall\": ");
        push_u64(&mut out, u64::from(star));
        out.extend_from_slice(b".0, \"summary\": \"");
        push_summary(&mut out, &mut rng, star);
        out.extend_from_slice(b"\", \"unixReviewTime\": ");
        let day = i64::from(plan.day[e]);
        push_u64(&mut out, (day * 86_400) as u64);
        out.extend_from_slice(b", \"reviewTime\": \"");
        let (y, m, d) = civil_from_days(day);
        out.push(b'0' + (m / 10) as u8);
        out.push(b'0' + (m % 10) as u8);
        out.push(b' ');
        push_u64(&mut out, u64::from(d));
        out.extend_from_slice(b", ");
        push_u64(&mut out, y as u64);
        out.extend_from_slice(b"\"}\n");
    }
    out
}

fn push_u64(out: &mut Vec<u8>, mut v: u64) {
    let mut buf = [0u8; 20];
    let mut k = buf.len();
    loop {
        k -= 1;
        buf[k] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    out.extend_from_slice(&buf[k..]);
}

/// (year, month, day) of a day count since 1970-01-01 (Hinnant's civil-from-days).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

fn splitmix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// An element of `list` from 32 random bits, without a division.
fn pick<'a>(list: &[&'a str], bits: u32) -> &'a str {
    list[((u64::from(bits) * list.len() as u64) >> 32) as usize]
}

/// A reviewer's display name, fixed per reviewer (drawn from a hash of its index, so every chunk
/// agrees without shared state).
fn push_name(out: &mut Vec<u8>, h: u64) {
    let (a, b) = ((h >> 32) as u32, h as u32);
    let first = pick(FIRST_NAMES, a);
    let last = pick(LAST_NAMES, b);
    match h % 20 {
        0..=8 => {
            out.extend_from_slice(first.as_bytes());
            out.push(b' ');
            out.extend_from_slice(last.as_bytes());
        }
        9..=11 => {
            out.push(first.as_bytes()[0]);
            out.extend_from_slice(b". ");
            out.extend_from_slice(last.as_bytes());
        }
        12 | 13 => out.extend_from_slice(first.as_bytes()),
        14 => out.extend_from_slice(b"Amazon Customer"),
        15 => {
            out.extend_from_slice(first.as_bytes());
            out.push(b' ');
            out.push(last.as_bytes()[0]);
            out.push(b'.');
        }
        _ => {
            out.extend_from_slice(pick(COMMON, b.rotate_left(7)).as_bytes());
            out.extend_from_slice(last.to_ascii_lowercase().as_bytes());
            push_u64(out, (h >> 40) % 100);
        }
    }
}

/// Helpfulness votes: most reviews get none; the rest are long-tailed, and better reviews are
/// found helpful more often.
fn helpful(rng: &mut ChaCha8Rng, star: u8) -> (u64, u64) {
    if rng.gen_bool(0.55) {
        return (0, 0);
    }
    let lomax = (1.0 - rng.gen::<f64>()).powf(-1.0 / 1.3) - 1.0;
    let total = ((lomax * 3.0) as u64 + 1).min(5_000);
    let base = [0.45, 0.5, 0.6, 0.75, 0.85][usize::from(star - 1)];
    let p = (base + rng.gen_range(-0.25..0.25f64)).clamp(0.0, 1.0);
    let yes = ((total as f64 * p + rng.gen::<f64>()) as u64).min(total);
    (yes, total)
}

/// Review text: sentences of common words with words of the star's sentiment mixed in; the
/// length is log-normal (median about 300 characters, a long tail to several thousand).
fn push_text(out: &mut Vec<u8>, rng: &mut ChaCha8Rng, star: u8) {
    let z: f64 = rng.sample(StandardNormal);
    let target = (300.0 * (0.85 * z).exp()).clamp(12.0, 8_000.0) as usize;
    let mood = mood_words(star);
    let start = out.len();
    while out.len() - start < target {
        if out.len() > start {
            out.push(b' ');
        }
        let bits = rng.next_u64();
        let words = 4 + (bits % 13) as usize;
        for w in 0..words {
            let r = rng.next_u32();
            // About one word in sixteen carries the sentiment.
            let word = if r & 15 == 0 {
                pick(mood, r)
            } else {
                pick(COMMON, r)
            };
            if w == 0 {
                out.push(word.as_bytes()[0].to_ascii_uppercase());
                out.extend_from_slice(&word.as_bytes()[1..]);
            } else {
                out.push(b' ');
                out.extend_from_slice(word.as_bytes());
                if (r >> 8) & 31 == 0 && w + 1 < words {
                    out.push(b',');
                }
            }
        }
        out.push(if (bits >> 8) & 15 == 0 { b'!' } else { b'.' });
    }
}

fn push_summary(out: &mut Vec<u8>, rng: &mut ChaCha8Rng, star: u8) {
    let phrases = match star {
        1 | 2 => SUMMARY_BAD,
        3 => SUMMARY_MIXED,
        _ => SUMMARY_GOOD,
    };
    let r = rng.next_u32();
    out.extend_from_slice(pick(phrases, r).as_bytes());
    if r & 3 == 0 {
        out.extend_from_slice(b" for the ");
        out.extend_from_slice(pick(PRODUCTS, r.rotate_left(11)).as_bytes());
    }
}

fn mood_words(star: u8) -> &'static [&'static str] {
    match star {
        1 | 2 => NEGATIVE,
        3 => MIXED,
        _ => POSITIVE,
    }
}

// Word lists: plain ASCII letters only, so nothing needs JSON escaping.

#[rustfmt::skip]
const COMMON: &[&str] = &[
    "the", "the", "the", "and", "and", "a", "a", "to", "to", "it", "it", "is", "is", "I", "I",
    "of", "for", "this", "this", "that", "with", "on", "my", "you", "in", "was", "have", "but",
    "not", "be", "as", "so", "are", "one", "can", "they", "all", "very", "just", "if", "would",
    "use", "will", "get", "has", "like", "at", "or", "had", "an", "when", "no", "which", "there",
    "more", "than", "me", "well", "only", "other", "from", "up", "out", "also", "do", "after",
    "time", "some", "about", "what", "product", "unit", "price", "quality", "cable", "battery",
    "sound", "screen", "case", "device", "power", "charger", "camera", "speaker", "phone",
    "laptop", "computer", "set", "box", "plug", "port", "button", "light", "volume", "signal",
    "picture", "video", "music", "software", "setup", "installation", "manual", "instructions",
    "size", "weight", "design", "color", "fit", "plastic", "metal", "cord", "adapter", "remote",
    "mouse", "keyboard", "headphones", "ears", "hand", "desk", "car", "house", "room", "office",
    "work", "home", "day", "days", "week", "weeks", "month", "months", "year", "years", "hour",
    "hours", "minutes", "life", "charge", "connection", "bluetooth", "wireless", "usb", "hdmi",
    "tv", "drive", "memory", "card", "storage", "speed", "fast", "slow", "easy", "hard", "small",
    "large", "little", "big", "long", "short", "new", "old", "first", "second", "last", "few",
    "many", "much", "really", "pretty", "quite", "still", "even", "again", "back", "now", "then",
    "never", "always", "bought", "buy", "ordered", "received", "arrived", "shipped", "came",
    "works", "worked", "using", "used", "tried", "need", "needed", "wanted", "expected", "found",
    "looks", "feels", "seems", "made", "make", "comes", "took", "keep", "kept", "went", "put",
    "plugged", "connected", "installed", "replaced", "compared", "recommend", "reviews", "amazon",
    "seller", "brand", "model", "version", "features", "option", "options", "problem", "issue",
    "issues", "thing", "things", "way", "side", "end", "top", "bottom", "front", "inside", "extra",
    "same", "different", "enough", "both", "each", "every", "most", "any", "because", "since",
    "while", "though", "before", "around", "over", "into", "through", "without", "could", "should",
    "did", "does", "does", "been", "were", "we", "our", "your", "he", "she", "her", "his", "them",
    "their", "its", "these", "those", "here", "too", "lot", "bit", "able", "sure", "probably",
    "actually", "definitely", "overall", "however", "especially", "clear", "loud", "bright",
    "sturdy", "light", "heavy", "cheap", "compact", "portable", "solid", "simple",
];

#[rustfmt::skip]
const POSITIVE: &[&str] = &[
    "great", "excellent", "love", "perfect", "awesome", "happy", "recommend", "best", "amazing",
    "fantastic", "solid", "reliable", "impressed", "pleased", "wonderful", "nice", "good", "works",
    "sturdy", "crisp", "flawless", "bargain", "favorite", "superb", "glad",
];

#[rustfmt::skip]
const MIXED: &[&str] = &[
    "okay", "decent", "average", "fine", "but", "however", "mixed", "acceptable", "mediocre",
    "alright", "fair", "though", "somewhat", "expected", "not", "bad", "good", "enough",
];

#[rustfmt::skip]
const NEGATIVE: &[&str] = &[
    "broke", "returned", "refund", "disappointed", "junk", "waste", "poor", "worst", "defective",
    "useless", "stopped", "died", "cheap", "flimsy", "terrible", "awful", "failed", "broken",
    "avoid", "unfortunately", "never", "return", "frustrating", "dead", "problem",
];

#[rustfmt::skip]
const PRODUCTS: &[&str] = &[
    "price", "money", "cable", "charger", "headphones", "case", "adapter", "mouse", "keyboard",
    "speaker", "camera", "battery", "remote", "card", "drive", "router", "stand", "monitor",
];

#[rustfmt::skip]
const SUMMARY_GOOD: &[&str] = &[
    "Great product", "Five Stars", "Four Stars", "Works great", "Excellent", "Love it",
    "Highly recommend", "Just what I needed", "Good value", "Perfect", "Does the job",
    "Works as advertised", "Very happy", "Great buy", "Solid", "Nice", "Awesome",
    "Exactly as described", "Best purchase", "Good quality", "Works well", "Great value",
];

#[rustfmt::skip]
const SUMMARY_MIXED: &[&str] = &[
    "Three Stars", "OK", "Decent", "Not bad", "Could be better", "Average", "It works", "Good but",
    "Mixed feelings", "Fair", "So so", "Does the job mostly", "Not great",
];

#[rustfmt::skip]
const SUMMARY_BAD: &[&str] = &[
    "One Star", "Two Stars", "Junk", "Stopped working", "Disappointed", "Do not buy",
    "Waste of money", "Broke after a week", "Returned it", "Poor quality", "Not as described",
    "Defective", "Terrible", "Died quickly", "Avoid",
];

#[rustfmt::skip]
const FIRST_NAMES: &[&str] = &[
    "James", "Mary", "John", "Patricia", "Robert", "Jennifer", "Michael", "Linda", "William",
    "Elizabeth", "David", "Barbara", "Richard", "Susan", "Joseph", "Jessica", "Thomas", "Sarah",
    "Charles", "Karen", "Daniel", "Nancy", "Matthew", "Lisa", "Anthony", "Betty", "Mark",
    "Margaret", "Donald", "Sandra", "Steven", "Ashley", "Paul", "Kimberly", "Andrew", "Emily",
    "Joshua", "Donna", "Kenneth", "Michelle", "Kevin", "Carol", "Brian", "Amanda", "George",
    "Melissa", "Edward", "Deborah", "Ronald", "Stephanie", "Timothy", "Rebecca", "Jason", "Laura",
    "Jeffrey", "Sharon", "Ryan", "Cynthia", "Jacob", "Kathleen", "Gary", "Amy", "Nicholas",
    "Shirley", "Eric", "Angela", "Jonathan", "Helen", "Stephen", "Anna", "Larry", "Brenda",
];

#[rustfmt::skip]
const LAST_NAMES: &[&str] = &[
    "Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller", "Davis", "Rodriguez",
    "Martinez", "Hernandez", "Lopez", "Gonzalez", "Wilson", "Anderson", "Thomas", "Taylor",
    "Moore", "Jackson", "Martin", "Lee", "Perez", "Thompson", "White", "Harris", "Sanchez",
    "Clark", "Ramirez", "Lewis", "Robinson", "Walker", "Young", "Allen", "King", "Wright", "Scott",
    "Torres", "Nguyen", "Hill", "Flores", "Green", "Adams", "Nelson", "Baker", "Hall", "Rivera",
    "Campbell", "Mitchell", "Carter", "Roberts", "McDonald", "Murphy", "Cook", "Rogers", "Morgan",
    "Peterson", "Cooper", "Reed", "Bailey", "Bell", "Kelly", "Howard", "Ward", "Cox",
];

// ---------------------------------------------------------------------------------------------

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::read::GzDecoder;
    use proptest::prelude::*;
    use rand::Rng;
    use std::collections::HashMap;
    use std::io::{BufRead, BufReader, Read};

    fn params(users: usize, items: usize, ratings: usize, seed: u64) -> GenerateParams {
        GenerateParams {
            users,
            items,
            ratings,
            seed,
        }
    }

    fn small() -> GenerateParams {
        params(300, 120, 4_000, 7)
    }

    fn generate_bytes(p: &GenerateParams, threads: usize) -> Vec<u8> {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("r.json.gz");
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        pool.install(|| generate(p, &out, &Progress::hidden()))
            .unwrap();
        fs::read(&out).unwrap()
    }

    fn lines(gz: &[u8]) -> Vec<serde_json::Value> {
        BufReader::new(GzDecoder::new(gz))
            .lines()
            .map(|l| serde_json::from_str(&l.unwrap()).unwrap())
            .collect()
    }

    fn pearson(x: &[f64], y: &[f64]) -> f64 {
        let n = x.len() as f64;
        let (mx, my) = (x.iter().sum::<f64>() / n, y.iter().sum::<f64>() / n);
        let (mut sxy, mut sxx, mut syy) = (0.0, 0.0, 0.0);
        for (a, b) in x.iter().zip(y) {
            sxy += (a - mx) * (b - my);
            sxx += (a - mx) * (a - mx);
            syy += (b - my) * (b - my);
        }
        sxy / (sxx * syy).sqrt()
    }

    /// Degrees of a plan's edges, and whether any (user, item) pair repeats.
    fn check_graph(p: &GenerateParams, plan: &Plan) {
        assert_eq!(plan.user.len(), p.ratings);
        let mut ud = vec![0usize; p.users];
        let mut id = vec![0usize; p.items];
        let mut pairs = HashSet::new();
        for (&u, &i) in plan.user.iter().zip(&plan.item) {
            ud[u as usize] += 1;
            id[i as usize] += 1;
            assert!(pairs.insert((u, i)), "duplicate pair ({u}, {i}) in {p:?}");
        }
        assert!(ud.iter().all(|&d| d >= MIN_DEGREE), "user below 5 in {p:?}");
        assert!(id.iter().all(|&d| d >= MIN_DEGREE), "item below 5 in {p:?}");
    }

    #[test]
    fn same_seed_gives_identical_bytes_whatever_the_thread_count() {
        let one = generate_bytes(&small(), 1);
        let three = generate_bytes(&small(), 3);
        assert!(one == three, "bytes differ between 1 and 3 threads");
        assert_eq!(one, generate_bytes(&small(), 2));
    }

    #[test]
    fn different_seed_gives_different_bytes() {
        let a = generate_bytes(&small(), 2);
        let b = generate_bytes(&GenerateParams { seed: 8, ..small() }, 2);
        assert_ne!(a, b);
    }

    #[test]
    fn items_meta_names_every_generated_asin_once_with_its_genre_as_category() {
        let dir = tempfile::tempdir().unwrap();
        let (reviews, meta) = (dir.path().join("r.json.gz"), dir.path().join("m.json.gz"));
        let p = small();
        generate(&p, &reviews, &Progress::hidden()).unwrap();
        let summary = generate_items_meta(&p, &meta).unwrap();
        assert_eq!(summary.items, p.items);
        let read = crate::data::meta::read_items_meta(&meta).unwrap();
        assert_eq!(read.len(), p.items, "one line per item, no duplicates");
        let text = {
            let mut t = String::new();
            GzDecoder::new(&fs::read(&reviews).unwrap()[..])
                .read_to_string(&mut t)
                .unwrap();
            t
        };
        for line in text.lines() {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            let m = &read[v["asin"].as_str().unwrap()];
            let (title, category) = (m.title.as_deref().unwrap(), m.category.as_deref().unwrap());
            let genre = category.strip_prefix("Electronics > ").unwrap();
            let kinds = GENRE_NAMES.iter().find(|g| g.0 == genre).unwrap().1;
            assert!(
                kinds.iter().any(|k| title.contains(k)),
                "{title} in {genre}"
            );
            assert!(m
                .image_url
                .as_deref()
                .unwrap()
                .starts_with("https://example.com/"));
        }
        // The same seed gives the same bytes.
        let again = dir.path().join("m2.json.gz");
        generate_items_meta(&p, &again).unwrap();
        assert_eq!(fs::read(&meta).unwrap(), fs::read(&again).unwrap());
    }

    #[test]
    fn output_is_one_gzip_member_of_snap_lines() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("nested/folder/r.json.gz");
        let p = small();
        let summary = generate(&p, &out, &Progress::hidden()).unwrap();
        let gz = fs::read(&out).unwrap();
        assert_eq!(summary.bytes, gz.len() as u64);
        // A single-member decoder must reach the end of the file.
        let mut dec = GzDecoder::new(&gz[..]);
        let mut text = Vec::new();
        dec.read_to_end(&mut text).unwrap();
        assert_eq!(text.len() as u64, summary.uncompressed_bytes);
        assert!(dec.into_inner().is_empty(), "bytes after the first member");

        let keys = [
            "reviewerID",
            "asin",
            "reviewerName",
            "helpful",
            "reviewText",
            "overall",
            "summary",
            "unixReviewTime",
            "reviewTime",
        ];
        let first = std::str::from_utf8(&text).unwrap().lines().next().unwrap();
        let mut at = 0;
        for k in keys {
            let pos = first[at..].find(&format!("\"{k}\": ")).unwrap() + at;
            at = pos;
        }
        let rows = lines(&gz);
        assert_eq!(rows.len(), p.ratings);
        let mut id_of_name = HashMap::new();
        let mut prev_asin = String::new();
        for r in &rows {
            let obj = r.as_object().unwrap();
            assert_eq!(obj.keys().count(), 9);
            let rid = r["reviewerID"].as_str().unwrap();
            assert!(rid.len() == 14 && rid.starts_with('A'));
            assert!(rid
                .bytes()
                .all(|c| c.is_ascii_digit() || c.is_ascii_uppercase()));
            let asin = r["asin"].as_str().unwrap();
            assert_eq!(asin.len(), 10);
            assert!(asin >= prev_asin.as_str(), "rows are not ordered by asin");
            prev_asin = asin.to_string();
            // A reviewer keeps one name.
            let name = r["reviewerName"].as_str().unwrap().to_string();
            assert_eq!(
                id_of_name.entry(rid.to_string()).or_insert(name.clone()),
                &name
            );
            let helpful = r["helpful"].as_array().unwrap();
            assert!(helpful[0].as_u64().unwrap() <= helpful[1].as_u64().unwrap());
            let stars = r["overall"].as_f64().unwrap();
            assert!([1.0, 2.0, 3.0, 4.0, 5.0].contains(&stars));
            assert!(!r["reviewText"].as_str().unwrap().is_empty());
            let words = r["summary"].as_str().unwrap().split(' ').count();
            assert!((1..=8).contains(&words));
            let unix = r["unixReviewTime"].as_i64().unwrap();
            let date = chrono::DateTime::from_timestamp(unix, 0).unwrap();
            assert_eq!(
                r["reviewTime"].as_str().unwrap(),
                date.format("%m %-d, %Y").to_string()
            );
            assert!((2000..=2014).contains(&date.format("%Y").to_string().parse::<i32>().unwrap()));
        }
        assert_eq!(id_of_name.len(), p.users);
        // Nothing but the result is left in the folder.
        let left: Vec<_> = fs::read_dir(out.parent().unwrap()).unwrap().collect();
        assert_eq!(left.len(), 1);
    }

    #[test]
    fn every_user_and_item_has_five_distinct_ratings_in_the_file() {
        // Several text chunks, so the joins between deflate pieces are read too.
        let p = params(2_000, 600, 6 * CHUNK_RECORDS, 11);
        let rows = lines(&generate_bytes(&p, 2));
        let mut users: HashMap<String, usize> = HashMap::new();
        let mut items: HashMap<String, usize> = HashMap::new();
        let mut pairs = HashSet::new();
        for r in &rows {
            let (u, i) = (
                r["reviewerID"].as_str().unwrap(),
                r["asin"].as_str().unwrap(),
            );
            *users.entry(u.into()).or_default() += 1;
            *items.entry(i.into()).or_default() += 1;
            assert!(
                pairs.insert((u.to_string(), i.to_string())),
                "duplicate pair"
            );
        }
        assert_eq!(
            (users.len(), items.len(), rows.len()),
            (p.users, p.items, p.ratings)
        );
        assert!(users
            .values()
            .chain(items.values())
            .all(|&d| d >= MIN_DEGREE));
    }

    #[test]
    fn degrees_are_long_tailed() {
        let p = params(20_000, 6_000, 180_000, 3);
        let plan = Plan::draw(&p);
        check_graph(&p, &plan);
        let mut ud = vec![0usize; p.users];
        let mut id = vec![0usize; p.items];
        for (&u, &i) in plan.user.iter().zip(&plan.item) {
            ud[u as usize] += 1;
            id[i as usize] += 1;
        }
        let share_at_min = ud.iter().filter(|&&d| d == MIN_DEGREE).count() as f64 / p.users as f64;
        assert!(
            share_at_min > 0.2,
            "only {share_at_min} of users at the minimum"
        );
        let (umax, imax) = (ud.iter().max().unwrap(), id.iter().max().unwrap());
        assert!(
            *umax > 8 * p.ratings / p.users,
            "largest user degree {umax}"
        );
        assert!(
            *imax > 8 * p.ratings / p.items,
            "largest item degree {imax}"
        );
    }

    #[test]
    fn star_shares_match_the_target() {
        let p = params(3_000, 1_000, 40_000, 5);
        let plan = Plan::draw(&p);
        let mut counts = [0usize; 5];
        for &s in &plan.star {
            counts[usize::from(s - 1)] += 1;
        }
        for (k, &c) in counts.iter().enumerate() {
            let share = c as f64 / p.ratings as f64;
            assert!(
                (share - STAR_SHARES[k]).abs() < 0.02,
                "{} stars: {share} vs {}",
                k + 1,
                STAR_SHARES[k]
            );
        }
    }

    #[test]
    fn planted_structure_is_learnable() {
        let p = params(3_000, 1_000, 40_000, 9);
        let plan = Plan::draw(&p);
        let stars: Vec<f64> = plan.star.iter().map(|&s| f64::from(s)).collect();
        let signal: Vec<f64> = plan.signal.iter().map(|&s| f64::from(s)).collect();
        let r = pearson(&stars, &signal);
        assert!(
            r > 0.6,
            "stars correlate with the planted score at only {r}"
        );

        // Learnable from the data alone: damped user and item means fitted on 80% beat the
        // global mean on the other 20%.
        let test = |e: usize| splitmix(e as u64).is_multiple_of(5);
        let train: Vec<usize> = (0..p.ratings).filter(|&e| !test(e)).collect();
        let mu = train.iter().map(|&e| stars[e]).sum::<f64>() / train.len() as f64;
        let mut item_sum = vec![(0.0, 0.0); p.items];
        for &e in &train {
            let s = &mut item_sum[plan.item[e] as usize];
            s.0 += stars[e] - mu;
            s.1 += 1.0;
        }
        let bi: Vec<f64> = item_sum.iter().map(|(s, n)| s / (n + 5.0)).collect();
        let mut user_sum = vec![(0.0, 0.0); p.users];
        for &e in &train {
            let s = &mut user_sum[plan.user[e] as usize];
            s.0 += stars[e] - mu - bi[plan.item[e] as usize];
            s.1 += 1.0;
        }
        let bu: Vec<f64> = user_sum.iter().map(|(s, n)| s / (n + 5.0)).collect();
        let biases = |e: usize| mu + bu[plan.user[e] as usize] + bi[plan.item[e] as usize];

        // Taste beyond the biases is learnable too: a damped mean of each user's residuals within
        // each genre (the planted structure a factor model has to find) beats the biases.
        let planted = Planted::draw(p.users, p.items, &mut stream(p.seed, STREAM_MODEL));
        let genres = planted.genres();
        let cell = |e: usize| {
            let i = plan.item[e] as usize;
            plan.user[e] as usize * genres + planted.genre_start.partition_point(|&s| s <= i) - 1
        };
        let mut cell_sum = vec![(0.0, 0.0); p.users * genres];
        for &e in &train {
            let s = &mut cell_sum[cell(e)];
            s.0 += stars[e] - biases(e);
            s.1 += 1.0;
        }
        let taste = |e: usize| {
            let (s, n) = cell_sum[cell(e)];
            biases(e) + s / (n + 1.0)
        };

        let (mut base, mut model, mut tasted, mut n) = (0.0, 0.0, 0.0, 0.0);
        for e in (0..p.ratings).filter(|&e| test(e)) {
            base += (stars[e] - mu).powi(2);
            model += (stars[e] - biases(e)).powi(2);
            tasted += (stars[e] - taste(e)).powi(2);
            n += 1.0;
        }
        let [base, model, tasted] = [base, model, tasted].map(|x| (x / n).sqrt());
        assert!(
            model < 0.93 * base,
            "baseline rmse {model} vs global mean {base}"
        );
        assert!(
            tasted < 0.92 * model,
            "user-genre rmse {tasted} vs baseline {model}"
        );
    }

    #[test]
    fn item_choice_follows_planted_taste() {
        let p = params(3_000, 1_000, 40_000, 17);
        let plan = Plan::draw(&p);
        let planted = Planted::draw(p.users, p.items, &mut stream(p.seed, STREAM_MODEL));
        let mean_taste = |items: &[u32]| {
            plan.user
                .iter()
                .zip(items)
                .map(|(&u, &i)| f64::from(planted.taste(u as usize, i as usize)))
                .sum::<f64>()
                / items.len() as f64
        };
        // The same items handed to random reviewers keep every degree (popularity) but lose
        // taste: <p_u, q_i> over random pairs has mean 0 and standard deviation 1.
        let mut shuffled = plan.item.clone();
        shuffled.shuffle(&mut ChaCha8Rng::seed_from_u64(1));
        let (chosen, random) = (mean_taste(&plan.item), mean_taste(&shuffled));
        assert!(
            random.abs() < 0.1,
            "shuffled pairs have mean taste {random}"
        );
        assert!(chosen > 0.5, "chosen pairs have mean taste {chosen} only");

        // Light users too: they are served in random order, not after the heavy ones took the
        // genres they like.
        let mut degree = vec![0usize; p.users];
        for &u in &plan.user {
            degree[u as usize] += 1;
        }
        let light: Vec<usize> = (0..p.ratings)
            .filter(|&e| degree[plan.user[e] as usize] == MIN_DEGREE)
            .collect();
        let light_taste =
            light.iter().map(|&e| f64::from(plan.taste[e])).sum::<f64>() / light.len() as f64;
        assert!(light_taste > 0.5, "light users' mean taste {light_taste}");

        // Most of a user's reviews fall in the genre it likes best, far more than popularity
        // alone would put there.
        let genre_of = |i: u32| planted.genre_start.partition_point(|&s| s <= i as usize) - 1;
        let best_genre: Vec<usize> = (0..p.users)
            .map(|u| {
                (0..planted.genres())
                    .max_by(|&a, &b| {
                        planted
                            .genre_taste(u, a)
                            .total_cmp(&planted.genre_taste(u, b))
                    })
                    .unwrap()
            })
            .collect();
        let share_in_best = |items: &[u32]| {
            plan.user
                .iter()
                .zip(items)
                .filter(|&(&u, &i)| genre_of(i) == best_genre[u as usize])
                .count() as f64
                / items.len() as f64
        };
        let (chosen, random) = (share_in_best(&plan.item), share_in_best(&shuffled));
        assert!(
            chosen > 2.0 * random,
            "{chosen} of reviews in the favourite genre vs {random} by popularity"
        );
    }

    #[test]
    fn genres_partition_the_items() {
        for items in [1usize, 2, 7, 8, 9, 100, 2_000] {
            let planted = Planted::draw(3, items, &mut stream(items as u64, STREAM_MODEL));
            let starts = &planted.genre_start;
            assert_eq!(planted.genres(), GENRES.min(items));
            assert_eq!((starts[0], starts[starts.len() - 1]), (0, items));
            assert!(starts.windows(2).all(|w| w[0] < w[1]), "{starts:?}");
            assert_eq!(planted.q.len(), items * RANK);
        }
    }

    #[test]
    fn pick_genre_draws_in_proportion_to_weight_and_skips_empty_genres() {
        // Weights 0 (empty), 2 x 1 and 1 x 2: the second and third genres split [0, 1) evenly.
        let (rem, pull) = ([0u64, 2, 1], [5.0, 1.0, 2.0]);
        assert_eq!(pick_genre(&rem, &pull, 0.0), 1);
        assert_eq!(pick_genre(&rem, &pull, 0.49), 1);
        assert_eq!(pick_genre(&rem, &pull, 0.51), 2);
        assert_eq!(pick_genre(&rem, &pull, 1.0 - f64::EPSILON), 2);
        // A sliver past the end from rounding goes to the last genre with weight.
        assert_eq!(pick_genre(&[3, 0], &[1.0, 1.0], 1.0), 0);
    }

    #[test]
    fn gumbel_max_picks_in_proportion_to_exp_key() {
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        let keys = [0.0, 3f64.ln()];
        let n = 40_000;
        let second = (0..n)
            .filter(|_| keys[1] + gumbel(&mut rng) > keys[0] + gumbel(&mut rng))
            .count();
        let share = second as f64 / n as f64;
        assert!(
            (share - 0.75).abs() < 0.01,
            "picked the heavier key {share}"
        );
    }

    #[test]
    fn timestamps_span_years_with_growing_volume() {
        let p = params(3_000, 1_000, 40_000, 13);
        let plan = Plan::draw(&p);
        let year = |d: u32| civil_from_days(i64::from(d)).0;
        let early = plan.day.iter().filter(|&&d| year(d) <= 2006).count();
        let late = plan.day.iter().filter(|&&d| year(d) >= 2012).count();
        assert!(early > 0 && late > 3 * early, "early {early}, late {late}");
        assert!(plan
            .day
            .iter()
            .all(|&d| (FIRST_DAY..=LAST_DAY).contains(&i64::from(d))));
    }

    #[test]
    fn bad_params_are_rejected() {
        let check = |u, i, r| params(u, i, r, 0).check();
        assert!(matches!(check(0, 10, 50), Err(GenerateError::NoUsers)));
        assert!(matches!(check(10, 0, 50), Err(GenerateError::NoItems)));
        assert!(matches!(
            check(100, 10, 499),
            Err(GenerateError::TooFewRatings { min: 500, .. })
        ));
        assert!(matches!(
            check(10, 100, 499),
            Err(GenerateError::TooFewRatings { min: 500, .. })
        ));
        assert!(matches!(
            check(6, 6, 37),
            Err(GenerateError::TooManyRatings { max: 36, .. })
        ));
        assert!(matches!(
            check(4, 4, 16),
            Err(GenerateError::TooManyRatings { .. }) | Err(GenerateError::TooFewRatings { .. })
        ));
        if usize::BITS > 32 {
            assert!(matches!(
                check(1 << 33, 10, 1 << 36),
                Err(GenerateError::TooLarge { what: "users", .. })
            ));
        }
        assert!(check(5, 5, 25).is_ok());
        let msg = check(100, 10, 499).unwrap_err().to_string();
        assert!(msg.contains("`500`"), "{msg}");
        // Nothing is written for bad parameters.
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("r.json.gz");
        assert!(generate(&params(10, 10, 20, 0), &out, &Progress::hidden()).is_err());
        assert!(!out.exists());
    }

    #[test]
    fn complete_graph_is_generated() {
        let p = params(7, 5, 35, 1);
        let plan = Plan::draw(&p);
        check_graph(&p, &plan);
    }

    #[test]
    fn greedy_graph_realizes_bigraphic_degrees() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        for _ in 0..200 {
            let (users, items) = (rng.gen_range(1..30usize), rng.gen_range(1..30usize));
            // Degrees of a random graph are bigraphic by construction.
            let mut ud = vec![0u32; users];
            let mut id = vec![0u32; items];
            for du in ud.iter_mut() {
                for di in id.iter_mut() {
                    if rng.gen_bool(0.4) {
                        *du += 1;
                        *di += 1;
                    }
                }
            }
            assert!(is_bigraphic(&ud, &id));
            let targets = greedy_graph(&ud, &id, &mut rng);
            let mut got = vec![0u32; items];
            let mut at = 0;
            for &d in &ud {
                let mine = &targets[at..at + d as usize];
                let set: HashSet<_> = mine.iter().collect();
                assert_eq!(set.len(), mine.len(), "duplicate item for a user");
                for &i in mine {
                    got[i as usize] += 1;
                }
                at += d as usize;
            }
            assert_eq!(got, id);
        }
    }

    #[test]
    fn gale_ryser_rejects_impossible_degrees() {
        assert!(is_bigraphic(&[2, 1], &[1, 1, 1]));
        assert!(!is_bigraphic(&[3, 0], &[2, 1, 0]));
        assert!(!is_bigraphic(&[2, 2], &[2, 1]));
        assert!(is_bigraphic(
            &balanced_degrees(7, 30),
            &balanced_degrees(5, 30)
        ));
    }

    #[test]
    fn word_lists_need_no_json_escaping() {
        let lists = [
            COMMON,
            POSITIVE,
            MIXED,
            NEGATIVE,
            PRODUCTS,
            SUMMARY_GOOD,
            SUMMARY_MIXED,
            SUMMARY_BAD,
            FIRST_NAMES,
            LAST_NAMES,
        ];
        for w in lists.iter().flat_map(|l| l.iter()) {
            assert!(!w.is_empty());
            assert!(
                w.bytes().all(|c| c.is_ascii_alphanumeric() || c == b' '),
                "{w:?}"
            );
        }
    }

    /// Raw inflate of concatenated deflate pieces.
    fn inflate(z: &[u8], expected_len: usize) -> Vec<u8> {
        let mut d = flate2::Decompress::new(false);
        let mut back = Vec::with_capacity(expected_len + 1024);
        let status = d
            .decompress_vec(z, &mut back, flate2::FlushDecompress::Finish)
            .unwrap();
        assert_eq!(status, Status::StreamEnd);
        assert_eq!(d.total_in() as usize, z.len());
        back
    }

    #[test]
    fn deflate_pieces_join_into_one_stream() {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let mut pieces = Vec::new();
        for len in [0usize, 1, 1000, 70_000, 300_000, 1 << 20] {
            // Half text, half noise: both the matcher and stored blocks are exercised.
            let text: Vec<u8> = (0..len)
                .map(|k| {
                    if k % 2000 < 1000 {
                        b"review text "[k % 12]
                    } else {
                        rng.gen()
                    }
                })
                .collect();
            pieces.push(text);
        }
        let mut z = Vec::new();
        for p in &pieces {
            z.extend(deflate_sync(p).unwrap());
        }
        z.extend(deflate_finish().unwrap());
        let all = pieces.concat();
        assert!(inflate(&z, all.len()) == all);
    }

    #[test]
    fn deflate_flush_keeps_the_tail_of_a_full_size_chunk() {
        // A chunk of 8192 reviews of the Electronics size (drawn from an earlier version of the
        // plan) once lost its last bytes when the flush loop stopped at the first call that left
        // room in the buffer; chunks of that size must round-trip.
        let p = params(192_403, 63_001, 1_689_188, 42);
        let plan = Plan::draw(&p);
        let text = render_chunk(&plan, p.seed, 12, 12 * 8_192..13 * 8_192);
        let mut z = deflate_sync(&text).unwrap();
        z.extend(deflate_finish().unwrap());
        assert!(
            inflate(&z, text.len()) == text,
            "the chunk does not round-trip"
        );
    }

    #[test]
    fn fenwick_draws_in_proportion_to_weight() {
        let mut f = Fenwick::new(&[0, 3, 0, 1, 6]);
        let drawn: Vec<usize> = (0..10).map(|r| f.find(r)).collect();
        assert_eq!(drawn, vec![1, 1, 1, 3, 4, 4, 4, 4, 4, 4]);
        f.sub(4, 6);
        f.add(0, 2);
        assert_eq!(f.total(), 6);
        let drawn: Vec<usize> = (0..6).map(|r| f.find(r)).collect();
        assert_eq!(drawn, vec![0, 0, 1, 1, 1, 3]);
        let prefixes: Vec<u64> = (0..=6).map(|i| f.prefix(i)).collect();
        assert_eq!(prefixes, vec![0, 2, 5, 5, 6, 6, 6]);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn any_valid_size_gives_a_simple_graph_with_min_degrees(
            users in 5usize..40,
            items in 5usize..40,
            fill in 0.0f64..=1.0,
            seed in any::<u64>(),
        ) {
            let lo = MIN_DEGREE * users.max(items);
            let hi = users * items;
            let ratings = lo + ((hi - lo) as f64 * fill).round() as usize;
            let p = params(users, items, ratings, seed);
            prop_assert!(p.check().is_ok());
            check_graph(&p, &Plan::draw(&p));
        }

        #[test]
        fn civil_from_days_matches_chrono(day in -100_000i64..100_000) {
            let date = chrono::DateTime::from_timestamp(day * 86_400, 0).unwrap();
            let (y, m, d) = civil_from_days(day);
            prop_assert_eq!(format!("{y:04}-{m:02}-{d:02}"), date.format("%Y-%m-%d").to_string());
        }
    }
}
