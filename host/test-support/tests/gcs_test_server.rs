//! The `orbit-gcs-test-server` binary (the deployment test's GCS stand-in)
//! prints its port and serves the XML API: a create-only write succeeds
//! once, a second one is refused with 412, a read returns the object with
//! its generation. (Having an integration test also makes `cargo test`
//! build the binary, which `k8s/tests` runs.)

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};

fn request(port: u16, text: &str) -> String {
    let mut conn = TcpStream::connect(("127.0.0.1", port)).unwrap();
    conn.write_all(text.as_bytes()).unwrap();
    let mut answer = String::new();
    conn.read_to_string(&mut answer).unwrap();
    answer
}

#[test]
fn the_binary_serves_generations_and_create_only_writes() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_orbit-gcs-test-server"))
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let port: u16 = line.trim().parse().unwrap_or_else(|_| panic!("{line:?}"));
    let put = "PUT /orbit/k HTTP/1.1\r\nHost: x\r\nx-goog-if-generation-match: 0\r\nContent-Length: 2\r\nConnection: close\r\n\r\nv1";
    let first = request(port, put);
    assert!(first.starts_with("HTTP/1.1 200"), "{first}");
    let second = request(port, put);
    assert!(second.starts_with("HTTP/1.1 412"), "{second}");
    let get = request(
        port,
        "GET /orbit/k HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    assert!(
        get.starts_with("HTTP/1.1 200") && get.ends_with("v1"),
        "{get}"
    );
    assert!(
        get.to_ascii_lowercase().contains("x-goog-generation: "),
        "{get}"
    );
    let _ = child.kill();
    let _ = child.wait();
}
