//! `hearth group …`: the patient groups a Group-level Bulk Data export names
//! (`/fhir/Group/{id}/$export`), listed, made and changed from the command line.
//!
//! Like `hearth plugin list`, the command asks the running server (see [`super::plugin`]
//! for how it finds it and mints its one-minute token): it reads and writes through the
//! site's FHIR API (`GET`, `POST` and `PUT /fhir/Group`), so the `fhir-group` plugin's own
//! checks apply (every member must be a patient of the site) and every change is audited.

use std::path::Path;

use anyhow::{Result, anyhow, bail};
use clap::Subcommand;
use reqwest::Method;
use serde_json::{Value, json};

use super::plugin::{Client, ClientError};
use crate::sites::Site;

/// The token's scope: read, search, create and update Groups.
const SCOPE: &str = "system/Group.crus";

/// `hearth group …`.
#[derive(Debug, Subcommand)]
pub enum GroupCommand {
    /// Lists the site's groups: id, name, whether active, and how many members.
    List {
        /// The site.
        #[arg(long, default_value = "default")]
        site: String,
    },
    /// Prints one group as FHIR JSON.
    Show {
        /// The group's id.
        id: String,
        /// The site.
        #[arg(long, default_value = "default")]
        site: String,
    },
    /// Makes a group of patients and prints its id.
    Create {
        /// The group's name.
        #[arg(long)]
        name: String,
        /// A member: the patient's FHIR id (`Patient/` in front is allowed). Repeat it
        /// for each.
        #[arg(long = "patient")]
        patients: Vec<String>,
        /// The site.
        #[arg(long, default_value = "default")]
        site: String,
    },
    /// Adds patients to a group (one already in it stays once).
    Add {
        /// The group's id.
        id: String,
        /// A patient to add (its FHIR id); repeat it for each.
        #[arg(long = "patient", required = true)]
        patients: Vec<String>,
        /// The site.
        #[arg(long, default_value = "default")]
        site: String,
    },
    /// Takes patients out of a group.
    Remove {
        /// The group's id.
        id: String,
        /// A patient to take out (its FHIR id); repeat it for each.
        #[arg(long = "patient", required = true)]
        patients: Vec<String>,
        /// The site.
        #[arg(long, default_value = "default")]
        site: String,
    },
}

/// Runs `hearth group …`.
pub async fn run(data_dir: &Path, command: GroupCommand) -> Result<()> {
    let sites = super::prepare(data_dir).await?;
    let client = Client::new(&sites).await?;
    let name = match &command {
        GroupCommand::List { site }
        | GroupCommand::Show { site, .. }
        | GroupCommand::Create { site, .. }
        | GroupCommand::Add { site, .. }
        | GroupCommand::Remove { site, .. } => site.clone(),
    };
    let site = sites.require(&name).await?;
    let result = execute(&client, &site, command).await;
    drop(site);
    sites.close().await;
    result
}

async fn execute(client: &Client, site: &Site, command: GroupCommand) -> Result<()> {
    match command {
        GroupCommand::List { .. } => {
            for group in list(client, site).await? {
                println!(
                    "{}\t{}\t{}\t{}",
                    group["id"].as_str().unwrap_or_default(),
                    group["name"].as_str().unwrap_or_default(),
                    if group["active"].as_bool().unwrap_or(true) {
                        "active"
                    } else {
                        "inactive"
                    },
                    counted(members(&group).len())
                );
            }
        }
        GroupCommand::Show { id, .. } => {
            let group = read(client, site, &id).await?;
            println!("{}", serde_json::to_string_pretty(&group)?);
        }
        GroupCommand::Create { name, patients, .. } => {
            let body = json!({
                "resourceType": "Group",
                "type": "person",
                "actual": true,
                "active": true,
                "name": name,
                "member": entities(&patients_of(&patients)?),
            });
            let made = send(client, site, Method::POST, "/fhir/Group", Some(&body)).await?;
            let made: Value = serde_json::from_str(&made)?;
            println!("{}", made["id"].as_str().unwrap_or_default());
        }
        GroupCommand::Add { id, patients, .. } => {
            let mut group = read(client, site, &id).await?;
            let mut now = members(&group);
            for patient in patients_of(&patients)? {
                if !now.contains(&patient) {
                    now.push(patient);
                }
            }
            replace(client, site, &id, &mut group, &now).await?;
        }
        GroupCommand::Remove { id, patients, .. } => {
            let mut group = read(client, site, &id).await?;
            let gone = patients_of(&patients)?;
            let before = members(&group);
            if let Some(missing) = gone.iter().find(|p| !before.contains(p)) {
                bail!("Patient/{missing} is not a member of group {id}");
            }
            let now: Vec<String> = before.into_iter().filter(|p| !gone.contains(p)).collect();
            replace(client, site, &id, &mut group, &now).await?;
        }
    }
    Ok(())
}

/// The patients' FHIR ids, with `Patient/` taken off where it was written.
fn patients_of(given: &[String]) -> Result<Vec<String>> {
    given
        .iter()
        .map(|p| {
            let id = p.strip_prefix("Patient/").unwrap_or(p).trim();
            if !is_fhir_id(id) {
                bail!("{p:?} is not a patient's FHIR id (e.g. Patient/9a1c… or 9a1c…)");
            }
            Ok(id.to_owned())
        })
        .collect()
}

/// `id` when it is a FHIR id (letters, digits, `-` and `.`, 1 to 64 of them): what goes
/// into a request's path unescaped.
fn group_id(id: &str) -> Result<&str> {
    if !is_fhir_id(id) {
        bail!("{id:?} is not a group's FHIR id (`hearth group list` shows them)");
    }
    Ok(id)
}

fn is_fhir_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
}

/// `1 member`, `3 members`.
fn counted(members: usize) -> String {
    match members {
        1 => "1 member".to_owned(),
        n => format!("{n} members"),
    }
}

/// `member` entries for patient ids.
fn entities(patients: &[String]) -> Value {
    patients
        .iter()
        .map(|p| json!({"entity": {"reference": format!("Patient/{p}")}}))
        .collect()
}

/// The patient ids a Group lists as members, in its order.
fn members(group: &Value) -> Vec<String> {
    group["member"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|m| m["entity"]["reference"].as_str())
        .map(|r| r.strip_prefix("Patient/").unwrap_or(r).to_owned())
        .collect()
}

/// Writes `group` back with exactly `now` as its members and prints its id and count.
async fn replace(
    client: &Client,
    site: &Site,
    id: &str,
    group: &mut Value,
    now: &[String],
) -> Result<()> {
    group["member"] = entities(now);
    if let Some(object) = group.as_object_mut() {
        // The server keeps these itself.
        object.remove("meta");
        object.remove("quantity");
    }
    send(
        client,
        site,
        Method::PUT,
        &format!("/fhir/Group/{id}"),
        Some(group),
    )
    .await?;
    println!("{id}\t{}", counted(now.len()));
    Ok(())
}

async fn read(client: &Client, site: &Site, id: &str) -> Result<Value> {
    let id = group_id(id)?;
    let text = send(
        client,
        site,
        Method::GET,
        &format!("/fhir/Group/{id}"),
        None,
    )
    .await?;
    Ok(serde_json::from_str(&text)?)
}

/// Every group of the site, following the searchset's `next` links.
async fn list(client: &Client, site: &Site) -> Result<Vec<Value>> {
    let prefix = format!("{}/apis/{}", client.base, site.name);
    let mut path = "/fhir/Group?_count=200".to_owned();
    let mut groups = Vec::new();
    loop {
        let page: Value =
            serde_json::from_str(&send(client, site, Method::GET, &path, None).await?)?;
        for entry in page["entry"].as_array().into_iter().flatten() {
            groups.push(entry["resource"].clone());
        }
        let next = page["link"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|l| l["relation"] == "next")
            .and_then(|l| l["url"].as_str());
        match next.and_then(|url| url.strip_prefix(&prefix)) {
            Some(rest) => path = rest.to_owned(),
            None => break,
        }
    }
    Ok(groups)
}

async fn send(
    client: &Client,
    site: &Site,
    method: Method,
    path: &str,
    body: Option<&Value>,
) -> Result<String> {
    client
        .send(site, method, path, SCOPE, body)
        .await
        .map_err(|error| match error {
            ClientError::NoServer(why) => anyhow!(
                "no server answers at {} ({why}): `hearth group` works through the running server; start it with `hearth serve`",
                client.base
            ),
            ClientError::Other(error) => error,
        })
}
