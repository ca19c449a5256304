"""The demo: what the product is tested and demonstrated with, apart from the product.

:mod:`.simulate` (a MIRI imaging program's uncal files and their truth), :mod:`.crds_context`
(a synthetic CRDS context whose references describe the same detector), :mod:`.detector_model`
(that detector) and :mod:`.evaluate` (the products against the truth). The product imports
this package only inside the ``demo``, ``simulate``, ``crds build-demo-context`` and
``evaluate`` commands (a test checks).
"""
