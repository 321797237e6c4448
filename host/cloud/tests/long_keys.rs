//! Keys longer than the 111 bytes that fit an object name directly: they
//! share a name group when their heads are equal, and listing must still
//! return them in key order, once each, across pages (GCS test server:
//! the listing logic is provider-independent).

mod support;

use bytes::Bytes;
use orbit_storage::{KeyRange, ListQuery, PutOptions, Storage};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_keys_list_in_key_order_across_pages() {
    let server = support::gcs();
    let store = support::ready(
        orbit_cloud::open_gcp(&support::gcp_config(server, &support::fresh_prefix("long")))
            .unwrap(),
    )
    .await;
    let head = vec![b'h'; orbit_cloud::DIRECT_KEY_LEN];
    let mut keys: Vec<Vec<u8>> = Vec::new();
    for tail in [&b"zz"[..], b"a", b"m", b"\x00", b"\xff\xff", b"b"] {
        let mut k = head.clone();
        k.extend_from_slice(tail);
        keys.push(k);
    }
    keys.push(head.clone()); // the direct key equal to the group head
    let mut before = head.clone();
    before[orbit_cloud::DIRECT_KEY_LEN - 1] = b'g';
    keys.push(before);
    let mut after = head.clone();
    after[orbit_cloud::DIRECT_KEY_LEN - 1] = b'i';
    keys.push(after);
    keys.push(vec![b'k'; orbit_storage::MAX_KEY_LEN]);
    for key in &keys {
        store
            .put(
                key,
                Bytes::from(key.len().to_string()),
                PutOptions::default(),
            )
            .await
            .unwrap();
    }
    let mut expected = keys.clone();
    expected.sort();
    for limit in [1, 2, 3, 100] {
        let mut seen = Vec::new();
        let mut cursor = None;
        loop {
            let page = store
                .list(&ListQuery {
                    cursor: cursor.clone(),
                    ..ListQuery::new(KeyRange::Prefix(Bytes::new()), limit)
                })
                .await
                .unwrap();
            seen.extend(page.entries.iter().map(|e| e.key.to_vec()));
            match page.next_cursor {
                Some(c) => cursor = Some(c),
                None => break,
            }
        }
        assert_eq!(seen, expected, "limit {limit}");
    }
    // A prefix longer than 111 bytes selects inside the group.
    let mut prefix = head.clone();
    prefix.push(b'm');
    let page = store
        .list(&ListQuery::new(
            KeyRange::Prefix(Bytes::from(prefix.clone())),
            10,
        ))
        .await
        .unwrap();
    assert_eq!(page.entries.len(), 1);
    assert_eq!(page.entries[0].key.as_ref(), &prefix[..]);
    assert_eq!(store.stats().await.unwrap().keys, keys.len() as u64);
}
