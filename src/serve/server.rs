//! Running the server: settings, binding, graceful shutdown, and the signal handling
//! (`SIGTERM`/`SIGINT` stop after in-flight requests finish, `SIGHUP` reloads the model).
//!
//! [`run_server`] is the whole `recflow serve` command short of parsing its flags: it builds the
//! async runtime, starts listening at once (so `/health` answers while a large model loads), loads
//! the model and serves until a signal. Settings arrive resolved; nothing here reads the
//! environment or the command line.

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::watch;

use super::error::ServeError;
use super::state::{dir_loader, AppState, ModelLoader, ReloadRequest};

/// Everything the server needs, resolved by the caller.
#[derive(Clone)]
pub struct ServeSettings {
    /// Address to listen on (`127.0.0.1`, `0.0.0.0`, `::`).
    pub host: String,
    pub port: u16,
    /// The model folder loaded at start, on `SIGHUP`, and by a reload naming no model.
    pub model_dir: PathBuf,
    /// Bearer token for `POST /admin/reload`; `None` (or empty) disables the endpoint.
    pub admin_token: Option<String>,
    /// Longest time a request may take before it is answered with 503.
    pub request_timeout: Duration,
    /// Largest request body, in bytes.
    pub body_limit: usize,
    /// Scoring threads, and async worker threads; 0 means one per core.
    pub threads: usize,
    /// A connection with no traffic for this long is closed (kept above `request_timeout`).
    pub idle_timeout: Duration,
    /// Most connections held at once; 0 means the open-file limit less a margin.
    pub max_connections: usize,
    /// The demo page shows product images by URL (the browser loads them; recflow never does).
    pub show_images: bool,
}

impl Default for ServeSettings {
    fn default() -> Self {
        Self {
            host: "127.0.0.1".into(),
            port: 8000,
            model_dir: PathBuf::from("artifacts/model"),
            admin_token: None,
            request_timeout: Duration::from_secs(10),
            body_limit: 1024 * 1024,
            threads: 0,
            idle_timeout: Duration::from_secs(15),
            max_connections: 0,
            show_images: false,
        }
    }
}

impl std::fmt::Debug for ServeSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the token.
        f.debug_struct("ServeSettings")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("model_dir", &self.model_dir)
            .field("admin_token", &self.admin_token.as_ref().map(|_| "***"))
            .field("request_timeout", &self.request_timeout)
            .field("body_limit", &self.body_limit)
            .field("threads", &self.threads)
            .field("idle_timeout", &self.idle_timeout)
            .field("max_connections", &self.max_connections)
            .finish()
    }
}

impl ServeSettings {
    /// `threads`, with 0 meaning the number of cores.
    pub fn effective_threads(&self) -> usize {
        if self.threads > 0 {
            self.threads
        } else {
            std::thread::available_parallelism().map_or(1, |n| n.get())
        }
    }

    /// The connection limit: `max_connections`, or the open-file limit less a margin.
    pub fn connection_limit(&self) -> usize {
        if self.max_connections > 0 {
            self.max_connections
        } else {
            super::listener::default_connection_limit()
        }
    }

    /// The idle timeout, never below the request timeout (a slow answer is not idleness).
    pub fn effective_idle_timeout(&self) -> Duration {
        self.idle_timeout
            .max(self.request_timeout + Duration::from_secs(1))
    }

    /// The socket address to listen on.
    pub fn socket_addr(&self) -> Result<SocketAddr, ServeError> {
        let host = self.host.trim_start_matches('[').trim_end_matches(']');
        let ip: IpAddr = match host {
            "localhost" => IpAddr::from([127, 0, 0, 1]),
            h => h.parse().map_err(|_| ServeError::Host {
                host: self.host.clone(),
            })?,
        };
        Ok(SocketAddr::new(ip, self.port))
    }
}

/// As [`serve`], on a listener the caller bound (port 0 in tests, for example).
pub async fn serve_on(
    listener: TcpListener,
    state: AppState,
    settings: &ServeSettings,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    let listener = super::listener::LimitedListener::new(
        listener,
        settings.connection_limit(),
        settings.effective_idle_timeout(),
    );
    axum::serve(listener, super::app(state))
        .with_graceful_shutdown(shutdown)
        .await
        .map_err(ServeError::Io)
}

async fn bind(addr: SocketAddr) -> Result<TcpListener, ServeError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| ServeError::Bind { addr, source })
}

/// `recflow serve`: serves the model in `settings.model_dir` until `SIGTERM` or `SIGINT`.
pub fn run_server(settings: ServeSettings) -> Result<(), ServeError> {
    if !settings.model_dir.exists() {
        return Err(ServeError::MissingModel(settings.model_dir.clone()));
    }
    let loader = dir_loader(settings.model_dir.clone());
    run_server_with(settings, loader)
}

/// As [`run_server`], with models found by `loader` (for example one that resolves run ids).
pub fn run_server_with(settings: ServeSettings, loader: ModelLoader) -> Result<(), ServeError> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(settings.effective_threads())
        .thread_name("recflow-http")
        .enable_all()
        .build()
        .map_err(ServeError::Runtime)?;
    runtime.block_on(run(settings, loader))
}

async fn run(settings: ServeSettings, loader: ModelLoader) -> Result<(), ServeError> {
    let mut signals = Signals::install()?;
    let state = AppState::with_loader(&settings, loader);
    let addr = settings.socket_addr()?;
    let listener = bind(addr).await?;
    tracing::info!("listening on http://{addr}");

    let (stop, mut stopped) = watch::channel(false);
    let state_for_server = state.clone();
    tracing::debug!(
        "at most {} connections, closed after {:?} idle",
        settings.connection_limit(),
        settings.effective_idle_timeout()
    );
    let server_settings = settings.clone();
    let mut server = tokio::spawn(async move {
        serve_on(listener, state_for_server, &server_settings, async move {
            let _ = stopped.wait_for(|&s| s).await;
        })
        .await
    });
    let first = state.clone();
    let mut first_load =
        tokio::spawn(async move { first.reload(ReloadRequest::default()).await.map(|_| ()) });
    let mut loading = true;
    let mut failure = None;
    loop {
        tokio::select! {
            r = &mut first_load, if loading => {
                loading = false;
                match r {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => { failure = Some(e); break; }
                    Err(e) => { failure = Some(ServeError::Io(std::io::Error::other(e))); break; }
                }
            }
            sig = signals.next() => match sig {
                Signal::Stop(name) => {
                    tracing::info!("{name}: finishing in-flight requests, then stopping");
                    break;
                }
                Signal::Reload => {
                    tracing::info!("SIGHUP: reloading the model");
                    let state = state.clone();
                    tokio::spawn(async move {
                        if let Err(e) = state.reload(ReloadRequest::default()).await {
                            tracing::error!("{}", chain(&e));
                        }
                    });
                }
            },
            r = &mut server => {
                // The server ended on its own: report why.
                return match r {
                    Ok(r) => r,
                    Err(e) => Err(ServeError::Io(std::io::Error::other(e))),
                };
            }
        }
    }
    let _ = stop.send(true);
    let served = match server.await {
        Ok(r) => r,
        Err(e) => Err(ServeError::Io(std::io::Error::other(e))),
    };
    match failure {
        Some(e) => Err(e),
        None => served,
    }
}

/// An error and its causes, `: `-separated.
pub(crate) fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        out.push_str(": ");
        out.push_str(&c.to_string());
        cur = c.source();
    }
    out
}

enum Signal {
    Stop(&'static str),
    Reload,
}

#[cfg(unix)]
struct Signals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
    hup: tokio::signal::unix::Signal,
}

#[cfg(unix)]
impl Signals {
    fn install() -> Result<Self, ServeError> {
        use tokio::signal::unix::{signal, SignalKind};
        Ok(Self {
            term: signal(SignalKind::terminate()).map_err(ServeError::Signals)?,
            int: signal(SignalKind::interrupt()).map_err(ServeError::Signals)?,
            hup: signal(SignalKind::hangup()).map_err(ServeError::Signals)?,
        })
    }

    async fn next(&mut self) -> Signal {
        tokio::select! {
            _ = self.term.recv() => Signal::Stop("SIGTERM"),
            _ = self.int.recv() => Signal::Stop("SIGINT"),
            _ = self.hup.recv() => Signal::Reload,
        }
    }
}

#[cfg(not(unix))]
struct Signals;

#[cfg(not(unix))]
impl Signals {
    fn install() -> Result<Self, ServeError> {
        Ok(Self)
    }

    async fn next(&mut self) -> Signal {
        let _ = tokio::signal::ctrl_c().await;
        Signal::Stop("Ctrl-C")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_parse_as_ip_addresses_or_localhost() {
        let mut s = ServeSettings::default();
        assert_eq!(s.socket_addr().unwrap().to_string(), "127.0.0.1:8000");
        s.host = "[::1]".into();
        assert_eq!(s.socket_addr().unwrap().to_string(), "[::1]:8000");
        s.host = "localhost".into();
        assert!(s.socket_addr().is_ok());
        s.host = "example.org".into();
        assert!(matches!(s.socket_addr(), Err(ServeError::Host { .. })));
    }

    #[test]
    fn settings_never_print_the_token() {
        let s = ServeSettings {
            admin_token: Some("s3cret".into()),
            ..Default::default()
        };
        assert!(!format!("{s:?}").contains("s3cret"));
    }

    #[test]
    fn a_missing_model_folder_stops_before_listening() {
        let s = ServeSettings {
            model_dir: PathBuf::from("/nonexistent/recflow-model"),
            port: 0,
            ..Default::default()
        };
        assert!(matches!(run_server(s), Err(ServeError::MissingModel(_))));
    }
}
