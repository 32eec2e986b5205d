// Package hostctr runs Petrel's host containers and bootstrap containers
// in the host containerd (upstream's host-ctr, host-containers and
// bootstrap-containers agents, as one agent). It talks to containerd with
// containerd's own Go client, the only maintained one, and reads its
// settings from the API:
//
//	host-ctr run --container-id NAME    run host container NAME until stopped (host-containers@NAME.service)
//	host-ctr configure                  start, restart or stop host containers (the restart command)
//	host-ctr bootstrap                  run the bootstrap containers to completion, in name order
//	host-ctr clean-up --container-id ID remove a container, its task and snapshot
//
// Each container's state goes to a status document that apiserver serves
// at /host-containers/status. docs/host-containers.md has the settings,
// the mounts and what superpowered grants.
package hostctr
