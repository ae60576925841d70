//! Export, off the request path: a finished span is offered to a bounded
//! queue ([`Pipeline::submit`] never waits: a full queue drops the span
//! and counts it); one task per pipeline takes spans in batches of up to
//! `otel-max-export-batch-size`, or what came within
//! `otel-schedule-delay-millis`, and hands each batch to the OTLP exporter
//! (gRPC, or HTTP with protobuf bodies) under a timeout. A batch that fails or times out is dropped
//! and counted: a dead or slow collector costs requests nothing.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use opentelemetry::InstrumentationScope;
use opentelemetry_otlp::{Protocol, WithExportConfig as _};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::{Sampler, SpanData, SpanExporter as _};
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::tracing_config::{OtlpProtocol, TracingConfig};

use crate::metrics::{OTEL_SPANS_DROPPED, OTEL_SPANS_EXPORTED};

/// One configuration's sampler, queue and exporter task.
#[derive(Debug)]
pub(crate) struct Pipeline {
    /// The settings it was built from.
    pub(crate) config: Arc<TracingConfig>,
    pub(crate) sampler: Sampler,
    pub(crate) scope: InstrumentationScope,
    queue: mpsc::Sender<SpanData>,
}

impl Pipeline {
    /// Builds the exporter (connecting lazily) and spawns its task on the
    /// current Tokio runtime. The task ends once the pipeline is dropped
    /// and what it queued is exported.
    pub(crate) fn start(config: Arc<TracingConfig>) -> Result<Pipeline, String> {
        let builder = opentelemetry_otlp::SpanExporter::builder();
        let built = match config.protocol {
            OtlpProtocol::Grpc => builder
                .with_tonic()
                .with_endpoint(config.endpoint())
                .with_timeout(config.export_timeout)
                .build(),
            OtlpProtocol::HttpProtobuf => builder
                .with_http()
                .with_protocol(Protocol::HttpBinary)
                .with_endpoint(config.endpoint())
                .with_timeout(config.export_timeout)
                .build(),
        };
        let mut exporter = built.map_err(|e| e.to_string())?;
        exporter.set_resource(
            &Resource::builder()
                .with_service_name(config.service_name.clone())
                .build(),
        );
        let (queue, spans) = mpsc::channel(config.max_queue.max(1));
        let batches = Batches {
            max: config.max_batch.clamp(1, config.max_queue.max(1)),
            delay: config.schedule_delay,
            timeout: config.export_timeout,
        };
        tokio::spawn(batches.run(spans, exporter));
        Ok(Pipeline {
            sampler: config.sampler(),
            scope: InstrumentationScope::builder("edge-gateway")
                .with_version(env!("CARGO_PKG_VERSION"))
                .build(),
            config,
            queue,
        })
    }

    /// Queues a finished span, or drops and counts it when the queue is
    /// full.
    pub(crate) fn submit(&self, span: SpanData) {
        if self.queue.try_send(span).is_err() {
            OTEL_SPANS_DROPPED.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// How the export task batches.
struct Batches {
    max: usize,
    delay: std::time::Duration,
    timeout: std::time::Duration,
}

impl Batches {
    async fn run(
        self,
        mut spans: mpsc::Receiver<SpanData>,
        exporter: opentelemetry_otlp::SpanExporter,
    ) {
        while let Some(first) = spans.recv().await {
            let deadline = Instant::now() + self.delay;
            let mut batch = Vec::with_capacity(self.max.min(64));
            batch.push(first);
            while batch.len() < self.max {
                match tokio::time::timeout_at(deadline, spans.recv()).await {
                    Ok(Some(span)) => batch.push(span),
                    Ok(None) | Err(_) => break,
                }
            }
            let count = batch.len() as u64;
            match tokio::time::timeout(self.timeout, exporter.export(batch)).await {
                Ok(Ok(())) => {
                    OTEL_SPANS_EXPORTED.fetch_add(count, Ordering::Relaxed);
                }
                Ok(Err(error)) => {
                    OTEL_SPANS_DROPPED.fetch_add(count, Ordering::Relaxed);
                    tracing::debug!(%error, spans = count, "span export failed; spans dropped");
                }
                Err(_) => {
                    OTEL_SPANS_DROPPED.fetch_add(count, Ordering::Relaxed);
                    tracing::debug!(spans = count, "span export timed out; spans dropped");
                }
            }
        }
    }
}

#[cfg(test)]
impl Pipeline {
    /// A pipeline whose queue the test reads, with no exporter.
    pub(crate) fn for_tests(config: TracingConfig) -> (Pipeline, mpsc::Receiver<SpanData>) {
        let (queue, spans) = mpsc::channel(config.max_queue.max(1));
        let pipeline = Pipeline {
            sampler: config.sampler(),
            scope: InstrumentationScope::builder("edge-gateway").build(),
            config: Arc::new(config),
            queue,
        };
        (pipeline, spans)
    }
}
