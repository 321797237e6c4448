//! The files that follow from the settings catalogue (the README's table,
//! the chart's backend tables and schema, the raw manifests' backend
//! variables) are the catalogue's, and the OpenAPI description
//! (docs/openapi.json) is the HTTP handlers', so they cannot drift.

#[test]
fn generated_files_follow_the_catalogue() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let stale = orbit_server::generated::drift(&root).unwrap();
    assert!(
        stale.is_empty(),
        "{stale:?} differ from what the code generates; run `{}`",
        orbit_server::generated::COMMAND
    );
}
