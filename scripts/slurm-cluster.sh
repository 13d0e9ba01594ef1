#!/bin/sh
# A one-node Slurm on this machine, for tests: `scripts/slurm-cluster.sh start DIR` starts munged (if needed),
# slurmctld and slurmd with DIR/slurm.conf and prints `export SLURM_CONF=DIR/slurm.conf`; `stop DIR` stops them.
# Needs root and Debian's slurm-wlm and munge (make deps). No systemd, no cgroups (proctrack/pgid, task/none),
# no accounting (so no sacct: harrow reads squeue, scontrol and the run folders).
set -eu
cmd=${1:?usage: slurm-cluster.sh start|stop DIR}
dir=$(mkdir -p "${2:?usage: slurm-cluster.sh start|stop DIR}" && cd "$2" && pwd)
conf=$dir/slurm.conf

stop() {
  for pidfile in "$dir/slurmd.pid" "$dir/slurmctld.pid"; do
    [ -f "$pidfile" ] && kill "$(cat "$pidfile")" 2>/dev/null || true
  done
  for _ in $(seq 50); do
    alive=0
    for pidfile in "$dir/slurmd.pid" "$dir/slurmctld.pid"; do
      [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null && alive=1
    done
    [ $alive = 0 ] && break
    sleep 0.1
  done
  rm -f "$dir/slurmd.pid" "$dir/slurmctld.pid"
}

case $cmd in
stop) stop; exit 0 ;;
start) ;;
*) echo "usage: slurm-cluster.sh start|stop DIR" >&2; exit 2 ;;
esac

stop
# A fresh cluster each start: a node state saved by an earlier configuration (drained, say) would outlive it.
rm -rf "$dir/state"
mkdir -p /run/munge /var/log/munge /var/lib/munge "$dir/spool" "$dir/state" "$dir/log"
if [ ! -f /etc/munge/munge.key ]; then
  dd if=/dev/urandom bs=1 count=1024 of=/etc/munge/munge.key 2>/dev/null
  chmod 400 /etc/munge/munge.key
fi
chown -R munge:munge /etc/munge /run/munge /var/log/munge /var/lib/munge
if ! munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
  su -s /bin/sh munge -c /usr/sbin/munged
  for _ in $(seq 50); do munge -n 2>/dev/null | unmunge >/dev/null 2>&1 && break; sleep 0.1; done
fi

# The node as slurmd sees this machine (its short host name and memory), offering 8 CPUs whatever it has
# (config_overrides): the tests' trainers mostly sleep, and a throttle below the node's capacity is then what
# limits an array, as on a real cluster.
name=$(slurmd -C | head -1 | sed 's/^NodeName=\([^ ]*\).*/\1/')
memory=$(slurmd -C | head -1 | sed -n 's/.*RealMemory=\([0-9]*\).*/\1/p')
# Two "GPUs" so `--gres=gpu:N` is scheduled as on a GPU partition: Slurm's gpu plugin drops a GPU without a
# device file and wants a character device, so /dev/null and /dev/zero stand for the cards (with task/none
# nothing is bound to them; Slurm sets CUDA_VISIBLE_DEVICES to the cards' indices, as it does on a real node).
node="NodeName=$name CPUs=8 RealMemory=${memory:-1024} Gres=gpu:2"
printf 'Name=gpu File=/dev/null\nName=gpu File=/dev/zero\n' > "$dir/gres.conf"
cat > "$conf" <<CONF
ClusterName=harrowtest
SlurmctldHost=localhost
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.log
ProctrackType=proctrack/pgid
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
ReturnToService=2
SlurmdParameters=config_overrides
MpiDefault=none
GresTypes=gpu
# Tests want quick turns: time limits and signals checked often, finished jobs kept long enough to read.
MessageTimeout=10
KillWait=5
MinJobAge=600
$node
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
CONF
export SLURM_CONF=$conf
slurmctld -f "$conf"
slurmd -f "$conf"
for _ in $(seq 100); do
  state=$(sinfo -h -o %T 2>/dev/null || true)
  case $state in idle*|mix*|alloc*) echo "export SLURM_CONF=$conf"; exit 0 ;; esac
  sleep 0.2
done
echo "slurm did not come up; see $dir/log" >&2
sinfo >&2 || true
exit 1
