package ami

import (
	"context"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/petrel-os/petrel/tools/snapshot"
)

// EC2 is the part of the EC2 client that Publish uses.
type EC2 interface {
	DescribeSnapshots(context.Context, *ec2.DescribeSnapshotsInput, ...func(*ec2.Options)) (*ec2.DescribeSnapshotsOutput, error)
	DeleteSnapshot(context.Context, *ec2.DeleteSnapshotInput, ...func(*ec2.Options)) (*ec2.DeleteSnapshotOutput, error)
	ModifySnapshotAttribute(context.Context, *ec2.ModifySnapshotAttributeInput, ...func(*ec2.Options)) (*ec2.ModifySnapshotAttributeOutput, error)
	RegisterImage(context.Context, *ec2.RegisterImageInput, ...func(*ec2.Options)) (*ec2.RegisterImageOutput, error)
	DescribeImages(context.Context, *ec2.DescribeImagesInput, ...func(*ec2.Options)) (*ec2.DescribeImagesOutput, error)
	CopyImage(context.Context, *ec2.CopyImageInput, ...func(*ec2.Options)) (*ec2.CopyImageOutput, error)
	ModifyImageAttribute(context.Context, *ec2.ModifyImageAttributeInput, ...func(*ec2.Options)) (*ec2.ModifyImageAttributeOutput, error)
}

// SSM is the part of the SSM client that Publish uses.
type SSM interface {
	GetParameters(context.Context, *ssm.GetParametersInput, ...func(*ssm.Options)) (*ssm.GetParametersOutput, error)
	PutParameter(context.Context, *ssm.PutParameterInput, ...func(*ssm.Options)) (*ssm.PutParameterOutput, error)
}

// STS is the part of the STS client that Publish uses.
type STS interface {
	GetCallerIdentity(context.Context, *sts.GetCallerIdentityInput, ...func(*sts.Options)) (*sts.GetCallerIdentityOutput, error)
}

// Clients are the AWS clients of one publication: EBS in the base region,
// EC2 and SSM per region.
type Clients struct {
	EBS snapshot.API
	STS STS
	EC2 func(region string) EC2
	SSM func(region string) SSM
}

// NewClients returns the SDK clients for cfg (from config.LoadDefaultConfig:
// the standard credential chain, AWS_ENDPOINT_URL and the rest) for the
// base region, each with snapshot.Retryer; backoff 0 means
// snapshot.DefaultBackoff.
func NewClients(cfg aws.Config, base string, backoff time.Duration) Clients {
	if backoff == 0 {
		backoff = snapshot.DefaultBackoff
	}
	retryer := func() aws.Retryer { return snapshot.Retryer(snapshot.DefaultMaxAttempts, backoff) }
	cfg.Region = base
	return Clients{
		EBS: snapshot.NewClient(cfg, backoff),
		STS: sts.NewFromConfig(cfg, func(o *sts.Options) { o.Retryer = retryer() }),
		EC2: perRegion(func(region string) EC2 {
			return ec2.NewFromConfig(cfg, func(o *ec2.Options) { o.Region = region; o.Retryer = retryer() })
		}),
		SSM: perRegion(func(region string) SSM {
			return ssm.NewFromConfig(cfg, func(o *ssm.Options) { o.Region = region; o.Retryer = retryer() })
		}),
	}
}

// perRegion returns newClient with one client per region, made on first
// use.
func perRegion[C any](newClient func(region string) C) func(region string) C {
	var mu sync.Mutex
	clients := map[string]C{}
	return func(region string) C {
		mu.Lock()
		defer mu.Unlock()
		c, ok := clients[region]
		if !ok {
			c = newClient(region)
			clients[region] = c
		}
		return c
	}
}
