//! Exporting one SERVER span per proxied request to an OpenTelemetry collector, over OTLP/HTTP
//! with the JSON encoding, in batches from a background task. Requests never wait for it: when
//! its queue is full, spans are dropped and counted.

mod send;
mod span;

use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

pub use send::OtlpError;
pub(crate) use span::ServerSpan;

use send::Collector;

/// Spans waiting to be exported; past this, new spans are dropped.
const QUEUE: usize = 16 * 1024;
/// The most spans in one export request.
const MAX_BATCH: usize = 1024;
/// How long the first span of a batch waits for others before the batch is exported.
const BATCH_DELAY: Duration = Duration::from_secs(1);
/// Export failures are logged at most this often.
const WARN_EVERY: Duration = Duration::from_secs(60);

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SpanLabels {
    result: &'static str,
}

/// Counts spans by what became of them.
#[derive(Clone, Debug, Default)]
struct SpanCounts(Family<SpanLabels, Counter>);

impl SpanCounts {
    fn add(&self, result: &'static str, spans: u64) {
        self.0.get_or_create(&SpanLabels { result }).inc_by(spans);
    }
}

/// Hands spans to a background task that exports them in batches.
#[derive(Debug)]
pub struct OtlpExporter {
    spans: mpsc::Sender<ServerSpan>,
    flushes: mpsc::Sender<oneshot::Sender<()>>,
    counts: SpanCounts,
}

impl OtlpExporter {
    /// Starts exporting to the collector at `endpoint` (`http://host:port`; spans are posted to
    /// `/v1/traces` under it), and registers `otlp_spans` in `registry`. Must be called within
    /// a tokio runtime.
    pub fn start(endpoint: &str, registry: &mut Registry) -> Result<Self, OtlpError> {
        let collector = Collector::new(endpoint)?;
        let counts = SpanCounts::default();
        registry.register(
            "otlp_spans",
            "Spans for the OTLP collector, by result: exported, dropped (queue full) or failed (export failed)",
            counts.0.clone(),
        );
        tracing::info!(url = %collector.url(), "exporting spans over OTLP/HTTP (JSON)");
        let (spans, queued) = mpsc::channel(QUEUE);
        let (flushes, flush_requests) = mpsc::channel(1);
        let batcher = Batcher {
            collector,
            counts: counts.clone(),
            failures: FailureLog::default(),
        };
        tokio::spawn(batcher.run(queued, flush_requests));
        Ok(Self {
            spans,
            flushes,
            counts,
        })
    }

    /// Queues a span for export, or drops and counts it when the queue is full.
    pub(crate) fn record(&self, span: ServerSpan) {
        if self.spans.try_send(span).is_err() {
            self.counts.add("dropped", 1);
        }
    }

    /// Exports every span queued so far, waiting at most `timeout`; returns whether that was
    /// done in time (spans whose export failed count as done).
    pub async fn flush(&self, timeout: Duration) -> bool {
        let (done, finished) = oneshot::channel();
        let flushed = async { self.flushes.send(done).await.is_ok() && finished.await.is_ok() };
        tokio::time::timeout(timeout, flushed)
            .await
            .unwrap_or(false)
    }
}

/// The background task: gathers spans into batches and posts them, one export at a time.
struct Batcher {
    collector: Collector,
    counts: SpanCounts,
    failures: FailureLog,
}

impl Batcher {
    async fn run(
        mut self,
        mut spans: mpsc::Receiver<ServerSpan>,
        mut flushes: mpsc::Receiver<oneshot::Sender<()>>,
    ) {
        let mut batch = Vec::with_capacity(MAX_BATCH);
        let mut deadline = Instant::now();
        loop {
            tokio::select! {
                biased;
                Some(done) = flushes.recv() => {
                    while let Ok(span) = spans.try_recv() {
                        batch.push(span);
                        if batch.len() >= MAX_BATCH {
                            self.export(&mut batch).await;
                        }
                    }
                    self.export(&mut batch).await;
                    let _ = done.send(());
                }
                span = spans.recv() => {
                    let Some(span) = span else {
                        self.export(&mut batch).await;
                        return;
                    };
                    if batch.is_empty() {
                        deadline = Instant::now() + BATCH_DELAY;
                    }
                    batch.push(span);
                    if batch.len() >= MAX_BATCH {
                        self.export(&mut batch).await;
                    }
                }
                () = tokio::time::sleep_until(deadline), if !batch.is_empty() => {
                    self.export(&mut batch).await;
                }
            }
        }
    }

    /// Posts `batch` and empties it; a failure is counted and logged, never retried.
    async fn export(&mut self, batch: &mut Vec<ServerSpan>) {
        if batch.is_empty() {
            return;
        }
        let count = batch.len() as u64;
        let sent = match span::export_request(batch) {
            Ok(body) => self.collector.send(body).await,
            Err(error) => Err(error.into()),
        };
        batch.clear();
        match sent {
            Ok(()) => self.counts.add("exported", count),
            Err(error) => {
                self.counts.add("failed", count);
                self.failures.report(&error, count);
            }
        }
    }
}

/// Logs export failures as warnings at most once per [`WARN_EVERY`], with the spans lost since
/// the last warning.
#[derive(Default)]
struct FailureLog {
    last_warning: Option<Instant>,
    lost: u64,
}

impl FailureLog {
    fn report(&mut self, error: &OtlpError, spans: u64) {
        self.lost += spans;
        tracing::debug!(%error, spans, "OTLP export failed");
        if self
            .last_warning
            .is_some_and(|at| at.elapsed() < WARN_EVERY)
        {
            return;
        }
        tracing::warn!(%error, spans_lost = self.lost, "OTLP export failed; its spans were dropped (logged at most once a minute)");
        self.last_warning = Some(Instant::now());
        self.lost = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prometheus_client::encoding::text::encode;

    #[tokio::test]
    async fn a_full_queue_drops_and_failed_exports_are_counted() {
        let closed = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .expect("a free port");
        let mut registry = Registry::with_prefix("vestibule");
        let exporter =
            OtlpExporter::start(&format!("http://{closed}"), &mut registry).expect("started");
        for _ in 0..=QUEUE {
            exporter.record(ServerSpan::example());
        }
        assert!(exporter.flush(Duration::from_secs(30)).await, "flushed");
        let mut text = String::new();
        encode(&mut text, &registry).expect("encoded");
        for expected in [
            r#"vestibule_otlp_spans_total{result="dropped"} 1"#,
            &format!(r#"vestibule_otlp_spans_total{{result="failed"}} {QUEUE}"#),
        ] {
            assert!(text.contains(expected), "{expected} missing from:\n{text}");
        }
    }
}
