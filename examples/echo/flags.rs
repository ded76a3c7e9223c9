//! The echo server's command line: every limit of [`wsreactor::Config`] as a `--flag` (and as an
//! environment variable `WSREACTOR_<FLAG>`; flags win), with the echo server's own defaults —
//! generous enough for the Autobahn test suite, and still bounded.

use std::time::Duration;

use wsreactor::{Config, ForwardedHost, OriginPolicy};

/// A flag, what it sets, and how.
struct Flag {
    name: &'static str,
    help: &'static str,
    set: fn(&mut Config, &str) -> Result<(), String>,
    /// A switch: `--name` alone means `--name true`.
    switch: bool,
}

macro_rules! flag {
    ($name:literal, $field:ident, switch, $help:literal) => {
        Flag {
            name: $name,
            help: $help,
            set: |config, value| {
                config.$field = match value {
                    "true" | "1" | "yes" => true,
                    "false" | "0" | "no" => false,
                    other => {
                        return Err(format!("{}: expected true or false, not {other:?}", $name));
                    }
                };
                Ok(())
            },
            switch: true,
        }
    };
    ($name:literal, $field:ident, $help:literal) => {
        Flag {
            name: $name,
            help: $help,
            set: |config, value| {
                config.$field = value.parse().map_err(|e| format!("{}: {e}", $name))?;
                Ok(())
            },
            switch: false,
        }
    };
    ($name:literal, $field:ident, optional_millis, $help:literal) => {
        Flag {
            name: $name,
            help: $help,
            set: |config, value| {
                let ms: u64 = value.parse().map_err(|e| format!("{}: {e}", $name))?;
                config.$field = (ms > 0).then(|| Duration::from_millis(ms));
                Ok(())
            },
            switch: false,
        }
    };
    ($name:literal, $field:ident, path, $help:literal) => {
        Flag {
            name: $name,
            help: $help,
            set: |config, value| {
                config.$field = (!value.is_empty()).then(|| value.to_owned());
                Ok(())
            },
            switch: false,
        }
    };
    ($name:literal, $field:ident, millis, $help:literal) => {
        Flag {
            name: $name,
            help: $help,
            set: |config, value| {
                let ms: u64 = value.parse().map_err(|e| format!("{}: {e}", $name))?;
                config.$field = Duration::from_millis(ms);
                Ok(())
            },
            switch: false,
        }
    };
}

const FLAGS: &[Flag] = &[
    flag!("addr", addr, "address to listen on [127.0.0.1:9001]"),
    flag!("workers", workers, "worker threads [number of CPUs]"),
    flag!(
        "loops",
        event_loops,
        "event loops, SO_REUSEPORT [number of CPUs]"
    ),
    flag!(
        "inline",
        inline_handlers,
        switch,
        "run the handler on the loop thread [false]"
    ),
    flag!("backlog", backlog, "listen backlog [1024]"),
    flag!(
        "max-connections",
        max_connections,
        "connections open at once; more get 503 [10000]"
    ),
    flag!(
        "max-header-bytes",
        max_header_bytes,
        "request line + headers; more: 431 [16384]"
    ),
    flag!(
        "max-headers",
        max_headers,
        "header fields per request; more: 431 [64]"
    ),
    flag!(
        "max-body-size",
        max_body_size,
        "HTTP request body; more: 413 [1048576]"
    ),
    flag!(
        "max-message-size",
        max_message_size,
        "WebSocket message; more: close 1009 [67108864]"
    ),
    flag!(
        "max-frame-size",
        max_frame_size,
        "one frame; more: close 1009 [67108864]"
    ),
    flag!(
        "max-fragments",
        max_fragments,
        "frames per message; more: close 1009 [131072]"
    ),
    flag!(
        "compression",
        compression,
        switch,
        "permessage-deflate when offered; off: --compression=false [true]"
    ),
    flag!(
        "compression-threshold",
        compression_threshold,
        "smaller messages go uncompressed [1024]"
    ),
    flag!(
        "compression-level",
        compression_level,
        "deflate level 0-9 for sent messages (1: fastest; 2: a fifth smaller; 3-9: zlib-rs) [1]"
    ),
    flag!(
        "read-buffer-size",
        read_buffer_size,
        "pooled read buffer [16384]"
    ),
    flag!(
        "max-pooled-buffers",
        max_pooled_buffers,
        "free buffers kept [256]"
    ),
    flag!(
        "max-read-per-turn",
        max_read_per_turn,
        "bytes read per socket per loop turn [262144]"
    ),
    flag!(
        "job-queue-capacity",
        job_queue_capacity,
        "jobs waiting for a worker [1024]"
    ),
    flag!(
        "command-queue-capacity",
        command_queue_capacity,
        "pushes waiting for the loop [4096]"
    ),
    flag!(
        "max-pending-messages",
        max_pending_messages,
        "messages held per connection [64]"
    ),
    flag!(
        "max-pending-bytes",
        max_pending_bytes,
        "bytes held per connection [1048576]"
    ),
    flag!(
        "max-outbound-bytes",
        max_outbound_bytes,
        "bytes queued per connection [4194304]"
    ),
    flag!(
        "max-buffered-bytes",
        max_buffered_bytes,
        "bytes held by all connections together [268435456]"
    ),
    flag!(
        "high-water-bytes",
        high_water_bytes,
        "queued output past which send says Pressure::High [1048576]"
    ),
    flag!(
        "low-water-bytes",
        low_water_bytes,
        "queued output at which on_drain follows [65536]"
    ),
    flag!(
        "release-memory-after-ms",
        release_memory_after,
        optional_millis,
        "after a storm, calm this long: memory to the OS; 0 = never [1000]"
    ),
    flag!(
        "request-timeout-ms",
        request_timeout,
        millis,
        "time to send a request [10000]"
    ),
    flag!(
        "keep-alive-timeout-ms",
        keep_alive_timeout,
        millis,
        "idle keep-alive [30000]"
    ),
    flag!(
        "ping-interval-ms",
        ping_interval,
        optional_millis,
        "ping after silence; 0 = off [30000]"
    ),
    flag!(
        "pong-timeout-ms",
        pong_timeout,
        millis,
        "drop if silent after a ping [10000]"
    ),
    flag!(
        "max-lifetime-ms",
        max_lifetime,
        optional_millis,
        "close 1001 after; 0 = off [0]"
    ),
    flag!(
        "message-timeout-ms",
        message_timeout,
        millis,
        "a message must arrive within; else 1008 [30000]"
    ),
    flag!(
        "write-stall-timeout-ms",
        write_stall_timeout,
        millis,
        "drop a non-reader [30000]"
    ),
    flag!(
        "deferred-timeout-ms",
        deferred_timeout,
        millis,
        "a deferred handler call must complete within; else on_deferred_timeout [30000]"
    ),
    flag!(
        "close-timeout-ms",
        close_timeout,
        millis,
        "close handshake / linger [5000]"
    ),
    flag!(
        "shutdown-timeout-ms",
        shutdown_timeout,
        millis,
        "graceful shutdown [5000]"
    ),
    flag!(
        "accept-backoff-ms",
        accept_backoff,
        millis,
        "pause after EMFILE [100]"
    ),
    flag!("max-events", max_events, "events per poll [1024]"),
    flag!(
        "metrics-path",
        metrics_path,
        path,
        "Prometheus text; empty = off [/metrics]"
    ),
    flag!(
        "health-path",
        health_path,
        path,
        "health check; empty = off [/healthz]"
    ),
    flag!(
        "max-timers-per-connection",
        max_timers_per_connection,
        "timers a handler may arm per connection, at most 1024 [16]"
    ),
    flag!(
        "monitoring-reserve",
        monitoring_reserve,
        "connections past max-connections for metrics/health only; 0 = off [8]"
    ),
    flag!(
        "monitoring-timeout-ms",
        monitoring_timeout,
        millis,
        "a reserve connection's time to send its request head [2000]"
    ),
    Flag {
        name: "allow-origin",
        help: "pages of this origin may connect too; repeatable or comma-separated:\n\
               \x20                            https://app.example.com, https://*.example.com,\n\
               \x20                            '*' for any (no CSWSH protection) [own origin only]",
        set: allow_origin,
        switch: false,
    },
    Flag {
        name: "trust-forwarded-host",
        help: "origin check's host from a proxy's header: off, x-forwarded-host, forwarded [off]",
        set: |config, value| {
            config.forwarded_host = match value {
                "off" => ForwardedHost::Ignore,
                "x-forwarded-host" => ForwardedHost::XForwardedHost,
                "forwarded" => ForwardedHost::Forwarded,
                other => {
                    return Err(format!(
                        "trust-forwarded-host: expected off, x-forwarded-host or forwarded, not \
                         {other:?}"
                    ));
                }
            };
            Ok(())
        },
        switch: false,
    },
];

/// `--allow-origin`: adds origins to the allow-list (entries are checked when the server is
/// built: `Config::validate`), or `*` for any origin, which cannot be mixed with entries.
fn allow_origin(config: &mut Config, value: &str) -> Result<(), String> {
    for entry in value.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        config.allowed_origins = match (std::mem::take(&mut config.allowed_origins), entry) {
            (OriginPolicy::SameOrigin | OriginPolicy::Any, "*") => OriginPolicy::Any,
            (OriginPolicy::SameOrigin, entry) => OriginPolicy::allow([entry]),
            (OriginPolicy::Allow(mut patterns), entry) if entry != "*" => {
                patterns.push(entry.into());
                OriginPolicy::Allow(patterns)
            }
            _ => {
                return Err(
                    "allow-origin: '*' allows every origin; it cannot be combined with others"
                        .into(),
                );
            }
        };
    }
    Ok(())
}

fn env_name(flag: &str) -> String {
    format!("WSREACTOR_{}", flag.replace('-', "_").to_uppercase())
}

pub fn parse_config(args: &[String]) -> Result<Config, String> {
    let mut config = Config::default();
    // The echo server's own defaults: generous enough for the Autobahn test suite.
    config.max_message_size = 64 * 1024 * 1024;
    config.max_fragments = 131_072;
    // Real clients (browsers, Python websockets, Node ws) offer compression on every connection.
    config.compression = true;
    config.max_frame_size = 64 * 1024 * 1024;
    config.metrics_path = Some("/metrics".into());
    config.health_path = Some("/healthz".into());
    for flag in FLAGS {
        if let Ok(value) = std::env::var(env_name(flag.name)) {
            (flag.set)(&mut config, &value)?;
        }
    }
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        let Some(name) = arg.strip_prefix("--") else {
            return Err(format!("unexpected argument {arg:?}"));
        };
        let (name, inline) = match name.split_once('=') {
            Some((name, value)) => (name, Some(value.to_owned())),
            None => (name, None),
        };
        let flag = FLAGS
            .iter()
            .find(|flag| flag.name == name)
            .ok_or_else(|| format!("unknown flag --{name} (try --help)"))?;
        let value = match inline {
            Some(value) => value,
            None if flag.switch => "true".to_owned(),
            None => args
                .next()
                .cloned()
                .ok_or(format!("--{name} needs a value"))?,
        };
        (flag.set)(&mut config, &value)?;
    }
    Ok(config)
}

pub fn usage() -> String {
    let mut text = String::from(
        "usage: echo [--flag value]...\n\n\
         Echoes every message on any path, except: /sub/TOPIC subscribes to TOPIC (no echo), and\n\
         every message on /pub/TOPIC is published to TOPIC's subscribers (not echoed).\n\n\
         flags (env WSREACTOR_<FLAG>):\n",
    );
    for flag in FLAGS {
        text.push_str(&format!("  --{:<24} {}\n", flag.name, flag.help));
    }
    text
}
