package snapshot_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"maps"
	"math/rand/v2"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ebs"
	"github.com/aws/aws-sdk-go-v2/service/ebs/types"
	"github.com/aws/smithy-go"

	"github.com/petrel-os/petrel/tools/awstest"
	"github.com/petrel-os/petrel/tools/snapshot"
)

const region = "us-west-2"

func config(s *awstest.Server) aws.Config {
	return aws.Config{
		Region:       region,
		Credentials:  credentials.NewStaticCredentialsProvider(awstest.AccessKeyID, awstest.SecretAccessKey, ""),
		BaseEndpoint: aws.String(s.URL),
	}
}

func client(s *awstest.Server) *ebs.Client { return snapshot.NewClient(config(s), time.Millisecond) }

// image writes a sparse test image of size bytes: data in the first
// block, a block of written zeros (read, not a hole, not uploaded), data
// across a block boundary, random blocks, and data in a last partial
// block, which must arrive zero-padded.
func image(t testing.TB, size int64, randomBlocks int) string {
	t.Helper()
	data := map[int64][]byte{
		0:                         []byte("GPT header here"),
		3 * snapshot.BlockSize:    make([]byte, snapshot.BlockSize),
		10*snapshot.BlockSize - 5: []byte("across the boundary"),
		size - 100:                []byte("the end of the image"),
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for range randomBlocks {
		buf := make([]byte, snapshot.BlockSize)
		for i := range buf {
			buf[i] = byte(rng.Uint32())
		}
		data[rng.Int64N(size/snapshot.BlockSize-1)*snapshot.BlockSize] = buf
	}
	return awstest.Disk(t, "disk.img", size, data)
}

func onlySnapshot(t *testing.T, s *awstest.Server) *awstest.Snapshot {
	t.Helper()
	snaps := s.Region(region).Snapshots
	if len(snaps) != 1 {
		t.Fatalf("the endpoint holds %d snapshots, want 1", len(snaps))
	}
	for _, sn := range snaps {
		return sn
	}
	return nil
}

func TestUpload(t *testing.T) {
	s := awstest.NewServer(t)
	size := int64(1<<30 + 3*snapshot.BlockSize + 1000) // a partial last block; 2 GiB volume
	img := image(t, size, 40)
	var last snapshot.Progress
	res, err := snapshot.Upload(t.Context(), client(s), img, snapshot.Options{Description: "disk.img", Tags: map[string]string{"b": "2", "a": "1"},
		Progress: func(p snapshot.Progress) { last = p }})
	if err != nil {
		t.Fatal(err)
	}
	sn := onlySnapshot(t, s)
	if sn.ID != res.SnapshotID || sn.VolumeSize != 2 || res.VolumeGiB != 2 {
		t.Errorf("snapshot %s of %d GiB, result %+v", sn.ID, sn.VolumeSize, res)
	}
	if sn.Description != "disk.img" || sn.Tags["a"] != "1" || sn.Tags["b"] != "2" {
		t.Errorf("description %q, tags %v", sn.Description, sn.Tags)
	}
	if sn.State != "pending" {
		t.Errorf("snapshot state %q after Upload, want pending (completed, processing)", sn.State)
	}
	if res.Changed != len(sn.Digests) || res.Uploaded != res.Changed || sn.Puts != res.Changed {
		t.Errorf("changed %d, uploaded %d; the endpoint has %d blocks from %d puts", res.Changed, res.Uploaded, len(sn.Digests), sn.Puts)
	}
	if _, ok := sn.Digests[3]; ok {
		t.Error("the all-zero block 3 was uploaded")
	}
	if last.Done != res.Changed || last.Total != res.Changed {
		t.Errorf("last progress %+v, want %d of %d", last, res.Changed, res.Changed)
	}
	if res.Checksum != sn.Aggregate() {
		t.Errorf("checksum %s, endpoint's aggregate %s", res.Checksum, sn.Aggregate())
	}
	if err := sn.Equal(img); err != nil {
		t.Errorf("the blocks received do not rebuild the image: %v", err)
	}
	if s.SawSecret() || len(s.BadAuth()) > 0 {
		t.Errorf("secret sent: %v; badly signed requests: %v", s.SawSecret(), s.BadAuth())
	}
}

// TestUploadRetries fails requests of every kind on the way and expects
// the same snapshot, byte for byte, and exactly one snapshot although the
// answer of StartSnapshot was lost once.
func TestUploadRetries(t *testing.T) {
	s := awstest.NewServer(t)
	img := image(t, 300*snapshot.BlockSize, 60)
	s.Fail("StartSnapshot", awstest.DropAnswer, 1)
	s.Fail("StartSnapshot", awstest.Throttle, 2)
	s.FailEvery("PutSnapshotBlock", awstest.Throttle, 5)
	s.FailEvery("PutSnapshotBlock", awstest.ServerError, 7)
	s.FailEvery("PutSnapshotBlock", awstest.Drop, 11)
	s.FailEvery("PutSnapshotBlock", awstest.DropAnswer, 13)
	s.Fail("CompleteSnapshot", awstest.ServerError, 1)
	s.Fail("CompleteSnapshot", awstest.DropAnswer, 1)
	res, err := snapshot.Upload(t.Context(), client(s), img, snapshot.Options{Jobs: 8, ClientToken: "token-1"})
	if err != nil {
		t.Fatal(err)
	}
	for _, op := range []string{"StartSnapshot", "PutSnapshotBlock", "CompleteSnapshot"} {
		if s.Failed(op) == 0 {
			t.Errorf("no %s request was failed: the test tests nothing", op)
		}
	}
	t.Logf("failed on purpose: %d starts, %d puts, %d completions", s.Failed("StartSnapshot"), s.Failed("PutSnapshotBlock"), s.Failed("CompleteSnapshot"))
	sn := onlySnapshot(t, s)
	if sn.ID != res.SnapshotID || sn.State != "pending" {
		t.Errorf("snapshot %s (%s), result %s", sn.ID, sn.State, res.SnapshotID)
	}
	if err := sn.Equal(img); err != nil {
		t.Error(err)
	}
}

// TestUploadGivesUp checks that an error AWS does not retry is returned
// with its cause and that throttling beyond the attempts ends the upload.
func TestUploadGivesUp(t *testing.T) {
	s := awstest.NewServer(t)
	img := image(t, 20*snapshot.BlockSize, 0)
	s.Fail("PutSnapshotBlock", awstest.Throttle, 1000)
	_, err := snapshot.Upload(t.Context(), client(s), img, snapshot.Options{Jobs: 1})
	var ae smithy.APIError
	if !errors.As(err, &ae) || ae.ErrorCode() != "RequestThrottledException" || !strings.Contains(err.Error(), "put block 0 of snapshot snap-") {
		t.Fatalf("Upload under endless throttling = %v, want RequestThrottledException of block 0", err)
	}
	if got := s.Calls("PutSnapshotBlock"); got != snapshot.DefaultMaxAttempts {
		t.Errorf("%d attempts of block 0, want %d", got, snapshot.DefaultMaxAttempts)
	}
}

// TestResume interrupts an upload after some blocks, then resumes it with
// the blocks recorded as done: only the others are sent again.
func TestResume(t *testing.T) {
	s := awstest.NewServer(t)
	img := image(t, 400*snapshot.BlockSize, 120)
	ctx, cancel := context.WithCancel(t.Context())
	var puts atomic.Int64
	s.OnRequest(func(op string) {
		if op == "PutSnapshotBlock" && puts.Add(1) == 50 {
			cancel()
		}
	})
	var mu sync.Mutex
	done := map[int32]bool{}
	var started string
	o := snapshot.Options{Jobs: 4, ClientToken: "resume-token",
		Started: func(id string) error { started = id; return nil },
		Done:    func(i int32) { mu.Lock(); done[i] = true; mu.Unlock() }}
	_, err := snapshot.Upload(ctx, client(s), img, o)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("interrupted Upload = %v, want context.Canceled", err)
	}
	s.OnRequest(nil)
	s.Quiesce()
	sn := onlySnapshot(t, s)
	if sn.State != "uploading" || started != sn.ID || len(done) == 0 {
		t.Fatalf("after the interruption: snapshot %s is %s, started %q, %d blocks done", sn.ID, sn.State, started, len(done))
	}
	first := sn.Puts
	mu.Lock()
	done1 := maps.Clone(done)
	mu.Unlock()
	o.SnapshotID = started
	o.Skip = func(i int32) bool { return done1[i] }
	res, err := snapshot.Upload(t.Context(), client(s), img, o)
	if err != nil {
		t.Fatal(err)
	}
	if res.Uploaded != res.Changed-len(done1) {
		t.Errorf("resumed upload sent %d blocks, want %d changed - %d done", res.Uploaded, res.Changed, len(done1))
	}
	if sn.Puts != first+res.Uploaded {
		t.Errorf("endpoint counted %d puts, want %d + %d", sn.Puts, first, res.Uploaded)
	}
	if err := sn.Equal(img); err != nil {
		t.Error(err)
	}
}

// TestEndpointChecks sends what AWS refuses and expects the endpoint to
// refuse it with AWS's reason, so that the tests above can fail.
func TestEndpointChecks(t *testing.T) {
	s := awstest.NewServer(t)
	c := client(s)
	ctx := t.Context()
	out, err := c.StartSnapshot(ctx, &ebs.StartSnapshotInput{VolumeSize: aws.Int64(1)})
	if err != nil {
		t.Fatal(err)
	}
	id := out.SnapshotId
	block := bytes.Repeat([]byte{7}, snapshot.BlockSize)
	sum := sha256.Sum256(block)
	good := base64.StdEncoding.EncodeToString(sum[:])
	put := func(index int32, data []byte, checksum string) error {
		_, err := c.PutSnapshotBlock(ctx, &ebs.PutSnapshotBlockInput{SnapshotId: id, BlockIndex: aws.Int32(index), BlockData: bytes.NewReader(data),
			DataLength: aws.Int32(snapshot.BlockSize), Checksum: aws.String(checksum), ChecksumAlgorithm: types.ChecksumAlgorithmChecksumAlgorithmSha256})
		return err
	}
	complete := func(count int32, checksum string) error {
		_, err := c.CompleteSnapshot(ctx, &ebs.CompleteSnapshotInput{SnapshotId: id, ChangedBlocksCount: aws.Int32(count), Checksum: aws.String(checksum),
			ChecksumAlgorithm: types.ChecksumAlgorithmChecksumAlgorithmSha256, ChecksumAggregationMethod: types.ChecksumAggregationMethodChecksumAggregationLinear})
		return err
	}
	linear := sha256.Sum256(sum[:])
	for _, tt := range []struct {
		name, want string
		err        func() error
	}{
		{"wrong block checksum", "checksum", func() error { return put(0, block, base64.StdEncoding.EncodeToString(make([]byte, 32))) }},
		{"short block", "bytes of data", func() error { return put(0, block[:1000], good) }},
		{"index outside the volume", "outside the 1 GiB volume", func() error { return put(2048, block, good) }},
		{"good block", "", func() error { return put(5, block, good) }},
		{"wrong changed-block count", "ChangedBlocksCount 2", func() error { return complete(2, base64.StdEncoding.EncodeToString(linear[:])) }},
		{"wrong aggregate checksum", "aggregate checksum", func() error { return complete(1, good) }},
		{"right completion", "", func() error { return complete(1, base64.StdEncoding.EncodeToString(linear[:])) }},
		{"block after completion", "not accepting blocks", func() error { return put(6, block, good) }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.err()
			if tt.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			var ae smithy.APIError
			if !errors.As(err, &ae) || ae.ErrorCode() != "ValidationException" || !strings.Contains(ae.ErrorMessage(), tt.want) {
				t.Errorf("got %v, want ValidationException about %q", err, tt.want)
			}
		})
	}
}

func TestVolumeGiB(t *testing.T) {
	for _, tt := range []struct{ size, want int64 }{{1, 1}, {1 << 30, 1}, {1<<30 + 1, 2}, {2 << 30, 2}, {0, 1}} {
		if got := snapshot.VolumeGiB(tt.size); got != tt.want {
			t.Errorf("VolumeGiB(%d) = %d, want %d", tt.size, got, tt.want)
		}
	}
}

// BenchmarkUpload uploads an image to the in-process endpoint:
// $PETREL_BENCH_IMAGE (a raw disk image such as aws-dev's) if set, else a
// 2 GiB image holding 150 MiB of random blocks, about what the aws-dev OS
// disk holds. It reports blocks/s, MB/s of data sent, and the share of
// the process's CPU time (client and endpoint together) spent hashing
// blocks in the client.
func BenchmarkUpload(b *testing.B) {
	img := os.Getenv("PETREL_BENCH_IMAGE")
	if img == "" {
		img = image(b, 2<<30, 300)
	}
	s := awstest.NewServer(b)
	c := client(s)
	var blocks int
	var elapsed, hashing, cpu time.Duration
	for b.Loop() {
		before := cpuTime(b)
		res, err := snapshot.Upload(context.Background(), c, img, snapshot.Options{})
		if err != nil {
			b.Fatal(err)
		}
		cpu += cpuTime(b) - before
		blocks += res.Uploaded
		elapsed += res.Elapsed
		hashing += res.Hashing
	}
	b.ReportMetric(float64(blocks)/elapsed.Seconds(), "blocks/s")
	b.ReportMetric(float64(blocks)*snapshot.BlockSize/1e6/elapsed.Seconds(), "MB/s")
	b.ReportMetric(100*hashing.Seconds()/cpu.Seconds(), "hash-%cpu")
	b.ReportMetric(cpu.Seconds()/elapsed.Seconds(), "cores")
}

func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
