//! `synap-bench telemetry-cost`: what the services' logging and tracing cost per record, measured
//! in process on the stack the services install (`synap_telemetry::subscriber`, no exporter).
//!
//! A run of the scenarios moves by ±15% with this machine's speed, so it cannot show a change of
//! a few percent of a stage's CPU; one record's telemetry costs two or three microseconds of a
//! delivery's sixty, and this measures it to within a few percent. Two records are modelled: the
//! sender's attempt (its span continuing the router's trace, polled three times, `traceparent`
//! injected into the request) and an ingest record (its span, the trace read from the record, the
//! event's id and type recorded, the trace context written for the outgoing record).

use std::hint::black_box;
use std::time::Instant;

use anyhow::Context;
use rdkafka::message::{Header, OwnedHeaders};
use synap_runtime::LogFormat;
use synap_telemetry::TelemetryConfig;
use tracing_subscriber::EnvFilter;

#[derive(clap::Args)]
pub struct TelemetryCostArgs {
    /// Records per measurement.
    #[arg(long, default_value_t = 200_000, value_parser = clap::value_parser!(u32).range(1..))]
    records: u32,
    /// Measurements per setting and record; the table gives their median.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..=100))]
    rounds: u32,
}

struct Setting {
    name: &'static str,
    /// `None`: no subscriber at all.
    logs: Option<(LogFormat, &'static str)>,
}

const SETTINGS: [Setting; 4] = [
    Setting {
        name: "JSON logs at info, spans traced (the services' defaults)",
        logs: Some((LogFormat::Json, "info")),
    },
    Setting { name: "text logs at info, spans traced", logs: Some((LogFormat::Text, "info")) },
    Setting {
        name: "JSON logs at warn (spans not logged), spans traced",
        logs: Some((LogFormat::Json, "warn")),
    },
    Setting { name: "no logging or tracing", logs: None },
];

const TRACEPARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
const EVENT_ID: &str = "evt_01JD2K3M4N5P6Q7R8S9T0V1W2X";
const SUBSCRIPTION_ID: &str = "sub_01JD2K3M4N5P6Q7R8S9T0V1W2Y";

pub fn run(args: TelemetryCostArgs) -> anyhow::Result<()> {
    println!(
        "Telemetry per record, ns (median of {} rounds of {} records, one thread):\n",
        args.rounds, args.records
    );
    println!("| setting | sender attempt | ingest record |");
    println!("|---|---:|---:|");
    for row in measure_all(&args)? {
        println!("| {} | {:.0} | {:.0} |", row.setting, row.attempt_ns, row.ingest_ns);
    }
    Ok(())
}

/// One line of the table: nanoseconds per record under one setting.
struct Row {
    setting: &'static str,
    attempt_ns: f64,
    ingest_ns: f64,
}

fn measure_all(args: &TelemetryCostArgs) -> anyhow::Result<Vec<Row>> {
    let provider = synap_telemetry::tracer_provider(&TelemetryConfig::default(), "synap-bench")
        .context("the services' tracer provider")?;
    let headers = OwnedHeaders::new().insert(Header { key: "traceparent", value: Some(TRACEPARENT) });
    let mut rows = Vec::new();
    for setting in &SETTINGS {
        let mut attempt = Vec::new();
        let mut ingest = Vec::new();
        for _ in 0..args.rounds {
            attempt.push(measure(setting, &provider, args.records, |i| attempt_record(&headers, i)));
            ingest.push(measure(setting, &provider, args.records, |i| ingest_record(&headers, i)));
        }
        rows.push(Row {
            setting: setting.name,
            attempt_ns: median(&mut attempt),
            ingest_ns: median(&mut ingest),
        });
    }
    Ok(rows)
}

/// Nanoseconds per call of `record`, under `setting`'s subscriber.
fn measure(
    setting: &Setting,
    provider: &opentelemetry_sdk::trace::SdkTracerProvider,
    records: u32,
    record: impl Fn(u32),
) -> f64 {
    let time = || {
        let started = Instant::now();
        for i in 0..records {
            record(i);
        }
        started.elapsed().as_nanos() as f64 / f64::from(records)
    };
    match setting.logs {
        Some((format, filter)) => {
            let subscriber =
                synap_telemetry::subscriber(format, EnvFilter::new(filter), provider, std::io::sink, false);
            tracing::subscriber::with_default(subscriber, time)
        }
        None => tracing::subscriber::with_default(tracing::subscriber::NoSubscriber::default(), time),
    }
}

/// The sender's telemetry for one attempt.
fn attempt_record(headers: &OwnedHeaders, i: u32) {
    let span = synap_telemetry::attempt_span(Some(headers), EVENT_ID, SUBSCRIPTION_ID, i % 3 + 1);
    // The attempt's future is polled about three times: the request, the response, its body.
    for _ in 0..3 {
        let _polled = span.enter();
    }
    let mut request = http::HeaderMap::new();
    span.in_scope(|| synap_telemetry::inject_http(&mut request));
    black_box(request);
}

/// Ingest's telemetry for one record.
fn ingest_record(headers: &OwnedHeaders, i: u32) {
    let span = tracing::info_span!(
        "ingest",
        otel.kind = "consumer",
        source = %format_args!("synap.inbound/{}/{i}", i % 6),
        event_id = tracing::field::Empty,
        event_type = tracing::field::Empty,
        trace_id = tracing::field::Empty,
    );
    synap_telemetry::continue_trace(&span, Some(headers));
    span.record("event_id", EVENT_ID).record("event_type", "attempt.completed");
    for _ in 0..2 {
        let _polled = span.enter();
    }
    black_box(span.in_scope(synap_telemetry::trace_headers));
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: TelemetryCostArgs,
    }

    #[test]
    fn sizes_that_measure_nothing_are_refused_by_name() {
        for (flag, value) in [("--records", "0"), ("--rounds", "0"), ("--rounds", "101"), ("--records", "x")]
        {
            let refused = Cli::try_parse_from(["telemetry-cost", flag, value]).err().unwrap().to_string();
            assert!(refused.contains(flag), "{flag} {value}: {refused}");
        }
        let cli = Cli::try_parse_from(["telemetry-cost"]).unwrap();
        assert_eq!((cli.args.records, cli.args.rounds), (200_000, 5));
    }

    /// Each setting is measured under its own subscriber: the services' stack costs several times
    /// what no subscriber does, and no setting comes out free.
    #[test]
    fn every_setting_is_measured_on_its_own_stack() {
        let rows = measure_all(&TelemetryCostArgs { records: 2_000, rounds: 3 }).unwrap();
        assert_eq!(rows.len(), SETTINGS.len());
        let (defaults, none) = (&rows[0], &rows[rows.len() - 1]);
        for row in &rows {
            assert!(row.attempt_ns > 0.0 && row.ingest_ns > 0.0, "{}", row.setting);
        }
        assert!(
            defaults.attempt_ns > 3.0 * none.attempt_ns,
            "{} vs {}",
            defaults.attempt_ns,
            none.attempt_ns
        );
        assert!(defaults.ingest_ns > 3.0 * none.ingest_ns, "{} vs {}", defaults.ingest_ns, none.ingest_ns);
    }
}
