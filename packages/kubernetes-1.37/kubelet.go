//go:build tools

// Package kubelet makes k8s.io/kubernetes/cmd/kubelet part of the wrapper
// module's build list, so that `go mod tidy` records every module kubelet
// needs in go.mod and go.sum. It is never compiled.
package kubelet

import _ "k8s.io/kubernetes/cmd/kubelet"
