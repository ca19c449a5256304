"""The joint decomposition of detector- and sky-fixed smooth structure (reduce.clean.sky_detector)."""

from __future__ import annotations

import numpy as np
import pytest

from reduce.clean import sky_detector as sd


def _shift(tx, ty):
    return (lambda x, y: (np.asarray(x) + tx, np.asarray(y) + ty)), (lambda a, d: (np.asarray(a) - tx, np.asarray(d) - ty))


def _group(detector_amp, seed=3, n=4, shape=(256, 256), noise=0.01, offsets=((0, 0), (45, 10), (-20, 60), (70, -40))):
    """Planes (sky ~1) = 1 + level + S(sky) + D(detector) + noise, translations ``offsets`` (px)."""
    rng = np.random.default_rng(seed)
    ny, nx = shape
    y, x = np.mgrid[0:ny, 0:nx].astype(float)

    def det(x, y):  # glow in one corner and a bump: smooth, not a plane
        return detector_amp * (np.exp(-((x - 10) ** 2 + (y - 240) ** 2) / (2 * 50.0 ** 2))
                               - 0.7 * np.exp(-((x - 170) ** 2 + (y - 90) ** 2) / (2 * 35.0 ** 2)))

    def sky(a, d):  # emission filling the field, fixed on the sky
        return 0.3 * np.exp(-((a - 120) ** 2 + (d - 150) ** 2) / (2 * 90.0 ** 2)) + 0.05 * np.sin(a / 40.0)

    planes, to_sky, to_pix = [], [], []
    for tx, ty in offsets[:n]:
        p = 1 + rng.normal(0, 0.01) + det(x, y) + sky(x + tx, y + ty) + rng.normal(0, noise, shape)
        p[rng.random(shape) < 0.1] = np.nan  # masked sources and bad pixels
        planes.append(p.astype(np.float32))
        f, g = _shift(tx, ty)
        to_sky.append(f)
        to_pix.append(g)
    return planes, to_sky, to_pix, det(x, y)


def _deplane(a):
    y, x = np.mgrid[0:a.shape[0], 0:a.shape[1]].reshape(2, -1).astype(float)
    A = np.stack([np.ones_like(x), x, y], 1)
    return a - (A @ np.linalg.lstsq(A, a.ravel(), rcond=None)[0]).reshape(a.shape)


def test_recovers_detector_structure_under_sky_emission():
    planes, to_sky, to_pix, truth = _group(0.02)
    out = sd.decompose(planes, to_sky, to_pix, block=16)
    assert out.used, (out.reason, out.scores)
    full = out.correction(planes[0].shape)
    err = _deplane(full.astype(float)) - _deplane(truth)
    # what is left is the block maps' own noise (4 exposures, ~0.0008 per block), a fraction of the structure
    assert np.std(err) < 0.25 * np.std(_deplane(truth)), (np.std(err), np.std(_deplane(truth)))
    assert out.scores[f"additive_{out.lam:g}"] < min(v for k, v in out.scores.items() if k.startswith("none"))
    assert out.as_dict()["used"] is True


def test_no_detector_structure_is_not_invented():
    planes, to_sky, to_pix, _ = _group(0.0, seed=5)
    out = sd.decompose(planes, to_sky, to_pix, block=16)
    if out.used:  # allowed only if it is at the noise of a block map
        assert out.rms < 0.01 / 16 * 2
    else:
        assert "did not predict" in out.reason


def test_too_few_exposures():
    planes, to_sky, to_pix, _ = _group(0.02, n=2)
    out = sd.decompose(planes, to_sky, to_pix, block=16)
    assert not out.used and "at least 3" in out.reason


@pytest.mark.parametrize("shape", [(64, 80), (100, 37)])
def test_upsample_shape_and_centres(shape):
    blk = np.arange(4 * 5, dtype=float).reshape(4, 5)
    up = sd.upsample(blk, 16, (64, 80))
    assert up.shape == (64, 80) and up.dtype == np.float32
    # block centres are at 7.5 + 16 k: pixel 23 is 1/32 of a block before centre (1, 1)
    assert up[7, 7] == pytest.approx(0.0, abs=0.3) and up[16 + 7, 16 + 7] == pytest.approx(6.0 - 6 / 32, abs=1e-4)
    assert sd.upsample(blk, 16, shape).shape == shape


def test_group_stack_self_calibrates_a_sky_dominated_group():
    """The group's stack (reduce.clean.group_model): the frame test calls the shared structure
    sky-fixed, and the detector map the group keeps is the detector structure, at every pixel."""
    from reduce.clean.group_model import GroupStack

    planes, to_sky, to_pix, truth = _group(0.02)
    group = GroupStack(planes[0].shape, len(planes))
    for i, plane in enumerate(planes):
        group.put(i, plane, None, (to_sky[i], to_pix[i]))
    group.finish(len(planes))
    frame = group.frame()
    assert frame.sky_dominated, frame.as_dict()
    out = group.self_calibrate(frame, None)
    assert out.used and out.block == frame.block
    dmap = group.detector_map(2)
    assert dmap.shape == planes[0].shape and dmap.dtype == np.float32
    assert np.std(_deplane(dmap.astype(float)) - _deplane(truth)) < 0.25 * np.std(_deplane(truth))


def test_high_pass_models_stop_at_the_block_where_the_sky_is_fixed():
    """Structure on the frame test's blocks and above is not the template's to subtract where the
    smooth structure is sky-fixed: every model scored keeps boxes <= max_box."""
    from reduce.clean.group_model import GroupStack, choose_background
    from reduce.params import CleanParams

    planes, to_sky, to_pix, _ = _group(0.02, n=4)
    group = GroupStack(planes[0].shape, len(planes))
    for i, plane in enumerate(planes):
        group.put(i, plane, None, (to_sky[i], to_pix[i]))
    group.finish(len(planes))
    names = [f"e{i}" for i in range(len(planes))]
    method, model, _, scores, _ = choose_background(group, names, "small", CleanParams(), sky_fixed=True, max_box=17)
    boxes = {int(k.split("+")[0].removeprefix("highpass")) for k in scores if k.startswith("highpass")}
    assert boxes and max(boxes) <= 17
    _, _, _, all_scores, _ = choose_background(group, names, "small", CleanParams(), sky_fixed=True)
    assert any(k.startswith("highpass65") for k in all_scores)


def test_an_exposure_without_sky_blocks_gives_no_map_and_a_reason():
    planes, to_sky, to_pix, _ = _group(0.02)
    planes[1] = np.full(planes[1].shape, np.nan, np.float32)  # e.g. every pixel masked or bad
    out = sd.decompose(planes, to_sky, to_pix, block=16)
    assert not out.used and "fewer than" in out.reason and "[1]" in out.reason


def test_a_system_that_does_not_converge_gives_no_map_and_a_reason(monkeypatch):
    planes, to_sky, to_pix, _ = _group(0.02)
    monkeypatch.setattr(sd, "CG_MAXITER", 1)
    out = sd.decompose(planes, to_sky, to_pix, block=16)
    assert not out.used and "did not converge" in out.reason
