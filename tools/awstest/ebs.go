package awstest

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/petrel-os/petrel/tools/sparse"
)

// BlockSize is the EBS direct APIs' block size.
const BlockSize = 512 << 10

// Snapshot is one EBS snapshot of the fake.
type Snapshot struct {
	ID          string
	VolumeSize  int64 // GiB
	Description string
	Tags        map[string]string
	// State is "uploading" (started, not completed), "pending"
	// (completed, being processed), "completed" or "error".
	State string
	// Digests are the SHA-256 digests of the blocks received, by index.
	Digests map[int32][sha256.Size]byte
	// Puts counts PutSnapshotBlock requests accepted, rewrites included.
	Puts int
	// Users may create volumes from the snapshot.
	Users []string
	// polls counts DescribeSnapshots answers while pending.
	polls int
	file  *os.File
}

func (sn *Snapshot) close() {
	if sn.file != nil {
		sn.file.Close()
		os.Remove(sn.file.Name())
		sn.file = nil
	}
}

// Region is the state of one region.
type Region struct {
	Name       string
	Snapshots  map[string]*Snapshot
	Images     map[string]*Image
	Parameters map[string]string
	// tokens map client tokens to the resources they created.
	tokens map[string]string
}

func parse(r *http.Request) (*request, error) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 2*BlockSize))
	if err != nil {
		return nil, fmt.Errorf("read body: %w", err)
	}
	req := &request{r: r, body: body}
	p := r.URL.Path
	switch {
	case strings.HasPrefix(p, "/snapshots"):
		req.service = "ebs"
		parts := strings.Split(strings.Trim(p, "/"), "/")
		switch {
		case r.Method == http.MethodPost && len(parts) == 1:
			req.op = "StartSnapshot"
		case r.Method == http.MethodPut && len(parts) == 4 && parts[2] == "blocks":
			req.op = "PutSnapshotBlock"
		case r.Method == http.MethodPost && len(parts) == 3 && parts[1] == "completion":
			req.op = "CompleteSnapshot"
		default:
			return nil, fmt.Errorf("unknown EBS request %s %s", r.Method, p)
		}
	case r.Header.Get("X-Amz-Target") != "":
		req.service = "ssm"
		t := r.Header.Get("X-Amz-Target")
		op, ok := strings.CutPrefix(t, "AmazonSSM.")
		if !ok {
			return nil, fmt.Errorf("unknown target %q", t)
		}
		req.op = op
	default:
		form, err := url.ParseQuery(string(body))
		if err != nil {
			return nil, fmt.Errorf("parse query body: %w", err)
		}
		r.Form = form
		req.op = form.Get("Action")
		switch form.Get("Version") {
		case "2016-11-15":
			req.service = "ec2"
		case "2011-06-15":
			req.service = "sts"
		default:
			return nil, fmt.Errorf("unknown query API version %q (Action %q)", form.Get("Version"), req.op)
		}
	}
	return req, nil
}

func (s *Server) serveEBS(w http.ResponseWriter, req *request) {
	var (
		out any
		err *apiError
	)
	if req.op == "PutSnapshotBlock" {
		// Hashed outside the lock: blocks arrive in parallel.
		sum := sha256.Sum256(req.body)
		s.mu.Lock()
		err = s.putBlock(s.region(req.region), req, sum, w)
		s.mu.Unlock()
	} else {
		s.mu.Lock()
		reg := s.region(req.region)
		if req.op == "StartSnapshot" {
			out, err = s.startSnapshot(reg, req)
		} else {
			out, err = completeSnapshot(reg, req)
		}
		s.mu.Unlock()
	}
	if err != nil {
		s.fail(w, req, err.status, err.code, err.message)
		return
	}
	if out != nil {
		writeJSON(w, "application/json", out)
	}
}

func validation(format string, args ...any) *apiError {
	return errorf(http.StatusBadRequest, "ValidationException", format, args...)
}

func (s *Server) startSnapshot(reg *Region, req *request) (any, *apiError) {
	var in struct {
		ClientToken string
		Description string
		Tags        []struct{ Key, Value string }
		Timeout     int
		VolumeSize  int64
	}
	if err := json.Unmarshal(req.body, &in); err != nil {
		return nil, validation("bad StartSnapshot body: %v", err)
	}
	if in.VolumeSize < 1 || in.VolumeSize > 64<<10 {
		return nil, validation("VolumeSize %d GiB is outside 1..65536", in.VolumeSize)
	}
	if in.Timeout != 0 && (in.Timeout < 10 || in.Timeout > 4320) {
		return nil, validation("Timeout %d minutes is outside 10..4320", in.Timeout)
	}
	if id, ok := reg.tokens["start:"+in.ClientToken]; ok && in.ClientToken != "" {
		sn := reg.Snapshots[id]
		if sn.VolumeSize != in.VolumeSize {
			return nil, errorf(http.StatusConflict, "ConflictException", "client token %s was used with another volume size", in.ClientToken)
		}
		return snapshotJSON(sn), nil
	}
	f, err := os.CreateTemp(s.dir, "snapshot-")
	if err != nil {
		return nil, errorf(http.StatusInternalServerError, "InternalServerException", "%v", err)
	}
	sn := &Snapshot{ID: s.newID("snap"), VolumeSize: in.VolumeSize, Description: in.Description, Tags: map[string]string{},
		State: "uploading", Digests: map[int32][sha256.Size]byte{}, file: f}
	for _, t := range in.Tags {
		sn.Tags[t.Key] = t.Value
	}
	if err := f.Truncate(in.VolumeSize << 30); err != nil {
		return nil, errorf(http.StatusInternalServerError, "InternalServerException", "%v", err)
	}
	reg.Snapshots[sn.ID] = sn
	if in.ClientToken != "" {
		reg.tokens["start:"+in.ClientToken] = sn.ID
	}
	return snapshotJSON(sn), nil
}

func snapshotJSON(sn *Snapshot) map[string]any {
	status := "pending"
	if sn.State == "completed" || sn.State == "error" {
		status = sn.State
	}
	return map[string]any{"SnapshotId": sn.ID, "VolumeSize": sn.VolumeSize, "BlockSize": BlockSize, "Status": status,
		"Description": sn.Description, "OwnerId": Account, "StartTime": 946684800}
}

// uploading returns the snapshot id of a request path, which must be
// started and not completed.
func uploading(reg *Region, id string) (*Snapshot, *apiError) {
	sn := reg.Snapshots[id]
	if sn == nil {
		return nil, errorf(http.StatusNotFound, "ResourceNotFoundException", "snapshot %s does not exist", id)
	}
	if sn.State != "uploading" {
		return nil, validation("snapshot %s is %s, not accepting blocks", id, sn.State)
	}
	return sn, nil
}

func (s *Server) putBlock(reg *Region, req *request, sum [sha256.Size]byte, w http.ResponseWriter) *apiError {
	parts := strings.Split(strings.Trim(req.r.URL.Path, "/"), "/")
	sn, aerr := uploading(reg, parts[1])
	if aerr != nil {
		return aerr
	}
	h := req.r.Header
	index, err := strconv.ParseInt(parts[3], 10, 32)
	if err != nil || index < 0 {
		return validation("block index %q is not a non-negative integer", parts[3])
	}
	if limit := sn.VolumeSize << 30 / BlockSize; index >= limit {
		return validation("block index %d is outside the %d GiB volume (%d blocks)", index, sn.VolumeSize, limit)
	}
	if h.Get("X-Amz-Checksum-Algorithm") != "SHA256" {
		return validation("X-Amz-Checksum-Algorithm %q, want SHA256", h.Get("X-Amz-Checksum-Algorithm"))
	}
	if h.Get("X-Amz-Data-Length") != strconv.Itoa(BlockSize) {
		return validation("X-Amz-Data-Length %q, the only supported size is %d", h.Get("X-Amz-Data-Length"), BlockSize)
	}
	if len(req.body) != BlockSize {
		return validation("block %d has %d bytes of data, want %d", index, len(req.body), BlockSize)
	}
	if p := h.Get("X-Amz-Progress"); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 0 || n > 100 {
			return validation("X-Amz-Progress %q is not 0..100", p)
		}
	}
	if got := h.Get("X-Amz-Checksum"); got != base64.StdEncoding.EncodeToString(sum[:]) {
		return validation("checksum %q of block %d does not match its data", got, index)
	}
	if _, err := sn.file.WriteAt(req.body, index*BlockSize); err != nil {
		return errorf(http.StatusInternalServerError, "InternalServerException", "%v", err)
	}
	sn.Digests[int32(index)] = sum
	sn.Puts++
	w.Header().Set("X-Amz-Checksum", h.Get("X-Amz-Checksum"))
	w.Header().Set("X-Amz-Checksum-Algorithm", "SHA256")
	w.WriteHeader(http.StatusCreated)
	return nil
}

func completeSnapshot(reg *Region, req *request) (any, *apiError) {
	parts := strings.Split(strings.Trim(req.r.URL.Path, "/"), "/")
	id := parts[2]
	if sn := reg.Snapshots[id]; sn != nil && sn.State != "uploading" && sn.State != "error" {
		// Completing again (an answer lost on the way) is harmless.
		return map[string]string{"Status": "pending"}, nil
	}
	sn, aerr := uploading(reg, id)
	if aerr != nil {
		return nil, aerr
	}
	h := req.r.Header
	count, err := strconv.Atoi(h.Get("X-Amz-Changedblockscount"))
	if err != nil {
		return nil, validation("X-Amz-Changedblockscount %q is not a number", h.Get("X-Amz-Changedblockscount"))
	}
	if count != len(sn.Digests) {
		return nil, validation("ChangedBlocksCount %d, but %d blocks were written to %s", count, len(sn.Digests), id)
	}
	if h.Get("X-Amz-Checksum") != "" {
		if m := h.Get("X-Amz-Checksum-Aggregation-Method"); m != "LINEAR" {
			return nil, validation("X-Amz-Checksum-Aggregation-Method %q, want LINEAR", m)
		}
		if a := h.Get("X-Amz-Checksum-Algorithm"); a != "SHA256" {
			return nil, validation("X-Amz-Checksum-Algorithm %q, want SHA256", a)
		}
		if got, want := h.Get("X-Amz-Checksum"), sn.Aggregate(); got != want {
			return nil, validation("aggregate checksum %s of %s does not match its blocks (%s)", got, id, want)
		}
	}
	sn.State = "pending"
	return map[string]string{"Status": "pending"}, nil
}

// Aggregate is the LINEAR aggregate checksum of the blocks received:
// base64 SHA-256 of their raw digests concatenated in index order.
func (sn *Snapshot) Aggregate() string {
	idx := make([]int32, 0, len(sn.Digests))
	for i := range sn.Digests {
		idx = append(idx, i)
	}
	slices.Sort(idx)
	h := sha256.New()
	for _, i := range idx {
		d := sn.Digests[i]
		h.Write(d[:])
	}
	return base64.StdEncoding.EncodeToString(h.Sum(nil))
}

// Equal reports whether the snapshot's content, zero where no block was
// written, equals the file at path zero-padded to the volume size, and
// describes the first difference.
func (sn *Snapshot) Equal(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	if st.Size() > sn.VolumeSize<<30 {
		return fmt.Errorf("%s: %d bytes do not fit the %d GiB snapshot", filepath.Base(path), st.Size(), sn.VolumeSize)
	}
	mine, err := sparse.DataBlocks(sn.file, sn.VolumeSize<<30, BlockSize)
	if err != nil {
		return err
	}
	theirs, err := sparse.DataBlocks(f, st.Size(), BlockSize)
	if err != nil {
		return err
	}
	a, b := make([]byte, BlockSize), make([]byte, BlockSize)
	for off := int64(0); off < sn.VolumeSize<<30; off += BlockSize {
		if i := off / BlockSize; !mine[i] && (i >= int64(len(theirs)) || !theirs[i]) {
			continue // a hole in both
		}
		clear(a)
		if _, err := f.ReadAt(a, off); err != nil && !errors.Is(err, io.EOF) {
			return err
		}
		if _, err := sn.file.ReadAt(b, off); err != nil {
			return err
		}
		if !bytes.Equal(a, b) {
			return fmt.Errorf("block %d (offset %d) of %s differs from the image", off/BlockSize, off, sn.ID)
		}
	}
	return nil
}
