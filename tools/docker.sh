#!/usr/bin/env bash
# Installs what the Docker backend's tests start (make test): Debian's docker.io
# (dockerd, containerd, runc, and tini as docker-init), busybox-static (the shell of
# the runner image the tests build, since no registry can be reached) and
# docker-registry (a registry of the tests' own on the loopback, to pull from). The tests start
# their own engine (docker/dockertest): nothing here starts or changes a system
# service, and a machine whose docker.io postinst may not start one is fine.
set -euo pipefail
missing=()
command -v dockerd >/dev/null || missing+=(docker.io)
command -v busybox >/dev/null && readelf -l "$(command -v busybox)" 2>/dev/null | grep -q INTERP && missing+=(busybox-static)
command -v busybox >/dev/null || missing+=(busybox-static)
command -v docker-registry >/dev/null || missing+=(docker-registry)
if [ ${#missing[@]} -gt 0 ]; then
	echo "installing ${missing[*]}" >&2
	# policy-rc.d: the package's own docker.service is not started; the tests start theirs.
	policy=/usr/sbin/policy-rc.d
	created=
	if [ ! -e "$policy" ]; then
		printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod 0755 "$policy" && created=1
	fi
	if ! out=$( (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}") 2>&1); then
		echo "$out" >&2
		exit 1
	fi
	if [ -n "$created" ]; then rm -f "$policy"; fi
fi
for c in dockerd containerd runc docker-init busybox docker-registry; do
	command -v "$c" >/dev/null || { echo "tools/docker.sh: $c is still missing" >&2; exit 1; }
done
