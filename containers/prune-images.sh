#!/bin/sh
# Remove this project's untagged images (labelled in the Dockerfile: every stage inherits
# io.github.mirim-reduce.part-of), nothing else on the engine: what each build leaves behind
# (the previous image, whose tags moved, and the legacy builder's stages). Used after every
# build (containers/Makefile.inc) and by start-docker.sh when disk space is short.
set -eu
docker image prune --force --filter label=io.github.mirim-reduce.part-of=mirim-reduce "$@"
