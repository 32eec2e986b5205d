package ami

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"slices"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"
	"golang.org/x/sync/errgroup"

	"github.com/petrel-os/petrel/sources/outfile"
)

// publish does what follows registration: waits, copies, launch
// permissions and SSM parameters.
func (p *publication) publish(ctx context.Context) error {
	s := p.s
	grants := s.Public || len(s.LaunchAccounts) > 0
	base := &p.res.Images[0]
	if s.Wait || grants || len(s.Regions) > 1 {
		if err := p.waitAvailable(ctx, base); err != nil {
			return err
		}
	}
	copies := make([]RegionImage, len(s.Regions)-1)
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(s.CopyJobs)
	for i, region := range s.Regions[1:] {
		g.Go(func() error {
			img, err := p.copyTo(gctx, region, base)
			if err != nil {
				return err
			}
			if s.Wait || grants {
				if err := p.waitAvailable(gctx, img); err != nil {
					return err
				}
			}
			copies[i] = *img
			return nil
		})
	}
	err := g.Wait()
	for _, c := range copies {
		if c.ID != "" {
			p.res.Images = append(p.res.Images, c)
		}
	}
	if err != nil {
		return err
	}
	for i := range p.res.Images {
		if err := p.grant(ctx, &p.res.Images[i]); err != nil {
			return err
		}
	}
	if s.SSM {
		for _, img := range p.res.Images {
			if err := p.parameters(ctx, img); err != nil {
				return err
			}
		}
	}
	return nil
}

// waitAvailable waits until img is available: availableChecks answers in
// a row for an image registered or copied in this run, one for an image
// that existed.
func (p *publication) waitAvailable(ctx context.Context, img *RegionImage) error {
	ec := p.c.EC2(img.Region)
	want := availableChecks
	if img.Reused {
		want = 1
	}
	seen := 0
	err := p.poll(ctx, fmt.Sprintf("image %s in %s to be available", img.ID, img.Region), func() (bool, error) {
		out, err := ec.DescribeImages(ctx, &ec2.DescribeImagesInput{ImageIds: []string{img.ID}})
		if err != nil {
			return false, fmt.Errorf("describe image %s in %s: %w", img.ID, img.Region, err)
		}
		if len(out.Images) != 1 {
			seen = 0
			return false, nil
		}
		switch out.Images[0].State {
		case types.ImageStateAvailable:
			seen++
		case types.ImageStateFailed, types.ImageStateError, types.ImageStateInvalid:
			return false, fmt.Errorf("image %s in %s is %s: %s", img.ID, img.Region, out.Images[0].State, stateReason(out.Images[0]))
		default:
			seen = 0
		}
		*img = mergeImage(*img, *regionImage(out.Images[0]))
		return seen >= want, nil
	})
	if err != nil {
		return err
	}
	img.Available = true
	p.log.Info("AMI available", "id", img.ID, "region", img.Region)
	return nil
}

func stateReason(im types.Image) string {
	if im.StateReason != nil {
		return aws.ToString(im.StateReason.Message)
	}
	return "no reason given"
}

// mergeImage updates what DescribeImages tells about img.
func mergeImage(img, seen RegionImage) RegionImage {
	img.Public = seen.Public
	if len(seen.snapshots) > 0 {
		img.snapshots = seen.snapshots
	}
	return img
}

// copyTo finds or makes the copy of base in region. The client token is
// derived from the source and the region, so a copy whose answer was
// lost is not made twice.
func (p *publication) copyTo(ctx context.Context, region string, base *RegionImage) (*RegionImage, error) {
	ec := p.c.EC2(region)
	if existing, err := p.existing(ctx, region); existing != nil || err != nil {
		return existing, err
	}
	tok := sha256.Sum256([]byte(base.Region + "/" + base.ID + "->" + region))
	out, err := ec.CopyImage(ctx, &ec2.CopyImageInput{Name: aws.String(base.Name), Description: nonEmpty(p.s.Description),
		SourceImageId: aws.String(base.ID), SourceRegion: aws.String(base.Region), ClientToken: aws.String(hex.EncodeToString(tok[:16]))})
	if err != nil {
		return nil, fmt.Errorf("copy image %s to %s: %w", base.ID, region, err)
	}
	p.log.Info("AMI copied", "id", aws.ToString(out.ImageId), "region", region, "from", base.ID)
	return &RegionImage{Region: region, ID: aws.ToString(out.ImageId), Name: base.Name}, nil
}

// grant gives the spec's launch permissions on img and its snapshots.
func (p *publication) grant(ctx context.Context, img *RegionImage) error {
	s := p.s
	if !s.Public && len(s.LaunchAccounts) == 0 {
		return nil
	}
	ec := p.c.EC2(img.Region)
	var perms []types.LaunchPermission
	for _, a := range s.LaunchAccounts {
		perms = append(perms, types.LaunchPermission{UserId: aws.String(a)})
	}
	if s.Public {
		perms = append(perms, types.LaunchPermission{Group: types.PermissionGroupAll})
	}
	if _, err := ec.ModifyImageAttribute(ctx, &ec2.ModifyImageAttributeInput{ImageId: aws.String(img.ID),
		LaunchPermission: &types.LaunchPermissionModifications{Add: perms}}); err != nil {
		return fmt.Errorf("grant launch permission on %s in %s: %w", img.ID, img.Region, err)
	}
	if len(s.LaunchAccounts) > 0 {
		for _, snap := range img.snapshots {
			if _, err := ec.ModifySnapshotAttribute(ctx, &ec2.ModifySnapshotAttributeInput{SnapshotId: aws.String(snap),
				Attribute: types.SnapshotAttributeNameCreateVolumePermission, OperationType: types.OperationTypeAdd,
				UserIds: s.LaunchAccounts}); err != nil {
				return fmt.Errorf("grant volume permission on snapshot %s in %s: %w", snap, img.Region, err)
			}
		}
	}
	img.Public = img.Public || s.Public
	for _, a := range s.LaunchAccounts {
		if !slices.Contains(img.LaunchPermissions, a) {
			img.LaunchPermissions = append(img.LaunchPermissions, a)
		}
	}
	p.log.Info("launch permissions granted", "id", img.ID, "region", img.Region, "public", img.Public, "accounts", img.LaunchPermissions)
	return nil
}

// ParameterNames returns the SSM parameter names of a build:
// <prefix>/<variant>/<arch>/<version>-<build>/image_id and image_version,
// with EC2's architecture name, as upstream's default templates.
func ParameterNames(prefix string, n Names) (imageID, imageVersion string) {
	dir := path.Join(prefix, n.Variant, Architecture(n.Arch), ImageVersion(n))
	return dir + "/image_id", dir + "/image_version"
}

// ImageVersion is the version of a build as the SSM parameters give it.
func ImageVersion(n Names) string { return n.Version + "-" + n.Build }

// parameters writes the SSM parameters of img's region. Parameters that
// hold the value already are left alone; different values are refused
// unless the spec allows overwriting.
func (p *publication) parameters(ctx context.Context, img RegionImage) error {
	c := p.c.SSM(img.Region)
	idName, verName := ParameterNames(p.s.SSMPrefix, p.o.Names)
	want := []Parameter{{Region: img.Region, Name: idName, Value: img.ID}, {Region: img.Region, Name: verName, Value: ImageVersion(p.o.Names)}}
	out, err := c.GetParameters(ctx, &ssm.GetParametersInput{Names: []string{idName, verName}})
	if err != nil {
		return fmt.Errorf("read SSM parameters in %s: %w", img.Region, err)
	}
	have := map[string]string{}
	for _, prm := range out.Parameters {
		have[aws.ToString(prm.Name)] = aws.ToString(prm.Value)
	}
	for _, w := range want {
		old, exists := have[w.Name]
		switch {
		case exists && old == w.Value:
			w.Action = "unchanged"
		case exists && !p.s.SSMOverwrite:
			return fmt.Errorf("%w: SSM parameter %s in %s holds %q, not %q: set publish.ssm-overwrite (--ssm-overwrite) to replace it",
				ErrSpec, w.Name, img.Region, old, w.Value)
		default:
			if _, err := c.PutParameter(ctx, &ssm.PutParameterInput{Name: aws.String(w.Name), Value: aws.String(w.Value),
				Type: ssmtypes.ParameterTypeString, Overwrite: aws.Bool(exists)}); err != nil {
				return fmt.Errorf("write SSM parameter %s in %s: %w", w.Name, img.Region, err)
			}
			w.Action = "written"
			if exists {
				w.Action = "overwritten"
			}
		}
		p.res.Parameters = append(p.res.Parameters, w)
	}
	return nil
}

// writeOutputs writes <prefix>-amis.json ({region: image}) and, when
// parameters were written, <prefix>-ssm-parameters.json ({region:
// {name: value}}).
func (p *publication) writeOutputs() error {
	if p.o.OutDir == "" {
		return nil
	}
	amis := map[string]RegionImage{}
	for _, img := range p.res.Images {
		if img.LaunchPermissions == nil {
			img.LaunchPermissions = []string{}
		}
		amis[img.Region] = img
	}
	files := []struct {
		suffix string
		v      any
	}{{"-amis.json", amis}}
	if len(p.res.Parameters) > 0 {
		params := map[string]map[string]string{}
		for _, prm := range p.res.Parameters {
			if params[prm.Region] == nil {
				params[prm.Region] = map[string]string{}
			}
			params[prm.Region][prm.Name] = prm.Value
		}
		files = append(files, struct {
			suffix string
			v      any
		}{"-ssm-parameters.json", params})
	}
	for _, f := range files {
		data, err := json.MarshalIndent(f.v, "", "  ")
		if err != nil {
			return fmt.Errorf("encode %s: %w", f.suffix, err)
		}
		name := filepath.Join(p.o.OutDir, p.o.OutPrefix+f.suffix)
		if err := outfile.WriteFile(name, append(data, '\n'), outfile.Options{}); err != nil {
			return fmt.Errorf("write %s: %w", name, err)
		}
		p.res.Files = append(p.res.Files, name)
	}
	return nil
}

// Clean deletes the snapshots an interrupted run of AMI name left in
// region and its state file. Snapshots that a registered AMI uses are
// kept (AWS refuses to delete them) and returned in kept.
func Clean(ctx context.Context, c Clients, stateDir, name, region string) (deleted, kept []string, err error) {
	st, err := loadState(StatePath(stateDir, name), name, region)
	if err != nil {
		return nil, nil, err
	}
	if _, err := os.Stat(st.path); err != nil {
		return nil, nil, fmt.Errorf("%w: no interrupted run of %s to clean up (%s)", ErrSpec, name, st.path)
	}
	ec := c.EC2(region)
	for _, disk := range []string{"os", "data"} {
		d := st.Disks[disk]
		if d == nil || d.Snapshot == "" {
			continue
		}
		_, err := ec.DeleteSnapshot(ctx, &ec2.DeleteSnapshotInput{SnapshotId: aws.String(d.Snapshot)})
		switch apiCode(err) {
		case "":
			if err != nil {
				return deleted, kept, fmt.Errorf("delete snapshot %s: %w", d.Snapshot, err)
			}
			deleted = append(deleted, d.Snapshot)
		case "InvalidSnapshot.NotFound":
		case "InvalidSnapshot.InUse":
			kept = append(kept, d.Snapshot)
		default:
			return deleted, kept, fmt.Errorf("delete snapshot %s: %w", d.Snapshot, err)
		}
	}
	return deleted, kept, st.remove()
}
