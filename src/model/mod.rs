//! Models: the ALS family, the popularity baseline, and the saved-model format. Knows nothing
//! about the command line, tracking or serving.

pub mod als;
pub mod artifact;
pub mod popularity;
