//! Listing: a name-ordered scan of the key objects that returns live
//! entries in key order, page by page, and the full scans behind `stats`
//! and the expiry index's backfill; specified in `host/cloud/DESIGN.md`,
//! "Listing".
//!
//! Object names sort like keys (module `layout`), so a listing starts with
//! `list_with_offset` at the range's start or the cursor and stops at the
//! first name past the range; candidate objects are fetched
//! [`FETCH_CONCURRENCY`] at a time, never splitting a group of long keys
//! (whose names sort by hash), settled like a read, and offered to the
//! contract's [`PageBuilder`] in key order. Input is checked by the
//! contract's [`validate::query`].

use std::collections::HashMap;

use futures::{StreamExt, TryStreamExt};
use object_store::path::Path;
use orbit_storage::{
    KeyRange, ListPage, ListQuery, PageBuilder, StorageResult, StorageStats, now_millis, validate,
};

use crate::layout::{Cell, NameHint, Record, parse_name};
use crate::store::{CloudStorage, Current, Settled};

/// How many objects a listing, stats or purge fetches at once.
pub(crate) const FETCH_CONCURRENCY: usize = 16;

impl CloudStorage {
    /// Every key object's name and record, in name order, from `offset`.
    async fn scan_names(
        &self,
        offset: Option<&Path>,
    ) -> StorageResult<
        futures::stream::BoxStream<'static, object_store::Result<object_store::ObjectMeta>>,
    > {
        let folder = self.layout.keys().clone();
        Ok(match offset {
            Some(offset) => self.clients.read.list_with_offset(Some(&folder), offset),
            None => self.clients.read.list(Some(&folder)),
        })
    }

    async fn fetch_all(&self, paths: Vec<Path>) -> StorageResult<Vec<Option<Current>>> {
        futures::stream::iter(paths)
            .map(|path| async move { self.read_path(&path, None).await })
            .buffered(FETCH_CONCURRENCY)
            .try_collect()
            .await
    }

    /// One page of the listing `query` (DESIGN.md, "Listing").
    pub(crate) async fn list_page(&self, query: &ListQuery) -> StorageResult<ListPage> {
        validate::query(query)?;
        let (start, end, prefix): Bounds<'_> = match &query.range {
            KeyRange::Prefix(p) => (
                Some(p.as_ref()).filter(|p| !p.is_empty()),
                None,
                Some(p.as_ref()),
            ),
            KeyRange::Range { start, end } => (start.as_deref(), end.as_deref(), None),
        };
        let cursor = query.cursor.as_deref();
        let mut offset = start.map(|s| self.layout.offset_before(s));
        if let Some(c) = cursor {
            let after = self.layout.offset_after(c);
            if offset.as_ref().is_none_or(|o| after > *o) {
                offset = Some(after);
            }
        }
        let in_range = |key: &[u8]| {
            prefix.is_none_or(|p| key.starts_with(p))
                && start.is_none_or(|s| key >= s)
                && end.is_none_or(|e| key < e)
                && cursor.is_none_or(|c| key > c)
        };
        // Whether nothing at or after this name can be in range.
        let past_end = |hint: &NameHint| -> bool {
            let head: &[u8] = match hint {
                NameHint::Exact(k) | NameHint::Group(k) => k,
            };
            if let Some(e) = end
                && head >= e
            {
                return true;
            }
            if let Some(p) = prefix {
                let n = p.len().min(head.len());
                if head[..n] > p[..n] {
                    return true;
                }
            }
            false
        };
        let mut names = self.scan_names(offset.as_ref()).await?;
        let mut page = PageBuilder::new(query);
        let mut cache = HashMap::new();
        let mut last_name: Option<String> = None;
        let mut exhausted = false;
        let mut carry: Option<Path> = None;
        'pages: while !exhausted || carry.is_some() {
            // Gather a chunk of candidate names, never splitting a group.
            let mut chunk: Vec<Path> = carry.take().into_iter().collect();
            let want = (query.limit + 1 - page.len().min(query.limit)).clamp(4, 256);
            while !exhausted {
                let meta = match names.next().await {
                    None => {
                        exhausted = true;
                        break;
                    }
                    Some(Ok(meta)) => meta,
                    Some(Err(e)) => return Err(self.fail("list", self.layout.keys(), e)),
                };
                let Some(name) = meta.location.filename().map(str::to_string) else {
                    continue;
                };
                if let Some(prev) = &last_name
                    && name <= *prev
                {
                    return Err(self.corrupt(
                        self.layout.keys(),
                        format!("listing is not in name order ({name} after {prev}); key order cannot be guaranteed"),
                    ));
                }
                let Some(hint) = parse_name(&name) else {
                    continue;
                };
                let group_continues = matches!(&hint, NameHint::Group(_))
                    && last_name.as_deref().and_then(parse_name) == Some(hint_clone(&hint));
                last_name = Some(name);
                if past_end(&hint) {
                    exhausted = true;
                    break;
                }
                if let NameHint::Exact(key) = &hint
                    && !in_range(key)
                {
                    continue;
                }
                if chunk.len() >= want && !group_continues {
                    // This name starts the next chunk.
                    carry = Some(meta.location);
                    break;
                }
                chunk.push(meta.location);
            }
            let mut records: Vec<Record> = self
                .fetch_all(chunk)
                .await?
                .into_iter()
                .flatten()
                .map(|c| c.record)
                .collect();
            // Name order is key order except inside a group.
            records.sort_by(|a, b| a.key.cmp(&b.key));
            let now = now_millis();
            for record in &records {
                if !in_range(&record.key) {
                    continue;
                }
                if let Some(entry) = self.visible_entry(record, &mut cache, now).await?
                    && !page.offer(
                        &entry.key,
                        entry.version,
                        entry.expires_at,
                        entry.value.len(),
                        || entry.value.clone(),
                    )
                {
                    break 'pages;
                }
            }
        }
        Ok(page.finish())
    }

    /// Every key object, settled, in batches (stats and purge).
    pub(crate) async fn for_each_record<F>(&self, mut f: F) -> StorageResult<()>
    where
        F: FnMut(Current, Cell, bool),
    {
        let mut names = self.scan_names(None).await?;
        let mut cache = HashMap::new();
        let mut done = false;
        while !done {
            let mut chunk = Vec::new();
            while chunk.len() < 256 {
                match names.next().await {
                    None => {
                        done = true;
                        break;
                    }
                    Some(Ok(meta)) => {
                        if meta.location.filename().and_then(parse_name).is_some() {
                            chunk.push(meta.location);
                        }
                    }
                    Some(Err(e)) => return Err(self.fail("list", self.layout.keys(), e)),
                }
            }
            for current in self.fetch_all(chunk).await?.into_iter().flatten() {
                let (cell, pending) = match self.settle(&current.record, &mut cache).await? {
                    Settled::Cell(cell) => (cell, false),
                    Settled::Pending { cell, .. } => (cell, true),
                };
                f(current, cell, pending);
            }
        }
        Ok(())
    }

    /// Exact counts of live keys and their bytes: reads every key object
    /// (the `stats` of the contract; O(keys) requests).
    pub(crate) async fn count_all(&self) -> StorageResult<StorageStats> {
        let mut keys = 0u64;
        let mut bytes = 0u64;
        self.for_each_record(|current, cell, _pending| {
            if cell.live {
                keys += 1;
                bytes += (current.record.key.len() + cell.value.len()) as u64;
            }
        })
        .await?;
        Ok(StorageStats {
            keys,
            bytes,
            sizes_known: true,
            disk_bytes: None,
            remote: Some(self.counters.snapshot()),
        })
    }
}

/// A listing's start, end and prefix.
type Bounds<'a> = (Option<&'a [u8]>, Option<&'a [u8]>, Option<&'a [u8]>);

fn hint_clone(hint: &NameHint) -> NameHint {
    match hint {
        NameHint::Exact(k) => NameHint::Exact(k.clone()),
        NameHint::Group(k) => NameHint::Group(k.clone()),
    }
}
