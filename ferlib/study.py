"""The study: five notebooks run headlessly with papermill, their run folder, report and checks.

Two sides live here.

*Inside a notebook* — :func:`prepare_notebook` turns the notebook's ``parameters`` cell into a
:class:`NotebookContext`: the :class:`~ferlib.profiles.StudyProfile` (sizes), the run folder that
all five notebooks share, the device, seeding, and helpers to save PNG figures and record metrics
(``metrics.json`` keyed by notebook, read back by later notebooks).

*Outside* — :func:`run_study` executes ``notebooks/01_landmarks.ipynb`` … ``05_gradcam.ipynb`` in
order with ``papermill.execute_notebook`` (kernel ``python3``, working directory ``notebooks/``),
into ``runs/<stamp>-study/``: the executed notebooks, the figures, ``metrics.json``, ``study.json``
and a summary report (``report.md`` and ``report.html``) with each notebook's status, duration and
headline numbers. It stops at the first failing notebook and names the failing cell.
:func:`run_sweep` reruns the study for each parameter set of a YAML file; :func:`check_metrics`
compares a smoke run with the committed baselines (``notebooks/baselines/smoke_metrics.json``) and
reports regressions. :func:`export_notebooks` copies executed notebooks back over the committed
ones, without the injected parameters, papermill/widget metadata and stderr.

SynthFER numbers are synthetic; every report says which dataset and profile produced them.
"""

from __future__ import annotations

import dataclasses
import html
import json
import math
import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from ferlib.fileio import atomic_write_json, atomic_write_text
from ferlib.profiles import StudyProfile, get_profile
from ferlib.runs import RunFolder, new_run_dir

#: The study notebooks, in the order they run (later ones read earlier ones' outputs).
NOTEBOOKS: tuple[str, ...] = (
    "01_landmarks.ipynb",
    "02_subregions.ipynb",
    "03_training.ipynb",
    "04_ablations.ipynb",
    "05_gradcam.ipynb",
)
#: Parameters every study notebook declares in its ``parameters`` cell.
STANDARD_PARAMETERS: tuple[str, ...] = (
    "profile",
    "dataset",
    "data_root",
    "models",
    "device",
    "seed",
    "run_dir",
)
#: Key inside a notebook's metrics section listing its headline numbers (not a metric itself).
HEADLINE_KEY = "headline"
KERNEL_NAME = "python3"
#: Metadata nbstripout drops from committed notebooks (besides outputs it is told to keep).
STRIP_EXTRA_KEYS = ("metadata.papermill", "cell.metadata.papermill", "metadata.widgets")
#: What the nbstripout command line strips by default (cell timings among them); ``strip_output``
#: called as a function only strips what it is given.
NBSTRIPOUT_DEFAULT_KEYS = (
    "metadata.signature", "cell.metadata.collapsed", "cell.metadata.ExecuteTime",
    "cell.metadata.execution", "cell.metadata.heading_collapsed", "cell.metadata.hidden",
    "cell.metadata.scrolled",
)


def repo_root() -> Path:
    """The checkout that holds ``ferlib/`` (the study needs the source tree's ``notebooks/``)."""
    return Path(__file__).resolve().parents[1]


def default_notebook_dir() -> Path:
    return repo_root() / "notebooks"


def notebook_key(notebook: str) -> str:
    """``"03_training.ipynb"`` → ``"03_training"`` (the notebook's section in ``metrics.json``)."""
    return Path(notebook).name.removesuffix(".ipynb")


# --------------------------------------------------------------------------------------------
# Inside a notebook
# --------------------------------------------------------------------------------------------


def _flatten(metrics: Mapping[str, Any]) -> dict[str, Any]:
    from ferlib.train.metrics import flatten_metrics

    return flatten_metrics(metrics, scalars_only=False)


def flatten_metrics(metrics: Mapping[str, Any]) -> dict[str, Any]:
    """Nested ``metrics.json`` → ``{"03_training.ma-net.test_accuracy": 0.61, ...}``.

    Headline lists are dropped; they say which numbers to show, they are not numbers.
    """
    cleaned = {
        nb: {k: v for k, v in section.items() if k != HEADLINE_KEY}
        if isinstance(section, Mapping)
        else section
        for nb, section in metrics.items()
    }
    return _flatten(cleaned)


def read_run_metrics(run_dir: str | Path) -> dict[str, Any]:
    """The run folder's ``metrics.json`` (empty dict when no notebook has written it yet)."""
    path = Path(run_dir) / "metrics.json"
    if not path.exists():
        return {}
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ValueError(
            f"{path} is not valid JSON ({exc}); delete it or rerun the study into a new folder"
        ) from None


@dataclass
class NotebookContext:
    """What one study notebook needs: profile sizes, shared run folder, device and seed."""

    notebook: str
    profile: StudyProfile
    run: RunFolder
    dataset: str = "synthfer"
    data_root: str | None = None
    models: tuple[str, ...] = ()
    device: Any = "cpu"
    seed: int = 0

    @property
    def run_dir(self) -> Path:
        return self.run.path

    @property
    def key(self) -> str:
        return notebook_key(self.notebook)

    @property
    def prefix(self) -> str:
        """Figure-name prefix: ``"03"`` for ``03_training``."""
        return self.key.split("_", 1)[0]

    @property
    def tqdm_disable(self) -> bool:
        """Pass as ``disable=`` to tqdm: ``tqdm.auto`` ignores ``TQDM_DISABLE`` in a kernel."""
        return self.profile.tqdm_disable or bool(os.environ.get("TQDM_DISABLE"))

    @property
    def synthetic(self) -> bool:
        return self.dataset.lower() == "synthfer"

    @property
    def dataset_label(self) -> str:
        """How results are labelled everywhere: dataset, profile and seeds (SynthFER says synthetic)."""
        name = (f"SynthFER (synthetic, {self.profile.synthfer_config} preset)" if self.synthetic
                else self.dataset)
        seeds = ",".join(str(s) for s in self.profile.seeds)
        return f"{name}, profile {self.profile.name}, seed(s) {seeds}"

    @property
    def dataset_kwargs(self) -> dict:
        """Extra ``build_dataset`` keywords for ``TrainConfig(dataset_kwargs=...)``: the profile's
        SynthFER preset when the dataset is SynthFER, nothing for a real dataset."""
        return {"config": self.profile.synthfer_config} if self.synthetic else {}

    def learning_rate(self, model: str) -> float | None:
        """The learning rate to pass to ``TrainConfig(lr=...)``: None (the recipe's own) unless the
        recipe's rate exceeds the profile's ``max_lr``, which then replaces it."""
        if self.profile.max_lr is None:
            return None
        from ferlib.train import load_recipe
        from ferlib.train.recipes import default_recipe_for

        recipe_lr = load_recipe(default_recipe_for(model), self.dataset).lr
        return self.profile.max_lr if recipe_lr > self.profile.max_lr else None

    def describe(self) -> str:
        """A short, path-free summary to print in the notebook's setup cell."""
        return (
            f"notebook {self.key} | {self.dataset_label} | device {self.device} | "
            f"run folder {self.run_dir.name}"
        )

    def path(self, name: str) -> Path:
        """A file inside the run folder (for artefacts such as checkpoints or caches)."""
        return self.run_dir / name

    def save_figure(self, fig: Any, name: str, dpi: int = 100) -> Path:
        """Save ``fig`` as ``<run>/<NN>_<name>.png`` (PNG, atomic) and return the path."""
        stem = name if name.startswith(self.prefix + "_") else f"{self.prefix}_{name}"
        return self.run.save_figure(fig, stem, dpi=dpi)

    def show(self, fig: Any, name: str, dpi: int = 100) -> None:
        """Save ``fig`` like :meth:`save_figure`, display that PNG in the notebook and close ``fig``.

        Displaying the saved file (not the live figure) works whatever matplotlib backend a library
        switched to, and shows exactly what the run folder holds.
        """
        import matplotlib.pyplot as plt
        from IPython.display import Image, display

        path = self.save_figure(fig, name, dpi=dpi)
        plt.close(fig)
        display(Image(data=path.read_bytes(), format="png"))

    def record(self, headline: Sequence[str] | None = None, **metrics: Any) -> None:
        """Merge ``metrics`` into this notebook's section of the run's ``metrics.json``.

        ``headline`` names the numbers the study report shows for this notebook (dotted paths
        into nested metrics, e.g. ``"ma-net.accuracy"``).
        """
        data = read_run_metrics(self.run_dir)
        section = dict(data.get(self.key) or {})
        section.update(_jsonable(metrics))
        if headline is not None:
            missing = [k for k in headline if k not in _flatten(section)]
            if missing:
                raise KeyError(
                    f"headline metric(s) {missing} not recorded for {self.key}; "
                    f"recorded: {sorted(_flatten(section))}"
                )
            section[HEADLINE_KEY] = list(headline)
        data[self.key] = section
        atomic_write_json(self.run_dir / "metrics.json", data)

    def metrics_of(self, notebook: str) -> dict[str, Any] | None:
        """Another notebook's recorded metrics from the same run folder, or None."""
        return read_run_metrics(self.run_dir).get(notebook_key(notebook))


def _jsonable(value: Any) -> Any:
    """Convert numpy/torch scalars and arrays, tuples and paths to JSON values."""
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if hasattr(value, "tolist") and not isinstance(value, (str, bytes)):
        return _jsonable(value.tolist())
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        return value.item()
    return value


def default_run_dir(profile: str) -> Path:
    """Where a notebook run by hand (``run_dir=None``) writes: ``$FERLIB_RUNS|runs/notebooks-<profile>``.

    Relative to the kernel's working directory (``notebooks/`` in JupyterLab and nbval), and the
    same for all five notebooks so that they read each other's outputs.
    """
    return Path(os.environ.get("FERLIB_RUNS", "runs")) / f"notebooks-{profile}"


def prepare_notebook(
    notebook: str,
    *,
    profile: str | None = None,
    dataset: str = "synthfer",
    data_root: str | None = None,
    models: Sequence[str] | str | None = None,
    device: str = "auto",
    seed: int = 0,
    run_dir: str | os.PathLike | None = None,
    **profile_overrides: Any,
) -> NotebookContext:
    """Build the :class:`NotebookContext` from a notebook's parameters (call it in the 2nd cell).

    ``profile=None`` reads ``$FERLIB_PROFILE`` (else ``default``); ``models=None`` takes the
    profile's models; keyword ``profile_overrides`` that are not None replace profile fields
    (``epochs=3``). Seeds Python/NumPy/torch with ``seed``.
    """
    from ferlib.runs import resolve_device, seed_everything

    prof = get_profile(profile, **profile_overrides)
    if models is not None:
        prof = prof.replace(models=(models,) if isinstance(models, str) else tuple(models))
    folder = RunFolder.at(run_dir if run_dir is not None else default_run_dir(prof.name))
    seed_everything(int(seed))
    return NotebookContext(
        notebook=notebook,
        profile=prof,
        run=folder,
        dataset=dataset,
        data_root=None if data_root is None else str(data_root),
        models=prof.models,
        device=resolve_device(device),
        seed=int(seed),
    )


# --------------------------------------------------------------------------------------------
# Running the study
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class StudyConfig:
    """One study run: which notebooks, with which parameters (saved as the run's ``config.json``)."""

    profile: str = "default"
    dataset: str = "synthfer"
    data_root: str | None = None
    models: tuple[str, ...] | None = None
    device: str = "auto"
    seed: int = 0
    #: Extra notebook parameters (``-p key=value``); each goes to the notebooks that declare it.
    parameters: dict[str, Any] = field(default_factory=dict)
    notebooks: tuple[str, ...] = NOTEBOOKS
    notebook_dir: str | None = None
    kernel: str = KERNEL_NAME
    #: Per-cell timeout in seconds (None = no limit).
    cell_timeout: int | None = None


@dataclass
class NotebookResult:
    notebook: str
    status: str  # "ok" | "failed" | "not run"
    duration_s: float = 0.0
    output: str | None = None
    headline: dict[str, Any] = field(default_factory=dict)
    failed_cell: int | None = None
    failed_source: str | None = None
    error: str | None = None

    def failure_message(self) -> str:
        where = f"cell {self.failed_cell}" if self.failed_cell is not None else "before any cell"
        src = f" ({self.failed_source})" if self.failed_source else ""
        return (
            f"{self.notebook} failed in {where}{src}: {self.error}; "
            f"the executed notebook with the traceback is {self.output}"
        )


@dataclass
class StudyResult:
    run_dir: Path
    config: StudyConfig
    notebooks: list[NotebookResult]
    duration_s: float
    check: "CheckResult | None" = None

    @property
    def ok(self) -> bool:
        return all(r.status == "ok" for r in self.notebooks) and (
            self.check is None or self.check.ok
        )

    @property
    def failed(self) -> NotebookResult | None:
        return next((r for r in self.notebooks if r.status == "failed"), None)

    def to_dict(self) -> dict[str, Any]:
        return {
            "run_dir": str(self.run_dir),
            "ok": self.ok,
            "duration_s": round(self.duration_s, 2),
            "config": _jsonable(dataclasses.asdict(self.config)),
            "notebooks": [dataclasses.asdict(r) for r in self.notebooks],
            "check": None if self.check is None else self.check.to_dict(),
        }


def parse_parameter(text: str) -> tuple[str, Any]:
    """``"epochs=3"`` → ``("epochs", 3)``; values are YAML (``models=[lan,ma-net]``, ``x=null``)."""
    import yaml

    key, sep, raw = text.partition("=")
    key = key.strip()
    if not sep or not key.isidentifier():
        raise ValueError(
            f"notebook parameter {text!r} is not key=value with a Python identifier as key "
            "(example: -p epochs=3)"
        )
    try:
        value = yaml.safe_load(raw) if raw.strip() else None
    except yaml.YAMLError as exc:
        raise ValueError(f"cannot parse the value of -p {text!r} as YAML: {exc}") from None
    return key, value


def _notebook_dir(config: StudyConfig) -> Path:
    nb_dir = Path(config.notebook_dir) if config.notebook_dir else default_notebook_dir()
    if not nb_dir.is_dir():
        raise FileNotFoundError(
            f"notebook folder {nb_dir} not found; run from a ferlib checkout or pass --notebook-dir"
        )
    return nb_dir


def _declared_parameters(path: Path) -> set[str]:
    import papermill

    return set(papermill.inspect_notebook(str(path)))


def notebook_parameters(config: StudyConfig, run_dir: Path) -> dict[str, Any]:
    """The parameters the study offers every notebook (each gets those it declares)."""
    params: dict[str, Any] = {
        "profile": config.profile,
        "dataset": config.dataset,
        "data_root": config.data_root,
        "device": config.device,
        "seed": config.seed,
        "run_dir": str(run_dir.resolve()),
    }
    if config.models is not None:
        params["models"] = list(config.models)
    params.update(config.parameters)
    return params


def _plan(config: StudyConfig, run_dir: Path) -> list[tuple[str, Path, dict[str, Any]]]:
    """Check every notebook exists and every extra parameter is declared somewhere, before running."""
    nb_dir = _notebook_dir(config)
    offered = notebook_parameters(config, run_dir)
    plan, used = [], set()
    for name in config.notebooks:
        path = nb_dir / name
        if not path.exists():
            raise FileNotFoundError(
                f"notebook {path} not found; known study notebooks: {', '.join(NOTEBOOKS)}"
            )
        declared = _declared_parameters(path)
        if not declared:
            raise ValueError(
                f"{path} has no cell tagged 'parameters'; papermill cannot inject the study's "
                "parameters (tag the first code cell 'parameters')"
            )
        params = {k: v for k, v in offered.items() if k in declared}
        used |= set(params)
        plan.append((name, path, params))
    unused = sorted(set(config.parameters) - used)
    if unused:
        raise ValueError(
            f"parameter(s) {unused} are declared by none of the notebooks "
            f"{', '.join(config.notebooks)}; check the spelling against their 'parameters' cells"
        )
    return plan


def _headline(run_dir: Path, notebook: str) -> dict[str, Any]:
    section = read_run_metrics(run_dir).get(notebook_key(notebook)) or {}
    keys = section.get(HEADLINE_KEY) or []
    flat = _flatten({k: v for k, v in section.items() if k != HEADLINE_KEY})
    return {k: flat[k] for k in keys if k in flat}


def _failure_details(output: Path, exc: Exception) -> tuple[int | None, str | None, str]:
    """(cell index in the source notebook, first source line, error text) of a papermill failure."""
    cell_index = getattr(exc, "cell_index", None)
    ename, evalue = getattr(exc, "ename", None), getattr(exc, "evalue", None)
    error = f"{ename}: {evalue}" if ename else f"{type(exc).__name__}: {exc}"
    raw = getattr(exc, "source", None)
    lines = [ln for ln in (raw or "").splitlines() if ln.strip()]
    source = lines[0][:80] if lines else None
    if cell_index is not None and output.exists():
        import nbformat

        nb = nbformat.read(str(output), as_version=4)
        # papermill's index ignores the red error-banner cells it adds to the output notebook
        cells = [
            c for c in nb.cells
            if "papermill-error-cell-tag" not in c.get("metadata", {}).get("tags", [])
        ]
        injected = sum(
            1
            for c in cells[:cell_index]
            if "injected-parameters" in c.get("metadata", {}).get("tags", [])
        )
        cell_index -= injected  # number it as in the notebook the user edits
    return cell_index, source, error


def run_notebook(
    path: Path,
    output: Path,
    parameters: Mapping[str, Any],
    *,
    cwd: Path,
    kernel: str = KERNEL_NAME,
    cell_timeout: int | None = None,
) -> NotebookResult:
    """Execute one notebook with papermill; never raises for a failing cell (see the result)."""
    import papermill
    from papermill.exceptions import PapermillExecutionError

    start = time.perf_counter()
    result = NotebookResult(notebook=path.name, status="ok", output=str(output))
    kwargs: dict[str, Any] = {}
    if cell_timeout is not None:
        kwargs["execution_timeout"] = cell_timeout
    try:
        papermill.execute_notebook(
            str(path),
            str(output),
            parameters=dict(parameters),
            kernel_name=kernel,
            cwd=str(cwd),
            progress_bar=False,
            log_output=False,
            **kwargs,
        )
    except PapermillExecutionError as exc:
        result.status = "failed"
        result.failed_cell, result.failed_source, result.error = _failure_details(output, exc)
    except Exception as exc:  # kernel died, timeout, missing kernel spec...
        result.status = "failed"
        result.error = f"{type(exc).__name__}: {exc}"
    result.duration_s = time.perf_counter() - start
    return result


def run_study(
    config: StudyConfig,
    run_dir: str | os.PathLike | None = None,
    *,
    runs_root: str | os.PathLike | None = None,
    name: str = "study",
    echo: Any = None,
) -> StudyResult:
    """Run the notebooks of ``config`` in order into a run folder; stop at the first failure.

    ``run_dir`` None creates ``<runs_root|$FERLIB_RUNS|runs>/<stamp>-<name>/``. ``echo`` (e.g.
    ``print``) receives one line per notebook as it finishes. Writes ``config.json``,
    ``versions.json``, ``study.json`` and ``report.md``/``report.html``.
    """
    folder = RunFolder.at(run_dir) if run_dir is not None else RunFolder.create(name, runs_root)
    run_path = folder.path
    plan = _plan(config, run_path)
    folder.write_config(config)
    folder.write_versions()
    (run_path / "notebooks").mkdir(exist_ok=True)
    nb_dir = _notebook_dir(config)

    results: list[NotebookResult] = []
    start = time.perf_counter()
    failed = False
    for nb_name, path, params in plan:
        if failed:
            results.append(NotebookResult(notebook=nb_name, status="not run"))
            continue
        res = run_notebook(
            path,
            run_path / "notebooks" / nb_name,
            params,
            cwd=nb_dir,
            kernel=config.kernel,
            cell_timeout=config.cell_timeout,
        )
        res.output = str(Path("notebooks") / nb_name)
        if res.status == "ok":
            res.headline = _headline(run_path, nb_name)
        results.append(res)
        if echo is not None:
            echo(
                f"{nb_name:<24} {res.status:<6} {res.duration_s:7.1f} s"
                + ("" if res.status == "ok" else f"  {res.error}")
            )
        failed = res.status != "ok"
        _write_outputs(StudyResult(run_path, config, results, time.perf_counter() - start))

    study = StudyResult(run_path, config, results, time.perf_counter() - start)
    _write_outputs(study)
    return study


def _write_outputs(study: StudyResult) -> None:
    atomic_write_json(study.run_dir / "study.json", study.to_dict())
    write_report(study)


# --------------------------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------------------------


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, (list, tuple)):
        return ", ".join(_fmt(v) for v in value)
    return str(value)


def _figures_by_notebook(run_dir: Path) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for png in sorted(run_dir.glob("*.png")):
        out.setdefault(png.name.split("_", 1)[0], []).append(png.name)
    return out


def write_report(study: StudyResult) -> tuple[Path, Path]:
    """Write ``report.md`` and ``report.html`` into the run folder and return their paths."""
    cfg = study.config
    prof = get_profile(cfg.profile)
    synthetic = cfg.dataset.lower() == "synthfer"
    dataset = "SynthFER (synthetic data, not a paper reproduction)" if synthetic else cfg.dataset
    status = "passed" if study.ok else "FAILED"
    figures = _figures_by_notebook(study.run_dir)

    md: list[str] = [
        f"# ferlib study — {study.run_dir.name}",
        "",
        f"**Status:** {status} · **dataset:** {dataset} · **profile:** {prof.name} "
        f"({prof.description}) · **seed:** {cfg.seed} · **device:** {cfg.device} · "
        f"**total time:** {study.duration_s:.0f} s",
        "",
    ]
    if cfg.parameters:
        md += ["**Extra parameters:** " + ", ".join(f"`{k}={v!r}`" for k, v in cfg.parameters.items()), ""]
    md += ["| notebook | status | duration | headline numbers |", "|---|---|---:|---|"]
    for r in study.notebooks:
        heads = "; ".join(f"{k} = {_fmt(v)}" for k, v in r.headline.items()) or "—"
        link = f"[{r.notebook}]({r.output})" if r.output else r.notebook
        dur = f"{r.duration_s:.0f} s" if r.status != "not run" else "—"
        md.append(f"| {link} | {r.status} | {dur} | {heads} |")
    md.append("")
    if study.failed is not None:
        md += ["## Failure", "", study.failed.failure_message(), ""]
    if study.check is not None:
        md += ["## Regression check", "", study.check.to_markdown(), ""]
    if figures:
        md += ["## Figures", ""]
        for prefix, names in figures.items():
            for name in names:
                md += [f"![{name}]({name})", ""]
    md += [
        "Files: `metrics.json` (all numbers, by notebook), `study.json` (this table as data), "
        "`config.json`, `versions.json`, `notebooks/` (executed notebooks).",
        "",
    ]
    md_path = atomic_write_text(study.run_dir / "report.md", "\n".join(md))

    esc = html.escape
    rows = []
    for r in study.notebooks:
        heads = "<br>".join(f"{esc(k)} = {esc(_fmt(v))}" for k, v in r.headline.items()) or "—"
        link = f'<a href="{esc(r.output)}">{esc(r.notebook)}</a>' if r.output else esc(r.notebook)
        dur = f"{r.duration_s:.0f} s" if r.status != "not run" else "—"
        rows.append(
            f'<tr class="{esc(r.status.replace(" ", "-"))}"><td>{link}</td><td>{esc(r.status)}</td>'
            f"<td>{dur}</td><td>{heads}</td></tr>"
        )
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>ferlib study {esc(study.run_dir.name)}</title>",
        "<style>body{font-family:sans-serif;max-width:1100px;margin:2em auto}"
        "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:4px 8px}"
        "tr.failed{background:#fdd}tr.not-run{color:#999}img{max-width:100%}</style></head><body>",
        f"<h1>ferlib study — {esc(study.run_dir.name)}</h1>",
        f"<p><b>Status:</b> {esc(status)} · <b>dataset:</b> {esc(dataset)} · <b>profile:</b> "
        f"{esc(prof.name)} ({esc(prof.description)}) · <b>seed:</b> {cfg.seed} · "
        f"<b>device:</b> {esc(cfg.device)} · <b>total time:</b> {study.duration_s:.0f} s</p>",
        "<table><tr><th>notebook</th><th>status</th><th>duration</th><th>headline numbers</th></tr>",
        *rows,
        "</table>",
    ]
    if study.failed is not None:
        parts += ["<h2>Failure</h2>", f"<pre>{esc(study.failed.failure_message())}</pre>"]
    if study.check is not None:
        parts += ["<h2>Regression check</h2>", study.check.to_html()]
    for prefix, names in figures.items():
        parts.append(f"<h2>Figures of notebook {esc(prefix)}</h2>")
        parts += [f'<figure><img src="{esc(n)}"><figcaption>{esc(n)}</figcaption></figure>' for n in names]
    parts.append("</body></html>")
    html_path = atomic_write_text(study.run_dir / "report.html", "\n".join(parts))
    return md_path, html_path


# --------------------------------------------------------------------------------------------
# Sweeps
# --------------------------------------------------------------------------------------------

_CONFIG_KEYS = ("profile", "dataset", "data_root", "models", "device", "seed", "notebooks")


def load_sweep(path: str | os.PathLike, base: StudyConfig) -> list[tuple[str, StudyConfig]]:
    """Read a sweep file: a YAML list of parameter sets, each overriding ``base``.

    Each item is a mapping; ``name`` labels it, ``profile``/``dataset``/``data_root``/``models``/
    ``device``/``seed``/``notebooks`` set the study options, anything else is a notebook parameter
    (like ``-p``). A top-level mapping ``{base: {...}, runs: [...]}`` sets shared values first.
    """
    import yaml

    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"sweep file {path} not found")
    data = yaml.safe_load(path.read_text())
    shared: dict[str, Any] = {}
    if isinstance(data, dict):
        shared = dict(data.get("base") or {})
        data = data.get("runs")
    if not isinstance(data, list) or not data or not all(isinstance(d, dict) for d in data):
        raise ValueError(
            f"{path} must hold a non-empty YAML list of parameter sets (mappings), e.g.\n"
            "- {name: lam04, profile: smoke, notebooks: [04_ablations.ipynb], lam: 0.4}\n"
            "or a mapping with 'base' and 'runs'"
        )
    out = []
    for i, item in enumerate(data):
        merged = {**shared, **item}
        label = str(merged.pop("name", f"set{i + 1}"))
        changes: dict[str, Any] = {}
        params = dict(base.parameters)
        for key, value in merged.items():
            if key in _CONFIG_KEYS:
                if key in ("models", "notebooks") and value is not None:
                    value = (value,) if isinstance(value, str) else tuple(value)
                if key == "notebooks":
                    value = tuple(v if v.endswith(".ipynb") else v + ".ipynb" for v in value)
                changes[key] = value
            else:
                params[key] = value
        out.append((label, dataclasses.replace(base, parameters=params, **changes)))
    return out


def run_sweep(
    path: str | os.PathLike,
    base: StudyConfig,
    *,
    runs_root: str | os.PathLike | None = None,
    run_dir: str | os.PathLike | None = None,
    echo: Any = None,
) -> tuple[Path, list[tuple[str, StudyResult]]]:
    """Run the study once per parameter set of sweep file ``path``.

    Each set gets ``<sweep folder>/<NN>-<name>/`` (a complete study folder with its report), and
    the sweep folder gets ``sweep.md``: one row per set with its status and headline numbers.
    A failing set is reported and the sweep goes on with the next one.
    """
    sets = load_sweep(path, base)
    root = Path(run_dir) if run_dir is not None else new_run_dir("sweep", runs_root)
    root.mkdir(parents=True, exist_ok=True)
    results: list[tuple[str, StudyResult]] = []
    for i, (label, cfg) in enumerate(sets, 1):
        if echo is not None:
            echo(f"== sweep set {i}/{len(sets)}: {label}")
        sub = root / f"{i:02d}-{re.sub(r'[^A-Za-z0-9_.-]+', '-', label)}"
        results.append((label, run_study(cfg, run_dir=sub, echo=echo)))
        write_sweep_report(root, results)
    return root, results


def write_sweep_report(root: Path, results: Sequence[tuple[str, StudyResult]]) -> Path:
    lines = [
        f"# ferlib sweep — {root.name}",
        "",
        "| set | folder | profile | dataset | parameters | status | headline numbers |",
        "|---|---|---|---|---|---|---|",
    ]
    for label, res in results:
        heads = "; ".join(
            f"{notebook_key(r.notebook)}: {k} = {_fmt(v)}"
            for r in res.notebooks
            for k, v in r.headline.items()
        ) or "—"
        params = ", ".join(f"{k}={v!r}" for k, v in res.config.parameters.items()) or "—"
        dataset = res.config.dataset + (" (synthetic)" if res.config.dataset == "synthfer" else "")
        lines.append(
            f"| {label} | [{res.run_dir.name}]({res.run_dir.name}/report.md) | {res.config.profile} | "
            f"{dataset} | {params} | {'ok' if res.ok else 'FAILED'} | {heads} |"
        )
    atomic_write_json(
        root / "sweep.json", [{"set": label, **res.to_dict()} for label, res in results]
    )
    return atomic_write_text(root / "sweep.md", "\n".join(lines) + "\n")


# --------------------------------------------------------------------------------------------
# Regression check
# --------------------------------------------------------------------------------------------


def baseline_path(profile: str = "smoke", notebook_dir: str | os.PathLike | None = None) -> Path:
    nb_dir = Path(notebook_dir) if notebook_dir else default_notebook_dir()
    return nb_dir / "baselines" / f"{profile}_metrics.json"


@dataclass
class CheckRow:
    metric: str
    expected: Any
    actual: Any
    rule: str
    ok: bool
    reason: str = ""


@dataclass
class CheckResult:
    baseline: str
    rows: list[CheckRow]

    @property
    def ok(self) -> bool:
        return all(r.ok for r in self.rows)

    @property
    def failures(self) -> list[CheckRow]:
        return [r for r in self.rows if not r.ok]

    def to_dict(self) -> dict[str, Any]:
        return {"baseline": self.baseline, "ok": self.ok, "rows": [dataclasses.asdict(r) for r in self.rows]}

    def summary(self) -> str:
        if self.ok:
            return f"regression check passed: {len(self.rows)} metric(s) within tolerance of {self.baseline}"
        lines = [f"regression check FAILED against {self.baseline}:"]
        lines += [f"  {r.metric}: {r.reason}" for r in self.failures]
        lines.append(
            "If the change is intended, update the baseline (value and tolerance) in that file "
            "and say why in the commit message."
        )
        return "\n".join(lines)

    def to_markdown(self) -> str:
        lines = [f"Baseline `{self.baseline}`: {'passed' if self.ok else 'FAILED'}", "",
                 "| metric | baseline | this run | rule | ok |", "|---|---:|---:|---|---|"]
        lines += [
            f"| {r.metric} | {_fmt(r.expected)} | {_fmt(r.actual)} | {r.rule} | "
            f"{'yes' if r.ok else 'NO: ' + r.reason} |"
            for r in self.rows
        ]
        return "\n".join(lines)

    def to_html(self) -> str:
        esc = html.escape
        rows = "".join(
            f"<tr class='{'ok' if r.ok else 'failed'}'><td>{esc(r.metric)}</td><td>{esc(_fmt(r.expected))}</td>"
            f"<td>{esc(_fmt(r.actual))}</td><td>{esc(r.rule)}</td>"
            f"<td>{'yes' if r.ok else 'NO: ' + esc(r.reason)}</td></tr>"
            for r in self.rows
        )
        return (
            f"<p>Baseline <code>{esc(self.baseline)}</code>: {'passed' if self.ok else 'FAILED'}</p>"
            "<table><tr><th>metric</th><th>baseline</th><th>this run</th><th>rule</th><th>ok</th></tr>"
            f"{rows}</table>"
        )


def _check_one(name: str, spec: Mapping[str, Any], actual: Any) -> CheckRow:
    if not isinstance(spec, Mapping) or "value" not in spec:
        raise ValueError(
            f"baseline entry {name!r} must be a mapping with 'value' and optional "
            "'abs_tol', 'rel_tol', 'direction' (higher|lower|both)"
        )
    expected = spec["value"]
    direction = spec.get("direction", "both")
    if direction not in ("higher", "lower", "both"):
        raise ValueError(f"baseline entry {name!r}: direction must be higher, lower or both")
    if actual is None:
        return CheckRow(name, expected, None, "present", False, "missing from this run's metrics.json")
    if not isinstance(expected, (int, float)) or isinstance(expected, bool):
        ok = actual == expected
        return CheckRow(name, expected, actual, "equal", ok, "" if ok else f"expected {expected!r}, got {actual!r}")
    if not isinstance(actual, (int, float)) or isinstance(actual, bool):
        return CheckRow(name, expected, actual, "number", False, f"expected a number, got {actual!r}")
    tol = float(spec.get("abs_tol", 0.0)) + float(spec.get("rel_tol", 0.0)) * abs(float(expected))
    lo, hi = expected - tol, expected + tol
    if direction == "higher":  # a higher value is never a regression
        ok, rule = actual >= lo, f">= {_fmt(lo)}"
    elif direction == "lower":  # a lower value is never a regression
        ok, rule = actual <= hi, f"<= {_fmt(hi)}"
    else:
        ok, rule = lo <= actual <= hi, f"in [{_fmt(lo)}, {_fmt(hi)}]"
    reason = "" if ok else f"{_fmt(actual)} is outside the allowed range ({rule}; baseline {_fmt(expected)})"
    return CheckRow(name, expected, actual, rule, ok, reason)


def check_metrics(
    metrics: Mapping[str, Any], baseline: Mapping[str, Any], baseline_name: str = "baseline"
) -> CheckResult:
    """Compare a run's nested ``metrics.json`` with a baseline ``{"metrics": {flat.name: spec}}``.

    A spec is ``{"value": v, "abs_tol": a, "rel_tol": r, "direction": "higher"|"lower"|"both"}``:
    the allowed band is ``v ± (a + r·|v|)``, open-ended on the side named by ``direction``
    (``higher`` for accuracies, ``lower`` for errors and losses, ``both`` for counts and shapes).
    Non-numeric values must be equal. A metric missing from the run fails.
    """
    specs = baseline.get("metrics")
    if not isinstance(specs, Mapping) or not specs:
        raise ValueError(f"{baseline_name}: expected a non-empty 'metrics' mapping")
    flat = flatten_metrics(metrics)
    rows = [_check_one(name, spec, flat.get(name)) for name, spec in specs.items()]
    return CheckResult(baseline_name, rows)


def check_run(run_dir: str | os.PathLike, baseline_file: str | os.PathLike) -> CheckResult:
    """:func:`check_metrics` on a run folder against a baseline file."""
    baseline_file = Path(baseline_file)
    if not baseline_file.exists():
        raise FileNotFoundError(
            f"baseline {baseline_file} not found; create it from a good smoke run "
            "(see docs/study.md, 'Regression check')"
        )
    baseline = json.loads(baseline_file.read_text())
    return check_metrics(read_run_metrics(run_dir), baseline, str(baseline_file))


# --------------------------------------------------------------------------------------------
# Committed notebooks
# --------------------------------------------------------------------------------------------

_ABSOLUTE_PATH = re.compile(r"(?<![\w.])(/(?:home|root|tmp|work|Users|usr|opt|var)/[\w.-]+)")


def clean_notebook(nb: Any) -> Any:
    """Make an executed notebook commit-ready (in place; also returned).

    Drops the ``injected-parameters`` cell, stderr streams (warnings, progress bars) and widget
    views (their state is not kept, so they could not render; explorers show a static frame), strips
    papermill and widget metadata with nbstripout (outputs kept) and sets the kernel to ``python3``.
    Execution counts are kept, renumbered 1..n over the code cells: nbval refuses a reference cell
    that has outputs but no execution count ("Unrun reference cell has outputs").
    """
    from nbstripout import strip_output

    nb.cells = [
        c for c in nb.cells if "injected-parameters" not in c.get("metadata", {}).get("tags", [])
    ]
    for cell in nb.cells:
        if cell.get("cell_type") == "code":
            cell.outputs = [
                o for o in cell.get("outputs", [])
                if not (o.get("output_type") == "stream" and o.get("name") == "stderr")
                and "application/vnd.jupyter.widget-view+json" not in (o.get("data") or {})
            ]
    # Same result as `nbstripout --keep-output --keep-count --extra-keys "<STRIP_EXTRA_KEYS>"`, so
    # that `nbstripout --verify` with those flags passes on committed notebooks.
    strip_output(nb, keep_output=True, keep_count=True, keep_id=False,
                 extra_keys=list(NBSTRIPOUT_DEFAULT_KEYS + STRIP_EXTRA_KEYS))
    count = 0
    for cell in nb.cells:
        if cell.get("cell_type") == "code":
            count += 1
            cell.execution_count = count
            for out in cell.get("outputs", []):
                if "execution_count" in out:
                    out["execution_count"] = count
    nb.metadata["kernelspec"] = {"display_name": "Python 3 (ipykernel)", "language": "python", "name": KERNEL_NAME}
    return nb


def absolute_paths_in(nb: Any) -> list[tuple[int, str]]:
    """(cell index, path) for every absolute filesystem path in a notebook's sources and outputs."""
    found = []
    for i, cell in enumerate(nb.cells):
        texts = [cell.get("source", "")]
        for out in cell.get("outputs", []):
            texts.append(out.get("text", "") if isinstance(out.get("text", ""), str) else "")
            for mime, value in (out.get("data") or {}).items():
                if mime.startswith("text/") and isinstance(value, str):
                    texts.append(value)
            texts.extend(out.get("traceback", []) or [])
        for text in texts:
            found += [(i, m) for m in _ABSOLUTE_PATH.findall(text)]
    return found


def export_notebooks(
    run_dir: str | os.PathLike, notebook_dir: str | os.PathLike | None = None
) -> list[Path]:
    """Copy a successful run's executed notebooks over the committed ones, cleaned.

    Refuses (``ValueError``) when a notebook of the run failed or an output holds an absolute path.
    """
    import nbformat

    run_dir = Path(run_dir)
    nb_dir = Path(notebook_dir) if notebook_dir else default_notebook_dir()
    study = json.loads((run_dir / "study.json").read_text())
    bad = [r["notebook"] for r in study["notebooks"] if r["status"] != "ok"]
    if bad:
        raise ValueError(f"{run_dir}: notebooks {bad} did not finish; not exporting a failed run")
    cleaned = []
    for r in study["notebooks"]:
        nb = clean_notebook(nbformat.read(str(run_dir / r["output"]), as_version=4))
        paths = absolute_paths_in(nb)
        if paths:
            raise ValueError(
                f"{r['notebook']}: absolute path(s) in cells {sorted({i for i, _ in paths})} "
                f"(e.g. {paths[0][1]!r}); print paths relative to the run folder instead"
            )
        cleaned.append((nb_dir / r["notebook"], nb))
    for target, nb in cleaned:
        atomic_write_text(target, nbformat.writes(nb) + "\n")
    return [t for t, _ in cleaned]


def summarize(results: Iterable[NotebookResult]) -> str:
    """One line per notebook: name, status, duration."""
    return "\n".join(f"{r.notebook:<24} {r.status:<7} {r.duration_s:7.1f} s" for r in results)


# --------------------------------------------------------------------------------------------
# Ablation grids (notebook 04): the papers' tables as parameter grids
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AblationRow:
    """One configuration of an ablation table: a label, model variant keywords, the paper's number."""

    label: str
    variant: Mapping[str, Any]
    paper: float | None = None
    #: Model name when the row uses another network than the grid's (baselines).
    model: str | None = None


@dataclass(frozen=True)
class AblationGrid:
    name: str
    model: str
    source: str  # paper, table/figure
    paper_dataset: str  # what the paper's numbers were measured on
    rows: tuple[AblationRow, ...]

    def select(self, points: int | None) -> tuple[AblationRow, ...]:
        """The first ``points`` rows, always including the row that is the paper's own setting
        (the row with the highest paper number) so that the comparison has its reference."""
        if points is None or points >= len(self.rows):
            return self.rows
        numbered = [r for r in self.rows if r.paper is not None]
        best = max(numbered, key=lambda r: r.paper) if numbered else self.rows[0]
        chosen = list(self.rows[:points])
        if best not in chosen:
            chosen[-1] = best
        return tuple(chosen)


def _rows(*items: tuple) -> tuple[AblationRow, ...]:
    return tuple(AblationRow(*item) for item in items)


#: The papers' ablation tables. Numbers are the papers' (accuracy %, on ``paper_dataset``); ferlib
#: runs the same variants on the study's dataset and shows both, labelled, side by side.
ABLATION_GRIDS: dict[str, AblationGrid] = {
    g.name: g
    for g in (
        AblationGrid("amp-net-modules", "amp-net", "amp-net.txt Tables I–II", "RAF-DB, no pre-training", _rows(
            ("GP+LP+AP (AMP-Net)", {"branches": ("gp", "lp", "ap")}, 88.06),
            ("GP (gate-OSA)", {"branches": ("gp",)}, 86.32),
            ("GP (OSA)", {"branches": ("gp",), "gp_block": "osa"}, 86.08),
            ("LP", {"branches": ("lp",)}, 86.02),
            ("AP", {"branches": ("ap",)}, 84.33),
            ("GP+LP", {"branches": ("gp", "lp")}, 87.23),
            ("GP+AP", {"branches": ("gp", "ap")}, 86.77),
            ("LP+AP", {"branches": ("lp", "ap")}, 86.67),
        )),
        AblationGrid("amp-net-lp-scheme", "amp-net", "amp-net.txt Table III (LP module alone)", "RAF-DB, no pre-training", _rows(
            ("scheme 4: PBD + LBP (proposed)", {"branches": ("lp",), "lp_scheme": 4}, 86.02),
            ("scheme 2: equal 2×2 split", {"branches": ("lp",), "lp_scheme": 2}, 84.65),
            ("scheme 1: PBD + ROI Align", {"branches": ("lp",), "lp_scheme": 1}, 79.35),
            ("scheme 3: modified PBD + LBP", {"branches": ("lp",), "lp_scheme": 3}, 85.27),
        )),
        AblationGrid("amp-net-region-size", "amp-net-r18", "amp-net.txt Fig. 8(a) (only L = 10 printed)", "RAF-DB", _rows(
            ("L = 10", {"region_size": 10}, 88.06),
            ("L = 6", {"region_size": 6}, None),
            ("L = 14", {"region_size": 14}, None),
            ("L = 8", {"region_size": 8}, None),
            ("L = 12", {"region_size": 12}, None),
        )),
        AblationGrid("amp-net-lambda", "amp-net-r18", "amp-net.txt Fig. 8(b) (only λ = 0.5 printed)", "RAF-DB", _rows(
            ("λ = 0.5", {"lam": 0.5}, 88.06),
            ("λ = 0.2", {"lam": 0.2}, None),
            ("λ = 0.8", {"lam": 0.8}, None),
        )),
        AblationGrid("ma-net-multiscale", "ma-net", "ma-net.txt Table I (one branch)", "RAF-DB, no pre-training", _rows(
            ("symmetric multi-scale", {"global_branch": "symmetric", "local_branch": None}, 83.74),
            ("baseline (LTS)", {"global_branch": "lts", "local_branch": None}, 82.59),
            ("Res2Net multi-scale", {"global_branch": "res2net", "local_branch": None}, 82.89),
            ("local feature", {"global_branch": None, "local_branch": "feature"}, 83.87),
            ("local feature + attention", {"global_branch": None, "local_branch": "attention"}, 84.65),
        )),
        AblationGrid("ma-net-regions", "ma-net", "ma-net.txt Table III", "RAF-DB, no pre-training", _rows(
            ("2×2, overlap 0 (MA-Net)", {"split": 2, "overlap": 0}, 86.32),
            ("1×1", {"split": 1, "overlap": 0}, 84.58),
            ("2×2, overlap 6", {"split": 2, "overlap": 6}, 85.14),
            ("3×3, overlap 1", {"split": 3, "overlap": 1}, 85.41),
            ("3×3, overlap 7", {"split": 3, "overlap": 7}, 85.29),
        )),
        AblationGrid("ma-net-fusion", "ma-net", "ma-net.txt Table IV", "RAF-DB, no pre-training", _rows(
            ("decision-level (MA-Net)", {"fusion": "decision"}, 86.34),
            ("feature-level", {"fusion": "feature"}, 82.76),
        )),
        AblationGrid("ma-net-lambda", "ma-net", "ma-net.txt Fig. 6 (best λ = 0.6; values not printed)", "RAF-DB", _rows(
            ("λ = 0.6 (MA-Net)", {"lam": 0.6}, 86.34),
            ("λ = 0.2", {"lam": 0.2}, None),
            ("λ = 0.9", {"lam": 0.9}, None),
        )),
        AblationGrid("lan-alpha", "lan", "lan.txt §IV (α = 0.5 used)", "—", _rows(
            ("α = 0.5 (LAN)", {"alpha": 0.5}, None),
            ("α = 0 (no guidance)", {"alpha": 0.0}, None),
            ("α = 1", {"alpha": 1.0}, None),
        )),
        AblationGrid("lan-fusion", "lan", "lan.txt Table 6", "AffectNet", _rows(
            ("addition (LAN)", {"fusion": "add"}, 60.88),
            ("concatenation", {"fusion": "concat"}, 60.20),
            ("averaging", {"fusion": "average"}, 59.40),
        )),
        AblationGrid("ffra-net-fusion", "ffra-net", "ffra-net.txt Table 1", "SG_RAF-DB (sunglasses)", _rows(
            ("weighted (FFRA-Net)", {"fusion": "weighted"}, 79.50),
            ("add", {"fusion": "add"}, 77.87),
            ("concat", {"fusion": "concat"}, 76.69),
        )),
        AblationGrid("ffra-net-modules", "ffra-net", "ffra-net.txt Table 2", "SG_RAF-DB (sunglasses)", _rows(
            ("multi-scale + local attention", {"multi_scale": True, "local_attention": True}, 79.50),
            ("neither (baseline)", {"multi_scale": False, "local_attention": False}, 77.44),
            ("multi-scale only", {"multi_scale": True, "local_attention": False}, 78.62),
            ("local attention only", {"multi_scale": False, "local_attention": True}, 79.37),
        )),
        AblationGrid("ffra-net-lambda", "ffra-net", "ffra-net.txt §4.3 (λ = 0.6 used)", "SG_RAF-DB", _rows(
            ("λ = 0.6 (FFRA-Net)", {"lam": 0.6}, 79.50),
            ("λ = 0.3", {"lam": 0.3}, None),
            ("λ = 0.9", {"lam": 0.9}, None),
        )),
        AblationGrid("man-baselines", "man", "man.txt Table 3 (from scratch)", "RAF-DB, trained from scratch", _rows(
            ("RASnet + ERSnet (MAN)", {}, 75.59),
            ("VGG16", {}, 73.63, "vgg16"),
            ("VGG16 + SE", {}, 73.27, "vgg16-se"),
        )),
    )
}


#: Each paper's reported RAF-DB accuracy (%) for the model ferlib builds under that name, with its
#: conditions. Shown beside ferlib's numbers only as a reference; a SynthFER run is not comparable.
PAPER_RESULTS: dict[str, dict[str, Any]] = {
    "amp-net": {"rafdb": 89.25, "source": "amp-net.txt Table IV (VGGFace2 pre-training)"},
    "amp-net-r18": {"rafdb": 88.84, "source": "amp-net.txt Table IV, AMP-Net* (ResNet-18)"},
    "ma-net": {"rafdb": 88.40, "source": "ma-net.txt abstract (MS-Celeb-1M pre-training)"},
    "lan": {"rafdb": 87.09, "source": "lan.txt Table 2"},
    "ffra-net": {"rafdb": 88.66, "source": "ffra-net.txt Table 5"},
    "man": {"rafdb": 85.69, "source": "man.txt Table 3 (VGG-Face initialisation; 75.59 from scratch)"},
    "vgg16": {"rafdb": 83.89, "source": "man.txt Table 3, VGG fine-tuning"},
    "vgg16-se": {"rafdb": 83.28, "source": "man.txt Table 3, VGG+SE"},
    "resnet18": {"rafdb": None, "source": "plain baseline (no paper number)"},
}
