"""MIRI imager facts shared by the simulator, the synthetic CRDS context and the stages.

Coordinates: detector pixels are 0-based full-frame (1032 columns x 1024 rows) unless a
name says ``sci``/``1-based``. Times in seconds, rates in DN/s.
"""

from __future__ import annotations

from dataclasses import dataclass

INSTRUMENT = "MIRI"
DETECTOR = "MIRIMAGE"
FULL_SHAPE = (1024, 1032)  # rows, columns
REFERENCE_COLUMNS = 4  # first and last four columns are reference pixels

FILTERS = ("F560W", "F770W", "F1000W", "F1130W", "F1280W", "F1500W", "F1800W", "F2100W", "F2550W")
READ_PATTERNS = ("FASTR1", "SLOWR1")
IMAGING_EXP_TYPE = "MIR_IMAGE"


@dataclass(frozen=True)
class Subarray:
    """A MIRI subarray: 1-based corner (xstart, ystart) and size in columns x rows."""

    name: str
    xstart: int
    ystart: int
    xsize: int
    ysize: int
    fast_frame_time: float  # s, FASTR1

    @property
    def slices(self) -> tuple[slice, slice]:
        """(row, column) slices of this subarray in a 0-based full-frame array."""
        return (slice(self.ystart - 1, self.ystart - 1 + self.ysize),
                slice(self.xstart - 1, self.xstart - 1 + self.xsize))

    @property
    def siaf_name(self) -> str:
        return f"MIRIM_{self.name}"


SUBARRAYS = {
    s.name: s
    for s in (
        Subarray("FULL", 1, 1, 1032, 1024, 2.77504),
        Subarray("BRIGHTSKY", 457, 51, 512, 512, 0.86528),
        Subarray("SUB256", 413, 51, 256, 256, 0.29952),
        Subarray("SUB128", 1, 889, 136, 128, 0.11904),
        Subarray("SUB64", 1, 779, 72, 64, 0.08544),
    )
}

SLOW_TO_FAST_FRAME_RATIO = 23.88824 / 2.77504  # SLOWR1 frame time relative to FASTR1


def frame_time(subarray: str, readpatt: str) -> float:
    """Frame (= group, NFRAMES=1) time in s for a subarray and read pattern."""
    t = SUBARRAYS[subarray].fast_frame_time
    return t * SLOW_TO_FAST_FRAME_RATIO if readpatt == "SLOWR1" else t


def effective_exposure_time(ngroups: int, nints: int, tframe: float) -> float:
    """EFFEXPTM in s as the pipeline's ramp fit sees it: (ngroups - 1) frames per integration."""
    return (ngroups - 1) * tframe * nints


def duration(ngroups: int, nints: int, tframe: float) -> float:
    """DURATION in s: total time of all integrations including the reset frame."""
    return (ngroups + 1) * tframe * nints


# Detector electronics (the same numbers go into the gain/readnoise/saturation references).
GAIN = 4.0  # e-/DN
READNOISE_CDS = 9.0  # DN, noise of a difference of two reads (what the readnoise reference holds)
READNOISE_READ = READNOISE_CDS / 2**0.5  # DN, noise of one read
PEDESTAL = 10_000.0  # DN, bias level of a freshly reset pixel
SATURATION = 62_000.0  # DN
DARK_RATE = 0.02  # DN/s, mean dark current
MAX_GROUPS = 60  # groups covered by dark and reset references

# Surface-brightness calibration: MJy/sr per DN/s for each filter (order of the real values).
PHOTMJSR = {
    "F560W": 0.62, "F770W": 0.28, "F1000W": 0.55, "F1130W": 1.35, "F1280W": 0.52,
    "F1500W": 0.42, "F1800W": 0.65, "F2100W": 0.48, "F2550W": 1.10,
}
# Central wavelength in micron, used for PSF width (diffraction limit ~ lambda/D).
PIVOT_WAVELENGTH = {
    "F560W": 5.6, "F770W": 7.7, "F1000W": 10.0, "F1130W": 11.3, "F1280W": 12.8,
    "F1500W": 15.0, "F1800W": 18.0, "F2100W": 21.0, "F2550W": 25.5,
}
PIXEL_SCALE = 0.1108  # arcsec / pixel (nominal)


def psf_fwhm_arcsec(filt: str) -> float:
    """Approximate PSF FWHM in arcsec: 1.03 lambda/D with D = 6.5 m (a floor of 0.2 arcsec)."""
    lam_m = PIVOT_WAVELENGTH[filt] * 1e-6
    return max(0.2, 1.03 * lam_m / 6.5 * 206264.806)


def pixel_area_sr() -> float:
    """Nominal pixel solid angle in steradians."""
    return (PIXEL_SCALE / 206264.806) ** 2
