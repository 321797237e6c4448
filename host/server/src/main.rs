//! `orbit-server`: see the crate docs of `orbit_server` and README.md.

fn main() -> std::process::ExitCode {
    orbit_server::cli::main()
}
