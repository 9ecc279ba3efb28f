#!/usr/bin/env bash
# A local Redis Cluster for the cluster tests and for trying the service on one: 3 masters with one
# replica each, from Debian's redis-server, on ports of its own (REDIS_CLUSTER_BASE_PORT, default
# 7100: 7100-7105), data under .data/cluster-<base port>. Idempotent: a node that is down is started again (it rejoins).
#   bash scripts/cluster.sh [start]   starts it (installs redis-server when missing) and prints
#                                     REDIS_CLUSTER_NODES=…
#   bash scripts/cluster.sh stop      stops it and removes its data
set -euo pipefail
cd "$(dirname "$0")/.."
BASE=${REDIS_CLUSTER_BASE_PORT:-7100}
DIR="$PWD/.data/cluster-$BASE"
PORTS=$(seq "$BASE" $((BASE + 5)))
log() { printf '[cluster] %s\n' "$*" >&2; }

if [ "${1:-start}" = stop ]; then
  for p in $PORTS; do redis-cli -p "$p" shutdown nosave >/dev/null 2>&1 || true; done
  rm -rf "$DIR"
  log "stopped"
  exit 0
fi

command -v redis-server >/dev/null 2>&1 || bash scripts/services.sh --tests >/dev/null
for p in $PORTS; do
  redis-cli -p "$p" ping >/dev/null 2>&1 && continue
  mkdir -p "$DIR/$p"
  redis-server --port "$p" --bind 127.0.0.1 --daemonize yes --dir "$DIR/$p" --logfile "$DIR/$p/redis.log" \
    --cluster-enabled yes --cluster-config-file nodes.conf --cluster-node-timeout 2000 \
    --appendonly no --save '' --maxmemory-policy noeviction --hash-max-listpack-value 4096 \
    --repl-diskless-sync-delay 0 --cluster-replica-validity-factor 0
done
for p in $PORTS; do
  for _ in $(seq 1 50); do redis-cli -p "$p" ping >/dev/null 2>&1 && break; sleep 0.1; done
done
if ! redis-cli -p "$BASE" cluster info | grep -q '^cluster_state:ok'; then
  if [ "$(redis-cli -p "$BASE" cluster info | sed -n 's/^cluster_known_nodes:\([0-9]*\).*/\1/p')" -lt 6 ]; then
    log "creating the cluster"
    # shellcheck disable=SC2046
    redis-cli --cluster create $(for p in $PORTS; do printf '127.0.0.1:%s ' "$p"; done) --cluster-replicas 1 --cluster-yes >/dev/null
  fi
fi
for _ in $(seq 1 100); do
  ok=1
  for p in $PORTS; do redis-cli -p "$p" cluster info | grep -q '^cluster_state:ok' || ok=0; done
  [ $ok = 1 ] && break
  sleep 0.2
done
[ $ok = 1 ] || { log "the cluster did not come up; see $DIR/*/redis.log"; exit 1; }
# every master with its replica in sync, so a master lost from now on has a replica to take over
for _ in $(seq 1 150); do
  synced=0
  for p in $PORTS; do
    info=$(redis-cli -p "$p" info replication)
    if echo "$info" | grep -q '^role:master' && echo "$info" | grep -q '^slave0:.*state=online'; then synced=$((synced + 1)); fi
  done
  [ $synced -ge 3 ] && break
  sleep 0.2
done
[ $synced -ge 3 ] || { log "the replicas did not sync; see $DIR/*/redis.log"; exit 1; }
log "ready"
echo "REDIS_CLUSTER_NODES=127.0.0.1:$BASE,127.0.0.1:$((BASE + 1)),127.0.0.1:$((BASE + 2))"
