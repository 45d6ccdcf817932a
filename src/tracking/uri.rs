//! Tracking URIs: which store a URI names, `file:` URIs to paths and back, and URIs with their
//! secrets masked for messages. Parsing goes through the `url` crate; only what MLflow reads
//! differently from RFC 3986 (`file:./relative`, bare `databricks`) is handled here.

use std::path::{Path, PathBuf};

use percent_encoding::{percent_decode_str, utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use url::Url;

use super::TrackingError;

/// A parsed tracking URI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TrackingUri {
    /// `file:./mlruns`, `file:///abs/mlruns` or a plain path.
    File(PathBuf),
    /// `http://` or `https://` base URL of an MLflow tracking server.
    Http(String),
}

impl TrackingUri {
    pub fn parse(uri: &str) -> Result<Self, TrackingError> {
        let trimmed = uri.trim();
        if trimmed.is_empty() {
            return Err(TrackingError::InvalidUri {
                uri: String::new(),
                reason: "it is empty".into(),
            });
        }
        // MLflow reads these bare words as schemes.
        if ["databricks", "databricks-uc", "uc"].contains(&trimmed.to_ascii_lowercase().as_str()) {
            return Err(TrackingError::UnsupportedUri {
                uri: trimmed.to_string(),
            });
        }
        let Some(scheme) = uri_scheme(trimmed) else {
            return Ok(TrackingUri::File(PathBuf::from(trimmed)));
        };
        match scheme.as_str() {
            "file" => file_uri_to_path(trimmed)
                .map(TrackingUri::File)
                .map_err(|reason| TrackingError::InvalidUri {
                    uri: mask_uri(trimmed),
                    reason,
                }),
            "http" | "https" => Ok(TrackingUri::Http(trimmed.to_string())),
            _ => Err(TrackingError::UnsupportedUri {
                uri: mask_uri(trimmed),
            }),
        }
    }
}

/// The scheme of a URI (lowercase), or `None` for a plain path. A one-letter scheme is a
/// Windows drive (`C:\runs`), as MLflow reads it.
fn uri_scheme(uri: &str) -> Option<String> {
    match Url::parse(uri) {
        Ok(url) if url.scheme().len() > 1 => Some(url.scheme().to_string()),
        _ => None,
    }
}

/// `file:./x` -> `./x`, `file:///a%20b` -> `/a b`, `file:/a` -> `/a`. A relative `file:` URI
/// stays relative (the `url` crate would make it absolute; MLflow does not).
fn file_uri_to_path(uri: &str) -> Result<PathBuf, String> {
    let rest = &uri["file:".len()..];
    if let Some(after) = rest.strip_prefix("//") {
        // `file://host/path`: only an empty host or `localhost` is local.
        let url = Url::parse(uri).map_err(|e| e.to_string())?;
        if let Some(host) = url
            .host_str()
            .filter(|h| !h.is_empty() && *h != "localhost")
        {
            return Err(format!("host `{host}` is not local"));
        }
        if !after.contains('/') {
            return Err("it names no path".into());
        }
        return decode(url.path()).map(PathBuf::from);
    }
    // `file:/abs` or `file:./relative`.
    let path = rest.split(['?', '#']).next().unwrap_or_default();
    if path.is_empty() {
        return Err("it names no path".into());
    }
    decode(path).map(PathBuf::from)
}

fn decode(s: &str) -> Result<String, String> {
    percent_decode_str(s)
        .decode_utf8()
        .map(|c| c.into_owned())
        .map_err(|_| "escapes are not UTF-8".to_string())
}

/// Everything but letters, digits and `/_.-~` is escaped, as Python's `pathlib.Path.as_uri`
/// does, so recflow's artifact URIs read like MLflow's own.
const PATHLIB_ESCAPED: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'/')
    .remove(b'_')
    .remove(b'.')
    .remove(b'-')
    .remove(b'~');

/// `/abs/my runs` -> `file:///abs/my%20runs`, as Python's `pathlib.Path.as_uri` writes it.
pub(crate) fn path_to_file_uri(path: &Path) -> String {
    let s = path.to_string_lossy().replace('\\', "/");
    let slash = if s.starts_with('/') { "" } else { "/" };
    format!("file://{slash}{}", utf8_percent_encode(&s, PATHLIB_ESCAPED))
}

/// A URI with user names, passwords and tokens replaced by `****`, for messages and logs. A
/// string that is not a URI but holds `@` or a query keeps only its scheme: better too little
/// than a secret.
pub fn mask_uri(uri: &str) -> String {
    let Ok(mut url) = Url::parse(uri) else {
        return match uri.split_once("://") {
            Some((scheme, rest)) if rest.contains(['@', '?']) => format!("{scheme}://****"),
            _ => uri.to_string(),
        };
    };
    let mut changed = false;
    if !url.username().is_empty() {
        changed |= url.set_username("****").is_ok();
    }
    if url.password().is_some() {
        changed |= url.set_password(Some("****")).is_ok();
    }
    if url.query_pairs().any(|(k, _)| is_secret_name(&k)) {
        let pairs: Vec<(String, String)> = url
            .query_pairs()
            .map(|(k, v)| {
                let v = if is_secret_name(&k) {
                    "****".to_string()
                } else {
                    v.into_owned()
                };
                (k.into_owned(), v)
            })
            .collect();
        url.query_pairs_mut().clear().extend_pairs(pairs);
        changed = true;
    }
    // An untouched URI is given back as written, not as the `url` crate normalises it.
    if changed {
        url.to_string()
    } else {
        uri.to_string()
    }
}

/// A URI for a person to open: user name and password removed (the browser asks for them), the
/// rest masked as [`mask_uri`] does.
pub fn link_uri(uri: &str) -> String {
    match Url::parse(uri) {
        Ok(mut url) if !url.username().is_empty() || url.password().is_some() => {
            let _ = url.set_username("");
            let _ = url.set_password(None);
            mask_uri(url.as_str().trim_end_matches('/'))
        }
        _ => mask_uri(uri),
    }
}

/// Text a server sent back (an error page, a message), with anything that looks like a
/// credential replaced by `****` and cut to [`ECHO_CHARS`] characters: a proxy or server that
/// echoes the request must not make recflow print its `Authorization` header.
pub fn redact(text: &str) -> String {
    use regex::Regex;
    use std::sync::LazyLock;
    static RULES: LazyLock<[(Regex, &str); 4]> = LazyLock::new(|| {
        let re = |p: &str| Regex::new(p).expect("valid pattern");
        [
            // Header lines: `Authorization: Basic dTpw`, `"cookie": "a=b"`.
            (
                re(
                    r#"(?i)((?:proxy-)?authorization|cookie|set-cookie|x-api-key)(["']?\s*[:=]\s*)[^\r\n]*"#,
                ),
                "$1$2****",
            ),
            (
                re(r"(?i)\b(basic|bearer)\s+[A-Za-z0-9+/=._~-]{4,}"),
                "$1 ****",
            ),
            // `password=x`, `"token": "x"`.
            (
                re(
                    r#"(?i)\b([a-z_]*(?:password|passwd|secret|token|api_?key)[a-z_]*)(["']?\s*[:=]\s*["']?)[^\s&"',;}]+"#,
                ),
                "$1$2****",
            ),
            // Credentials in a URI.
            (re(r"([A-Za-z][A-Za-z0-9+.-]*://)[^/\s@]+@"), "$1****@"),
        ]
    });
    let mut out = text.to_string();
    for (re, with) in RULES.iter() {
        out = re.replace_all(&out, *with).into_owned();
    }
    let cut: String = out.chars().take(ECHO_CHARS).collect();
    if cut.len() < out.len() {
        format!("{cut}…")
    } else {
        cut
    }
}

/// The most of a server's answer quoted in a message.
pub const ECHO_CHARS: usize = 300;

fn is_secret_name(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    ["password", "passwd", "pwd", "token", "secret", "key"]
        .iter()
        .any(|s| n.contains(s))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_uris_resolve_to_paths() {
        assert_eq!(
            TrackingUri::parse("file:./mlruns").unwrap(),
            TrackingUri::File("./mlruns".into())
        );
        assert_eq!(
            TrackingUri::parse("file:///tmp/my%20runs").unwrap(),
            TrackingUri::File("/tmp/my runs".into())
        );
        assert_eq!(
            TrackingUri::parse("file:/abs").unwrap(),
            TrackingUri::File("/abs".into())
        );
        assert_eq!(
            TrackingUri::parse("mlruns").unwrap(),
            TrackingUri::File("mlruns".into())
        );
        assert_eq!(
            TrackingUri::parse("C:\\runs").unwrap(),
            TrackingUri::File("C:\\runs".into())
        );
        assert!(matches!(
            TrackingUri::parse("file://otherhost/x"),
            Err(TrackingError::InvalidUri { .. })
        ));
    }

    #[test]
    fn http_uris_go_to_the_rest_store() {
        assert_eq!(
            TrackingUri::parse("http://127.0.0.1:5000").unwrap(),
            TrackingUri::Http("http://127.0.0.1:5000".into())
        );
        assert!(matches!(
            TrackingUri::parse("HTTPS://h/x").unwrap(),
            TrackingUri::Http(_)
        ));
    }

    #[test]
    fn database_uris_say_to_start_a_server_and_mask_the_password() {
        for uri in [
            "sqlite:///mlflow.db",
            "postgresql://bob:hunter2@db:5432/mlflow",
            "mysql+pymysql://bob:hunter2@db/mlflow",
            "databricks",
            "databricks://profile",
        ] {
            let err = TrackingUri::parse(uri).unwrap_err();
            let msg = err.to_string();
            assert!(matches!(err, TrackingError::UnsupportedUri { .. }), "{uri}");
            assert!(msg.contains("mlflow server --backend-store-uri"), "{msg}");
            assert!(!msg.contains("hunter2"), "{msg}");
        }
    }

    #[test]
    fn mask_uri_hides_passwords_and_tokens() {
        assert_eq!(
            mask_uri("https://u:pw@host:5000/x"),
            "https://****:****@host:5000/x"
        );
        assert_eq!(mask_uri("https://u@host/x"), "https://****@host/x");
        assert_eq!(
            mask_uri("postgresql://h/db?user=a&password=b"),
            "postgresql://h/db?user=a&password=****"
        );
        assert_eq!(mask_uri("http://h/x@y"), "http://h/x@y");
    }

    #[test]
    fn links_for_a_person_carry_no_user_name_or_password() {
        assert_eq!(link_uri("http://bob:hunter2@h:5000"), "http://h:5000");
        assert_eq!(link_uri("http://bob@h:5000/"), "http://h:5000");
        assert_eq!(link_uri("http://h:5000"), "http://h:5000");
    }

    #[test]
    fn server_echoes_never_carry_credentials_and_are_cut() {
        let echo = "500 Internal Server Error\nHost: h\nAuthorization: Basic dTpodW50ZXIy\n\
                    cookie: session=abc\n{\"password\": \"hunter2\", \"x\": 1}\n\
                    see https://bob:hunter2@h/x and token=abc123 or Bearer eyJhbGciOi.x";
        let r = redact(echo);
        for secret in [
            "dTpodW50ZXIy",
            "session=abc",
            "hunter2",
            "abc123",
            "eyJhbGciOi",
            "bob",
        ] {
            assert!(!r.contains(secret), "{secret} in {r}");
        }
        assert!(r.contains("Authorization: ****"), "{r}");
        assert!(r.contains("Host: h"), "{r}");
        assert!(r.contains("\"x\": 1"), "{r}");
        let long = redact(&"y".repeat(10_000));
        assert_eq!(long.chars().count(), ECHO_CHARS + 1);
    }

    #[test]
    fn path_to_file_uri_escapes_like_pathlib() {
        assert_eq!(
            path_to_file_uri(Path::new("/tmp/my runs/a+b#c%d~e")),
            "file:///tmp/my%20runs/a%2Bb%23c%25d~e"
        );
        let back = file_uri_to_path(&path_to_file_uri(Path::new("/tmp/é x"))).unwrap();
        assert_eq!(back, PathBuf::from("/tmp/é x"));
    }
}
