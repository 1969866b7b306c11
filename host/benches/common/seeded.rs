//! A large seeded site kept between bench runs: `target/bench-fhir/{backend}-{patients}`
//! holds the data folder of the site `bench`, filled once with `hearth demo seed`
//! (seed 15); on PostgreSQL its database is `hearth_bench_fhir_{patients}` on the server
//! `admin_url` names. The FHIR bench and the bulk export bench share it, so a 100,000
//! patient site is seeded once for both. Delete the folder to seed again.

use std::path::{Path, PathBuf};
use std::time::Instant;

use hearth::sites::Sites;

/// The site's name in a kept data folder.
pub const SITE: &str = "bench";

/// The kept data folder for `patients` on `backend` (`sqlite`, or `postgres` with
/// `admin_url`), seeded first when it is not there yet.
pub async fn seeded(
    root: &Path,
    backend: &str,
    admin_url: Option<&str>,
    patients: u64,
) -> anyhow::Result<PathBuf> {
    let dir = root.join(format!("target/bench-fhir/{backend}-{patients}"));
    let marker = dir.join("seeded");
    if marker.exists() {
        return Ok(dir);
    }
    std::fs::remove_dir_all(&dir).ok();
    let sites = Sites::open(&dir).await?;
    let url = match admin_url {
        Some(admin) => {
            let name = format!("hearth_bench_fhir_{patients}");
            let pool = sqlx::PgPool::connect(admin).await?;
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
            )))
            .execute(&pool)
            .await?;
            sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
                .execute(&pool)
                .await?;
            pool.close().await;
            let (base, _) = admin.rsplit_once('/').unwrap_or((admin, ""));
            Some(format!("{base}/{name}"))
        }
        None => None,
    };
    let site = sites.create(SITE, url.as_deref()).await?;
    let started = Instant::now();
    let options = hearth_demo::SeedOptions {
        patients,
        seed: 15,
        batch: 500,
    };
    hearth::cli::seed_demo(&site, &options, |_, _| {}).await?;
    if let Some(url) = &url {
        // Freshly bulk-loaded tables have no statistics until autovacuum reaches them
        // (minutes later on a busy machine), and the planner's guesses made the search
        // ten times slower (docs/benchmarks.md): measure with statistics.
        let pool = sqlx::PgPool::connect(url).await?;
        sqlx::query("ANALYZE").execute(&pool).await?;
        pool.close().await;
    }
    println!(
        "{backend}: seeded {patients} patients in {:.0} s",
        started.elapsed().as_secs_f64()
    );
    sites.close().await;
    std::fs::write(&marker, b"")?;
    Ok(dir)
}
