//! [`ValueStore`]: an append-only file of `(mask row, value)` records that makes long runs resumable.
//!
//! Layout: one header line, the run's identity as compact JSON ending in `\n`, then 16-byte
//! records: the mask row as a little-endian `u64`, its value as a little-endian `f64`. Each batch
//! of records is written with one call and synced before [`ValueStore::append`] returns, so a
//! crash loses at most the batch in flight. A record cut short by a crash is dropped when the
//! file is reopened; a header that names another run is an error, never a silent mix of values.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::ops::Range;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::{Error, Result};

/// Bytes per record: row (`u64`) then value (`f64`), both little-endian.
const RECORD: usize = 16;

/// The values of one run's masks, as far as they have been computed, backed by an append-only file.
pub struct ValueStore {
    path: PathBuf,
    file: File,
    values: Vec<Option<f64>>,
}

impl ValueStore {
    /// Opens (or creates) the store at `path` for a run over `rows` masks identified by `identity`.
    ///
    /// Errors name the file: a header for another run (listing the fields that differ), a record
    /// for a row outside `0..rows`, a non-finite value, or an I/O failure.
    pub fn open(path: &Path, identity: &Value, rows: usize) -> Result<ValueStore> {
        let header = format!(
            "{}\n",
            serde_json::to_string(identity).map_err(|e| Error::file(path, e))?
        );
        let mut file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(path)
            .map_err(|e| Error::file(path, e))?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes)
            .map_err(|e| Error::file(path, e))?;
        let mut values = vec![None; rows];
        if bytes.is_empty() {
            write_synced(&mut file, header.as_bytes(), path)?;
        } else {
            let body = check_header(path, &bytes, identity)?;
            let whole = body.len() / RECORD * RECORD;
            for (k, rec) in body[..whole].chunks_exact(RECORD).enumerate() {
                let (row, value) = decode(rec);
                if row >= rows as u64 || !value.is_finite() {
                    return Err(Error::file(
                        path,
                        format!(
                            "record {k} (row {row}, value {value}) does not fit a run of {rows} masks with finite values: the file is corrupt; delete it to start over"
                        ),
                    ));
                }
                values[row as usize] = Some(value);
            }
            if whole < body.len() {
                // A record cut short by a crash: drop it so appends stay aligned.
                let keep = (bytes.len() - (body.len() - whole)) as u64;
                file.set_len(keep).map_err(|e| Error::file(path, e))?;
                file.seek(SeekFrom::End(0))
                    .map_err(|e| Error::file(path, e))?;
            }
        }
        Ok(ValueStore {
            path: path.to_path_buf(),
            file,
            values,
        })
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

    /// Records `values[k]` for mask `rows[k]` and syncs the file before returning.
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
        crate::sparse::error::check_finite(values)?;
        let mut buf = Vec::with_capacity(rows.len() * RECORD);
        for (&r, &v) in rows.iter().zip(values) {
            buf.extend_from_slice(&(r as u64).to_le_bytes());
            buf.extend_from_slice(&v.to_le_bytes());
        }
        write_synced(&mut self.file, &buf, &self.path)?;
        for (&r, &v) in rows.iter().zip(values) {
            self.values[r] = Some(v);
        }
        Ok(())
    }
}

/// Splits `bytes` after the header line and checks that it names `identity`; returns the records.
fn check_header<'a>(path: &Path, bytes: &'a [u8], identity: &Value) -> Result<&'a [u8]> {
    let end = bytes.iter().position(|&b| b == b'\n').ok_or_else(|| {
        Error::file(
            path,
            "no header line: not a spex value store (or cut short while it was created); delete it to start over",
        )
    })?;
    let found: Value = serde_json::from_slice(&bytes[..end]).map_err(|e| {
        Error::file(
            path,
            format!("the header is not the JSON spex writes ({e}); delete the file to start over"),
        )
    })?;
    if &found != identity {
        return Err(Error::file(
            path,
            format!(
                "was written for another run ({}); use another output folder, or delete the file to start over",
                differences(&found, identity).join("; ")
            ),
        ));
    }
    Ok(&bytes[end + 1..])
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

/// One record's row and value.
fn decode(rec: &[u8]) -> (u64, f64) {
    let mut row = [0u8; 8];
    let mut value = [0u8; 8];
    row.copy_from_slice(&rec[..8]);
    value.copy_from_slice(&rec[8..RECORD]);
    (u64::from_le_bytes(row), f64::from_le_bytes(value))
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

    #[test]
    fn values_survive_reopening_and_only_missing_rows_remain() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("values.log");
        let mut s = ValueStore::open(&p, &identity(), 5).unwrap();
        assert_eq!(s.missing(0..5), vec![0, 1, 2, 3, 4]);
        s.append(&[3, 0], &[1.5, -2.0]).unwrap();
        drop(s);
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
        let mut f = OpenOptions::new().append(true).open(&p).unwrap();
        f.write_all(&[7u8; 9]).unwrap();
        drop(f);
        let mut s = ValueStore::open(&p, &identity(), 4).unwrap();
        assert_eq!(s.missing(0..4), vec![2, 3]);
        s.append(&[2], &[3.0]).unwrap();
        drop(s);
        let s = ValueStore::open(&p, &identity(), 4).unwrap();
        assert_eq!((s.get(1), s.get(2), s.get(3)), (Some(2.0), Some(3.0), None));
    }

    #[test]
    fn another_run_corruption_and_bad_appends_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("values.log");
        let mut s = ValueStore::open(&p, &identity(), 3).unwrap();
        s.append(&[2], &[1.0]).unwrap();
        assert!(s.append(&[3], &[1.0]).is_err());
        assert!(s.append(&[0], &[f64::NAN]).is_err());
        assert!(s.append(&[0, 1], &[1.0]).is_err());
        assert_eq!(s.missing(0..3), vec![0, 1]);
        drop(s);

        let other = json!({"plan": "p2", "value": "logprob"});
        let err = ValueStore::open(&p, &other, 3).err().unwrap().to_string();
        assert!(
            err.contains("values.log") && err.contains("plan: \"p1\" in the file, \"p2\" now"),
            "{err}"
        );

        // A run over fewer masks cannot take a record for row 2.
        let err = ValueStore::open(&p, &identity(), 2)
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("corrupt"), "{err}");

        std::fs::write(&p, b"not json\n").unwrap();
        let err = ValueStore::open(&p, &identity(), 3)
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("header"), "{err}");
    }
}
