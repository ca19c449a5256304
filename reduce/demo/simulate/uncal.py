"""One exposure: its specification, its metadata as MAST writes it, and the uncal file.

Length: one exposure's specification, MAST-like metadata and the Level1b writer belong
together (the metadata must match what the writer puts in); splitting would scatter one format.

The file is a stdatamodels ``Level1bModel`` saved to FITS (PRIMARY, SCI uint16
(nints, ngroups, ny, nx), GROUP and INT_TIMES tables, ASDF). The file DATE is derived
from the exposure time, not the wall clock, so the same inputs give the same bytes.
"""

from __future__ import annotations

import dataclasses
import math
import os
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np

from ... import instrument as inst
from . import artefacts as artefacts_mod, geometry, ramps, rates, scene as scene_mod

SIM_VERSION = "2"  # bump when the simulated data change for a given seed
MJD_UNIX_EPOCH = 40587.0
TT_MINUS_UTC_S = 69.184
SCA_NUM = {"MIRIMAGE": 493, "MIRIFULONG": 494, "MIRIFUSHORT": 495}


@dataclass(frozen=True)
class ExposureSpec:
    """Everything that defines one exposure except the noise.

    Dither offsets are in the aperture's ideal frame (arcsec); ``pointing_error`` is the
    true minus commanded position of the target in V2/V3 (arcsec), never in the header;
    ``sky_factor`` scales the nominal sky; ``start_mjd`` is the UTC exposure start."""

    observation: int
    activity: int
    exposure: int
    filter: str
    subarray: str
    ngroups: int
    start_mjd: float
    program: str = "09999"
    visit: int = 1
    visit_group: int = 2
    sequence: int = 1
    readpatt: str = "FASTR1"
    nints: int = 1
    exp_type: str = inst.IMAGING_EXP_TYPE
    detector: str = inst.DETECTOR
    pa_v3_ref: float = 250.0
    dither_position: int = 1
    dither_total: int = 1
    dither_pattern: str = "4-POINT"
    dither_offset: tuple[float, float] = (0.0, 0.0)
    pointing_error: tuple[float, float] = (0.0, 0.0)
    sky_factor: float = 1.0
    aperture: str | None = None
    extra: dict = field(default_factory=dict, compare=False)

    @property
    def aperture_name(self) -> str:
        return self.aperture or f"MIRIM_{self.subarray}"

    @property
    def tframe(self) -> float:
        return inst.frame_time(self.subarray, self.readpatt)

    @property
    def duration(self) -> float:
        return inst.duration(self.ngroups, self.nints, self.tframe)

    @property
    def stem(self) -> str:
        """MAST file-name stem, e.g. ``jw09999001001_02101_00001_mirimage``."""
        return (f"jw{self.program}{self.observation:03d}{self.visit:03d}_{self.visit_group:02d}"
                f"{self.sequence:1d}{self.activity:02d}_{self.exposure:05d}_{self.detector.lower()}")

    @property
    def filename(self) -> str:
        return f"{self.stem}_uncal.fits"


@dataclass
class ExposureResult:
    """What was written: the file, the spec as used, the nominal (header) and true pointings,
    the noise-free rates, the cosmic rays."""

    path: Path
    spec: ExposureSpec
    nominal: geometry.Pointing
    true: geometry.Pointing
    rates: rates.Rates
    crs: np.ndarray


def pointings(spec: ExposureSpec, scn: scene_mod.Scene) -> tuple[geometry.Pointing, geometry.Pointing]:
    """(nominal, true) pointing: the target at the aperture reference point + the dither
    offset, with V3 at ``pa_v3_ref`` there; the true one adds ``pointing_error``."""
    dv2, dv3 = geometry.ideal_to_v2v3_offset(spec.aperture_name, *spec.dither_offset)
    nominal = geometry.pointing_for_offset(spec.aperture_name, scn.ra0, scn.dec0, spec.pa_v3_ref, dv2, dv3)
    e2, e3 = spec.pointing_error
    true = geometry.pointing_for_offset(spec.aperture_name, scn.ra0, scn.dec0, spec.pa_v3_ref, dv2 + e2, dv3 + e3)
    return nominal, true


def noise_free_rates(spec: ExposureSpec, scn: scene_mod.Scene, pointing: geometry.Pointing,
                     artefacts: artefacts_mod.Artefacts | None = None) -> rates.Rates:
    """The exposure's noise-free count rates (DN/s) for a pointing, with the program's
    ``artefacts`` (default: the demo's)."""
    canvas = geometry.detector_canvas(pointing, spec.subarray, scn.ra0, scn.dec0)
    filt = spec.filter if spec.filter in inst.FILTERS else "F770W"  # non-imaging: a stand-in scene
    src = scene_mod.surface_brightness(scn, filt, canvas, spec.sky_factor, with_sky=False)
    sky = scn.sky(filt, canvas.xi, canvas.eta, spec.sky_factor)
    return rates.count_rates(src + sky, filt, spec.subarray, sky_mjysr=sky, artefacts=artefacts,
                             exposure_key=artefacts_mod.exposure_key(spec))


# ---------------------------------------------------------------- time helpers

def _iso(mjd: float) -> str:
    from astropy.time import Time

    return Time(mjd, format="mjd", scale="utc").isot


def _tables(spec: ExposureSpec, ny: int, nx: int) -> tuple[np.ndarray, np.ndarray]:
    from astropy.time import Time

    tf = spec.tframe / 86400.0
    tdb = TT_MINUS_UTC_S / 86400.0  # barycentric offsets are not modelled
    int_rows, grp_rows = [], []
    for i in range(spec.nints):
        t0 = spec.start_mjd + i * (spec.ngroups + 1) * tf
        t1 = t0 + (spec.ngroups + 1) * tf
        int_rows.append((i + 1, t0, 0.5 * (t0 + t1), t1, t0 + tdb, 0.5 * (t0 + t1) + tdb, t1 + tdb))
        for g in range(spec.ngroups):
            te = t0 + (g + 1) * tf
            t = Time(te, format="mjd", scale="utc")
            day0 = Time(f"{t.datetime.year}-01-01", scale="utc")
            doy = int(te - day0.mjd) + 1
            ms = (te - math.floor(te)) * 86400_000.0
            grp_rows.append((i + 1, g + 1, doy, int(ms), int(round((ms - int(ms)) * 1000)) % 1000,
                             t.isot, nx, ny, 0, 0, "COMPLETE", te + tdb, te + tdb))
    int_dt = np.dtype([("integration_number", ">i4"), ("int_start_MJD_UTC", ">f8"), ("int_mid_MJD_UTC", ">f8"),
                       ("int_end_MJD_UTC", ">f8"), ("int_start_BJD_TDB", ">f8"), ("int_mid_BJD_TDB", ">f8"),
                       ("int_end_BJD_TDB", ">f8")])
    grp_dt = np.dtype([("integration_number", ">i4"), ("group_number", ">i2"), ("end_day", ">i2"),
                       ("end_milliseconds", ">i4"), ("end_submilliseconds", ">i2"), ("group_end_time", "S26"),
                       ("number_of_columns", ">i2"), ("number_of_rows", ">i2"), ("number_of_gaps", ">i2"),
                       ("completion_code_number", ">i2"), ("completion_code_text", "S36"),
                       ("bary_end_time", ">f8"), ("helio_end_time", ">f8")])
    return np.array(int_rows, dtype=int_dt), np.array(grp_rows, dtype=grp_dt)


# ---------------------------------------------------------------- metadata

def _s_region(p: geometry.Pointing, aperture: str) -> str:
    ap = geometry.siaf_aperture(aperture)
    xc, yc = ap.corners("idl", rederive=False)
    v2, v3 = ap.idl_to_tel(np.asarray(xc), np.asarray(yc))
    ra, dec = geometry.v2v3_to_sky(p.matrix, v2, v3)
    return "POLYGON ICRS  " + " ".join(f"{a:.9f} {d:.9f}" for a, d in zip(ra, dec))


def fill_metadata(model, spec: ExposureSpec, scn: scene_mod.Scene, p: geometry.Pointing) -> None:
    """Set every header value a MAST MIRI Level-1b exposure carries that the pipeline or
    the reduction reads, for commanded pointing ``p``."""
    sub = inst.SUBARRAYS[spec.subarray]
    ap = geometry.siaf_aperture(spec.aperture_name)
    m = model.meta
    end_mjd = spec.start_mjd + spec.duration / 86400.0
    mid_mjd = 0.5 * (spec.start_mjd + end_mjd)
    start_iso = _iso(spec.start_mjd)
    m.origin = "mirim-reduce simulator"
    m.time_sys = "UTC"
    m.telescope = "JWST"
    m.data_processing_software_version = f"mirim-reduce-sim {SIM_VERSION}"
    m.program.title = "SIMULATED: mirim-reduce demonstration program"
    m.program.pi_name = "Simulator, Mirim"
    m.program.category = "GO"
    m.program.sub_category = "UNKNOWN"
    m.program.science_category = "Galaxies"
    m.program.continuation_id = 0

    obs = m.observation
    obs.date, obs.time = start_iso.split("T")
    obs.date_beg, obs.date_end = start_iso, _iso(end_mjd)
    obs.program_number = spec.program
    obs.observation_number = f"{spec.observation:03d}"
    obs.visit_number = f"{spec.visit:03d}"
    obs.visit_group = f"{spec.visit_group:02d}"
    obs.sequence_id = f"{spec.sequence:1d}"
    obs.activity_id = f"{spec.activity:02d}"
    obs.exposure_number = f"{spec.exposure:05d}"
    obs.visit_id = f"{spec.program}{spec.observation:03d}{spec.visit:03d}"
    obs.obs_id = (f"V{spec.program}{spec.observation:03d}{spec.visit:03d}P0000000"
                  f"{spec.visit_group:02d}{spec.sequence:1d}{spec.activity:02d}")
    obs.template = "MIRI Imaging"
    obs.observation_label = f"demo obs {spec.observation}"
    obs.bkgdtarg = False

    m.visit.type = "PRIME_TARGETED_FIXED"
    m.visit.engineering_quality = "OK"
    m.visit.start_time = start_iso.replace("T", " ")
    m.visit.total_exposures = int(spec.extra.get("visit_total_exposures", spec.dither_total))
    m.visit.internal_target = False
    m.visit.too_visit = False
    m.visit.tsovisit = False
    m.visit.crowded_field = False
    m.visit.engdb_pointing_quality = "CALCULATED"

    m.target.proposer_name = scn.target_name
    m.target.catalog_name = scn.target_name
    m.target.type = "FIXED"
    m.target.description = "simulated extragalactic field"
    m.target.ra, m.target.dec = scn.ra0, scn.dec0
    m.target.proposer_ra, m.target.proposer_dec = scn.ra0, scn.dec0
    m.target.ra_uncertainty = m.target.dec_uncertainty = 0.0
    m.target.source_type_apt = "EXTENDED"

    ins = m.instrument
    ins.name = inst.INSTRUMENT
    ins.detector = spec.detector
    ins.filter = spec.filter
    ins.ccc_state = "OPEN"

    ex = m.exposure
    ex.type = spec.exp_type
    ex.prime_parallel = "PRIME"
    ex.start_time = ex.start_time_mjd = spec.start_mjd
    ex.mid_time = ex.mid_time_mjd = mid_mjd
    ex.end_time = ex.end_time_mjd = end_mjd
    tdb = TT_MINUS_UTC_S / 86400.0
    ex.start_time_tdb, ex.mid_time_tdb, ex.end_time_tdb = spec.start_mjd + tdb, mid_mjd + tdb, end_mjd + tdb
    ex.readpatt = spec.readpatt
    ex.nints = spec.nints
    ex.integration_start = 1
    ex.integration_end = spec.nints
    ex.ngroups = spec.ngroups
    ex.nframes = 1
    ex.miri_fsw_ngroups = spec.ngroups
    ex.miri_fsw_nframes = 1
    ex.frame_divisor = 1
    ex.groupgap = 0
    ex.nsamples = 1
    ex.sample_time = 10.0
    ex.frame_time = spec.tframe
    ex.group_time = spec.tframe
    ex.integration_time = (spec.ngroups - 1) * spec.tframe
    ex.exposure_time = inst.effective_exposure_time(spec.ngroups, spec.nints, spec.tframe)
    ex.effective_exposure_time = ex.exposure_time
    ex.measurement_time = ex.exposure_time
    ex.duration = spec.duration
    ex.elapsed_exposure_time = spec.duration
    ex.nresets_at_start = 1
    ex.nresets_between_ints = 1
    ex.zero_frame = False
    ex.data_problem = False
    ex.sca_num = SCA_NUM.get(spec.detector, 493)
    ex.count = 1

    sa = m.subarray
    sa.name = spec.subarray
    sa.xstart, sa.ystart, sa.xsize, sa.ysize = sub.xstart, sub.ystart, sub.xsize, sub.ysize
    sa.fastaxis, sa.slowaxis = 1, 2

    d = m.dither
    d.primary_type = "NONE" if spec.dither_total <= 1 else "CYCLING"
    d.primary_dither_type = spec.dither_pattern if spec.dither_total > 1 else "NONE"
    d.primary_points = spec.dither_total
    d.position_number = spec.dither_position
    d.pattern_start = 1
    d.total_points = spec.dither_total
    d.pattern_size = "DEFAULT"
    d.optimized_for = "EXTENDED-SOURCE"
    d.direction = "POSITIVE"
    d.x_offset, d.y_offset = spec.dither_offset
    ra_d, dec_d = geometry.v2v3_to_sky(p.matrix, *ap.idl_to_tel(*spec.dither_offset))
    d.dithered_ra, d.dithered_dec = float(ra_d), float(dec_d)

    m.aperture.name = spec.aperture_name
    m.aperture.pps_name = spec.aperture_name
    m.aperture.position_angle = float(np.mod(p.roll_ref + ap.V3IdlYAngle, 360.0))

    ra_v1, dec_v1, pa_v3 = p.v1()
    m.pointing.ra_v1, m.pointing.dec_v1, m.pointing.pa_v3 = ra_v1, dec_v1, pa_v3
    m.velocity_aberration.scale_factor = 1.0
    m.velocity_aberration.va_ra_ref = p.ra_ref
    m.velocity_aberration.va_dec_ref = p.dec_ref

    w = m.wcsinfo
    w.wcsaxes = 2
    w.v2_ref, w.v3_ref = p.v2_ref, p.v3_ref
    w.ra_ref, w.dec_ref, w.roll_ref = p.ra_ref, p.dec_ref, p.roll_ref
    w.v3yangle = float(ap.V3IdlYAngle)
    w.vparity = int(ap.VIdlParity)
    w.siaf_xref_sci, w.siaf_yref_sci = float(ap.XSciRef), float(ap.YSciRef)
    w.crpix1, w.crpix2 = float(ap.XSciRef), float(ap.YSciRef)
    w.crval1, w.crval2 = p.ra_ref, p.dec_ref
    w.ctype1, w.ctype2 = "RA---TAN", "DEC--TAN"
    w.cunit1, w.cunit2 = "deg", "deg"
    w.cdelt1, w.cdelt2 = float(ap.XSciScale) / 3600.0, float(ap.YSciScale) / 3600.0
    rel = math.radians(p.roll_ref) - w.vparity * math.radians(w.v3yangle)
    w.pc1_1, w.pc1_2 = w.vparity * math.cos(rel), math.sin(rel)
    w.pc2_1, w.pc2_2 = w.vparity * -math.sin(rel), math.cos(rel)
    w.s_region = _s_region(p, spec.aperture_name)
    m.coordinates.reference_frame = "ICRS"

    m.guidestar.gs_pcs_mode = "FINEGUIDE"
    m.guidestar.gs_v3_pa_science = pa_v3


@lru_cache(maxsize=1)
def _model_class():
    """Level1bModel whose save stamps a given DATE instead of the wall clock."""
    from stdatamodels.jwst.datamodels import Level1bModel
    from stdatamodels.model_base import DataModel

    class _ReproducibleLevel1b(Level1bModel):
        _save_as: tuple[str, str] = ("", "")  # (DATE, FILENAME) to stamp on save

        @property
        def _model_type(self):
            return "Level1bModel"

        def on_save(self, init=None):
            DataModel.on_save(self, init)
            self.meta.date, self.meta.filename = type(self)._save_as

    return _ReproducibleLevel1b


def _save_reproducibly(model, path: Path, final_name: str, date_iso: str) -> None:
    """``model.save`` with a fixed DATE and the final file name (saved under a temporary one)."""
    cls = type(model)
    cls._save_as = (date_iso, final_name)  # class attribute: DataModel routes instance attributes to the tree
    try:
        model.save(str(path))
    finally:
        cls._save_as = ("", "")


def write_exposure(path, spec: ExposureSpec, scn: scene_mod.Scene, *, rng: np.random.Generator,
                   artefacts: artefacts_mod.Artefacts | None = None, **overrides) -> ExposureResult:
    """Simulate ``spec`` (with ``overrides`` of its fields, e.g. ``exp_type="MIR_TACQ"``,
    ``subarray="FULL"``, ``ngroups=5``) and write it atomically to ``path`` (a file, or a
    folder to write the MAST-named file into). ``artefacts``: the program's background
    artefacts (default: the demo's, i.e. only the fixed detector pattern)."""
    spec = dataclasses.replace(spec, **overrides) if overrides else spec
    path = Path(path)
    if path.is_dir():
        path = path / spec.filename
    nominal, true = pointings(spec, scn)
    r = noise_free_rates(spec, scn, true, artefacts)
    sub = inst.SUBARRAYS[spec.subarray]
    crs = ramps.cosmic_rays(rng, (sub.ysize, sub.xsize), spec.ngroups, spec.nints, spec.duration)
    data = ramps.make_ramps(r.total, ngroups=spec.ngroups, nints=spec.nints, tframe=spec.tframe, rng=rng,
                            pedestal=ramps.pedestal_map()[sub.slices], crs=crs)
    model = _model_class()(data=data)
    fill_metadata(model, spec, scn, nominal)
    model.int_times, model.group = _tables(spec, sub.ysize, sub.xsize)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp.fits")
    try:
        _save_reproducibly(model, tmp, path.name, _iso(spec.start_mjd + spec.duration / 86400.0 + 0.1))
        os.replace(tmp, path)
    finally:
        model.close()
        if tmp.exists():
            tmp.unlink()
    return ExposureResult(path, spec, nominal, true, r, crs)
