#!/usr/bin/env bash
# Builds the kube-apiserver and etcd that the Kubernetes tests run against, from the Go
# module proxy (tools/kube pins the versions), into a cache outside the repository, once.
# Prints the directory to use as KUBEBUILDER_ASSETS.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
key=$(cat "$here/kube/go.mod" "$here/kube/go.sum" | sha256sum | cut -c1-12)
dir=${RECONCILE_ENVTEST_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/reconcile/envtest}/$key
if [ -x "$dir/kube-apiserver" ] && [ -x "$dir/etcd" ]; then
	echo "$dir"
	exit 0
fi
echo "envtest: building kube-apiserver and etcd into $dir (first time only: several minutes)..." >&2
mkdir -p "$dir"
cd "$here/kube"
start=$(date +%s)
for bin in etcd:go.etcd.io/etcd/server/v3 kube-apiserver:k8s.io/kubernetes/cmd/kube-apiserver; do
	name=${bin%%:*}
	pkg=${bin#*:}
	CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o "$dir/$name.tmp" "$pkg"
	mv "$dir/$name.tmp" "$dir/$name"
done
echo "envtest: built in $(( $(date +%s) - start ))s" >&2
echo "$dir"
