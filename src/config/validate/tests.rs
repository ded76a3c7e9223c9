//! The refusals of `Config::validate`, each named field tried at its edge.

use super::*;

/// The text of the error `config` is refused with.
fn refusal(config: &Config) -> String {
    match config.validate() {
        Err(Error::InvalidConfig(why)) => why,
        other => panic!("expected InvalidConfig, got {other:?}"),
    }
}

#[test]
fn default_is_valid() {
    Config::default()
        .validate()
        .expect("defaults must validate");
}

#[test]
fn unordered_per_connection_is_off_by_default_and_has_a_ceiling() {
    assert_eq!(Config::default().max_unordered_per_connection, 0);
    let config = Config {
        max_unordered_per_connection: Config::MAX_UNORDERED_PER_CONNECTION,
        ..Config::default()
    };
    assert!(config.validate().is_ok());
    let config = Config {
        max_unordered_per_connection: usize::MAX,
        ..Config::default()
    };
    assert_eq!(
        refusal(&config),
        format!(
            "max_unordered_per_connection must be at most 1024 (each step of a connection \
             looks through them), not {}",
            usize::MAX
        )
    );
}

#[test]
fn timers_per_connection_may_be_none_and_have_a_ceiling() {
    let config = Config {
        max_timers_per_connection: 0,
        ..Config::default()
    };
    assert!(config.validate().is_ok(), "0: no timers");
    let config = Config {
        max_timers_per_connection: Config::MAX_TIMERS_PER_CONNECTION + 1,
        ..Config::default()
    };
    assert_eq!(
        refusal(&config),
        "max_timers_per_connection must be at most 1024 (each step of a connection looks \
         through them), not 1025"
    );
}

#[test]
fn a_deferred_timeout_must_be_more_than_zero_and_may_be_forever() {
    let config = Config {
        deferred_timeout: Duration::ZERO,
        ..Config::default()
    };
    assert_eq!(refusal(&config), "deferred_timeout must be more than zero");
    let config = Config {
        deferred_timeout: Duration::MAX,
        ..Config::default()
    };
    assert!(config.validate().is_ok());
}

#[test]
fn zero_limits_are_rejected_by_name() {
    let config = Config {
        job_queue_capacity: 0,
        ..Config::default()
    };
    assert!(refusal(&config).starts_with("job_queue_capacity "));

    let config = Config {
        read_buffer_size: 10,
        ..Config::default()
    };
    assert!(refusal(&config).starts_with("read_buffer_size "));

    let config = Config {
        close_timeout: Duration::ZERO,
        ..Config::default()
    };
    assert_eq!(refusal(&config), "close_timeout must be more than zero");

    let config = Config {
        monitoring_timeout: Duration::ZERO,
        ..Config::default()
    };
    assert_eq!(
        refusal(&config),
        "monitoring_timeout must be more than zero"
    );
    let config = Config {
        monitoring_reserve: 0,
        ..Config::default()
    };
    assert!(config.validate().is_ok(), "a reserve of 0 turns it off");
    let config = Config {
        shutdown_timeout: Duration::ZERO,
        ..Config::default()
    };
    assert!(config.validate().is_ok(), "a shutdown that drops at once");
}

#[test]
fn thread_counts_have_a_ceiling() {
    for (config, field) in [
        (
            Config {
                workers: usize::MAX,
                ..Config::default()
            },
            "workers",
        ),
        (
            Config {
                event_loops: Config::MAX_EVENT_LOOPS + 1,
                ..Config::default()
            },
            "event_loops",
        ),
    ] {
        let why = refusal(&config);
        assert!(
            why.starts_with(&format!("{field} must be at most ")),
            "{why}"
        );
    }
    let most = Config {
        workers: Config::MAX_WORKERS,
        event_loops: Config::MAX_EVENT_LOOPS,
        ..Config::default()
    };
    assert!(most.validate().is_ok(), "the ceilings themselves are taken");
}

#[test]
fn a_read_buffer_has_a_ceiling() {
    let config = Config {
        read_buffer_size: Config::MAX_READ_BUFFER_SIZE + 1,
        ..Config::default()
    };
    let why = refusal(&config);
    assert!(
        why.starts_with("read_buffer_size must be between 256 "),
        "{why}"
    );
    let config = Config {
        read_buffer_size: Config::MAX_READ_BUFFER_SIZE,
        ..Config::default()
    };
    assert!(config.validate().is_ok());
}

/// A queue capacity of `usize::MAX` would make crossbeam-channel panic, and one of a few
/// hundred million would abort in the allocator: refused, naming the field that weighs most.
#[test]
fn queues_allocated_whole_have_a_ceiling() {
    let one_loop = Config {
        event_loops: 1,
        ..Config::default()
    };
    for field in ["job_queue_capacity", "command_queue_capacity", "max_events"] {
        let mut config = one_loop.clone();
        let value = match field {
            "job_queue_capacity" => &mut config.job_queue_capacity,
            "command_queue_capacity" => &mut config.command_queue_capacity,
            _ => &mut config.max_events,
        };
        *value = usize::MAX;
        let why = refusal(&config);
        assert!(why.starts_with(&format!("{field} is too large: ")), "{why}");
        assert!(why.contains("MAX_PREALLOCATED_BYTES"), "{why}");
    }
    // Per loop: a command queue that one loop could have is too much for a thousand.
    let capacity = Config::MAX_PREALLOCATED_BYTES / COMMAND_SLOT_BYTES / 2;
    let config = Config {
        command_queue_capacity: capacity,
        ..one_loop.clone()
    };
    assert!(config.validate().is_ok());
    let config = Config {
        event_loops: 1000,
        ..config
    };
    assert!(refusal(&config).starts_with("command_queue_capacity is too large"));
    // The defaults take little on the largest machine the default allows.
    let config = Config {
        event_loops: Config::MAX_EVENT_LOOPS,
        ..Config::default()
    };
    assert!(config.validate().is_ok());
}

#[test]
fn compression_level_past_nine_is_refused() {
    let config = Config {
        compression_level: u32::MAX,
        ..Config::default()
    };
    assert_eq!(
        refusal(&config),
        format!(
            "compression_level must be between 0 and 9, not {}",
            u32::MAX
        )
    );
}
