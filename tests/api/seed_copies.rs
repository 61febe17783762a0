//! The seed's snippets that the story runs unchanged (`tests/seed/`) are
//! the integration document's own: each copy is checked against the
//! document, kept in the repository at `docs/seed/`, and that copy against
//! the shared original when it is beside the repository (so a change to
//! either side is noticed).

const DOC: &str = include_str!("../../docs/seed/webinar-reminder-webhook.txt");

#[test]
fn each_snippet_is_the_document_s_own() {
    for (name, copy) in [
        ("subscribe.sh", include_str!("../seed/subscribe.sh")),
        ("subscribe.js", include_str!("../seed/subscribe.js")),
        ("subscribe.py", include_str!("../seed/subscribe.py")),
    ] {
        let copy = copy.trim_end();
        assert!(copy.lines().count() > 5, "{name} is a whole snippet");
        assert!(
            DOC.contains(copy),
            "tests/seed/{name} is not, line for line, a snippet of the document"
        );
    }
}

#[test]
fn the_payload_example_is_the_document_s_own() {
    let start = DOC.find("Example\n{").expect("the payload example") + "Example\n".len();
    let end = start + DOC[start..].find("\n}").unwrap() + 2;
    let example: serde_json::Value = serde_json::from_str(&DOC[start..end]).unwrap();
    let (webinar, person) = tminus::domain::payload::seed_example();
    let ours: serde_json::Value =
        serde_json::from_slice(&tminus::domain::payload::render(&webinar, &person)).unwrap();
    assert_eq!(
        ours, example,
        "the test event's payload is the document's example"
    );
}

#[test]
fn the_repository_copy_matches_the_shared_original() {
    let shared = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/seed/webinar-reminder-webhook.txt");
    match std::fs::read_to_string(&shared) {
        Ok(original) => assert_eq!(original, DOC, "docs/seed/ is out of date"),
        Err(_) => eprintln!("no shared original beside the repository: nothing to compare"),
    }
}
