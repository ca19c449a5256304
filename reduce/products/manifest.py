"""The run manifest (``DEST/manifest.json``): how every product was made, and hashes to compare runs.

Keys: ``format``; ``tool`` {name, version, code: the digest of its Python sources}; ``versions`` (python and the libraries that shape
the science); ``crds`` {context, references per exposure} from ``WORKSPACE/crds.json``;
``image`` (present when running in the mirim-reduce container image, see
:data:`IMAGE_ENV`); ``config`` (the effective configuration); ``config_origins`` (where each
value that is not a built-in default came from: "config file <path>" or "command line");
``step_parameters`` (every jwst step parameter that something sets, per pipeline and group of
exposures sharing CRDS parameter references: value, origin, jwst default and superseded values,
see :func:`reduce.stages.parameters.provenance`); ``date`` (the stamp used in
product names); ``inputs`` [{name, bytes, sha256}]; ``products`` [{path (relative to DEST),
kind, bytes, sha256, content}] where ``content`` holds the per-HDU hashes of
:func:`reduce.products.hashing.content_hashes`; ``volatile_keywords``; ``ta_boxes``.
"""

from __future__ import annotations

import os
import platform
from pathlib import Path

from ..config import ORIGIN_DEFAULT, origins as config_origins
from ..identity import code_digest, file_hash, package_versions
from ..stages.parameters import provenance as step_provenance
from .hashing import SKIPPED_EXTENSIONS, VOLATILE_KEYWORDS, VOLATILE_TABLE_META, content_hashes, sha256_file

FORMAT = "mirim-reduce-manifest/1"  # step_parameters and config_origins were added compatibly
LIBRARIES = ("jwst", "crds", "stcal", "stpipe", "stdatamodels", "gwcs", "numpy", "scipy", "astropy",
             "photutils", "pysiaf", "asdf", "matplotlib")
#: Environment variables read to describe the container image a run happens in:
#: MIRIM_IMAGE_DIGEST (e.g. sha256:...), MIRIM_IMAGE_REF (name:tag), and every MIRIM_BUILD_*
#: variable (build labels: MIRIM_BUILD_VERSION, MIRIM_BUILD_REVISION, MIRIM_BUILD_DATE, ...).
IMAGE_ENV = ("MIRIM_IMAGE_DIGEST", "MIRIM_IMAGE_REF")
IMAGE_ENV_PREFIX = "MIRIM_BUILD_"
#: Files of DEST the manifest does not list: itself, and the report (it holds run times).
UNLISTED = ("manifest.json", "report.html", "report.md")
#: DEST's folder of the pipeline logs (``save_outputs``): records of the run, not products
LOGS = "logs"


def versions() -> dict[str, str]:
    return {"python": platform.python_version(), **package_versions(LIBRARIES)}


def image_info(environ=None) -> dict | None:
    """Digest and build labels of the container image, from the environment; None outside one."""
    env = os.environ if environ is None else environ
    info = {k: env[k] for k in IMAGE_ENV if env.get(k)}
    info.update({k: v for k, v in sorted(env.items()) if k.startswith(IMAGE_ENV_PREFIX) and v})
    in_container = Path("/.dockerenv").exists() or bool(env.get("APPTAINER_CONTAINER") or env.get("SINGULARITY_CONTAINER"))
    if not info and not in_container:
        return None
    info["in_container"] = in_container
    return info


def kind_of(path: Path) -> str:
    name = path.name
    for suffix, kind in (("_i2d.fits", "mosaic"), ("_segm.fits", "segmentation"), ("_cat.ecsv", "catalogue"),
                         ("_ta_box.fits", "ta_box"), ("_ta_box.pdf", "ta_box_figure"), ("_ta_box.png", "ta_box_figure"),
                         ("_quicklook.png", "quicklook"), (".png", "qa_figure")):
        if name.endswith(suffix):
            return kind
    return "other"


def product_entry(dest: Path, path: Path) -> dict:
    return {"path": path.relative_to(dest).as_posix(), "kind": kind_of(path), "bytes": path.stat().st_size,
            "sha256": sha256_file(path), "content": content_hashes(path)}


def build(dest: Path, products: list[Path], *, tool_version: str, cfg: dict, date: str, crds: dict,
          inputs: list[Path], ta_boxes: list[dict], step_parameters: dict | None = None,
          entries: list[dict] | None = None) -> dict:
    """The manifest of the ``products`` (files under ``dest``) this packaging wrote; files of
    earlier runs that share ``dest`` are not listed. ``step_parameters``: :func:`step_provenance`
    of ``cfg`` and ``crds["parameter_references"]``, ``entries``: :func:`product_entry` of each of
    the sorted ``products``, when the caller computed them (in workers)."""
    dest = Path(dest)
    products = sorted(set(Path(p) for p in products))
    if entries is not None and len(entries) != len(products):
        raise ValueError(f"{len(entries)} product entries for {len(products)} products")
    return {
        "format": FORMAT,
        "tool": {"name": "mirim-reduce", "version": tool_version, "code": code_digest()},
        "versions": versions(),
        "crds": crds,
        "image": image_info(),
        "config": cfg,
        "config_origins": {k: v for k, v in config_origins(cfg).items() if v != ORIGIN_DEFAULT},
        "step_parameters": (step_provenance(cfg, crds.get("parameter_references")) if step_parameters is None
                            else step_parameters),
        "date": date,
        # file_hash: computed once per process, so the hashes stage 1's identities read are reused
        "inputs": [{"name": p.name, "bytes": p.stat().st_size, "sha256": file_hash(p)} for p in sorted(inputs)
                   if p.is_file()],
        "products": entries if entries is not None else [product_entry(dest, p) for p in products],
        "volatile_keywords": sorted(VOLATILE_KEYWORDS),
        "volatile_table_meta": sorted(VOLATILE_TABLE_META),
        "skipped_extensions": SKIPPED_EXTENSIONS,
        "ta_boxes": ta_boxes,
    }
