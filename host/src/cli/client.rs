//! `hearth client …` (registered OAuth clients and the authorization server's per-site
//! settings) and `hearth portal-login` (patient sign-in credentials).

use std::path::Path;

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use serde_json::json;

use crate::registrar::{clients, settings};

/// `hearth client …`.
#[derive(Debug, Subcommand)]
pub enum ClientCommand {
    /// List the site's registered clients.
    List {
        /// The site.
        #[arg(long)]
        site: String,
    },
    /// Register a client as an administrator: the same checks as the registration
    /// endpoint (RFC 7591), but the client is enabled and vetted at once. Prints its id
    /// (and secret, for a confidential client without keys).
    Register {
        /// The site.
        #[arg(long)]
        site: String,
        /// The client's name, shown on the consent page.
        #[arg(long)]
        name: String,
        /// A redirect URI (repeat for more): https, loopback http, or a private-use scheme.
        #[arg(long = "redirect-uri", required = true)]
        redirect_uris: Vec<String>,
        /// A post-logout redirect URI (repeat for more).
        #[arg(long = "post-logout-redirect-uri")]
        post_logout_redirect_uris: Vec<String>,
        /// Space-separated scopes (default: the registration endpoint's default).
        #[arg(long)]
        scope: Option<String>,
        /// A confidential client (it gets a secret); otherwise a public one (PKCE).
        #[arg(long)]
        confidential: bool,
    },
    /// Enable a client (clients asking for user/ or system/ scopes start disabled).
    Enable {
        /// The site.
        #[arg(long)]
        site: String,
        /// The client id.
        client_id: String,
    },
    /// Disable a client: every grant it asks for fails with invalid_client.
    Disable {
        /// The site.
        #[arg(long)]
        site: String,
        /// The client id.
        client_id: String,
    },
    /// Show the authorization server's settings, or set one (`NAME VALUE`).
    Setting {
        /// The site.
        #[arg(long)]
        site: String,
        /// The setting, e.g. oauth.password_grant.
        name: Option<String>,
        /// Its new value.
        value: Option<String>,
    },
    /// Print an EHR launch token for a patient (the `launch` parameter of /authorize),
    /// valid five minutes.
    Launch {
        /// The site.
        #[arg(long)]
        site: String,
        /// The patient's uuid.
        #[arg(long)]
        patient: String,
        /// An encounter uuid for the launch context.
        #[arg(long)]
        encounter: Option<String>,
        /// The public base URL the server uses (default: what the server last recorded).
        #[arg(long)]
        public_url: Option<String>,
    },
    /// Make a new initial access token for registration (printed once; replaces the
    /// previous one) and require it; `--clear` stops requiring one.
    InitialToken {
        /// The site.
        #[arg(long)]
        site: String,
        /// Stop requiring an initial access token.
        #[arg(long)]
        clear: bool,
    },
}

/// `hearth portal-login`.
#[derive(Debug, Args)]
pub struct PortalLoginArgs {
    /// The site.
    #[arg(long)]
    pub site: String,
    /// The patient's uuid.
    #[arg(long)]
    pub patient: String,
    /// The portal user name.
    #[arg(long)]
    pub username: String,
    /// The patient's e-mail address (asked at sign-in, as OpenEMR does).
    #[arg(long)]
    pub email: String,
    /// Read the password from standard input (otherwise one is generated and printed).
    #[arg(long)]
    pub password_stdin: bool,
}

/// Runs `hearth client …`.
pub async fn run_client(data_dir: &Path, command: ClientCommand) -> Result<()> {
    let sites = super::prepare(data_dir).await?;
    let name = match &command {
        ClientCommand::List { site }
        | ClientCommand::Register { site, .. }
        | ClientCommand::Enable { site, .. }
        | ClientCommand::Disable { site, .. }
        | ClientCommand::Setting { site, .. }
        | ClientCommand::InitialToken { site, .. }
        | ClientCommand::Launch { site, .. } => site.clone(),
    };
    let site = sites.require(&name).await?;
    match command {
        ClientCommand::List { .. } => {
            println!("client_id\tenabled\ttype\tauth\tname\tscope");
            for client in clients::list(&site).await? {
                println!(
                    "{}\t{}\t{}\t{}\t{}\t{}",
                    client.client_id,
                    if client.enabled { "yes" } else { "no" },
                    client.application_type,
                    client.auth_method,
                    client.client_name,
                    client.scope
                );
            }
        }
        ClientCommand::Register {
            name,
            redirect_uris,
            post_logout_redirect_uris,
            scope,
            confidential,
            ..
        } => {
            let mut body = serde_json::Map::new();
            body.insert(
                "application_type".into(),
                json!(if confidential { "private" } else { "public" }),
            );
            body.insert("client_name".into(), json!(name));
            body.insert("redirect_uris".into(), json!(redirect_uris));
            body.insert(
                "post_logout_redirect_uris".into(),
                json!(post_logout_redirect_uris),
            );
            if let Some(scope) = scope {
                body.insert("scope".into(), json!(scope));
            }
            // The site's catalogue holds the scopes of the plugins it loads, read from
            // plugins.toml and the plugin files as a server would load them.
            let config = crate::config::Config::load(data_dir, &Default::default())?;
            let registry = crate::plugins::Registry::inspect(
                super::plugin::local_engine(&config)?,
                &config.plugins_file,
            )
            .await;
            let table = registry.table(&site.name);
            let catalog = crate::registrar::catalog::Catalog::new(&table.scopes);
            let registered = crate::registrar::registration::create(&site, &body, true, catalog)
                .await
                .map_err(|error| anyhow::anyhow!("{}: {}", error.error, error.description))?;
            println!("client_id\t{}", registered.client_id);
            if let Some(secret) = registered.answer["client_secret"].as_str() {
                println!("client_secret\t{secret}");
            }
        }
        ClientCommand::Enable { client_id, .. } => {
            if !clients::set_enabled(&site, &client_id, true).await? {
                bail!("no client '{client_id}' on site {name}");
            }
            println!("client {client_id} enabled");
        }
        ClientCommand::Disable { client_id, .. } => {
            if !clients::set_enabled(&site, &client_id, false).await? {
                bail!("no client '{client_id}' on site {name}");
            }
            println!("client {client_id} disabled");
        }
        ClientCommand::Setting {
            name: None,
            value: None,
            ..
        } => {
            for known in settings::KNOWN {
                println!(
                    "{}\t{}\t# {} (default {})",
                    known.name,
                    settings::get(&site, known.name).await?,
                    known.help,
                    known.default
                );
            }
        }
        ClientCommand::Setting {
            name: Some(setting),
            value: None,
            ..
        } => println!("{}", settings::get(&site, &setting).await?),
        ClientCommand::Setting {
            name: Some(setting),
            value: Some(value),
            ..
        } => {
            settings::set(&site, &setting, &value).await?;
            println!("{setting} = {value}");
        }
        ClientCommand::Setting { .. } => bail!("give a setting name"),
        ClientCommand::Launch {
            patient,
            encounter,
            public_url,
            ..
        } => {
            let base = match public_url {
                Some(url) => url.trim_end_matches('/').to_owned(),
                None => sites
                    .setting("public_url")
                    .await?
                    .context("the server has not recorded its public URL yet; give --public-url")?,
            };
            let token = crate::oauth::authorize::launch_token(
                &base,
                &site,
                &patient.to_ascii_lowercase(),
                encounter.as_deref(),
            )?;
            println!("{token}");
        }
        ClientCommand::InitialToken { clear: true, .. } => {
            settings::clear_initial_token(&site).await?;
            println!("registration on site {name} is open");
        }
        ClientCommand::InitialToken { clear: false, .. } => {
            let token = settings::new_initial_token(&site).await?;
            println!("{token}");
        }
    }
    sites.close().await;
    Ok(())
}

/// Runs `hearth portal-login`.
pub async fn run_portal_login(data_dir: &Path, args: PortalLoginArgs) -> Result<()> {
    let sites = super::prepare(data_dir).await?;
    let site = sites.require(&args.site).await?;
    let password = super::read_password(args.password_stdin)?;
    if args.username.is_empty() || args.username.len() > 100 {
        bail!("the user name must be 1 to 100 characters");
    }
    let patient = args.patient.to_ascii_lowercase();
    crate::registrar::accounts::set_portal_login(
        &site,
        &patient,
        &args.username,
        &args.email,
        &password,
    )
    .await
    .with_context(|| {
        format!(
            "setting the portal login (is '{}' taken, or is there no patient {patient}?)",
            args.username
        )
    })?;
    println!("portal login {} set for patient {patient}", args.username);
    sites.close().await;
    Ok(())
}
