//! The docs name real code: every `[`function()`](file)` or `[`Type::method`](file)` link in
//! docs/netpoller.md, docs/architecture.md and docs/walkthrough.md points at a file that exists
//! and defines what the link names. A rename that forgets the docs fails here.

use std::path::{Path, PathBuf};

const DOCS: &[&str] = &["netpoller.md", "architecture.md", "walkthrough.md"];

/// Every ``[`name`](target)`` in `text`.
fn code_links(text: &str) -> Vec<(String, String)> {
    let mut links = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("[`") {
        rest = &rest[start + 2..];
        let Some(end) = rest.find("`](") else { break };
        let name = rest[..end].to_owned();
        rest = &rest[end + 3..];
        let Some(close) = rest.find(')') else { break };
        links.push((name, rest[..close].to_owned()));
        rest = &rest[close..];
    }
    links
}

/// Does `source` define `name`: `fn f` for `f()`, a type for `Type`, both for `Type::method`?
fn defines(source: &str, name: &str) -> Result<(), String> {
    let has_fn = |f: &str| contains_word(source, &format!("fn {f}"));
    let has_type = |t: &str| {
        ["struct ", "enum ", "trait ", "type ", "for ", "impl "]
            .iter()
            .any(|kw| contains_word(source, &format!("{kw}{t}")))
            || source.lines().any(|line| {
                // A generic impl: `impl<S> Context<'_, S> {`.
                line.starts_with("impl<") && line.contains(&format!("> {t}<"))
            })
            || source.contains(&format!("impl<T: Transport> {t}<T>"))
            || source.contains(&format!(
                "impl<T: Transport, P: Poller<T>, Q: JobQueue> {t}<"
            ))
    };
    if name.contains('/') {
        return Ok(()); // a link to a file by its path: that the file exists is the check
    }
    // ``[`A`, `B`](file)`` names two things.
    for name in name.split("`, `") {
        let name = name.trim_end_matches("()");
        let ok = match name.split_once("::") {
            Some((ty, member)) => has_type(ty) && (has_fn(member) || contains_word(source, member)),
            None if name.starts_with(char::is_uppercase) => has_type(name),
            None => has_fn(name),
        };
        if !ok {
            return Err(format!("does not define {name}"));
        }
    }
    Ok(())
}

/// `needle` followed by something that cannot continue an identifier.
fn contains_word(haystack: &str, needle: &str) -> bool {
    haystack.match_indices(needle).any(|(at, _)| {
        let next = haystack[at + needle.len()..].chars().next();
        !next.is_some_and(|c| c.is_alphanumeric() || c == '_')
    })
}

#[test]
fn every_function_the_docs_link_exists_where_they_say() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut checked = 0;
    let mut broken = Vec::new();
    for doc in DOCS {
        let path = root.join("docs").join(doc);
        let Ok(text) = std::fs::read_to_string(&path) else {
            broken.push(format!("{doc}: missing"));
            continue;
        };
        for (name, target) in code_links(&text) {
            let file: PathBuf = root
                .join("docs")
                .join(target.split('#').next().unwrap_or(""));
            let Ok(source) = std::fs::read_to_string(&file) else {
                broken.push(format!("{doc}: [`{name}`]({target}): no such file"));
                continue;
            };
            if file.extension().is_some_and(|e| e == "rs")
                && let Err(why) = defines(&source, &name)
            {
                broken.push(format!("{doc}: [`{name}`]({target}): {why}"));
            }
            checked += 1;
        }
    }
    assert!(broken.is_empty(), "broken links:\n{}", broken.join("\n"));
    assert!(checked > 50, "only {checked} links checked");
}

#[test]
fn the_checker_catches_a_function_that_is_not_there() {
    let source = "impl Foo {\n    fn bar(&self) {}\n}\nfn baz() {}\n";
    assert!(defines(source, "Foo::bar").is_ok());
    assert!(defines(source, "baz()").is_ok());
    assert!(defines(source, "Foo::qux").is_err());
    assert!(defines(source, "ba()").is_err(), "a prefix is not a match");
    assert!(defines(source, "Nope::bar").is_err());
    assert!(
        defines(source, "Foo`, `Bar").is_err(),
        "each of several names"
    );
    let links = code_links("see [`Foo::bar`](../src/x.rs) and [`baz()`](y.rs#L3)");
    assert_eq!(
        links,
        [
            ("Foo::bar".to_owned(), "../src/x.rs".to_owned()),
            ("baz()".to_owned(), "y.rs#L3".to_owned())
        ]
    );
}
