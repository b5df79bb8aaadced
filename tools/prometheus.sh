#!/usr/bin/env bash
# Installs what the monitoring tests run (make test): Debian's prometheus, which
# brings promtool, and prometheus-node-exporter (a timer's passes reach Prometheus
# through its textfile collector). The tests start their own Prometheus and
# node_exporter on 127.0.0.1; the packages' own services are not started.
set -euo pipefail
if command -v prometheus >/dev/null && command -v promtool >/dev/null && command -v prometheus-node-exporter >/dev/null; then
	exit 0
fi
echo "installing prometheus" >&2
policy=/usr/sbin/policy-rc.d
created=
if [ ! -e "$policy" ]; then
	printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod 0755 "$policy" && created=1
fi
if ! out=$( (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus prometheus-node-exporter) 2>&1); then
	echo "$out" >&2
	exit 1
fi
if [ -n "$created" ]; then rm -f "$policy"; fi
command -v promtool >/dev/null || { echo "tools/prometheus.sh: promtool is still missing" >&2; exit 1; }
