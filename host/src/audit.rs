//! The API audit log: one row per `/apis` request in the site's own database (`api_log`).
//!
//! Rows are written by a background task in batches (one transaction per site per batch),
//! so auditing never serialises requests behind a database write. The queue is bounded;
//! when it is full, requests wait for room rather than lose a row. Shutdown flushes it.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

use crate::on_db;
use crate::sites::Sites;

/// One audited request.
#[derive(Debug, Clone)]
pub struct Record {
    /// Site name.
    pub site: String,
    /// When it arrived (UTC, ISO 8601).
    pub created_at: String,
    /// The principal's uuid.
    pub user_id: Option<String>,
    /// The OAuth client.
    pub client_id: Option<String>,
    /// HTTP method.
    pub method: String,
    /// Request path.
    pub path: String,
    /// Response status.
    pub status: u16,
    /// Time to answer, microseconds.
    pub duration_us: u64,
    /// The patient concerned, when known.
    pub patient_id: Option<String>,
    /// The plugin that answered.
    pub plugin: Option<String>,
    /// Request body, only when the host is configured to keep bodies.
    pub request_body: Option<String>,
    /// Response body, likewise.
    pub response_body: Option<String>,
}

impl Record {
    /// A record for a request that arrived now.
    pub fn new(site: &str, method: &str, path: &str) -> Record {
        let now = time::OffsetDateTime::now_utc();
        Record {
            site: site.to_owned(),
            created_at: now
                .format(&time::format_description::well_known::Rfc3339)
                .unwrap_or_default(),
            user_id: None,
            client_id: None,
            method: method.to_owned(),
            path: path.to_owned(),
            status: 0,
            duration_us: 0,
            patient_id: None,
            plugin: None,
            request_body: None,
            response_body: None,
        }
    }
}

enum Message {
    Record(Box<Record>),
    Flush(oneshot::Sender<()>),
}

/// Handle to the audit writer.
#[derive(Clone)]
pub struct Audit {
    queue: mpsc::Sender<Message>,
}

/// Records waiting before requests are held back.
const QUEUE: usize = 65_536;
/// Rows per write.
const BATCH: usize = 1_000;

impl Audit {
    /// Starts the writer.
    pub fn start(sites: Arc<Sites>) -> Audit {
        let (queue, mut receiver) = mpsc::channel::<Message>(QUEUE);
        tokio::spawn(async move {
            let mut batch: Vec<Record> = Vec::new();
            let mut waiting: Vec<oneshot::Sender<()>> = Vec::new();
            loop {
                let Some(first) = receiver.recv().await else {
                    break;
                };
                let mut next = Some(first);
                while let Some(message) = next.take() {
                    match message {
                        Message::Record(record) => batch.push(*record),
                        Message::Flush(done) => waiting.push(done),
                    }
                    if batch.len() >= BATCH {
                        break;
                    }
                    next = receiver.try_recv().ok();
                }
                write(&sites, std::mem::take(&mut batch)).await;
                for done in waiting.drain(..) {
                    let _ = done.send(());
                }
                // Let a burst accumulate into one transaction.
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        });
        Audit { queue }
    }

    /// Queues a record.
    pub fn record(&self, record: Record) {
        let message = Message::Record(Box::new(record));
        if let Err(mpsc::error::TrySendError::Full(message)) = self.queue.try_send(message) {
            let queue = self.queue.clone();
            tokio::spawn(async move {
                let _ = queue.send(message).await;
            });
        }
    }

    /// Waits until everything queued so far is written.
    pub async fn flush(&self) {
        let (done, wait) = oneshot::channel();
        if self.queue.send(Message::Flush(done)).await.is_ok() {
            let _ = wait.await;
        }
    }
}

async fn write(sites: &Sites, batch: Vec<Record>) {
    if batch.is_empty() {
        return;
    }
    let mut by_site: std::collections::BTreeMap<String, Vec<Record>> = Default::default();
    for record in batch {
        by_site.entry(record.site.clone()).or_default().push(record);
    }
    for (name, records) in by_site {
        let Some(site) = sites.get(&name).await else {
            continue;
        };
        let result: Result<(), sqlx::Error> = on_db!(&site.db, |pool| {
            async {
                let mut tx = pool.begin().await?;
                for r in &records {
                    sqlx::query(
                        "INSERT INTO api_log (site, created_at, user_id, client_id, method, path, status, duration_us, patient_id, plugin, request_body, response_body) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
                    )
                    .bind(&r.site)
                    .bind(&r.created_at)
                    .bind(&r.user_id)
                    .bind(&r.client_id)
                    .bind(&r.method)
                    .bind(&r.path)
                    .bind(i64::from(r.status))
                    .bind(r.duration_us as i64)
                    .bind(&r.patient_id)
                    .bind(&r.plugin)
                    .bind(&r.request_body)
                    .bind(&r.response_body)
                    .execute(&mut *tx)
                    .await?;
                }
                tx.commit().await
            }
            .await
        });
        if let Err(error) = result {
            tracing::error!(site = %name, "writing {} audit rows failed: {error}", records.len());
        }
    }
}
