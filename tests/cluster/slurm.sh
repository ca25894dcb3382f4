#!/usr/bin/env bash
# A throw-away single-node SLURM cluster on this machine, for testing the workflow's SLURM profile.
#
#   tests/cluster/slurm.sh up DIR      start munged, slurmctld and slurmd (state, logs, key in DIR)
#   tests/cluster/slurm.sh down DIR    cancel its jobs, stop the three daemons by PID, remove its config
#   tests/cluster/slurm.sh check       exit 0 if this machine can run it, else say why (exit 3 or 4)
#
# Needs root and Debian's `slurm-wlm` and `munge` packages (apt-get install -y slurm-wlm munge); nothing
# is started by the packages themselves. Everything lives in DIR (munge key and socket, slurm.conf,
# state, spool, logs, PID files) except one file: the job step of snakemake-executor-plugin-slurm
# strips every SLURM_* variable (SLURM_CONF too) before its inner `srun`, so the config must also sit
# at SLURM's default path, /etc/slurm/slurm.conf. It is written there only if no file is there or the
# file there carries this script's marker line (a real cluster's config is never touched), and it is
# removed by `down`. The daemons listen on 127.0.0.1 only (CommunicationParameters binds them to the
# address the host name resolves to; `check` insists that it is a loopback one), on two free ports
# picked at `up`. No accounting (no slurmdbd): job history comes from `squeue` (finished jobs stay
# listed for MinJobAge = 300 s) and the job-completion log DIR/log/jobcomp.log (jobcomp/filetxt).
#
# Every wait is time-boxed; `up` tears down whatever it started if any step fails.
set -euo pipefail

CONF=/etc/slurm/slurm.conf
MARKER="# equitable-fl test cluster (tests/cluster/slurm.sh); removed by 'slurm.sh down'"
PACKAGES="slurm-wlm munge"
TOOLS="munged munge slurmctld slurmd sbatch squeue scontrol scancel sinfo"

die() { echo "slurm.sh: $*" >&2; exit 1; }

# exit 3: packages missing; exit 4: this machine cannot host the test cluster (not root, host name not
# on loopback, a real config at $CONF)
check() {
    local missing=()
    for t in $TOOLS; do command -v "$t" >/dev/null 2>&1 || missing+=("$t"); done
    if ((${#missing[@]})); then
        echo "slurm.sh: missing ${missing[*]}: install Debian's packages: apt-get install -y $PACKAGES" >&2
        return 3
    fi
    if [[ $(id -u) -ne 0 ]]; then
        echo "slurm.sh: must run as root (slurmd runs jobs as root; $CONF must be written)" >&2
        return 4
    fi
    local addr
    addr=$(getent hosts "$(hostname)" | awk '{print $1; exit}')
    if [[ $addr != 127.* ]]; then
        echo "slurm.sh: host name $(hostname) resolves to '${addr}', not to loopback: the daemons bind to it" >&2
        return 4
    fi
    if [[ -e $CONF ]] && ! grep -qxF "$MARKER" "$CONF"; then
        echo "slurm.sh: $CONF exists and is not this script's: a real SLURM config, left alone" >&2
        return 4
    fi
}

pid_alive() { [[ -n ${1:-} ]] && kill -0 "$1" 2>/dev/null; }

# stop_pid NAME PIDFILE: SIGTERM, up to 10 s grace, then SIGKILL
stop_pid() {
    local name=$1 file=$2 pid
    [[ -f $file ]] || return 0
    pid=$(<"$file")
    if pid_alive "$pid"; then
        kill -TERM "$pid" 2>/dev/null || true
        for _ in $(seq 100); do pid_alive "$pid" || break; sleep 0.1; done
        if pid_alive "$pid"; then
            echo "slurm.sh: $name ($pid) ignored SIGTERM for 10 s: SIGKILL" >&2
            kill -KILL "$pid" 2>/dev/null || true
        fi
    fi
    rm -f "$file"
}

# wait_for SECONDS WHAT PIDFILE CMD...: retry CMD every 0.5 s until it succeeds, at most SECONDS, and
# give up at once if the process in PIDFILE (if not "-") has exited
wait_for() {
    local seconds=$1 what=$2 pidfile=$3; shift 3
    local deadline=$((SECONDS + seconds))
    until "$@" >/dev/null 2>&1; do
        if [[ $pidfile != - ]] && ! pid_alive "$(<"$pidfile")"; then
            echo "slurm.sh: $what exited; see ${pidfile%/pids/*}/log/" >&2
            return 1
        fi
        ((SECONDS < deadline)) || { echo "slurm.sh: $what not ready after ${seconds}s" >&2; return 1; }
        sleep 0.5
    done
}

free_port() {
    "${PYTHON:-python3}" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

node_idle() { [[ $(timeout 5 sinfo -h -N -n localhost -o %t 2>/dev/null) == idle ]]; }

up() {
    local dir=$1
    check || exit $?
    if [[ -e $CONF ]]; then  # ours, left by an earlier run: refuse if that cluster still runs
        local owner
        owner=$(sed -n 's/^# dir: //p' "$CONF")
        if [[ -n $owner && -f $owner/pids/slurmctld ]] && pid_alive "$(<"$owner/pids/slurmctld")"; then
            die "a test cluster is already running from $owner: tests/cluster/slurm.sh down $owner"
        fi
    fi
    mkdir -p "$dir"
    dir=$(cd "$dir" && pwd)
    mkdir -p "$dir"/{munge,state,spool,log,pids}
    chmod 700 "$dir/state" "$dir/spool"
    chmod 711 "$dir" "$dir/munge"  # munged wants the socket's directories traversable by all

    trap 'echo "slurm.sh: up failed; tearing down" >&2; down "$dir"' ERR

    # munge: own key, socket and PID in DIR
    head -c 1024 /dev/urandom >"$dir/munge/munge.key"
    chmod 400 "$dir/munge/munge.key"
    munged -F --force --key-file "$dir/munge/munge.key" --socket "$dir/munge/munge.socket.2" \
        --pid-file "$dir/munge/munged.pid" --log-file "$dir/log/munged.log" \
        --seed-file "$dir/munge/munged.seed" >"$dir/log/munged.out" 2>&1 &
    echo $! >"$dir/pids/munged"
    wait_for 20 munged "$dir/pids/munged" bash -c "munge -n -S '$dir/munge/munge.socket.2' | unmunge -S '$dir/munge/munge.socket.2'"

    local ctld_port slurmd_port cpus mem
    ctld_port=$(free_port)
    slurmd_port=$(free_port)
    [[ $slurmd_port != "$ctld_port" ]] || slurmd_port=$(free_port)
    cpus=$(nproc)
    mem=$(slurmd -C | sed -n 's/.*RealMemory=\([0-9]*\).*/\1/p')
    cat >"$dir/slurm.conf" <<EOF
$MARKER
# dir: $dir
ClusterName=eqfltest
SlurmctldHost=localhost(127.0.0.1)
SlurmctldPort=$ctld_port
SlurmdPort=$slurmd_port
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$dir/munge/munge.socket.2
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/filetxt
JobCompLoc=$dir/log/jobcomp.log
# finished jobs stay visible to squeue for 5 min: the executor plugin's squeue status command needs
# MinJobAge >= 3 x its first status-check delay, else it falls back to sacct (no accounting here)
MinJobAge=300
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU_Memory
ReturnToService=2
MailProg=/bin/true
MpiDefault=none
# bind to the address the host name resolves to (127.0.0.1 here), not to every interface
CommunicationParameters=NoCtldInAddrAny,NoInAddrAny
DefMemPerCPU=1000
NodeName=localhost NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP
EOF
    mkdir -p "$(dirname "$CONF")"
    cp "$dir/slurm.conf" "$CONF.eqfl-tmp" && mv "$CONF.eqfl-tmp" "$CONF"

    slurmctld -D -i -f "$CONF" >"$dir/log/slurmctld.out" 2>&1 &
    echo $! >"$dir/pids/slurmctld"
    wait_for 30 slurmctld "$dir/pids/slurmctld" timeout 5 scontrol ping
    slurmd -D -N localhost -f "$CONF" >"$dir/log/slurmd.out" 2>&1 &
    echo $! >"$dir/pids/slurmd"
    wait_for 30 "slurmd (node idle)" "$dir/pids/slurmd" node_idle
    trap - ERR
    echo "slurm.sh: cluster up in $dir (slurmctld 127.0.0.1:$ctld_port, slurmd :$slurmd_port, $cpus CPUs, ${mem} MB)"
}

# job-step processes (slurmstepd and the tasks it started) outlive slurmd: find ours by an open file
# under DIR (their spool sockets), never by name alone
our_stepds() {
    local dir=$1 p
    for p in /proc/[0-9]*; do
        [[ $(cat "$p/comm" 2>/dev/null) == slurmstepd ]] || continue
        if ls -l "$p/fd" 2>/dev/null | grep -qF "$dir/"; then echo "${p#/proc/}"; fi
    done
}

down() {
    local dir=$1
    [[ -d $dir ]] || die "no such cluster dir: $dir"
    dir=$(cd "$dir" && pwd)
    trap - ERR
    set +e
    if [[ -f $dir/pids/slurmctld ]] && pid_alive "$(<"$dir/pids/slurmctld")"; then
        local jobs
        jobs=$(timeout 10 squeue -h -t PD,R,CG,S -o %i 2>/dev/null)
        if [[ -n $jobs ]]; then
            # shellcheck disable=SC2086
            timeout 10 scancel $jobs
            wait_for 20 "job cancellation" - bash -c '[[ -z $(timeout 5 squeue -h -t PD,R,CG,S -o %i) ]]'
        fi
    fi
    local pids
    pids=$(our_stepds "$dir")
    if [[ -n $pids ]]; then
        # shellcheck disable=SC2086
        kill -TERM $pids 2>/dev/null; sleep 2
        for p in $(our_stepds "$dir"); do kill -KILL "$p" 2>/dev/null; done
    fi
    stop_pid slurmd "$dir/pids/slurmd"
    stop_pid slurmctld "$dir/pids/slurmctld"
    stop_pid munged "$dir/pids/munged"
    if [[ -f $CONF ]] && grep -qxF "$MARKER" "$CONF" && grep -qxF "# dir: $dir" "$CONF"; then
        rm -f "$CONF"
    fi
    set -e
    echo "slurm.sh: cluster in $dir stopped"
}

case "${1:-}" in
    up) [[ $# -eq 2 ]] || die "usage: slurm.sh up DIR"; up "$2" ;;
    down) [[ $# -eq 2 ]] || die "usage: slurm.sh down DIR"; down "$2" ;;
    check) check ;;
    *) die "usage: slurm.sh up DIR | down DIR | check" ;;
esac
