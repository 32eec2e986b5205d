package ami

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"path/filepath"
	"slices"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go"

	"github.com/petrel-os/petrel/tools/snapshot"
)

// Device names of the disks, as upstream registers them.
const (
	RootDevice = "/dev/xvda"
	DataDevice = "/dev/xvdb"
)

// Defaults of Options.
const (
	DefaultPollInterval = 15 * time.Second
	DefaultPollAttempts = 90
	// availableChecks is how many answers in a row must show a new image
	// available before it is used: a new AMI can flap at first.
	availableChecks = 3
)

// Options describe one publication.
type Options struct {
	// Spec is resolved (Spec.Resolve).
	Spec Spec
	// Names fill the SSM parameter names; Arch is the build's (x86_64,
	// aarch64).
	Names Names
	// OSImage is the raw OS disk; DataImage the split plan's data disk.
	OSImage, DataImage string
	// StateDir holds the state files of interrupted runs.
	StateDir string
	// OutDir and OutPrefix name the output files
	// <OutDir>/<OutPrefix>-amis.json and -ssm-parameters.json.
	OutDir, OutPrefix string
	// PollInterval and PollAttempts bound each wait for a snapshot or an
	// image (defaults DefaultPollInterval, DefaultPollAttempts).
	PollInterval time.Duration
	PollAttempts int
	// UploadJobs is the number of blocks in flight (snapshot default).
	UploadJobs int
	// Progress is called during uploads with the disk ("os", "data").
	Progress func(disk string, p snapshot.Progress)
	Logger   *slog.Logger
}

// Result describes a publication.
type Result struct {
	// Account is the AWS account published to.
	Account string
	Name    string
	// Images are the AMI of each region, in the spec's order.
	Images []RegionImage
	// Uploads are the snapshots uploaded in this run.
	Uploads []Upload
	// Parameters are the SSM parameters, with what was done.
	Parameters []Parameter
	// Files are the output files written.
	Files []string
}

// RegionImage is the AMI of one region.
type RegionImage struct {
	Region string `json:"-"`
	ID     string `json:"id"`
	Name   string `json:"name"`
	Public bool   `json:"public"`
	// LaunchPermissions are the accounts that may launch it.
	LaunchPermissions []string `json:"launch_permissions"`
	// Reused is true when the AMI existed before this run.
	Reused bool `json:"-"`
	// Available is true when it was seen available.
	Available bool `json:"-"`
	// snapshots are the image's snapshots in that region.
	snapshots []string
}

// Upload describes one disk's upload.
type Upload struct {
	Disk, Snapshot string
	snapshot.Result
	// Resumed is true when an earlier run's snapshot was continued.
	Resumed bool
}

// Parameter is one SSM parameter in one region.
type Parameter struct {
	Region, Name, Value string
	// Action is "written", "overwritten" or "unchanged".
	Action string
}

// publication is the state of one Publish.
type publication struct {
	c   Clients
	o   Options
	s   Spec
	st  *state
	log *slog.Logger
	res *Result
}

// Publish uploads, registers and publishes the images as o.Spec asks.
func Publish(ctx context.Context, c Clients, o Options) (*Result, error) {
	if o.PollInterval <= 0 {
		o.PollInterval = DefaultPollInterval
	}
	if o.PollAttempts <= 0 {
		o.PollAttempts = DefaultPollAttempts
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	p := &publication{c: c, o: o, s: o.Spec, log: o.Logger, res: &Result{Name: o.Spec.Name}}
	id, err := c.STS.GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	if err != nil {
		return nil, fmt.Errorf("find the AWS account (check credentials and region): %w", err)
	}
	p.res.Account = aws.ToString(id.Account)
	base := p.s.Regions[0]
	p.log.Info("publishing AMI", "name", p.s.Name, "account", p.res.Account, "region", base)

	if p.st, err = loadState(StatePath(o.StateDir, p.s.Name), p.s.Name, base); err != nil {
		return nil, err
	}
	img, err := p.baseImage(ctx)
	if err != nil {
		if serr := p.st.save(); serr != nil {
			p.log.Warn("saving the state failed", "error", serr)
		}
		return p.res, err
	}
	p.res.Images = append(p.res.Images, *img)
	if err := p.st.remove(); err != nil {
		return p.res, err
	}
	if err := p.publish(ctx); err != nil {
		return p.res, err
	}
	return p.res, p.writeOutputs()
}

// baseImage finds or registers the AMI in the base region.
func (p *publication) baseImage(ctx context.Context) (*RegionImage, error) {
	base := p.s.Regions[0]
	ec := p.c.EC2(base)
	if existing, err := p.existing(ctx, base); existing != nil || err != nil {
		return existing, err
	}
	disks := []struct{ name, path string }{{"os", p.o.OSImage}}
	if p.o.DataImage != "" {
		disks = append(disks, struct{ name, path string }{"data", p.o.DataImage})
	}
	snaps := map[string]string{}
	for _, d := range disks {
		id, err := p.upload(ctx, ec, d.name, d.path)
		if err != nil {
			return nil, err
		}
		snaps[d.name] = id
	}
	if err := p.waitSnapshots(ctx, ec, slices.Collect(maps.Values(snaps))); err != nil {
		return nil, err
	}
	id, err := p.register(ctx, ec, snaps)
	if err != nil {
		return nil, err
	}
	p.st.update(func() { p.st.ImageID = id })
	if err := p.st.save(); err != nil {
		return nil, err
	}
	img := &RegionImage{Region: base, ID: id, Name: p.s.Name, snapshots: []string{snaps["os"]}}
	if snaps["data"] != "" {
		img.snapshots = append(img.snapshots, snaps["data"])
	}
	p.log.Info("AMI registered", "id", id, "region", base)
	return img, nil
}

// upload uploads one disk, resuming or replacing an earlier run's
// snapshot as its state allows, and returns the snapshot ID.
func (p *publication) upload(ctx context.Context, ec EC2, disk, path string) (string, error) {
	d, stale, err := p.st.disk(disk, path)
	if err != nil {
		return "", err
	}
	if stale != "" {
		p.log.Warn("the image changed since the interrupted run; its snapshot is deleted", "disk", disk, "snapshot", stale)
		if err := deleteSnapshot(ctx, ec, stale); err != nil {
			return "", err
		}
	}
	resumed := false
	if d.Snapshot != "" {
		status, err := snapshotStatus(ctx, ec, d.Snapshot)
		if err != nil {
			return "", err
		}
		switch {
		case d.Completed && status != "" && status != "error":
			p.log.Info("snapshot uploaded by an earlier run", "disk", disk, "snapshot", d.Snapshot)
			return d.Snapshot, nil
		case !d.Completed && status == "pending":
			resumed = true
			p.log.Info("resuming the upload of an earlier run", "disk", disk, "snapshot", d.Snapshot, "blocks_done", len(d.done))
		default:
			p.log.Warn("the snapshot of an earlier run cannot be continued; starting again", "disk", disk, "snapshot", d.Snapshot, "status", status)
			if status != "" {
				if err := deleteSnapshot(ctx, ec, d.Snapshot); err != nil {
					return "", err
				}
			}
			p.st.update(func() { d.Snapshot, d.Completed, d.done = "", false, map[int32]bool{} })
		}
	}
	if err := p.st.save(); err != nil {
		return "", err
	}
	stop := make(chan struct{})
	go p.st.saveEvery(2*time.Second, stop)
	done := maps.Clone(d.done)
	o := snapshot.Options{
		Description: filepath.Base(path), Tags: p.s.Tags, ClientToken: d.ClientToken, Jobs: p.o.UploadJobs, Logger: p.log,
		SnapshotID: d.Snapshot,
		Skip:       func(i int32) bool { return done[i] },
		Started: func(id string) error {
			p.st.update(func() { d.Snapshot = id })
			return p.st.save()
		},
		Done: func(i int32) { p.st.block(d, i) },
	}
	if p.o.Progress != nil {
		o.Progress = func(pr snapshot.Progress) { p.o.Progress(disk, pr) }
	}
	res, err := snapshot.Upload(ctx, p.c.EBS, path, o)
	close(stop)
	if err == nil {
		p.st.update(func() { d.Completed = true })
	}
	if serr := p.st.save(); err == nil && serr != nil {
		err = serr
	}
	if err != nil {
		return "", err
	}
	p.res.Uploads = append(p.res.Uploads, Upload{Disk: disk, Snapshot: res.SnapshotID, Result: *res, Resumed: resumed})
	return res.SnapshotID, nil
}

// apiCode returns the AWS error code of err, if any.
func apiCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

// snapshotStatus returns a snapshot's status, "" when it does not exist.
func snapshotStatus(ctx context.Context, ec EC2, id string) (string, error) {
	out, err := ec.DescribeSnapshots(ctx, &ec2.DescribeSnapshotsInput{SnapshotIds: []string{id}})
	if apiCode(err) == "InvalidSnapshot.NotFound" {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("describe snapshot %s: %w", id, err)
	}
	if len(out.Snapshots) == 0 {
		return "", nil
	}
	return string(out.Snapshots[0].State), nil
}

func deleteSnapshot(ctx context.Context, ec EC2, id string) error {
	_, err := ec.DeleteSnapshot(ctx, &ec2.DeleteSnapshotInput{SnapshotId: aws.String(id)})
	if err != nil && apiCode(err) != "InvalidSnapshot.NotFound" {
		return fmt.Errorf("delete snapshot %s: %w", id, err)
	}
	return nil
}

// poll calls check every interval until it reports done, at most
// attempts times.
func (p *publication) poll(ctx context.Context, what string, check func() (bool, error)) error {
	for i := range p.o.PollAttempts {
		if i > 0 {
			select {
			case <-ctx.Done():
				return fmt.Errorf("wait for %s: %w", what, ctx.Err())
			case <-time.After(p.o.PollInterval):
			}
		}
		done, err := check()
		if err != nil || done {
			return err
		}
	}
	return fmt.Errorf("wait for %s: not done after %d checks %s apart", what, p.o.PollAttempts, p.o.PollInterval)
}

// waitSnapshots waits until every snapshot is completed.
func (p *publication) waitSnapshots(ctx context.Context, ec EC2, ids []string) error {
	slices.Sort(ids)
	return p.poll(ctx, "snapshots to complete", func() (bool, error) {
		out, err := ec.DescribeSnapshots(ctx, &ec2.DescribeSnapshotsInput{SnapshotIds: ids})
		if err != nil {
			return false, fmt.Errorf("describe snapshots: %w", err)
		}
		n := 0
		for _, s := range out.Snapshots {
			switch s.State {
			case types.SnapshotStateCompleted:
				n++
			case types.SnapshotStateError:
				return false, fmt.Errorf("snapshot %s failed: %s", aws.ToString(s.SnapshotId), aws.ToString(s.StateMessage))
			}
		}
		return n == len(ids), nil
	})
}

// register registers the AMI from the snapshots. A name that is taken
// (the answer of an earlier RegisterImage lost) is looked up instead.
func (p *publication) register(ctx context.Context, ec EC2, snaps map[string]string) (string, error) {
	s := p.s
	mapping := func(dev, snap string, gib int64) types.BlockDeviceMapping {
		return types.BlockDeviceMapping{DeviceName: aws.String(dev), Ebs: &types.EbsBlockDevice{
			SnapshotId: aws.String(snap), VolumeSize: aws.Int32(int32(gib)), VolumeType: types.VolumeType(s.VolumeType), DeleteOnTermination: aws.Bool(true)}}
	}
	in := &ec2.RegisterImageInput{
		Name: aws.String(s.Name), Description: nonEmpty(s.Description), Architecture: types.ArchitectureValues(Architecture(p.o.Names.Arch)),
		VirtualizationType: aws.String("hvm"), EnaSupport: aws.Bool(true), SriovNetSupport: aws.String("simple"),
		RootDeviceName: aws.String(RootDevice), BootMode: types.BootModeValues(s.BootMode),
		BlockDeviceMappings: []types.BlockDeviceMapping{mapping(RootDevice, snaps["os"], s.OSVolumeGiB)},
	}
	if snaps["data"] != "" {
		in.BlockDeviceMappings = append(in.BlockDeviceMappings, mapping(DataDevice, snaps["data"], s.DataVolumeGiB))
	}
	if s.IMDSSupport == "v2.0" {
		in.ImdsSupport = types.ImdsSupportValuesV20
	}
	if s.TPM {
		in.TpmSupport = types.TpmSupportValuesV20
	}
	out, err := ec.RegisterImage(ctx, in)
	if apiCode(err) == "InvalidAMIName.Duplicate" {
		img, ferr := findImage(ctx, ec, s.Name)
		if ferr == nil && img != nil {
			return img.ID, nil
		}
	}
	if err != nil {
		return "", fmt.Errorf("register image %s: %w", s.Name, err)
	}
	return aws.ToString(out.ImageId), nil
}

func nonEmpty(s string) *string {
	if s == "" {
		return nil
	}
	return aws.String(s)
}

// existing returns the AMI of the name in region, marked reused, or nil.
func (p *publication) existing(ctx context.Context, region string) (*RegionImage, error) {
	img, err := findImage(ctx, p.c.EC2(region), p.s.Name)
	if img != nil {
		img.Region, img.Reused = region, true
		p.log.Info("AMI of this name exists, reusing it", "id", img.ID, "region", region)
	}
	return img, err
}

// findImage returns the caller's image named name, nil if there is none.
func findImage(ctx context.Context, ec EC2, name string) (*RegionImage, error) {
	out, err := ec.DescribeImages(ctx, &ec2.DescribeImagesInput{Owners: []string{"self"},
		Filters: []types.Filter{{Name: aws.String("name"), Values: []string{name}}}})
	if err != nil {
		return nil, fmt.Errorf("look for image %s: %w", name, err)
	}
	if len(out.Images) == 0 {
		return nil, nil
	}
	return regionImage(out.Images[0]), nil
}

func regionImage(im types.Image) *RegionImage {
	r := &RegionImage{ID: aws.ToString(im.ImageId), Name: aws.ToString(im.Name), Public: aws.ToBool(im.Public),
		Available: im.State == types.ImageStateAvailable}
	for _, m := range im.BlockDeviceMappings {
		if m.Ebs != nil && m.Ebs.SnapshotId != nil {
			r.snapshots = append(r.snapshots, *m.Ebs.SnapshotId)
		}
	}
	return r
}
