//! [`Stats`] as Prometheus text exposition (format 0.0.4), for the opt-in
//! [`Config::metrics_path`](crate::Config::metrics_path), followed by the application's own
//! families ([`Exposition`], from [`Handler::write_metrics`](crate::Handler::write_metrics)).
//!
//! A snapshot enters, one `text/plain; version=0.0.4` body leaves. Names follow Prometheus
//! conventions: a `wsreactor_` prefix, `_total` for counters, base units (`_bytes`), and labels
//! for one quantity split by kind (`reason`, `kind`, `phase`). Which field becomes which sample
//! is declared once, beside the field, in `metrics.rs` ([`EXPOSITION`]).

use std::fmt::Write;

use crate::metrics::{EXPOSITION, Stats};

mod exposition;

pub use exposition::{Exposition, MetricKind};

/// The content type of the exposition.
pub(crate) const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Renders `stats` as Prometheus text.
pub(crate) fn render(stats: &Stats) -> String {
    let mut out = String::with_capacity(4096);
    let mut family = "";
    for (entry, (_, value)) in EXPOSITION.iter().zip(stats.fields()) {
        // Writing to a String cannot fail.
        if entry.family != family {
            family = entry.family;
            let _ = writeln!(out, "# HELP wsreactor_{family} {}", entry.help);
            let _ = writeln!(out, "# TYPE wsreactor_{family} {}", entry.kind);
        }
        if entry.label.is_empty() {
            let _ = writeln!(out, "wsreactor_{family} {value}");
        } else {
            let _ = writeln!(out, "wsreactor_{family}{{{}}} {value}", entry.label);
        }
    }
    out
}

/// Appends the drops of publications from the backplane per event loop (one sample each; none
/// without a backplane).
pub(crate) fn render_loop_drops(out: &mut String, drops: &[u64]) {
    if drops.is_empty() {
        return;
    }
    let family = "backplane_loop_drops_total";
    let _ = writeln!(
        out,
        "# HELP wsreactor_{family} Publications from the backplane an event loop dropped at its \
         full command queue."
    );
    let _ = writeln!(out, "# TYPE wsreactor_{family} counter");
    for (event_loop, dropped) in drops.iter().enumerate() {
        let _ = writeln!(out, "wsreactor_{family}{{loop=\"{event_loop}\"}} {dropped}");
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
            phase_open: 5,
            ..Stats::default()
        };
        let text = render(&stats);
        assert!(text.starts_with("# HELP wsreactor_connections_accepted_total "));
        assert!(text.contains("# TYPE wsreactor_connections_accepted_total counter\n"));
        assert!(text.contains("\nwsreactor_connections_accepted_total 7\n"));
        assert!(text.contains("\nwsreactor_connections_closed_total{reason=\"timeout\"} 2\n"));
        assert!(text.contains("# TYPE wsreactor_pending_outbound_bytes gauge\n"));
        assert!(text.contains("\nwsreactor_pending_outbound_bytes 42\n"));
        assert!(text.contains("\nwsreactor_connections_by_phase{phase=\"open\"} 5\n"));
        assert_eq!(text.matches("# TYPE wsreactor_timeouts_total ").count(), 1);
        let mut with_loops = text.clone();
        render_loop_drops(&mut with_loops, &[0, 3]);
        assert!(with_loops.ends_with(
            "# TYPE wsreactor_backplane_loop_drops_total counter\n\
             wsreactor_backplane_loop_drops_total{loop=\"0\"} 0\n\
             wsreactor_backplane_loop_drops_total{loop=\"1\"} 3\n"
        ));
        // Every sample line is `name[{labels}] value`.
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let (name, value) = line.rsplit_once(' ').expect("name value");
            assert!(name.starts_with("wsreactor_"), "{line}");
            value.parse::<u64>().expect("integer value");
        }
    }
}
