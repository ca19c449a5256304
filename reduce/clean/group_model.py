"""A group's stack of masked, normalised exposures, their leave-one-out templates, and the
choice of background model the group's own data make (cross-validation, :mod:`.template_model`,
:mod:`.local_background`; smooth models only when :mod:`.frame_test` puts the shared
structure on the detector). Arrays in, arrays and scores out; no I/O.
"""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np

from ..params import CleanParams
from . import frame_test as ftest, hole_rim as hr, local_background as lb, sky_detector as sd
from . import super_background as sb, template_model as tm
from .io import Exposure

__all__ = ["MAX_CV_MEMBERS", "GroupStack", "member_plane", "choose_background", "background2d_plus_structure"]

#: At most this many members score the models (evenly spaced; enough to rank them).
MAX_CV_MEMBERS = 4


class GroupStack:
    """The group's stack and the per-member leave-one-out templates with their variances."""

    def __init__(self, shape: tuple, n: int):
        self.stack = np.full((n,) + shape, np.nan, np.float32)
        self.var_sum = np.zeros(shape, np.float64)
        self.var_cnt = np.zeros(shape, np.int32)
        self.norm_var: dict[int, np.ndarray] = {}
        self.transforms: dict[int, tuple | None] = {}
        self.loo: sb.LeaveOneOut | None = None
        self.selfcal: sd.Decomposition | None = None  # smooth detector structure (:mod:`.sky_detector`)

    def put(self, i: int, plane: np.ndarray, var: np.ndarray | None, transforms: tuple | None) -> None:
        """Member ``i`` from :func:`member_plane`'s (plane, variance) and its pixel <-> sky transforms."""
        self.stack[i] = plane
        self.transforms[i] = transforms
        if var is not None:
            contrib = np.isfinite(plane)
            self.var_sum[contrib] += var[contrib]
            self.var_cnt += contrib
            self.norm_var[i] = var

    def finish(self, n_used: int) -> None:
        self.stack = self.stack[:n_used]
        self.loo = sb.leave_one_out(self.stack) if n_used >= 2 else None

    def frame(self) -> ftest.FrameTest | None:
        """Detector- or sky-fixed smooth structure (:mod:`.frame_test`); None when it
        cannot be measured (one exposure, or a file without a celestial WCS)."""
        n = self.stack.shape[0]
        tr = [self.transforms.get(i) for i in range(n)]
        if n < 2 or any(t is None for t in tr):
            return None
        noise = [tm.white_noise_variance(self.stack[i]) for i in range(n)]
        return ftest.frame_test(list(self.stack), [t[0] for t in tr], [t[1] for t in tr], noise)

    def self_calibrate(self, frame: ftest.FrameTest, model: tm.TemplateModel | None) -> sd.Decomposition:
        """The smooth detector structure under sky-fixed emission (:func:`.sky_detector.decompose`)
        from the members' planes less ``model``'s pixel-scale template structure; kept in
        ``selfcal`` when the group's data choose a detector map."""
        n = self.stack.shape[0]
        planes = []
        for i in range(n):
            plane = self.stack[i]
            if model is not None and model.use_template and self.loo is not None:
                tmpl, tvar = self.template(i)
                plane = plane - np.nan_to_num(tm.apply_model(tmpl, tvar, model)[0])
            planes.append(plane)
        tr = [self.transforms[i] for i in range(n)]
        out = sd.decompose(planes, [t[0] for t in tr], [t[1] for t in tr], frame.block)
        if out.used:
            self.selfcal = out
        return out

    def detector_map(self, i: int) -> np.ndarray | None:
        """Member ``i``'s smooth detector structure from :meth:`self_calibrate` (normalised), or None."""
        return None if self.selfcal is None else self.selfcal.correction(self.stack.shape[1:])

    def template(self, i: int) -> tuple[np.ndarray, np.ndarray | None]:
        tmpl, n_others = self.loo.template(self.stack[i])
        tvar = None
        if i in self.norm_var:
            tvar = sb.template_variance(self.var_sum, self.var_cnt, self.norm_var[i], n_others)
        return tmpl, tvar


def member_plane(exp: Exposure, excluded: np.ndarray, sky: float) -> tuple[np.ndarray, np.ndarray | None]:
    """An exposure's plane of the stack (float32, SCI / ``sky``, NaN where ``excluded`` or not
    finite, or where ERR is not) and its variance ((ERR / sky)^2, float64, NaN outside the
    plane; None without ERR). Dimensionless."""
    plane = sb.masked_normalised(exp.sci, excluded, sky)
    if exp.err is None:
        return plane, None
    plane[~np.isfinite(exp.err)] = np.nan
    contrib = np.isfinite(plane)
    var = np.full(plane.shape, np.nan)
    var[contrib] = (exp.err[contrib].astype(np.float64) / sky) ** 2
    return plane, var


def choose_background(group: GroupStack, usable: list[str], policy: str, params: CleanParams, sky_fixed: bool = False,
                      max_box: int | None = None, mapper=None
                      ) -> tuple[str, tm.TemplateModel | None, int | None, dict, list[str]]:
    """(method, template model, Background2D box, scores, scoring members) for the group.

    ``sky_fixed``: the smooth structure the exposures share is on the sky (extended
    emission): only high-pass template models, and no Background2D (it would remove it).
    ``max_box``: the largest smoothing box of the high-pass models (structure on larger
    scales is the frame test's to attribute, and the self-calibration's block maps',
    :meth:`GroupStack.self_calibrate`). ``mapper(fn, items)``: ``[fn(i) for i in items]``,
    possibly in other processes (:func:`reduce.workers.fork_map`): the members' template
    scores are computed through it, each the same wherever it runs."""
    n = len(usable)
    idx = sorted({round(k * (n - 1) / max(1, MAX_CV_MEMBERS - 1)) for k in range(min(n, MAX_CV_MEMBERS))})
    names = [usable[i] for i in idx]
    fixed = int(params.template_smooth)
    method_cfg = params.small_group_background if policy == "small" else "template"
    scores: dict = {}
    best_model, best_score = None, math.inf
    if method_cfg in ("template", "auto") and group.loo is not None:
        boxes = tuple(b for b in tm.BOXES if max_box is None or b <= max_box)
        models = tm.candidates(boxes, include_none=(method_cfg == "auto" or fixed == 0), n_others=n - 1,
                               smooth=not sky_fixed) if fixed == 0 else [tm.TemplateModel(fixed, smooth=not sky_fixed)]

        def scores_of(i: int) -> dict:
            return tm.member_scores(group.stack[i], *group.template(i), models)

        run = mapper or (lambda fn, items: [fn(x) for x in items])
        members = run(scores_of, idx)
        best_model, rel, best_score = tm.select_model(members, models)
        scores.update(rel)
        if fixed == 0 and best_model.use_template and best_model.box > 1:
            best_model, best_score = _rim_or_not(group, idx, best_model, members, best_score, scores, run)
    box = None
    b2d_preds: dict[int, list] = {}
    if method_cfg in ("background2d", "auto") and not sky_fixed:
        planes = [group.stack[i] for i in idx] if group.stack.shape[0] else []
        box, bscores = lb.choose_box(planes, b2d_preds) if planes else (None, {})
        if box is not None and method_cfg == "auto" and best_model is not None and math.isfinite(best_score):
            scores.update({k: round(v / best_score, 5) for k, v in bscores.items()})
            if bscores[f"background2d_{box}"] >= best_score:
                box = None
        elif box is not None and method_cfg == "auto":
            scores.update(bscores)
    if box is not None:
        hp = (background2d_plus_structure(group, idx, box, b2d_preds[box], n, scores)
              if method_cfg == "auto" else None)
        if hp is not None:
            return "background2d+template", hp, box, scores, names
        return "background2d", None, box, scores, names
    if best_model is None or not best_model.use_template:
        return "none", best_model, None, scores, names
    return "template", best_model, None, scores, names


def _rim_or_not(group: GroupStack, idx: list[int], model: tm.TemplateModel, members: list[dict],
                score: float, scores: dict, run) -> tuple[tm.TemplateModel, float]:
    """The chosen model, or its twin that leaves the raised rim of the template's holes out
    of the smoothing (``+rim``, :mod:`.hole_rim`), whichever the same members' cross-validated
    scores put lower: the rim is sources' light that a box spreads, or detector structure
    that belongs in it, and only the held-out exposures can tell. Adds the twin's score
    (relative to the model's) to ``scores``; with no member's template showing a rim, no twin."""
    twin = replace(model, rim=True)

    def twin_score(i: int) -> float | None:
        pred = _rim_prediction(group, i, twin)
        return None if pred is None else _score(group.stack[i], pred)

    alt, base = _paired_means(run(twin_score, idx), [m[model] for m in members])
    if alt is None:
        return model, score
    scores[twin.name] = round(alt / base, 5) if base > 0 else None
    return (twin, alt) if alt < base else (model, score)


def _rim_prediction(group: GroupStack, i: int, twin: tm.TemplateModel) -> np.ndarray | None:
    """Member ``i``'s prediction by the ``+rim`` model ``twin``; None when its template shows no rim
    (the twin is then the model itself)."""
    tmpl, tvar = group.template(i)
    rim, figures = hr.raised_rim(tmpl)
    if figures is None or not figures["band"]:
        return None
    return tm.predictions(tmpl, tvar, [twin], rim_mask=rim)[twin]


def _score(own: np.ndarray, pred: np.ndarray) -> float:
    """A member's cross-validated score of ``pred`` (:func:`.template_model.cv_score`, noise units)."""
    return tm.cv_score(own, pred, noise_var=tm.white_noise_variance(own))[0]


def _paired_means(twins: list, model: list[float]) -> tuple[float | None, float]:
    """Mean score of the twin (the model's own where a member has no rim) and of the model,
    over the members where both are finite; (None, 0) when no member has a rim."""
    if all(v is None for v in twins):
        return None, 0.0
    pairs = [(m, m if v is None else v) for m, v in zip(model, twins)
             if np.isfinite(m) and (v is None or np.isfinite(v))]
    if not pairs:
        return None, 0.0
    base, alt = (float(np.mean(x)) for x in zip(*pairs))
    return alt, base


def background2d_plus_structure(group: GroupStack, idx: list[int], box: int, b2d_preds: list, n: int,
                                 scores: dict) -> tm.TemplateModel | None:
    """With a per-exposure Background2D for the smooth part, does the pixel-scale structure
    of the leave-one-out template (stripes, detail: :func:`.template_model.candidates` with
    ``smooth=False``) improve the cross-validated prediction? ``b2d_preds``: the members'
    cross-validated Background2D predictions (:func:`.local_background.choose_box`).
    Returns the best such model, or None; adds ``background2d_<box>+<model>`` scores
    (relative to Background2D alone)."""
    if group.loo is None:
        return None
    models = tm.candidates(include_none=False, n_others=n - 1, smooth=False)
    base, per = [], {m: [] for m in models}
    for i, b2d in zip(idx, b2d_preds):
        own = group.stack[i]
        if b2d is None:
            return None
        nv = tm.white_noise_variance(own)
        base.append(tm.cv_score(own, b2d, noise_var=nv)[0])
        tmpl, tvar = group.template(i)
        for m, pred in tm.predictions(tmpl, tvar, models).items():
            per[m].append(tm.cv_score(own, b2d + np.nan_to_num(pred), noise_var=nv)[0])
    ref = float(np.mean(base))
    means = {m: float(np.mean(v)) for m, v in per.items()}
    best = min(models, key=lambda m: (means[m], models.index(m)))
    for m in models:
        scores[f"background2d_{box}+{m.name}"] = round(means[m] / ref, 5)
    if means[best] - ref > -tm.paired_standard_error(per[best], base):  # not better by 1 SE
        return None
    if means[best] >= ref:
        return None
    twin = replace(best, rim=True)  # as for the template models (:func:`_rim_or_not`)
    twins = []
    for i, b2d in zip(idx, b2d_preds):
        pred = _rim_prediction(group, i, twin)
        twins.append(None if pred is None else _score(group.stack[i], b2d + np.nan_to_num(pred)))
    alt, mean = _paired_means(twins, per[best])
    if alt is None:
        return best
    scores[f"background2d_{box}+{twin.name}"] = round(alt / ref, 5)
    return twin if alt < mean else best
