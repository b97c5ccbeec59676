#!/usr/bin/env bash
# A real single-node SLURM cluster on loopback for clipbudget's tests (and for trying `clipbudget submit
# --executor slurm` on one machine): munge, MariaDB, slurmdbd, slurmctld and slurmd, all as root, no systemd.
#
#   bash scripts/slurm-local.sh up       # install what is missing, write configs, start daemons, wait for an idle node
#   bash scripts/slurm-local.sh status   # which daemons run, sinfo, squeue
#   bash scripts/slurm-local.sh down     # cancel jobs, stop the daemons this script started
#   bash scripts/slurm-local.sh purge    # down + drop the accounting database, spool folders and our configs
#
# `up` is idempotent: with everything running and the config unchanged it only checks (~0.1 s); after a
# config change it restarts only the daemons whose config changed. From nothing (packages absent) it takes
# ~10-20 s on Debian 12; with packages present ~2 s.
#
# Accounting (slurmdbd + MariaDB) is on by default: submitit reads job states only from `sacct`, and without
# accounting a cancelled or crashed job never looks finished to it.
#
# Environment (all optional):
#   SLURM_LOCAL_CPUS=N          CPUs the node advertises (default nproc). May exceed the real core count
#                               (SlurmdParameters=config_overrides), so several array tasks run at once.
#   SLURM_LOCAL_MEM_MB=N        the node's RealMemory (default 90% of MemTotal).
#   SLURM_LOCAL_CRED_EXPIRE=S   credential lifetime in seconds (default 10). A requeued job (preemption,
#                               timeout) waits S+1 s before it may start again; Slurm's default is 120.
#   SLURM_LOCAL_PARTITION=NAME  the one partition (default debug).
#   SLURM_LOCAL_CLUSTER=NAME    ClusterName (default clipbudget).
#   SLURM_LOCAL_ACCOUNTING=0|1  1 (default): slurmdbd + MariaDB; 0: no accounting (sacct fails).
#   SLURM_LOCAL_TIMEOUT=S       how long to wait for each daemon and for the node (default 90).
set -euo pipefail
export PATH="/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:$PATH"
export DEBIAN_FRONTEND=noninteractive

CPUS=${SLURM_LOCAL_CPUS:-$(nproc)}
MEM_MB=${SLURM_LOCAL_MEM_MB:-$(awk '/^MemTotal:/ {printf "%d", $2 / 1024 * 0.9}' /proc/meminfo)}
CRED_EXPIRE=${SLURM_LOCAL_CRED_EXPIRE:-10}
PARTITION=${SLURM_LOCAL_PARTITION:-debug}
CLUSTER=${SLURM_LOCAL_CLUSTER:-clipbudget}
ACCOUNTING=${SLURM_LOCAL_ACCOUNTING:-1}
TIMEOUT=${SLURM_LOCAL_TIMEOUT:-90}

NODE=$(hostname -s)
STATE=/run/clipbudget-slurm        # one "<daemon>.ours" file per daemon this script started
LOGS=/var/log/slurm
CTLD_SPOOL=/var/spool/slurmctld
SLURMD_SPOOL=/var/spool/slurmd
DB=slurm_acct_db
DB_USER=slurm
SOCK=/run/mysqld/mysqld.sock
MARK="# managed by clipbudget scripts/slurm-local.sh"
if [ -d /etc/slurm-llnl ] && [ ! -d /etc/slurm ]; then ETC=/etc/slurm-llnl; else ETC=/etc/slurm; fi
SLURM_CONF=$ETC/slurm.conf
DBD_CONF=$ETC/slurmdbd.conf
T0=$(date +%s%N)

say() { printf '[slurm-local %5d ms] %s\n' "$(( ($(date +%s%N) - T0) / 1000000 ))" "$*" >&2; }
fail() { say "error: $*"; exit 1; }

# --- processes ---------------------------------------------------------------------------------------
# alive PID: the process exists and is not a zombie (killed daemons linger as Z until PID 1 reaps them)
alive() {
    [ -n "${1:-}" ] && [ -r "/proc/$1/stat" ] || return 1
    [ "$(sed 's/^.*) //' "/proc/$1/stat" | cut -d' ' -f1)" != Z ]
}
# running PIDFILE NAME...: the pid in PIDFILE is alive and its command name is one of NAME
running() {
    local pidfile=$1 pid name; shift
    [ -s "$pidfile" ] || return 1
    pid=$(tr -dc 0-9 <"$pidfile")
    alive "$pid" || return 1
    name=$(cat "/proc/$pid/comm" 2>/dev/null) || return 1
    for n in "$@"; do [ "$name" = "$n" ] && return 0; done
    return 1
}
# stop DAEMON PIDFILE NAME...: SIGTERM a daemon we started (SIGKILL after 20 s); foreign ones are left alone
stop() {
    local daemon=$1 pidfile=$2 pid i; shift 2
    if [ ! -e "$STATE/$daemon.ours" ]; then
        if running "$pidfile" "$@"; then say "$daemon runs but was not started here; leaving it"; fi
        return 0
    fi
    if running "$pidfile" "$@"; then
        pid=$(tr -dc 0-9 <"$pidfile")
        kill -TERM "$pid" 2>/dev/null || true
        for ((i = 0; i < 80; i++)); do alive "$pid" || break; sleep 0.25; done
        if alive "$pid"; then say "$daemon ignored SIGTERM for 20 s; SIGKILL"; kill -KILL "$pid" 2>/dev/null || true; fi
        say "stopped $daemon"
    fi
    rm -f "$STATE/$daemon.ours"
}
# poll SECONDS WHAT CMD...: run CMD every 0.2 s until it succeeds
poll() {
    local secs=$1 what=$2 i; shift 2
    for ((i = 0; i < secs * 5; i++)); do "$@" >/dev/null 2>&1 && return 0; sleep 0.2; done
    fail "no $what after ${secs}s"
}

# --- packages ----------------------------------------------------------------------------------------
ensure_packages() {
    local want=() guard=0
    [ -x /usr/sbin/munged ] || want+=(munge)
    [ -x /usr/sbin/slurmctld ] || want+=(slurmctld)
    [ -x /usr/sbin/slurmd ] || want+=(slurmd)
    command -v sbatch >/dev/null || want+=(slurm-client)
    if [ "$ACCOUNTING" = 1 ]; then
        [ -x /usr/sbin/slurmdbd ] || want+=(slurmdbd)
        [ -x /usr/sbin/mariadbd ] || [ -x /usr/sbin/mysqld ] || want+=(mariadb-server)
    fi
    [ ${#want[@]} -eq 0 ] && return 0
    # Without a policy-rc.d, package scripts would start munge/mariadb with their stock settings.
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\n# temporary, from slurm-local.sh\nexit 101\n' >/usr/sbin/policy-rc.d
        chmod 755 /usr/sbin/policy-rc.d
        guard=1
        trap 'rm -f /usr/sbin/policy-rc.d' EXIT INT TERM  # even if apt-get is interrupted
    fi
    say "apt-get install ${want[*]}"
    local rc=0
    { apt-get update -qq && apt-get install -y -qq -o DPkg::Lock::Timeout=300 --no-install-recommends \
        "${want[@]}" >/dev/null; } || rc=$?
    if [ "$guard" = 1 ]; then rm -f /usr/sbin/policy-rc.d; trap - EXIT INT TERM; fi
    [ "$rc" = 0 ] || fail "apt-get failed (exit $rc)"
}

# --- configuration -----------------------------------------------------------------------------------
# replace DEST MODE TMP: install TMP as DEST unless identical; exit status 0 when DEST changed
replace() {
    if [ -f "$1" ] && cmp -s "$1" "$3"; then rm -f "$3"; return 1; fi
    install -m "$2" "$3" "$1" && rm -f "$3"
}
bind_params() {
    # NoInAddrAny makes daemons listen on the address the hostname resolves to: only safe when it is loopback.
    case "$(getent ahostsv4 "$(hostname)" 2>/dev/null | awk 'NR == 1 {print $1}')" in
        127.*) echo "CommunicationParameters=NoInAddrAny${1:-}" ;;
        *) echo "# the hostname is not a loopback address: daemons listen on all interfaces" ;;
    esac
}
SLURM_CONF_NEW=0
DBD_CONF_NEW=0
write_configs() {
    local tmp acct password=""
    install -d -m 755 "$ETC" "$LOGS" "$CTLD_SPOOL" "$SLURMD_SPOOL" "$STATE"
    if [ "$ACCOUNTING" = 1 ]; then
        acct=$'AccountingStorageType=accounting_storage/slurmdbd\nAccountingStorageHost=localhost\nJobAcctGatherType=jobacct_gather/linux'
    else
        acct=$'AccountingStorageType=accounting_storage/none\nJobAcctGatherType=jobacct_gather/none'
    fi
    tmp=$(mktemp)
    cat >"$tmp" <<EOF
$MARK
ClusterName=$CLUSTER
SlurmctldHost=$NODE(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
# a requeued job may restart only after cred_expire + 1 s (Slurm default: 120 s)
AuthInfo=cred_expire=$CRED_EXPIRE
MpiDefault=none
# no cgroup plugins: behaves the same on cgroup v1, v2 and in containers (nothing is enforced)
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SchedulerType=sched/backfill
# start jobs at once and rescan every 2 s (defaults 3 s / 60 s / 30 s dominate tiny test jobs)
SchedulerParameters=batch_sched_delay=0,sched_interval=2,bf_interval=2
# lets the node advertise more CPUs than it has
SlurmdParameters=config_overrides
ReturnToService=2
# submitit ignores SIGTERM (its preemption signal): SIGKILL 5 s after scancel, not 30
KillWait=5
MinJobAge=300
MailProg=/bin/true
StateSaveLocation=$CTLD_SPOOL
SlurmdSpoolDir=$SLURMD_SPOOL
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
SlurmctldLogFile=$LOGS/slurmctld.log
SlurmdLogFile=$LOGS/slurmd.log
JobCompType=jobcomp/none
$acct
$(bind_params ",NoCtldInAddrAny")
NodeName=$NODE NodeAddr=127.0.0.1 NodeHostname=$NODE CPUs=$CPUS RealMemory=$MEM_MB State=UNKNOWN
PartitionName=$PARTITION Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF
    if replace "$SLURM_CONF" 644 "$tmp"; then SLURM_CONF_NEW=1; say "wrote $SLURM_CONF (CPUs=$CPUS)"; fi
    [ "$ACCOUNTING" = 1 ] || return 0
    if [ -f "$DBD_CONF" ]; then password=$(sed -n 's/^StoragePass=//p' "$DBD_CONF"); fi
    [ -n "$password" ] || password=$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')
    tmp=$(mktemp)
    cat >"$tmp" <<EOF
$MARK
AuthType=auth/munge
DbdHost=localhost
DbdPort=6819
SlurmUser=root
PidFile=/run/slurmdbd.pid
LogFile=$LOGS/slurmdbd.log
StorageType=accounting_storage/mysql
StorageHost=localhost
StorageUser=$DB_USER
StoragePass=$password
StorageLoc=$DB
$(bind_params)
EOF
    if replace "$DBD_CONF" 600 "$tmp"; then DBD_CONF_NEW=1; say "wrote $DBD_CONF"; fi
}

# --- daemons -----------------------------------------------------------------------------------------
munge_works() { munge -n 2>/dev/null | unmunge >/dev/null 2>&1; }
up_munge() {
    munge_works && return 0
    if [ ! -s /etc/munge/munge.key ]; then
        install -d -o munge -g munge -m 700 /etc/munge
        if command -v mungekey >/dev/null; then runuser -u munge -- mungekey --create --force
        else head -c 1024 /dev/urandom >/etc/munge/munge.key; fi
        chown munge:munge /etc/munge/munge.key
        chmod 600 /etc/munge/munge.key
    fi
    install -d -o munge -g munge -m 755 /run/munge
    install -d -o munge -g munge -m 700 /var/lib/munge /var/log/munge
    runuser -u munge -- /usr/sbin/munged
    touch "$STATE/munge.ours"
    poll "$TIMEOUT" munged munge_works
    say "munged running"
}

# MariaDB's own tool names, or the mysql* names older releases (and Debian 12) also ship
db_tool() { local t; for t in "$@"; do if command -v "$t" >/dev/null; then echo "$t"; return; fi; done; echo "$1"; }
db_client() { "$(db_tool mariadb mysql)" "$@"; }
db_works() { "$(db_tool mariadb-admin mysqladmin)" --socket="$SOCK" ping >/dev/null 2>&1; }
up_mariadb() {
    local server=/usr/sbin/mariadbd password
    [ -x "$server" ] || server=/usr/sbin/mysqld
    if ! db_works; then
        install -d -o mysql -g mysql -m 755 /run/mysqld /var/log/mysql
        if [ ! -d /var/lib/mysql/mysql ]; then "$(db_tool mariadb-install-db mysql_install_db)" --user=mysql --datadir=/var/lib/mysql >/dev/null; fi
        # mariadbd stays in the foreground: detach it from this shell
        setsid nohup "$server" --user=mysql --datadir=/var/lib/mysql --socket="$SOCK" \
            --pid-file=/run/mysqld/mysqld.pid --skip-networking --innodb-buffer-pool-size=64M \
            --innodb-lock-wait-timeout=900 --log-error=/var/log/mysql/slurm-local.err \
            </dev/null >/dev/null 2>&1 &
        touch "$STATE/mariadb.ours"
        poll "$TIMEOUT" MariaDB db_works
        say "MariaDB running"
    fi
    password=$(sed -n 's/^StoragePass=//p' "$DBD_CONF")
    db_client --socket="$SOCK" -u root <<EOF
CREATE DATABASE IF NOT EXISTS $DB;
CREATE USER IF NOT EXISTS '$DB_USER'@'localhost' IDENTIFIED BY '$password';
ALTER USER '$DB_USER'@'localhost' IDENTIFIED BY '$password';
GRANT ALL ON $DB.* TO '$DB_USER'@'localhost';
FLUSH PRIVILEGES;
EOF
}

up_slurmdbd() {
    if running /run/slurmdbd.pid slurmdbd; then
        [ "$DBD_CONF_NEW" = 1 ] || return 0
        stop slurmdbd /run/slurmdbd.pid slurmdbd
    fi
    /usr/sbin/slurmdbd
    touch "$STATE/slurmdbd.ours"
    poll "$TIMEOUT" "slurmdbd (see $LOGS/slurmdbd.log)" sacctmgr -n list cluster
    say "slurmdbd running"
}

up_slurmctld() {
    if running /run/slurmctld.pid slurmctld; then
        [ "$SLURM_CONF_NEW" = 1 ] || return 0
        stop slurmctld /run/slurmctld.pid slurmctld
    fi
    /usr/sbin/slurmctld
    touch "$STATE/slurmctld.ours"
    poll "$TIMEOUT" "slurmctld (see $LOGS/slurmctld.log)" scontrol ping
    say "slurmctld running"
}

up_slurmd() {
    if running /run/slurmd.pid slurmd; then
        [ "$SLURM_CONF_NEW" = 1 ] || return 0
        stop slurmd /run/slurmd.pid slurmd
    fi
    /usr/sbin/slurmd -N "$NODE"
    touch "$STATE/slurmd.ours"
    say "slurmd running"
}

node_usable() {
    case "$(sinfo -h -n "$NODE" -o %T 2>/dev/null | head -n 1)" in
        idle* | mixed* | allocated* | completing*) return 0 ;;
        down* | drain* | fail* | unknown*) scontrol update NodeName="$NODE" State=RESUME >/dev/null 2>&1 || true ;;
    esac
    return 1
}

# --- commands ----------------------------------------------------------------------------------------
cmd_up() {
    [ "$(id -u)" = 0 ] || fail "must run as root (it installs packages and starts system daemons)"
    ensure_packages
    write_configs
    up_munge
    if [ "$ACCOUNTING" = 1 ]; then up_mariadb; up_slurmdbd; fi
    # slurmctld and slurmd must agree on slurm.conf: restart slurmd after slurmctld when it changed
    if [ "$SLURM_CONF_NEW" = 1 ]; then stop slurmd /run/slurmd.pid slurmd; fi
    up_slurmctld
    up_slurmd
    poll "$TIMEOUT" "usable node $NODE (see $LOGS/slurmd.log)" node_usable
    say "ready: $(sinfo -h -o '%P %D %T CPUs=%c' | head -n 1)"
}

cmd_down() {
    local ids i
    if [ -e "$STATE/slurmctld.ours" ] && scontrol ping >/dev/null 2>&1; then
        # slurmstepd outlives slurmd: cancel running jobs first
        ids=$(squeue -h -o %i 2>/dev/null | tr '\n' ' ')
        if [ -n "${ids// /}" ]; then
            say "cancelling jobs $ids"
            # shellcheck disable=SC2086
            scancel $ids 2>/dev/null || true
            for ((i = 0; i < 100; i++)); do [ -z "$(squeue -h -o %i 2>/dev/null)" ] && break; sleep 0.2; done
        fi
    fi
    stop slurmd /run/slurmd.pid slurmd
    stop slurmctld /run/slurmctld.pid slurmctld
    stop slurmdbd /run/slurmdbd.pid slurmdbd
    stop mariadb /run/mysqld/mysqld.pid mariadbd mysqld
    stop munge /run/munge/munged.pid munged
    say "down"
}

cmd_status() {
    local entry daemon pidfile names rc=0
    for entry in munge:/run/munge/munged.pid:munged mariadb:/run/mysqld/mysqld.pid:mariadbd,mysqld \
        slurmdbd:/run/slurmdbd.pid:slurmdbd slurmctld:/run/slurmctld.pid:slurmctld slurmd:/run/slurmd.pid:slurmd; do
        IFS=: read -r daemon pidfile names <<<"$entry"
        # shellcheck disable=SC2086
        if running "$pidfile" ${names//,/ }; then
            echo "$daemon: running (pid $(tr -dc 0-9 <"$pidfile"))"
        else
            echo "$daemon: stopped"; rc=3
        fi
    done
    sinfo 2>&1 || rc=3
    squeue 2>&1 || rc=3
    return "$rc"
}

cmd_purge() {
    local f
    if [ -e "$STATE/mariadb.ours" ] && db_works; then
        db_client --socket="$SOCK" -u root -e "DROP DATABASE IF EXISTS $DB; DROP USER IF EXISTS '$DB_USER'@'localhost';" || true
    fi
    cmd_down
    rm -rf "$CTLD_SPOOL" "$SLURMD_SPOOL"
    for f in "$SLURM_CONF" "$DBD_CONF"; do
        if [ -f "$f" ] && [ "$(head -n 1 "$f")" = "$MARK" ]; then rm -f "$f"; fi
    done
    say "purged (packages and logs kept)"
}

case "${1:-}" in
    up) cmd_up ;;
    down) cmd_down ;;
    status) cmd_status ;;
    purge) cmd_purge ;;
    *) echo "usage: $0 up|down|status|purge" >&2; exit 2 ;;
esac
