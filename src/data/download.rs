//! Downloading a raw data file over HTTP(S): streamed to `<dest>.part`, resumed with a `Range`
//! request when a partial file is there, checked (a `.gz` file must decode to its end), then
//! renamed to `<dest>`, so `<dest>` only ever holds a complete file.
//!
//! This module knows nothing about what the file holds beyond "gzip must decode", nor about
//! settings or the command line: the caller gives the URL and the path.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::progress::{Bar, Progress};
use flate2::read::MultiGzDecoder;
use reqwest::blocking::{Client, Response};
use reqwest::header::{CONTENT_RANGE, RANGE};
use reqwest::StatusCode;
use serde::Serialize;
use thiserror::Error;

/// How long to wait for a connection to open.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// How long to wait for the response headers and then for each read of the body. The blocking
/// client applies its timeout per operation, not to the whole transfer, so a large file may take
/// as long as it needs while a stalled connection still ends (and can be resumed).
const STALL_TIMEOUT: Duration = Duration::from_secs(120);
const BUFFER: usize = 256 << 10;

/// What a download did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DownloadReport {
    pub url: String,
    pub path: PathBuf,
    /// Size of the complete file.
    pub bytes: u64,
    /// Bytes received by this call.
    pub downloaded: u64,
    /// Bytes already in `<dest>.part` that this call kept (0 when it started from scratch).
    pub resumed_from: u64,
    /// Whether the file was checked to decode as gzip (names ending in `.gz`).
    pub gzip_verified: bool,
}

#[derive(Debug, Error)]
pub enum DownloadError {
    #[error("`{url}` is not a valid http(s) URL: {reason}")]
    BadUrl { url: String, reason: String },
    #[error(
        "cannot reach `{url}`: download it on a machine that can and save it as `{}`, or rerun \
         when online",
        dest.display()
    )]
    Offline {
        url: String,
        dest: PathBuf,
        #[source]
        source: reqwest::Error,
    },
    #[error(
        "`{url}` answered HTTP {status} {reason}, so nothing was saved to `{}`: check the URL (a \
         5xx answer may pass: try again later)",
        dest.display()
    )]
    Status {
        url: String,
        dest: PathBuf,
        status: u16,
        reason: String,
    },
    #[error(
        "the download of `{url}` stopped after {received} bytes; `{}` keeps them: run the same \
         command again to resume",
        part.display()
    )]
    Interrupted {
        url: String,
        part: PathBuf,
        received: u64,
        #[source]
        source: io::Error,
    },
    #[error(
        "`{url}` sent {size} bytes that are not valid gzip, so `{}` was removed: check the URL, \
         then download again",
        part.display()
    )]
    CorruptGzip {
        url: String,
        part: PathBuf,
        size: u64,
        #[source]
        source: io::Error,
    },
    #[error("cannot write `{}`", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot set up the HTTP client")]
    Client(#[source] reqwest::Error),
}

/// `<dest>.part`: where the bytes go until the file is complete and checked.
pub fn part_path(dest: &Path) -> PathBuf {
    let mut name = dest.as_os_str().to_os_string();
    name.push(".part");
    PathBuf::from(name)
}

/// Downloads `url` to `dest`, resuming `<dest>.part` when it exists, with a byte progress bar
/// (rate and ETA) when `progress` draws bars.
pub fn download(
    url: &str,
    dest: &Path,
    progress: &Progress,
) -> Result<DownloadReport, DownloadError> {
    let parsed = reqwest::Url::parse(url).map_err(|e| DownloadError::BadUrl {
        url: url.to_string(),
        reason: e.to_string(),
    })?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(DownloadError::BadUrl {
            url: url.to_string(),
            reason: format!("the scheme is `{}`", parsed.scheme()),
        });
    }
    let part = part_path(dest);
    let io_err = |path: &Path| {
        let path = path.to_path_buf();
        move |source| DownloadError::Io { path, source }
    };
    let client = Client::builder()
        .connect_timeout(CONNECT_TIMEOUT)
        .timeout(STALL_TIMEOUT)
        .build()
        .map_err(DownloadError::Client)?;

    let mut allow_resume = true;
    let (resumed_from, downloaded) = loop {
        let have = match fs::metadata(&part) {
            Ok(m) if allow_resume => m.len(),
            _ => 0,
        };
        let mut request = client.get(parsed.clone());
        if have > 0 {
            request = request.header(RANGE, format!("bytes={have}-"));
        }
        let response = request.send().map_err(|source| DownloadError::Offline {
            url: url.to_string(),
            dest: dest.to_path_buf(),
            source,
        })?;
        let status = response.status();
        match status {
            StatusCode::PARTIAL_CONTENT if have > 0 => {
                if content_range_start(&response) != Some(have) {
                    // A range other than the one asked for: the safe course is a fresh start.
                    allow_resume = false;
                    continue;
                }
                let got = receive(response, url, &part, have, progress)?;
                break (have, got);
            }
            StatusCode::OK => {
                // Fresh start, or the server ignored the range: either way from byte 0.
                let got = receive(response, url, &part, 0, progress)?;
                break (0, got);
            }
            StatusCode::RANGE_NOT_SATISFIABLE if have > 0 => {
                // The part already holds everything, unless the server says the file is of
                // another size; the check below decides for gzip.
                match content_range_total(&response) {
                    Some(total) if total != have => {
                        allow_resume = false;
                        continue;
                    }
                    _ => break (have, 0),
                }
            }
            _ => {
                return Err(DownloadError::Status {
                    url: url.to_string(),
                    dest: dest.to_path_buf(),
                    status: status.as_u16(),
                    reason: status.canonical_reason().unwrap_or("").to_string(),
                })
            }
        }
    };

    let bytes = fs::metadata(&part).map_err(io_err(&part))?.len();
    let gzip_verified = is_gzip_name(dest);
    if gzip_verified {
        let bar = progress.bytes(bytes, &label("checking", url));
        let checked = check_gzip(&part, bytes, &bar);
        bar.finish();
        if let Err(source) = checked {
            // A corrupt file cannot be resumed into a good one.
            let _ = fs::remove_file(&part);
            return Err(DownloadError::CorruptGzip {
                url: url.to_string(),
                part,
                size: bytes,
                source,
            });
        }
    }
    fs::rename(&part, dest).map_err(io_err(dest))?;
    Ok(DownloadReport {
        url: url.to_string(),
        path: dest.to_path_buf(),
        bytes,
        downloaded,
        resumed_from,
        gzip_verified,
    })
}

/// Streams the body into `part` (appended after `offset` bytes, or from scratch when `offset` is
/// 0) and returns the bytes received.
fn receive(
    mut response: Response,
    url: &str,
    part: &Path,
    offset: u64,
    progress: &Progress,
) -> Result<u64, DownloadError> {
    let io_err = |source| DownloadError::Io {
        path: part.to_path_buf(),
        source,
    };
    if let Some(dir) = part.parent().filter(|d| !d.as_os_str().is_empty()) {
        fs::create_dir_all(dir).map_err(io_err)?;
    }
    let mut file = if offset > 0 {
        OpenOptions::new().append(true).open(part)
    } else {
        File::create(part)
    }
    .map_err(io_err)?;
    let expected = response.content_length();
    let bar = progress.bytes(expected.map(|n| n + offset), &label("downloading", url));
    bar.set_position(offset);
    let mut buf = vec![0u8; BUFFER];
    let mut received = 0u64;
    let interrupted = |received: u64, source| DownloadError::Interrupted {
        url: url.to_string(),
        part: part.to_path_buf(),
        received: offset + received,
        source,
    };
    loop {
        let n = match response.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(source) => {
                file.flush().map_err(io_err)?;
                bar.finish();
                return Err(interrupted(received, source));
            }
        };
        file.write_all(&buf[..n]).map_err(io_err)?;
        received += n as u64;
        bar.set_position(offset + received);
    }
    file.flush().map_err(io_err)?;
    bar.finish();
    match expected {
        Some(want) if received < want => Err(interrupted(
            received,
            io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("the server promised {want} bytes and sent {received}"),
            ),
        )),
        _ => Ok(received),
    }
}

/// The first byte of a `Content-Range: bytes A-B/N` answer.
fn content_range_start(response: &Response) -> Option<u64> {
    let v = response.headers().get(CONTENT_RANGE)?.to_str().ok()?;
    let range = v.trim().strip_prefix("bytes")?.trim_start();
    range.split('-').next()?.trim().parse().ok()
}

/// The full size in a `Content-Range: bytes A-B/N` or `bytes */N` answer.
fn content_range_total(response: &Response) -> Option<u64> {
    let v = response.headers().get(CONTENT_RANGE)?.to_str().ok()?;
    v.rsplit('/').next()?.trim().parse().ok()
}

fn is_gzip_name(path: &Path) -> bool {
    path.file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.to_ascii_lowercase().ends_with(".gz"))
}

/// Decodes every gzip member of the file to its end.
fn check_gzip(path: &Path, size: u64, bar: &Bar) -> io::Result<()> {
    if size == 0 {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "the file is empty",
        ));
    }
    let file = Counted {
        inner: File::open(path)?,
        read: 0,
        bar,
    };
    let file = BufReader::with_capacity(BUFFER, file);
    io::copy(&mut MultiGzDecoder::new(file), &mut io::sink())?;
    Ok(())
}

/// A reader that moves a progress bar by the bytes it reads.
struct Counted<'a, R> {
    inner: R,
    read: u64,
    bar: &'a Bar,
}

impl<R: Read> Read for Counted<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read += n as u64;
        self.bar.set_position(self.read);
        Ok(n)
    }
}

/// The bar's label: the verb and the file name of the URL.
fn label(verb: &str, url: &str) -> String {
    let name = url
        .rsplit('/')
        .next()
        .filter(|n| !n.is_empty())
        .unwrap_or(url);
    format!("{verb} {name}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::write::GzEncoder;
    use flate2::Compression;
    use std::collections::HashMap;
    use std::io::{BufRead, BufReader};
    use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{Arc, Mutex};
    use std::thread::JoinHandle;

    /// How the test server answers one path.
    #[derive(Clone)]
    enum Route {
        /// A file, honouring `Range: bytes=N-`.
        File(Vec<u8>),
        /// The first request gets the full `Content-Length` but half the body, then the
        /// connection closes; later requests are served as `File`.
        DropFirst(Vec<u8>),
        /// Always the whole file with 200, whatever the range.
        IgnoreRange(Vec<u8>),
    }

    /// One request as the server saw it.
    #[derive(Debug, Clone)]
    struct Seen {
        path: String,
        range: Option<String>,
    }

    /// An HTTP/1.1 server on 127.0.0.1 for one test: one request per connection, stops when
    /// dropped, and serves at most `MAX_CONNECTIONS`.
    struct Server {
        addr: SocketAddr,
        seen: Arc<Mutex<Vec<Seen>>>,
        stop: Arc<AtomicBool>,
        thread: Option<JoinHandle<()>>,
    }

    const MAX_CONNECTIONS: usize = 50;

    impl Server {
        fn start(routes: Vec<(&str, Route)>) -> Server {
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            let addr = listener.local_addr().unwrap();
            let routes: HashMap<String, Route> = routes
                .into_iter()
                .map(|(p, r)| (p.to_string(), r))
                .collect();
            let seen = Arc::new(Mutex::new(Vec::new()));
            let stop = Arc::new(AtomicBool::new(false));
            let (seen2, stop2) = (seen.clone(), stop.clone());
            let thread = std::thread::spawn(move || {
                let mut dropped: HashMap<String, bool> = HashMap::new();
                for _ in 0..MAX_CONNECTIONS {
                    let Ok((stream, _)) = listener.accept() else {
                        break;
                    };
                    if stop2.load(Ordering::SeqCst) {
                        break;
                    }
                    let _ = serve(stream, &routes, &seen2, &mut dropped);
                }
            });
            Server {
                addr,
                seen,
                stop,
                thread: Some(thread),
            }
        }

        fn url(&self, path: &str) -> String {
            format!("http://{}{path}", self.addr)
        }

        fn seen(&self) -> Vec<Seen> {
            self.seen.lock().unwrap().clone()
        }
    }

    impl Drop for Server {
        fn drop(&mut self) {
            self.stop.store(true, Ordering::SeqCst);
            // Wake the accept call so the thread sees the flag.
            let _ = TcpStream::connect(self.addr);
            if let Some(t) = self.thread.take() {
                let _ = t.join();
            }
        }
    }

    fn serve(
        stream: TcpStream,
        routes: &HashMap<String, Route>,
        seen: &Mutex<Vec<Seen>>,
        dropped: &mut HashMap<String, bool>,
    ) -> io::Result<()> {
        stream.set_read_timeout(Some(Duration::from_secs(5)))?;
        let mut reader = BufReader::new(stream.try_clone()?);
        let mut line = String::new();
        reader.read_line(&mut line)?;
        let path = line.split_whitespace().nth(1).unwrap_or("/").to_string();
        let mut range = None;
        loop {
            let mut h = String::new();
            if reader.read_line(&mut h)? == 0 || h == "\r\n" {
                break;
            }
            if let Some((k, v)) = h.split_once(':') {
                if k.eq_ignore_ascii_case("range") {
                    range = Some(v.trim().to_string());
                }
            }
        }
        seen.lock().unwrap().push(Seen {
            path: path.clone(),
            range: range.clone(),
        });
        let mut out = stream;
        let head = |status: &str, len: usize, extra: &str| {
            format!(
                "HTTP/1.1 {status}\r\nContent-Length: {len}\r\nConnection: close\r\n{extra}\r\n"
            )
        };
        let start = range
            .as_deref()
            .and_then(|r| r.strip_prefix("bytes="))
            .and_then(|r| r.strip_suffix('-'))
            .and_then(|r| r.parse::<usize>().ok());
        match routes.get(&path) {
            None => {
                let body = "not found";
                out.write_all(head("404 Not Found", body.len(), "").as_bytes())?;
                out.write_all(body.as_bytes())?;
            }
            Some(Route::DropFirst(body)) if !dropped.contains_key(&path) => {
                dropped.insert(path.clone(), true);
                out.write_all(head("200 OK", body.len(), "").as_bytes())?;
                out.write_all(&body[..body.len() / 2])?;
                out.flush()?;
                out.shutdown(Shutdown::Both)?;
            }
            Some(Route::File(body)) | Some(Route::DropFirst(body)) => match start {
                None => {
                    out.write_all(head("200 OK", body.len(), "").as_bytes())?;
                    out.write_all(body)?;
                }
                Some(s) if s >= body.len() => {
                    let extra = format!("Content-Range: bytes */{}\r\n", body.len());
                    out.write_all(head("416 Range Not Satisfiable", 0, &extra).as_bytes())?;
                }
                Some(s) => {
                    let extra = format!(
                        "Content-Range: bytes {s}-{}/{}\r\n",
                        body.len() - 1,
                        body.len()
                    );
                    out.write_all(head("206 Partial Content", body.len() - s, &extra).as_bytes())?;
                    out.write_all(&body[s..])?;
                }
            },
            Some(Route::IgnoreRange(body)) => {
                out.write_all(head("200 OK", body.len(), "").as_bytes())?;
                out.write_all(body)?;
            }
        }
        out.flush()
    }

    /// A gzip file of a few hundred kilobytes that compresses poorly, so halves are large.
    fn fixture() -> Vec<u8> {
        let mut text = Vec::new();
        let mut x = 0x2545_f491_4f6c_dd1du64;
        for i in 0..40_000u64 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            writeln!(text, "{{\"line\": {i}, \"value\": \"{x:016x}\"}}").unwrap();
        }
        let mut gz = GzEncoder::new(Vec::new(), Compression::fast());
        gz.write_all(&text).unwrap();
        gz.finish().unwrap()
    }

    #[test]
    fn full_download_writes_the_file_and_removes_the_part() {
        let data = fixture();
        let server = Server::start(vec![("/r.json.gz", Route::File(data.clone()))]);
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("raw/r.json.gz");
        let report = download(&server.url("/r.json.gz"), &dest, &Progress::hidden()).unwrap();
        assert_eq!(fs::read(&dest).unwrap(), data);
        assert!(!part_path(&dest).exists());
        assert_eq!(report.bytes, data.len() as u64);
        assert_eq!(report.downloaded, data.len() as u64);
        assert_eq!(report.resumed_from, 0);
        assert!(report.gzip_verified);
        assert_eq!(server.seen()[0].range, None);
    }

    #[test]
    fn not_found_is_a_status_error_naming_the_url() {
        let server = Server::start(vec![]);
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("r.json.gz");
        let url = server.url("/missing.json.gz");
        let err = download(&url, &dest, &Progress::hidden()).unwrap_err();
        assert!(
            matches!(err, DownloadError::Status { status: 404, .. }),
            "{err:?}"
        );
        let msg = err.to_string();
        assert!(msg.contains(&url) && msg.contains("404"), "{msg}");
        assert!(!dest.exists() && !part_path(&dest).exists());
    }

    #[test]
    fn dropped_connection_keeps_the_part_and_the_next_call_resumes_with_range() {
        let data = fixture();
        let server = Server::start(vec![("/r.json.gz", Route::DropFirst(data.clone()))]);
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("r.json.gz");
        let url = server.url("/r.json.gz");

        let err = download(&url, &dest, &Progress::hidden()).unwrap_err();
        let DownloadError::Interrupted { received, .. } = &err else {
            panic!("expected an interrupted download, got {err:?}");
        };
        let kept = fs::metadata(part_path(&dest)).unwrap().len();
        assert_eq!(kept, *received);
        assert!(kept > 0 && kept < data.len() as u64, "kept {kept}");
        assert!(!dest.exists());
        let msg = err.to_string();
        assert!(
            msg.contains("again to resume") && msg.contains(".part"),
            "{msg}"
        );

        let report = download(&url, &dest, &Progress::hidden()).unwrap();
        assert_eq!(fs::read(&dest).unwrap(), data);
        assert!(!part_path(&dest).exists());
        assert_eq!(report.resumed_from, kept);
        assert_eq!(report.downloaded, data.len() as u64 - kept);
        let seen = server.seen();
        assert_eq!(seen.len(), 2);
        assert!(seen.iter().all(|s| s.path == "/r.json.gz"));
        assert_eq!(
            seen[1].range.as_deref(),
            Some(format!("bytes={kept}-").as_str())
        );
    }

    #[test]
    fn server_ignoring_the_range_starts_over() {
        let data = fixture();
        let server = Server::start(vec![("/r.json.gz", Route::IgnoreRange(data.clone()))]);
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("r.json.gz");
        fs::write(part_path(&dest), b"stale bytes").unwrap();
        let report = download(&server.url("/r.json.gz"), &dest, &Progress::hidden()).unwrap();
        assert_eq!(fs::read(&dest).unwrap(), data);
        assert_eq!(report.resumed_from, 0);
        assert_eq!(server.seen()[0].range.as_deref(), Some("bytes=11-"));
    }

    #[test]
    fn range_past_the_end_is_taken_as_complete_and_verified() {
        let data = fixture();
        let server = Server::start(vec![("/r.json.gz", Route::File(data.clone()))]);
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("r.json.gz");
        fs::write(part_path(&dest), &data).unwrap();
        let report = download(&server.url("/r.json.gz"), &dest, &Progress::hidden()).unwrap();
        assert_eq!(fs::read(&dest).unwrap(), data);
        assert_eq!(
            (report.downloaded, report.resumed_from),
            (0, data.len() as u64)
        );

        // A complete-looking part that is not gzip is removed.
        let dest = dir.path().join("s.json.gz");
        let junk = vec![b'x'; data.len()];
        fs::write(part_path(&dest), &junk).unwrap();
        let err = download(&server.url("/r.json.gz"), &dest, &Progress::hidden()).unwrap_err();
        assert!(matches!(err, DownloadError::CorruptGzip { .. }), "{err:?}");
        assert!(!part_path(&dest).exists() && !dest.exists());
    }

    #[test]
    fn corrupt_gzip_is_rejected_and_the_part_removed() {
        let mut data = fixture();
        data.truncate(data.len() - 100);
        let server = Server::start(vec![
            ("/cut.json.gz", Route::File(data)),
            (
                "/plain.json.gz",
                Route::File(b"{\"not\": \"gzip\"}\n".to_vec()),
            ),
        ]);
        let dir = tempfile::tempdir().unwrap();
        for name in ["cut.json.gz", "plain.json.gz"] {
            let dest = dir.path().join(name);
            let url = server.url(&format!("/{name}"));
            let err = download(&url, &dest, &Progress::hidden()).unwrap_err();
            assert!(matches!(err, DownloadError::CorruptGzip { .. }), "{err:?}");
            assert!(err.to_string().contains(&url));
            assert!(!part_path(&dest).exists() && !dest.exists());
        }
    }

    #[test]
    fn files_not_named_gz_are_not_decoded() {
        let server = Server::start(vec![("/r.csv", Route::File(b"user,item\n1,2\n".to_vec()))]);
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("r.csv");
        let report = download(&server.url("/r.csv"), &dest, &Progress::hidden()).unwrap();
        assert!(!report.gzip_verified);
        assert_eq!(fs::read(&dest).unwrap(), b"user,item\n1,2\n");
    }

    #[test]
    fn unreachable_port_gives_the_offline_error() {
        // A port that was just free: nothing listens there.
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("r.json.gz");
        let url = format!("http://127.0.0.1:{port}/r.json.gz");
        let err = download(&url, &dest, &Progress::hidden()).unwrap_err();
        assert!(matches!(err, DownloadError::Offline { .. }), "{err:?}");
        let msg = err.to_string();
        assert!(msg.contains(&url), "{msg}");
        assert!(msg.contains(&dest.display().to_string()), "{msg}");
        assert!(!part_path(&dest).exists());
    }

    #[test]
    fn bad_url_is_rejected_before_any_request() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("r.json.gz");
        for url in ["not a url", "ftp://example.com/r.json.gz"] {
            let err = download(url, &dest, &Progress::hidden()).unwrap_err();
            assert!(matches!(err, DownloadError::BadUrl { .. }), "{err:?}");
        }
    }

    #[test]
    fn part_path_appends_to_the_file_name() {
        assert_eq!(
            part_path(Path::new("data/raw/r.json.gz")),
            PathBuf::from("data/raw/r.json.gz.part")
        );
    }
}
