#!/usr/bin/env bash
# demo.sh is the main job: migrate a running workload container (256 MiB of
# verified memory, a TCP heartbeat) from the lab's host1 to host2 with the
# real agents over TLS, and print the freeze time. `make demo` runs the
# setup (deps, lab) first.
set -euo pipefail
cd "$(dirname "$0")/.."
L="bash scripts/lab.sh"
NAME=${DEMO_NAME:-demo-workload}
MEM=${DEMO_MEM_MIB:-256}
eval "$($L env host2)"; H2_ADDR=$LAB_ADDR; H2_DOCKER=$LAB_DOCKER_HOST; H2_CONF=$LAB_CONFIG; H2_TLS=$LAB_TLS_DIR; H2_WORK=$LAB_WORK_DIR
eval "$($L env host1)"; H1_DOCKER=$LAB_DOCKER_HOST; H1_TLS=$LAB_TLS_DIR; H1_WORK=$LAB_WORK_DIR
PORT=$LAB_AGENT_PORT LOGS=$LAB_LOG_DIR NET=$LAB_NETWORK

cleanup() {
	[ -n "${DST_PID:-}" ] && kill "$DST_PID" 2>/dev/null && wait "$DST_PID" 2>/dev/null
	for h in host1 host2; do $L on "$h" docker rm -f "$NAME" >/dev/null 2>&1 || true; done
	# The demo's container goes for good: so does the reservation of its
	# address that host1 keeps while it lives on host2.
	[ -n "${IP:-}" ] && $L on host1 docker rm -f "dockmove-reserve-$NET-$IP" >/dev/null 2>&1 || true
}
trap cleanup EXIT
cleanup
DST_EVENTS=$LOGS/demo-dst.events
rm -f "$DST_EVENTS"

echo "== host2: migrate-dst listening on $H2_ADDR:$PORT"
$L on host2 bin/migrate-dst --listen "$H2_ADDR:$PORT" --docker-host "$H2_DOCKER" \
	--work-dir "$H2_WORK" --runtime-state "$(dirname "$H2_CONF")/runtime" \
	--tls-dir "$H2_TLS" --events "$DST_EVENTS" >$LOGS/demo-dst.log 2>&1 &
DST_PID=$!
# Its event stream says when it accepts migrations.
for _ in $(seq 100); do grep -q '"event":"ready"' "$DST_EVENTS" && break; sleep 0.1; done
grep -q '"event":"ready"' "$DST_EVENTS" || { cat $LOGS/demo-dst.log >&2; echo "demo: migrate-dst did not start" >&2; exit 1; }

echo "== host1: workload container $NAME holding $MEM MiB"
$L on host1 docker run -d --pull never --name "$NAME" --network "$NET" dockmove/workload:lab \
	/usr/local/bin/workload --data-dir /data --mem-mib "$MEM" >/dev/null
IP=$($L on host1 docker inspect -f "{{(index .NetworkSettings.Networks \"$NET\").IPAddress}}" "$NAME")
$L on host1 docker exec "$NAME" arping -U -c 1 -I eth0 "$IP" >/dev/null
until before=$(bin/workload query "$IP:7000" status 2>/dev/null); do sleep 0.2; done
echo "   before: $before"

echo "== migrate-src --to $H2_ADDR:$PORT $NAME"
$L on host1 bin/migrate-src --to "$H2_ADDR:$PORT" --docker-host "$H1_DOCKER" \
	--work-dir "$H1_WORK" --tls-dir "$H1_TLS" "$NAME"

after=$(bin/workload query "$IP:7000" verify)
echo "   after (on host2, memory verified): $after"
echo "   host2: $($L on host2 docker ps --filter "name=^/$NAME\$" --format '{{.Names}}: {{.Status}}')"
echo "   host1: $($L on host1 docker ps -a --filter "name=^/$NAME\$" --format '{{.Names}}: {{.Status}}')"
echo "   host1 keeps the address reserved: $($L on host1 docker ps --filter "label=dockmove.reservation=$NET/$IP" --format '{{.Names}}: {{.Status}}')"
