//! Models: the families ([`family`] defines the traits; ALS, the baselines, item-kNN and EASE
//! implement them), the rule for recommending to a user ([`recommend`]), and the saved-model
//! format ([`artifact`]). Knows nothing about the command line, tracking or serving.

pub mod als;
pub mod artifact;
pub mod baselines;
pub mod ease;
pub mod family;
pub mod knn;
pub mod popularity;
pub mod recommend;

use std::path::Path;

use artifact::{ArtifactError, ModelMetadata};
use family::{Config, FamilyError, FamilyName, FitPlan, ParamSpec, Recommender};

pub use als::family::FitOptions;

/// The parameters a family takes.
pub fn params_of(family: FamilyName) -> &'static [ParamSpec] {
    match family {
        FamilyName::Als => als::family::PARAMS,
        FamilyName::GlobalMean => baselines::GLOBAL_MEAN_PARAMS,
        FamilyName::Biases => baselines::BIASES_PARAMS,
        FamilyName::Popularity => baselines::POPULARITY_PARAMS,
        FamilyName::Random => baselines::RANDOM_PARAMS,
        FamilyName::ItemKnn => knn::PARAMS,
        FamilyName::Ease => ease::PARAMS,
    }
}

/// Checks one configuration of a family: every rule that needs no data, before any work.
pub fn plan(
    family: FamilyName,
    config: &Config,
    options: &FitOptions,
) -> Result<Box<dyn FitPlan>, FamilyError> {
    Ok(match family {
        FamilyName::Als => Box::new(als::family::plan(config, options)?),
        FamilyName::GlobalMean
        | FamilyName::Biases
        | FamilyName::Popularity
        | FamilyName::Random => Box::new(baselines::plan(family, config, options.seed)?),
        FamilyName::ItemKnn => Box::new(knn::plan(config)?),
        FamilyName::Ease => Box::new(ease::plan(config)?),
    })
}

/// Reads the family's own files of a saved model.
pub fn load_recommender(
    dir: &Path,
    meta: &ModelMetadata,
) -> Result<Box<dyn Recommender>, ArtifactError> {
    let (nu, ni) = (meta.n_users, meta.n_items);
    Ok(match meta.family {
        FamilyName::Als => Box::new(als::family::load(
            dir,
            meta.predicts_ratings,
            meta.latent.unwrap_or(usize::MAX),
            &meta.params,
        )?),
        FamilyName::GlobalMean | FamilyName::Biases => {
            Box::new(baselines::BiasModel::load(dir, meta.family, nu, ni)?)
        }
        FamilyName::Popularity => Box::new(baselines::PopularityModel::load(dir, nu, ni)?),
        FamilyName::Random => Box::new(baselines::RandomModel {
            seed: meta
                .params
                .get("seed")
                .and_then(|v| v.as_f64())
                .map_or(0, |s| s as u64),
            n_users: nu,
            n_items: ni,
        }),
        FamilyName::ItemKnn => Box::new(knn::KnnModel::load(dir, nu, ni)?),
        FamilyName::Ease => Box::new(ease::EaseModel::load(dir, nu, ni)?),
    })
}
