// Package disklayout is Petrel's partition plan: the labels, type GUIDs,
// 1 MiB-aligned offsets, sizes, entry numbers and attribute bits of the OS
// disk and, for the split plan, of the data disk. It follows upstream
// Bottlerocket's partyplanner so that image sizes and partition numbers stay
// compatible, with the OS name as the label prefix ("PETREL-BOOT-A").
//
// The build uses Plan to lay out images; on-host agents use the same plan
// and the gptprio helpers (EncodePrio, DecodePrio) to find and flip the A/B
// partition sets.
package disklayout
