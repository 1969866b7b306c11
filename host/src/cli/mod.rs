//! The `hearth` command line. These names are a contract that docs and tests rely on.

pub mod client;
pub mod group;
pub mod plugin;

use std::io::Read;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::{Args, Parser, Subcommand};
use sqlx::Row;

use crate::app::App;
use crate::auth::scopes::ScopeSet;
use crate::auth::tokens::{self, Grant, Role};
use crate::auth::users::{self, NewUser};
use crate::config::{Config, LogFormat, Overrides};
use crate::db::store::{SqlValue, StoreError};
use crate::on_db;

use crate::sites::{Site, Sites};

/// Hearth: the OpenEMR API as a WebAssembly plugin host.
#[derive(Debug, Parser)]
#[command(name = "hearth", version, about)]
pub struct Cli {
    /// The data folder (databases, keys, TLS files, compile cache).
    #[arg(long, global = true, env = "HEARTH_DATA_DIR", default_value = "data")]
    pub data_dir: PathBuf,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Top-level commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server.
    Serve(ServeArgs),
    /// Manage sites.
    #[command(subcommand)]
    Site(SiteCommand),
    /// Manage staff users.
    #[command(subcommand)]
    User(UserCommand),
    /// Issue access tokens.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Manage OAuth clients and the authorization server's settings.
    #[command(subcommand)]
    Client(client::ClientCommand),
    /// Set a patient's portal sign-in (user name, e-mail, password).
    PortalLogin(client::PortalLoginArgs),
    /// See, reload and check plugins.
    #[command(subcommand)]
    Plugin(plugin::PluginCommand),
    /// Patient groups (the scope of a Group-level Bulk Data export), through the running
    /// server.
    #[command(subcommand)]
    Group(group::GroupCommand),
    /// Synthetic demo data.
    #[command(subcommand)]
    Demo(DemoCommand),
    /// The key-encryption key that seals every site's signing keys.
    #[command(subcommand)]
    Kek(KekCommand),
}

/// `hearth kek …`.
#[derive(Debug, Subcommand)]
pub enum KekCommand {
    /// Seal every site's signing keys with a new key-encryption key. With the key in the
    /// data folder: a new `kek` is written (the old one kept as `kek.previous` until every
    /// site is done, then removed). With `HEARTH_KEK` set: the keys are sealed with it,
    /// opening them with `HEARTH_KEK_PREVIOUS`.
    Rotate,
}

/// `hearth demo …`.
#[derive(Debug, Subcommand)]
pub enum DemoCommand {
    /// Fill a site with synthetic patients, their encounters, vitals, SOAP notes,
    /// problems, allergies and medications, and the practitioners and facilities they
    /// refer to (deterministic for a seed).
    Seed(DemoSeedArgs),
}

/// `hearth demo seed`.
#[derive(Debug, Args)]
pub struct DemoSeedArgs {
    /// The site.
    #[arg(long)]
    pub site: String,
    /// How many patients to add.
    #[arg(long)]
    pub patients: u64,
    /// The random seed (the same seed gives the same data).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Patients per transaction.
    #[arg(long, default_value_t = 2000)]
    pub batch: u64,
}

/// `hearth serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on (default 0.0.0.0:9300).
    #[arg(long)]
    pub listen: Option<SocketAddr>,
    /// Serve plain HTTP instead of TLS (behind a TLS proxy, or for tests).
    #[arg(long)]
    pub http: bool,
    /// The public base URL clients use; every advertised URL derives from it.
    #[arg(long)]
    pub public_url: Option<String>,
    /// The plugins file (default ./plugins.toml).
    #[arg(long)]
    pub plugins: Option<PathBuf>,
    /// How log lines are written: `text`, or `json` (one object per line; default: the
    /// `log_format` of hearth.toml, else text).
    #[arg(long, value_enum)]
    pub log_format: Option<LogFormat>,
}

/// `hearth site …`.
#[derive(Debug, Subcommand)]
pub enum SiteCommand {
    /// Create a site with its own database and signing keys.
    Add {
        /// The site's name (letters, digits, '-', '_', '.').
        name: String,
        /// A PostgreSQL URL (default: an SQLite file in the data folder).
        #[arg(long)]
        database_url: Option<String>,
    },
    /// List the sites.
    List,
}

/// `hearth user …`.
#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Add a staff user.
    Add(UserAddArgs),
}

/// `hearth user add`.
#[derive(Debug, Args)]
pub struct UserAddArgs {
    /// The site.
    #[arg(long)]
    pub site: String,
    /// The user name.
    #[arg(long)]
    pub username: String,
    /// Read the password from standard input (otherwise one is generated and printed).
    #[arg(long)]
    pub password_stdin: bool,
    /// The ACL role: admin, physician, clinician, front_office or accounting.
    #[arg(long, default_value = "admin")]
    pub role: String,
    /// First name.
    #[arg(long, default_value = "")]
    pub fname: String,
    /// Last name.
    #[arg(long, default_value = "")]
    pub lname: String,
    /// National Provider Identifier (makes the user a practitioner).
    #[arg(long, default_value = "")]
    pub npi: String,
}

/// `hearth token …`.
#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Print a signed access token, as the authorization server would issue one.
    Issue(TokenIssueArgs),
}

/// `hearth token issue`.
#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("subject").required(true).args(["user", "patient", "system"])))]
pub struct TokenIssueArgs {
    /// The site.
    #[arg(long)]
    pub site: String,
    /// A staff user name (a `user` token).
    #[arg(long)]
    pub user: Option<String>,
    /// A patient uuid (a `patient` token).
    #[arg(long)]
    pub patient: Option<String>,
    /// A backend-service token.
    #[arg(long)]
    pub system: bool,
    /// Space-separated scopes.
    #[arg(long)]
    pub scope: String,
    /// Lifetime in seconds.
    #[arg(long, default_value_t = 3600)]
    pub expires_in: i64,
    /// The client the token is for.
    #[arg(long, default_value = "hearth-cli")]
    pub client_id: String,
    /// The public base URL the server uses (default: what the server last recorded).
    #[arg(long)]
    pub public_url: Option<String>,
}

/// Runs the command line and answers the process exit code.
pub fn main() -> ExitCode {
    // Before anything opens SQLite (it takes its allocator only then).
    crate::db::heap::install();
    let cli = Cli::parse();
    // The server sets its log up once its settings are read (they say the format).
    if !matches!(cli.command, Command::Serve(_)) {
        init_tracing(false, LogFormat::Text);
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: starting the runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// Log lines to standard error, filtered by `HEARTH_LOG` (default `info` for the server,
/// `warn` for other commands). The server logs one line per request (target
/// `hearth::access`; `HEARTH_LOG=info,hearth::access=off` leaves them out).
fn init_tracing(server: bool, format: LogFormat) {
    let default = if server { "info" } else { "warn" };
    let filter = tracing_subscriber::EnvFilter::try_from_env("HEARTH_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .try_init(),
    };
}

/// Runs one command.
pub async fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Serve(args) => serve(&cli.data_dir, args).await,
        Command::Site(SiteCommand::Add { name, database_url }) => {
            let sites = Sites::open(&cli.data_dir).await?;
            sites.create(&name, database_url.as_deref()).await?;
            println!("created site {name}");
            sites.close().await;
            Ok(())
        }
        Command::Site(SiteCommand::List) => {
            let sites = prepare(&cli.data_dir).await?;
            for (name, url) in sites.list().await? {
                println!("{name}\t{}", crate::db::redact(&url));
            }
            sites.close().await;
            Ok(())
        }
        Command::User(UserCommand::Add(args)) => {
            let sites = prepare(&cli.data_dir).await?;
            let site = sites.require(&args.site).await?;
            let password = read_password(args.password_stdin)?;
            let uuid = add_user(&site, &args, &password).await?;
            println!("{uuid}");
            sites.close().await;
            Ok(())
        }
        Command::Plugin(command) => plugin::run(&cli.data_dir, command).await,
        Command::Token(TokenCommand::Issue(args)) => {
            let sites = prepare(&cli.data_dir).await?;
            let site = sites.require(&args.site).await?;
            let base = match &args.public_url {
                Some(url) => url.trim_end_matches('/').to_owned(),
                None => match sites.setting("public_url").await? {
                    Some(url) => url,
                    None => Config::load(&cli.data_dir, &Overrides::default())?
                        .base_url(([127, 0, 0, 1], 9300).into()),
                },
            };
            let token = issue_token(&site, &base, &args).await?;
            println!("{token}");
            sites.close().await;
            Ok(())
        }
        Command::Client(command) => client::run_client(&cli.data_dir, command).await,
        Command::PortalLogin(args) => client::run_portal_login(&cli.data_dir, args).await,
        Command::Group(command) => group::run(&cli.data_dir, command).await,
        Command::Demo(DemoCommand::Seed(args)) => demo_seed(&cli.data_dir, args).await,
        Command::Kek(KekCommand::Rotate) => rotate_kek(&cli.data_dir).await,
    }
}

/// `hearth kek rotate`: see [`KekCommand::Rotate`]. Safe to run again after an
/// interruption: while `kek.previous` exists it finishes the rotation under way instead of
/// starting another.
pub async fn rotate_kek(data_dir: &std::path::Path) -> Result<()> {
    use crate::crypto::kek;
    let from_env = std::env::var(kek::ENV).is_ok_and(|v| !v.trim().is_empty());
    // Preparing creates the data folder and its key when they are missing.
    let sites = prepare(data_dir).await?;
    let data_dir = sites.data_dir().to_path_buf();
    sites.close().await;
    let previous = data_dir.join(kek::PREVIOUS_FILE);
    if !from_env {
        if previous.exists() {
            println!(
                "{} exists: finishing the rotation under way",
                previous.display()
            );
        } else {
            let current = data_dir.join(kek::FILE);
            let text = std::fs::read_to_string(&current)
                .with_context(|| format!("reading {}", current.display()))?;
            kek::write_secret(&previous, text.trim())?;
            kek::write_secret(&current, &kek::generate())?;
        }
    }
    let sites = Sites::open(&data_dir).await?;
    let keyring = sites.keyring()?;
    let mut count = 0;
    for (name, _) in sites.list().await? {
        // Opening a site seals its keys with the current key (or fails, naming why).
        sites.require(&name).await?;
        println!(
            "site {name}: signing keys sealed with {}",
            keyring.current_id()
        );
        count += 1;
    }
    sites.close().await;
    if from_env {
        println!(
            "{count} site(s) use the key in {}; {} may be removed now",
            kek::ENV,
            kek::ENV_PREVIOUS
        );
    } else {
        if previous.exists() {
            std::fs::remove_file(&previous)
                .with_context(|| format!("removing {}", previous.display()))?;
        }
        println!(
            "{count} site(s) use the new key-encryption key {} in {}",
            keyring.current_id(),
            data_dir.join(kek::FILE).display()
        );
    }
    Ok(())
}

async fn demo_seed(data_dir: &std::path::Path, args: DemoSeedArgs) -> Result<()> {
    let sites = prepare(data_dir).await?;
    let site = sites.require(&args.site).await?;
    let options = hearth_demo::SeedOptions {
        patients: args.patients,
        seed: args.seed,
        batch: args.batch,
    };
    let started = std::time::Instant::now();
    let mut progress = hearth_demo::Progress::new(&site.name, args.patients);
    let summary = seed_demo(&site, &options, |done, total| progress.update(done, total)).await;
    // The site's background services, with a week of runs behind them.
    let runs = match &summary {
        Ok(_) => Some(crate::api::background::scheduler::seed_demo(&site, args.seed).await),
        Err(_) => None,
    };
    sites.close().await;
    let summary = summary?;
    let runs = runs
        .transpose()
        .context("seeding the background services' runs")?;
    let seconds = started.elapsed().as_secs_f64();
    println!("seeded site {} (seed {}):", args.site, args.seed);
    for (what, count) in summary.lines() {
        println!("  {count:>10}  {what}");
    }
    if let Some(runs) = runs {
        println!("  {runs:>10}  background service runs");
    }
    println!(
        "  {:>10}  rows in {seconds:.1} s ({:.0} rows/s)",
        summary.rows(),
        summary.rows() as f64 / seconds.max(0.001)
    );
    Ok(())
}

/// `hearth demo seed`'s work: seeds `site` with the `hearth-demo` crate, through the
/// host's database layer; `progress(done, total)` is called after each committed batch.
pub async fn seed_demo(
    site: &Site,
    options: &hearth_demo::SeedOptions,
    progress: impl FnMut(u64, u64),
) -> Result<hearth_demo::Summary> {
    hearth_demo::seed(&DemoDb(site), options, progress).await
}

/// A site's database as the demo seed writes it.
struct DemoDb<'a>(&'a Site);

/// A demo seed's transaction.
struct DemoTx(crate::db::store::Tx);

/// How long one batch of the demo seed may take before the database layer stops it.
const DEMO_BATCH_DEADLINE: std::time::Duration = std::time::Duration::from_secs(3600);

fn demo_store_error(e: StoreError) -> anyhow::Error {
    anyhow::anyhow!("{e:?}")
}

fn to_sql(values: Vec<hearth_sdk::Value>) -> Vec<SqlValue> {
    use hearth_sdk::Value;
    let value = |value| match value {
        Value::Null => SqlValue::Null,
        Value::Integer(i) => SqlValue::Integer(i),
        Value::Real(r) => SqlValue::Real(r),
        Value::Text(t) => SqlValue::Text(t),
        Value::Blob(b) => SqlValue::Blob(b),
    };
    values.into_iter().map(value).collect()
}

fn from_sql(value: SqlValue) -> hearth_sdk::Value {
    use hearth_sdk::Value;
    match value {
        SqlValue::Null => Value::Null,
        SqlValue::Integer(i) => Value::Integer(i),
        SqlValue::Real(r) => Value::Real(r),
        SqlValue::Text(t) => Value::Text(t),
        SqlValue::Blob(b) => Value::Blob(b),
    }
}

impl hearth_demo::Database for DemoDb<'_> {
    type Tx = DemoTx;

    fn dialect(&self) -> hearth_demo::Dialect {
        match self.0.db.kind() {
            crate::db::Kind::Sqlite => hearth_demo::Dialect::Sqlite,
            crate::db::Kind::Postgres => hearth_demo::Dialect::Postgres,
        }
    }

    async fn begin(&self) -> Result<DemoTx> {
        let deadline = std::time::Instant::now() + DEMO_BATCH_DEADLINE;
        let tx = self.0.db.begin(true, deadline).await;
        Ok(DemoTx(tx.map_err(demo_store_error)?))
    }
}

impl hearth_demo::Transaction for DemoTx {
    async fn execute(&mut self, sql: &str, params: Vec<hearth_sdk::Value>) -> Result<()> {
        let done = self.0.execute(sql, to_sql(params)).await;
        done.map(|_| ()).map_err(demo_store_error)
    }

    async fn query(
        &mut self,
        sql: &str,
        params: Vec<hearth_sdk::Value>,
    ) -> Result<Vec<Vec<hearth_sdk::Value>>> {
        let rows = self.0.query(sql, to_sql(params)).await;
        let rows = rows.map_err(demo_store_error)?.values();
        Ok(rows
            .into_iter()
            .map(|row| row.into_iter().map(from_sql).collect())
            .collect())
    }

    async fn commit(self) -> Result<()> {
        self.0.commit().await.map_err(demo_store_error)
    }
}

async fn serve(data_dir: &std::path::Path, args: ServeArgs) -> Result<()> {
    let overrides = Overrides {
        listen: args.listen,
        http: args.http,
        public_url: args.public_url,
        plugins: args.plugins,
        log_format: args.log_format,
    };
    let config = Config::load(data_dir, &overrides)?;
    init_tracing(true, config.log_format);
    let app = App::build(config).await?;
    tracing::info!("serving {} on {}", app.state.base_url, app.local_addr());
    app.run(crate::app::shutdown_signal()).await
}

/// Opens the data folder as `hearth serve` does ([`Sites::prepare`]): a fresh folder gets
/// the site `default`, which is said on standard error.
pub(crate) async fn prepare(data_dir: &std::path::Path) -> Result<Sites> {
    let prepared = Sites::prepare(data_dir).await?;
    if prepared.created_default {
        eprintln!(
            "created the site '{}' in {} (a fresh data folder, set up as `hearth serve` would)",
            crate::sites::DEFAULT_SITE,
            prepared.sites.data_dir().display()
        );
    }
    Ok(prepared.sites)
}

/// Adds a staff user as `hearth user add` does; answers the new user's uuid.
pub async fn add_user(site: &Site, args: &UserAddArgs, password: &str) -> Result<String> {
    let user = NewUser {
        username: args.username.clone(),
        role: args.role.clone(),
        fname: args.fname.clone(),
        lname: args.lname.clone(),
        npi: args.npi.clone(),
    };
    users::add(site, &user, password).await
}

/// Issues a token as `hearth token issue` does.
pub async fn issue_token(site: &Site, base: &str, args: &TokenIssueArgs) -> Result<String> {
    ScopeSet::parse(&args.scope).map_err(anyhow::Error::msg)?;
    if args.expires_in <= 0 {
        bail!("--expires-in must be positive");
    }
    let mut grant = Grant {
        client_id: args.client_id.clone(),
        subject: String::new(),
        role: Role::User,
        username: None,
        acl_role: None,
        scope: args.scope.clone(),
        patient: None,
        context: serde_json::json!({}),
        lifetime: args.expires_in,
    };
    if let Some(username) = &args.user {
        let row: Option<(String, String, i64)> = on_db!(&site.db, |pool| {
            sqlx::query(
                "SELECT CAST(uuid AS TEXT) AS uuid, role, active FROM users WHERE username = $1",
            )
            .bind(username)
            .fetch_optional(pool)
            .await?
            .map(|row| -> Result<_, sqlx::Error> {
                Ok((
                    row.try_get("uuid")?,
                    row.try_get("role")?,
                    row.try_get("active")?,
                ))
            })
            .transpose()?
        });
        let (uuid, role, active) =
            row.with_context(|| format!("no user '{username}' on site {}", site.name))?;
        if active == 0 {
            bail!("the user '{username}' is not active");
        }
        grant.subject = uuid;
        grant.username = Some(username.clone());
        grant.acl_role = Some(role);
    } else if let Some(patient) = &args.patient {
        let patient = patient.to_ascii_lowercase();
        let found: bool = on_db!(&site.db, |pool| {
            sqlx::query("SELECT 1 AS one FROM patient_data WHERE CAST(uuid AS TEXT) = $1")
                .bind(&patient)
                .fetch_optional(pool)
                .await?
                .is_some()
        });
        if !found {
            bail!("no patient {patient} on site {}", site.name);
        }
        grant.role = Role::Patient;
        grant.subject = patient.clone();
        grant.patient = Some(patient);
    } else {
        grant.role = Role::System;
        grant.subject = users::system_user(site).await?;
    }
    Ok(tokens::issue(site, base, &grant).await?.token)
}

/// A password from standard input (`--password-stdin`; at least 8 characters), or a
/// generated one, printed to standard error.
pub(crate) fn read_password(from_stdin: bool) -> Result<String> {
    if !from_stdin {
        let generated = hex::encode(rand::random::<[u8; 12]>());
        eprintln!("generated password: {generated}");
        return Ok(generated);
    }
    let mut text = String::new();
    std::io::stdin()
        .read_to_string(&mut text)
        .context("reading the password from standard input")?;
    let text = text.trim_end_matches(['\r', '\n']).to_owned();
    if text.len() < 8 {
        bail!("the password must be at least 8 characters");
    }
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_line_takes_site_patients_and_seed() {
        let cli = Cli::try_parse_from([
            "hearth",
            "demo",
            "seed",
            "--site",
            "s1",
            "--patients",
            "500",
            "--seed",
            "9",
        ])
        .expect("parses");
        let Command::Demo(DemoCommand::Seed(args)) = cli.command else {
            panic!("not demo seed")
        };
        assert_eq!(
            (args.site.as_str(), args.patients, args.seed, args.batch),
            ("s1", 500, 9, 2000)
        );
        assert!(
            Cli::try_parse_from(["hearth", "demo", "seed", "--site", "s1"]).is_err(),
            "--patients is required"
        );
    }
}
