//! [`ValueStore`]: an append-only, checksummed file of `(mask row, value)` records that makes long
//! runs resumable, locked so that one run at a time writes it.
//!
//! Layout (format 2): one header line, `{"spex_values_log":2,"run":IDENTITY}` as compact JSON
//! ending in `\n`, then 24-byte records, all little-endian: the mask row (`u64`), its value
//! (`f64`), the run tag (`u32`, the CRC-32 of the header line without its `\n`) and the CRC-32 of
//! those 20 bytes (`u32`). The run tag makes a record copied from another run's log (another
//! plan, shard or value function) detectable; the checksum, a record damaged in place.
//!
//! Each batch of records is written with one call and synced before [`ValueStore::append`]
//! returns, so a crash loses at most the batch in flight. Opening checks every record: a record
//! cut short at the end (a run stopped while writing) is dropped with a warning and evaluated
//! again; any other damage (a failed checksum, a zeroed record, a record from another log, a row
//! stored twice, a header for another run) is an error that names the file, the record, its row
//! and byte offset, and the `truncate -s` that keeps every record before it: spex changes nothing
//! in a damaged log itself. Format 1 (the identity alone as header, then 16-byte records of row
//! and value, no checksum) is read with the checks it allows and rewritten in format 2.
//!
//! While a store is open, `FILE.lock` beside it holds an exclusive advisory lock (released when
//! the store is dropped, and by the OS when the process exits or crashes) and the holder's pid: a
//! second store on the same file, in this process or another, is an error that names the holder.
//! The lock is per file, so shards of one plan (`values-i-of-N.log`) run side by side.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Write};
use std::ops::Range;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::{Error, Result};

/// The record format this build writes, named in the header as `spex_values_log`.
const FORMAT: u64 = 2;

/// The header field that holds the format; absent in format 1.
const FORMAT_KEY: &str = "spex_values_log";

/// Bytes per record: row (`u64`), value (`f64`), run tag (`u32`), checksum (`u32`).
const RECORD: usize = 24;

/// Bytes per record of format 1: row (`u64`), value (`f64`).
const RECORD_V1: usize = 16;

/// The values of one run's masks, as far as they have been computed, backed by an append-only,
/// locked file.
pub struct ValueStore {
    path: PathBuf,
    file: File,
    tag: u32,
    values: Vec<Option<f64>>,
    _lock: LogLock,
}

impl ValueStore {
    /// Opens (or creates) the store at `path` for a run over `rows` masks identified by `identity`,
    /// and locks it for as long as the store lives.
    ///
    /// Errors name the file: another run holding it (with its pid), a header for another run
    /// (listing the fields that differ), a damaged record (which one, where to truncate), or an
    /// I/O failure. A record cut short at the end is dropped with a warning.
    pub fn open(path: &Path, identity: &Value, rows: usize) -> Result<ValueStore> {
        let lock = LogLock::acquire(path)?;
        let header = header_line(path, identity)?;
        let bytes = match std::fs::read(path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(Error::file(path, e)),
        };
        let mut values = vec![None; rows];
        let tag = match read_header(path, &bytes, identity, &header)? {
            Contents::New => {
                let mut file = File::create(path).map_err(|e| Error::file(path, e))?;
                write_synced(&mut file, format!("{header}\n").as_bytes(), path)?;
                crc32(header.as_bytes())
            }
            Contents::Current { header, body } => {
                let tag = crc32(header);
                let log = Log {
                    path,
                    offset: header.len() + 1,
                    size: RECORD,
                    tag: Some(tag),
                };
                log.scan(body, &mut values, |rec| decode(rec, tag))?;
                let tail = body.len() % RECORD;
                if tail > 0 {
                    tracing::warn!(
                        "{}: the last record was cut short ({tail} of {RECORD} bytes: a run stopped while writing it); dropped, its batch is evaluated again",
                        path.display()
                    );
                    let file = OpenOptions::new()
                        .write(true)
                        .open(path)
                        .map_err(|e| Error::file(path, e))?;
                    file.set_len((bytes.len() - tail) as u64)
                        .and_then(|()| file.sync_data())
                        .map_err(|e| Error::file(path, e))?;
                }
                tag
            }
            Contents::Legacy { offset, body } => {
                let log = Log {
                    path,
                    offset,
                    size: RECORD_V1,
                    tag: None,
                };
                let order = log.scan(body, &mut values, |rec| Ok(decode_v1(rec)))?;
                convert(path, &header, &order, body.len() % RECORD_V1)?;
                crc32(header.as_bytes())
            }
        };
        let file = OpenOptions::new()
            .append(true)
            .open(path)
            .map_err(|e| Error::file(path, e))?;
        Ok(ValueStore {
            path: path.to_path_buf(),
            file,
            tag,
            values,
            _lock: lock,
        })
    }

    /// Reads the log at `path` of a run over `rows` masks without locking or changing it (what
    /// `spex status` does while runs write): the run identity its header names and the value of
    /// each row stored so far; `None` when there is no file. A record cut short at the end is not
    /// counted; any other damage is an error as in [`ValueStore::open`].
    pub fn peek(path: &Path, rows: usize) -> Result<Option<(Value, Vec<Option<f64>>)>> {
        let bytes = match std::fs::read(path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Error::file(path, e)),
        };
        let mut values = vec![None; rows];
        let Some(end) = bytes.iter().position(|&b| b == b'\n') else {
            return Ok(Some((Value::Null, values)));
        };
        let found: Value = serde_json::from_slice(&bytes[..end]).map_err(|e| {
            Error::file(
                path,
                format!("the header is not the JSON spex writes ({e}): not a spex values log"),
            )
        })?;
        let run = match found.get(FORMAT_KEY) {
            Some(_) => found.get("run").cloned().unwrap_or(Value::Null),
            None => found,
        };
        match read_header(path, &bytes, &run, &header_line(path, &run)?)? {
            Contents::New => {}
            Contents::Current { header, body } => {
                let tag = crc32(header);
                let log = Log {
                    path,
                    offset: header.len() + 1,
                    size: RECORD,
                    tag: Some(tag),
                };
                log.scan(body, &mut values, |rec| decode(rec, tag))?;
            }
            Contents::Legacy { offset, body } => {
                let log = Log {
                    path,
                    offset,
                    size: RECORD_V1,
                    tag: None,
                };
                log.scan(body, &mut values, |rec| Ok(decode_v1(rec)))?;
            }
        }
        Ok(Some((run, values)))
    }

    /// The file behind the store.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The value of mask `row`, if computed.
    pub fn get(&self, row: usize) -> Option<f64> {
        self.values.get(row).copied().flatten()
    }

    /// Rows of `range` that have no value yet, ascending.
    pub fn missing(&self, range: Range<usize>) -> Vec<usize> {
        range.filter(|&r| self.get(r).is_none()).collect()
    }

    /// Values of every row of `range`, in order; `None` while any is missing.
    pub fn values(&self, range: Range<usize>) -> Option<Vec<f64>> {
        range.map(|r| self.get(r)).collect()
    }

    /// Records `values[k]` for mask `rows[k]` and syncs the file before returning; a row stored
    /// already (or twice in `rows`) is an error, so the file never holds a row twice.
    pub fn append(&mut self, rows: &[usize], values: &[f64]) -> Result<()> {
        if rows.len() != values.len() {
            return Err(crate::sparse::Error::ValuesMismatch(format!(
                "{} values for {} rows",
                values.len(),
                rows.len()
            ))
            .into());
        }
        if let Some(k) = rows.iter().position(|&r| r >= self.values.len()) {
            return Err(Error::invalid(
                "row",
                format!(
                    "row {} is outside a run of {} masks",
                    rows[k],
                    self.values.len()
                ),
            ));
        }
        let mut seen = std::collections::HashSet::with_capacity(rows.len());
        if let Some(&r) = rows
            .iter()
            .find(|&&r| self.values[r].is_some() || !seen.insert(r))
        {
            return Err(Error::invalid(
                "row",
                format!(
                    "row {r} is stored already in {} (or given twice)",
                    self.path.display()
                ),
            ));
        }
        crate::sparse::error::check_finite(values)?;
        let mut buf = Vec::with_capacity(rows.len() * RECORD);
        for (&r, &v) in rows.iter().zip(values) {
            buf.extend_from_slice(&encode(r as u64, v, self.tag));
        }
        write_synced(&mut self.file, &buf, &self.path)?;
        for (&r, &v) in rows.iter().zip(values) {
            self.values[r] = Some(v);
        }
        Ok(())
    }
}

/// The header line (without `\n`) of the log at `path` of the run `identity`.
fn header_line(path: &Path, identity: &Value) -> Result<String> {
    Ok(format!(
        "{{\"{FORMAT_KEY}\":{FORMAT},\"run\":{}}}",
        serde_json::to_string(identity).map_err(|e| Error::file(path, e))?
    ))
}

/// What a log file holds before its records are read.
enum Contents<'a> {
    /// Nothing yet (no file, an empty one, or a header cut short while it was written).
    New,
    /// Format 2: the header line (without `\n`) and the records after it.
    Current { header: &'a [u8], body: &'a [u8] },
    /// Format 1: where its records start, and the records.
    Legacy { offset: usize, body: &'a [u8] },
}

/// Splits `bytes` after the header line, checks its format and that it names `identity`
/// (`header` is the line this build writes for it, without `\n`).
fn read_header<'a>(
    path: &Path,
    bytes: &'a [u8],
    identity: &Value,
    header: &str,
) -> Result<Contents<'a>> {
    let Some(end) = bytes.iter().position(|&b| b == b'\n') else {
        if header.as_bytes().starts_with(bytes) {
            if !bytes.is_empty() {
                tracing::warn!(
                    "{}: the header was cut short while it was written; written again",
                    path.display()
                );
            }
            return Ok(Contents::New);
        }
        return Err(Error::file(
            path,
            "no header line: not a spex values log; move it aside to start over",
        ));
    };
    let found: Value = serde_json::from_slice(&bytes[..end]).map_err(|e| {
        Error::file(
            path,
            format!("the header is not the JSON spex writes ({e}): not a spex values log; move it aside to start over"),
        )
    })?;
    let (run, legacy) = match found.get(FORMAT_KEY) {
        None => (&found, true),
        Some(v) if v.as_u64() == Some(FORMAT) => (
            found.get("run").ok_or_else(|| {
                Error::file(path, "the header has no `run` field: the file is damaged; move it aside to start over")
            })?,
            false,
        ),
        Some(v) => {
            return Err(Error::file(
                path,
                format!(
                    "is a values log of format {v}, which this spex does not read (it reads formats 1 and {FORMAT}); use the spex that wrote it"
                ),
            ))
        }
    };
    if run != identity {
        return Err(Error::file(
            path,
            format!(
                "was written for another run ({}); use another output folder, or move the file aside to start over",
                differences(run, identity).join("; ")
            ),
        ));
    }
    let body = &bytes[end + 1..];
    Ok(if legacy {
        Contents::Legacy {
            offset: end + 1,
            body,
        }
    } else {
        Contents::Current {
            header: &bytes[..end],
            body,
        }
    })
}

/// `field: stored -> now` for each top-level field that differs between two identities.
fn differences(stored: &Value, now: &Value) -> Vec<String> {
    let empty = serde_json::Map::new();
    let (a, b) = (
        stored.as_object().unwrap_or(&empty),
        now.as_object().unwrap_or(&empty),
    );
    let mut keys: Vec<&String> = a.keys().chain(b.keys()).collect();
    keys.sort();
    keys.dedup();
    let diffs: Vec<String> = keys
        .into_iter()
        .filter(|k| a.get(*k) != b.get(*k))
        .map(|k| {
            let show = |v: Option<&Value>| v.map_or("(absent)".to_string(), Value::to_string);
            format!(
                "{k}: {} in the file, {} now",
                show(a.get(k)),
                show(b.get(k))
            )
        })
        .collect();
    if diffs.is_empty() {
        vec!["the identities differ".to_string()]
    } else {
        diffs
    }
}

/// What is wrong with one whole record.
#[derive(Clone, Copy, Debug)]
enum Damage {
    /// Every byte is zero (what a power loss can leave).
    Zeroed,
    /// The checksum does not match the bytes; the row it claims.
    Checksum(u64),
    /// Intact, but written under another header: its row and run tag.
    Foreign(u64, u32),
    /// Intact, but for a row outside the run.
    Row(u64),
    /// Intact, but its value is NaN or infinite: row and value.
    NotFinite(u64, f64),
    /// Intact, but its row is stored by an earlier record: row and that record's index.
    Repeated(u64, usize),
}

impl Damage {
    /// What happened to the record, as a clause after "record K (bytes A..B)".
    fn describe(self, tag: Option<u32>, rows: usize) -> String {
        match self {
            Damage::Zeroed => "is all zero bytes (what a power loss can leave)".to_string(),
            Damage::Checksum(row) => {
                format!("fails its checksum (it claims row {row}): the record is damaged")
            }
            Damage::Foreign(row, theirs) => {
                let ours = tag.map_or(String::new(), |t| format!(", this log's {t:08x}"));
                format!(
                    "(row {row}) belongs to another run's log (run tag {theirs:08x}{ours}): a record copied from another file"
                )
            }
            Damage::Row(row) => format!("names row {row}, outside this run's {rows} masks"),
            Damage::NotFinite(row, v) => format!("holds {v} for row {row}, not a finite value"),
            Damage::Repeated(row, first) => {
                format!("repeats row {row}, which record {first} stores already")
            }
        }
    }
}

/// The records of one log file: where they start, how long each is, and the run tag of its
/// header (format 2).
struct Log<'p> {
    path: &'p Path,
    offset: usize,
    size: usize,
    tag: Option<u32>,
}

impl Log<'_> {
    /// Reads every whole record of `body` into `values` through `decode`, checking rows and
    /// values; returns `(row, value)` in file order, or the error of the first damaged record.
    fn scan(
        &self,
        body: &[u8],
        values: &mut [Option<f64>],
        decode: impl Fn(&[u8]) -> std::result::Result<(u64, f64), Damage>,
    ) -> Result<Vec<(u64, f64)>> {
        let whole = body.len() / self.size;
        let mut first = vec![usize::MAX; values.len()];
        let mut order = Vec::with_capacity(whole);
        for (k, rec) in body.chunks_exact(self.size).enumerate() {
            let checked = decode(rec).and_then(|(row, value)| {
                let r = usize::try_from(row)
                    .ok()
                    .filter(|&r| r < values.len())
                    .ok_or(Damage::Row(row))?;
                if !value.is_finite() {
                    return Err(Damage::NotFinite(row, value));
                }
                if values[r].is_some() {
                    return Err(Damage::Repeated(row, first[r]));
                }
                Ok((r, row, value))
            });
            match checked {
                Ok((r, row, value)) => {
                    values[r] = Some(value);
                    first[r] = k;
                    order.push((row, value));
                }
                Err(damage) => {
                    return Err(self.damaged(k, whole, damage.describe(self.tag, values.len())));
                }
            }
        }
        Ok(order)
    }

    /// The error for damaged record `k` of `whole`: what is wrong, and how to keep the records
    /// before it.
    fn damaged(&self, k: usize, whole: usize, what: String) -> Error {
        let at = self.offset + k * self.size;
        Error::file(
            self.path,
            format!(
                "record {k} (bytes {at}..{}) {what}. spex changes nothing in a damaged log: `truncate -s {at} {}` keeps the {k} intact records before it (the {} after it are evaluated again), then run the same command again",
                at + self.size,
                self.path.display(),
                whole - k - 1
            ),
        )
    }
}

/// One record of format 2 for `row`, `value`, under run tag `tag`.
fn encode(row: u64, value: f64, tag: u32) -> [u8; RECORD] {
    let mut rec = [0u8; RECORD];
    rec[..8].copy_from_slice(&row.to_le_bytes());
    rec[8..16].copy_from_slice(&value.to_le_bytes());
    rec[16..20].copy_from_slice(&tag.to_le_bytes());
    let check = crc32(&rec[..20]);
    rec[20..].copy_from_slice(&check.to_le_bytes());
    rec
}

/// The row and value of a format-2 record written under run tag `tag`, or what is wrong with it.
fn decode(rec: &[u8], tag: u32) -> std::result::Result<(u64, f64), Damage> {
    if rec.iter().all(|&b| b == 0) {
        return Err(Damage::Zeroed);
    }
    let word = |a: usize| {
        let mut w = [0u8; 4];
        w.copy_from_slice(&rec[a..a + 4]);
        u32::from_le_bytes(w)
    };
    let (row, value) = decode_v1(&rec[..RECORD_V1]);
    if crc32(&rec[..20]) != word(20) {
        return Err(Damage::Checksum(row));
    }
    if word(16) != tag {
        return Err(Damage::Foreign(row, word(16)));
    }
    Ok((row, value))
}

/// The row and value of a format-1 record (the first 16 bytes of a format-2 one).
fn decode_v1(rec: &[u8]) -> (u64, f64) {
    let mut row = [0u8; 8];
    let mut value = [0u8; 8];
    row.copy_from_slice(&rec[..8]);
    value.copy_from_slice(&rec[8..RECORD_V1]);
    (u64::from_le_bytes(row), f64::from_le_bytes(value))
}

/// Rewrites a format-1 log at `path` in format 2 (`header`, then `records` in their order) through
/// a temporary file renamed over it; `tail` bytes of a record cut short are left behind.
fn convert(path: &Path, header: &str, records: &[(u64, f64)], tail: usize) -> Result<()> {
    let tag = crc32(header.as_bytes());
    let mut bytes = format!("{header}\n").into_bytes();
    for &(row, value) in records {
        bytes.extend_from_slice(&encode(row, value, tag));
    }
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".convert");
    let tmp = PathBuf::from(tmp);
    let mut file = File::create(&tmp).map_err(|e| Error::file(&tmp, e))?;
    write_synced(&mut file, &bytes, &tmp)?;
    std::fs::rename(&tmp, path).map_err(|e| Error::file(path, e))?;
    if let Some(dir) = path.parent().and_then(|d| File::open(d).ok()) {
        // Makes the rename durable where directories can be synced (not on every OS).
        let _ = dir.sync_all();
    }
    let cut = if tail > 0 {
        format!(" (the last record, cut short at {tail} of {RECORD_V1} bytes, is evaluated again)")
    } else {
        String::new()
    };
    tracing::warn!(
        "{}: converted from format 1 (16-byte records, no checksums) to format {FORMAT}, keeping its {} records{cut}",
        path.display(),
        records.len()
    );
    Ok(())
}

/// An exclusive advisory lock on `LOG.lock` beside a values log, which holds the holder's pid
/// while locked and is emptied on release.
struct LogLock {
    file: Option<File>,
}

impl LogLock {
    /// Locks `log`'s lock file, or names the process that holds it.
    fn acquire(log: &Path) -> Result<LogLock> {
        let mut name = log.as_os_str().to_owned();
        name.push(".lock");
        let path = PathBuf::from(name);
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| Error::file(&path, e))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let mut holder = String::new();
                let _ = file.read_to_string(&mut holder);
                let holder = match holder.trim() {
                    "" => "a process that has not written its pid yet".to_string(),
                    text => text.to_string(),
                };
                return Err(Error::file(
                    log,
                    format!(
                        "is in use by another spex run ({holder}, recorded in {}): two runs on one log would each evaluate every mask; wait for it to finish or stop it, or give this run another output folder",
                        path.display()
                    ),
                ));
            }
            Err(TryLockError::Error(e)) => {
                tracing::warn!(
                    "{}: cannot lock ({e}); going on without a lock: run no other spex on {} meanwhile",
                    path.display(),
                    log.display()
                );
                return Ok(LogLock { file: None });
            }
        }
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| format!(" on host {}", h.trim()))
            .unwrap_or_default();
        let holder = format!("pid {}{host}\n", std::process::id());
        file.set_len(0)
            .and_then(|()| file.write_all(holder.as_bytes()))
            .map_err(|e| Error::file(&path, e))?;
        Ok(LogLock { file: Some(file) })
    }
}

impl Drop for LogLock {
    /// Empties the lock file (its pid is stale from now on) and releases the lock. Unlocking
    /// explicitly, not by closing: a child process forked meanwhile (another thread spawning a
    /// command) shares the open file until it execs, and would hold the lock that long.
    fn drop(&mut self) {
        if let Some(file) = &self.file {
            let _ = file.set_len(0);
            let _ = file.unlock();
        }
    }
}

/// CRC-32 (IEEE 802.3, reflected, as zlib's) lookup table.
const CRC_TABLE: [u32; 256] = crc_table();

const fn crc_table() -> [u32; 256] {
    let mut table = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 == 1 {
                0xEDB8_8320 ^ (c >> 1)
            } else {
                c >> 1
            };
            k += 1;
        }
        table[i] = c;
        i += 1;
    }
    table
}

/// CRC-32 of `bytes` (zlib's `crc32`).
fn crc32(bytes: &[u8]) -> u32 {
    !bytes.iter().fold(!0u32, |c, &b| {
        CRC_TABLE[((c ^ u32::from(b)) & 0xff) as usize] ^ (c >> 8)
    })
}

fn write_synced(file: &mut File, bytes: &[u8], path: &Path) -> Result<()> {
    file.write_all(bytes)
        .and_then(|()| file.sync_data())
        .map_err(|e| Error::file(path, e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn identity() -> Value {
        json!({"plan": "p1", "value": "logprob"})
    }

    /// The header length (with its `\n`) of the log at `p`.
    fn header_len(p: &Path) -> usize {
        let bytes = std::fs::read(p).unwrap();
        bytes.iter().position(|&b| b == b'\n').unwrap() + 1
    }

    fn open_err(p: &Path, id: &Value, rows: usize) -> String {
        ValueStore::open(p, id, rows).err().unwrap().to_string()
    }

    #[test]
    fn crc32_is_zlibs() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
        assert_eq!(crc32(b""), 0);
    }

    #[test]
    fn values_survive_reopening_and_only_missing_rows_remain() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("values.log");
        let mut s = ValueStore::open(&p, &identity(), 5).unwrap();
        assert_eq!(s.missing(0..5), vec![0, 1, 2, 3, 4]);
        s.append(&[3, 0], &[1.5, -2.0]).unwrap();
        drop(s);
        let bytes = std::fs::read(&p).unwrap();
        let h = header_len(&p);
        assert_eq!(
            &bytes[..h],
            b"{\"spex_values_log\":2,\"run\":{\"plan\":\"p1\",\"value\":\"logprob\"}}\n"
        );
        assert_eq!(bytes.len(), h + 2 * RECORD);
        let mut s = ValueStore::open(&p, &identity(), 5).unwrap();
        assert_eq!(s.missing(0..5), vec![1, 2, 4]);
        assert_eq!((s.get(0), s.get(3)), (Some(-2.0), Some(1.5)));
        assert_eq!(s.values(0..5), None);
        s.append(&[1, 2, 4], &[0.25, 0.5, 0.75]).unwrap();
        assert_eq!(s.values(0..5), Some(vec![-2.0, 0.25, 0.5, 1.5, 0.75]));
        assert_eq!(s.values(3..5), Some(vec![1.5, 0.75]));
    }

    #[test]
    fn a_record_cut_short_is_dropped_and_appends_stay_aligned() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("values.log");
        let mut s = ValueStore::open(&p, &identity(), 4).unwrap();
        s.append(&[0, 1], &[1.0, 2.0]).unwrap();
        drop(s);
        // A crash in the middle of the next record.
        let whole = std::fs::read(&p).unwrap().len();
        let mut f = OpenOptions::new().append(true).open(&p).unwrap();
        f.write_all(&encode(2, 3.0, 7)[..9]).unwrap();
        drop(f);
        let mut s = ValueStore::open(&p, &identity(), 4).unwrap();
        assert_eq!(std::fs::read(&p).unwrap().len(), whole, "the tail is cut");
        assert_eq!(s.missing(0..4), vec![2, 3]);
        s.append(&[2], &[3.0]).unwrap();
        drop(s);
        let s = ValueStore::open(&p, &identity(), 4).unwrap();
        assert_eq!((s.get(1), s.get(2), s.get(3)), (Some(2.0), Some(3.0), None));
    }

    #[test]
    fn a_header_cut_short_is_written_again_and_other_headers_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("values.log");
        std::fs::write(&p, b"{\"spex_values_log\":2,\"ru").unwrap();
        let mut s = ValueStore::open(&p, &identity(), 2).unwrap();
        s.append(&[1], &[4.0]).unwrap();
        drop(s);
        assert_eq!(
            ValueStore::open(&p, &identity(), 2).unwrap().get(1),
            Some(4.0)
        );

        std::fs::write(&p, b"not json\n").unwrap();
        assert!(open_err(&p, &identity(), 3).contains("header"));
        std::fs::write(&p, b"no newline").unwrap();
        assert!(open_err(&p, &identity(), 3).contains("not a spex values log"));
        std::fs::write(&p, b"{\"spex_values_log\":3,\"run\":{}}\n").unwrap();
        let err = open_err(&p, &identity(), 3);
        assert!(
            err.contains("format 3") && err.contains("values.log"),
            "{err}"
        );
    }

    #[test]
    fn another_run_and_bad_appends_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("values.log");
        let mut s = ValueStore::open(&p, &identity(), 3).unwrap();
        s.append(&[2], &[1.0]).unwrap();
        assert!(s.append(&[3], &[1.0]).is_err());
        assert!(s.append(&[0], &[f64::NAN]).is_err());
        assert!(s.append(&[0, 1], &[1.0]).is_err());
        let err = s.append(&[2], &[1.0]).unwrap_err().to_string();
        assert!(err.contains("row 2 is stored already"), "{err}");
        assert!(s.append(&[0, 0], &[1.0, 1.0]).is_err());
        assert_eq!(s.missing(0..3), vec![0, 1]);
        drop(s);

        let other = json!({"plan": "p2", "value": "logprob"});
        let err = open_err(&p, &other, 3);
        assert!(
            err.contains("values.log") && err.contains("plan: \"p1\" in the file, \"p2\" now"),
            "{err}"
        );
        // A run over fewer masks cannot take a record for row 2.
        let err = open_err(&p, &identity(), 2);
        assert!(
            err.contains("record 0 ") && err.contains("names row 2, outside this run's 2 masks"),
            "{err}"
        );
    }

    /// A log of rows 0..4 with `damage` applied to its bytes (header length given): the error,
    /// checked to leave the file as it was, to name `record` and to cut at its offset.
    fn damaged(damage: impl Fn(&mut Vec<u8>, usize), record: usize) -> String {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("values.log");
        let mut s = ValueStore::open(&p, &identity(), 6).unwrap();
        s.append(&[0, 1, 2, 3], &[0.5, 1.5, 2.5, 3.5]).unwrap();
        drop(s);
        let h = header_len(&p);
        let mut bytes = std::fs::read(&p).unwrap();
        damage(&mut bytes, h);
        std::fs::write(&p, &bytes).unwrap();
        let err = open_err(&p, &identity(), 6);
        assert_eq!(
            std::fs::read(&p).unwrap(),
            bytes,
            "a damaged log is left as it was"
        );
        let at = h + record * RECORD;
        assert!(
            err.contains(&format!("record {record} (bytes {at}..{})", at + RECORD))
                && err.contains(&format!("truncate -s {at} {}", p.display())),
            "{err}"
        );
        // The advice works: the records before the damage are kept, the rest is missing.
        std::fs::OpenOptions::new()
            .write(true)
            .open(&p)
            .unwrap()
            .set_len(at as u64)
            .unwrap();
        let s = ValueStore::open(&p, &identity(), 6).unwrap();
        let kept: Vec<usize> = (0..6).filter(|&r| s.get(r).is_some()).collect();
        assert_eq!(kept.len(), record.min(4), "{kept:?}");
        err
    }

    #[test]
    fn damaged_repeated_zeroed_and_foreign_records_are_errors_that_say_where_to_cut() {
        // A flipped bit in the value of record 1.
        let err = damaged(|b, h| b[h + RECORD + 9] ^= 0x10, 1);
        assert!(
            err.contains("fails its checksum (it claims row 1)"),
            "{err}"
        );
        // 24 zero bytes appended, as a power loss can leave.
        let err = damaged(|b, _| b.extend_from_slice(&[0; RECORD]), 4);
        assert!(err.contains("all zero bytes"), "{err}");
        // Record 0 again at the end, even with its own value.
        let err = damaged(
            |b, h| {
                let rec = b[h..h + RECORD].to_vec();
                b.extend_from_slice(&rec);
            },
            4,
        );
        assert!(
            err.contains("repeats row 0, which record 0 stores already")
                && err.contains("the 0 after it"),
            "{err}"
        );
        // A record of another run's log (another shard of the plan), for a row this one lacks.
        let err = damaged(
            |b, _| {
                let dir = tempfile::tempdir().unwrap();
                let q = dir.path().join("other.log");
                let mut id = identity();
                id["shard"] = json!("1/2");
                let mut other = ValueStore::open(&q, &id, 6).unwrap();
                other.append(&[5], &[5.5]).unwrap();
                let theirs = std::fs::read(&q).unwrap();
                // Inserted before the last record: the one after it is evaluated again.
                let at = b.len() - RECORD;
                b.splice(at..at, theirs[theirs.len() - RECORD..].iter().copied());
            },
            3,
        );
        assert!(
            err.contains("(row 5) belongs to another run's log") && err.contains("the 1 after it"),
            "{err}"
        );
    }

    #[test]
    fn a_format_1_log_is_read_and_rewritten_in_format_2() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("values.log");
        let v1 = |records: &[(u64, f64)], tail: usize| {
            let mut bytes = format!("{}\n", identity()).into_bytes();
            for &(r, v) in records {
                bytes.extend_from_slice(&r.to_le_bytes());
                bytes.extend_from_slice(&v.to_le_bytes());
            }
            bytes.extend(std::iter::repeat_n(7u8, tail));
            bytes
        };
        std::fs::write(&p, v1(&[(2, 0.5), (0, -1.0)], 5)).unwrap();
        let mut s = ValueStore::open(&p, &identity(), 4).unwrap();
        assert_eq!(s.values(0..4), None);
        assert_eq!(
            (s.get(0), s.get(2), s.missing(0..4)),
            (Some(-1.0), Some(0.5), vec![1, 3])
        );
        s.append(&[1, 3], &[1.0, 3.0]).unwrap();
        drop(s);
        let bytes = std::fs::read(&p).unwrap();
        assert!(bytes.starts_with(b"{\"spex_values_log\":2,\"run\":{"));
        assert_eq!(bytes.len(), header_len(&p) + 4 * RECORD);
        let s = ValueStore::open(&p, &identity(), 4).unwrap();
        assert_eq!(s.values(0..4), Some(vec![-1.0, 1.0, 0.5, 3.0]));
        drop(s);
        assert!(!dir.path().join("values.log.convert").exists());

        // Format 1 has no checksum, but a repeated row is still refused, the file untouched.
        let bad = v1(&[(1, 0.5), (1, 0.5)], 0);
        std::fs::write(&p, &bad).unwrap();
        let err = open_err(&p, &identity(), 4);
        let at = bad.len() - RECORD_V1;
        assert!(
            err.contains("record 1 ") && err.contains(&format!("truncate -s {at} ")),
            "{err}"
        );
        assert_eq!(std::fs::read(&p).unwrap(), bad);
    }

    #[test]
    fn peeking_reads_a_locked_log_without_changing_it() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("values.log");
        assert!(ValueStore::peek(&p, 4).unwrap().is_none());
        let mut s = ValueStore::open(&p, &identity(), 4).unwrap();
        s.append(&[2, 0], &[1.5, -2.0]).unwrap();
        let mut f = OpenOptions::new().append(true).open(&p).unwrap();
        f.write_all(&encode(3, 3.0, 7)[..9]).unwrap();
        let before = std::fs::read(&p).unwrap();
        let (run, values) = ValueStore::peek(&p, 4).unwrap().unwrap();
        assert_eq!(run, identity());
        assert_eq!(values, vec![Some(-2.0), None, Some(1.5), None]);
        assert_eq!(std::fs::read(&p).unwrap(), before, "the cut record stays");
        drop(s);
        std::fs::write(&p, [&before[..before.len() - 9], &[0; RECORD]].concat()).unwrap();
        let e = ValueStore::peek(&p, 4).err().unwrap().to_string();
        assert!(e.contains("all zero bytes"), "{e}");
    }

    #[test]
    fn one_store_per_log_at_a_time_naming_the_holder() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("values-0-of-2.log");
        let lock = dir.path().join("values-0-of-2.log.lock");
        let s = ValueStore::open(&p, &identity(), 3).unwrap();
        let pid = format!("pid {}", std::process::id());
        assert!(std::fs::read_to_string(&lock).unwrap().starts_with(&pid));
        let err = open_err(&p, &identity(), 3);
        assert!(
            err.contains("values-0-of-2.log: is in use by another spex run") && err.contains(&pid),
            "{err}"
        );
        // Another shard's log in the same folder is free.
        let q = dir.path().join("values-1-of-2.log");
        let other = ValueStore::open(&q, &identity(), 3).unwrap();
        drop((s, other));
        assert_eq!(std::fs::read_to_string(&lock).unwrap(), "");
        ValueStore::open(&p, &identity(), 3).unwrap();
    }
}
