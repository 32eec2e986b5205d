// Package snapshot uploads a disk image as an EBS snapshot through the EBS
// direct APIs, the way awslabs/coldsnap does, so that registering an AMI
// needs no S3 bucket, no import role and no helper instance: StartSnapshot
// with the volume size in whole GiB, PutSnapshotBlock of every 512 KiB
// block that is not all zero (the last one zero-padded), in parallel, each
// with its base64 SHA-256, and CompleteSnapshot with the changed-block
// count and the LINEAR aggregate checksum (SHA-256 of the blocks' raw
// digests concatenated in index order).
//
// Upload does not keep state itself: a caller that wants to resume an
// interrupted upload records the snapshot ID and the blocks acknowledged
// (Options.Done) and passes them back (Options.SnapshotID, Options.Skip).
// Skipped blocks are still read and hashed, since the aggregate checksum
// covers every block.
package snapshot

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"math/rand/v2"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/service/ebs"
	"github.com/aws/aws-sdk-go-v2/service/ebs/types"
	"golang.org/x/sync/errgroup"

	"github.com/petrel-os/petrel/tools/sparse"
)

// BlockSize is the only block size the EBS direct APIs accept.
const BlockSize = 512 << 10

// Defaults of Options and NewClient, as coldsnap's.
const (
	DefaultJobs        = 64
	DefaultMaxAttempts = 12
	DefaultBackoff     = 250 * time.Millisecond
	// DefaultTimeout is StartSnapshot's timeout: a snapshot not completed
	// this long after it started turns to "error". An hour leaves room to
	// resume an interrupted upload.
	DefaultTimeout = 60 * time.Minute
)

// API is the part of the EBS client that Upload uses; *ebs.Client has it.
type API interface {
	StartSnapshot(context.Context, *ebs.StartSnapshotInput, ...func(*ebs.Options)) (*ebs.StartSnapshotOutput, error)
	PutSnapshotBlock(context.Context, *ebs.PutSnapshotBlockInput, ...func(*ebs.Options)) (*ebs.PutSnapshotBlockOutput, error)
	CompleteSnapshot(context.Context, *ebs.CompleteSnapshotInput, ...func(*ebs.Options)) (*ebs.CompleteSnapshotOutput, error)
}

// Retryer returns the SDK retryer for the publishing clients: maxAttempts
// attempts of each request (throttling, 5xx and connection errors are
// retried), linear backoff of backoff per attempt with up to 50 % jitter,
// and no client-side retry quota, so that many blocks failing at once
// under throttling wait instead of giving up.
func Retryer(maxAttempts int, backoff time.Duration) aws.Retryer {
	return retry.NewStandard(func(o *retry.StandardOptions) {
		o.MaxAttempts = maxAttempts
		o.RateLimiter = ratelimit.None
		o.Backoff = retry.BackoffDelayerFunc(func(attempt int, _ error) (time.Duration, error) {
			d := time.Duration(attempt) * backoff
			return d + time.Duration(rand.Int64N(int64(d/2)+1)), nil
		})
	})
}

// NewClient returns an EBS client for cfg with Retryer(DefaultMaxAttempts,
// backoff); backoff 0 means DefaultBackoff.
func NewClient(cfg aws.Config, backoff time.Duration) *ebs.Client {
	if backoff == 0 {
		backoff = DefaultBackoff
	}
	return ebs.NewFromConfig(cfg, func(o *ebs.Options) { o.Retryer = Retryer(DefaultMaxAttempts, backoff) })
}

// Options tune one Upload.
type Options struct {
	// Description and Tags are given to StartSnapshot.
	Description string
	Tags        map[string]string
	// ClientToken makes StartSnapshot idempotent: a retried or resumed
	// start with the same token returns the same snapshot.
	ClientToken string
	// Jobs is the number of blocks in flight (default DefaultJobs).
	Jobs int
	// Timeout is StartSnapshot's timeout (default DefaultTimeout).
	Timeout time.Duration
	// SnapshotID continues a snapshot started earlier instead of starting
	// one; Skip reports the blocks it already holds.
	SnapshotID string
	Skip       func(index int32) bool
	// Started is called with the snapshot ID before the first block.
	Started func(id string) error
	// Done is called after each block is acknowledged (from several
	// goroutines at once).
	Done func(index int32)
	// Progress is called after each block that is uploaded or skipped.
	Progress func(Progress)
	Logger   *slog.Logger
}

// Progress is the state of an upload.
type Progress struct {
	// Done blocks of Total non-zero blocks are acknowledged or skipped.
	Done, Total int
}

// Result describes a finished upload.
type Result struct {
	SnapshotID string
	// VolumeGiB is the snapshot's volume size.
	VolumeGiB int64
	// Blocks is the number of blocks of the volume; Changed of them hold
	// data; Uploaded of those were sent in this run.
	Blocks, Changed, Uploaded int
	// Checksum is the LINEAR aggregate checksum (base64).
	Checksum string
	// Hashing and Reading are the time the workers spent hashing blocks
	// and reading them, summed over workers; Elapsed is wall time.
	Hashing, Reading, Elapsed time.Duration
}

// VolumeGiB returns the whole GiB a file of size bytes needs.
func VolumeGiB(size int64) int64 { return max(1, (size+(1<<30)-1)>>30) }

// Upload uploads the file at path as a snapshot and completes it.
func Upload(ctx context.Context, api API, path string, o Options) (*Result, error) {
	start := time.Now()
	if o.Jobs <= 0 {
		o.Jobs = DefaultJobs
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open image: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("stat image: %w", err)
	}
	res := &Result{VolumeGiB: VolumeGiB(st.Size()), Blocks: int((st.Size() + BlockSize - 1) / BlockSize)}
	candidates, err := sparse.DataBlocks(f, st.Size(), BlockSize)
	if err != nil {
		return nil, err
	}

	id := o.SnapshotID
	if id == "" {
		in := &ebs.StartSnapshotInput{VolumeSize: aws.Int64(res.VolumeGiB), Timeout: aws.Int32(int32(o.Timeout / time.Minute)),
			Description: nonEmpty(o.Description), ClientToken: nonEmpty(o.ClientToken)}
		for _, k := range slices.Sorted(maps.Keys(o.Tags)) {
			in.Tags = append(in.Tags, types.Tag{Key: aws.String(k), Value: aws.String(o.Tags[k])})
		}
		out, err := api.StartSnapshot(ctx, in)
		if err != nil {
			return nil, fmt.Errorf("start snapshot of %s: %w", path, err)
		}
		id = aws.ToString(out.SnapshotId)
		o.Logger.Info("snapshot started", "snapshot", id, "volume_gib", res.VolumeGiB, "image", path)
	}
	res.SnapshotID = id
	if o.Started != nil {
		if err := o.Started(id); err != nil {
			return res, err
		}
	}

	u := &uploader{api: api, f: f, size: st.Size(), id: id, o: o, digests: make([][sha256.Size]byte, res.Blocks), zero: make([]bool, res.Blocks)}
	if err := u.run(ctx, candidates); err != nil {
		return res, err
	}
	res.Hashing, res.Reading = time.Duration(u.hashing.Load()), time.Duration(u.reading.Load())
	res.Uploaded = int(u.uploaded.Load())
	h := sha256.New()
	for i, d := range u.digests {
		if !u.zero[i] {
			h.Write(d[:])
			res.Changed++
		}
	}
	in := &ebs.CompleteSnapshotInput{SnapshotId: aws.String(id), ChangedBlocksCount: aws.Int32(int32(res.Changed))}
	if res.Changed > 0 {
		res.Checksum = base64.StdEncoding.EncodeToString(h.Sum(nil))
		in.Checksum = aws.String(res.Checksum)
		in.ChecksumAlgorithm = types.ChecksumAlgorithmChecksumAlgorithmSha256
		in.ChecksumAggregationMethod = types.ChecksumAggregationMethodChecksumAggregationLinear
	}
	if _, err := api.CompleteSnapshot(ctx, in); err != nil {
		return res, fmt.Errorf("complete snapshot %s: %w", id, err)
	}
	res.Elapsed = time.Since(start)
	o.Logger.Info("snapshot completed", "snapshot", id, "changed_blocks", res.Changed, "uploaded", res.Uploaded, "seconds", fmt.Sprintf("%.1f", res.Elapsed.Seconds()))
	return res, nil
}

func nonEmpty(s string) *string {
	if s == "" {
		return nil
	}
	return aws.String(s)
}

// uploader is the state of one Upload's blocks.
type uploader struct {
	api     API
	f       *os.File
	size    int64
	id      string
	o       Options
	digests [][sha256.Size]byte
	zero    []bool // all-zero blocks, not uploaded

	done, total      atomic.Int64
	uploaded         atomic.Int64
	hashing, reading atomic.Int64
	progressMu       sync.Mutex
}

// run reads, hashes and uploads the candidate blocks; the other blocks
// are holes of the file and so all zero.
func (u *uploader) run(ctx context.Context, candidates []bool) error {
	for i := range u.zero {
		u.zero[i] = !candidates[i]
		if candidates[i] {
			u.total.Add(1)
		}
	}
	g, ctx := errgroup.WithContext(ctx)
	next := make(chan int32)
	g.Go(func() error {
		defer close(next)
		for i, c := range candidates {
			if !c {
				continue
			}
			select {
			case next <- int32(i):
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		return nil
	})
	for range u.o.Jobs {
		g.Go(func() error {
			buf := make([]byte, BlockSize)
			for i := range next {
				if err := u.block(ctx, i, buf); err != nil {
					return err
				}
			}
			return nil
		})
	}
	return g.Wait()
}

// block handles block i: read, skip if zero, hash, upload unless Skip.
func (u *uploader) block(ctx context.Context, i int32, buf []byte) error {
	t := time.Now()
	clear(buf)
	if _, err := u.f.ReadAt(buf, int64(i)*BlockSize); err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("read block %d of the image: %w", i, err)
	}
	u.reading.Add(int64(time.Since(t)))
	if allZero(buf) {
		u.zero[i] = true
		u.total.Add(-1)
		return nil
	}
	t = time.Now()
	u.digests[i] = sha256.Sum256(buf)
	u.hashing.Add(int64(time.Since(t)))
	if u.o.Skip == nil || !u.o.Skip(i) {
		sum := base64.StdEncoding.EncodeToString(u.digests[i][:])
		pct := int32(100 * u.done.Load() / max(1, u.total.Load()))
		_, err := u.api.PutSnapshotBlock(ctx, &ebs.PutSnapshotBlockInput{
			SnapshotId: aws.String(u.id), BlockIndex: aws.Int32(i), BlockData: bytes.NewReader(buf),
			DataLength: aws.Int32(BlockSize), Checksum: aws.String(sum), ChecksumAlgorithm: types.ChecksumAlgorithmChecksumAlgorithmSha256,
			Progress: aws.Int32(min(pct, 100)),
		})
		if err != nil {
			return fmt.Errorf("put block %d of snapshot %s: %w", i, u.id, err)
		}
		u.uploaded.Add(1)
		if u.o.Done != nil {
			u.o.Done(i)
		}
	}
	done := u.done.Add(1)
	if u.o.Progress != nil {
		u.progressMu.Lock()
		u.o.Progress(Progress{Done: int(done), Total: int(u.total.Load())})
		u.progressMu.Unlock()
	}
	return nil
}

func allZero(b []byte) bool {
	for len(b) >= 8 {
		if b[0]|b[1]|b[2]|b[3]|b[4]|b[5]|b[6]|b[7] != 0 {
			return false
		}
		b = b[8:]
	}
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}
