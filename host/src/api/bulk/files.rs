//! An export's files: to the job's owner only, streamed in chunks, gzip on request.

use std::pin::Pin;
use std::task::{Context, Poll};

use axum::body::Body;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use bytes::Bytes;

use super::jobs::owned;
use super::{Call, job_dir};
use crate::auth::tokens::Principal;
use crate::error::HttpError;

/// Answers one of a job's files.
pub(super) async fn file(
    call: &Call<'_>,
    id: &str,
    name: &str,
    principal: &Principal,
) -> Result<Response, HttpError> {
    let job = owned(call, id, principal).await?;
    let listed = job.status == "done"
        && (job.progress.files.iter().any(|f| f.name == name)
            || (name == "errors.ndjson" && !job.progress.errors.is_empty()));
    if !listed {
        return Err(HttpError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("The export has no file {name}"),
        ));
    }
    let path = job_dir(&call.app.config.data_dir, &call.site.name, id).join(name);
    let file = std::fs::File::open(&path).map_err(|_| {
        HttpError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("The export's file {name} is gone"),
        )
    })?;
    let gzip = call
        .headers
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|e| {
            let mut parts = e.split(';');
            let coding = parts.next().unwrap_or("").trim();
            let refused = parts.any(|p| {
                p.trim()
                    .strip_prefix("q=")
                    .and_then(|q| q.parse::<f32>().ok())
                    == Some(0.0)
            });
            coding.eq_ignore_ascii_case("gzip") && !refused
        });
    let (sender, receiver) = tokio::sync::mpsc::channel(4);
    tokio::task::spawn_blocking(move || stream_file(file, gzip, sender));
    let mut response = Response::new(Body::from_stream(Chunks(receiver)));
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/fhir+ndjson"),
    );
    if gzip {
        headers.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    }
    headers.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
    Ok(response)
}

type Chunk = Result<Bytes, std::io::Error>;

/// Writes into a channel, chunk by chunk (for a blocking thread).
struct ChannelWriter(tokio::sync::mpsc::Sender<Chunk>);

impl std::io::Write for ChannelWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .blocking_send(Ok(Bytes::copy_from_slice(buf)))
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::BrokenPipe, "client gone"))?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Sends a file in 64 KiB chunks, gzipped or not; memory stays at a few chunks.
fn stream_file(mut file: std::fs::File, gzip: bool, sender: tokio::sync::mpsc::Sender<Chunk>) {
    use std::io::{Read, Write};
    let mut buffer = vec![0u8; 64 * 1024];
    let result = (|| -> std::io::Result<()> {
        let writer = std::io::BufWriter::with_capacity(64 * 1024, ChannelWriter(sender.clone()));
        let mut out: Box<dyn Write> = if gzip {
            Box::new(flate2::write::GzEncoder::new(
                writer,
                flate2::Compression::fast(),
            ))
        } else {
            Box::new(writer)
        };
        loop {
            let n = file.read(&mut buffer)?;
            if n == 0 {
                break;
            }
            out.write_all(&buffer[..n])?;
        }
        out.flush()?;
        drop(out);
        Ok(())
    })();
    if let Err(error) = result {
        let _ = sender.blocking_send(Err(error));
    }
}

/// A body stream over a channel of chunks.
struct Chunks(tokio::sync::mpsc::Receiver<Chunk>);

impl futures_core::Stream for Chunks {
    type Item = Chunk;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Chunk>> {
        self.0.poll_recv(cx)
    }
}
