//! Test tool: the GCS XML-API test server of `orbit_test_support::gcs` as a
//! process, for the manifest-driven deployment test (`k8s/tests`), which
//! has no other GCS stand-in. It is a protocol test double, not Google.
//!
//! Usage: `orbit-gcs-test-server [PORT]` (default: any free port). Prints the
//! port on the first line of stdout, then serves on 127.0.0.1 until killed.

use std::io::Write;
use std::process::ExitCode;

use orbit_test_support::gcs;

fn main() -> ExitCode {
    let port = match std::env::args().nth(1).map(|p| p.parse::<u16>()) {
        None => 0,
        Some(Ok(p)) => p,
        Some(Err(e)) => {
            eprintln!("orbit-gcs-test-server: PORT must be a number from 0 to 65535: {e}");
            return ExitCode::from(2);
        }
    };
    let server = match port {
        0 => gcs::Server::start(),
        port => gcs::Server::start_on(port),
    };
    println!("{}", server.port);
    let _ = std::io::stdout().flush();
    loop {
        std::thread::park();
    }
}
