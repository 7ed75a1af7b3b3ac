#!/usr/bin/env bash
# Regenerates go.mod/go.sum of the control-plane recipe from scratch.
# Usage: hack/controlplane/generate.sh [K8S_VERSION]   (default 1.35.4)
# Needs only Go and the module proxy. The committed go.mod/go.sum are its output.
set -euo pipefail
cd "$(dirname "$0")"
V=${1:-1.35.4}
S=v0.${V#1.}
export GOFLAGS=-mod=mod
rm -f go.mod go.sum
go mod init federator.local/controlplane
# Same language version and GODEBUG defaults as kubernetes' own go.mod.
go mod edit -go=1.25.0 -godebug=default=go1.25
GM=$(go mod download -json "k8s.io/kubernetes@v$V" | python3 -c 'import json,sys;print(json.load(sys.stdin)["GoMod"])')
# kubernetes requires each staging module at v0.0.0 (replaced by ./staging/...); a consumer
# must replace every one of them by the matching release itself.
# Exactly v0.0.0: k8s.io/utils, kube-openapi etc. use v0.0.0-<date>-<sha> pseudo-versions and
# are real dependencies, not staging modules.
for m in $(grep -E '^\s*k8s\.io/[a-z0-9-]+ v0\.0\.0\s*$' "$GM" | awk '{print $1}' | sort -u); do
  go mod edit "-replace=$m=$m@$S"
done
go mod edit "-require=k8s.io/kubernetes@v$V"
for t in k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager \
  k8s.io/kubernetes/cmd/kube-scheduler k8s.io/kubernetes/cmd/kubectl go.etcd.io/etcd/server/v3; do
  go mod edit "-tool=$t"
done
go mod tidy
