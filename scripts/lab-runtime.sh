#!/usr/bin/env bash
# lab-runtime.sh registers the restore runtime (bin/dockmove-runtime) with
# both lab daemons, each with its own state directory. Idempotent: prints
# nothing when it is already in place.
set -euo pipefail
cd "$(dirname "$0")/.."
for h in host1 host2; do
	eval "$(bash scripts/lab.sh env "$h")"
	out=$(bin/migrate-dst install-runtime \
		--from bin/dockmove-runtime \
		--daemon-json "$LAB_CONFIG" \
		--dockerd-pidfile "$LAB_PIDFILE" \
		--runtime-state "$(dirname "$LAB_CONFIG")/runtime" \
		--docker-host "$LAB_DOCKER_HOST")
	case $out in
	*"already installed"*) ;;
	*) echo "lab: $h: $out" >&2 ;;
	esac
done

# TLS credentials for the lab's agents: one CA, one certificate per host.
tls=/var/lib/dockmove-lab/tls
if [ ! -s "$tls/host2/key.pem" ]; then
	rm -rf "$tls"
	bin/migrate-dst certs --out "$tls" --host host1=10.77.0.11 --host host2=10.77.0.12 >/dev/null
	echo "lab: TLS credentials in $tls" >&2
fi
