"""Quality of a reduction against the simulator's truth: ``mirim-reduce evaluate WORKSPACE``.

Per mosaic (``stage3/*/*_i2d.fits``; key ``filter``, plus ``mosaic`` since with
``mosaic_per = "observation"`` one filter may have several mosaics) these figures:

``rms_ratio``
    Standard deviation of the background residual in *source-free sky* divided by the
    *noise floor* (1.00 = perfect background removal; a residual pattern adds in
    quadrature).
``mean_sigma``
    Mean of the same residual in units of the noise floor (0 = no offset).
``flux_ratio``
    Median over the point sources above 20 sigma of (mosaic aperture flux) / (truth-scene
    aperture flux).
``scatter_pct``
    Robust standard deviation (1.4826 MAD) of the same sources' measured / true, in %.
``trend_pct_per_dex``
    Slope of measured / true against log10(true flux), in % per decade of flux: a
    straight line fitted by least squares weighted by each ratio's error (the aperture
    noise of the i2d variances over the true flux, plus ``TREND_ERR_FLOOR`` = 0.2 % in
    quadrature for the photometry's own systematics), with iterative 3-sigma outlier removal
    (NaN for fewer than 5 sources or less than 0.3 decade of flux). A flux-dependent bias
    (over-subtraction around bright sources by a background filter, say) shows here
    while the median ratio may stay at 1.
``flatness``
    Background flatness, scale-free: the standard deviation of the medians of the
    ``BLOCK_PX`` x ``BLOCK_PX`` (16 x 16) pixel blocks of the residual over source-free sky
    well inside the coverage, divided by the standard deviation of the medians of the
    *same* blocks (same pixels) of the noise-only mosaic below: what pure noise gives
    (1.0 ideal; background structure on scales of a block and more adds in quadrature).
    The noise mosaic is drizzled exactly as the i2d, so the correlation the resampling
    gives to neighbouring pixels (which makes a block median scatter more than the pixel
    noise over sqrt(256) suggests) is in the reference, with no model of it. In sky pixels
    the truth scene is below 5 % of the floor, so the residual there is the i2d itself
    (the scene is still subtracted). With ``check_noise`` the noise mosaic is itself
    checked against Gaussian noise of the crf variances (``noise_flatness``).

Definitions
-----------
residual
    ``mosaic SCI - truth scene`` (the simulator's ``sky_<filter>.fits`` SCENE: sources
    only, MJy/sr, bilinearly resampled onto the mosaic grid through both WCSs). The truth
    has no sky: a perfect background removal leaves only noise. Stage 3 runs skymatch
    (``global+match``, ``subtract=True`` in our defaults) so the sky level is *removed*,
    not merely matched: a non-zero mean is a residual of the reduction (of the cleaning
    or of skymatch's own sky estimate), not a convention. With ``SKIP_BKGSUB`` the
    uniform sky stays in the mosaic and ``mean_sigma`` measures it.
source-free sky
    Mosaic pixels that are finite, have ``WHT > 0``, are at least ``EDGE_PX`` pixels
    inside the covered area, and are farther than ``N_FWHM`` PSF FWHMs from every pixel
    where the truth scene exceeds ``SCENE_FRACTION`` of the noise floor (so faint wings of
    galaxies and every point source are excluded, as is the ~0.1" zero-point error of the
    mosaic's astrometry).
    A mosaic without such sky (under ``MIN_SKY_FRACTION`` of its covered pixels: a nebula
    or a disc fills the field) takes smooth extended emission as sky instead: the scene's
    large-scale level (:func:`extended_level`: 16x16-pixel block medians, median-filtered
    over 5x5 blocks) is subtracted before the threshold, so only compact structure and
    its surroundings are excluded; the truth of the emission is subtracted in the
    residual like the rest of the scene, so a cleaning that removes some of it shows as
    residual (``sky_on_extended`` true). Other mosaics are unaffected.
    For ``flatness`` the edge margin is ``FLAT_EDGE_PX`` pixels, and a block counts when at
    least half (``BLOCK_MIN_FRACTION``) of its pixels is such sky.
noise floor
    What a *perfect* background removal leaves: the mosaic of the exposures' own noise.
    Drizzling (square kernel, pixfrac 1) correlates the noise of neighbouring mosaic pixels
    and jwst's resample propagates variances without that correlation, so the i2d ERR
    overestimates the per-pixel scatter (by ~1.5 for pixfrac 1); and jwst's ramp fit
    reports a variance a few percent below the true scatter of its slopes when the
    Poisson noise dominates (non-optimal weights). The floor is therefore measured on a
    noise-only reduction: every stage-3 ``*_crf.fits`` of the mosaic (after tweakreg,
    skymatch and outlier flagging: same WCS, weights and rejected pixels) gets as SCI the
    exposure's *actual* noise, its stage-2 SCI minus the simulator's true count rate
    (``RATE`` of the rate truth: sky, sources, pattern and new hot pixels) converted as
    stage 2 does (divided by the flat reference, times PHOTMJSR), and is resampled with
    jwst's ResampleStep with the mosaic's own resample parameters onto the mosaic's grid.
    Pixels without a stage-2 value (bad pixels the cleaning filled) get a Gaussian of
    variance ``VAR_POISSON + VAR_RNOISE``; without a truth rate file for an exposure the
    whole exposure does (``N_REALISATIONS`` seeded realisations are then averaged). The
    floor is the standard deviation of that noise mosaic over the source-free pixels.
    Deterministic. Validated on the demo: a reduction whose cal files had the true
    background (pattern, sky, new hot pixels) removed gives ``rms_ratio`` 1.00.
    Both standard deviations are taken after clipping pixels more than ``CLIP_SIGMA``
    floors from the median (residual hot pixels and cosmic rays are not background).
point sources above 20 sigma
    Isolated truth point sources not tagged ``saturating``, ``5 FWHM + 2`` pixels inside the mosaic,
    with a finite, covered ``5 FWHM`` box, whose *true* aperture flux exceeds 20 times the
    aperture noise ``sqrt(sum(VAR_POISSON + VAR_RNOISE))`` over the aperture (the
    drizzled variance is the right one for sums over areas larger than the kernel).
    The mosaic aperture is centred on the source's centroid in the mosaic (:func:`recentre`),
    the truth aperture on its true position. The selection depends on the truth and the data noise only, so every variant of a
    reduction is scored on the same sources. Isolated: the aperture photometry of the truth
    scene gives the source's own flux within ``ISOLATION`` (neighbours, a galaxy's light
    and its curvature under the aperture change it by less than that; a faint star on a
    galaxy's core measures the galaxy's structure, not the reduction's photometry). Fluxes: circular aperture of radius
    2 FWHM minus the median of a 3-5 FWHM annulus, the *same* sky apertures on the mosaic
    and on the truth scene, so neighbours and galaxy light cancel.

Modules: :mod:`.metrics` pure metric functions on arrays (:func:`source_free_mask`, :func:`extended_level`,
:func:`residual_stats`, :func:`aperture_flux`, :func:`flux_ratio`, :func:`robust_scatter`,
:func:`paired_scatter_difference`, :func:`flux_trend`, :func:`block_medians`, :func:`flatness`); :mod:`.noise` the noise-only
mosaic and the truth in stage-2 units (:func:`rate_to_cal`); :mod:`.mosaic` the FITS reading
(:func:`evaluate_mosaic`, :func:`evaluate_workspace`).
"""

from .metrics import (BLOCK_MIN_FRACTION, BLOCK_PX, CLIP_SIGMA, EDGE_PX, EXTENDED_BLOCK_PX, EXTENDED_WINDOW_BLOCKS,
                      FLAT_EDGE_PX, ISOLATION, MIN_SKY_FRACTION, N_FWHM, SCENE_FRACTION, SNR_MIN, TREND_ERR_FLOOR, TREND_MIN_DEX,
                      TREND_MIN_SOURCES, aperture_flux, block_medians, clipped, disk, extended_level, flatness,
                      flux_ratio, flux_trend, paired_scatter_difference, recentre, residual_stats,
                      robust_scatter, source_free_mask)
from .mosaic import (GOALS, N_REALISATIONS, MosaicMetrics, evaluate_mosaic, evaluate_workspace, find_truth,
                     format_table)
from .noise import actual_noise, noise_mosaic, rate_to_cal, reproject_scene

__all__ = ["SCENE_FRACTION", "N_FWHM", "EDGE_PX", "CLIP_SIGMA", "SNR_MIN", "ISOLATION", "N_REALISATIONS",
           "BLOCK_PX", "BLOCK_MIN_FRACTION", "FLAT_EDGE_PX", "TREND_MIN_SOURCES", "TREND_MIN_DEX", "TREND_ERR_FLOOR",
           "EXTENDED_BLOCK_PX", "EXTENDED_WINDOW_BLOCKS", "MIN_SKY_FRACTION",
           "MosaicMetrics", "disk", "source_free_mask", "extended_level", "clipped", "residual_stats",
           "aperture_flux", "recentre", "flux_ratio", "robust_scatter", "paired_scatter_difference", "flux_trend",
           "block_medians", "flatness",
           "reproject_scene", "rate_to_cal", "actual_noise", "noise_mosaic", "evaluate_mosaic",
           "evaluate_workspace", "find_truth", "GOALS", "format_table"]
