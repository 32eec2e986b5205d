package ova

import (
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/petrel-os/petrel/tools/vmdk"
)

// Envelope is the part of an OVF descriptor that must agree with the
// disks: the files, the disks and the virtual hardware. Element and
// attribute names are matched without their namespaces.
type Envelope struct {
	Files []struct {
		ID   string `xml:"id,attr"`
		Href string `xml:"href,attr"`
	} `xml:"References>File"`
	Disks []struct {
		ID       string `xml:"diskId,attr"`
		FileRef  string `xml:"fileRef,attr"`
		Capacity string `xml:"capacity,attr"`
		Units    string `xml:"capacityAllocationUnits,attr"`
		Format   string `xml:"format,attr"`
	} `xml:"DiskSection>Disk"`
	Items []Item `xml:"VirtualSystem>VirtualHardwareSection>Item"`
}

// Item is one virtual hardware item (CIM_ResourceAllocationSettingData).
type Item struct {
	InstanceID      string   `xml:"InstanceID"`
	ResourceType    int      `xml:"ResourceType"`
	ResourceSubType string   `xml:"ResourceSubType"`
	Parent          string   `xml:"Parent"`
	HostResource    []string `xml:"HostResource"`
	AddressOnParent string   `xml:"AddressOnParent"`
}

// CIM resource types of the hardware items Petrel's templates use.
const (
	ResourceIDE   = 5
	ResourceSCSI  = 6
	ResourceOther = 20 // with a subtype: vmware.nvme.controller, ...
	ResourceDisk  = 17
)

// StreamOptimized is the OVF disk format of a streamOptimized VMDK.
const StreamOptimized = "http://www.vmware.com/interfaces/specifications/vmdk.html#streamOptimized"

// ParseEnvelope decodes an OVF descriptor.
func ParseEnvelope(ovf []byte) (*Envelope, error) {
	var env Envelope
	if err := xml.Unmarshal(ovf, &env); err != nil {
		return nil, fmt.Errorf("parse OVF: %w", err)
	}
	return &env, nil
}

// CapacityBytes returns the capacity of the disk with the given ID in
// bytes: ovf:capacity times ovf:capacityAllocationUnits ("byte" or
// "byte * 2^N"; absent means bytes).
func (e *Envelope) CapacityBytes(diskID string) (int64, error) {
	for _, d := range e.Disks {
		if d.ID != diskID {
			continue
		}
		n, err := strconv.ParseInt(d.Capacity, 10, 64)
		if err != nil || n <= 0 {
			return 0, fmt.Errorf("disk %s: capacity %q, want a positive integer", diskID, d.Capacity)
		}
		units := strings.ReplaceAll(d.Units, " ", "")
		switch {
		case units == "" || units == "byte":
			return n, nil
		case strings.HasPrefix(units, "byte*2^"):
			exp, err := strconv.Atoi(strings.TrimPrefix(units, "byte*2^"))
			if err != nil || exp < 0 || exp > 40 || n > (1<<62)>>exp {
				return 0, fmt.Errorf("disk %s: capacityAllocationUnits %q, want \"byte\" or \"byte * 2^N\"", diskID, d.Units)
			}
			return n << exp, nil
		}
		return 0, fmt.Errorf("disk %s: capacityAllocationUnits %q, want \"byte\" or \"byte * 2^N\"", diskID, d.Units)
	}
	return 0, fmt.Errorf("no disk %s in the DiskSection", diskID)
}

// Controller returns the hardware item of the controller the disk with the
// given ID is attached to.
func (e *Envelope) Controller(diskID string) (Item, error) {
	for _, it := range e.Items {
		if it.ResourceType != ResourceDisk || !hostsDisk(it, diskID) {
			continue
		}
		for _, c := range e.Items {
			if c.InstanceID == it.Parent {
				return c, nil
			}
		}
		return Item{}, fmt.Errorf("disk %s: its item's Parent %q names no hardware item", diskID, it.Parent)
	}
	return Item{}, fmt.Errorf("disk %s: no disk item (ResourceType 17) with HostResource ovf:/disk/%s", diskID, diskID)
}

func hostsDisk(it Item, diskID string) bool {
	for _, h := range it.HostResource {
		if h == "ovf:/disk/"+diskID || h == "/disk/"+diskID {
			return true
		}
	}
	return false
}

// AdapterType returns the ddb.adapterType a VMDK attached to controller c
// carries. The VMDK format names IDE and the SCSI adapters; it has no type
// for NVMe, and VMware's own converter (open-vmdk's vmdk-convert) writes
// "lsilogic" for every disk, NVMe ones included: deployment takes the
// controller from the OVF, and the descriptor's type only guides a hosted
// product that attaches the VMDK alone. Petrel's images boot from NVMe on
// VMware (the initramfs carries the nvme driver, not the LSI Logic ones),
// so its template uses an NVMe controller and its VMDKs say "lsilogic".
func AdapterType(c Item) (string, error) {
	switch {
	case c.ResourceType == ResourceIDE:
		return "ide", nil
	case c.ResourceType == ResourceSCSI && strings.EqualFold(c.ResourceSubType, "lsilogic"):
		return "lsilogic", nil
	case c.ResourceType == ResourceSCSI && strings.EqualFold(c.ResourceSubType, "buslogic"):
		return "buslogic", nil
	case c.ResourceType == ResourceOther && c.ResourceSubType == "vmware.nvme.controller":
		return "lsilogic", nil
	}
	return "", fmt.Errorf("controller %s (ResourceType %d, ResourceSubType %q) is not one a Petrel VMDK can be attached to: want IDE (5), SCSI (6) lsilogic or buslogic, or NVMe (20, vmware.nvme.controller)",
		c.InstanceID, c.ResourceType, c.ResourceSubType)
}

// VMDKInfo is what ReadVMDK reads from a streamOptimized VMDK.
type VMDKInfo struct {
	Header     vmdk.Header
	Descriptor vmdk.Descriptor
}

// CapacityBytes is the disk size the VMDK describes.
func (v VMDKInfo) CapacityBytes() int64 { return int64(v.Header.Capacity) * vmdk.SectorSize }

// ReadVMDK reads the sparse extent header and the embedded descriptor of a
// VMDK.
func ReadVMDK(r io.ReaderAt) (VMDKInfo, error) {
	head := make([]byte, vmdk.SectorSize)
	if _, err := r.ReadAt(head, 0); err != nil {
		return VMDKInfo{}, fmt.Errorf("read VMDK header: %w", err)
	}
	h, err := vmdk.ParseHeader(head)
	if err != nil {
		return VMDKInfo{}, err
	}
	if h.DescriptorSize == 0 || h.DescriptorSize > 2048 {
		return VMDKInfo{}, fmt.Errorf("%w: descriptor of %d sectors, want 1..2048", vmdk.ErrBadHeader, h.DescriptorSize)
	}
	text := make([]byte, h.DescriptorSize*vmdk.SectorSize)
	if _, err := r.ReadAt(text, int64(h.DescriptorOffset)*vmdk.SectorSize); err != nil {
		return VMDKInfo{}, fmt.Errorf("read VMDK descriptor: %w", err)
	}
	d, err := vmdk.ParseDescriptor(text)
	if err != nil {
		return VMDKInfo{}, err
	}
	return VMDKInfo{Header: h, Descriptor: d}, nil
}

// checkAgainstVMDKs checks the rendered OVF against the VMDK files of disks:
// every disk of the DiskSection refers to one of them, is
// streamOptimized as the VMDK is, has a capacity no smaller than the
// VMDK's (VMware grows a disk on deployment, never shrinks it), and sits
// on a controller whose adapter type (AdapterType) the VMDK carries.
// Every problem is reported.
func checkAgainstVMDKs(env *Envelope, disks []Disk) error {
	files := map[string]string{} // file id -> href
	for _, f := range env.Files {
		files[f.ID] = f.Href
	}
	byName := map[string]Disk{}
	for _, d := range disks {
		byName[diskName(d)] = d
	}
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if len(env.Disks) != len(disks) {
		bad("the DiskSection lists %d disks, want %d", len(env.Disks), len(disks))
	}
	for _, od := range env.Disks {
		d, ok := byName[files[od.FileRef]]
		if !ok {
			bad("disk %s: fileRef %q names no disk file", od.ID, od.FileRef)
			continue
		}
		info, err := readVMDKFile(d.Path)
		if err != nil {
			errs = append(errs, fmt.Errorf("disk %s: %w", od.ID, err))
			continue
		}
		if od.Format != StreamOptimized || info.Descriptor.CreateType != "streamOptimized" {
			bad("disk %s: OVF format %q and VMDK createType %q, want %s and streamOptimized", od.ID, od.Format, info.Descriptor.CreateType, StreamOptimized)
		}
		if c, err := env.CapacityBytes(od.ID); err != nil {
			bad("%v", err)
		} else if c < info.CapacityBytes() {
			bad("disk %s: OVF capacity %d bytes is smaller than the VMDK's %d", od.ID, c, info.CapacityBytes())
		}
		c, err := env.Controller(od.ID)
		if err != nil {
			bad("%v", err)
			continue
		}
		want, err := AdapterType(c)
		if err != nil {
			bad("disk %s: %v", od.ID, err)
			continue
		}
		if got, _ := info.Descriptor.Get("ddb.adapterType"); got != want {
			bad("disk %s: the VMDK's ddb.adapterType is %q, want %q for controller %s (%s)", od.ID, got, want, c.InstanceID, c.ResourceSubType)
		}
	}
	return errors.Join(errs...)
}

func readVMDKFile(path string) (VMDKInfo, error) {
	f, err := os.Open(path)
	if err != nil {
		return VMDKInfo{}, fmt.Errorf("open disk: %w", err)
	}
	defer f.Close()
	info, err := ReadVMDK(f)
	if err != nil {
		return VMDKInfo{}, fmt.Errorf("%s: %w", path, err)
	}
	return info, nil
}
