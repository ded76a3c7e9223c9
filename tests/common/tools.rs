//! The programs from outside Rust that some integration tests drive as real clients: Chromium,
//! curl, a Python with `websockets`, Node with `ws`. Each function here finds one and returns
//! how to run it, or fails the test with what is missing and how to install it.
//!
//! A test that needs one is ignored by default, with the tool in the reason, so that plain
//! `cargo test` (which runs everything that needs no outside program) counts it as *ignored*
//! in its summary rather than passing it having done nothing:
//!
//! ```ignore
//! #[test]
//! #[ignore = "needs redis-server: bash .ci/run installs it"]
//! fn sessions_survive_a_redis_restart() {
//!     let redis = common::tools::program("redis-server", "apt-get install redis-server");
//!     // ...
//! }
//! ```
//!
//! `bash .ci/run` installs every tool and runs the suite with `--include-ignored`; so can anyone
//! by hand (README.md, "Running the tests"). An ignored test that runs always needs its tool:
//! a missing one is a failure, never a skip. A new tool takes the three steps above: the
//! `#[ignore]`, a call here (`program` for a command on `PATH`), its install in `.ci/run`.

use std::path::{Path, PathBuf};
use std::process::Command;

/// `found`, or the test fails (at the caller's line) saying that it needs `tool` and how to get
/// it (`install`).
#[track_caller]
pub fn require<T>(tool: &str, found: Option<T>, install: &str) -> T {
    match found {
        Some(found) => found,
        None => panic!(
            "this test needs {tool}, which was not found: {install}. (It is #[ignore]d, so plain \
             `cargo test` leaves it out; `bash .ci/run` installs every tool and runs it.)"
        ),
    }
}

/// The command `name` on `PATH`.
#[track_caller]
pub fn program(name: &str, install: &str) -> PathBuf {
    require(name, on_path(&[name]), install)
}

/// The first of `names` found as a file in a directory of `PATH`.
fn on_path(names: &[&str]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    names
        .iter()
        .flat_map(|name| std::env::split_paths(&path).map(move |dir| dir.join(name)))
        .find(|candidate| candidate.is_file())
}

/// Headless Chromium (Debian's `chromium`, or a Chrome) for tests/common/browser.rs.
#[track_caller]
pub fn chromium() -> PathBuf {
    require(
        "chromium",
        on_path(&["chromium", "chromium-browser", "google-chrome"]),
        "apt-get install chromium",
    )
}

/// curl, for the https tests.
#[track_caller]
pub fn curl() -> PathBuf {
    program("curl", "apt-get install curl")
}

/// A Python interpreter that can `import websockets`: `WSREACTOR_PYTHON`, else the virtualenv
/// `bash .ci/run` makes (target/ci-venv), else `python3`.
#[track_caller]
pub fn python_websockets() -> String {
    let venv = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/ci-venv/bin/python");
    let candidates = std::env::var("WSREACTOR_PYTHON")
        .into_iter()
        .chain([venv.display().to_string(), "python3".to_owned()]);
    let found = candidates.into_iter().find(|python| {
        Command::new(python)
            .args(["-c", "import websockets"])
            .output()
            .is_ok_and(|output| output.status.success())
    });
    require(
        "a Python with `websockets`",
        found,
        "python3 -m venv target/ci-venv && target/ci-venv/bin/pip install websockets \
         (or point WSREACTOR_PYTHON at a python that has it)",
    )
}

/// A `node_modules` folder holding `ws`, for `node` with `NODE_PATH` set to it:
/// `WSREACTOR_NODE_MODULES`, else the folder `bash .ci/run` installs it into
/// (target/node-interop/node_modules).
#[track_caller]
pub fn node_ws() -> String {
    let node = program("node", "apt-get install nodejs npm");
    let installed = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/node-interop/node_modules");
    let candidates = std::env::var("WSREACTOR_NODE_MODULES")
        .into_iter()
        .chain([installed.display().to_string()]);
    let found = candidates.into_iter().find(|modules| {
        Command::new(&node)
            .args(["-e", "require('ws')"])
            .env("NODE_PATH", modules)
            .output()
            .is_ok_and(|output| output.status.success())
    });
    require(
        "Node's `ws` package",
        found,
        "npm install --prefix target/node-interop ws (or point WSREACTOR_NODE_MODULES at a \
         node_modules folder that has it)",
    )
}

/// Debian's nginx (`/usr/sbin`, which may not be on a user's `PATH`), for the tests that put a
/// proxy in front of several nodes.
#[track_caller]
pub fn nginx() -> PathBuf {
    let found = on_path(&["nginx"]).or_else(|| {
        let sbin = PathBuf::from("/usr/sbin/nginx");
        sbin.is_file().then_some(sbin)
    });
    require("nginx", found, "apt-get install nginx")
}
