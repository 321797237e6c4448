//! Leveled compaction: choosing what to merge, merging it, and installing the result.
//!
//! Policy (see DESIGN.md): when level 0 holds `compaction_threshold` tables, all of them are
//! merged with the overlapping level-1 tables into level 1. Otherwise the level whose size
//! most exceeds its budget (`level1_size * 10^(level-1)`) gives up one table (round-robin
//! over the key space), merged with the overlapping tables one level down; a table that
//! overlaps nothing below just moves down (no rewrite). Merging keeps only the newest version
//! of each key (readers on older snapshots hold the old tables open, so nothing they need is
//! lost), and drops tombstones when no deeper level can hold an older version of the key.

use crate::coding::{KIND_DELETE, put_internal_key, split_internal_key};
use crate::db::Inner;
use crate::error::{Error, Result};
use crate::filenames::table_name;
use crate::flush::build_options;
use crate::iter::{InternalIter, MergeIter};
use crate::table::{Table, TableBuilder, TableIter};
use crate::version::{FileMeta, NUM_LEVELS, TableFile, Version, VersionEdit};
use std::sync::Arc;
use std::sync::atomic::Ordering;

struct Pick {
    inputs: Vec<Arc<TableFile>>,
    output_level: usize,
    bottommost: bool,
    trivial_move: bool,
}

fn key_range(files: &[Arc<TableFile>]) -> Option<(Vec<u8>, Vec<u8>)> {
    let lo = files.iter().map(|t| t.user_smallest()).min()?.to_vec();
    let hi = files.iter().map(|t| t.user_largest()).max()?.to_vec();
    Some((lo, hi))
}

fn is_bottommost(v: &Version, output_level: usize, lo: &[u8], hi: &[u8]) -> bool {
    v.levels[output_level + 1..]
        .iter()
        .flatten()
        .all(|t| !t.overlaps(lo, hi))
}

fn level_budget(db: &Inner, level: usize) -> u64 {
    db.opts
        .level1_size
        .saturating_mul(10u64.saturating_pow(level as u32 - 1))
}

fn pick(db: &Inner, v: &Version, cursors: &mut [Vec<u8>]) -> Option<Pick> {
    let l0 = &v.levels[0];
    if !l0.is_empty() && l0.len() >= db.opts.compaction_threshold as usize {
        let (lo, hi) = key_range(l0)?;
        let mut inputs = l0.clone();
        inputs.extend(v.levels[1].iter().filter(|t| t.overlaps(&lo, &hi)).cloned());
        let (lo, hi) = key_range(&inputs)?;
        return Some(Pick {
            bottommost: is_bottommost(v, 1, &lo, &hi),
            inputs,
            output_level: 1,
            trivial_move: false,
        });
    }
    let mut best: Option<(usize, f64)> = None;
    for level in 1..NUM_LEVELS - 1 {
        let score = v.level_bytes(level) as f64 / level_budget(db, level) as f64;
        if score > 1.0 && best.is_none_or(|(_, s)| score > s) {
            best = Some((level, score));
        }
    }
    let (level, _) = best?;
    let files = &v.levels[level];
    let cursor = &cursors[level];
    let f = files
        .iter()
        .find(|t| t.user_smallest() > cursor.as_slice())
        .or(files.first())?
        .clone();
    cursors[level] = f.user_largest().to_vec();
    let below: Vec<_> = v.levels[level + 1]
        .iter()
        .filter(|t| t.overlaps(f.user_smallest(), f.user_largest()))
        .cloned()
        .collect();
    let trivial_move = below.is_empty();
    let mut inputs = vec![f];
    inputs.extend(below);
    let (lo, hi) = key_range(&inputs)?;
    Some(Pick {
        bottommost: is_bottommost(v, level + 1, &lo, &hi),
        inputs,
        output_level: level + 1,
        trivial_move,
    })
}

/// Runs one background compaction if one is due; returns whether it did work.
pub(crate) fn run_one(db: &Inner) -> Result<bool> {
    let _g = db.compaction_lock.lock();
    let p = {
        let mut vs = db.versions.lock();
        let v = vs.current.clone();
        pick(db, &v, &mut vs.cursors)
    };
    match p {
        None => Ok(false),
        Some(p) => {
            execute(db, p)?;
            Ok(true)
        }
    }
}

/// While writes pause: merges level 0 into level 1 if level 0 holds at least 5% of the data
/// (below the count threshold, level 0 would otherwise keep overwritten versions indefinitely).
pub(crate) fn idle_compaction(db: &Inner) -> Result<bool> {
    let _g = db.compaction_lock.lock();
    let p = {
        let vs = db.versions.lock();
        let v = &vs.current;
        let l0 = &v.levels[0];
        let l0_bytes = v.level_bytes(0);
        let total: u64 = (0..NUM_LEVELS).map(|l| v.level_bytes(l)).sum();
        if l0.is_empty() || l0_bytes * 20 < total || (l0.len() == 1 && v.levels[1].is_empty()) {
            return Ok(false);
        }
        let Some((lo, hi)) = key_range(l0) else {
            return Ok(false);
        };
        let mut inputs = l0.clone();
        inputs.extend(v.levels[1].iter().filter(|t| t.overlaps(&lo, &hi)).cloned());
        let Some((lo, hi)) = key_range(&inputs) else {
            return Ok(false);
        };
        Pick {
            bottommost: is_bottommost(v, 1, &lo, &hi),
            inputs,
            output_level: 1,
            trivial_move: false,
        }
    };
    execute(db, p)?;
    Ok(true)
}

/// Merges every table into the deepest non-empty level.
pub(crate) fn compact_all(db: &Inner) -> Result<()> {
    let _g = db.compaction_lock.lock();
    let p = {
        let vs = db.versions.lock();
        let v = &vs.current;
        let deepest = (1..NUM_LEVELS)
            .rev()
            .find(|&l| !v.levels[l].is_empty())
            .unwrap_or(1);
        let inputs: Vec<_> = v.levels[..=deepest].iter().flatten().cloned().collect();
        Pick {
            inputs,
            output_level: deepest,
            bottommost: true,
            trivial_move: false,
        }
    };
    if p.inputs.is_empty() {
        return Ok(());
    }
    execute(db, p)
}

fn execute(db: &Inner, p: Pick) -> Result<()> {
    let deleted: Vec<(u32, u64)> = p.inputs.iter().map(|t| (t.meta.level, t.meta.id)).collect();
    let in_bytes: u64 = p.inputs.iter().map(|t| t.meta.size).sum();
    let added = if p.trivial_move {
        p.inputs
            .iter()
            .map(|t| {
                Arc::new(TableFile {
                    meta: FileMeta {
                        level: p.output_level as u32,
                        ..t.meta.clone()
                    },
                    table: t.table.clone(),
                })
            })
            .collect()
    } else {
        merge(db, &p)?
    };
    let out_bytes: u64 = if p.trivial_move {
        0
    } else {
        added.iter().map(|t: &Arc<TableFile>| t.meta.size).sum()
    };
    let edit = VersionEdit {
        log_number: None,
        next_file: Some(db.next_file_hint()),
        last_seq: None,
        added: added.iter().map(|t| t.meta.clone()).collect(),
        deleted,
    };
    let mut vs = db.versions.lock();
    db.log_and_install(&mut vs, &edit, added, None)?;
    drop(vs);
    let c = &db.counters;
    c.compactions.fetch_add(1, Ordering::Relaxed);
    if !p.trivial_move {
        c.compaction_bytes_read
            .fetch_add(in_bytes, Ordering::Relaxed);
        c.compaction_bytes_written
            .fetch_add(out_bytes, Ordering::Relaxed);
    }
    tracing::debug!(
        inputs = p.inputs.len(),
        output_level = p.output_level,
        in_bytes,
        out_bytes,
        trivial = p.trivial_move,
        "compaction done"
    );
    Ok(())
}

fn merge(db: &Inner, p: &Pick) -> Result<Vec<Arc<TableFile>>> {
    let bopts = build_options(&db.opts);
    let children: Vec<Box<dyn InternalIter>> = p
        .inputs
        .iter()
        .map(|t| Box::new(TableIter::new(t.table.clone(), false)) as Box<dyn InternalIter>)
        .collect();
    let mut it = MergeIter::new(children);
    it.seek_to_first()?;
    let mut outputs: Vec<(u64, crate::table::Built)> = Vec::new();
    let mut builder: Option<(u64, TableBuilder)> = None;
    let mut last: Option<Vec<u8>> = None;
    let mut zeroed = Vec::new();
    let mut n = 0u64;
    let result = (|| -> Result<()> {
        while it.valid() {
            n += 1;
            if n.is_multiple_of(4096) && db.is_shutting_down() {
                return Err(Error::Fatal("compaction interrupted by shutdown".into()));
            }
            let k = it.key();
            let (u, _, kind) = split_internal_key(k)
                .ok_or_else(|| Error::corrupt("<compaction input>", None, "key without trailer"))?;
            if last.as_deref() == Some(u) {
                it.next()?;
                continue;
            }
            last = Some(u.to_vec());
            if kind == KIND_DELETE && p.bottommost {
                it.next()?;
                continue;
            }
            if builder.is_none() {
                let id = db.alloc_file();
                let path = db.dir.join(table_name(id));
                builder = Some((id, TableBuilder::new(&*db.fs, &path, bopts)?));
            }
            if let Some((_, b)) = builder.as_mut() {
                // Sequence numbers of compacted entries are zeroed: every reader that can see
                // this output has a sequence above all of them (it pinned its super version
                // after they were published), and newer versions of the key live in higher
                // levels, which lookups and merges consult first. Zero costs one byte on disk.
                zeroed.clear();
                put_internal_key(&mut zeroed, u, 0, kind);
                b.add(&zeroed, it.value())?;
                if b.file_size() >= db.opts.target_file_size
                    && let Some((id, b)) = builder.take()
                {
                    outputs.push((id, b.finish()?));
                }
            }
            it.next()?;
        }
        if let Some((id, b)) = builder.take() {
            outputs.push((id, b.finish()?));
        }
        Ok(())
    })();
    if let Err(e) = result {
        // Unreferenced outputs are also removed at the next open.
        for (id, _) in &outputs {
            let _ = db.fs.remove(&db.dir.join(table_name(*id)));
        }
        if let Some((id, _)) = builder {
            let _ = db.fs.remove(&db.dir.join(table_name(id)));
        }
        return Err(e);
    }
    if !outputs.is_empty() {
        db.fs
            .sync_dir(&db.dir)
            .map_err(|e| Error::io("fsync directory", &db.dir, e))?;
    }
    let mut added = Vec::new();
    for (id, built) in outputs {
        let table = Table::open(
            db.fs.clone(),
            db.dir.join(table_name(id)),
            id,
            db.cache.clone(),
        )?;
        added.push(Arc::new(TableFile {
            meta: FileMeta {
                level: p.output_level as u32,
                id,
                size: built.size,
                entries: built.entries,
                smallest: built.smallest,
                largest: built.largest,
            },
            table: Arc::new(table),
        }));
    }
    Ok(added)
}
