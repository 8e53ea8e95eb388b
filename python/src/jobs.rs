//! The model jobs from Python: `spex.heads`, `spex.tokens` and `spex.eval` run the library's jobs
//! ([`spex::run::heads()`], [`spex::run::tokens()`], [`spex::run::accuracy::accuracy`]) from the
//! CLI's options as keyword arguments (one dict, read field by field), with the GIL released.
//! [`PyWatch`] tells a Python callback each stored batch and stops the job on Ctrl-C between two
//! batches: what is stored stays, and the same call again resumes.

use std::ops::{ControlFlow, Range};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyDict;

use spex::ablate::{parse_layer_range, Granularity};
use spex::io::{check_writable, write_json};
use spex::progress::Watch;
use spex::run::accuracy::{accuracy, AccuracyOptions};
use spex::run::groups::{check_groups, group_folder, head_groups};
use spex::run::inputs::{load_questions, HeadValueSpec, ModelSpec};
use spex::run::{Ablation, DecodeOptions, Design, OneShot, OneShotOptions, TokenOptions};
use spex::task::{default_data_dir, TaskSpec};

use super::{parse_decoder, parse_method, parse_refit, to_py, Decoded};

/// `model`, `revision`, `device`, `dtype`.
#[derive(FromPyObject)]
#[pyo3(from_item_all)]
struct ModelKw {
    model: Option<String>,
    revision: Option<String>,
    device: String,
    dtype: String,
}

impl ModelKw {
    fn spec(self) -> ModelSpec {
        ModelSpec {
            model: self.model,
            revision: self.revision,
            device: self.device,
            dtype: self.dtype,
        }
    }
}

/// `task`, `data_dir`, `subjects`, `split`, `offset`, `limit`, `shots`, `strict`, `format`.
#[derive(FromPyObject)]
#[pyo3(from_item_all)]
struct TaskKw {
    task: String,
    data_dir: Option<PathBuf>,
    subjects: String,
    split: Option<String>,
    offset: usize,
    limit: Option<usize>,
    shots: usize,
    strict: bool,
    format: Option<String>,
}

impl TaskKw {
    fn spec(self) -> PyResult<TaskSpec> {
        if self.shots > 5 {
            return Err(PyValueError::new_err(format!(
                "shots: {} few-shot examples asked for; 0 to 5 are supported",
                self.shots
            )));
        }
        let task: spex::task::TaskName = self.task.parse().map_err(to_py)?;
        let split = match &self.split {
            Some(s) => s.parse().map_err(to_py)?,
            None => task.default_split(),
        };
        Ok(TaskSpec {
            data_dir: self.data_dir.unwrap_or_else(default_data_dir),
            subjects: self.subjects.parse().map_err(to_py)?,
            split,
            offset: self.offset,
            limit: self.limit,
            shots: self.shots,
            strict: self.strict,
            format: self.format.map(|f| f.parse()).transpose().map_err(to_py)?,
            task,
        })
    }
}

/// The design, the index and the output folder of a one-shot job.
#[derive(FromPyObject)]
#[pyo3(from_item_all)]
struct OneShotKw {
    method: String,
    budget: usize,
    degree: usize,
    decoder: String,
    seed: u64,
    keep_prob: f64,
    index: String,
    max_order: Option<usize>,
    refit: String,
    out: PathBuf,
    held_out: Option<usize>,
}

impl OneShotKw {
    fn options(self) -> PyResult<OneShotOptions> {
        let decode = DecodeOptions {
            index: self.index.parse().map_err(super::sparse_to_py)?,
            max_order: self.max_order,
            refit: parse_refit(&self.refit)?,
        };
        decode.check().map_err(to_py)?;
        Ok(OneShotOptions {
            design: Design {
                method: parse_method(&self.method)?,
                budget: self.budget,
                degree: self.degree,
                decoder: parse_decoder(&self.decoder)?,
                seed: self.seed,
                keep_probability: self.keep_prob,
            },
            decode,
            out: self.out,
            held_out: self.held_out,
        })
    }
}

/// `ablation` and `mean_prompts`.
#[derive(FromPyObject)]
#[pyo3(from_item_all)]
struct AblationKw {
    ablation: String,
    mean_prompts: Option<PathBuf>,
    max_batch_tokens: Option<usize>,
}

impl AblationKw {
    fn ablation(&self) -> PyResult<Ablation> {
        match self.ablation.as_str() {
            "zero" => Ok(Ablation::Zero),
            "mean" => Ok(Ablation::Mean),
            "rescale" => Ok(Ablation::Rescale),
            other => Err(PyValueError::new_err(format!(
                "ablation: unknown ablation `{other}`; valid: zero, mean, rescale"
            ))),
        }
    }
}

/// `value`, `layers`, `top_edges`.
#[derive(FromPyObject)]
#[pyo3(from_item_all)]
struct HeadKw {
    value: Option<String>,
    layers: Option<String>,
    top_edges: usize,
}

/// `groups`: layer groups, each its own game.
#[derive(FromPyObject)]
#[pyo3(from_item_all)]
struct GroupsKw {
    groups: Vec<String>,
    layers: Option<String>,
}

/// A layer range such as `27-29` or `25`.
fn parse_layers(layers: &str) -> PyResult<Range<usize>> {
    parse_layer_range(layers).map_err(|e| PyValueError::new_err(format!("layers: {e}")))
}

/// The head value settings of `kwargs`.
fn head_value_spec(kwargs: &Bound<'_, PyDict>) -> PyResult<(HeadValueSpec, usize)> {
    let head: HeadKw = kwargs.extract()?;
    let ablation: AblationKw = kwargs.extract()?;
    let model: ModelKw = kwargs.extract()?;
    let task: TaskKw = kwargs.extract()?;
    let spec = HeadValueSpec {
        model: model.spec(),
        task: task.spec()?,
        value: head.value.map(|v| v.parse()).transpose().map_err(to_py)?,
        ablation: ablation.ablation()?,
        mean_prompts: ablation.mean_prompts,
        max_batch_tokens: ablation.max_batch_tokens,
        layers: head.layers.as_deref().map(parse_layers).transpose()?,
    };
    Ok((spec, head.top_edges))
}

/// A [`Watch`] for a job run from Python with the GIL released: between two stored batches it
/// takes the GIL, stops the job on a pending signal (Ctrl-C: `KeyboardInterrupt`) or an exception
/// from `callback`, and otherwise tells `callback(event, store, count, total)`.
struct PyWatch {
    callback: Option<Py<PyAny>>,
    total: usize,
    /// The Python exception that stopped the job, raised once the job returns.
    raised: Option<PyErr>,
}

impl PyWatch {
    fn new(callback: Option<Py<PyAny>>) -> Self {
        PyWatch {
            callback,
            total: 0,
            raised: None,
        }
    }

    /// Calls the callback (if any) after checking for signals; `Break` when either raised.
    fn tell(&mut self, event: &str, store: Option<&Path>, count: usize) -> ControlFlow<()> {
        let total = self.total;
        let result = Python::attach(|py| {
            py.check_signals()?;
            if let Some(cb) = &self.callback {
                let store = store.map(|p| p.display().to_string());
                cb.call1(py, (event, store, count, total))?;
            }
            Ok::<(), PyErr>(())
        });
        match result {
            Ok(()) => ControlFlow::Continue(()),
            Err(err) => {
                self.raised.get_or_insert(err);
                ControlFlow::Break(())
            }
        }
    }

    /// The job's result as a Python result: the exception raised while it ran (Ctrl-C during its
    /// last batch included: the files are complete, and the same call returns them at once), else
    /// its error or value.
    fn finish<T>(self, result: spex::Result<T>) -> PyResult<T> {
        match (result, self.raised) {
            (_, Some(raised)) => Err(raised),
            (result, None) => result.map_err(to_py),
        }
    }
}

impl Watch for PyWatch {
    fn begin(&mut self, store: &Path, total: usize, done: usize) -> ControlFlow<()> {
        self.total = total;
        if self.raised.is_some() {
            return ControlFlow::Break(());
        }
        self.tell("begin", Some(store), done)
    }

    fn advance(&mut self, k: usize) -> ControlFlow<()> {
        if self.raised.is_some() {
            return ControlFlow::Break(());
        }
        self.tell("advance", None, k)
    }

    fn end(&mut self) {
        let _ = self.tell("end", None, 0);
    }
}

/// What a one-shot job hands back: the decoded result and the held-out check's R^2 and size.
type OneShotResult = (Decoded, Option<f64>, usize);

fn one_shot_result(done: OneShot, options: &OneShotOptions) -> OneShotResult {
    let refit = matches!(options.design.method, spex::run::Method::ProxySpex)
        .then(|| options.decode.refit.name());
    let r2 = done.decoded.report.r2_held_out;
    let held_out = done.decoded.report.held_out;
    (Decoded::new(done.decoded, refit), r2, held_out)
}

/// `spex heads` from Python: the head attribution written into `kwargs["out"]` (resumable).
#[pyfunction]
#[pyo3(signature = (kwargs, callback=None))]
pub fn heads_job(
    py: Python<'_>,
    kwargs: &Bound<'_, PyDict>,
    callback: Option<Py<PyAny>>,
) -> PyResult<OneShotResult> {
    let (spec, top_edges) = head_value_spec(kwargs)?;
    let options = kwargs.extract::<OneShotKw>()?.options()?;
    let mut watch = PyWatch::new(callback);
    let result = py.detach(|| {
        let hv = spec
            .load_checked(|players| spex::run::one_shot::check(&options, players.n()).map(drop))?;
        spex::run::heads(&hv, &options, top_edges, &mut watch)
    });
    let run = watch.finish(result)?;
    Ok(one_shot_result(run.done, &options))
}

/// `spex heads --groups` from Python: every layer group its own head game in
/// `kwargs["out"]/layers-A-B` (resumable), then groups.json; per group its folder and result.
#[pyfunction]
#[pyo3(signature = (kwargs, callback=None))]
pub fn head_groups_job(
    py: Python<'_>,
    kwargs: &Bound<'_, PyDict>,
    callback: Option<Py<PyAny>>,
) -> PyResult<Vec<(PathBuf, OneShotResult)>> {
    let groups: GroupsKw = kwargs.extract()?;
    if let Some(layers) = groups.layers {
        return Err(PyValueError::new_err(format!(
            "layers: `layers` ({layers}) and `groups` exclude each other; each group names its layers"
        )));
    }
    let ranges = groups
        .groups
        .iter()
        .map(|g| {
            parse_layers(g).map_err(|_| {
                PyValueError::new_err(format!("groups: '{g}' is not a layer range like 27-29"))
            })
        })
        .collect::<PyResult<Vec<_>>>()?;
    let (spec, top_edges) = head_value_spec(kwargs)?;
    let options = kwargs.extract::<OneShotKw>()?.options()?;
    let mut watch = PyWatch::new(callback);
    let result = py.detach(|| {
        let mut hv = spec.load_checked(|players| {
            check_groups(&options, &ranges, players.layers().end, players.heads())
        })?;
        head_groups(&mut hv, &ranges, &options, top_edges, &mut watch)
    });
    let (runs, _) = watch.finish(result)?;
    Ok(ranges
        .iter()
        .zip(runs)
        .map(|(g, run)| {
            let folder = options.out.join(group_folder(g));
            (folder, one_shot_result(run.done, &options))
        })
        .collect())
}

/// `prompt`, `target`, `players`, `baseline_token`, `max_batch_tokens`.
#[derive(FromPyObject)]
#[pyo3(from_item_all)]
struct TokenKw {
    prompt: String,
    target: String,
    players: String,
    baseline_token: Option<u32>,
    max_batch_tokens: Option<usize>,
}

/// `spex tokens` from Python: the token attribution written into `kwargs["out"]` (resumable).
#[pyfunction]
#[pyo3(signature = (kwargs, callback=None))]
pub fn tokens_job(
    py: Python<'_>,
    kwargs: &Bound<'_, PyDict>,
    callback: Option<Py<PyAny>>,
) -> PyResult<OneShotResult> {
    let token: TokenKw = kwargs.extract()?;
    let model: ModelKw = kwargs.extract()?;
    let options = kwargs.extract::<OneShotKw>()?.options()?;
    let granularity = match token.players.as_str() {
        "words" => Granularity::Words,
        "tokens" => Granularity::Tokens,
        other => {
            return Err(PyValueError::new_err(format!(
                "players: unknown players `{other}`; valid: words, tokens"
            )))
        }
    };
    let token_options = TokenOptions {
        prompt: token.prompt,
        target: token.target,
        granularity,
        baseline_token: token.baseline_token,
        max_batch_tokens: token.max_batch_tokens,
    };
    let model = model.spec();
    let mut watch = PyWatch::new(callback);
    let result = py.detach(|| {
        let loaded = model.load()?;
        spex::run::tokens(
            &loaded,
            &model.label(),
            &token_options,
            &options,
            &mut watch,
        )
    });
    let run = watch.finish(result)?;
    Ok(one_shot_result(run.done, &options))
}

/// `head_mask` and `json`.
#[derive(FromPyObject)]
#[pyo3(from_item_all)]
struct EvalKw {
    head_mask: Option<String>,
    json: Option<PathBuf>,
}

/// `spex eval` from Python: the report `spex eval --json` writes (also to `kwargs["json"]` when
/// set), as JSON text, and the per-subject table it prints.
#[pyfunction]
pub fn eval_job(py: Python<'_>, kwargs: &Bound<'_, PyDict>) -> PyResult<(String, String)> {
    let EvalKw { head_mask, json } = kwargs.extract()?;
    let ablation: AblationKw = kwargs.extract()?;
    let model: ModelKw = kwargs.extract()?;
    let task = kwargs.extract::<TaskKw>()?.spec()?;
    let options = AccuracyOptions {
        head_mask,
        ablation: ablation.ablation()?,
        mean_prompts: ablation.mean_prompts,
        max_batch_tokens: ablation.max_batch_tokens,
        progress: true,
    };
    let model = model.spec();
    let (questions, loaded) = py
        .detach(|| {
            options
                .ablation
                .check_mean_prompts(options.mean_prompts.as_deref())?;
            if let Some(path) = &json {
                check_writable(path)?;
            }
            let questions = load_questions(&task)?;
            Ok((questions, model.load()?))
        })
        .map_err(to_py)?;
    let report = interruptible(py, &loaded.stop_flag(), || {
        accuracy(&loaded, &model.label(), &questions, &task, &options)
    })?;
    if let Some(path) = &json {
        write_json(path, &report).map_err(to_py)?;
    }
    let text = serde_json::to_string(&report)
        .map_err(|e| to_py(spex::Error::invalid("report", e.to_string())))?;
    Ok((text, report.table()))
}

/// Runs `job` on a worker thread with the GIL released while this (the main) thread checks for
/// signals every 50 ms: on Ctrl-C it sets `stop` (the model stops before its next batch), waits
/// for the worker, and raises `KeyboardInterrupt`.
fn interruptible<T: Send>(
    py: Python<'_>,
    stop: &AtomicBool,
    job: impl FnOnce() -> spex::Result<T> + Send,
) -> PyResult<T> {
    let (result, raised) = py.detach(|| {
        std::thread::scope(|scope| {
            let worker = scope.spawn(job);
            let mut raised = None;
            while !worker.is_finished() {
                std::thread::sleep(Duration::from_millis(50));
                if raised.is_none() {
                    if let Err(err) = Python::attach(|py| py.check_signals()) {
                        stop.store(true, Ordering::Relaxed);
                        raised = Some(err);
                    }
                }
            }
            let result = worker
                .join()
                .unwrap_or_else(|_| Err(spex::Error::invalid("job", "the worker thread panicked")));
            (result, raised)
        })
    });
    stop.store(false, Ordering::Relaxed);
    match raised {
        Some(err) => Err(err),
        None => result.map_err(to_py),
    }
}
