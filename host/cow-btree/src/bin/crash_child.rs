//! Crash-test child: opens the database given as argument and commits from
//! several threads forever, printing `ack <thread> <seq>` on stdout once a
//! commit is durable. The crash test SIGKILLs it at a random moment and
//! checks every acknowledged commit.
//!
//! Mode `per-commit` (default): `SyncMode::PerCommit`, every `write` is
//! durable when it returns and is acknowledged. Mode `deferred`:
//! `SyncMode::None` with a small dirty-node budget (so deferred nodes are
//! also written under memory pressure between syncs); each thread calls
//! `sync` after every fourth commit and acknowledges that commit only then;
//! the commits in between are non-durable and may be lost.
//!
//! Each commit of thread `t`, sequence `n` (in run `r`) writes three keys
//! atomically: `r/t/n/a`, `r/t/n/b` (sometimes a multi-page value) and a
//! per-thread `r/t/last` = n, and deletes `r/t/(n-3)/a`.

use std::io::Write;
use std::sync::Arc;

use orbit_cow_btree::{Db, Options, SyncMode, WriteBatch};

fn main() {
    let mut args = std::env::args().skip(1);
    let (Some(dir), Some(run), Some(threads)) = (args.next(), args.next(), args.next()) else {
        eprintln!("usage: cow-crash-child DIR RUN THREADS [per-commit|deferred]");
        std::process::exit(2);
    };
    let threads: usize = threads.parse().unwrap_or(4);
    let deferred = args.next().as_deref() == Some("deferred");
    let opts = if deferred {
        Options {
            sync: SyncMode::None,
            page_size: 4096,
            cache_size: 1 << 20,
            dirty_limit: 128 << 10,
            ..Options::default()
        }
    } else {
        Options {
            sync: SyncMode::PerCommit,
            page_size: 4096,
            ..Options::default()
        }
    };
    let db = match Db::open(&dir, opts) {
        Ok(db) => Arc::new(db),
        Err(e) => {
            eprintln!("open failed: {e}");
            std::process::exit(3);
        }
    };
    println!("ready");
    let out = Arc::new(std::sync::Mutex::new(std::io::stdout()));
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let db = db.clone();
            let out = out.clone();
            let run = run.clone();
            std::thread::spawn(move || {
                for n in 0u64.. {
                    let mut b = WriteBatch::new();
                    b.put(format!("{run}/{t}/{n:08}/a"), format!("a{n}"));
                    let big = if n % 5 == 0 { 9000 } else { 20 };
                    b.put(format!("{run}/{t}/{n:08}/b"), vec![(n % 251) as u8; big]);
                    b.put(format!("{run}/{t}/last"), n.to_string());
                    if n >= 3 {
                        b.delete(format!("{run}/{t}/{:08}/a", n - 3));
                    }
                    if let Err(e) = db.write(b) {
                        eprintln!("write failed: {e}");
                        std::process::exit(4);
                    }
                    if deferred {
                        if n % 4 != 3 {
                            continue;
                        }
                        if let Err(e) = db.sync() {
                            eprintln!("sync failed: {e}");
                            std::process::exit(5);
                        }
                    }
                    let mut o = out.lock().unwrap_or_else(|p| p.into_inner());
                    let _ = writeln!(o, "ack {t} {n}");
                    let _ = o.flush();
                }
            })
        })
        .collect();
    for h in handles {
        let _ = h.join();
    }
}
