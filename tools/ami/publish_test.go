package ami

import (
	"context"
	"encoding/json"
	"errors"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/petrel-os/petrel/tools/awstest"
	"github.com/petrel-os/petrel/tools/snapshot"
)

const base = "us-west-2"

func clients(s *awstest.Server) Clients {
	cfg := aws.Config{Region: base, BaseEndpoint: aws.String(s.URL),
		Credentials: credentials.NewStaticCredentialsProvider(awstest.AccessKeyID, awstest.SecretAccessKey, "")}
	return NewClients(cfg, base, time.Millisecond)
}

// disk writes a sparse image of size bytes with data at the given block
// offsets.
func disk(t *testing.T, name string, size int64, blocks ...int64) string {
	t.Helper()
	data := map[int64][]byte{}
	for _, b := range blocks {
		d := []byte(strings.Repeat(name+" block ", 5000))
		data[b*snapshot.BlockSize+7] = d[:min(len(d), snapshot.BlockSize-7)]
	}
	return awstest.Disk(t, name, size, data)
}

type fixture struct {
	srv              *awstest.Server
	osImg, dataImg   string
	stateDir, outDir string
}

func newFixture(t *testing.T) *fixture {
	return &fixture{srv: awstest.NewServer(t),
		osImg:    disk(t, "os.img", 2<<30, 0, 1, 100, 2000, 4095),
		dataImg:  disk(t, "data.img", 1<<30, 0, 5, 2047),
		stateDir: t.TempDir(), outDir: t.TempDir()}
}

func (f *fixture) options(t *testing.T, layers ...Layer) Options {
	t.Helper()
	s := Defaults(base, 2, 20)
	for _, l := range layers {
		s.Apply(l)
	}
	r, err := s.Resolve(names, 2, 1)
	if err != nil {
		t.Fatal(err)
	}
	return Options{Spec: r, Names: names, OSImage: f.osImg, DataImage: f.dataImg, StateDir: f.stateDir,
		OutDir: f.outDir, OutPrefix: "petrel-aws-dev", PollInterval: time.Millisecond, UploadJobs: 8}
}

var fullPublish = Layer{Source: "test", Publish: PublishLayer{Regions: []string{base, "eu-central-1", "ap-south-1"},
	Wait: ptr(true), LaunchAccounts: []string{"444455556666"}, SSM: ptr(true)}}

func TestPublish(t *testing.T) {
	f := newFixture(t)
	res, err := Publish(t.Context(), clients(f.srv), f.options(t, fullPublish))
	if err != nil {
		t.Fatal(err)
	}
	if res.Account != awstest.Account || len(res.Images) != 3 || len(res.Uploads) != 2 {
		t.Fatalf("result %+v", res)
	}
	reg := f.srv.Region(base)
	im := reg.Images[res.Images[0].ID]
	if im == nil || im.Name != "petrel-aws-dev-x86_64-0.1.0-abcd1234" || im.State != "available" {
		t.Fatalf("registered image %+v", im)
	}
	// What RegisterImage sent, field by field.
	for k, want := range map[string]string{
		"Architecture": "x86_64", "VirtualizationType": "hvm", "EnaSupport": "true", "SriovNetSupport": "simple",
		"RootDeviceName": "/dev/xvda", "BootMode": "uefi-preferred", "ImdsSupport": "v2.0", "TpmSupport": "",
		"BlockDeviceMapping.1.DeviceName": "/dev/xvda", "BlockDeviceMapping.1.Ebs.VolumeSize": "2",
		"BlockDeviceMapping.1.Ebs.VolumeType": "gp2", "BlockDeviceMapping.1.Ebs.DeleteOnTermination": "true",
		"BlockDeviceMapping.2.DeviceName": "/dev/xvdb", "BlockDeviceMapping.2.Ebs.VolumeSize": "20",
		"Description": "petrel aws-dev 0.1.0 (x86_64, build abcd1234)",
	} {
		if got := im.Form.Get(k); got != want {
			t.Errorf("RegisterImage %s = %q, want %q", k, got, want)
		}
	}
	// The snapshots rebuild the images byte for byte.
	for i, img := range []string{f.osImg, f.dataImg} {
		sn := reg.Snapshots[im.Mappings[i].SnapshotID]
		if err := sn.Equal(img); err != nil {
			t.Errorf("%s: %v", filepath.Base(img), err)
		}
		if !slices.Equal(sn.Users, []string{"444455556666"}) {
			t.Errorf("snapshot %s create-volume users %v", sn.ID, sn.Users)
		}
	}
	for _, ri := range res.Images {
		r := f.srv.Region(ri.Region)
		got := r.Images[ri.ID]
		if got == nil || got.Name != im.Name || got.State != "available" || !slices.Equal(got.Users, []string{"444455556666"}) || got.Public {
			t.Errorf("image in %s: %+v", ri.Region, got)
		}
		if ri.Region != base && got.SourceImage != im.ID {
			t.Errorf("copy in %s comes from %s, want %s", ri.Region, got.SourceImage, im.ID)
		}
		id, ver := r.Parameters["/petrel/aws-dev/x86_64/0.1.0-abcd1234/image_id"], r.Parameters["/petrel/aws-dev/x86_64/0.1.0-abcd1234/image_version"]
		if id != ri.ID || ver != "0.1.0-abcd1234" {
			t.Errorf("SSM parameters in %s: %v", ri.Region, r.Parameters)
		}
	}
	var amis map[string]struct {
		ID                string   `json:"id"`
		Name              string   `json:"name"`
		Public            bool     `json:"public"`
		LaunchPermissions []string `json:"launch_permissions"`
	}
	data, err := os.ReadFile(filepath.Join(f.outDir, "petrel-aws-dev-amis.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &amis); err != nil || len(amis) != 3 || amis["ap-south-1"].ID != res.Images[2].ID ||
		!slices.Equal(amis[base].LaunchPermissions, []string{"444455556666"}) {
		t.Errorf("amis.json: %s (%v)", data, err)
	}
	if _, err := os.Stat(filepath.Join(f.outDir, "petrel-aws-dev-ssm-parameters.json")); err != nil {
		t.Error(err)
	}
	if _, err := os.Stat(StatePath(f.stateDir, im.Name)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("state file left after success: %v", err)
	}
	if f.srv.SawSecret() || len(f.srv.BadAuth()) > 0 {
		t.Errorf("secret sent: %v; badly signed: %v", f.srv.SawSecret(), f.srv.BadAuth())
	}

	// A second run finds everything and changes nothing.
	calls := map[string]int{}
	for _, op := range []string{"StartSnapshot", "PutSnapshotBlock", "RegisterImage", "CopyImage", "PutParameter"} {
		calls[op] = f.srv.Calls(op)
	}
	res2, err := Publish(t.Context(), clients(f.srv), f.options(t, fullPublish))
	if err != nil {
		t.Fatal(err)
	}
	for op, n := range calls {
		if got := f.srv.Calls(op); got != n {
			t.Errorf("second run made %d %s requests", got-n, op)
		}
	}
	for i, img := range res2.Images {
		if !img.Reused || img.ID != res.Images[i].ID {
			t.Errorf("second run image %d: %+v, want the first run's %s reused", i, img, res.Images[i].ID)
		}
	}
	for _, p := range res2.Parameters {
		if p.Action != "unchanged" {
			t.Errorf("second run: parameter %s %s", p.Name, p.Action)
		}
	}
}

// TestPublishThroughFaults fails requests of every service on the way.
func TestPublishThroughFaults(t *testing.T) {
	f := newFixture(t)
	for _, op := range []string{"GetCallerIdentity", "DescribeImages", "StartSnapshot", "CompleteSnapshot", "DescribeSnapshots",
		"RegisterImage", "CopyImage", "ModifyImageAttribute", "ModifySnapshotAttribute", "GetParameters", "PutParameter"} {
		f.srv.Fail(op, awstest.Throttle, 1)
		f.srv.Fail(op, awstest.ServerError, 1)
		f.srv.Fail(op, awstest.Drop, 1)
	}
	f.srv.Fail("RegisterImage", awstest.DropAnswer, 1)
	f.srv.Fail("CopyImage", awstest.DropAnswer, 1)
	f.srv.FailEvery("PutSnapshotBlock", awstest.ServerError, 3)
	res, err := Publish(t.Context(), clients(f.srv), f.options(t, fullPublish))
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range []string{base, "eu-central-1", "ap-south-1"} {
		if n := len(f.srv.Region(r).Images); n != 1 {
			t.Errorf("%s holds %d images, want 1 (a lost answer must not make a second)", r, n)
		}
	}
	if n := len(f.srv.Region(base).Snapshots); n != 2 {
		t.Errorf("%s holds %d snapshots, want 2", base, n)
	}
	if len(res.Images) != 3 || f.srv.Failed("RegisterImage") != 4 {
		t.Errorf("images %+v, RegisterImage failed %d times", res.Images, f.srv.Failed("RegisterImage"))
	}
}

// interrupt runs Publish and cancels it after n blocks arrived.
func interrupt(t *testing.T, f *fixture, n int64) {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	var puts atomic.Int64
	f.srv.OnRequest(func(op string) {
		if op == "PutSnapshotBlock" && puts.Add(1) == n {
			cancel()
		}
	})
	_, err := Publish(ctx, clients(f.srv), f.options(t))
	f.srv.OnRequest(nil)
	f.srv.Quiesce()
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("interrupted Publish = %v, want context.Canceled", err)
	}
}

func TestResume(t *testing.T) {
	f := newFixture(t)
	f.osImg = disk(t, "os.img", 2<<30, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 100, 2000, 4095)
	interrupt(t, f, 6)
	st, err := loadState(StatePath(f.stateDir, "petrel-aws-dev-x86_64-0.1.0-abcd1234"), "petrel-aws-dev-x86_64-0.1.0-abcd1234", base)
	if err != nil || st.Disks["os"] == nil || st.Disks["os"].Snapshot == "" || len(st.Disks["os"].Blocks) == 0 {
		t.Fatalf("state after the interruption: %+v (%v)", st, err)
	}
	first := f.srv.Calls("PutSnapshotBlock")
	res, err := Publish(t.Context(), clients(f.srv), f.options(t))
	if err != nil {
		t.Fatal(err)
	}
	up := res.Uploads[0]
	if !up.Resumed || up.Snapshot != st.Disks["os"].Snapshot || up.Uploaded != up.Changed-len(st.Disks["os"].Blocks) {
		t.Errorf("resumed upload %+v; state had %d blocks of %s", up, len(st.Disks["os"].Blocks), st.Disks["os"].Snapshot)
	}
	if n := len(f.srv.Region(base).Snapshots); n != 2 {
		t.Errorf("%d snapshots after the resumed run, want 2 (nothing orphaned)", n)
	}
	if got := f.srv.Calls("PutSnapshotBlock") - first; got != res.Uploads[0].Uploaded+res.Uploads[1].Uploaded {
		t.Errorf("%d blocks sent on resume, result says %d", got, res.Uploads[0].Uploaded+res.Uploads[1].Uploaded)
	}
	im := f.srv.Region(base).Images[res.Images[0].ID]
	if err := f.srv.Region(base).Snapshots[im.Mappings[0].SnapshotID].Equal(f.osImg); err != nil {
		t.Error(err)
	}
}

// TestStaleState rebuilds the image after an interruption: the old
// snapshot is deleted and a new one uploaded.
func TestStaleState(t *testing.T) {
	f := newFixture(t)
	interrupt(t, f, 2)
	old := slices.Collect(maps.Keys(f.srv.Region(base).Snapshots))
	time.Sleep(10 * time.Millisecond)
	f.osImg = disk(t, "os.img", 2<<30, 3, 4)
	res, err := Publish(t.Context(), clients(f.srv), f.options(t))
	if err != nil {
		t.Fatal(err)
	}
	snaps := f.srv.Region(base).Snapshots
	if len(snaps) != 2 || snaps[old[0]] != nil || res.Uploads[0].Resumed {
		t.Errorf("snapshots %v after a rebuilt image (old %v), uploads %+v", slices.Sorted(maps.Keys(snaps)), old, res.Uploads)
	}
	im := f.srv.Region(base).Images[res.Images[0].ID]
	if err := snaps[im.Mappings[0].SnapshotID].Equal(f.osImg); err != nil {
		t.Error(err)
	}
}

func TestClean(t *testing.T) {
	f := newFixture(t)
	interrupt(t, f, 3)
	name := "petrel-aws-dev-x86_64-0.1.0-abcd1234"
	deleted, kept, err := Clean(t.Context(), clients(f.srv), f.stateDir, name, base)
	if err != nil || len(deleted) != 1 || len(kept) != 0 {
		t.Fatalf("Clean = %v, %v, %v; want the os snapshot deleted", deleted, kept, err)
	}
	if n := len(f.srv.Region(base).Snapshots); n != 0 {
		t.Errorf("%d snapshots left after Clean", n)
	}
	if _, err := os.Stat(StatePath(f.stateDir, name)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("state file after Clean: %v", err)
	}
	if _, _, err := Clean(t.Context(), clients(f.srv), f.stateDir, name, base); !errors.Is(err, ErrSpec) || !strings.Contains(err.Error(), "no interrupted run") {
		t.Errorf("second Clean = %v, want no interrupted run", err)
	}
}

func TestSSMConflict(t *testing.T) {
	f := newFixture(t)
	f.srv.Region(base).Parameters["/petrel/aws-dev/x86_64/0.1.0-abcd1234/image_id"] = "ami-someoneelse"
	ssmOn := Layer{Source: "test", Publish: PublishLayer{SSM: ptr(true)}}
	_, err := Publish(t.Context(), clients(f.srv), f.options(t, ssmOn))
	if !errors.Is(err, ErrSpec) || !strings.Contains(err.Error(), `SSM parameter /petrel/aws-dev/x86_64/0.1.0-abcd1234/image_id in us-west-2 holds "ami-someoneelse"`) {
		t.Fatalf("Publish over a different parameter = %v", err)
	}
	res, err := Publish(t.Context(), clients(f.srv), f.options(t, ssmOn, Layer{Source: "test", Publish: PublishLayer{SSMOverwrite: ptr(true)}}))
	if err != nil {
		t.Fatal(err)
	}
	if res.Parameters[0].Action != "overwritten" || f.srv.Region(base).Parameters[res.Parameters[0].Name] != res.Images[0].ID {
		t.Errorf("parameters %+v", res.Parameters)
	}
}

func TestTPMAndIMDSv1(t *testing.T) {
	f := newFixture(t)
	f.dataImg = ""
	o := f.options(t, Layer{Source: "test", TPM: ptr(true), IMDSSupport: ptr("optional"), BootMode: ptr("uefi"), VolumeType: ptr("gp3")})
	res, err := Publish(t.Context(), clients(f.srv), o)
	if err != nil {
		t.Fatal(err)
	}
	im := f.srv.Region(base).Images[res.Images[0].ID]
	for k, want := range map[string]string{"TpmSupport": "v2.0", "ImdsSupport": "", "BootMode": "uefi",
		"BlockDeviceMapping.1.Ebs.VolumeType": "gp3", "BlockDeviceMapping.2.DeviceName": ""} {
		if got := im.Form.Get(k); got != want {
			t.Errorf("RegisterImage %s = %q, want %q", k, got, want)
		}
	}
}

// TestEndpointRefuses checks that the endpoint refuses what EC2 refuses,
// so that the tests above can fail.
func TestEndpointRefuses(t *testing.T) {
	f := newFixture(t)
	o := f.options(t)
	o.DataImage = ""
	if _, err := Publish(t.Context(), clients(f.srv), o); err != nil {
		t.Fatal(err)
	}
	p := &publication{c: clients(f.srv), o: o, s: o.Spec}
	ec := p.c.EC2(base)
	snap := slices.Collect(maps.Keys(f.srv.Region(base).Snapshots))[0]
	for _, tt := range []struct {
		name, code string
		change     func(s *Spec)
	}{
		{"duplicate name", "", func(s *Spec) {}}, // found by name instead
		{"TPM with BIOS", "InvalidParameterValue", func(s *Spec) { s.Name, s.TPM, s.BootMode = "other-1", true, "legacy-bios" }},
		{"volume smaller than the snapshot", "InvalidBlockDeviceMapping", func(s *Spec) { s.Name, s.OSVolumeGiB = "other-2", 1 }},
		{"unknown volume type", "InvalidParameterValue", func(s *Spec) { s.Name, s.VolumeType = "other-3", "gp9" }},
		{"bad name", "InvalidAMIName.Malformed", func(s *Spec) { s.Name = "x" }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p.s = o.Spec
			tt.change(&p.s)
			_, err := p.register(t.Context(), ec, map[string]string{"os": snap})
			if got := apiCode(err); got != tt.code {
				t.Errorf("register = %v, want code %q", err, tt.code)
			}
		})
	}
}
