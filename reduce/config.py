"""One configuration schema (TOML) for every parameter of a reduction.

The top-level keys are the original notebook's parameters, named as it names them and with
its defaults. The tables ``[detector1.<step>]``, ``[image2.<step>]`` and ``[image3.<step>]``
hold jwst step parameters, named as the pipeline names them; they are checked against the
installed pipeline's own step specifications (see :func:`check_step_parameters`).

Load order: built-in defaults < ``--config FILE`` < command-line flags. The effective
configuration is written into the workspace as ``config.toml``.
"""

from __future__ import annotations

import copy
import datetime as _dt
import re
import tomllib
from pathlib import Path
from typing import Any

from .errors import ConfigError

#: The original's parameters: name -> (default, type, description).
SEED_PARAMETERS: dict[str, tuple[Any, type, str]] = {
    "save_outputs": (False, bool, "also copy the pipeline logs next to the products (logs always go to WORKSPACE/logs)"),
    "SKIP_BKGSUB": (False, bool, "skip the uniform (skymatch) background subtraction in stage 3"),
    "DETECT_THRESH": (10.0, float, "source detection threshold in units of the local background RMS (SExtractor DETECT_THRESH)"),
    "OVERWRITE": (False, bool, "redo work whose outputs already exist"),
    "MEDIAN_FILTER": (True, bool, "fill NaN pixels outside sources with the median of their neighbours"),
    "WINDOW_SIZE": (1, int, "median filter half-width in pixels: a (2w+1) x (2w+1) window"),
    "SUPER_BKG_SUB": (True, bool, "subtract a super background built from the other exposures of a group"),
    "SMALL_SOURCE_THRESH": (0, int, "sources of <= this many pixels leave the source mask (0: keep all)"),
    "DILATE_SEG": (True, bool, "dilate the source mask"),
    "DILATE_ITERATIONS": (2, int, "number of 3x3 dilations of the source mask"),
    "MEDIAN_THRESH": (5, int, "minimum number of exposures in a group for a super background"),
    "SUPPRESS_WARNINGS": (True, bool, "keep Python warnings (all-NaN slices etc.) out of the console"),
    "DESTINATION_DIRECTORY": ("", str, "where packaged products go ('' = WORKSPACE/products)"),
    "WORKING_DIRECTORY": ("", str, "the workspace ('' = the --workdir option or ./mirim-work)"),
    "DATE": ("", str, "date stamp of packaged product names, %d%b%Y ('' = today)"),
    "MAKE_CUTOUTS": (True, bool, "make TA-box cutouts of the mosaics"),
}

#: Run-control parameters that the original did not have.
RUN_PARAMETERS: dict[str, tuple[Any, type, str]] = {
    "jobs": (1, int, "exposures processed in parallel processes"),
    "mosaic_per": ("observation", str, "'observation': one mosaic per (observation, filter); 'filter': one per filter"),
    "template_smooth": (0, int, "smoothing of each super-background template: 0 = chosen per group from its own "
                                "data (cross-validated against each exposure's sky, see clean_summary.json), "
                                "1 = none, N = a fixed N x N box"),
    "small_group_background": ("auto", str, "groups with fewer than MEDIAN_THRESH exposures: 'auto' (the "
                                            "cross-validated best of a leave-one-out template, a per-exposure "
                                            "Background2D and nothing), 'template', 'background2d', or 'none' "
                                            "(the original: no background treatment)"),
    "clean_outlier_sigma": (0.0, float, "also median-fill finite pixels this many sigma above their neighbours "
                                        "(hot pixels the mask missed; 0 = off)"),
    "clean_second_pass": (True, bool, "clean twice: mosaic the first cleaning (WORKSPACE/pass1), detect sources on "
                                       "the deeper mosaics, add that mask to every exposure's and clean again"),
}

#: jwst step parameters. Pipeline defaults apply to everything not listed here.
PIPELINE_DEFAULTS: dict[str, dict[str, dict[str, Any]]] = {
    "detector1": {
        # Single-threaded steps: parallelism comes from --jobs, and results do not depend on it.
        "jump": {"maximum_cores": "1"},
        "ramp_fit": {"maximum_cores": "1"},
    },
    "image2": {},
    "image3": {
        # The original's alignment, sky and outlier settings (workflow.md section 6).
        # separation must exceed sqrt(2) x tolerance in jwst 3 (the original's 0.5 made tweakreg skip alignment)
        "tweakreg": {"minobj": 7, "searchrad": 1.0, "separation": 1.0, "tolerance": 0.7},
        "skymatch": {"skymethod": "global+match", "subtract": True},
        "outlier_detection": {"snr": "3.0 2.5", "scale": "10.0 5.0", "maskpt": 0.2},
        "resample": {"kernel": "square", "pixfrac": 1.0, "pixel_scale_ratio": 1.0},
    },
}

PIPELINE_CLASSES = {
    "detector1": "Detector1Pipeline",
    "image2": "Image2Pipeline",
    "image3": "Image3Pipeline",
}

_MOSAIC_PER = ("observation", "filter")
_SMALL_GROUP = ("auto", "template", "background2d", "none")


def defaults() -> dict[str, Any]:
    """The built-in configuration."""
    cfg: dict[str, Any] = {k: v[0] for k, v in SEED_PARAMETERS.items()}
    cfg.update({k: v[0] for k, v in RUN_PARAMETERS.items()})
    cfg.update(copy.deepcopy(PIPELINE_DEFAULTS))
    return cfg


def _check_scalar(key: str, value: Any, typ: type) -> Any:
    if typ is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if typ is int and isinstance(value, bool) or not isinstance(value, typ):
        raise ConfigError(f"config key {key!r} must be {typ.__name__}, got {value!r}")
    return value


def merge(base: dict[str, Any], override: dict[str, Any], source: str) -> dict[str, Any]:
    """Return ``base`` updated with ``override``; unknown keys and wrong types raise ConfigError."""
    out = copy.deepcopy(base)
    schema = {**SEED_PARAMETERS, **RUN_PARAMETERS}
    for key, value in override.items():
        if key in schema:
            out[key] = _check_scalar(key, value, schema[key][1])
        elif key in PIPELINE_CLASSES:
            if not isinstance(value, dict):
                raise ConfigError(f"{source}: [{key}] must be a table of steps")
            for step, params in value.items():
                if not isinstance(params, dict):
                    raise ConfigError(f"{source}: [{key}.{step}] must be a table of step parameters")
                out[key].setdefault(step, {}).update(params)
        else:
            raise ConfigError(f"{source}: unknown config key {key!r} "
                              f"(known: {', '.join(sorted(schema) + sorted(PIPELINE_CLASSES))})")
    if out["mosaic_per"] not in _MOSAIC_PER:
        raise ConfigError(f"config key 'mosaic_per' must be one of {_MOSAIC_PER}, got {out['mosaic_per']!r}")
    if out["small_group_background"] not in _SMALL_GROUP:
        raise ConfigError(f"config key 'small_group_background' must be one of {_SMALL_GROUP}, "
                          f"got {out['small_group_background']!r}")
    for key in ("WINDOW_SIZE", "DILATE_ITERATIONS", "MEDIAN_THRESH", "SMALL_SOURCE_THRESH", "jobs", "template_smooth"):
        if out[key] < (1 if key in ("jobs", "WINDOW_SIZE", "MEDIAN_THRESH") else 0):
            raise ConfigError(f"config key {key!r} is out of range: {out[key]!r}")
    if out["DATE"]:
        try:
            _dt.datetime.strptime(out["DATE"], "%d%b%Y")
        except ValueError:
            raise ConfigError(f"config key 'DATE' must look like 25Nov2026 (%d%b%Y), got {out['DATE']!r}") from None
    return out


def load(path: Path | None = None, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """Defaults, then the TOML file at ``path``, then ``overrides`` (e.g. CLI flags)."""
    cfg = defaults()
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"config file {path} does not exist")
        try:
            data = tomllib.loads(path.read_text())
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None
        cfg = merge(cfg, data, str(path))
    if overrides:
        cfg = merge(cfg, {k: v for k, v in overrides.items() if v is not None}, "command line")
    return cfg


_SPEC_LINE = re.compile(r"^\s*(\w+)\s*=\s*(\w+)\((.*)\)")
_SPEC_TYPES = {"float": (int, float), "integer": (int,), "boolean": (bool,), "string": (str,)}


def _step_spec(step_class) -> dict[str, tuple[str, str]]:
    """Parameter name -> (spec type, spec arguments) from a stpipe Step's spec string."""
    from stpipe import Step

    spec = {}
    for cls in (Step, step_class):
        for line in (cls.spec or "").splitlines():
            m = _SPEC_LINE.match(line)
            if m:
                spec[m.group(1)] = (m.group(2), m.group(3))
    return spec


def check_step_parameters(cfg: dict[str, Any]) -> None:
    """Check every ``[<pipeline>.<step>]`` parameter against the installed jwst pipeline.

    Imports jwst: call only after the CRDS environment is configured.
    """
    from jwst import pipeline as jp

    for section, clsname in PIPELINE_CLASSES.items():
        pipe = getattr(jp, clsname)
        for step, params in cfg[section].items():
            if step not in pipe.step_defs:
                raise ConfigError(f"config: [{section}.{step}]: {clsname} has no step {step!r} "
                                  f"(steps: {', '.join(pipe.step_defs)})")
            spec = _step_spec(pipe.step_defs[step])
            for name, value in params.items():
                key = f"{section}.{step}.{name}"
                if name not in spec:
                    raise ConfigError(f"config: unknown parameter {key!r} of jwst step {step}")
                typ, args = spec[name]
                ok_types = _SPEC_TYPES.get(typ)
                if value is None and "default=None" in args:
                    continue
                if ok_types and (not isinstance(value, ok_types)
                                 or (typ != "boolean" and isinstance(value, bool))):
                    raise ConfigError(f"config: parameter {key!r} must be {typ}, got {value!r}")
                if typ == "option":
                    options = re.findall(r"'([^']*)'", args.split("default=")[0])
                    if value not in options:
                        raise ConfigError(f"config: parameter {key!r} must be one of {options}, got {value!r}")


def step_overrides(cfg: dict[str, Any], section: str) -> dict[str, dict[str, Any]]:
    """The ``steps=`` argument for a jwst pipeline call (SKIP_BKGSUB skips stage 3's skymatch)."""
    steps = copy.deepcopy(cfg[section])
    if section == "image3" and cfg["SKIP_BKGSUB"]:
        steps.setdefault("skymatch", {})["skip"] = True
    return steps


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if value is None:
        raise ConfigError("None cannot be written to TOML")
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'


def to_toml(cfg: dict[str, Any]) -> str:
    """Serialise a configuration (deterministic order, with the descriptions as comments)."""
    lines = ["# mirim-reduce effective configuration", ""]
    for key, (_, _, doc) in {**SEED_PARAMETERS, **RUN_PARAMETERS}.items():
        lines.append(f"# {doc}")
        lines.append(f"{key} = {_toml_value(cfg[key])}")
    for section in PIPELINE_CLASSES:
        for step in sorted(cfg[section]):
            lines += ["", f"[{section}.{step}]"]
            lines += [f"{k} = {_toml_value(v)}" for k, v in sorted(cfg[section][step].items())
                      if v is not None]
    return "\n".join(lines) + "\n"
