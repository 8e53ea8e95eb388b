//! `spex._spex`: the Rust half of the `spex` Python package.
//!
//! Thin bindings over the library: [`Plan`] wraps a [`spex::sparse::plan::Plan`] and its masks
//! (made by [`spex::run::Design::plan`], written by [`spex::run::plan_dir::write_plan`]),
//! [`Decoded`] wraps [`spex::run::decode()`]'s result (written as `spex solve` writes it), and
//! [`Spectrum`] evaluates a decoded spectrum on new masks. The model jobs live in [`jobs`].
//! Everything the user calls is in `python/spex/*.py`, which checks the game's values; long Rust
//! work runs with the GIL released.

use std::path::PathBuf;

use numpy::ndarray::Array2;
use numpy::{
    IntoPyArray, PyArray1, PyArray2, PyReadonlyArray1, PyReadonlyArray2, PyUntypedArrayMethods,
};
use pyo3::exceptions::{PyFileNotFoundError, PyMemoryError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyTuple;

mod jobs;

use spex::io::write_json;
use spex::report::spectrum_file::SpectrumFile;
use spex::run::plan_dir::{read_plan, read_plan_masks, write_plan};
use spex::run::{decode, DecodeOptions, Design, Method, Refit};
use spex::sparse::indices::{interaction_values, Index};
use spex::sparse::plan::{Plan as SparsePlan, PlanFile};
use spex::sparse::proxy::ProxyPlan;
use spex::sparse::spex::Decoder;
use spex::sparse::{MaskBatch, Subset};

/// The keyword argument of the Python API that sets each field the library names in its errors.
const KWARGS: &[(&str, &str)] = &[
    ("keep_probability", "keep_prob"),
    ("max_degree", "degree"),
    ("n", "n"),
];

/// The keyword argument that sets `field` (the field's own name when the API spells it the same).
fn kwarg_of(field: &str) -> &str {
    KWARGS
        .iter()
        .find(|(f, _)| *f == field)
        .map_or(field, |(_, k)| k)
}

/// The field an error names, looking through the library's wrappers.
fn field_of(err: &spex::Error) -> Option<String> {
    match err {
        spex::Error::InvalidArgument { field, .. } => Some(field.clone()),
        spex::Error::Sparse(inner) => sparse_field_of(inner),
        _ => None,
    }
}

/// The field a math error names.
fn sparse_field_of(err: &spex::sparse::Error) -> Option<String> {
    match err {
        spex::sparse::Error::InvalidArgument { field, .. }
        | spex::sparse::Error::InsufficientMemory { field, .. } => Some(field.clone()),
        spex::sparse::Error::BudgetTooSmall { .. } => Some("budget".into()),
        _ => None,
    }
}

/// The error's message with every cause its own text does not already hold (as the CLI's `{:#}`).
fn chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(s) = source {
        let t = s.to_string();
        if !text.contains(&t) {
            text.push_str(": ");
            text.push_str(&t);
        }
        source = s.source();
    }
    text
}

/// A library error as a Python exception: `ValueError` naming the keyword argument at fault (as
/// the CLI names the flag), `FileNotFoundError` for a missing file, `MemoryError` for a budget
/// beyond memory.
fn to_py(err: spex::Error) -> PyErr {
    let text = chain(&err);
    let text = match field_of(&err) {
        Some(field) => format!("{}: {text}", kwarg_of(&field)),
        None => text,
    };
    match &err {
        spex::Error::File { path, .. } if !path.exists() => PyFileNotFoundError::new_err(text),
        spex::Error::Sparse(spex::sparse::Error::File { path, .. }) if !path.exists() => {
            PyFileNotFoundError::new_err(text)
        }
        spex::Error::Sparse(spex::sparse::Error::InsufficientMemory { .. }) => {
            PyMemoryError::new_err(text)
        }
        _ => PyValueError::new_err(text),
    }
}

/// A math error as a Python exception (see [`to_py`]).
fn sparse_to_py(err: spex::sparse::Error) -> PyErr {
    to_py(spex::Error::Sparse(err))
}

/// Parses an index name as shapiq spells it (`k-SII`, `FBII`, ...).
fn parse_index(index: &str) -> PyResult<Index> {
    index.parse().map_err(sparse_to_py)
}

/// Parses a decoder's method: `spex` or `proxyspex`.
fn parse_method(method: &str) -> PyResult<Method> {
    match method {
        "spex" => Ok(Method::Spex),
        "proxyspex" => Ok(Method::ProxySpex),
        other => Err(PyValueError::new_err(format!(
            "method: invalid `method`: unknown method `{other}`; valid: spex, proxyspex"
        ))),
    }
}

/// Parses SPEX's singleton decoder: `soft` or `hard`.
fn parse_decoder(decoder: &str) -> PyResult<Decoder> {
    match decoder {
        "soft" => Ok(Decoder::Soft),
        "hard" => Ok(Decoder::Hard),
        other => Err(PyValueError::new_err(format!(
            "decoder: invalid `decoder`: unknown decoder `{other}`; valid: soft, hard"
        ))),
    }
}

/// Parses ProxySPEX's refit: `cv`, `reference` or `centred`.
fn parse_refit(refit: &str) -> PyResult<Refit> {
    match refit {
        "cv" => Ok(Refit::Cv),
        "reference" => Ok(Refit::Reference),
        "centred" | "centered" => Ok(Refit::Centred),
        other => Err(PyValueError::new_err(format!(
            "refit: invalid `refit`: unknown refit `{other}`; valid: cv, reference, centred"
        ))),
    }
}

/// The decode options of `index`, `max_order` and `refit`, checked.
fn decode_options(index: &str, max_order: Option<usize>, refit: &str) -> PyResult<DecodeOptions> {
    let options = DecodeOptions {
        index: parse_index(index)?,
        max_order,
        refit: parse_refit(refit)?,
    };
    options.check().map_err(to_py)?;
    Ok(options)
}

/// Checks an index, order and refit before any evaluation, as the CLI does before a run.
#[pyfunction]
#[pyo3(signature = (index, max_order=None, refit="cv"))]
fn check_decode_options(index: &str, max_order: Option<usize>, refit: &str) -> PyResult<()> {
    decode_options(index, max_order, refit).map(|_| ())
}

/// Masks `[m, n]` as a NumPy `uint8` array of 0/1, unpacked from the packed words row by row.
fn masks_to_numpy<'py>(py: Python<'py>, masks: &MaskBatch) -> Bound<'py, PyArray2<u8>> {
    let (m, n) = (masks.len(), masks.n_players());
    let unpacked = py.detach(|| {
        let mut out = vec![0u8; m * n];
        for (r, row) in out.chunks_mut(n.max(1)).enumerate().take(m) {
            let words = masks.row_words(r);
            for (i, byte) in row.iter_mut().enumerate() {
                *byte = (words[i / 64] >> (i % 64) & 1) as u8;
            }
        }
        out
    });
    // The shape is m * n by construction.
    Array2::from_shape_vec((m, n), unpacked)
        .unwrap_or_else(|_| Array2::zeros((m, n)))
        .into_pyarray(py)
}

/// A NumPy `uint8` `[m, n]` array of 0/1 as a mask batch; `source` names it in errors.
fn masks_from_numpy(masks: &PyReadonlyArray2<'_, u8>, source: &str) -> PyResult<MaskBatch> {
    let shape = masks.shape();
    let n = shape[1];
    let data: Vec<u8> = match masks.as_slice() {
        Ok(s) => s.to_vec(),
        Err(_) => masks.as_array().iter().copied().collect(),
    };
    MaskBatch::from_u8(n, &data, source).map_err(sparse_to_py)
}

/// A decoder's plan and its masks: what `spex plan` writes as plan.json and masks.npy.
#[pyclass(module = "spex._spex", frozen)]
pub struct Plan {
    plan: SparsePlan,
    masks: MaskBatch,
}

#[pymethods]
impl Plan {
    /// The plan of a design over `n` players (`Design::plan`), with its masks; the GIL is released
    /// while the masks are made.
    #[staticmethod]
    #[pyo3(signature = (n, method, budget, degree, decoder, seed, keep_prob))]
    #[allow(clippy::too_many_arguments)] // the CLI's flags of `spex plan`, one by one
    fn new(
        py: Python<'_>,
        n: usize,
        method: &str,
        budget: usize,
        degree: usize,
        decoder: &str,
        seed: u64,
        keep_prob: f64,
    ) -> PyResult<Plan> {
        let method = parse_method(method)?;
        let decoder = parse_decoder(decoder)?;
        let design = Design {
            method,
            budget,
            degree,
            decoder,
            seed,
            keep_probability: keep_prob,
        };
        let (plan, masks) = py
            .detach(|| {
                let plan = design.plan(n)?;
                let masks = plan.masks()?;
                Ok((plan, masks))
            })
            .map_err(to_py)?;
        Ok(Plan { plan, masks })
    }

    /// The plan in folder `dir` (plan.json and masks.npy, checked against each other), as
    /// `spex solve` reads it.
    #[staticmethod]
    fn read(py: Python<'_>, dir: PathBuf) -> PyResult<Plan> {
        py.detach(|| {
            let file = read_plan(&dir)?;
            let masks = read_plan_masks(&dir, &file.plan)?;
            Ok(Plan {
                plan: file.plan,
                masks,
            })
        })
        .map_err(to_py)
    }

    /// A plan from the text of a plan.json (checked as `spex solve` checks the file); `source`
    /// names it in errors.
    #[staticmethod]
    fn from_json(py: Python<'_>, text: &str, source: PathBuf) -> PyResult<Plan> {
        py.detach(|| {
            let file: PlanFile = spex::io::json_from_bytes(&source, text.as_bytes())?;
            file.validate(&source)?;
            let masks = file.plan.masks()?;
            Ok(Plan {
                plan: file.plan,
                masks,
            })
        })
        .map_err(to_py)
    }

    /// ProxySPEX's plan decoding given masks `[m, n]` (uint8 0/1) instead of its own draws: the
    /// budget is their number.
    #[staticmethod]
    fn proxyspex_on(py: Python<'_>, masks: PyReadonlyArray2<'_, u8>, seed: u64) -> PyResult<Plan> {
        let masks = masks_from_numpy(&masks, "masks")?;
        let n = masks.n_players();
        let plan = py
            .detach(|| ProxyPlan::new(n, masks.len(), seed))
            .map_err(sparse_to_py)?;
        Ok(Plan {
            plan: SparsePlan::ProxySpex(plan),
            masks,
        })
    }

    /// Writes plan.json and masks.npy into `dir` with `spex plan`'s own function (`write_plan`).
    fn write(&self, py: Python<'_>, dir: PathBuf) -> PyResult<()> {
        py.detach(|| write_plan(&dir, &self.plan).map(|_| ()))
            .map_err(to_py)
    }

    /// The masks to evaluate, `[m, n]` uint8 (1 keeps the player), in the decoder's row order.
    fn masks<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray2<u8>> {
        masks_to_numpy(py, &self.masks)
    }

    /// plan.json's text (pretty JSON, as `spex plan` writes it, less the trailing newline).
    fn to_json(&self) -> PyResult<String> {
        serde_json::to_string_pretty(&self.plan.to_file())
            .map_err(|e| PyValueError::new_err(format!("plan: cannot serialise: {e}")))
    }

    /// Number of players n.
    #[getter]
    fn n_players(&self) -> usize {
        self.plan.n_players()
    }

    /// Number of masks m.
    #[getter]
    fn n_queries(&self) -> usize {
        self.masks.len()
    }

    /// `spex` or `proxyspex`.
    #[getter]
    fn method(&self) -> &'static str {
        self.plan.method()
    }

    /// Decodes one value per mask (`run::decode`, as `spex solve`), GIL released.
    #[pyo3(signature = (values, index="k-SII", max_order=None, refit="cv"))]
    fn decode(
        &self,
        py: Python<'_>,
        values: PyReadonlyArray1<'_, f64>,
        index: &str,
        max_order: Option<usize>,
        refit: &str,
    ) -> PyResult<Decoded> {
        let options = decode_options(index, max_order, refit)?;
        let values: Vec<f64> = values.as_array().to_vec();
        let d = py
            .detach(|| decode(&self.plan, &self.masks, &values, &options))
            .map_err(to_py)?;
        Ok(Decoded::new(
            d,
            matches!(self.plan, SparsePlan::ProxySpex(_)).then(|| options.refit.name()),
        ))
    }
}

/// One decoded run: the spectrum, the chosen index and interactions.json's report.
#[pyclass(module = "spex._spex", frozen)]
pub struct Decoded {
    inner: spex::run::Decoded,
    refit: Option<&'static str>,
}

/// `(players, value)` pairs of `entries`, players as a Python tuple.
fn pairs<'py, 'a>(
    py: Python<'py>,
    entries: impl Iterator<Item = (&'a Subset, f64)>,
) -> PyResult<Vec<(Bound<'py, PyTuple>, f64)>> {
    entries
        .map(|(s, v)| Ok((PyTuple::new(py, s.indices())?, v)))
        .collect()
}

impl Decoded {
    /// A decoded run and ProxySPEX's refit (`None` for SPEX).
    fn new(inner: spex::run::Decoded, refit: Option<&'static str>) -> Self {
        Decoded { inner, refit }
    }
}

#[pymethods]
impl Decoded {
    /// The Fourier spectrum.
    #[getter]
    fn spectrum(&self) -> Spectrum {
        Spectrum {
            inner: self.inner.spectrum.clone(),
        }
    }

    /// The index's name as shapiq spells it.
    #[getter]
    fn index(&self) -> &'static str {
        self.inner.interactions.index.name()
    }

    /// Largest interaction order reported.
    #[getter]
    fn max_order(&self) -> usize {
        self.inner.interactions.max_order
    }

    /// Number of players.
    #[getter]
    fn n_players(&self) -> usize {
        self.inner.interactions.n_players
    }

    /// `f(∅)`, the value with every player removed.
    #[getter]
    fn baseline_value(&self) -> f64 {
        self.inner.interactions.baseline_value
    }

    /// R^2 of the spectrum on the queried masks.
    #[getter]
    fn r2_queried(&self) -> f64 {
        self.inner.report.r2_queried
    }

    /// Number of evaluations decoded.
    #[getter]
    fn queries(&self) -> usize {
        self.inner.report.queries
    }

    /// The decoder: `spex` or `proxyspex`.
    #[getter]
    fn method(&self) -> String {
        self.inner.report.method.clone()
    }

    /// ProxySPEX's refit (`cv`, `reference`, `centred`); `None` for SPEX.
    #[getter]
    fn refit(&self) -> Option<&'static str> {
        self.refit
    }

    /// The index values in subset order (size, then players): `[(players, value)]`.
    fn interactions<'py>(&self, py: Python<'py>) -> PyResult<Vec<(Bound<'py, PyTuple>, f64)>> {
        pairs(
            py,
            self.inner.interactions.values.iter().map(|(s, &v)| (s, v)),
        )
    }

    /// Warnings of a spectrum that explains less than R^2 0.5 of the values: `[(r2, unseen)]`.
    fn warnings(&self) -> Vec<(f64, Option<usize>)> {
        self.inner
            .warnings
            .iter()
            .map(|w| (w.r2, w.unseen))
            .collect()
    }

    /// Writes interactions.json (and spectrum.json when given) exactly as `spex solve` does.
    #[pyo3(signature = (out, spectrum=None))]
    fn write(&self, py: Python<'_>, out: PathBuf, spectrum: Option<PathBuf>) -> PyResult<()> {
        py.detach(|| {
            write_json(&out, &self.inner.report)?;
            if let Some(path) = &spectrum {
                write_json(path, &SpectrumFile::new(&self.inner.spectrum))?;
            }
            Ok(())
        })
        .map_err(to_py)
    }
}

/// A sparse function `{0,1}^n -> R` in the Fourier (or Moebius) basis.
#[pyclass(module = "spex._spex", frozen)]
pub struct Spectrum {
    inner: spex::sparse::Spectrum,
}

#[pymethods]
impl Spectrum {
    /// A spectrum from `[(players, value)]` in `basis` (`fourier` or `moebius`) over `n` players.
    #[staticmethod]
    fn from_terms(n: usize, basis: &str, terms: Vec<(Vec<u32>, f64)>) -> PyResult<Spectrum> {
        let basis = match basis {
            "fourier" => spex::sparse::Basis::Fourier,
            "moebius" => spex::sparse::Basis::Moebius,
            other => {
                return Err(PyValueError::new_err(format!(
                    "basis: unknown basis `{other}`; valid: fourier, moebius"
                )))
            }
        };
        let mut inner = spex::sparse::Spectrum::new(n, basis);
        for (k, (players, value)) in terms.into_iter().enumerate() {
            if let Some(p) = players.iter().find(|&&p| p as usize >= n) {
                return Err(PyValueError::new_err(format!(
                    "terms: term {k} names player {p}, but n = {n}"
                )));
            }
            inner.add(Subset::from_indices(players), value);
        }
        Ok(Spectrum { inner })
    }

    /// Number of players n.
    #[getter]
    fn n_players(&self) -> usize {
        self.inner.n_players()
    }

    /// `fourier` or `moebius`.
    #[getter]
    fn basis(&self) -> &'static str {
        match self.inner.basis() {
            spex::sparse::Basis::Fourier => "fourier",
            spex::sparse::Basis::Moebius => "moebius",
        }
    }

    /// The non-zero coefficients in subset order: `[(players, value)]`.
    fn terms<'py>(&self, py: Python<'py>) -> PyResult<Vec<(Bound<'py, PyTuple>, f64)>> {
        pairs(py, self.inner.iter())
    }

    /// The function's value on each mask of `masks` (`[m, n]` uint8 0/1): `[m]` floats.
    fn evaluate<'py>(
        &self,
        py: Python<'py>,
        masks: PyReadonlyArray2<'py, u8>,
    ) -> PyResult<Bound<'py, PyArray1<f64>>> {
        let n = masks.shape()[1];
        if n != self.inner.n_players() {
            return Err(PyValueError::new_err(format!(
                "masks: {n} columns, but the spectrum is over n = {} players",
                self.inner.n_players()
            )));
        }
        let masks = masks_from_numpy(&masks, "masks")?;
        let values = py.detach(|| self.inner.eval(&masks));
        Ok(values.into_pyarray(py))
    }

    /// The same function in the Moebius basis.
    fn to_moebius(&self, py: Python<'_>) -> Spectrum {
        Spectrum {
            inner: py.detach(|| self.inner.to_moebius()),
        }
    }

    /// The same function in the Fourier basis.
    fn to_fourier(&self, py: Python<'_>) -> Spectrum {
        Spectrum {
            inner: py.detach(|| self.inner.to_fourier()),
        }
    }

    /// Values of an interaction index up to `max_order`: `(name, baseline, [(players, value)])`.
    #[allow(clippy::type_complexity)]
    fn index<'py>(
        &self,
        py: Python<'py>,
        index: &str,
        max_order: usize,
    ) -> PyResult<(&'static str, f64, Vec<(Bound<'py, PyTuple>, f64)>)> {
        let index = parse_index(index)?;
        let values = py
            .detach(|| interaction_values(&self.inner, index, max_order))
            .map_err(sparse_to_py)?;
        Ok((
            values.index.name(),
            values.baseline_value,
            pairs(py, values.values.iter().map(|(s, &v)| (s, v)))?,
        ))
    }
}

/// The extension module `spex._spex`.
#[pymodule]
fn _spex(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<Plan>()?;
    m.add_class::<Decoded>()?;
    m.add_class::<Spectrum>()?;
    m.add_function(wrap_pyfunction!(check_decode_options, m)?)?;
    m.add_function(wrap_pyfunction!(jobs::heads_job, m)?)?;
    m.add_function(wrap_pyfunction!(jobs::head_groups_job, m)?)?;
    m.add_function(wrap_pyfunction!(jobs::tokens_job, m)?)?;
    m.add_function(wrap_pyfunction!(jobs::eval_job, m)?)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;

    Ok(())
}
