"""How much of a super-background template to believe: chosen from the group's own data.

A leave-one-out template ``T`` (the median of the other members, normalised by their sky)
holds the detector-fixed background of the group plus the noise of a median of a few
exposures. Smoothing divides the noise but smears pixel-scale structure (column and row
stripes, warm pixels) that repeats in every exposure and must be subtracted, not smoothed
away. Which compromise is right depends on the pattern and on the group's depth, so no
single constant can suit every program. Here each candidate model of the template,

* ``box s``: a NaN-aware ``s x s`` box mean (``s = 1``: the raw median),
* ``+stripes``: plus the column and row structure of the residual ``T - box(T)``
  (means along each column and row over ``stripe_length`` pixels, each direction shrunk by
  its measured signal variance over signal plus noise variance: a direction with no
  stripes above the template's noise is not subtracted; :func:`.box_stats.stripe_levels`),
* ``+detail``: plus the pixels of the remaining residual that exceed ``DETAIL_SIGMA`` times
  the template's own noise (warm pixels and other pixel-scale features, kept unsmoothed),

(the template's isolated hot and warm pixels, :func:`.box_stats.isolated_spikes`, are left
out of every box mean and stripe level: only ``detail`` subtracts them, none spreads them;
``+rim`` models leave out the raised rim of its coverage holes too, as wide as the template
shows it: :func:`.hole_rim.rim_band`; :func:`.group_model.choose_background` scores the
chosen model's ``+rim`` twin)

is scored by **cross-validation**: exposure ``i``'s own normalised sky (sources and bad
pixels excluded) is predicted by the model of ``T_i``, which never saw exposure ``i``; the
prediction error, measured at the pixel scale and in 4 and 16 px blocks, each in units of
what the exposure's own white noise gives at that scale (:func:`cv_score`), averaged over
the members, is the score. Its expectation is the exposure's own noise (the same for every
candidate) plus the template's error at each scale, so the lowest score is the model that
best removes the real pattern at the least added noise, at small and large scales alike
(the score itself: :mod:`.prediction_error`). ``none`` (no template: a flat background) is scored the
same way and wins when the template does not help.

Pure functions: numpy arrays in, numpy arrays out.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from astropy.stats import mad_std

from .box_stats import isolated_spikes, level_noise, nan_box, stripe_length, stripe_levels
from .hole_rim import raised_rim
from .prediction_error import cv_score, white_noise_variance

__all__ = ["TemplateModel", "candidates", "nan_box", "apply_model", "predictions", "cv_score", "choose_model",
           "member_scores", "select_model",
           "paired_standard_error",
           "DETAIL_SIGMA", "NONE"]

#: A residual pixel is real template structure when above this many sigma of the template's
#: own noise (false-positive rate 6e-5 per pixel for Gaussian noise).
DETAIL_SIGMA = 4.0


@dataclass(frozen=True)
class TemplateModel:
    """One way of using a template: a ``box`` x ``box`` smoothing (1 = none), plus column
    and row structure (``stripes``) and significant pixels (``detail``) of the residual.
    ``use_template = False`` is the no-template model (a flat background); ``smooth =
    False`` keeps only the stripes and detail (pixel-scale detector structure) and leaves
    the smooth background alone (:mod:`.frame_test`: when it is on the sky)."""

    box: int = 1
    stripes: bool = False
    detail: bool = False
    use_template: bool = True
    smooth: bool = True  # False: only the stripes / detail (the box-smoothed part is left alone)
    rim: bool = False  # the raised rim of the template's holes left out of the smoothing (hole_rim)

    @property
    def name(self) -> str:
        if not self.use_template:
            return "none"
        return (("box" if self.smooth else "highpass") + f"{self.box}" + ("+stripes" if self.stripes else "")
                + ("+detail" if self.detail else "") + ("+rim" if self.rim else ""))


NONE = TemplateModel(use_template=False)


#: Pixel-scale models (the raw template, ``detail``) need a median of at least this many
#: other exposures: with fewer, one exposure's unmasked faint source or transient enters
#: the template at full strength (a median of 3 rejects one outlier).
MIN_OTHERS_PIXEL_SCALE = 3


#: Smoothing boxes (pixels) of the candidate models.
BOXES = (1, 3, 5, 9, 17, 33, 65)


def candidates(boxes: tuple[int, ...] = BOXES, include_none: bool = True,
               n_others: int = MIN_OTHERS_PIXEL_SCALE, smooth: bool = True) -> list[TemplateModel]:
    """Every model to try: the raw template, each box with and without stripes and detail,
    and (``include_none``) no template. With fewer than :data:`MIN_OTHERS_PIXEL_SCALE`
    exposures in each template (``n_others``), only smoothed models without detail. With
    ``smooth = False``, only high-pass models (stripes and/or detail, no smooth part)."""
    pixel = n_others >= MIN_OTHERS_PIXEL_SCALE
    if not smooth:
        out = [TemplateModel(b, s, d, smooth=False) for b in boxes if b > 1
               for s, d in ((True, False), (False, True), (True, True)) if pixel or not d]
        return out + ([NONE] if include_none else [])
    out = [TemplateModel(1)] if pixel else []
    for b in boxes:
        if b > 1:
            out += [TemplateModel(b, s, d) for s in (False, True) for d in ((False, True) if pixel else (False,))]
    if include_none:
        out.append(NONE)
    return out


def _significant(resid: np.ndarray, template_var: np.ndarray | None, threshold: np.ndarray | None = None
                 ) -> np.ndarray:
    """Residual pixels above ``DETAIL_SIGMA`` times the template's noise (its variance, or
    without it the residual's robust standard deviation). ``threshold``: ``DETAIL_SIGMA``
    times the square root of ``template_var`` clipped at 0, when the caller has it already."""
    if template_var is not None:
        threshold = _detail_threshold(template_var) if threshold is None else threshold
    else:
        r = resid[np.isfinite(resid)]
        threshold = DETAIL_SIGMA * (float(mad_std(r)) if r.size else np.inf)
    with np.errstate(invalid="ignore"):
        return np.isfinite(resid) & (np.abs(resid) > threshold)


def _detail_threshold(template_var: np.ndarray) -> np.ndarray:
    return DETAIL_SIGMA * np.sqrt(np.maximum(template_var, 0.0))


def apply_model(template: np.ndarray, template_var: np.ndarray | None, model: TemplateModel,
                info: dict | None = None) -> tuple[np.ndarray, np.ndarray | None]:
    """The template as ``model`` uses it, and its variance (normalised units squared).

    Parameters
    ----------
    template : 2D `~numpy.ndarray`
        Normalised leave-one-out template (NaN where not covered).
    template_var : 2D `~numpy.ndarray`, optional
        Its variance; needed for ``detail`` (without it the residual's robust standard
        deviation is used as the noise) and returned transformed.
    model : `TemplateModel`
    info : dict, optional
        Filled with the stripes' figures (``stripes``: :func:`.box_stats.stripe_levels`) when the model has them.

    Returns
    -------
    template, variance : 2D float32 `~numpy.ndarray`, 2D `~numpy.ndarray` or None
        For ``none``: zeros (nothing to subtract beyond a constant) and zero variance.
    """
    t = np.asarray(template, np.float64)
    pred, n, keep = _variants(t, template_var, [model], info)[model]
    pred = pred.astype(np.float32)
    if template_var is None:
        return pred, None
    if not model.use_template:
        return pred, np.zeros_like(t)
    if model.box <= 1:
        return pred, template_var
    n = np.maximum(n, 1.0)
    var = template_var / n
    if model.stripes:
        var = var + 2.0 * template_var / stripe_length(t.shape)
    if keep is not None:
        var = np.where(keep, template_var, var)
    if not model.smooth:  # the structure only
        var = np.maximum(var - template_var / n, 0.0)
    return pred, var


def _variants(t: np.ndarray, template_var: np.ndarray | None, models: list[TemplateModel],
              info: dict | None = None, rim_mask: np.ndarray | None = None) -> dict:
    """``{model: (predicted template, pixels in its box mean, detail pixels kept)}`` for
    every model (float64; the last two None where they do not apply), sharing the
    smoothing of a box between its variants. ``rim_mask``: the template's raised rim
    (:func:`.hole_rim.raised_rim`) when the caller has it."""
    finite = np.isfinite(t)
    out: dict[TemplateModel, tuple] = {}
    threshold = (_detail_threshold(template_var) if template_var is not None and any(m.detail for m in models)
                 else None)  # of the template's noise, for every detail model
    L = stripe_length(t.shape)
    # hot / warm pixels of the template: left out of every box mean and stripe level (they
    # would spread over the box or the column), kept as pixels by ``detail``
    smoothed = any(m.use_template and m.box > 1 for m in models)
    spikes = isolated_spikes(t, template_var, DETAIL_SIGMA) if smoothed else None
    left_out = {False: spikes}
    if any(m.use_template and m.box > 1 and m.rim for m in models):
        left_out[True] = spikes | (_raised_rim(t, info) if rim_mask is None else rim_mask)
    t_smooth = {rim: np.where(excl, np.nan, t) for rim, excl in left_out.items()} if smoothed else {}
    stripe_noise: dict[bool, np.ndarray | None] = {}
    for box, rim in sorted({(m.box, m.rim) for m in models if m.use_template}):
        variants = [m for m in models if m.use_template and m.box == box and m.rim == rim]
        if box <= 1:
            for m in variants:
                out[m] = (t, None, None)
            continue
        excluded = left_out[rim]
        smooth, n = nan_box(t_smooth[rim], (box, box), finite)
        if rim:  # a pixel whose box holds nothing but rim takes the rim's mean: every box predicts every pixel
            gap = finite & np.isnan(smooth)
            if gap.any():
                near, n_near = nan_box(t_smooth[False], (box, box), finite)
                smooth[gap], n[gap] = near[gap], n_near[gap]
        resid = t - smooth
        stripes = None
        if any(m.stripes for m in variants):
            figures = info.setdefault("stripes", {}) if info is not None else None
            if rim not in stripe_noise:  # the same for every box
                stripe_noise[rim] = (level_noise(finite & ~excluded, template_var, L, finite)
                                     if template_var is not None else None)
            stripes = stripe_levels(resid, stripe_noise[rim], L, figures, exclude=excluded)
        for m in variants:
            base = smooth + stripes[0] + stripes[1] if m.stripes else smooth
            keep = None
            if m.detail:
                keep = _significant(t - base, template_var, threshold)
                base = np.where(keep, t, base)
            if not m.smooth:
                base = base - smooth
            out[m] = (np.where(finite, base, np.nan), n, keep)
    for m in models:
        if not m.use_template:
            out[m] = (np.where(finite, 0.0, np.nan), None, None)
    return out


def _raised_rim(t: np.ndarray, info: dict | None) -> np.ndarray:
    """The pixels of the raised rim around the template's coverage holes
    (:func:`.hole_rim.raised_rim`; none without a significant rim); its figures go to ``info["rim"]``."""
    rim, figures = raised_rim(t)
    if info is not None and figures is not None:
        info["rim"] = figures
    return rim


def predictions(template: np.ndarray, template_var: np.ndarray | None, models: list[TemplateModel],
                rim_mask: np.ndarray | None = None) -> dict[TemplateModel, np.ndarray]:
    """``{model: predicted template}`` (float64) for every model: the arrays
    :func:`apply_model` gives, with one smoothing per box for all its variants (``rim_mask``:
    the template's :func:`.hole_rim.raised_rim`, when the caller has it)."""
    t = np.asarray(template, np.float64)
    return {m: v[0] for m, v in _variants(t, template_var, models, rim_mask=rim_mask).items()}


def paired_standard_error(scores: list[float], reference: list[float]) -> float:
    """Standard error of the mean of the members' paired differences ``scores - reference``
    (0 with fewer than two members): by how much a more complex background model must beat a
    simpler one (a template no template, here; Background2D + structure Background2D alone)."""
    if len(scores) < 2:
        return 0.0
    d = np.asarray(scores) - np.asarray(reference)
    return float(np.std(d, ddof=1) / np.sqrt(len(d)))


def choose_model(own_planes: list[np.ndarray], templates: list[np.ndarray],
                 template_vars: list[np.ndarray | None], models: list[TemplateModel] | None = None
                 ) -> tuple[TemplateModel, dict[str, float], float]:
    """The model the cross-validation supports.

    Every model is scored on every member (:func:`cv_score`); the lowest mean score is the
    best and is chosen, unless ``none`` (no template) is a candidate and the best does not
    beat it by one standard error of the members' paired score differences: a template is
    subtracted only where the group's data show that it helps. Among templates the score
    decides alone: it already charges each model its template noise at 1, 4 and 16 px.

    Parameters
    ----------
    own_planes : list of 2D `~numpy.ndarray`
        Each member's normalised image with sources and bad pixels NaN.
    templates, template_vars : lists of 2D `~numpy.ndarray`
        Each member's leave-one-out template (it never contains the member) and its variance.
    models : list of `TemplateModel`, optional
        Default :func:`candidates`.

    Returns
    -------
    chosen : `TemplateModel`
    scores : dict of str -> float
        Every model's mean score relative to the lowest (1.0 = lowest; 1.08 = 8 % more
        error in noise units), for the summary.
    chosen_score : float
        The chosen model's absolute mean score (noise units).
    """
    models = candidates() if models is None else models
    members = [member_scores(own, tmpl, tvar, models)
               for own, tmpl, tvar in zip(own_planes, templates, template_vars)]
    return select_model(members, models)


def member_scores(own: np.ndarray, template: np.ndarray, template_var: np.ndarray | None,
                  models: list[TemplateModel]) -> dict[TemplateModel, float]:
    """One member's cross-validated score of every model (:func:`cv_score` of each model's
    prediction from the member's leave-one-out ``template``; noise units): the per-member
    part of :func:`choose_model`, independent of the other members."""
    nv = white_noise_variance(own)
    return {m: cv_score(own, pred, noise_var=nv)[0] for m, pred in predictions(template, template_var, models).items()}


def select_model(members: list[dict[TemplateModel, float]], models: list[TemplateModel]
                 ) -> tuple[TemplateModel, dict[str, float], float]:
    """:func:`choose_model`'s choice from the members' scores (:func:`member_scores`, in
    member order)."""
    per: dict[TemplateModel, list[float]] = {m: [] for m in models}
    for member in members:
        if all(np.isfinite(v) for v in member.values()):
            for m, v in member.items():
                per[m].append(v)
    if not per[models[0]]:
        return models[0], {m.name: None for m in models}, float("inf")
    means = {m: float(np.mean(v)) for m, v in per.items()}
    best = min(models, key=lambda m: (means[m], models.index(m)))
    chosen = best
    if NONE in per and best != NONE and means[NONE] - means[best] <= paired_standard_error(per[NONE], per[best]):
        chosen = NONE
    ref = means[best]
    scores = {m.name: (round(means[m] / ref, 5) if ref > 0 else None) for m in models}
    return chosen, scores, means[chosen]
