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
