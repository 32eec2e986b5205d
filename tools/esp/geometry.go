package esp

import (
	"fmt"

	"github.com/petrel-os/petrel/sources/fat"
)

// geometry is the layout of one FAT filesystem, in sectors.
type geometry struct {
	typ         fat.Type
	total       int64
	spc         int // sectors per cluster
	reserved    int
	numFATs     int
	rootEntries int // FAT16 only
	fatSectors  int64
	clusters    uint32
	rootSectors int64
	firstData   int64
}

const (
	fat16RootEntries = 512
	fat32Reserved    = 32
	fat32MinClusters = fat.MaxFAT16Clusters + 1
	fat32Threshold   = 512 << 20 / SectorSize // sectors; FAT32 from 512 MiB on
)

func (g *geometry) clusterBytes() int64 { return int64(g.spc) * SectorSize }

// layout fills the FAT size, cluster count and data start for g.typ,
// g.spc and g.total.
func (g *geometry) layout() {
	entryBits := int64(16)
	g.reserved, g.numFATs, g.rootEntries = 1, 2, fat16RootEntries
	if g.typ == fat.FAT32 {
		entryBits, g.reserved, g.rootEntries = 32, fat32Reserved, 0
	}
	g.rootSectors = int64(g.rootEntries) * 32 / SectorSize
	g.fatSectors = 1
	for {
		data := g.total - int64(g.reserved) - int64(g.numFATs)*g.fatSectors - g.rootSectors
		if data < int64(g.spc) {
			g.clusters = 0
			return
		}
		clusters := data / int64(g.spc)
		need := ((clusters+2)*entryBits + 8*SectorSize - 1) / (8 * SectorSize)
		if need <= g.fatSectors {
			g.clusters = uint32(min(clusters, 0x0FFFFFF5))
			break
		}
		g.fatSectors = need
	}
	g.firstData = int64(g.reserved) + int64(g.numFATs)*g.fatSectors + g.rootSectors
}

// chooseGeometry picks FAT16 with the smallest cluster that keeps the
// count within FAT16's range, or FAT32 for large (or forced) volumes.
func chooseGeometry(totalSectors int64, forceFAT32 bool) (*geometry, error) {
	if forceFAT32 || totalSectors >= fat32Threshold {
		spc := 8 // 4 KiB clusters up to 8 GiB
		switch {
		case totalSectors > 32<<30/SectorSize:
			spc = 64
		case totalSectors > 16<<30/SectorSize:
			spc = 32
		case totalSectors > 8<<30/SectorSize:
			spc = 16
		}
		for ; spc >= 1; spc /= 2 {
			g := &geometry{typ: fat.FAT32, total: totalSectors, spc: spc}
			g.layout()
			if g.clusters >= fat32MinClusters {
				return g, nil
			}
		}
		return nil, fmt.Errorf("%d sectors hold fewer than %d clusters, too few for FAT32: %w", totalSectors, fat32MinClusters, ErrTooSmall)
	}
	for spc := 1; spc <= 64; spc *= 2 {
		g := &geometry{typ: fat.FAT16, total: totalSectors, spc: spc}
		g.layout()
		if g.clusters > fat.MaxFAT16Clusters {
			continue
		}
		if g.clusters <= fat.MaxFAT12Clusters {
			return nil, fmt.Errorf("%d sectors hold %d clusters, FAT16 needs more than %d (at least about 2.1 MiB): %w", totalSectors, g.clusters, fat.MaxFAT12Clusters, ErrTooSmall)
		}
		return g, nil
	}
	return nil, fmt.Errorf("%d sectors are too many for FAT16 with 32 KiB clusters; use FAT32", totalSectors)
}
