"""One configuration schema (TOML) for every parameter of a reduction.

The top-level keys are the original notebook's parameters, named as it names them and with
its defaults. The tables ``[detector1.<step>]``, ``[image2.<step>]`` and ``[image3.<step>]``
hold jwst step parameters, named as the pipeline names them; they are checked against the
installed pipeline's own step specifications (see :func:`check_step_parameters`).

Load order: built-in defaults < ``--config FILE`` < command-line flags. The effective
configuration is written into the workspace as ``config.toml``.

Origins: :func:`load` returns a :class:`Config`, a plain dict that also records where each
value came from (``origins``): "config default" (the built-in defaults below), "config file
<path>" or "command line". :func:`to_toml` writes a non-default origin as a trailing
``# from: <origin>`` comment, and :func:`load` reads those comments back from an effective
configuration (a file that starts with :data:`EFFECTIVE_HEADER`), so a stage rerun on a
workspace keeps the origins of the run that wrote it. Where jwst itself and CRDS parameter
references come in is :mod:`reduce.stages.parameters`.

The stages do not read this dict: :func:`reduce.params.parse` makes typed, frozen sections of
it once (the cleaning's, the pipelines', the packaging's, the run's), and each stage receives
its own.
"""

from __future__ import annotations

import copy
import datetime as _dt
import math
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
    "DATE": ("", str, "date stamp of packaged product names, %d%b%Y ('' = the destination's earlier stamp, else today)"),
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
    "clean_mask_pixmap_stepsize": (10, int, "second pass: the first-pass mosaics' pixel maps (jwst resample's "
                                            "pixmap_stepsize, and the masks' projection back onto the exposures) "
                                            "are computed every N pixels and interpolated between (1 = every "
                                            "pixel; the stage-3 mosaics keep [image3.resample])"),
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

ORIGIN_DEFAULT = "config default"
ORIGIN_CLI = "command line"
EFFECTIVE_HEADER = "# mirim-reduce effective configuration"
_FROM = re.compile(r"\s#\s*from:\s*(.+?)\s*$")


def file_origin(path: Path | str) -> str:
    """The origin of a value read from the config file ``path``."""
    return f"config file {path}"


class Config(dict):
    """A configuration (a plain dict of the schema) with ``origins``: where each value came from.

    ``origins`` maps top-level keys and ``"<pipeline>.<step>.<parameter>"`` to "config default",
    "config file <path>" or "command line". Equality, TOML and JSON see only the dict; copies
    and pickles (worker processes) keep the origins.
    """

    def __init__(self, *args, origins: dict[str, str] | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.origins = dict(origins or {})


def _keys(cfg: dict[str, Any]):
    """(origin key, value) of every top-level value and every step parameter of ``cfg``."""
    for key, value in cfg.items():
        if key in PIPELINE_CLASSES:
            for step, params in value.items():
                for name, v in params.items():
                    yield f"{key}.{step}.{name}", v
        else:
            yield key, value


def _builtin(key: str) -> Any:
    """The built-in default of an origin key (a unique sentinel when there is none)."""
    parts = key.split(".")
    if len(parts) == 3:
        return PIPELINE_DEFAULTS.get(parts[0], {}).get(parts[1], {}).get(parts[2], _builtin)
    spec = SEED_PARAMETERS.get(key) or RUN_PARAMETERS.get(key)
    return spec[0] if spec else _builtin


def origins(cfg: dict[str, Any]) -> dict[str, str]:
    """Origin of every value of ``cfg``: the recorded one, else "config default" when the value is
    the built-in default and "unrecorded" when it is not (a plain dict built by hand)."""
    recorded = getattr(cfg, "origins", {})
    return {key: recorded.get(key) or (ORIGIN_DEFAULT if _builtin(key) == value else "unrecorded")
            for key, value in _keys(cfg)}


#: Numeric keys: (lowest, highest or None, lowest excluded). Pixel sizes stop at the detector's 1032.
_RANGES: dict[str, tuple[float, float | None, bool]] = {
    "DETECT_THRESH": (0, None, True),
    "WINDOW_SIZE": (1, 516, False),          # a (2w+1)-pixel window
    "SMALL_SOURCE_THRESH": (0, 1032 * 1024, False),
    "DILATE_ITERATIONS": (0, 1032, False),
    "MEDIAN_THRESH": (1, None, False),
    "jobs": (1, None, False),
    "template_smooth": (0, 1032, False),
    "clean_outlier_sigma": (0, None, False),  # 0 = off
    "clean_mask_pixmap_stepsize": (1, 100, False),
}
_MOSAIC_PER = ("observation", "filter")
_SMALL_GROUP = ("auto", "template", "background2d", "none")


def defaults() -> Config:
    """The built-in configuration (every origin "config default")."""
    cfg = Config({k: v[0] for k, v in SEED_PARAMETERS.items()})
    cfg.update({k: v[0] for k, v in RUN_PARAMETERS.items()})
    cfg.update(copy.deepcopy(PIPELINE_DEFAULTS))
    cfg.origins = {key: ORIGIN_DEFAULT for key, _ in _keys(cfg)}
    return cfg


def _check_scalar(key: str, value: Any, typ: type) -> Any:
    if typ is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if typ is int and isinstance(value, bool) or not isinstance(value, typ):
        raise ConfigError(f"config key {key!r} must be {typ.__name__}, got {value!r}")
    return value


def merge(base: dict[str, Any], override: dict[str, Any], source: str, *, origin: str | None = None,
          key_origins: dict[str, str] | None = None) -> Config:
    """Return ``base`` updated with ``override``; unknown keys and wrong types raise ConfigError.

    ``source`` names the override in errors. Every value of ``override`` gets the origin
    ``key_origins[key]``, else ``origin``, else "command line" when ``source`` is "command line"
    and "config file <source>" otherwise; the other values keep those of ``base``.
    """
    out = Config(copy.deepcopy(dict(base)), origins=origins(base))
    origin = origin or (ORIGIN_CLI if source == ORIGIN_CLI else file_origin(source))
    key_origins = key_origins or {}
    schema = {**SEED_PARAMETERS, **RUN_PARAMETERS}
    for key, value in override.items():
        if key in schema:
            out[key] = _check_scalar(key, value, schema[key][1])
            out.origins[key] = key_origins.get(key, origin)
        elif key in PIPELINE_CLASSES:
            if not isinstance(value, dict):
                raise ConfigError(f"{source}: [{key}] must be a table of steps")
            for step, params in value.items():
                if not isinstance(params, dict):
                    raise ConfigError(f"{source}: [{key}.{step}] must be a table of step parameters")
                out[key].setdefault(step, {}).update(params)
                for name in params:
                    out.origins[f"{key}.{step}.{name}"] = key_origins.get(f"{key}.{step}.{name}", origin)
        else:
            raise ConfigError(f"{source}: unknown config key {key!r} "
                              f"(known: {', '.join(sorted(schema) + sorted(PIPELINE_CLASSES))})")
    if out["mosaic_per"] not in _MOSAIC_PER:
        raise ConfigError(f"config key 'mosaic_per' must be one of {_MOSAIC_PER}, got {out['mosaic_per']!r}")
    if out["small_group_background"] not in _SMALL_GROUP:
        raise ConfigError(f"config key 'small_group_background' must be one of {_SMALL_GROUP}, "
                          f"got {out['small_group_background']!r}")
    for key, (low, high, low_open) in _RANGES.items():
        v = out[key]
        if not math.isfinite(v) or v < low or (low_open and v == low) or (high is not None and v > high):
            what = f"{'> ' if low_open else '>= '}{low:g}" + (f" and <= {high:g}" if high is not None else "")
            raise ConfigError(f"config key {key!r} must be a finite number {what}, got {v!r}")
    if out["DATE"]:
        try:
            _dt.datetime.strptime(out["DATE"], "%d%b%Y")
        except ValueError:
            raise ConfigError(f"config key 'DATE' must look like 25Nov2026 (%d%b%Y), got {out['DATE']!r}") from None
    return out


def _recorded_origins(text: str, data: dict[str, Any]) -> dict[str, str]:
    """Origins recorded in an effective configuration written by :func:`to_toml`.

    A value with a ``# from: <origin>`` comment has that origin; one without has "config default"
    when it is still the built-in default (else the caller's file origin applies: edited by hand).
    """
    if not text.startswith(EFFECTIVE_HEADER):
        return {}
    out, table = {}, ""
    for line in text.splitlines():
        if line.startswith("[") and line.rstrip().endswith("]"):
            table = line.strip()[1:-1].strip() + "."
            continue
        m = _FROM.search(line)
        if not m or line.lstrip().startswith("#"):
            continue
        try:  # the comment must follow a complete `key = value` (not sit inside a string)
            pair = tomllib.loads(line[:m.start()])
        except tomllib.TOMLDecodeError:
            continue
        if len(pair) == 1:
            out[table + next(iter(pair))] = m.group(1)
    for key, value in _keys(data):
        if key not in out and _builtin(key) == value:
            out[key] = ORIGIN_DEFAULT
    return out


def load(path: Path | None = None, overrides: dict[str, Any] | None = None) -> Config:
    """Defaults, then the TOML file at ``path``, then ``overrides`` (e.g. CLI flags), with origins."""
    cfg = defaults()
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"config file {path} does not exist")
        try:
            text = path.read_text(encoding="utf-8")
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None
        except UnicodeDecodeError as exc:
            raise ConfigError(f"config file {path} is not UTF-8 text (byte 0x{exc.object[exc.start]:02x} at "
                              f"offset {exc.start}): TOML files are UTF-8; save it as UTF-8") from None
        except OSError as exc:
            raise ConfigError(f"config file {path} cannot be read: {exc.strerror or exc}") from None
        cfg = merge(cfg, data, str(path), origin=file_origin(path.absolute()),
                    key_origins=_recorded_origins(text, data))
    if overrides:
        cfg = merge(cfg, {k: v for k, v in overrides.items() if v is not None}, ORIGIN_CLI)
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


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if value is None:
        raise ConfigError("None cannot be written to TOML")
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'


def to_toml(cfg: dict[str, Any]) -> str:
    """Serialise a configuration (deterministic order, with the descriptions as comments, and the
    origin of every value that is not a built-in default as a trailing ``# from: <origin>``)."""
    where = getattr(cfg, "origins", {})  # a plain dict: no comments (its origins are not known)

    def line(key: str, name: str, value: Any) -> str:
        origin = where.get(key, ORIGIN_DEFAULT)
        return f"{name} = {_toml_value(value)}" + ("" if origin == ORIGIN_DEFAULT else f"  # from: {origin}")

    lines = [EFFECTIVE_HEADER, ""]
    for key, (_, _, doc) in {**SEED_PARAMETERS, **RUN_PARAMETERS}.items():
        lines.append(f"# {doc}")
        lines.append(line(key, key, cfg[key]))
    for section in PIPELINE_CLASSES:
        for step in sorted(cfg[section]):
            lines += ["", f"[{section}.{step}]"]
            lines += [line(f"{section}.{step}.{k}", k, v) for k, v in sorted(cfg[section][step].items())
                      if v is not None]
    return "\n".join(lines) + "\n"
