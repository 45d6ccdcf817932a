//! MD5 (RFC 1321), only to name dataset folders as MLflow's file store does
//! (`md5(name + digest)`, `md5(dataset_id + run_id)`). Not for anything secret.

use ::md5::{Digest, Md5};

/// Lower-case hex MD5 of the concatenation of `parts`.
pub(crate) fn md5_hex(parts: &[&[u8]]) -> String {
    let mut hasher = Md5::new();
    for part in parts {
        hasher.update(part);
    }
    hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::md5_hex;

    #[test]
    fn md5_matches_rfc_1321_vectors() {
        assert_eq!(md5_hex(&[b""]), "d41d8cd98f00b204e9800998ecf8427e");
        assert_eq!(md5_hex(&[b"abc"]), "900150983cd24fb0d6963f7d28e17f72");
        assert_eq!(
            md5_hex(&[
                b"1234567890123456789012345678901234567890",
                b"1234567890123456789012345678901234567890"
            ]),
            "57edf4a22be3c955ac49da2e2107b67a"
        );
    }

    #[test]
    fn md5_matches_mlflow_dataset_folder_names() {
        // From a store written by MLflow 3.17.2: dataset `ml100k` with digest `abc123`.
        assert_eq!(
            md5_hex(&[b"ml100k", b"abc123"]),
            "35f56c5d5644aeec2a77a129c6dc8b6b"
        );
        assert_eq!(
            md5_hex(&[
                b"35f56c5d5644aeec2a77a129c6dc8b6b",
                b"c981307922b24d6683e54486ee7e62ef"
            ]),
            "4f165f412f6d3b3eed1464cf875eabf1"
        );
    }
}
