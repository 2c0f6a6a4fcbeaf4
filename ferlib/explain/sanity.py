"""The model-randomisation sanity check for saliency maps (Adebayo et al., 2018).

Adebayo, Gilmer, Muelly, Goodfellow, Hardt & Kim, "Sanity Checks for Saliency Maps", NeurIPS 2018
(arXiv:1810.03292), §3.1 "cascading randomization": re-initialise the network's weights layer by
layer, from the output towards the input, and compare each explanation with the trained model's. A
method whose maps stay the same while the weights they are meant to explain are destroyed explains
the input (edges, the face's outline), not the model. They compare with the Spearman rank
correlation (their Fig. 2 and 4); ferlib does the same with :func:`scipy.stats.spearmanr`.

:func:`cascading_randomization` works on a copy of the model (the original is untouched), groups the
layers that hold weights into ``steps`` blocks in the order the forward pass runs them, and
re-initialises one more block per step, from the top. Re-initialising uses each layer's own
``reset_parameters`` (PyTorch's default initialisation; BatchNorm also forgets its running
statistics), so the randomised model is a plausible untrained one, not noise of another scale.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import torch.nn as nn

from ferlib.explain.cams import compute_cams

__all__ = ["cascading_randomization", "forward_order", "spearman_per_map"]


def forward_order(model: nn.Module, images: torch.Tensor, **inputs: Any) -> list[str]:
    """Names of the modules that hold their own parameters, in the order one forward pass runs them."""
    order: list[str] = []
    handles = []
    for name, module in model.named_modules():
        if any(True for _ in module.parameters(recurse=False)):

            def hook(_m, _i, _o, name=name):
                if name not in order:
                    order.append(name)

            handles.append(module.register_forward_hook(hook))
    try:
        with torch.no_grad():
            model(images[:1], **{k: v[:1] for k, v in inputs.items()})
    finally:
        for h in handles:
            h.remove()
    return order


def spearman_per_map(reference: np.ndarray, other: np.ndarray) -> np.ndarray:
    """Spearman's ρ between each pair of maps (N×H×W each), over pixels; NaN when a map is constant
    (e.g. empty), where a rank correlation is undefined."""
    from scipy.stats import spearmanr

    out = np.full(len(reference), np.nan)
    for i, (a, b) in enumerate(zip(reference, other)):
        a, b = np.ravel(a), np.ravel(b)
        if np.ptp(a) > 0 and np.ptp(b) > 0:
            out[i] = spearmanr(a, b).statistic
    return out


def _reinitialise(module: nn.Module, generator_seed: int) -> None:
    torch.manual_seed(generator_seed)
    if hasattr(module, "reset_parameters"):
        module.reset_parameters()
        if hasattr(module, "reset_running_stats"):
            module.reset_running_stats()
    else:  # a module with bare parameters (e.g. shuffle attention's weights): fresh normal values
        with torch.no_grad():
            for p in module.parameters(recurse=False):
                p.normal_(0.0, 0.02 if p.dim() > 1 else 1.0)


def cascading_randomization(
    model: nn.Module,
    images: torch.Tensor,
    target: str | None = None,
    *,
    classes: Sequence[int] | None = None,
    landmarks5: torch.Tensor | None = None,
    landmarks8: torch.Tensor | None = None,
    steps: int = 5,
    method: str = "GradCAM",
    seed: int = 0,
):
    """Cascading randomisation of ``model`` (module docstring): CAMs after each step, and their
    Spearman correlation with the trained model's CAMs.

    ``target``: the Grad-CAM target name (``model.cam_targets()``; default the primary one);
    ``classes``: the class each CAM explains (default: the trained model's prediction, kept fixed at
    every step so that only the weights change). Returns ``(table, cams)``: a ``pandas.DataFrame``
    with one row per step (``step`` 0 = trained; ``randomised``: the lowest layer re-initialised so
    far; ``layers``: how many; ``fraction`` of the weighted layers; ``spearman``: mean ρ over the
    images; ``spearman_sd``; ``n``: images with a defined ρ; ``empty``: all-zero CAMs, whose ρ is
    undefined — a CAM that goes empty has also stopped explaining the trained model) and ``cams``: step → N×H×W.
    """
    import pandas as pd

    from ferlib.explain.cams import predicted_classes, primary_target
    from ferlib.models import FERModel

    work = copy.deepcopy(model).eval()
    inputs = {k: v for k, v in (("landmarks5", landmarks5), ("landmarks8", landmarks8)) if v is not None}
    if isinstance(work, FERModel):
        inputs = {k: v for k, v in inputs.items() if k in work.needs_landmarks}
    target = target or primary_target(work)
    if classes is None:
        classes = [int(c) for c in predicted_classes(work, images, **inputs)]
    order = forward_order(work, images, **inputs)
    if not order:
        raise ValueError("cascading_randomization: the model has no layers with weights")
    steps = max(1, min(int(steps), len(order)))
    top_down = order[::-1]
    cuts = np.linspace(0, len(top_down), steps + 1).round().astype(int)[1:]
    modules = dict(work.named_modules())

    def cams_now() -> np.ndarray:
        layer = work.cam_targets()[target]
        cams = compute_cams(work, images, layer, classes=classes, method=method, **inputs)
        if isinstance(work, FERModel):
            cams = work.place_cams(target, cams, inputs, images.shape[-1])
        return cams

    reference = cams_now()
    rho = spearman_per_map(reference, reference)
    rows = [{"step": 0, "randomised": "(trained)", "layers": 0, "fraction": 0.0, **_summary(rho, reference)}]
    all_cams = {0: reference}
    done = 0
    for step, cut in enumerate(cuts, start=1):
        for k, name in enumerate(top_down[done:cut]):
            _reinitialise(modules[name], seed * 100_003 + done + k)
        done = int(cut)
        cams = cams_now()
        all_cams[step] = cams
        rho = spearman_per_map(reference, cams)
        rows.append(
            {
                "step": step,
                "randomised": top_down[done - 1] or "(root)",
                "layers": done,
                "fraction": done / len(order),
                **_summary(rho, cams),
            }
        )
    return pd.DataFrame(rows), all_cams


def _summary(rho: np.ndarray, cams: np.ndarray) -> dict[str, float]:
    ok = rho[np.isfinite(rho)]
    return {
        "empty": int((np.asarray(cams).reshape(len(cams), -1).max(axis=1) <= 0).sum()),
        "spearman": float(ok.mean()) if len(ok) else float("nan"),
        "spearman_sd": float(ok.std(ddof=1)) if len(ok) > 1 else float("nan"),
        "n": int(len(ok)),
    }
