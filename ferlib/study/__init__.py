"""The study: five notebooks run headlessly with papermill, their run folder, report and checks.

The package, read in the order its modules import each other (each imports only earlier ones):

``context``   inside a notebook: :func:`prepare_notebook` → :class:`NotebookContext` (profile, shared
              run folder, device, seed, figures, ``metrics.json``, ``train_config``)
``check``     regression check of a run's metrics against ``notebooks/baselines/<profile>_metrics.json``
``results``   :class:`StudyConfig` (what to run) and :class:`NotebookResult`/:class:`StudyResult`
``report``    ``report.md`` and ``report.html`` of a run
``runner``    :func:`run_study`: papermill runs of ``notebooks/0*.ipynb`` into ``runs/<stamp>-study/``
``sweep``     :func:`run_sweep`: the study once per parameter set of a YAML file
``export``    :func:`export_notebooks`: executed notebooks, cleaned, back over the committed ones

Called from inside the notebooks (imported by their full names, not re-exported here):

``stats``     intervals over seeds and test faces, chance, at-chance/collapsed flags, "within noise"
``figures``   notebooks 03 and 04's figures: accuracy intervals, learning curves, ablation grids

Study profiles (notebook knobs, and the engine profile each notebook trains with) are in
:mod:`ferlib.profiles`. SynthFER numbers are synthetic; every report says which dataset and profile
produced them. The papers' ablation grids and reported results live on the model families' paper
cards (:func:`ferlib.models.ablation_grids`, :func:`ferlib.models.paper_results`).
"""

from ferlib.study.check import CheckResult, CheckRow, baseline_path, check_metrics, check_run
from ferlib.study.context import (
    HEADLINE_KEY,
    KERNEL_NAME,
    NOTEBOOKS,
    STANDARD_PARAMETERS,
    NotebookContext,
    default_notebook_dir,
    default_run_dir,
    flatten_metrics,
    notebook_key,
    prepare_notebook,
    read_run_metrics,
    repo_root,
)
from ferlib.study.export import absolute_paths_in, clean_notebook, export_notebooks, summarize
from ferlib.study.report import write_report
from ferlib.study.results import NotebookResult, StudyConfig, StudyResult
from ferlib.study.runner import check_study, notebook_parameters, parse_parameter, run_notebook, run_study
from ferlib.study.sweep import load_sweep, run_sweep, write_sweep_report

__all__ = [
    "CheckResult",
    "CheckRow",
    "HEADLINE_KEY",
    "KERNEL_NAME",
    "NOTEBOOKS",
    "NotebookContext",
    "NotebookResult",
    "STANDARD_PARAMETERS",
    "StudyConfig",
    "StudyResult",
    "absolute_paths_in",
    "baseline_path",
    "check_metrics",
    "check_run",
    "check_study",
    "clean_notebook",
    "default_notebook_dir",
    "default_run_dir",
    "export_notebooks",
    "flatten_metrics",
    "load_sweep",
    "notebook_key",
    "notebook_parameters",
    "parse_parameter",
    "prepare_notebook",
    "read_run_metrics",
    "repo_root",
    "run_notebook",
    "run_study",
    "run_sweep",
    "summarize",
    "write_report",
    "write_sweep_report",
]
