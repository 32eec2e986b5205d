// The pause image is built from upstream's build/pause/linux/pause.c in this module.
module petrel.invalid/pause

go 1.26.0

require k8s.io/kubernetes v1.37.2
