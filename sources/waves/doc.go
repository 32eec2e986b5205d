// Package waves spreads an update over a fleet in time: the wave plan (a
// TOML file of "start after, fleet percentage" steps) that the build turns
// into a schedule of seeds and start times in manifest.json, and the
// arithmetic by which a host with a given seed decides when an update is
// ready for it.
//
// Every host draws a seed in [0, MaxSeed). A schedule maps the first seed
// of each wave to the wave's start time. A host in wave i becomes ready at
// a time spread evenly across the wave by its position in the wave's seed
// range: start(i) + (start(i+1)-start(i)) * (seed-first(i)) / (first(i+1)-first(i)).
// Upstream multiplies by the absolute seed instead of the position within
// the wave, so most hosts of a later wave wait until the wave's end; this
// package does not. The last wave has no end: its hosts are ready when it
// starts (as upstream).
//
// The format follows upstream's so that its wave files and manifests work
// unchanged: start_after and fleet_percentage in the plan, string seeds and
// RFC 3339 times in the schedule.
package waves
