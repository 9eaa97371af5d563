#!/usr/bin/env bash
# lab-runtime.sh registers the restore runtime (bin/dockmove-runtime) with
# every lab daemon that is up, each with its own state directory. A modern
# host's dockerd sees only its Debian testing root and the lab's own
# directories, so its runtime binary lives in the host's lab directory.
# Idempotent: prints nothing when it is already in place.
set -euo pipefail
cd "$(dirname "$0")/.."
# install HOST registers the runtime with HOST's dockerd, if it is up.
install() {
	local h=$1 binary out
	eval "$(bash scripts/lab.sh env "$h")"
	docker -H "$LAB_DOCKER_HOST" version >/dev/null 2>&1 || return 0
	binary=/usr/local/bin/dockmove-runtime
	case $h in host3 | host4 | host5) binary=$(dirname "$LAB_CONFIG")/dockmove-runtime ;; esac
	out=$(bin/migrate-dst install-runtime \
		--binary "$binary" \
		--from bin/dockmove-runtime \
		--daemon-json "$LAB_CONFIG" \
		--dockerd-pidfile "$LAB_PIDFILE" \
		--runtime-state "$(dirname "$LAB_CONFIG")/runtime" \
		--docker-host "$LAB_DOCKER_HOST")
	case $out in
	*"already installed"*) ;;
	*) echo "lab: $h: $out" >&2 ;;
	esac
}
# Side by side: each waits for its dockerd to reload.
pids=()
for h in host1 host2 host3 host4 host5; do
	install "$h" &
	pids+=($!)
done
for p in "${pids[@]}"; do wait "$p"; done

# TLS credentials for the lab's agents: one CA, one certificate per host
# (host5's is carried into the VM tier's guest, so that it and this
# machine's hosts trust each other). Issued for the hosts that have none
# (a directory left without a key is made again); not in that guest
# (LAB_CERTS=carried), which has only the CA's certificate and host5's.
[ "${LAB_CERTS:-}" != carried ] || exit 0
hosts=()
for h in host1 host2 host3 host4 host5; do
	eval "$(bash scripts/lab.sh env "$h")"
	if [ ! -s "$LAB_TLS_DIR/key.pem" ]; then
		rm -rf "$LAB_TLS_DIR"
		hosts+=(--host "$h=$LAB_ADDR")
	fi
done
tls=$(dirname "$LAB_TLS_DIR")
if [ ${#hosts[@]} -gt 0 ]; then
	# (from the CA already there, if any: the others' stay as they are)
	bin/migrate-dst certs --out "$tls" "${hosts[@]}" >/dev/null
	echo "lab: TLS credentials in $tls" >&2
fi
