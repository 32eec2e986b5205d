package buildctl

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/petrel-os/petrel/tools/ami"
	"github.com/petrel-os/petrel/tools/image"
	"github.com/petrel-os/petrel/tools/project"
	"github.com/petrel-os/petrel/tools/snapshot"
)

// amiFlags are the flags of `buildctl ami`; the spec flags form the
// command-line layer of the spec (only those given).
type amiFlags struct {
	spec, profile              string
	clean                      bool
	pollInterval               time.Duration
	uploadJobs                 int
	name, volumeType, bootMode string
	imds, ssmPrefix            string
	osGiB, dataGiB             int64
	tpm, wait, public          bool
	ssm, ssmOverwrite          bool
	regions, accounts          []string
	copyJobs                   int
}

func (a *app) amiCmd() *cobra.Command {
	var f amiFlags
	cmd := &cobra.Command{
		Use:   "ami",
		Short: "Register the variant's latest build as an EC2 AMI, then copy, share and name it as asked",
		Long: "Upload the latest build's raw OS disk (and the data disk of the split plan) as EBS snapshots\n" +
			"through the EBS direct APIs, register them as an AMI (hvm, ENA, SR-IOV, uefi-preferred, IMDSv2\n" +
			"only unless the spec says optional), and as the spec asks wait until it is available, copy it\n" +
			"to more regions, grant launch permissions and write SSM parameters. Options: defaults, then\n" +
			"the variant's " + ami.SpecFile + ", then --spec, then the flags below (docs/formats/ami-toml.md).\n\n" +
			"Credentials and region come from the AWS SDK's default chain (AWS_* variables, shared config\n" +
			"and profiles, SSO, instance roles); AWS_ENDPOINT_URL points it elsewhere. Nothing secret is\n" +
			"printed. An AMI of the same name is reused. An interrupted run resumes where it stopped when\n" +
			"run again; --clean deletes its snapshots instead. Writes <prefix>-amis.json (and\n" +
			"-ssm-parameters.json) beside the image. See docs/publishing.md.",
		Example: "  # Register the AMI of aws-dev in the region of the default profile\n" +
			"  buildctl ami --variant aws-dev\n\n" +
			"  # Publish to three regions, share with an account, write SSM parameters\n" +
			"  buildctl ami --variant aws-dev --regions us-west-2,us-east-1,eu-west-1 \\\n" +
			"      --grant-account 111122223333 --ssm --wait\n\n" +
			"  # A release spec file, TPM on, and a named profile\n" +
			"  buildctl ami --variant aws-dev --spec release-ami.toml --tpm --profile release\n\n" +
			"  # Give up an interrupted upload: delete its snapshots\n" +
			"  buildctl ami --variant aws-dev --clean",
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.ami(cmd, f)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.spec, "spec", "", "spec file laid over the variant's "+ami.SpecFile)
	fl.StringVar(&f.profile, "profile", "", "AWS shared config profile (default: AWS_PROFILE, else default)")
	fl.BoolVar(&f.clean, "clean", false, "delete the snapshots of an interrupted run and its state instead of publishing")
	fl.DurationVar(&f.pollInterval, "poll-interval", ami.DefaultPollInterval, "time between checks while waiting for snapshots and images")
	fl.IntVar(&f.uploadJobs, "upload-jobs", snapshot.DefaultJobs, "blocks uploaded in parallel")
	fl.StringVar(&f.name, "name", "", "AMI name; placeholders {os} {variant} {arch} {version} {build} (default "+ami.DefaultName+")")
	fl.StringVar(&f.volumeType, "volume-type", "", "EBS volume type of the disks: "+strings.Join(ami.VolumeTypes, ", ")+" (default gp2)")
	fl.Int64Var(&f.osGiB, "os-volume-gib", 0, "size of the OS volume (default: the variant's)")
	fl.Int64Var(&f.dataGiB, "data-volume-gib", 0, "size of the data volume (default: the variant's publish size)")
	fl.StringVar(&f.bootMode, "boot-mode", "", "legacy-bios, uefi or uefi-preferred (default uefi-preferred)")
	fl.StringVar(&f.imds, "imds-support", "", "v2.0 (require IMDSv2, default) or optional (allow IMDSv1)")
	fl.BoolVar(&f.tpm, "tpm", false, "register with NitroTPM v2.0")
	fl.StringSliceVar(&f.regions, "regions", nil, "regions, comma-separated; the first gets the snapshots, the others copies (default: the AWS region)")
	fl.BoolVar(&f.wait, "wait", false, "wait until the AMI is available in every region")
	fl.IntVar(&f.copyJobs, "copy-jobs", 0, "regions copied to at a time (default 4)")
	fl.StringSliceVar(&f.accounts, "grant-account", nil, "account ID that may launch the AMI (repeatable)")
	fl.BoolVar(&f.public, "public", false, "let every account launch the AMI")
	fl.BoolVar(&f.ssm, "ssm", false, "write the SSM parameters <prefix>/<variant>/<arch>/<version>-<build>/image_id and image_version")
	fl.StringVar(&f.ssmPrefix, "ssm-prefix", "", "prefix of the SSM parameters (default /petrel)")
	fl.BoolVar(&f.ssmOverwrite, "ssm-overwrite", false, "replace SSM parameters that hold other values")
	return cmd
}

// flagLayer is the spec layer of the flags given on the command line.
func flagLayer(cmd *cobra.Command, f amiFlags) ami.Layer {
	l := ami.Layer{Source: "command line"}
	changed := cmd.Flags().Changed
	str := func(name, v string) *string {
		if changed(name) {
			return &v
		}
		return nil
	}
	boolean := func(name string, v bool) *bool {
		if changed(name) {
			return &v
		}
		return nil
	}
	num := func(name string, v int64) *int64 {
		if changed(name) {
			return &v
		}
		return nil
	}
	l.Name, l.VolumeType, l.BootMode, l.IMDSSupport = str("name", f.name), str("volume-type", f.volumeType), str("boot-mode", f.bootMode), str("imds-support", f.imds)
	l.OSVolumeGiB, l.DataVolumeGiB, l.TPM = num("os-volume-gib", f.osGiB), num("data-volume-gib", f.dataGiB), boolean("tpm", f.tpm)
	p := &l.Publish
	if changed("regions") {
		p.Regions = f.regions
	}
	if changed("grant-account") {
		p.LaunchAccounts = f.accounts
	}
	if changed("copy-jobs") {
		p.CopyJobs = &f.copyJobs
	}
	p.Wait, p.Public, p.SSM, p.SSMOverwrite = boolean("wait", f.wait), boolean("public", f.public), boolean("ssm", f.ssm), boolean("ssm-overwrite", f.ssmOverwrite)
	p.SSMPrefix = str("ssm-prefix", f.ssmPrefix)
	return l
}

// amiJob is one variant's publication, ready to run.
type amiJob struct {
	opts    ami.Options
	clients ami.Clients
}

// prepareAMI finds the variant's latest build and resolves the spec.
func (a *app) prepareAMI(ctx context.Context, p *project.Project, cfg project.Config, v *project.Variant, profile string, layers ...ami.Layer) (*amiJob, error) {
	dir, err := image.Latest(cfg.BuildDir, v.Name, cfg.Arch)
	if err != nil {
		return nil, badInput{fmt.Errorf("%w (run buildctl make first)", err)}
	}
	osImg, dataImg, err := image.FindDiskImage(dir)
	if err != nil {
		return nil, badInput{err}
	}
	version := p.Manifest.ReleaseVersion
	build, ok := strings.CutPrefix(filepath.Base(dir), version+"-")
	if !ok {
		return nil, badInput{fmt.Errorf("the latest build %s is not of release %s (Twoliter.toml): run buildctl make", dir, version)}
	}
	names := ami.Names{OS: p.Manifest.OS.Name, Variant: v.Name, Arch: cfg.Arch, Version: version, Build: build}
	awsCfg, err := loadAWSConfig(ctx, profile)
	if err != nil {
		return nil, err
	}
	osGiB, dataGiB := publishSizes(v)
	spec := ami.Defaults(awsCfg.Region, osGiB, dataGiB)
	variantSpec, err := ami.LoadLayer(filepath.Join(v.Dir, ami.SpecFile), relTo(p.Root, filepath.Join(v.Dir, ami.SpecFile)), true)
	if err != nil {
		return nil, badInput{err}
	}
	spec.Apply(variantSpec)
	for _, l := range layers {
		spec.Apply(l)
	}
	osImgGiB, dataImgGiB := imageGiB(osImg), int64(0)
	if dataImg != "" {
		dataImgGiB = imageGiB(dataImg)
	}
	resolved, err := spec.Resolve(names, osImgGiB, dataImgGiB)
	if err != nil {
		return nil, badInput{err}
	}
	prefix := strings.TrimSuffix(filepath.Base(osImg), ".img")
	return &amiJob{
		opts: ami.Options{Spec: resolved, Names: names, OSImage: osImg, DataImage: dataImg,
			StateDir: filepath.Join(cfg.BuildDir, "state", "ami"), OutDir: dir, OutPrefix: prefix, Logger: a.logger},
		clients: ami.NewClients(awsCfg, resolved.Regions[0], 0),
	}, nil
}

// loadAWSConfig loads the SDK's default configuration, with a named
// shared-config profile if given.
func loadAWSConfig(ctx context.Context, profile string) (aws.Config, error) {
	var opts []func(*config.LoadOptions) error
	if profile != "" {
		opts = append(opts, config.WithSharedConfigProfile(profile))
	}
	c, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return c, badInput{fmt.Errorf("load AWS configuration: %w", err)}
	}
	return c, nil
}

func imageGiB(path string) int64 {
	st, err := os.Stat(path)
	if err != nil {
		return 1
	}
	return snapshot.VolumeGiB(st.Size())
}

func relTo(root, p string) string {
	if r, err := filepath.Rel(root, p); err == nil {
		return r
	}
	return p
}

func (a *app) ami(cmd *cobra.Command, f amiFlags) error {
	ctx := cmd.Context()
	p, cfg, err := a.loadProject(ctx)
	if err != nil {
		return err
	}
	v, err := p.Variant(cfg.Variant)
	if err != nil {
		return err
	}
	layers := []ami.Layer{}
	if f.spec != "" {
		l, err := ami.LoadLayer(f.spec, f.spec, false)
		if err != nil {
			return badInput{err}
		}
		layers = append(layers, l)
	}
	layers = append(layers, flagLayer(cmd, f))
	job, err := a.prepareAMI(ctx, p, cfg, v, f.profile, layers...)
	if err != nil {
		return err
	}
	if f.clean {
		deleted, kept, err := ami.Clean(ctx, job.clients, job.opts.StateDir, job.opts.Spec.Name, job.opts.Spec.Regions[0])
		if err != nil {
			return amiErr(err)
		}
		fmt.Fprintf(a.stdout, "deleted snapshots: %s\n", listOrNone(deleted))
		if len(kept) > 0 {
			fmt.Fprintf(a.stdout, "kept (a registered AMI uses them): %s\n", strings.Join(kept, ", "))
		}
		return nil
	}
	job.opts.PollInterval, job.opts.UploadJobs = f.pollInterval, f.uploadJobs
	res, err := a.runAMI(ctx, job)
	if err != nil {
		return err
	}
	a.printAMI(res)
	return nil
}

// runAMI publishes with progress on stderr.
func (a *app) runAMI(ctx context.Context, job *amiJob) (*ami.Result, error) {
	tty := false
	if fh, ok := a.stderr.(*os.File); ok && term.IsTerminal(int(fh.Fd())) {
		tty = true
	}
	job.opts.Progress = ami.NewProgressPrinter(a.stderr, tty, 10*time.Second).Update
	res, err := ami.Publish(ctx, job.clients, job.opts)
	if err != nil {
		if res != nil && len(res.Images) == 0 {
			err = fmt.Errorf("%w\nthe upload state is kept in %s: run the same command again to resume, or add --clean to delete its snapshots",
				err, ami.StatePath(job.opts.StateDir, job.opts.Spec.Name))
		}
		return res, amiErr(err)
	}
	return res, nil
}

func amiErr(err error) error {
	if errors.Is(err, ami.ErrSpec) {
		return badInput{err}
	}
	return err
}

func listOrNone(l []string) string {
	if len(l) == 0 {
		return "none"
	}
	return strings.Join(l, ", ")
}

// printAMI prints what was published.
func (a *app) printAMI(res *ami.Result) {
	fmt.Fprintf(a.stdout, "AMI %s in account %s\n", res.Name, res.Account)
	tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "REGION\tIMAGE\tSTATE\tPUBLIC\tLAUNCH PERMISSIONS")
	for _, img := range res.Images {
		state := "registered"
		switch {
		case img.Reused:
			state = "existed"
		case img.Region != res.Images[0].Region:
			state = "copied"
		}
		if img.Available {
			state += ", available"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%t\t%s\n", img.Region, img.ID, state, img.Public, listOrNone(img.LaunchPermissions))
	}
	tw.Flush()
	for _, u := range res.Uploads {
		verb := "uploaded"
		if u.Resumed {
			verb = "resumed"
		}
		fmt.Fprintf(a.stdout, "%s disk: %s %s, %d of %d blocks with data sent in %.1fs (%.0f blocks/s, hashing %.1fs)\n",
			u.Disk, verb, u.Snapshot, u.Uploaded, u.Changed, u.Elapsed.Seconds(), float64(u.Uploaded)/max(u.Elapsed.Seconds(), 1e-3), u.Hashing.Seconds())
	}
	for _, prm := range res.Parameters {
		fmt.Fprintf(a.stdout, "SSM %s %s = %s (%s)\n", prm.Region, prm.Name, prm.Value, prm.Action)
	}
	for _, f := range res.Files {
		fmt.Fprintln(a.stdout, f)
	}
}
