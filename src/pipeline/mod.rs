//! The pipeline layer, between the commands and the core: what an experiment fits ([`search`]),
//! how results are selected ([`select`]), the training run itself ([`train`]), what it reports
//! ([`report`]: the leaderboard and warnings), the saved model ([`saved`]), and the experiment
//! with its MLflow run tree ([`experiment`]). Progress is reported through [`observer`].
//!
//! Knows nothing about the command line or the environment: it takes resolved settings.

pub mod champion;
pub mod experiment;
pub mod mlflow_model;
pub mod observer;
pub mod progress;
pub mod report;
pub mod saved;
pub mod search;
pub mod select;
pub mod system;
pub mod train;
