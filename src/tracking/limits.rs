//! Length limits MLflow enforces on keys and values (`mlflow/utils/validation.py`).

pub const MAX_KEY_CHARS: usize = 250;
pub const MAX_PARAM_VALUE_CHARS: usize = 6000;
pub const MAX_TAG_VALUE_CHARS: usize = 8000;
pub const MAX_EXPERIMENT_NAME_CHARS: usize = 500;
pub const MAX_DATASET_DIGEST_CHARS: usize = 36;
