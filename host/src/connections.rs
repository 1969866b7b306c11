//! Accepting connections and serving HTTP on them, over TLS or not, with a lingering close.
//!
//! A server that answers before it has read the whole request (a 413 for a body over the
//! cap, a 401 before an upload) and then closes the socket with the rest of the body unread
//! makes the kernel send a reset, and a reset can discard the answer before the client has
//! read it. So a closed connection is not dropped at once: its write side is shut, and what
//! the client still sends is read and dropped until it closes too, for at most
//! [`LINGER_TIME`] and [`LINGER_BYTES`].

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};

/// How long a closed connection is read and dropped, at most.
pub const LINGER_TIME: Duration = Duration::from_secs(5);
/// How much a closed connection reads and drops, at most.
pub const LINGER_BYTES: u64 = 64 << 20;

/// Serves `router` on every connection `listener` accepts, over TLS when `tls` is set, until
/// `shutdown` completes; then waits for the open connections to finish their requests.
pub async fn serve(
    listener: TcpListener,
    tls: Option<Arc<rustls::ServerConfig>>,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    let acceptor = tls.map(tokio_rustls::TlsAcceptor::from);
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(error) => {
                    refused(error).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let stream = Lingering::new(stream);
        let router = router.clone();
        let watcher = graceful.watcher();
        let acceptor = acceptor.clone();
        tokio::spawn(async move {
            match acceptor {
                None => serve_one(stream, peer, router, watcher).await,
                Some(acceptor) => {
                    if let Ok(stream) = acceptor.accept(stream).await {
                        serve_one(stream, peer, router, watcher).await;
                    }
                }
            }
        });
    }
    graceful.shutdown().await;
}

/// Serves one connection, HTTP/1.1 or HTTP/2, with the peer's address as `ConnectInfo`
/// (per-address limits read it).
async fn serve_one<I>(
    io: I,
    peer: SocketAddr,
    router: Router,
    watcher: hyper_util::server::graceful::Watcher,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    use hyper_util::rt::{TokioExecutor, TokioIo};
    use hyper_util::server::conn::auto::Builder;
    use hyper_util::service::TowerToHyperService;

    let service = TowerToHyperService::new(tower::ServiceExt::map_request(
        router,
        move |mut request: axum::http::Request<hyper::body::Incoming>| {
            request
                .extensions_mut()
                .insert(axum::extract::ConnectInfo(peer));
            request
        },
    ));
    let builder = Builder::new(TokioExecutor::new());
    let connection = builder.serve_connection_with_upgrades(TokioIo::new(io), service);
    let _ = watcher.watch(connection.into_owned()).await;
}

/// A failed `accept`. Errors of one connection (reset before it was taken) go on at once;
/// others (out of file descriptors) wait a moment, so the loop does not spin.
async fn refused(error: io::Error) {
    use io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset};
    if matches!(
        error.kind(),
        ConnectionAborted | ConnectionRefused | ConnectionReset
    ) {
        return;
    }
    tracing::warn!("accept failed: {error}");
    tokio::time::sleep(Duration::from_millis(100)).await;
}

/// A TCP stream that, when dropped, lingers: its write side is shut and what the peer still
/// sends is read and dropped (on a task of its own) until the peer closes, up to
/// [`LINGER_TIME`] and [`LINGER_BYTES`].
pub struct Lingering {
    stream: Option<TcpStream>,
}

impl Lingering {
    pub fn new(stream: TcpStream) -> Lingering {
        Lingering {
            stream: Some(stream),
        }
    }

    fn stream(&mut self) -> Pin<&mut TcpStream> {
        Pin::new(self.stream.as_mut().expect("taken only when dropped"))
    }
}

impl Drop for Lingering {
    fn drop(&mut self) {
        let (Some(stream), Ok(runtime)) =
            (self.stream.take(), tokio::runtime::Handle::try_current())
        else {
            return;
        };
        runtime.spawn(linger(stream));
    }
}

/// Shuts `stream`'s write side and reads what the peer sends until it closes, up to
/// [`LINGER_TIME`] and [`LINGER_BYTES`].
async fn linger(mut stream: TcpStream) {
    use tokio::io::AsyncWriteExt as _;
    let reading = async {
        let _ = stream.shutdown().await;
        let mut rest = (&mut stream).take(LINGER_BYTES);
        let _ = tokio::io::copy(&mut rest, &mut tokio::io::sink()).await;
    };
    let _ = tokio::time::timeout(LINGER_TIME, reading).await;
}

impl AsyncRead for Lingering {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        self.stream().poll_read(cx, buf)
    }
}

impl AsyncWrite for Lingering {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.stream().poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.stream().poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.as_ref().is_some_and(|s| s.is_write_vectored())
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.stream().poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.stream().poll_shutdown(cx)
    }
}
