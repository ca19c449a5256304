"""A synthetic CRDS context and cache for MIRI imaging, built by the project's own code.

``build_demo_context(path)`` writes a complete offline CRDS cache (server_config, a pmap,
one imap and an rmap per provided reference type, and the reference files) whose
references describe exactly the true detector of :mod:`reduce.demo.detector_model`, so that a
simulated MIRIMAGE exposure calibrates back to the truth. See :mod:`.references` for the
dark convention and units, and :mod:`.distortion` for the geometry.
"""

from .build import DEMO_CONTEXT, PROVIDED_TYPES, build_demo_context
from .distortion import detector_to_v2v3, v2v3_to_detector
from ...reftypes import parameter_reference_types, required_reference_types

__all__ = [
    "DEMO_CONTEXT",
    "PROVIDED_TYPES",
    "build_demo_context",
    "detector_to_v2v3",
    "parameter_reference_types",
    "required_reference_types",
    "v2v3_to_detector",
]
