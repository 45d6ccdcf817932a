//! The one integration-test binary: runs `recflow` as a user would, in temporary folders.
// Tests say on stderr what they skip.
#![allow(clippy::print_stdout, clippy::print_stderr)]

mod cli;
mod compare;
mod etl;
mod families;
mod faults;
mod layers;
mod mlflow_model;
mod tracking;
mod train;
mod util;
