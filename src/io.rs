//! File formats shared by every stage: masks and values as NumPy `.npy`, values as text, JSON.

use std::fs::File;
use std::io::{BufWriter, Read, Write};
use std::path::Path;

use npyz::WriterBuilder;
use serde::Serialize;

use crate::sparse::MaskBatch;
use crate::{Error, Result};

/// Writes `path` whole or not at all: `write` fills the temporary file `.NAME.tmp` in the same
/// folder, which is synced and then renamed over `path`, so a crash never leaves a file cut short
/// (and the next write of the same file replaces the temporary one a crash left).
fn write_atomically(
    path: &Path,
    write: impl FnOnce(&mut BufWriter<File>) -> std::io::Result<()>,
) -> Result<()> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = path.with_file_name(format!(".{name}.tmp"));
    let result = (|| {
        let mut w = BufWriter::new(File::create(&tmp)?);
        write(&mut w)?;
        let file = w
            .into_inner()
            .map_err(std::io::IntoInnerError::into_error)?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.map_err(|e| Error::file(path, e))
}

/// Writes `masks` as a `uint8` `.npy` of shape `[m, n]` (1 = kept).
pub fn write_masks_npy(path: &Path, masks: &MaskBatch) -> Result<()> {
    let m = masks.len() as u64;
    let n = masks.n_players() as u64;
    write_atomically(path, |file| {
        let mut w = npyz::WriteOptions::new()
            .default_dtype()
            .shape(&[m, n])
            .writer(file)
            .begin_nd()?;
        w.extend(masks.to_u8())?;
        w.finish()
    })
}

/// Reads a `[m, n]` mask matrix from `.npy` (dtype `uint8` or `bool`, entries 0/1).
pub fn read_masks_npy(path: &Path) -> Result<MaskBatch> {
    let bytes = std::fs::read(path).map_err(|e| Error::file(path, e))?;
    masks_from_npy(path, &bytes)
}

/// [`read_masks_npy`] on the file's bytes; `path` names it in errors.
pub(crate) fn masks_from_npy(path: &Path, bytes: &[u8]) -> Result<MaskBatch> {
    let npy = open_npy(path, bytes)?;
    let shape = npy.shape().to_vec();
    if shape.len() != 2 {
        return Err(Error::file(
            path,
            format!("masks must be 2-D [m, n], found shape {shape:?}"),
        ));
    }
    let dtype = dtype_name(&npy);
    let data: Vec<u8> = match dtype.as_str() {
        "|u1" => npy.into_vec::<u8>().map_err(|e| Error::file(path, e))?,
        "|b1" => npy
            .into_vec::<bool>()
            .map_err(|e| Error::file(path, e))?
            .into_iter()
            .map(u8::from)
            .collect(),
        other => {
            return Err(Error::file(
                path,
                format!("masks must be uint8 or bool, found dtype {other}"),
            ))
        }
    };
    let n = usize::try_from(shape[1])
        .map_err(|_| Error::file(path, format!("{} players is too many", shape[1])))?;
    Ok(MaskBatch::from_u8(n, &data, &path.display().to_string())?)
}

/// Writes `values` as a `float64` `.npy` of shape `[m]`.
pub fn write_values_npy(path: &Path, values: &[f64]) -> Result<()> {
    write_atomically(path, |file| {
        let mut w = npyz::WriteOptions::new()
            .default_dtype()
            .shape(&[values.len() as u64])
            .writer(file)
            .begin_nd()?;
        w.extend(values.iter().copied())?;
        w.finish()
    })
}

/// Reads values: a `float32`/`float64` `.npy` of shape `[m]` (or `[m, 1]`), or a text file with one
/// number per line (blank lines and `#` comments skipped). Non-finite values are returned as read.
pub fn read_values(path: &Path) -> Result<Vec<f64>> {
    let bytes = std::fs::read(path).map_err(|e| Error::file(path, e))?;
    values_from_bytes(path, &bytes)
}

/// [`read_values`] on the file's bytes; `path` names it in errors.
pub(crate) fn values_from_bytes(path: &Path, bytes: &[u8]) -> Result<Vec<f64>> {
    if bytes.starts_with(NPY_MAGIC) {
        values_from_npy(path, bytes)
    } else {
        values_from_text(path, bytes)
    }
}

fn values_from_npy(path: &Path, bytes: &[u8]) -> Result<Vec<f64>> {
    let npy = open_npy(path, bytes)?;
    let shape = npy.shape().to_vec();
    let ok_shape = shape.len() == 1 || (shape.len() == 2 && shape[1] == 1);
    if !ok_shape {
        return Err(Error::file(
            path,
            format!("values must have shape [m], found {shape:?}"),
        ));
    }
    let dtype = dtype_name(&npy);
    match dtype.as_str() {
        "<f8" => npy.into_vec::<f64>().map_err(|e| Error::file(path, e)),
        "<f4" => Ok(npy
            .into_vec::<f32>()
            .map_err(|e| Error::file(path, e))?
            .into_iter()
            .map(f64::from)
            .collect()),
        other => Err(Error::file(
            path,
            format!("values must be float32 or float64, found dtype {other}"),
        )),
    }
}

fn values_from_text(path: &Path, bytes: &[u8]) -> Result<Vec<f64>> {
    let mut out = Vec::new();
    for (lineno, raw) in bytes.split(|&b| b == b'\n').enumerate() {
        let line = std::str::from_utf8(raw).map_err(|e| {
            Error::file(
                path,
                format!(
                    "line {}: invalid UTF-8 at byte {} of the line (values are numbers, one per line, or a .npy file)",
                    lineno + 1,
                    e.valid_up_to()
                ),
            )
        })?;
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let v: f64 = line.parse().map_err(|_| {
            Error::file(
                path,
                format!("line {}: `{line}` is not a number", lineno + 1),
            )
        })?;
        out.push(v);
    }
    Ok(out)
}

/// The dtype as NumPy writes it in `descr`, without quotes (e.g. `<f8`, `|u1`).
fn dtype_name<R: Read>(npy: &npyz::NpyFile<R>) -> String {
    npy.dtype().descr().trim_matches('\'').to_string()
}

/// The first bytes of every `.npy` file.
const NPY_MAGIC: &[u8] = b"\x93NUMPY";

/// Longest `.npy` header read (NumPy's own reader refuses headers over 10,000 bytes by default).
const MAX_NPY_HEADER: usize = 1 << 16;

/// Deepest bracket nesting read in a `.npy` header (the parser recurses per level).
const MAX_NPY_NESTING: usize = 32;

/// Parses the header of `.npy` bytes, after checking what the parser would trust blindly: the
/// header's length against the file's, and a shape whose element count neither overflows nor
/// exceeds the data the file holds.
fn open_npy<'a>(path: &Path, bytes: &'a [u8]) -> Result<npyz::NpyFile<&'a [u8]>> {
    let bad = |reason: String| Error::file(path, format!("not a valid .npy file: {reason}"));
    if !bytes.starts_with(NPY_MAGIC) || bytes.len() < 10 {
        return Err(bad("no NumPy magic string".into()));
    }
    let (header_len, start) = match bytes[6] {
        1 => (usize::from(u16::from_le_bytes([bytes[8], bytes[9]])), 10),
        2 | 3 if bytes.len() >= 12 => (
            u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize,
            12,
        ),
        v => return Err(bad(format!("format version {v} is not 1, 2 or 3"))),
    };
    let data_start = start + header_len;
    if data_start > bytes.len() {
        return Err(bad(format!(
            "the header claims {header_len} bytes, the file holds {}",
            bytes.len() - start
        )));
    }
    if header_len > MAX_NPY_HEADER {
        return Err(bad(format!(
            "a header of {header_len} bytes (NumPy writes a few hundred; at most {MAX_NPY_HEADER} are read)"
        )));
    }
    let header = String::from_utf8_lossy(&bytes[start..data_start]);
    let mut depth = 0usize;
    for c in header.chars() {
        match c {
            '(' | '[' | '{' => depth += 1,
            ')' | ']' | '}' => depth = depth.saturating_sub(1),
            _ => {}
        }
        if depth > MAX_NPY_NESTING {
            return Err(bad(format!(
                "the header nests deeper than {MAX_NPY_NESTING} levels"
            )));
        }
    }
    let shapes = header_shapes(&header).ok_or_else(|| {
        bad(format!(
            "no readable shape in the header {:?}",
            header.trim_end()
        ))
    })?;
    for shape in &shapes {
        // Zero-length axes count as 1: the parser's strides multiply the others regardless.
        let product = shape
            .iter()
            .try_fold(1u64, |acc, &d| acc.checked_mul(d.max(1)));
        if product.is_none() {
            return Err(bad(format!(
                "shape {shape:?} has more elements than can be counted"
            )));
        }
    }
    let npy = npyz::NpyFile::new(bytes).map_err(|e| bad(e.to_string()))?;
    let shape = npy.shape().to_vec();
    let count = shape.iter().try_fold(1u64, |acc, &d| acc.checked_mul(d));
    let item = npy.dtype().num_bytes().unwrap_or(usize::MAX) as u64;
    let data = (bytes.len() - data_start) as u64;
    if count
        .and_then(|c| c.checked_mul(item))
        .is_none_or(|need| need > data)
    {
        return Err(bad(format!(
            "shape {shape:?} of {item}-byte items needs more than the {data} data bytes the file holds"
        )));
    }
    Ok(npy)
}

/// Every `shape` tuple (or list) in a `.npy` header, e.g. `{'shape': (3, 4), ...}` -> `[[3, 4]]`;
/// `None` when there is none, or one that is not a sequence of integers.
fn header_shapes(header: &str) -> Option<Vec<Vec<u64>>> {
    let mut shapes = Vec::new();
    for key in ["'shape'", "\"shape\""] {
        for (at, _) in header.match_indices(key) {
            let rest = header[at + key.len()..]
                .trim_start()
                .strip_prefix(':')?
                .trim_start();
            let close = match rest.chars().next()? {
                '(' => ')',
                '[' => ']',
                _ => return None,
            };
            let inner = &rest[1..rest.find(close)?];
            let dims = inner
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(|s| s.trim_end_matches('L').parse().ok())
                .collect::<Option<Vec<u64>>>()?;
            shapes.push(dims);
        }
    }
    (!shapes.is_empty()).then_some(shapes)
}

/// Writes `value` as pretty JSON with a trailing newline, whole or not at all.
pub fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<()> {
    write_atomically(path, |w| {
        serde_json::to_writer_pretty(&mut *w, value)?;
        w.write_all(b"\n")
    })
}

/// Writes `text` to `path` whole or not at all, naming the file on failure.
pub fn write_text(path: &Path, text: &str) -> Result<()> {
    write_atomically(path, |w| w.write_all(text.as_bytes()))
}

/// Reads JSON from `path` into `T`, naming the file, the field (`grid.folds`) and the serde
/// error on failure.
pub fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T> {
    let bytes = std::fs::read(path).map_err(|e| Error::file(path, e))?;
    json_from_bytes(path, &bytes)
}

/// [`read_json`] on the file's bytes; `path` names it in errors.
pub fn json_from_bytes<T: serde::de::DeserializeOwned>(path: &Path, bytes: &[u8]) -> Result<T> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value: T = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        // Segments the deserializer could not name (inside a flattened part) print as `?`.
        let field = e.path().to_string();
        let named: Vec<&str> = field
            .split('.')
            .take_while(|s| !s.is_empty() && *s != "?")
            .collect();
        let inner = e.into_inner();
        match named.is_empty() {
            true => Error::file(path, inner),
            false => Error::file(path, format!("field `{}`: {inner}", named.join("."))),
        }
    })?;
    de.end().map_err(|e| Error::file(path, e))?;
    Ok(value)
}

/// Checks that the file `path` can be written, before any work that would be lost if it could
/// not: not a folder, its folder exists, and a file can be created there (an existing file is
/// opened for appending, never truncated; a probe file is removed again).
pub fn check_writable(path: &Path) -> Result<()> {
    if path.is_dir() {
        return Err(Error::file(path, "is a folder; a file name is needed here"));
    }
    if path.exists() {
        return std::fs::OpenOptions::new()
            .append(true)
            .open(path)
            .map(drop)
            .map_err(|e| Error::file(path, format!("cannot be written: {e}")));
    }
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    if !parent.is_dir() {
        return Err(Error::file(
            path,
            format!(
                "cannot be written: the folder {} does not exist",
                parent.display()
            ),
        ));
    }
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .map_err(|e| Error::file(path, format!("cannot be written: {e}")))?;
    std::fs::remove_file(path).map_err(|e| Error::file(path, e))
}

/// Checks that files can be created in the folder `dir`: creates the probe `.spex-write-check`
/// and removes it again. The name is fixed, as the temporary files of [`write_atomically`] are,
/// so a probe left by a killed run is removed by the next check (a per-process name would stay);
/// a probe another process removed first is no error.
pub fn check_writable_dir(dir: &Path) -> Result<()> {
    let probe = dir.join(".spex-write-check");
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(&probe)
        .map_err(|e| Error::file(dir, format!("cannot write in this folder: {e}")))?;
    match std::fs::remove_file(&probe) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(Error::file(&probe, e)),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_write_check_removes_a_probe_a_killed_run_left() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(".spex-write-check"), "left by a killed run").unwrap();
        check_writable_dir(dir.path()).unwrap();
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn writes_are_whole_or_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("plan.json");
        write_json(&path, &serde_json::json!({"a": 1})).unwrap();
        write_text(&path, "{\"b\": 2}\n").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "{\"b\": 2}\n");
        // A value that fails to serialise leaves the file as it was, and no temporary file.
        let bad: std::collections::HashMap<(u8, u8), u8> = [((1, 2), 3)].into();
        assert!(write_json(&path, &bad).is_err());
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "{\"b\": 2}\n");
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["plan.json"]);
    }

    #[test]
    fn masks_and_values_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let mut masks = MaskBatch::new(5);
        masks.push_bools(&[true, false, true, true, false]);
        masks.push_bools(&[false; 5]);
        let p = dir.path().join("masks.npy");
        write_masks_npy(&p, &masks).unwrap();
        assert_eq!(read_masks_npy(&p).unwrap(), masks);

        let values = vec![0.5, -1.25, f64::NAN];
        let v = dir.path().join("values.npy");
        write_values_npy(&v, &values).unwrap();
        let back = read_values(&v).unwrap();
        assert_eq!(back[..2], values[..2]);
        assert!(back[2].is_nan());
    }

    #[test]
    fn text_values_name_the_bad_line() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("v.txt");
        std::fs::write(&p, "1.0\n# comment\n\n2e-3\nabc\n").unwrap();
        let err = read_values(&p).unwrap_err().to_string();
        assert!(err.contains("line 5"), "{err}");
        std::fs::write(&p, "1.0\n2e-3\n").unwrap();
        assert_eq!(read_values(&p).unwrap(), vec![1.0, 2e-3]);
    }

    #[test]
    fn wrong_dtype_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("m.npy");
        write_values_npy(&p, &[1.0, 0.0]).unwrap();
        let err = read_masks_npy(&p).unwrap_err().to_string();
        assert!(err.contains("2-D") || err.contains("dtype"), "{err}");
    }
}
