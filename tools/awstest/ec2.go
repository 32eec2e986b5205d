package awstest

import (
	"encoding/xml"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// Image is one AMI of the fake.
type Image struct {
	ID, Name, Description string
	Architecture          string
	// State is "pending" until PendingPolls DescribeImages answers have
	// shown it, then "available".
	State              string
	RootDeviceName     string
	Mappings           []Mapping
	EnaSupport         bool
	SriovNetSupport    string
	VirtualizationType string
	BootMode           string
	ImdsSupport        string
	TpmSupport         string
	Public             bool
	// Users may launch the image.
	Users []string
	// SourceRegion and SourceImage are set on copies.
	SourceRegion, SourceImage string
	// Form is the RegisterImage or CopyImage request as received.
	Form  url.Values
	polls int
}

// Mapping is one block device mapping of an image.
type Mapping struct {
	DeviceName          string
	SnapshotID          string
	VolumeSize          int64
	VolumeType          string
	DeleteOnTermination bool
}

func (s *Server) serveEC2(w http.ResponseWriter, req *request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	reg := s.region(req.region)
	f := req.r.Form
	var (
		out any
		err *apiError
	)
	switch req.op {
	case "DescribeSnapshots":
		out, err = s.describeSnapshots(reg, f)
	case "DeleteSnapshot":
		err = deleteSnapshot(reg, f)
	case "ModifySnapshotAttribute":
		err = modifySnapshotAttribute(reg, f)
	case "RegisterImage":
		out, err = s.registerImage(reg, f)
	case "DescribeImages":
		out, err = s.describeImages(reg, f)
	case "CopyImage":
		out, err = s.copyImage(reg, f)
	case "ModifyImageAttribute":
		err = modifyImageAttribute(reg, f)
	default:
		err = errorf(http.StatusBadRequest, "InvalidAction", "the fake does not serve %s", req.op)
	}
	if err != nil {
		s.fail(w, req, err.status, err.code, err.message)
		return
	}
	if out == nil {
		out = &ec2Return{XMLName: xml.Name{Local: req.op + "Response"}, Return: true}
	}
	writeXML(w, out)
}

type ec2Return struct {
	XMLName   xml.Name
	Xmlns     string `xml:"xmlns,attr,omitempty"`
	RequestID string `xml:"requestId"`
	Return    bool   `xml:"return"`
}

func invalidParam(format string, args ...any) *apiError {
	return errorf(http.StatusBadRequest, "InvalidParameterValue", format, args...)
}

// list returns the values of a query list: prefix.1, prefix.2, ...
func list(f url.Values, prefix string) []string {
	var out []string
	for i := 1; ; i++ {
		v, ok := f[fmt.Sprintf("%s.%d", prefix, i)]
		if !ok {
			return out
		}
		out = append(out, v[0])
	}
}

// lists returns the indexed groups of a query list of structures:
// prefix.N.field → one map per N.
func lists(f url.Values, prefix string) []map[string]string {
	var out []map[string]string
	for i := 1; ; i++ {
		p := fmt.Sprintf("%s.%d.", prefix, i)
		m := map[string]string{}
		for k, v := range f {
			if rest, ok := strings.CutPrefix(k, p); ok {
				m[rest] = v[0]
			}
		}
		if len(m) == 0 {
			return out
		}
		out = append(out, m)
	}
}

type snapshotItem struct {
	SnapshotID  string `xml:"snapshotId"`
	Status      string `xml:"status"`
	Progress    string `xml:"progress"`
	VolumeSize  int64  `xml:"volumeSize"`
	Description string `xml:"description"`
	OwnerID     string `xml:"ownerId"`
}

type describeSnapshotsResponse struct {
	XMLName   xml.Name       `xml:"DescribeSnapshotsResponse"`
	RequestID string         `xml:"requestId"`
	Items     []snapshotItem `xml:"snapshotSet>item"`
}

func (s *Server) describeSnapshots(reg *Region, f url.Values) (any, *apiError) {
	out := &describeSnapshotsResponse{RequestID: "req-1"}
	for _, id := range list(f, "SnapshotId") {
		sn := reg.Snapshots[id]
		if sn == nil {
			return nil, errorf(http.StatusBadRequest, "InvalidSnapshot.NotFound", "The snapshot '%s' does not exist.", id)
		}
		status, progress := sn.State, "100%"
		switch sn.State {
		case "uploading":
			status, progress = "pending", "0%"
		case "pending":
			if sn.polls++; sn.polls > s.PendingPolls {
				sn.State, status = "completed", "completed"
			} else {
				progress = "50%"
			}
		}
		out.Items = append(out.Items, snapshotItem{SnapshotID: sn.ID, Status: status, Progress: progress, VolumeSize: sn.VolumeSize, Description: sn.Description, OwnerID: Account})
	}
	return out, nil
}

func deleteSnapshot(reg *Region, f url.Values) *apiError {
	id := f.Get("SnapshotId")
	sn := reg.Snapshots[id]
	if sn == nil {
		return errorf(http.StatusBadRequest, "InvalidSnapshot.NotFound", "The snapshot '%s' does not exist.", id)
	}
	for _, im := range reg.Images {
		for _, m := range im.Mappings {
			if m.SnapshotID == id {
				return errorf(http.StatusBadRequest, "InvalidSnapshot.InUse", "The snapshot %s is currently in use by %s", id, im.ID)
			}
		}
	}
	sn.close()
	delete(reg.Snapshots, id)
	return nil
}

func modifySnapshotAttribute(reg *Region, f url.Values) *apiError {
	sn := reg.Snapshots[f.Get("SnapshotId")]
	if sn == nil {
		return errorf(http.StatusBadRequest, "InvalidSnapshot.NotFound", "The snapshot '%s' does not exist.", f.Get("SnapshotId"))
	}
	users := list(f, "UserId")
	for _, p := range lists(f, "CreateVolumePermission.Add") {
		if p["UserId"] != "" {
			users = append(users, p["UserId"])
		}
	}
	return addAccounts(&sn.Users, users)
}

// addAccounts adds the account IDs users to list, refusing bad IDs.
func addAccounts(list *[]string, users []string) *apiError {
	for _, u := range users {
		if !accountRE.MatchString(u) {
			return invalidParam("Invalid id: %q (expecting a 12-digit account ID)", u)
		}
		if !slices.Contains(*list, u) {
			*list = append(*list, u)
		}
	}
	return nil
}

var (
	accountRE   = regexp.MustCompile(`^\d{12}$`)
	amiNameRE   = regexp.MustCompile(`^[a-zA-Z0-9()\[\] ./\-'@_]{3,128}$`)
	volumeTypes = []string{"standard", "io1", "io2", "gp2", "sc1", "st1", "gp3"}
	bootModes   = []string{"legacy-bios", "uefi", "uefi-preferred"}
	arches      = []string{"i386", "x86_64", "arm64", "x86_64_mac", "arm64_mac"}
)

func (s *Server) registerImage(reg *Region, f url.Values) (any, *apiError) {
	im := &Image{Name: f.Get("Name"), Description: f.Get("Description"), Architecture: f.Get("Architecture"),
		RootDeviceName: f.Get("RootDeviceName"), EnaSupport: f.Get("EnaSupport") == "true", SriovNetSupport: f.Get("SriovNetSupport"),
		VirtualizationType: f.Get("VirtualizationType"), BootMode: f.Get("BootMode"), ImdsSupport: f.Get("ImdsSupport"),
		TpmSupport: f.Get("TpmSupport"), State: "pending", Form: f}
	if f.Get("ImageLocation") != "" {
		return nil, invalidParam("ImageLocation: instance-store images are not supported by the fake")
	}
	if !amiNameRE.MatchString(im.Name) {
		return nil, errorf(http.StatusBadRequest, "InvalidAMIName.Malformed", "AMI name %q must be 3-128 characters of letters, numbers, ( ) [ ] space . / - ' @ _", im.Name)
	}
	for _, other := range reg.Images {
		if other.Name == im.Name {
			return nil, errorf(http.StatusBadRequest, "InvalidAMIName.Duplicate", "AMI name %s is already in use by AMI %s", im.Name, other.ID)
		}
	}
	if im.Architecture != "" && !slices.Contains(arches, im.Architecture) {
		return nil, invalidParam("Value (%s) for parameter architecture is invalid", im.Architecture)
	}
	if v := im.VirtualizationType; v != "" && v != "hvm" && v != "paravirtual" {
		return nil, invalidParam("Value (%s) for parameter virtualizationType is invalid", v)
	}
	if v := im.SriovNetSupport; v != "" && v != "simple" {
		return nil, invalidParam("Value (%s) for parameter sriovNetSupport is invalid; the only value is simple", v)
	}
	if v := im.BootMode; v != "" && !slices.Contains(bootModes, v) {
		return nil, invalidParam("Value (%s) for parameter bootMode is invalid", v)
	}
	if v := im.ImdsSupport; v != "" && v != "v2.0" {
		return nil, invalidParam("Value (%s) for parameter imdsSupport is invalid; the only value is v2.0", v)
	}
	if v := im.TpmSupport; v != "" {
		if v != "v2.0" {
			return nil, invalidParam("Value (%s) for parameter tpmSupport is invalid; the only value is v2.0", v)
		}
		if im.BootMode != "uefi" && im.BootMode != "uefi-preferred" {
			return nil, invalidParam("NitroTPM needs boot mode uefi or uefi-preferred, not %q", im.BootMode)
		}
	}
	if im.RootDeviceName == "" {
		return nil, errorf(http.StatusBadRequest, "MissingParameter", "an EBS-backed image needs RootDeviceName")
	}
	for _, b := range lists(f, "BlockDeviceMapping") {
		m := Mapping{DeviceName: b["DeviceName"], SnapshotID: b["Ebs.SnapshotId"], VolumeType: b["Ebs.VolumeType"], DeleteOnTermination: b["Ebs.DeleteOnTermination"] == "true"}
		if !strings.HasPrefix(m.DeviceName, "/dev/") {
			return nil, errorf(http.StatusBadRequest, "InvalidBlockDeviceMapping", "device name %q is not /dev/...", m.DeviceName)
		}
		for _, o := range im.Mappings {
			if o.DeviceName == m.DeviceName {
				return nil, errorf(http.StatusBadRequest, "InvalidBlockDeviceMapping", "device %s is mapped twice", m.DeviceName)
			}
		}
		sn := reg.Snapshots[m.SnapshotID]
		if sn == nil {
			return nil, errorf(http.StatusBadRequest, "InvalidSnapshot.NotFound", "The snapshot '%s' does not exist.", m.SnapshotID)
		}
		if sn.State != "completed" {
			return nil, errorf(http.StatusBadRequest, "IncorrectState", "Snapshot %s is in invalid state - %s", sn.ID, sn.State)
		}
		m.VolumeSize = sn.VolumeSize
		if v := b["Ebs.VolumeSize"]; v != "" {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil || n < sn.VolumeSize {
				return nil, errorf(http.StatusBadRequest, "InvalidBlockDeviceMapping", "Volume of size %s is smaller than snapshot '%s', expect size >= %d", v, sn.ID, sn.VolumeSize)
			}
			m.VolumeSize = n
		}
		if m.VolumeType != "" && !slices.Contains(volumeTypes, m.VolumeType) {
			return nil, invalidParam("Value (%s) for parameter volumeType is invalid", m.VolumeType)
		}
		im.Mappings = append(im.Mappings, m)
	}
	if !slices.ContainsFunc(im.Mappings, func(m Mapping) bool { return m.DeviceName == im.RootDeviceName }) {
		return nil, errorf(http.StatusBadRequest, "InvalidBlockDeviceMapping", "root device %s has no block device mapping", im.RootDeviceName)
	}
	im.ID = s.newID("ami")
	reg.Images[im.ID] = im
	return &imageIDResponse{XMLName: xml.Name{Local: "RegisterImageResponse"}, RequestID: "req-1", ImageID: im.ID}, nil
}

type imageIDResponse struct {
	XMLName   xml.Name
	RequestID string `xml:"requestId"`
	ImageID   string `xml:"imageId"`
}

type ebsItem struct {
	SnapshotID          string `xml:"snapshotId"`
	VolumeSize          int64  `xml:"volumeSize"`
	VolumeType          string `xml:"volumeType,omitempty"`
	DeleteOnTermination bool   `xml:"deleteOnTermination"`
}

type mappingItem struct {
	DeviceName string  `xml:"deviceName"`
	Ebs        ebsItem `xml:"ebs"`
}

type imageItem struct {
	ImageID            string        `xml:"imageId"`
	Name               string        `xml:"name"`
	Description        string        `xml:"description,omitempty"`
	State              string        `xml:"imageState"`
	OwnerID            string        `xml:"imageOwnerId"`
	Public             bool          `xml:"isPublic"`
	Architecture       string        `xml:"architecture"`
	ImageType          string        `xml:"imageType"`
	RootDeviceName     string        `xml:"rootDeviceName"`
	RootDeviceType     string        `xml:"rootDeviceType"`
	VirtualizationType string        `xml:"virtualizationType"`
	EnaSupport         bool          `xml:"enaSupport"`
	SriovNetSupport    string        `xml:"sriovNetSupport,omitempty"`
	BootMode           string        `xml:"bootMode,omitempty"`
	ImdsSupport        string        `xml:"imdsSupport,omitempty"`
	TpmSupport         string        `xml:"tpmSupport,omitempty"`
	Mappings           []mappingItem `xml:"blockDeviceMapping>item"`
}

type describeImagesResponse struct {
	XMLName   xml.Name    `xml:"DescribeImagesResponse"`
	RequestID string      `xml:"requestId"`
	Items     []imageItem `xml:"imagesSet>item"`
}

func (s *Server) describeImages(reg *Region, f url.Values) (any, *apiError) {
	ids := list(f, "ImageId")
	for _, o := range list(f, "Owner") {
		if o != "self" && o != Account {
			return nil, invalidParam("the fake knows only owner self, not %q", o)
		}
	}
	filters := map[string][]string{}
	for i := 1; ; i++ {
		name, ok := f[fmt.Sprintf("Filter.%d.Name", i)]
		if !ok {
			break
		}
		filters[name[0]] = list(f, fmt.Sprintf("Filter.%d.Value", i))
	}
	for _, id := range ids {
		if reg.Images[id] == nil {
			return nil, errorf(http.StatusBadRequest, "InvalidAMIID.NotFound", "The image id '[%s]' does not exist", id)
		}
	}
	out := &describeImagesResponse{RequestID: "req-1"}
	for _, id := range slices.Sorted(maps.Keys(reg.Images)) {
		im := reg.Images[id]
		if len(ids) > 0 && !slices.Contains(ids, id) {
			continue
		}
		match := true
		for name, values := range filters {
			var v string
			switch name {
			case "name":
				v = im.Name
			case "architecture":
				v = im.Architecture
			case "image-type":
				v = "machine"
			case "virtualization-type":
				v = im.VirtualizationType
			default:
				return nil, invalidParam("The filter '%s' is invalid", name)
			}
			match = match && slices.Contains(values, v)
		}
		if !match {
			continue
		}
		if im.State == "pending" {
			if im.polls++; im.polls > s.PendingPolls {
				im.State = "available"
			}
		}
		item := imageItem{ImageID: im.ID, Name: im.Name, Description: im.Description, State: im.State, OwnerID: Account, Public: im.Public,
			Architecture: im.Architecture, ImageType: "machine", RootDeviceName: im.RootDeviceName, RootDeviceType: "ebs",
			VirtualizationType: im.VirtualizationType, EnaSupport: im.EnaSupport, SriovNetSupport: im.SriovNetSupport,
			BootMode: im.BootMode, ImdsSupport: im.ImdsSupport, TpmSupport: im.TpmSupport}
		for _, m := range im.Mappings {
			item.Mappings = append(item.Mappings, mappingItem{DeviceName: m.DeviceName, Ebs: ebsItem{SnapshotID: m.SnapshotID,
				VolumeSize: m.VolumeSize, VolumeType: m.VolumeType, DeleteOnTermination: m.DeleteOnTermination}})
		}
		out.Items = append(out.Items, item)
	}
	return out, nil
}

func (s *Server) copyImage(reg *Region, f url.Values) (any, *apiError) {
	token := f.Get("ClientToken")
	if id, ok := reg.tokens["copy:"+token]; ok && token != "" {
		return &imageIDResponse{XMLName: xml.Name{Local: "CopyImageResponse"}, RequestID: "req-1", ImageID: id}, nil
	}
	srcReg := s.regs[f.Get("SourceRegion")]
	if srcReg == nil || srcReg.Images[f.Get("SourceImageId")] == nil {
		return nil, errorf(http.StatusBadRequest, "InvalidAMIID.NotFound", "The image id '[%s]' does not exist in %s", f.Get("SourceImageId"), f.Get("SourceRegion"))
	}
	src := srcReg.Images[f.Get("SourceImageId")]
	if src.State != "available" {
		return nil, errorf(http.StatusBadRequest, "IncorrectState", "image %s is %s", src.ID, src.State)
	}
	name := f.Get("Name")
	if !amiNameRE.MatchString(name) {
		return nil, errorf(http.StatusBadRequest, "InvalidAMIName.Malformed", "AMI name %q is malformed", name)
	}
	for _, other := range reg.Images {
		if other.Name == name {
			return nil, errorf(http.StatusBadRequest, "InvalidAMIName.Duplicate", "AMI name %s is already in use by AMI %s", name, other.ID)
		}
	}
	cp := *src
	cp.ID, cp.Name, cp.Description, cp.State, cp.polls = s.newID("ami"), name, f.Get("Description"), "pending", 0
	cp.Public, cp.Users, cp.SourceRegion, cp.SourceImage, cp.Form = false, nil, srcReg.Name, src.ID, f
	cp.Mappings = nil
	for _, m := range src.Mappings {
		sn := srcReg.Snapshots[m.SnapshotID]
		c := &Snapshot{ID: s.newID("snap"), VolumeSize: sn.VolumeSize, Description: "copy of " + sn.ID, State: "completed", Digests: sn.Digests}
		reg.Snapshots[c.ID] = c
		m.SnapshotID = c.ID
		cp.Mappings = append(cp.Mappings, m)
	}
	reg.Images[cp.ID] = &cp
	if token != "" {
		reg.tokens["copy:"+token] = cp.ID
	}
	return &imageIDResponse{XMLName: xml.Name{Local: "CopyImageResponse"}, RequestID: "req-1", ImageID: cp.ID}, nil
}

func modifyImageAttribute(reg *Region, f url.Values) *apiError {
	im := reg.Images[f.Get("ImageId")]
	if im == nil {
		return errorf(http.StatusBadRequest, "InvalidAMIID.NotFound", "The image id '[%s]' does not exist", f.Get("ImageId"))
	}
	users := list(f, "UserId")
	groups := list(f, "UserGroup")
	for _, p := range lists(f, "LaunchPermission.Add") {
		if p["UserId"] != "" {
			users = append(users, p["UserId"])
		}
		if p["Group"] != "" {
			groups = append(groups, p["Group"])
		}
	}
	if len(users)+len(groups) == 0 {
		return invalidParam("ModifyImageAttribute changes nothing")
	}
	for _, g := range groups {
		if g != "all" {
			return invalidParam("Value (%s) for parameter group is invalid", g)
		}
		im.Public = true
	}
	return addAccounts(&im.Users, users)
}
