//! The load generator of the HTTP benches (`http_patient`, `fhir`), included by each with
//! `#[path]`: keep-alive HTTP/1.1 connections from one client thread over 127.0.0.1, like
//! `wrk -t1`, each request the next of a list of targets.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;

/// A number from the environment, else `default`.
pub fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// One request the load sends, and the status it must answer.
pub struct Target {
    pub method: http::Method,
    pub path: String,
    pub body: Option<&'static str>,
    pub status: u16,
}

impl Target {
    /// `GET path`, answering 200.
    pub fn get(path: String) -> Target {
        Target {
            method: http::Method::GET,
            path,
            body: None,
            status: 200,
        }
    }
}

/// What one round of load measured.
pub struct Round {
    pub requests: u64,
    pub elapsed: Duration,
    pub latencies: Vec<u32>,
    pub errors: u64,
}

/// Rounds taken together: requests per second, requests that answered another status,
/// and every latency (µs), sorted.
pub fn summary(rounds: &[Round]) -> (f64, u64, Vec<u32>) {
    let requests: u64 = rounds.iter().map(|r| r.requests).sum();
    let seconds: f64 = rounds.iter().map(|r| r.elapsed.as_secs_f64()).sum();
    let errors: u64 = rounds.iter().map(|r| r.errors).sum();
    let mut latencies: Vec<u32> = rounds
        .iter()
        .flat_map(|r| r.latencies.iter().copied())
        .collect();
    latencies.sort_unstable();
    (requests as f64 / seconds, errors, latencies)
}

/// The `q` quantile of `sorted` latencies.
pub fn percentile(sorted: &[u32], q: f64) -> f64 {
    sorted[((sorted.len() as f64 - 1.0) * q) as usize] as f64
}

/// Drives `connections` keep-alive connections for `seconds`, each request the next of
/// `targets`.
pub fn load(
    addr: std::net::SocketAddr,
    targets: Arc<Vec<Target>>,
    token: String,
    connections: u64,
    seconds: u64,
) -> Round {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async move {
        let stop = Arc::new(AtomicBool::new(false));
        let next = Arc::new(AtomicUsize::new(0));
        let started = Instant::now();
        let mut tasks = Vec::new();
        for _ in 0..connections {
            let (targets, token, stop, next) =
                (targets.clone(), token.clone(), stop.clone(), next.clone());
            tasks.push(tokio::spawn(async move {
                let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
                stream.set_nodelay(true).unwrap();
                let (mut sender, connection) =
                    hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
                        .await
                        .unwrap();
                tokio::spawn(connection);
                let (mut latencies, mut errors) = (Vec::new(), 0u64);
                while !stop.load(Ordering::Relaxed) {
                    let target = &targets[next.fetch_add(1, Ordering::Relaxed) % targets.len()];
                    let mut request = hyper::Request::builder()
                        .method(target.method.clone())
                        .uri(&target.path)
                        .header("host", "127.0.0.1")
                        .header("authorization", format!("Bearer {token}"));
                    if target.body.is_some() {
                        request = request.header("content-type", "application/json");
                    }
                    let request = request
                        .body(Full::new(Bytes::from_static(
                            target.body.unwrap_or_default().as_bytes(),
                        )))
                        .unwrap();
                    let sent = Instant::now();
                    let response = sender.send_request(request).await.unwrap();
                    let ok = response.status() == target.status;
                    let _ = response.into_body().collect().await.unwrap();
                    latencies.push(sent.elapsed().as_micros() as u32);
                    errors += u64::from(!ok);
                }
                (latencies, errors)
            }));
        }
        tokio::time::sleep(Duration::from_secs(seconds)).await;
        stop.store(true, Ordering::Relaxed);
        let elapsed = started.elapsed();
        let mut round = Round {
            requests: 0,
            elapsed,
            latencies: Vec::new(),
            errors: 0,
        };
        for task in tasks {
            let (latencies, errors) = task.await.unwrap();
            round.requests += latencies.len() as u64;
            round.latencies.extend(latencies);
            round.errors += errors;
        }
        round
    })
}
