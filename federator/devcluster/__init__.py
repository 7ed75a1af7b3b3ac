"""An embedded local control plane: real etcd, kube-apiserver, controllers and kwok on loopback.

Built from the Go module proxy by `python -m federator.devcluster.build` (recipe in
hack/controlplane/) and started by `federator.devcluster.launcher.ControlPlane`; used by the
integration tests, `federator cluster` and `federator demo`, because an operator is only proven
against a real API server. Submodules are not imported here so that `python -m` runs cleanly.
"""
