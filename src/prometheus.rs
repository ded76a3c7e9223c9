//! [`Stats`] as Prometheus text exposition (format 0.0.4), for the opt-in
//! [`Config::metrics_path`](crate::Config::metrics_path).
//!
//! A snapshot enters, one `text/plain; version=0.0.4` body leaves. Names follow Prometheus
//! conventions: a `wsreactor_` prefix, `_total` for counters, base units (`_bytes`), and labels
//! for one quantity split by kind (`reason`, `kind`).

use std::fmt::Write;

use crate::metrics::Stats;

/// The content type of the exposition.
pub(crate) const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Renders `stats` as Prometheus text.
pub(crate) fn render(stats: &Stats) -> String {
    let mut out = String::with_capacity(4096);
    let s = stats;
    let counters: [(&str, &str, u64); 14] = [
        (
            "connections_accepted_total",
            "TCP connections accepted.",
            s.connections_accepted,
        ),
        (
            "connections_rejected_total",
            "Connections refused with 503 at max_connections.",
            s.connections_rejected,
        ),
        (
            "http_requests_total",
            "Plain HTTP requests handed to the handler.",
            s.http_requests,
        ),
        (
            "websocket_upgrades_total",
            "WebSocket upgrades completed (101 sent).",
            s.upgrades,
        ),
        (
            "messages_received_total",
            "WebSocket data messages received.",
            s.messages_in,
        ),
        (
            "messages_sent_total",
            "WebSocket data messages sent.",
            s.messages_out,
        ),
        (
            "received_bytes_total",
            "Bytes read from sockets.",
            s.bytes_in,
        ),
        ("sent_bytes_total", "Bytes written to sockets.", s.bytes_out),
        (
            "jobs_dispatched_total",
            "Jobs handed to the worker pool.",
            s.jobs_dispatched,
        ),
        (
            "stale_replies_dropped_total",
            "Replies or pushes for connections already closed.",
            s.stale_replies_dropped,
        ),
        (
            "handler_panics_total",
            "Handler calls that panicked.",
            s.handler_panics,
        ),
        (
            "accept_errors_total",
            "accept() failures (each followed by a pause).",
            s.accept_errors,
        ),
        (
            "backpressure_pauses_total",
            "Times a socket stopped being read because a queue was full.",
            s.backpressure_pauses,
        ),
        ("pings_sent_total", "Keepalive pings sent.", s.pings_sent),
    ];
    for (name, help, value) in counters {
        metric(&mut out, name, help, "counter", &[("", value)]);
    }
    metric(
        &mut out,
        "connections_closed_total",
        "Connections closed, by reason.",
        "counter",
        &[
            ("reason=\"clean\"", s.closed_clean),
            ("reason=\"protocol_error\"", s.closed_protocol_error),
            ("reason=\"peer_gone\"", s.closed_peer_gone),
            ("reason=\"timeout\"", s.closed_timeout),
            ("reason=\"server\"", s.closed_server),
        ],
    );
    metric(
        &mut out,
        "timeouts_total",
        "Deadlines that fired, by kind.",
        "counter",
        &[
            ("kind=\"request\"", s.timeouts_request),
            ("kind=\"idle\"", s.timeouts_idle),
            ("kind=\"pong\"", s.timeouts_pong),
            ("kind=\"lifetime\"", s.timeouts_lifetime),
            ("kind=\"write_stall\"", s.timeouts_write_stall),
            ("kind=\"close\"", s.timeouts_close),
        ],
    );
    let gauges: [(&str, &str, u64); 7] = [
        (
            "connections_open",
            "Connections open now.",
            s.connections_open,
        ),
        (
            "websocket_connections_open",
            "Upgraded WebSocket connections open now.",
            s.websocket_open,
        ),
        (
            "job_queue_depth",
            "Jobs waiting for a worker.",
            s.job_queue_depth,
        ),
        (
            "busy_workers",
            "Workers running a handler now.",
            s.busy_workers,
        ),
        (
            "pending_outbound_bytes",
            "Bytes waiting to be written.",
            s.pending_outbound_bytes,
        ),
        (
            "slab_capacity",
            "Slots in the connection slab.",
            s.slab_capacity,
        ),
        (
            "pooled_buffers",
            "Free buffers in the loop's pool.",
            s.pooled_buffers,
        ),
    ];
    for (name, help, value) in gauges {
        metric(&mut out, name, help, "gauge", &[("", value)]);
    }
    out
}

fn metric(out: &mut String, name: &str, help: &str, kind: &str, samples: &[(&str, u64)]) {
    // Writing to a String cannot fail.
    let _ = writeln!(out, "# HELP wsreactor_{name} {help}");
    let _ = writeln!(out, "# TYPE wsreactor_{name} {kind}");
    for (labels, value) in samples {
        if labels.is_empty() {
            let _ = writeln!(out, "wsreactor_{name} {value}");
        } else {
            let _ = writeln!(out, "wsreactor_{name}{{{labels}}} {value}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposition_has_help_type_and_samples() {
        let stats = Stats {
            connections_accepted: 7,
            closed_timeout: 2,
            pending_outbound_bytes: 42,
            ..Stats::default()
        };
        let text = render(&stats);
        assert!(text.contains("# TYPE wsreactor_connections_accepted_total counter\n"));
        assert!(text.contains("\nwsreactor_connections_accepted_total 7\n"));
        assert!(text.contains("\nwsreactor_connections_closed_total{reason=\"timeout\"} 2\n"));
        assert!(text.contains("# TYPE wsreactor_pending_outbound_bytes gauge\n"));
        assert!(text.contains("\nwsreactor_pending_outbound_bytes 42\n"));
        // Every sample line is `name[{labels}] value`.
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let (name, value) = line.rsplit_once(' ').expect("name value");
            assert!(name.starts_with("wsreactor_"), "{line}");
            value.parse::<u64>().expect("integer value");
        }
    }
}
