#!/bin/bash
# A one-node Slurm cluster on this machine (Debian bookworm, as root, no systemd), for tests of
# `mirim-reduce slurm`:  containers/slurm-cluster.sh start|stop|status
#
# start: installs slurmctld, slurmd, slurm-client and munge if missing (apt), writes
#        /etc/slurm/slurm.conf for this host (CPUs = nproc, RealMemory = MemTotal minus a margin),
#        starts munged, slurmctld and slurmd, and waits until sinfo shows the node idle.
#        Running it again while the cluster is up changes nothing.
# stop:  kills the three daemons by the PIDs they wrote.
# Accounting is off (no slurmdbd): read job states with squeue / scontrol.
set -euo pipefail

CONF=/etc/slurm/slurm.conf
RUN=/run/mirim-slurm                 # our PID files
MEM_MARGIN_MB=${MEM_MARGIN_MB:-2048}  # left to the OS and the daemons
H=$(hostname -s)

log() { echo "slurm-cluster: $*" >&2; }

install() {
    local missing=()
    for p in slurmctld slurmd slurm-client munge; do
        dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
    done
    [ ${#missing[@]} -eq 0 ] && return
    log "installing ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

write_conf() {
    local cpus mem
    cpus=$(nproc)
    mem=$(( $(awk '/^MemTotal:/ {print int($2 / 1024)}' /proc/meminfo) - MEM_MARGIN_MB ))
    mkdir -p /etc/slurm
    local tmp; tmp=$(mktemp /etc/slurm/.slurm.conf.XXXXXX)
    cat >"$tmp" <<EOF
# written by mirim-reduce containers/slurm-cluster.sh
ClusterName=local
SlurmctldHost=$H
AuthType=auth/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmUser=root
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
SlurmctldPidFile=$RUN/slurmctld.pid
SlurmdPidFile=$RUN/slurmd.pid
ReturnToService=2
JobAcctGatherType=jobacct_gather/none
MinJobAge=3600
NodeName=$H CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=debug Nodes=$H Default=YES MaxTime=INFINITE State=UP
EOF
    if [ -f "$CONF" ] && cmp -s "$tmp" "$CONF"; then rm -f "$tmp"; else mv "$tmp" "$CONF"; log "wrote $CONF ($cpus CPUs, ${mem} MB)"; fi
}

pid_of() {  # pid_of NAME: the PID of the running daemon NAME (from $RUN/NAME.pid), else nothing
    local pid
    pid=$(cat "$RUN/$1.pid" 2>/dev/null) || return 1
    [ -n "$pid" ] && [ "$(ps -o comm= -p "$pid" 2>/dev/null)" = "$1" ] && echo "$pid"
}

alive() { pid_of "$1" >/dev/null; }

start_munge() {
    mkdir -p /etc/munge /var/log/munge /run/munge /var/lib/munge
    [ -f /etc/munge/munge.key ] || dd if=/dev/urandom bs=1 count=1024 of=/etc/munge/munge.key status=none
    chown -R munge:munge /etc/munge /var/log/munge /run/munge /var/lib/munge
    chmod 400 /etc/munge/munge.key; chmod 755 /run/munge
    if [ -s /run/munge/munged.pid ] && kill -0 "$(cat /run/munge/munged.pid)" 2>/dev/null; then return; fi
    su -s /bin/sh munge -c /usr/sbin/munged
    munge -n | unmunge >/dev/null
}

start() {
    install
    mkdir -p "$RUN" /var/spool/slurmctld /var/spool/slurmd /var/log/slurm
    write_conf
    start_munge
    alive slurmctld || /usr/sbin/slurmctld
    alive slurmd || /usr/sbin/slurmd
    for _ in $(seq 60); do
        state=$(sinfo -h -n "$H" -o %T 2>/dev/null || true)
        case "$state" in
            idle|mixed|allocated) log "node $H $state"; return 0 ;;
            down*|drain*) scontrol update nodename="$H" state=resume 2>/dev/null || true ;;
        esac
        sleep 1
    done
    log "the node did not become idle (sinfo: ${state:-no answer}); see /var/log/slurm/"
    return 1
}

stop() {
    local pid
    for d in slurmd slurmctld; do
        pid=$(pid_of "$d") || continue
        kill "$pid"
        for _ in $(seq 20); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
        log "stopped $d"
    done
    pid=$(cat /run/munge/munged.pid 2>/dev/null) || true
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
        kill "$pid"
        for _ in $(seq 20); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
        log "stopped munged"
    fi
}

status() {
    local rc=0 pid
    for d in slurmctld slurmd; do
        if pid=$(pid_of "$d"); then echo "$d running (pid $pid)"; else echo "$d not running"; rc=1; fi
    done
    if [ "$rc" = 0 ]; then sinfo; fi
    return $rc
}

case "${1:-}" in
    start) start ;;
    stop) stop ;;
    status) status ;;
    *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
