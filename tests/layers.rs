//! The shape of `src/`, checked so that it stays what docs/architecture.md says:
//!
//! - **Layers.** Every path a file names — `use` lines and fully qualified `crate::...` paths
//!   alike, test modules included — goes to its own layer or one below it:
//!   codecs (`http`, `ws`) < shared (`config`, `conn_id`, `error`, `metrics`, `topic`) < buffers
//!   < transports and TLS < dispatch < session < netpoller < the application.
//! - **The netpoller knows no protocol**: outside its test modules, no file of `src/netpoller/`
//!   names an HTTP or WebSocket type or the session's phases.
//! - **The session does no I/O**: no file of `src/session/` names `mio`, a transport or a socket.
//! - **The hand-off lives in `src/dispatch/`**: jobs, replies, leases, the executor, the worker
//!   pool, the links into a loop, its waker and `ServerHandle` are defined there and nowhere else.
//! - **Sizes**: no file of `src/` over 500 lines, no file of the connection table over 400, and no
//!   function over 60 lines — but the codecs' flat tables named in [`LONG_FUNCTIONS_ALLOWED`].
//!
//! The scan reads the source as tokens (strings, characters and comments skipped), so a path in
//! a doc comment or a URL in a string is not taken for an import.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The layers, bottom to top: a file may name its own layer and those below.
const LAYERS: &[(&str, &[&str])] = &[
    ("codec", &["http", "ws"]),
    (
        "shared",
        &["config", "conn_id", "error", "metrics", "topic"],
    ),
    ("buffers", &["buffer"]),
    ("transport", &["transport", "tls"]),
    ("dispatch", &["dispatch"]),
    ("session", &["session"]),
    ("netpoller", &["netpoller"]),
    (
        "application",
        &[
            "handler",
            "runner",
            "server",
            "driven",
            "prometheus",
            "fuzzing",
            "harness",
            "backplane",
            "lib",
        ],
    ),
];

/// Names the netpoller must not use outside its tests: HTTP and WebSocket types, and phases.
const PROTOCOL_NAMES: &[&str] = &[
    "Phase",
    "Request",
    "Response",
    "HttpError",
    "Version",
    "CloseInfo",
    "CloseFrame",
    "CloseCode",
    "Message",
    "WsError",
    "Decoded",
    "OpCode",
    "PerMessageDeflate",
];

/// Names the session must not use: the poller and the transports.
const IO_NAMES: &[&str] = &[
    "mio",
    "Transport",
    "Stream",
    "TcpStream",
    "IoOutcome",
    "Interest",
];

/// The hand-off's types, defined in `src/dispatch/` only.
const HAND_OFF_TYPES: &[&str] = &[
    "Job",
    "Run",
    "Reply",
    "Lease",
    "Output",
    "Executor",
    "WorkerPool",
    "LoopLink",
    "LoopWaker",
    "Command",
    "ServerHandle",
];

/// Functions allowed past 60 lines: flat tables of a codec, where splitting would hide the
/// table (`file`, `function`), each with its reason.
const LONG_FUNCTIONS_ALLOWED: &[(&str, &str)] = &[
    // One match arm per (state, byte) of the chunked-body grammar (RFC 9112 §7.1).
    ("src/http/chunked.rs", "decode"),
];

const MAX_FILE_LINES: usize = 500;
const MAX_TABLE_LINES: usize = 400;
const MAX_FUNCTION_LINES: usize = 60;

#[test]
fn every_path_goes_to_its_own_layer_or_below() {
    let mut broken = Vec::new();
    for (file, source) in sources() {
        let own = layer_of(&file);
        for (line, module) in crate_paths(&tokens(&source)) {
            let Some(target) = layer_index(&module) else {
                broken.push(format!("{file}:{line}: crate::{module} is in no layer"));
                continue;
            };
            if target > own {
                broken.push(format!(
                    "{file}:{line}: a {} file names crate::{module} ({})",
                    LAYERS[own].0, LAYERS[target].0
                ));
            }
        }
    }
    assert!(broken.is_empty(), "layering broken:\n{}", broken.join("\n"));
}

#[test]
fn the_netpoller_names_no_protocol_and_the_session_no_io() {
    let mut broken = Vec::new();
    for (file, source) in sources() {
        let forbidden = if file.starts_with("src/netpoller/") {
            PROTOCOL_NAMES
        } else if file.starts_with("src/session/") {
            IO_NAMES
        } else {
            continue;
        };
        for token in tokens(without_tests(&source)) {
            if forbidden.contains(&token.text.as_str()) {
                broken.push(format!("{file}:{}: names {}", token.line, token.text));
            }
        }
    }
    assert!(broken.is_empty(), "{}", broken.join("\n"));
}

#[test]
fn the_hand_off_is_defined_in_dispatch_only() {
    let mut found: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for (file, source) in sources() {
        let words = tokens(without_tests(&source));
        for pair in words.windows(2) {
            let is_item = matches!(pair[0].text.as_str(), "struct" | "enum" | "type" | "trait");
            if let Some(name) = HAND_OFF_TYPES.iter().find(|n| **n == pair[1].text)
                && is_item
            {
                found.entry(name).or_default().push(file.clone());
            }
        }
    }
    for name in HAND_OFF_TYPES {
        let files = found.get(name).cloned().unwrap_or_default();
        assert!(!files.is_empty(), "{name} is defined nowhere");
        for file in files {
            assert!(
                file.starts_with("src/dispatch/"),
                "{name} is defined in {file}"
            );
        }
    }
}

#[test]
fn files_and_functions_stay_small() {
    let mut broken = Vec::new();
    for (file, source) in sources() {
        let lines = source.lines().count();
        let limit = if file.starts_with("src/netpoller/table") {
            MAX_TABLE_LINES
        } else {
            MAX_FILE_LINES
        };
        if lines > limit {
            broken.push(format!("{file}: {lines} lines (at most {limit})"));
        }
        for (name, first, length) in functions(&tokens(&source)) {
            let allowed = LONG_FUNCTIONS_ALLOWED.contains(&(file.as_str(), name.as_str()));
            if length > MAX_FUNCTION_LINES && !allowed {
                broken.push(format!("{file}:{first}: fn {name} is {length} lines"));
            }
        }
    }
    assert!(broken.is_empty(), "too large:\n{}", broken.join("\n"));
}

/// Every `.rs` file of `src/`, as (`src/...` path, contents).
fn sources() -> Vec<(String, String)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    let mut dirs = vec![root.join("src")];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).expect("src/ is readable") {
            let path: PathBuf = entry.expect("entry").path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let name = path.strip_prefix(root).expect("under the root");
                let text = std::fs::read_to_string(&path).expect("source is UTF-8");
                files.push((name.to_string_lossy().replace('\\', "/"), text));
            }
        }
    }
    files.sort();
    files
}

/// The layer of a file, from its first directory or its name (`src/session/…` → session).
fn layer_of(file: &str) -> usize {
    let rest = file.strip_prefix("src/").expect("under src/");
    let module = rest.split(['/', '.']).next().expect("a name");
    layer_index(module).unwrap_or_else(|| panic!("{file} is in no layer: add it to LAYERS"))
}

fn layer_index(module: &str) -> Option<usize> {
    LAYERS
        .iter()
        .position(|(_, modules)| modules.contains(&module))
}

/// The source before its test module (`#[cfg(test)] mod tests`), if it has one.
fn without_tests(source: &str) -> &str {
    let mut at = 0;
    while let Some(found) = source[at..].find("#[cfg(test)]") {
        let start = at + found;
        let rest = source[start + "#[cfg(test)]".len()..].trim_start();
        if rest.starts_with("mod ") {
            return &source[..start];
        }
        at = start + 1;
    }
    source
}

/// A word or punctuation of the source, and its line.
#[derive(Debug, Clone)]
struct Token {
    text: String,
    line: usize,
}

/// The words and punctuation of Rust source, with comments, strings and characters skipped.
fn tokens(source: &str) -> Vec<Token> {
    let chars: Vec<char> = source.chars().collect();
    let mut out = Vec::new();
    let (mut i, mut line) = (0, 1);
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        if c == '\n' {
            line += 1;
            i += 1;
        } else if c == '/' && next == Some('/') {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
        } else if c == '/' && next == Some('*') {
            i = skip_block_comment(&chars, i, &mut line);
        } else if c == '"' || (c == 'r' && matches!(next, Some('"' | '#')) && is_raw(&chars, i)) {
            i = skip_string(&chars, i, &mut line);
        } else if c == 'b' && next == Some('\'') {
            i = skip_char(&chars, i + 1);
        } else if c == '\'' {
            i = skip_char(&chars, i);
        } else if c.is_alphanumeric() || c == '_' {
            let start = i;
            while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            let text: String = chars[start..i].iter().collect();
            out.push(Token { text, line });
        } else if c == ':' && next == Some(':') {
            out.push(Token {
                text: "::".into(),
                line,
            });
            i += 2;
        } else if c.is_whitespace() {
            i += 1;
        } else {
            out.push(Token {
                text: c.to_string(),
                line,
            });
            i += 1;
        }
    }
    out
}

/// Is the `r` at `i` the start of a raw string (`r"…"`, `r#"…"#`), not an identifier's end?
fn is_raw(chars: &[char], i: usize) -> bool {
    let before = i.checked_sub(1).map(|b| chars[b]);
    if before.is_some_and(|b| b.is_alphanumeric() || b == '_') {
        return false;
    }
    let mut j = i + 1;
    while chars.get(j) == Some(&'#') {
        j += 1;
    }
    chars.get(j) == Some(&'"')
}

fn skip_block_comment(chars: &[char], mut i: usize, line: &mut usize) -> usize {
    let mut depth = 0;
    while i < chars.len() {
        if chars[i] == '\n' {
            *line += 1;
        }
        if chars[i] == '/' && chars.get(i + 1) == Some(&'*') {
            depth += 1;
            i += 2;
        } else if chars[i] == '*' && chars.get(i + 1) == Some(&'/') {
            depth -= 1;
            i += 2;
            if depth == 0 {
                return i;
            }
        } else {
            i += 1;
        }
    }
    i
}

/// Skips a string literal (plain, byte, or raw with any number of `#`).
fn skip_string(chars: &[char], mut i: usize, line: &mut usize) -> usize {
    if chars[i] == 'r' {
        i += 1;
        let mut hashes = 0;
        while chars[i] == '#' {
            hashes += 1;
            i += 1;
        }
        i += 1; // the opening quote
        while i < chars.len() {
            if chars[i] == '\n' {
                *line += 1;
            }
            let closes = chars[i] == '"' && (1..=hashes).all(|k| chars.get(i + k) == Some(&'#'));
            i += 1;
            if closes {
                return i + hashes;
            }
        }
        return i;
    }
    i += 1;
    while i < chars.len() {
        match chars[i] {
            '\\' => i += 2,
            '"' => return i + 1,
            '\n' => {
                *line += 1;
                i += 1;
            }
            _ => i += 1,
        }
    }
    i
}

/// Skips a character literal at `i` (`'a'`, `'\n'`, `'\u{1F600}'`), or just the quote of a
/// lifetime or label (`'a`, `'static`).
fn skip_char(chars: &[char], i: usize) -> usize {
    match (chars.get(i + 1), chars.get(i + 2)) {
        (Some('\\'), _) => {
            let mut j = i + 2;
            while j < chars.len() && chars[j] != '\'' {
                j += 1;
            }
            j + 1
        }
        (Some(_), Some('\'')) => i + 3,
        _ => i + 1,
    }
}

/// The top-level modules every `crate::` path names, with their lines: `crate::a::b` gives
/// `a`, and `crate::{a, b::c}` gives `a` and `b`.
fn crate_paths(tokens: &[Token]) -> Vec<(usize, String)> {
    let mut found = Vec::new();
    for (i, token) in tokens.iter().enumerate() {
        if token.text != "crate" || tokens.get(i + 1).is_none_or(|t| t.text != "::") {
            continue;
        }
        let Some(next) = tokens.get(i + 2) else {
            continue;
        };
        if next.text != "{" {
            found.push((token.line, next.text.clone()));
            continue;
        }
        // A group: the first name of each top-level item.
        let (mut depth, mut expect_name) = (0, true);
        for t in &tokens[i + 2..] {
            match t.text.as_str() {
                "{" => {
                    depth += 1;
                    if depth > 1 {
                        expect_name = false;
                    }
                }
                "}" => {
                    depth -= 1;
                    if depth == 0 {
                        break;
                    }
                }
                "," if depth == 1 => expect_name = true,
                name if expect_name && depth == 1 => {
                    found.push((t.line, name.to_owned()));
                    expect_name = false;
                }
                _ => {}
            }
        }
    }
    found
}

/// Every function with a body: its name, first line and length in lines (from `fn` to the
/// closing brace).
fn functions(tokens: &[Token]) -> Vec<(String, usize, usize)> {
    let mut found = Vec::new();
    for (i, token) in tokens.iter().enumerate() {
        if token.text != "fn" {
            continue;
        }
        let Some(name) = tokens.get(i + 1) else {
            continue;
        };
        // The body opens at the first `{` outside parentheses and angle brackets, unless a `;`
        // comes first (a declaration without a body).
        let (mut parens, mut body) = (0i32, None);
        for (j, t) in tokens.iter().enumerate().skip(i + 2) {
            match t.text.as_str() {
                "(" | "[" => parens += 1,
                ")" | "]" => parens -= 1,
                ";" if parens == 0 => break,
                "{" if parens == 0 => {
                    body = Some(j);
                    break;
                }
                _ => {}
            }
        }
        let Some(open) = body else {
            continue;
        };
        let mut depth = 0;
        for t in &tokens[open..] {
            match t.text.as_str() {
                "{" => depth += 1,
                "}" => {
                    depth -= 1;
                    if depth == 0 {
                        found.push((name.text.clone(), token.line, t.line - token.line + 1));
                        break;
                    }
                }
                _ => {}
            }
        }
    }
    found
}
