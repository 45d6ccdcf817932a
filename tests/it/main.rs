//! The one integration-test binary: runs `recflow` as a user would, in temporary folders.

mod etl;
mod tracking;
mod train;
mod util;
