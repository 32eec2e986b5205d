package buildctl_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/petrel-os/petrel/sources/testkit"
	"github.com/petrel-os/petrel/tools/awstest"
)

// amiProject is the fixture project with an aws-dev variant (split plan)
// and a build of it in build/images: two sparse raw disks.
func amiProject(t *testing.T, amiTOML string) (root, osImg, dataImg string) {
	t.Helper()
	overlay := map[string]string{"variants/aws-dev/variant.toml": `supported-arches = ["x86_64"]
kits = ["core-kit"]
included-packages = ["release"]
[image-layout]
partition-plan = "split"
`}
	if amiTOML != "" {
		overlay["variants/aws-dev/ami.toml"] = amiTOML
	}
	root = testkit.Copy(t, fixtureRoot, overlay)
	dir := filepath.Join(root, "build/images/x86_64-aws-dev/0.1.0-abcd1234")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	osImg = awstest.DiskAt(t, filepath.Join(dir, "petrel-aws-dev-x86_64-0.1.0-abcd1234.img"), 2<<30,
		map[int64][]byte{1 << 20: []byte(strings.Repeat("os disk ", 4000))})
	dataImg = awstest.DiskAt(t, filepath.Join(dir, "petrel-aws-dev-x86_64-0.1.0-abcd1234-data.img"), 1<<30,
		map[int64][]byte{5 << 20: []byte(strings.Repeat("data disk ", 4000))})
	if err := os.Symlink("0.1.0-abcd1234", filepath.Join(root, "build/images/x86_64-aws-dev/latest")); err != nil {
		t.Fatal(err)
	}
	return root, osImg, dataImg
}

func setAWSEnv(t *testing.T, s *awstest.Server, region string) {
	t.Helper()
	for _, kv := range s.Env(region) {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
	t.Setenv("AWS_PROFILE", "")
}

func TestAMICommand(t *testing.T) {
	s := awstest.NewServer(t)
	setAWSEnv(t, s, "us-east-2")
	root, osImg, dataImg := amiProject(t, "volume-type = \"gp3\"\n[publish]\nssm-parameters = true\n")
	code, out, errb := buildctlRun(t, root, "--variant", "aws-dev", "ami", "--regions", "us-east-2,eu-west-1", "--grant-account", "444455556666",
		"--poll-interval", "1ms", "--data-volume-gib", "30")
	if code != 0 {
		t.Fatalf("buildctl ami = %d\nstdout: %s\nstderr: %s", code, out, errb)
	}
	reg := s.Region("us-east-2")
	if len(reg.Images) != 1 {
		t.Fatalf("%d images registered", len(reg.Images))
	}
	for _, im := range reg.Images {
		for k, want := range map[string]string{"Name": "petrel-aws-dev-x86_64-0.1.0-abcd1234", "BlockDeviceMapping.1.Ebs.VolumeType": "gp3",
			"BlockDeviceMapping.1.Ebs.VolumeSize": "2", "BlockDeviceMapping.2.Ebs.VolumeSize": "30", "ImdsSupport": "v2.0"} {
			if got := im.Form.Get(k); got != want {
				t.Errorf("RegisterImage %s = %q, want %q", k, got, want)
			}
		}
		for i, img := range []string{osImg, dataImg} {
			if err := reg.Snapshots[im.Mappings[i].SnapshotID].Equal(img); err != nil {
				t.Error(err)
			}
		}
		if !strings.Contains(out, "us-east-2  "+im.ID+"  registered, available") {
			t.Errorf("stdout lacks the base image line:\n%s", out)
		}
	}
	for _, want := range []string{"AMI petrel-aws-dev-x86_64-0.1.0-abcd1234 in account " + awstest.Account, "eu-west-1  ", "copied, available",
		"SSM us-east-2 /petrel/aws-dev/x86_64/0.1.0-abcd1234/image_id = ami-", "os disk: uploaded snap-",
		"petrel-aws-dev-x86_64-0.1.0-abcd1234-amis.json"} {
		if !strings.Contains(out, want) {
			t.Errorf("stdout lacks %q:\n%s", want, out)
		}
	}
	if !strings.Contains(errb, "os disk: 1 of 1 blocks uploaded (100%)") {
		t.Errorf("stderr lacks the progress line:\n%s", errb)
	}
	if strings.Contains(out+errb, awstest.SecretAccessKey) || s.SawSecret() {
		t.Error("the secret access key was printed or sent")
	}
}

// TestAMIBadSpec names every bad field of the variant's spec file and of
// the command line, and exits 2 before any request.
func TestAMIBadSpec(t *testing.T) {
	s := awstest.NewServer(t)
	setAWSEnv(t, s, "us-east-2")
	root, _, _ := amiProject(t, "volume-type = \"gp9\"\nboot-mode = \"bios\"\ncolour = 1\n[publish]\nlaunch-accounts = [\"me\"]\n")
	code, out, errb := buildctlRun(t, root, "--variant", "aws-dev", "ami")
	if code != 2 || !strings.Contains(errb, "variants/aws-dev/ami.toml: colour: unknown key") {
		t.Fatalf("ami with an unknown key = %d\nstdout: %s\nstderr: %s", code, out, errb)
	}
	root, _, _ = amiProject(t, "volume-type = \"gp9\"\nboot-mode = \"bios\"\n[publish]\nlaunch-accounts = [\"me\"]\n")
	code, _, errb = buildctlRun(t, root, "--variant", "aws-dev", "ami", "--imds-support", "v1", "--regions", "nowhere")
	for _, want := range []string{
		`variants/aws-dev/ami.toml: volume-type: unknown volume type "gp9"`,
		`variants/aws-dev/ami.toml: boot-mode: unknown boot mode "bios"`,
		`variants/aws-dev/ami.toml: publish.launch-accounts: [0] "me" is not a 12-digit account ID`,
		`command line: imds-support: unknown value "v1"`,
		`command line: publish.regions: [0] "nowhere" is not a region name`,
	} {
		if !strings.Contains(errb, want) {
			t.Errorf("stderr lacks %q:\n%s", want, errb)
		}
	}
	if code != 2 || s.Calls("GetCallerIdentity") != 0 {
		t.Errorf("exit %d, %d requests; want 2 and none", code, s.Calls("GetCallerIdentity"))
	}
}

// TestAMIResumeAndClean interrupts the upload with endless server errors,
// then resumes it, and cleans up another interrupted run.
func TestAMIResumeAndClean(t *testing.T) {
	s := awstest.NewServer(t)
	setAWSEnv(t, s, "us-east-2")
	root, _, _ := amiProject(t, "")
	s.Fail("CompleteSnapshot", awstest.Refuse, 1)
	code, _, errb := buildctlRun(t, root, "--variant", "aws-dev", "ami", "--poll-interval", "1ms")
	if code != 1 || !strings.Contains(errb, "ValidationException: refused by the test") || !strings.Contains(errb, "run the same command again to resume, or add --clean") {
		t.Fatalf("ami with failing completions = %d\nstderr: %s", code, errb)
	}
	s.Clear()
	code, out, errb := buildctlRun(t, root, "--variant", "aws-dev", "ami", "--poll-interval", "1ms")
	if code != 0 || !strings.Contains(out, "os disk: resumed snap-") || !strings.Contains(out, ", 0 of 1 blocks with data sent") {
		t.Fatalf("resumed ami = %d\nstdout: %s\nstderr: %s", code, out, errb)
	}
	if n := len(s.Region("us-east-2").Snapshots); n != 2 {
		t.Errorf("%d snapshots after the resumed run, want 2", n)
	}

	root, _, _ = amiProject(t, "")
	s2 := awstest.NewServer(t)
	setAWSEnv(t, s2, "us-east-2")
	s2.Fail("CompleteSnapshot", awstest.Refuse, 1)
	if code, _, errb := buildctlRun(t, root, "--variant", "aws-dev", "ami"); code != 1 {
		t.Fatalf("ami = %d, want 1\n%s", code, errb)
	}
	code, out, errb = buildctlRun(t, root, "--variant", "aws-dev", "ami", "--clean")
	if code != 0 || !strings.Contains(out, "deleted snapshots: snap-") || len(s2.Region("us-east-2").Snapshots) != 0 {
		t.Errorf("ami --clean = %d, %d snapshots left\nstdout: %s\nstderr: %s", code, len(s2.Region("us-east-2").Snapshots), out, errb)
	}
}
