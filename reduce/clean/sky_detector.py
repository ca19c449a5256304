"""Detector-fixed smooth structure under sky-fixed extended emission: a joint decomposition.

When :mod:`.frame_test` puts a group's shared smooth structure on the sky (emission filling
the field), a template's smooth part would remove the emission, so only its pixel-scale
structure is used. The detector's own smooth structure (glow, stray light, gradients) is
still in every exposure. Dithers that move the sky by several blocks separate the two
(self-calibration, as in Fixsen, Moseley & Arendt 2000, ApJS 128, 651): exposure ``i``'s
block medians are modelled as

    m_i(k) = A(k) + S(sky_i(k)) + c_i + noise,

with ``A`` on the detector's blocks, ``S`` a grid fixed on the sky (bilinear
interpolation at each block's sky position, through the exposures' FITS WCS) and ``c_i`` a
level per exposure (stage 3's skymatch matches levels). The weighted least-squares solution
has a smoothness prior (first differences of ``A`` and of ``S``' coefficients) of strength
``lambda``. Both ``lambda`` and whether ``A`` is used at all are chosen from the group's
data by leave-one-exposure-out cross-validation: each exposure's blocks, where the others
cover the same sky, are predicted from the others' fit (its level fitted) with and without
``A``; ``A`` is used only when it predicts better by more than one paired standard error.

A plane on the detector (a level and a linear gradient) cannot be told from a plane on the
sky plus per-exposure levels when the dithers are translations: ``A``'s plane is removed
(left to skymatch and to the sky, like the level) and reported. A pattern that scales with
the local sky brightness (flat-field-like) is not modelled: with 3-4 exposures its map was
not identifiable in tests (it fitted the training exposures and predicted the held-out ones
worse than the additive map).

Pure functions: arrays and coordinate transforms (callables) in, arrays and numbers out.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

__all__ = ["Decomposition", "LAMBDAS", "MIN_IMPROVEMENT_SE", "block_maps", "decompose", "upsample"]

#: Smoothness strengths tried (a neighbour difference of one block-noise sigma costs as much as
#: one sigma of one block's residual times ``sqrt(lambda)``).
LAMBDAS = (1e-4, 1e-3, 1e-2, 0.1, 1.0)

#: Conjugate-gradient tolerance (relative residual) and iteration limit of :meth:`_System.solve`.
CG_RTOL = 1e-12
CG_MAXITER = 100_000

#: A is used when its cross-validated error is below that without it by more than this many
#: paired standard errors (as a template must beat no template in :mod:`.template_model`).
MIN_IMPROVEMENT_SE = 1.0

#: Fewer sky blocks than this in any exposure: no decomposition (nothing to tell the frames apart).
MIN_BLOCKS = 16

#: Squared held-out residuals are clipped here (chi^2 per block): one exposure's remnant
#: (an unmasked source's wing, a transient) must not decide for the group.
CHI2_CLIP = 25.0


@dataclass
class Decomposition:
    """The outcome of :func:`decompose`: ``additive`` (block map of A, normalised units, its
    plane removed) or None when it did not beat no map; the cross-validated scores."""

    additive: np.ndarray | None
    block: int
    lam: float | None
    scores: dict = field(default_factory=dict)  # "<none|additive>_<lambda>" -> mean held-out chi^2 per block
    plane: tuple[float, float, float] = (0.0, 0.0, 0.0)  # removed from A: level, d/dx, d/dy per block
    rms: float = 0.0  # RMS of A over the blocks (normalised units)
    reason: str = ""

    @property
    def used(self) -> bool:
        return self.additive is not None

    def correction(self, shape: tuple[int, int]) -> np.ndarray:
        """A at every pixel of ``shape`` (normalised units), :func:`upsample`."""
        return upsample(self.additive, self.block, shape)

    def as_dict(self) -> dict:
        return {"used": self.used, "block": self.block, "lambda": self.lam, "cv_chi2": self.scores,
                "plane_removed": [float(f"{p:.4g}") for p in self.plane], "rms": float(f"{self.rms:.4g}"),
                "reason": self.reason}


def block_maps(planes: list[np.ndarray], block: int) -> tuple[np.ndarray, np.ndarray]:
    """Block medians (NaN where less than half of a block is finite) and their noise (the
    median's standard error from the plane's robust per-pixel sigma), ``(n, nby, nbx)``."""
    from astropy.stats import mad_std

    ny, nx = (planes[0].shape[0] // block) * block, (planes[0].shape[1] // block) * block
    meds, sig = [], []
    for p in planes:
        blk = p[:ny, :nx].reshape(ny // block, block, nx // block, block).transpose(0, 2, 1, 3)
        blk = blk.reshape(ny // block, nx // block, block * block)
        cnt = np.isfinite(blk).sum(axis=-1)
        with warnings.catch_warnings():  # all-NaN blocks or planes: NaN, no warning
            warnings.simplefilter("ignore", RuntimeWarning)
            med = np.nanmedian(blk, axis=-1)
            pix = float(mad_std(np.diff(p, axis=1), ignore_nan=True)) / math.sqrt(2.0)  # white noise per pixel
        med[cnt < (block * block) // 2] = np.nan
        meds.append(med)
        sig.append(pix * math.sqrt(math.pi / 2) / np.sqrt(np.maximum(cnt, 1)))
    return np.array(meds), np.array(sig)


def _neighbour_pairs(ny: int, nx: int, offset: int) -> np.ndarray:
    idx = np.arange(ny * nx).reshape(ny, nx) + offset
    return np.concatenate([np.stack([idx[:, :-1].ravel(), idx[:, 1:].ravel()], 1),
                           np.stack([idx[:-1, :].ravel(), idx[1:, :].ravel()], 1)])


class _System:
    """The design of the joint model for a group's block maps (kept between solves)."""

    def __init__(self, maps: np.ndarray, sig: np.ndarray, to_sky: list[Callable], to_pixel: list[Callable],
                 block: int):
        n, nby, nbx = maps.shape
        self.n, self.nby, self.nbx, self.nD = n, nby, nbx, nby * nbx
        yc, xc = (np.mgrid[0:nby, 0:nbx] * block + (block - 1) / 2.0).reshape(2, -1)
        uv = []
        for i in range(n):  # every block centre in exposure 0's pixel frame (the sky grid's frame)
            ra, dec = to_sky[i](xc, yc)
            u, v = to_pixel[0](ra, dec)
            uv.append((np.asarray(u, float) / block, np.asarray(v, float) / block))
        u_all = np.concatenate([a for a, _ in uv])
        v_all = np.concatenate([b for _, b in uv])
        ok = np.isfinite(u_all) & np.isfinite(v_all)
        self.u0, self.v0 = math.floor(u_all[ok].min()) - 1, math.floor(v_all[ok].min()) - 1
        self.snx = math.ceil(u_all[ok].max()) - self.u0 + 2
        self.sny = math.ceil(v_all[ok].max()) - self.v0 + 2
        self.nS = self.snx * self.sny
        self.rows = []  # per exposure: (block index, sky cells (4), weights (4), value, sigma)
        for i, (u, v) in enumerate(uv):
            m, s = maps[i].ravel(), sig[i].ravel()
            good = np.isfinite(m) & np.isfinite(u) & np.isfinite(v) & (s > 0)
            cells, w = self._cells(u[good], v[good])
            self.rows.append((np.flatnonzero(good), cells, w, m[good], s[good]))
        self.sig_ref = float(np.median(np.concatenate([r[4] for r in self.rows])))
        self.reg = np.concatenate([_neighbour_pairs(nby, nbx, 0), _neighbour_pairs(self.sny, self.snx, self.nD)])

    def _cells(self, u: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The 4 sky cells and bilinear weights at sky-grid positions (u, v) (blocks; outside
        the grid: its edge). (A cubic B-spline gave the same FULL-frame result at 2.5 times the
        solving time.)"""
        fu = np.clip(np.nan_to_num(u - self.u0), 0, self.snx - 1.001)
        fv = np.clip(np.nan_to_num(v - self.v0), 0, self.sny - 1.001)
        iu, iv = np.floor(fu).astype(int), np.floor(fv).astype(int)
        wu, wv = fu - iu, fv - iv
        cells = np.stack([iv * self.snx + iu, iv * self.snx + iu + 1,
                          (iv + 1) * self.snx + iu, (iv + 1) * self.snx + iu + 1], 1)
        w = np.stack([(1 - wu) * (1 - wv), wu * (1 - wv), (1 - wu) * wv, wu * wv], 1)
        return cells, w

    def solve(self, members: list[int], lam: float, with_map: bool, start: np.ndarray | None = None
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(A, S, solution vector) from ``members`` (their levels fitted), smoothness ``lam``;
        ``with_map`` False: A = 0; ``start``: an earlier solution vector of the same members
        (a warm start).

        Conjugate gradients on the normal equations with a Jacobi preconditioner, to a
        relative residual of ``CG_RTOL`` (agrees with a direct sparse solve to ~1e-8 of the
        structure on a FULL-frame group, in a tenth of the time)."""
        import scipy.sparse as sp
        from scipy.sparse.linalg import cg

        nD, nS = self.nD, self.nS
        ncol = nD + nS + len(members)  # columns: A, S, levels
        ri, ci, vals, rhs = [], [], [], []
        r = 0
        for j, i in enumerate(members):
            blk, cells, w, m, s = self.rows[i]
            k = np.arange(r, r + m.size)
            wt = 1.0 / s
            if with_map:
                ri.append(k); ci.append(blk); vals.append(wt)
            ri.append(np.repeat(k, cells.shape[1])); ci.append(nD + cells.ravel()); vals.append((w * wt[:, None]).ravel())
            ri.append(k); ci.append(np.full(m.size, nD + nS + j)); vals.append(wt)
            rhs.append(m * wt)
            r += m.size
        a, b = self.reg[:, 0], self.reg[:, 1]  # first differences of A and of S
        k = np.arange(r, r + a.size)
        g = math.sqrt(lam) / self.sig_ref
        ri += [k, k]; ci += [a, b]; vals += [np.full(a.size, g), np.full(a.size, -g)]
        rhs.append(np.zeros(a.size))
        r += a.size
        A = sp.csr_matrix((np.concatenate(vals), (np.concatenate(ri), np.concatenate(ci))), shape=(r, ncol))
        N = (A.T @ A).tocsr()
        diag = 1e-9 * float(N.diagonal().mean()) + np.r_[np.full(nD, 0.0 if with_map else 1.0), np.zeros(ncol - nD)]
        N = N + sp.diags(diag, format="csr")  # a ridge for the level's gauge; unused A pinned to 0
        x, info = cg(N, A.T @ np.concatenate(rhs), x0=start, M=sp.diags(1.0 / N.diagonal()), rtol=CG_RTOL,
                     maxiter=CG_MAXITER)
        if info != 0:
            raise ArithmeticError(f"sky/detector decomposition: conjugate gradients did not converge ({info})")
        return x[:nD], x[nD:nD + nS], x

    def held_out_chi2(self, i: int, members: list[int], A: np.ndarray, S: np.ndarray) -> float:
        """Mean clipped chi^2 of exposure ``i``'s blocks against A + S + c (c fitted: the median
        residual), over the blocks whose sky ``members`` cover (the nearest cell of one of their blocks): an
        interpolation of the others' sky, not an extrapolation."""
        covered = np.zeros(self.nS, bool)
        for j in members:
            covered[self.rows[j][1][np.arange(len(self.rows[j][2])), np.argmax(self.rows[j][2], axis=1)]] = True
        blk, cells, w, m, s = self.rows[i]
        res = m - A[blk] - (S[cells] * w).sum(axis=1)
        chi = (res - float(np.median(res))) / s
        inside = covered[cells[np.arange(len(w)), np.argmax(w, axis=1)]]
        return float(np.mean(np.minimum(chi[inside] ** 2, CHI2_CLIP))) if inside.any() else CHI2_CLIP


def _plane(D: np.ndarray, weight: np.ndarray, nby: int, nbx: int) -> tuple[np.ndarray, tuple]:
    y, x = np.mgrid[0:nby, 0:nbx].reshape(2, -1).astype(float)
    A = np.stack([np.ones_like(x), x, y], 1)
    sw = np.sqrt(weight)
    coef = np.linalg.lstsq(A * sw[:, None], D * sw, rcond=None)[0]
    return D - A @ coef, tuple(float(c) for c in coef)


def decompose(planes: list[np.ndarray], to_sky: list[Callable], to_pixel: list[Callable], block: int,
              lambdas: tuple[float, ...] = LAMBDAS) -> Decomposition:
    """The detector-fixed smooth structure of a group whose shared structure is on the sky.

    Parameters
    ----------
    planes : list of 2D `~numpy.ndarray`
        The members' normalised planes (sky ~1; sources, bad pixels NaN), same shape, with
        any pixel-scale template structure already removed.
    to_sky, to_pixel : lists of callables
        Per member, ``(x, y) -> (ra, dec)`` and back (0-based pixels, degrees).
    block : int
        Block size (pixels).

    Returns
    -------
    result : `Decomposition`
        ``additive``: ``(nby, nbx)`` block map of A (normalised units, its plane removed), or
        None; :meth:`Decomposition.correction` gives it at every pixel.
    """
    n = len(planes)
    if n < 3:
        return Decomposition(None, block, None, reason=f"{n} exposures: at least 3 are needed to cross-validate")
    maps, sig = block_maps(planes, block)
    usable = np.isfinite(maps) & np.isfinite(sig) & (sig > 0)
    short = [i for i in range(n) if np.count_nonzero(usable[i]) < MIN_BLOCKS]
    if short:
        return Decomposition(None, block, None, reason=f"exposure(s) {short} have fewer than {MIN_BLOCKS} sky blocks")
    system = _System(maps, sig, to_sky, to_pixel, block)
    try:
        return _choose(system, n, block, lambdas)
    except ArithmeticError as exc:  # a system CG cannot solve: no map, and the group says why
        return Decomposition(None, block, None, reason=str(exc))


def _choose(system: _System, n: int, block: int, lambdas: tuple[float, ...]) -> Decomposition:
    """Cross-validate, choose and fit (:func:`decompose`)."""
    chi: dict = {}
    for with_map in (False, True):
        starts: dict[int, np.ndarray] = {}
        for lam in sorted(lambdas, reverse=True):  # smoothest first: each solution starts the next
            per = []
            for i in range(n):
                others = [j for j in range(n) if j != i]
                A, S, starts[i] = system.solve(others, lam, with_map, starts.get(i))
                per.append(system.held_out_chi2(i, others, A, S))
            chi[(with_map, lam)] = np.array(per)
    scores = {f"{'additive' if w else 'none'}_{lam:g}": round(float(v.mean()), 5) for (w, lam), v in chi.items()}
    best = {w: min(lambdas, key=lambda lam: (chi[(w, lam)].mean(), -lam)) for w in (False, True)}
    diff = chi[(False, best[False])] - chi[(True, best[True])]
    se = float(np.std(diff, ddof=1)) / math.sqrt(n)
    out = Decomposition(None, block, best[True], scores)
    if not diff.mean() > MIN_IMPROVEMENT_SE * se:
        out.reason = (f"a detector map did not predict held-out exposures better than none by one standard error "
                      f"(chi2 {chi[(True, best[True])].mean():.3f} vs {chi[(False, best[False])].mean():.3f}, "
                      f"SE {se:.3f})")
        return out
    A, _, _ = system.solve(list(range(n)), out.lam, True)
    weight = np.zeros(system.nD)
    for blk, *_ in system.rows:
        np.add.at(weight, blk, 1.0)
    weight += 1e-3
    A, out.plane = _plane(A, weight, system.nby, system.nbx)
    out.additive = A.reshape(system.nby, system.nbx)
    out.rms = float(np.sqrt(np.average(A * A, weights=weight)))
    return out


def upsample(detector: np.ndarray, block: int, shape: tuple[int, int]) -> np.ndarray:
    """A block map (values at block centres) at every pixel of ``shape`` (bilinear; the
    nearest block beyond the outer centres). float32."""
    from scipy.ndimage import map_coordinates

    y = (np.arange(shape[0]) - (block - 1) / 2.0) / block
    x = (np.arange(shape[1]) - (block - 1) / 2.0) / block
    yy, xx = np.meshgrid(y, x, indexing="ij")
    return map_coordinates(detector, [yy, xx], order=1, mode="nearest").astype(np.float32)
