#!/bin/sh
# Build a local stand-in for the official debian:<suite>-slim image where no container
# registry is reachable: debootstrap --variant=minbase from the Debian mirror apt uses,
# trimmed the way the official slim images are (no docs/man/locales, apt lists cleaned),
# then `docker import`. Idempotent: does nothing if the tag already exists
# (FORCE=1 rebuilds). Elsewhere, `docker pull debian:bookworm-slim@sha256:...` instead.
#
#   SUITE=bookworm  IMAGE=debian:bookworm-slim  MIRROR=http://deb.debian.org/debian
#   SCRATCH=/var/tmp/mirim-containers   (root file systems and manifests are kept here)
#   INCLUDE=        extra packages for debootstrap (comma separated), e.g. for the sid helper
set -eu
SUITE=${SUITE:-bookworm}
IMAGE=${IMAGE:-debian:${SUITE}-slim}
MIRROR=${MIRROR:-http://deb.debian.org/debian}
SCRATCH=${SCRATCH:-/var/tmp/mirim-containers}
INCLUDE=${INCLUDE:-}
ROOT="$SCRATCH/rootfs-$SUITE"
here=$(cd "$(dirname "$0")" && pwd)

"$here/start-docker.sh" >/dev/null

if [ "${FORCE:-0}" != 1 ] && docker image inspect "$IMAGE" >/dev/null 2>&1; then
    echo "make-base-image: $IMAGE exists ($(docker image inspect -f '{{.Id}}' "$IMAGE")); FORCE=1 rebuilds"
    exit 0
fi

if ! command -v debootstrap >/dev/null 2>&1; then
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends debootstrap >/dev/null
fi
# sid's keyring is the same archive key as bookworm's; make sure debootstrap knows the suite
[ -e "/usr/share/debootstrap/scripts/$SUITE" ] || ln -s sid "/usr/share/debootstrap/scripts/$SUITE"

mkdir -p "$SCRATCH"
rm -rf "$ROOT"
start=$(date +%s)
echo "make-base-image: debootstrap --variant=minbase $SUITE from $MIRROR into $ROOT"
debootstrap --variant=minbase ${INCLUDE:+--include="$INCLUDE"} "$SUITE" "$ROOT" "$MIRROR" \
    >"$SCRATCH/debootstrap-$SUITE.log" 2>&1 || { tail -n 30 "$SCRATCH/debootstrap-$SUITE.log" >&2; exit 1; }

# What the official images do (debuerreotype "slimify" + docker apt/dpkg tweaks).
cat >"$ROOT/etc/dpkg/dpkg.cfg.d/docker" <<'CFG'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/groff/*
path-exclude /usr/share/info/*
path-exclude /usr/share/lintian/*
path-exclude /usr/share/linda/*
path-exclude /usr/share/locale/*
path-include /usr/share/locale/locale.alias
CFG
cat >"$ROOT/etc/apt/apt.conf.d/docker-clean" <<'CFG'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
CFG
echo 'APT::Install-Recommends "false";' >"$ROOT/etc/apt/apt.conf.d/docker-no-recommends"
find "$ROOT/usr/share/doc" -mindepth 2 ! -name copyright ! -type d -delete 2>/dev/null || true
find "$ROOT/usr/share/doc" -mindepth 1 -type d -empty -delete 2>/dev/null || true
rm -rf "$ROOT"/usr/share/man/* "$ROOT"/usr/share/info/* "$ROOT"/usr/share/locale/*/ \
       "$ROOT"/var/lib/apt/lists/* "$ROOT"/var/cache/apt/*.bin "$ROOT"/var/cache/apt/archives/*.deb \
       "$ROOT"/var/log/*.log "$ROOT"/var/log/apt/* "$ROOT"/tmp/* "$ROOT"/root/.cache
: >"$ROOT/etc/machine-id"
printf 'deb %s %s main\n' "$MIRROR" "$SUITE" >"$ROOT/etc/apt/sources.list"
if [ "$SUITE" = bookworm ]; then
    printf 'deb %s %s-updates main\ndeb http://deb.debian.org/debian-security %s-security main\n' \
        "$MIRROR" "$SUITE" "$SUITE" >>"$ROOT/etc/apt/sources.list"
fi

# Manifest: what went in (the pin, since no snapshot mirror is reachable here).
chroot "$ROOT" dpkg-query -W -f '${Package}=${Version}\n' >"$SCRATCH/$SUITE-packages.txt"
created=$(date -u +%Y-%m-%dT%H:%M:%SZ)

tar --numeric-owner --xattrs -C "$ROOT" -c . | docker import \
    --change 'CMD ["bash"]' \
    --change "LABEL org.debian.suite=$SUITE org.debian.variant=minbase org.debian.mirror=$MIRROR org.debian.debootstrap-date=$created" \
    - "$IMAGE" >/dev/null
echo "make-base-image: $IMAGE $(docker image inspect -f '{{.Id}} {{.Size}}' "$IMAGE") bytes," \
     "$(wc -l <"$SCRATCH/$SUITE-packages.txt") packages, $(( $(date +%s) - start ))s"
