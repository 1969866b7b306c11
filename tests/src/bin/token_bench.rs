//! `token-bench`: the load generator of `scripts/bench-token`, one program used the same
//! way against Hearth and against the npm `oidc-provider`.
//!
//! `token-bench setup` registers the benchmark's clients through each server's RFC 7591
//! registration endpoint (found by discovery): a `private_key_jwt` client with an RS384
//! key, one with an ES384 key, and a `client_secret_basic` client for refresh tokens. It
//! writes what it registered (and the private keys) to a state file. The script then
//! enables Hearth's clients with `hearth client enable`.
//!
//! `token-bench run` first gets one refresh token per connection from each server (Hearth:
//! the password grant; oidc-provider: its bench-only minting route), then measures the
//! token endpoint for `client_credentials` (RS384), `client_credentials` (ES384) and
//! `refresh_token` with a fixed number of keep-alive connections, in rounds that alternate
//! between the servers. The client is kept off the critical path: client assertions
//! (unique `jti`, `exp` five minutes ahead at most) are signed before each timed round,
//! and each connection chains its refresh tokens (each answer's new refresh token is the
//! next request's). Only a 200 whose JSON has an `access_token` counts; anything else is
//! an error, counted apart.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use clap::{Parser, Subcommand};
use hearth::crypto::jwt::{Alg, Signer};
use hearth::crypto::keys;
use serde_json::{Value, json};

/// The assertion type of `private_key_jwt`.
const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
/// Scopes of the backend-service clients.
const SYSTEM_SCOPE: &str = "system/Patient.rs system/*.$export";
/// Scope asked for in each `client_credentials` request.
const REQUESTED_SYSTEM_SCOPE: &str = "system/Patient.rs";
/// Scopes of the refresh-token grants: an id_token and an access token per refresh.
const STAFF_SCOPE: &str = "openid offline_access api:oemr user/patient.rs";
/// A redirect URI the staff client registers (never visited).
const REDIRECT: &str = "https://bench.invalid/callback";
/// How far ahead client assertions expire (under the five-minute limit).
const ASSERTION_LIFETIME: i64 = 280;

#[derive(Parser)]
#[command(
    name = "token-bench",
    about = "Token endpoint load generator (scripts/bench-token)"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Register the benchmark's clients on both servers and write the state file.
    Setup {
        /// Hearth's issuer, e.g. http://127.0.0.1:9400/oauth2/default.
        #[arg(long)]
        hearth: String,
        /// oidc-provider's issuer, e.g. http://127.0.0.1:9401.
        #[arg(long)]
        oidc: String,
        /// Where to write the state.
        #[arg(long)]
        state: PathBuf,
    },
    /// Print the Hearth client ids to enable, one a line.
    HearthClients {
        /// The state file written by `setup`.
        #[arg(long)]
        state: PathBuf,
    },
    /// Measure.
    Run(RunArgs),
}

#[derive(clap::Args)]
struct RunArgs {
    /// The state file written by `setup`.
    #[arg(long)]
    state: PathBuf,
    /// Concurrent keep-alive connections per server.
    #[arg(long, env = "CONNECTIONS", default_value_t = 32)]
    connections: usize,
    /// Seconds per timed round.
    #[arg(long, env = "SECONDS", default_value_t = 5)]
    seconds: u64,
    /// Rounds per grant and server.
    #[arg(long, env = "ROUNDS", default_value_t = 2)]
    rounds: usize,
    /// Warm-up seconds per grant and server (not counted).
    #[arg(long, env = "WARMUP", default_value_t = 1)]
    warmup: u64,
    /// The most client assertions signed for one round.
    #[arg(long, env = "MAX_ASSERTIONS", default_value_t = 40_000)]
    max_assertions: usize,
    /// Hearth's staff user for the password grant.
    #[arg(long)]
    username: String,
    /// That user's password.
    #[arg(long, env = "BENCH_PASSWORD")]
    password: String,
    /// Server process ids (`hearth=PID`, `oidc-provider=PID`), to report their CPU use.
    #[arg(long = "pid")]
    pids: Vec<String>,
    /// The grants to measure, comma-separated: `rs384`, `es384`, `refresh` (all three
    /// unless given), e.g. to profile one of them.
    #[arg(long, env = "GRANTS", value_delimiter = ',', default_values = ["rs384", "es384", "refresh"])]
    grants: Vec<String>,
}

/// What `setup` registered on one server.
#[derive(Clone, serde::Serialize, serde::Deserialize)]
struct Server {
    /// `hearth` or `oidc-provider`.
    name: String,
    issuer: String,
    token_endpoint: String,
    rs384_client: String,
    es384_client: String,
    staff_client: String,
    staff_secret: String,
}

/// A client key: its kid and PKCS#8 DER (base64).
#[derive(Clone, serde::Serialize, serde::Deserialize)]
struct Key {
    kid: String,
    pkcs8: String,
}

#[derive(serde::Serialize, serde::Deserialize)]
struct State {
    rs384: Key,
    es384: Key,
    servers: Vec<Server>,
}

impl Key {
    fn generate(alg: Alg) -> Result<(Key, Value)> {
        let (kid, der, jwk) = keys::generate(alg)?;
        Ok((
            Key {
                kid,
                pkcs8: STANDARD.encode(der),
            },
            jwk,
        ))
    }

    fn signer(&self, alg: Alg) -> Result<Signer> {
        Signer::from_pkcs8(&self.kid, alg, &STANDARD.decode(&self.pkcs8)?)
            .map_err(anyhow::Error::msg)
    }
}

/// One thread drives every connection (the server gets the rest of the machine); the
/// assertions are signed on every core between rounds.
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<()> {
    match Cli::parse().command {
        Command::Setup {
            hearth,
            oidc,
            state,
        } => setup(&hearth, &oidc, &state).await,
        Command::HearthClients { state } => {
            let state = read_state(&state)?;
            for server in state.servers.iter().filter(|s| s.name == "hearth") {
                for id in [
                    &server.rs384_client,
                    &server.es384_client,
                    &server.staff_client,
                ] {
                    println!("{id}");
                }
            }
            Ok(())
        }
        Command::Run(args) => run(args).await,
    }
}

fn read_state(path: &PathBuf) -> Result<State> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_str(&text).context("the state file is not what setup wrote")
}

async fn setup(hearth: &str, oidc: &str, path: &PathBuf) -> Result<()> {
    let (rs384, rs384_jwk) = Key::generate(Alg::Rs384)?;
    let (es384, es384_jwk) = Key::generate(Alg::Es384)?;
    let http = reqwest::Client::new();
    let mut servers = Vec::new();
    for (name, issuer) in [("hearth", hearth), ("oidc-provider", oidc)] {
        let discovery: Value = http
            .get(format!("{issuer}/.well-known/openid-configuration"))
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        let text = |field: &str| -> Result<String> {
            discovery[field]
                .as_str()
                .map(str::to_owned)
                .with_context(|| format!("{name}'s discovery has no {field}"))
        };
        let registration = text("registration_endpoint")?;
        let hearth_style = name == "hearth";
        let service = |alg: &str, jwk: &Value| {
            let mut body = json!({
                "client_name": format!("token bench {alg}"),
                "token_endpoint_auth_method": "private_key_jwt",
                "scope": SYSTEM_SCOPE,
                "jwks": {"keys": [jwk]},
            });
            if hearth_style {
                body["application_type"] = json!("private");
                body["redirect_uris"] = json!([REDIRECT]);
            } else {
                body["token_endpoint_auth_signing_alg"] = json!(alg);
                body["grant_types"] = json!(["client_credentials"]);
                body["response_types"] = json!([]);
                body["redirect_uris"] = json!([]);
            }
            body
        };
        let mut staff = json!({
            "client_name": "token bench staff app",
            "redirect_uris": [REDIRECT],
            "token_endpoint_auth_method": "client_secret_basic",
            "scope": STAFF_SCOPE,
        });
        if hearth_style {
            staff["application_type"] = json!("private");
        } else {
            staff["grant_types"] = json!(["authorization_code", "refresh_token"]);
            staff["response_types"] = json!(["code"]);
        }
        let rs384_client = register(&http, &registration, &service("RS384", &rs384_jwk)).await?;
        let es384_client = register(&http, &registration, &service("ES384", &es384_jwk)).await?;
        let staff = register(&http, &registration, &staff).await?;
        servers.push(Server {
            name: name.to_owned(),
            issuer: issuer.to_owned(),
            token_endpoint: text("token_endpoint")?,
            rs384_client: field(&rs384_client, "client_id")?,
            es384_client: field(&es384_client, "client_id")?,
            staff_client: field(&staff, "client_id")?,
            staff_secret: field(&staff, "client_secret")?,
        });
    }
    let state = State {
        rs384,
        es384,
        servers,
    };
    std::fs::write(path, serde_json::to_string_pretty(&state)?)
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

fn field(value: &Value, name: &str) -> Result<String> {
    value[name]
        .as_str()
        .map(str::to_owned)
        .with_context(|| format!("the registration answer has no {name}: {value}"))
}

async fn register(http: &reqwest::Client, url: &str, body: &Value) -> Result<Value> {
    let response = http.post(url).json(body).send().await?;
    let status = response.status();
    let text = response.text().await?;
    if status != reqwest::StatusCode::CREATED {
        bail!("registration at {url} answered {status}: {text}");
    }
    Ok(serde_json::from_str(&text)?)
}

/// The three measured grants.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
enum Grant {
    Rs384,
    Es384,
    Refresh,
}

impl Grant {
    const ALL: [Grant; 3] = [Grant::Rs384, Grant::Es384, Grant::Refresh];

    fn parse(name: &str) -> Result<Grant> {
        match name.trim() {
            "rs384" => Ok(Grant::Rs384),
            "es384" => Ok(Grant::Es384),
            "refresh" => Ok(Grant::Refresh),
            other => anyhow::bail!("unknown grant {other:?} (rs384, es384 or refresh)"),
        }
    }

    fn label(self) -> &'static str {
        match self {
            Grant::Rs384 => "client_credentials, private_key_jwt RS384",
            Grant::Es384 => "client_credentials, private_key_jwt ES384",
            Grant::Refresh => "refresh_token (rotation)",
        }
    }
}

/// What one timed round measured.
#[derive(Default)]
struct Measured {
    ok: usize,
    errors: usize,
    first_error: Option<String>,
    elapsed: Duration,
    latencies_us: Vec<u32>,
    ran_out: bool,
    client_cpu: f64,
    server_cpu: Option<f64>,
}

/// What a connection sends next.
enum Work {
    /// Pre-built `client_credentials` bodies, taken in turn by every connection.
    Assertions(Arc<Vec<String>>, Arc<AtomicUsize>),
    /// The connection's current refresh token, replaced by each answer's new one.
    Refresh(String),
}

async fn run(args: RunArgs) -> Result<()> {
    let state = read_state(&args.state)?;
    let chosen = args
        .grants
        .iter()
        .map(|g| Grant::parse(g))
        .collect::<Result<Vec<_>>>()?;
    let grants: Vec<Grant> = Grant::ALL
        .into_iter()
        .filter(|g| chosen.contains(g))
        .collect();
    let pids: HashMap<String, u32> = args
        .pids
        .iter()
        .filter_map(|p| p.split_once('='))
        .filter_map(|(name, pid)| Some((name.to_owned(), pid.parse().ok()?)))
        .collect();
    let signers = [
        (Grant::Rs384, state.rs384.signer(Alg::Rs384)?),
        (Grant::Es384, state.es384.signer(Alg::Es384)?),
    ];
    let signers: HashMap<Grant, Arc<Signer>> =
        signers.into_iter().map(|(g, s)| (g, Arc::new(s))).collect();
    println!(
        "token-bench: {} connections per server, {} round(s) of {} s per grant and server, {} s warm-up; load average {}",
        args.connections,
        args.rounds,
        args.seconds,
        args.warmup,
        load_average()
    );

    let mut chains: HashMap<String, Vec<String>> = HashMap::new();
    for server in &state.servers {
        let tokens = refresh_pool(server, &args).await?;
        chains.insert(server.name.clone(), tokens);
    }

    let mut rate: HashMap<(String, Grant), f64> = HashMap::new();
    let mut results: HashMap<(String, Grant), Vec<Measured>> = HashMap::new();
    for &grant in &grants {
        for server in &state.servers {
            let pool = (args.connections * 100).min(args.max_assertions);
            let measured = round(
                server,
                grant,
                &args,
                args.warmup,
                pool,
                &signers,
                &mut chains,
                None,
            )
            .await?;
            let warm = measured.ok as f64 / measured.elapsed.as_secs_f64().max(1e-3);
            rate.insert((server.name.clone(), grant), warm);
            check_errors(server, grant, &measured, "warm-up")?;
        }
    }
    for round_number in 0..args.rounds {
        for &grant in &grants {
            let mut order: Vec<&Server> = state.servers.iter().collect();
            if round_number % 2 == 1 {
                order.reverse();
            }
            for server in order {
                let key = (server.name.clone(), grant);
                // Twice the best rate seen so far: a round should end by its clock, not
                // by running out (which it reports when it does).
                let expected = rate[&key] * args.seconds as f64 * 2.0;
                let pool = (expected as usize + args.connections * 20).min(args.max_assertions);
                let measured = round(
                    server,
                    grant,
                    &args,
                    args.seconds,
                    pool,
                    &signers,
                    &mut chains,
                    pids.get(&server.name).copied(),
                )
                .await?;
                let observed = measured.ok as f64 / measured.elapsed.as_secs_f64();
                println!(
                    "round {} {:<42} {:<14} {:>8.0} req/s  {:>6} ok  {} errors{}  client CPU {:.0}%{}",
                    round_number + 1,
                    grant.label(),
                    server.name,
                    observed,
                    measured.ok,
                    measured.errors,
                    if measured.ran_out {
                        format!(
                            " (assertions used up after {:.1} s)",
                            measured.elapsed.as_secs_f64()
                        )
                    } else {
                        String::new()
                    },
                    measured.client_cpu * 100.0,
                    measured
                        .server_cpu
                        .map(|c| format!("  server CPU {:.0}%", c * 100.0))
                        .unwrap_or_default(),
                );
                if let Some(error) = &measured.first_error {
                    println!("    first error: {error}");
                }
                rate.insert(key.clone(), rate[&key].max(observed));
                results.entry(key).or_default().push(measured);
            }
        }
    }
    report(&state, &results);
    println!("load average at the end: {}", load_average());
    let errors: usize = results.values().flatten().map(|m| m.errors).sum();
    if errors > 0 {
        bail!("{errors} requests failed");
    }
    Ok(())
}

fn check_errors(server: &Server, grant: Grant, measured: &Measured, phase: &str) -> Result<()> {
    if measured.errors > 0 {
        bail!(
            "{} {} {phase}: {} errors, first: {}",
            server.name,
            grant.label(),
            measured.errors,
            measured.first_error.as_deref().unwrap_or("?")
        );
    }
    Ok(())
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|t| t.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}

/// CPU seconds used so far by process `pid` (all threads), from `/proc/PID/stat`.
fn cpu_seconds(pid: Option<u32>) -> Option<f64> {
    let path = match pid {
        Some(pid) => format!("/proc/{pid}/stat"),
        None => "/proc/self/stat".to_owned(),
    };
    let text = std::fs::read_to_string(path).ok()?;
    let after_name = &text[text.rfind(')')? + 2..];
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the file, 12 and 13 after the name; Linux
    // counts them in clock ticks of 1/100 s.
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    Some(ticks / 100.0)
}

/// One refresh token per connection from `server`.
async fn refresh_pool(server: &Server, args: &RunArgs) -> Result<Vec<String>> {
    let http = reqwest::Client::new();
    if server.name == "hearth" {
        let mut tokens = Vec::new();
        for _ in 0..args.connections {
            let body = form(&[
                ("grant_type", "password"),
                ("user_role", "users"),
                ("username", &args.username),
                ("password", &args.password),
                ("scope", STAFF_SCOPE),
            ]);
            let answer: Value = http
                .post(&server.token_endpoint)
                .header("authorization", basic(server))
                .header("content-type", "application/x-www-form-urlencoded")
                .body(body)
                .send()
                .await?
                .json()
                .await?;
            tokens.push(
                field(&answer, "refresh_token")
                    .with_context(|| format!("the password grant answered {answer}"))?,
            );
        }
        Ok(tokens)
    } else {
        let answer: Value = http
            .post(format!("{}/bench/refresh-tokens", server.issuer))
            .json(&json!({"client_id": server.staff_client, "count": args.connections, "scope": STAFF_SCOPE}))
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        Ok(serde_json::from_value(answer["refresh_tokens"].clone())?)
    }
}

fn basic(server: &Server) -> String {
    format!(
        "Basic {}",
        STANDARD.encode(format!("{}:{}", server.staff_client, server.staff_secret))
    )
}

fn form(pairs: &[(&str, &str)]) -> String {
    let mut out = form_urlencoded::Serializer::new(String::new());
    for (name, value) in pairs {
        out.append_pair(name, value);
    }
    out.finish()
}

/// Signs `count` client_credentials request bodies for `server`, on every core.
fn assertion_bodies(
    server: &Server,
    grant: Grant,
    signer: &Arc<Signer>,
    count: usize,
) -> Vec<String> {
    let client_id = match grant {
        Grant::Rs384 => &server.rs384_client,
        _ => &server.es384_client,
    };
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    let per_thread = count.div_ceil(threads);
    std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|t| {
                let n = per_thread.min(count.saturating_sub(t * per_thread));
                scope.spawn(move || {
                    (0..n)
                        .map(|_| {
                            let exp = time_now() + ASSERTION_LIFETIME;
                            let claims = json!({
                                "iss": client_id, "sub": client_id, "aud": server.token_endpoint,
                                "exp": exp, "iat": time_now(), "jti": uuid::Uuid::new_v4().to_string(),
                            });
                            let assertion = signer.sign(&claims).expect("signing an assertion");
                            form(&[
                                ("grant_type", "client_credentials"),
                                ("scope", REQUESTED_SYSTEM_SCOPE),
                                ("client_assertion_type", JWT_BEARER),
                                ("client_assertion", &assertion),
                            ])
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().expect("a signing thread"))
            .collect()
    })
}

fn time_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs() as i64
}

/// One round of `seconds` against `server` for `grant`.
#[allow(clippy::too_many_arguments)]
async fn round(
    server: &Server,
    grant: Grant,
    args: &RunArgs,
    seconds: u64,
    pool: usize,
    signers: &HashMap<Grant, Arc<Signer>>,
    chains: &mut HashMap<String, Vec<String>>,
    server_pid: Option<u32>,
) -> Result<Measured> {
    let shared = match grant {
        Grant::Refresh => None,
        _ => {
            let signer = signers[&grant].clone();
            let server = server.clone();
            let bodies = tokio::task::spawn_blocking(move || {
                assertion_bodies(&server, grant, &signer, pool)
            })
            .await?;
            Some((Arc::new(bodies), Arc::new(AtomicUsize::new(0))))
        }
    };
    let chain = chains.get_mut(&server.name).context("no refresh tokens")?;
    let deadline_in = Duration::from_secs(seconds);
    let client_before = cpu_seconds(None);
    let server_before = server_pid.and_then(|p| cpu_seconds(Some(p)));
    let started = Instant::now();
    let deadline = started + deadline_in;
    let mut tasks = Vec::new();
    for token in chain.iter().take(args.connections) {
        let work = match &shared {
            Some((bodies, next)) => Work::Assertions(bodies.clone(), next.clone()),
            None => Work::Refresh(token.clone()),
        };
        let server = server.clone();
        tasks.push(tokio::spawn(connection_loop(server, work, deadline)));
    }
    let mut measured = Measured::default();
    for (connection, task) in tasks.into_iter().enumerate() {
        let result = task.await?;
        measured.ok += result.ok;
        measured.errors += result.errors;
        measured.ran_out |= result.ran_out;
        if measured.first_error.is_none() {
            measured.first_error = result.first_error;
        }
        measured.latencies_us.extend(result.latencies_us);
        if let Some(token) = result.last_refresh {
            chain[connection] = token;
        }
    }
    measured.elapsed = started.elapsed();
    let seconds = measured.elapsed.as_secs_f64();
    measured.client_cpu = match (client_before, cpu_seconds(None)) {
        (Some(a), Some(b)) => (b - a) / seconds,
        _ => 0.0,
    };
    measured.server_cpu = match (server_before, server_pid.and_then(|p| cpu_seconds(Some(p)))) {
        (Some(a), Some(b)) => Some((b - a) / seconds),
        _ => None,
    };
    Ok(measured)
}

/// What one connection did in a round.
#[derive(Default)]
struct ConnectionResult {
    ok: usize,
    errors: usize,
    first_error: Option<String>,
    latencies_us: Vec<u32>,
    ran_out: bool,
    last_refresh: Option<String>,
}

/// One keep-alive HTTP/1.1 connection that sends a POST and reads the answer with as
/// little work as possible: the load generator shares this machine's cores with the
/// server it measures, so its own CPU per request is kept small (a general HTTP client
/// spent several times as much).
struct Connection {
    stream: tokio::io::BufReader<tokio::net::TcpStream>,
    /// `POST {path} HTTP/1.1` and the fixed headers, up to the content length.
    head: String,
    buffer: Vec<u8>,
}

impl Connection {
    async fn open(url: &str, authorization: Option<&str>) -> Result<Connection> {
        let url = reqwest::Url::parse(url)?;
        let host = url.host_str().context("no host")?;
        let port = url.port_or_known_default().context("no port")?;
        let stream = tokio::net::TcpStream::connect((host, port)).await?;
        stream.set_nodelay(true)?;
        let mut head = format!(
            "POST {} HTTP/1.1\r\nhost: {host}:{port}\r\ncontent-type: application/x-www-form-urlencoded\r\naccept: application/json\r\n",
            url.path()
        );
        if let Some(authorization) = authorization {
            head.push_str(&format!("authorization: {authorization}\r\n"));
        }
        Ok(Connection {
            stream: tokio::io::BufReader::with_capacity(16 * 1024, stream),
            head,
            buffer: Vec::with_capacity(16 * 1024),
        })
    }

    /// Sends `body`; answers the status and the body of the reply.
    async fn post(&mut self, body: &str) -> Result<(u16, &[u8])> {
        use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt};
        self.buffer.clear();
        self.buffer.extend_from_slice(self.head.as_bytes());
        self.buffer
            .extend_from_slice(format!("content-length: {}\r\n\r\n", body.len()).as_bytes());
        self.buffer.extend_from_slice(body.as_bytes());
        self.stream.get_mut().write_all(&self.buffer).await?;
        self.buffer.clear();
        let mut status = 0;
        let mut length = None;
        let mut chunked = false;
        let mut line = String::new();
        loop {
            line.clear();
            if self.stream.read_line(&mut line).await? == 0 {
                bail!("the server closed the connection");
            }
            let text = line.trim_end();
            if status == 0 {
                status = text
                    .split(' ')
                    .nth(1)
                    .and_then(|code| code.parse().ok())
                    .with_context(|| format!("bad status line {text:?}"))?;
                continue;
            }
            if text.is_empty() {
                break;
            }
            if let Some((name, value)) = text.split_once(':') {
                let value = value.trim();
                if name.eq_ignore_ascii_case("content-length") {
                    length = Some(value.parse::<usize>()?);
                } else if name.eq_ignore_ascii_case("transfer-encoding") {
                    chunked = value.eq_ignore_ascii_case("chunked");
                }
            }
        }
        if chunked {
            loop {
                line.clear();
                self.stream.read_line(&mut line).await?;
                let size =
                    usize::from_str_radix(line.trim_end().split(';').next().unwrap_or(""), 16)
                        .with_context(|| format!("bad chunk size {line:?}"))?;
                let start = self.buffer.len();
                self.buffer.resize(start + size + 2, 0);
                self.stream.read_exact(&mut self.buffer[start..]).await?;
                self.buffer.truncate(start + size);
                if size == 0 {
                    break;
                }
            }
        } else {
            let length = length.context("the reply has neither a length nor chunks")?;
            self.buffer.resize(length, 0);
            self.stream.read_exact(&mut self.buffer).await?;
        }
        Ok((status, &self.buffer))
    }
}

/// Sends requests one after another on one keep-alive connection until `deadline`.
async fn connection_loop(server: Server, mut work: Work, deadline: Instant) -> ConnectionResult {
    let mut result = ConnectionResult::default();
    let authorization = basic(&server);
    let opened = Connection::open(
        &server.token_endpoint,
        matches!(work, Work::Refresh(_)).then_some(authorization.as_str()),
    )
    .await;
    let mut connection = match opened {
        Ok(connection) => connection,
        Err(error) => {
            result.errors += 1;
            result.first_error = Some(format!("connecting: {error:#}"));
            return result;
        }
    };
    let mut refresh_body: String;
    while Instant::now() < deadline {
        let body: &str = match &work {
            Work::Assertions(bodies, next) => {
                let index = next.fetch_add(1, Ordering::Relaxed);
                let Some(body) = bodies.get(index) else {
                    result.ran_out = true;
                    break;
                };
                body
            }
            Work::Refresh(token) => {
                refresh_body = form(&[("grant_type", "refresh_token"), ("refresh_token", token)]);
                &refresh_body
            }
        };
        let sent = Instant::now();
        let answer = connection.post(body).await;
        let latency = sent.elapsed();
        let failure = match answer {
            Ok((status, body)) => match serde_json::from_slice::<Value>(body) {
                Ok(json) if status == 200 && json["access_token"].is_string() => {
                    if let Work::Refresh(token) = &mut work {
                        match json["refresh_token"].as_str() {
                            Some(next) => *token = next.to_owned(),
                            None => {
                                result.errors += 1;
                                result
                                    .first_error
                                    .get_or_insert_with(|| format!("no refresh_token in {json}"));
                                break;
                            }
                        }
                    }
                    None
                }
                _ => Some(format!("{status}: {}", String::from_utf8_lossy(body))),
            },
            Err(error) => Some(format!("{error:#}")),
        };
        let broken = failure.is_some();
        match failure {
            None => {
                result.ok += 1;
                result
                    .latencies_us
                    .push(latency.as_micros().min(u32::MAX as u128) as u32);
            }
            Some(why) => {
                result.errors += 1;
                result.first_error.get_or_insert(why);
                if matches!(work, Work::Refresh(_)) {
                    // The chain is broken; a refresh token cannot be retried.
                    break;
                }
            }
        }
        if broken {
            // The connection's state is unknown after a failure: start a new one.
            match Connection::open(
                &server.token_endpoint,
                matches!(work, Work::Refresh(_)).then_some(authorization.as_str()),
            )
            .await
            {
                Ok(fresh) => connection = fresh,
                Err(_) => break,
            }
        }
    }
    if let Work::Refresh(token) = work {
        result.last_refresh = Some(token);
    }
    result
}

fn percentile(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    f64::from(sorted[rank - 1]) / 1000.0
}

/// Prints the summary table (Markdown, ready for docs/benchmarks.md).
fn report(state: &State, results: &HashMap<(String, Grant), Vec<Measured>>) {
    println!();
    println!(
        "| grant | server | req/s | p50 | p99 | server CPU per request | errors | per round (req/s) |"
    );
    println!("|---|---|---:|---:|---:|---:|---:|---|");
    let mut ratios = Vec::new();
    for grant in Grant::ALL {
        let mut rates = HashMap::new();
        for server in &state.servers {
            let Some(rounds) = results.get(&(server.name.clone(), grant)) else {
                continue;
            };
            let ok: usize = rounds.iter().map(|m| m.ok).sum();
            let errors: usize = rounds.iter().map(|m| m.errors).sum();
            let seconds: f64 = rounds.iter().map(|m| m.elapsed.as_secs_f64()).sum();
            let mut latencies: Vec<u32> = rounds
                .iter()
                .flat_map(|m| m.latencies_us.iter().copied())
                .collect();
            latencies.sort_unstable();
            let rate = ok as f64 / seconds;
            // CPU time the server process used per answered request: unlike req/s, it
            // does not depend on how much of the shared machine the server was given.
            let cpu: Option<f64> = rounds
                .iter()
                .map(|m| m.server_cpu.map(|c| c * m.elapsed.as_secs_f64()))
                .sum();
            let cpu_per_request = cpu
                .filter(|_| ok > 0)
                .map(|c| format!("{:.2} ms", c * 1000.0 / ok as f64))
                .unwrap_or_else(|| "?".into());
            rates.insert(server.name.clone(), rate);
            let per_round = rounds
                .iter()
                .map(|m| format!("{:.0}", m.ok as f64 / m.elapsed.as_secs_f64()))
                .collect::<Vec<_>>()
                .join(" / ");
            println!(
                "| {} | {} | {:.0} | {:.2} ms | {:.2} ms | {} | {} | {} |",
                grant.label(),
                server.name,
                rate,
                percentile(&latencies, 0.50),
                percentile(&latencies, 0.99),
                cpu_per_request,
                errors,
                per_round
            );
        }
        if let (Some(h), Some(o)) = (rates.get("hearth"), rates.get("oidc-provider")) {
            ratios.push((grant, h / o));
        }
    }
    println!();
    for (grant, ratio) in ratios {
        println!("{:<42} hearth / oidc-provider = {ratio:.2}x", grant.label());
    }
}
