//! The README's settings table is the catalogue's, so the docs cannot drift.

#[test]
fn readme_lists_every_setting_as_the_catalogue_does() {
    let readme = include_str!("../../../README.md");
    let table = orbit_server::cli::settings_table();
    assert!(
        readme.contains(&table),
        "README.md's settings table is stale; replace it with the output of `orbit-server config settings`:\n{table}"
    );
}

#[test]
fn the_charts_backend_settings_are_the_catalogues() {
    let chart = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../helm/orbit-rs");
    if let Some(drift) = orbit_server::chart::drift(&chart).unwrap() {
        panic!("{drift}");
    }
}
