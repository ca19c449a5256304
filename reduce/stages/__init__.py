"""The jwst pipeline stages, each a thin wrapper over one pipeline call.

stage1: uncal -> rate (Detector1Pipeline); stage2: rate -> cal (Image2Pipeline);
stage3: cal -> i2d per (observation, filter) (Image3Pipeline, associations from
jwst.associations). :mod:`reduce.stages.runner` runs them in worker processes.
"""
