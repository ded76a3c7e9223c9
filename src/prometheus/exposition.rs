//! The application's own metric families, written after the server's in the Prometheus text:
//! [`Exposition`] takes families and samples from
//! [`Handler::write_metrics`](crate::Handler::write_metrics) and appends them in the text
//! format (0.0.4) — names checked, label values and help texts escaped, `+Inf`/`NaN` spelled as
//! Prometheus reads them.

use std::fmt::Write;

/// What a metric family is (its `# TYPE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricKind {
    /// Only grows (a name ending in `_total`, by convention).
    Counter,
    /// Goes up and down.
    Gauge,
    /// Buckets (`NAME_bucket{le=".."}`, cumulative, the last `le="+Inf"`), `NAME_sum` and
    /// `NAME_count`.
    Histogram,
    /// Quantiles (`NAME{quantile=".."}`), `NAME_sum` and `NAME_count`.
    Summary,
    /// No type given.
    Untyped,
}

impl MetricKind {
    fn as_str(self) -> &'static str {
        match self {
            MetricKind::Counter => "counter",
            MetricKind::Gauge => "gauge",
            MetricKind::Histogram => "histogram",
            MetricKind::Summary => "summary",
            MetricKind::Untyped => "untyped",
        }
    }
}

/// Where [`Handler::write_metrics`](crate::Handler::write_metrics) writes the application's
/// families, after the server's own (`wsreactor_*`): a [`family`](Self::family) line pair, then
/// its [`sample`](Self::sample)s.
///
/// A name that Prometheus would refuse (a metric name outside `[a-zA-Z_:][a-zA-Z0-9_:]*`, a
/// label name outside `[a-zA-Z_][a-zA-Z0-9_]*`) is not written, with a warning in the log, so
/// that one bad name never spoils the whole scrape.
///
/// ```
/// use wsreactor::{Exposition, MetricKind};
///
/// fn write(exposition: &mut Exposition<'_>, open: bool, calls: u64) {
///     exposition.gauge("app_breaker_open", "1 while the breaker is open", f64::from(u8::from(open)));
///     exposition.family("app_calls_total", MetricKind::Counter, "calls, by outcome");
///     exposition.sample("app_calls_total", &[("outcome", "ok")], calls as f64);
/// }
/// ```
#[derive(Debug)]
pub struct Exposition<'a> {
    out: &'a mut String,
}

impl<'a> Exposition<'a> {
    pub(crate) fn new(out: &'a mut String) -> Self {
        Exposition { out }
    }

    /// Starts the family `name`: its `# HELP` (newlines and backslashes escaped) and `# TYPE`.
    /// Its samples follow. False, and nothing written, for a name Prometheus would refuse.
    pub fn family(&mut self, name: &str, kind: MetricKind, help: &str) -> bool {
        if !valid_metric_name(name) {
            log::warn!("metrics: family {name:?} left out: not a Prometheus metric name");
            return false;
        }
        let help = help.replace('\\', "\\\\").replace('\n', "\\n");
        // Writing to a String cannot fail.
        let _ = writeln!(self.out, "# HELP {name} {help}");
        let _ = writeln!(self.out, "# TYPE {name} {}", kind.as_str());
        true
    }

    /// One sample of the current family: `name{label="value",...} value`. `name` is the
    /// family's, or a histogram's or summary's `_bucket`, `_sum` or `_count`; label values are
    /// escaped. False, and nothing written, for a metric or label name Prometheus would refuse.
    pub fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: f64) -> bool {
        if !valid_metric_name(name) {
            log::warn!("metrics: sample {name:?} left out: not a Prometheus metric name");
            return false;
        }
        if let Some((label, _)) = labels.iter().find(|(label, _)| !valid_label_name(label)) {
            log::warn!("metrics: sample {name:?} left out: bad label name {label:?}");
            return false;
        }
        self.out.push_str(name);
        if !labels.is_empty() {
            self.out.push('{');
            for (i, (label, text)) in labels.iter().enumerate() {
                if i > 0 {
                    self.out.push(',');
                }
                let text = text
                    .replace('\\', "\\\\")
                    .replace('"', "\\\"")
                    .replace('\n', "\\n");
                let _ = write!(self.out, "{label}=\"{text}\"");
            }
            self.out.push('}');
        }
        let _ = writeln!(self.out, " {}", format_value(value));
        true
    }

    /// A counter family of one sample.
    pub fn counter(&mut self, name: &str, help: &str, value: u64) -> bool {
        // Exact up to 2^53; past that the text shows the nearest double, as Prometheus stores it.
        self.family(name, MetricKind::Counter, help) && self.sample(name, &[], value as f64)
    }

    /// A gauge family of one sample.
    pub fn gauge(&mut self, name: &str, help: &str, value: f64) -> bool {
        self.family(name, MetricKind::Gauge, help) && self.sample(name, &[], value)
    }
}

/// `[a-zA-Z_:][a-zA-Z0-9_:]*`
fn valid_metric_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

/// `[a-zA-Z_][a-zA-Z0-9_]*`
fn valid_label_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// A value as the text format spells it: `+Inf`, `-Inf`, `NaN`, or the shortest decimal that
/// reads back as the same double.
fn format_value(value: f64) -> String {
    if value.is_nan() {
        "NaN".to_owned()
    } else if value.is_infinite() {
        if value > 0.0 { "+Inf" } else { "-Inf" }.to_owned()
    } else {
        format!("{value}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families_and_samples_are_written_escaped_and_checked() {
        let mut out = String::new();
        let mut exposition = Exposition::new(&mut out);
        assert!(exposition.counter("app_calls_total", "calls\nmade \\ here", 7));
        assert!(exposition.family("app_wait_seconds", MetricKind::Histogram, "wait"));
        assert!(exposition.sample("app_wait_seconds_bucket", &[("le", "0.5")], 3.0));
        assert!(exposition.sample("app_wait_seconds_bucket", &[("le", "+Inf")], 4.0));
        assert!(exposition.sample("app_wait_seconds_sum", &[], 1.25));
        assert!(exposition.gauge("app_ratio", "r", f64::INFINITY));
        assert!(exposition.sample("app_ratio", &[("a", "q\"u\\o\nte"), ("b", "")], f64::NAN));
        assert!(!exposition.family("1bad", MetricKind::Gauge, "x"));
        assert!(!exposition.sample("app bad", &[], 1.0));
        assert!(!exposition.sample("app_ok", &[("le-bad", "1")], 1.0));
        assert!(!exposition.counter("", "empty", 1));
        assert_eq!(
            out,
            "# HELP app_calls_total calls\\nmade \\\\ here\n\
             # TYPE app_calls_total counter\n\
             app_calls_total 7\n\
             # HELP app_wait_seconds wait\n\
             # TYPE app_wait_seconds histogram\n\
             app_wait_seconds_bucket{le=\"0.5\"} 3\n\
             app_wait_seconds_bucket{le=\"+Inf\"} 4\n\
             app_wait_seconds_sum 1.25\n\
             # HELP app_ratio r\n\
             # TYPE app_ratio gauge\n\
             app_ratio +Inf\n\
             app_ratio{a=\"q\\\"u\\\\o\\nte\",b=\"\"} NaN\n"
        );
    }
}
