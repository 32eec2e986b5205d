package awstest

import (
	"encoding/json"
	"encoding/xml"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// Credentials the tests sign with. The secret must never appear in what
// the tools print or log; Server.SawSecret reports whether a request
// carried it anywhere.
const (
	AccessKeyID     = "AKIAPETRELTEST000001"
	SecretAccessKey = "petrel/test/secret/never/printed/0123456789"
	Account         = "111122223333"
)

// Fault is a way to fail a request.
type Fault int

// Faults. Each is answered as the service does: Throttle with its
// throttling error code (EBS RequestThrottledException, EC2
// RequestLimitExceeded, SSM ThrottlingException, STS Throttling),
// ServerError with a 500, Drop by closing the connection without an
// answer, DropAnswer by doing what the request asks and then closing the
// connection without an answer (the answer is lost on the way), Refuse
// with the service's validation error, which the SDK does not retry.
const (
	Throttle Fault = iota + 1
	ServerError
	Drop
	DropAnswer
	Refuse
)

func (f Fault) String() string {
	switch f {
	case Throttle:
		return "throttle"
	case ServerError:
		return "server error"
	case Drop:
		return "dropped connection"
	case DropAnswer:
		return "lost answer"
	case Refuse:
		return "refusal"
	}
	return fmt.Sprintf("fault(%d)", int(f))
}

// rule fails requests of one operation.
type rule struct {
	op    string
	fault Fault
	next  int // fail the next next requests
	every int // fail every every-th request (0: off)
	seen  int
}

// Server is the fake endpoint. Its exported fields may be set before the
// first request.
type Server struct {
	// URL is the base URL to give the SDK as BaseEndpoint.
	URL string
	// PendingPolls is how many DescribeImages and DescribeSnapshots
	// answers show a new image or completed snapshot as pending before it
	// is available or completed (default 1).
	PendingPolls int

	srv  *httptest.Server
	dir  string
	mu   sync.Mutex
	regs map[string]*Region
	// rules fail requests; calls count requests per operation.
	rules     []*rule
	calls     map[string]int
	failed    map[string]int
	sawSecret bool
	badAuth   []string
	ids       int
	onRequest func(op string)
	inflight  int
}

// OnRequest makes fn be called with the operation name of every request
// before it is served (nil: nothing is called).
func (s *Server) OnRequest(fn func(op string)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.onRequest = fn
}

// Quiesce waits until no request has been served for 100 ms, for a test
// that interrupted a client and wants to count what arrived (requests
// the client sent before it stopped may still be on their way).
func (s *Server) Quiesce() {
	quiet := time.Now()
	for time.Since(quiet) < 100*time.Millisecond {
		s.mu.Lock()
		n := s.inflight
		s.mu.Unlock()
		if n > 0 {
			quiet = time.Now()
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// NewServer starts a Server on 127.0.0.1 and stops it when the test ends.
func NewServer(t testing.TB) *Server {
	t.Helper()
	s := &Server{PendingPolls: 1, dir: t.TempDir(), regs: map[string]*Region{}, calls: map[string]int{}, failed: map[string]int{}}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	s.URL = s.srv.URL
	t.Cleanup(s.Close)
	return s
}

// Close stops the server and removes the snapshots' files.
func (s *Server) Close() {
	s.srv.Close()
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, r := range s.regs {
		for _, sn := range r.Snapshots {
			sn.close()
		}
	}
}

// Env returns the environment that points the SDK's default chain at the
// server: static credentials, a region and AWS_ENDPOINT_URL.
func (s *Server) Env(region string) []string {
	return []string{
		"AWS_ACCESS_KEY_ID=" + AccessKeyID, "AWS_SECRET_ACCESS_KEY=" + SecretAccessKey,
		"AWS_REGION=" + region, "AWS_ENDPOINT_URL=" + s.URL,
		"AWS_EC2_METADATA_DISABLED=true", "AWS_CONFIG_FILE=" + os.DevNull, "AWS_SHARED_CREDENTIALS_FILE=" + os.DevNull,
	}
}

// Fail makes the next n requests of op (an operation name such as
// "PutSnapshotBlock") fail with f.
func (s *Server) Fail(op string, f Fault, n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rules = append(s.rules, &rule{op: op, fault: f, next: n})
}

// FailEvery makes every k-th request of op fail with f until Clear.
func (s *Server) FailEvery(op string, f Fault, k int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rules = append(s.rules, &rule{op: op, fault: f, every: k})
}

// Clear removes every failure rule.
func (s *Server) Clear() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rules = nil
}

// Calls returns how many requests of op arrived, failed ones included.
func (s *Server) Calls(op string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[op]
}

// Failed returns how many requests of op were failed on purpose.
func (s *Server) Failed(op string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.failed[op]
}

// SawSecret reports whether any request carried the secret access key.
func (s *Server) SawSecret() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sawSecret
}

// BadAuth returns the requests refused for their signature, if any.
func (s *Server) BadAuth() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.badAuth...)
}

// Region returns the state of a region, creating it.
func (s *Server) Region(name string) *Region {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.region(name)
}

func (s *Server) region(name string) *Region {
	r := s.regs[name]
	if r == nil {
		r = &Region{Name: name, Snapshots: map[string]*Snapshot{}, Images: map[string]*Image{}, Parameters: map[string]string{}, tokens: map[string]string{}}
		s.regs[name] = r
	}
	return r
}

// newID returns a fresh resource ID with prefix ("snap", "ami").
func (s *Server) newID(prefix string) string {
	s.ids++
	return fmt.Sprintf("%s-%017x", prefix, 0xa000+s.ids)
}

// scope matches the credential scope of a SigV4 Authorization header.
var scope = regexp.MustCompile(`^AWS4-HMAC-SHA256 Credential=([^/]+)/(\d{8})/([^/]+)/([^/]+)/aws4_request, SignedHeaders=[^,]+, Signature=[0-9a-f]{64}$`)

// request is one parsed request.
type request struct {
	r       *http.Request
	op      string
	service string // ebs, ec2, ssm, sts
	region  string
	body    []byte
}

// fault returns the fault to inject for op, if any, and counts the call.
func (s *Server) fault(op string) Fault {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls[op]++
	for _, r := range s.rules {
		if r.op != op {
			continue
		}
		r.seen++
		switch {
		case r.next > 0:
			r.next--
		case r.every > 0 && r.seen%r.every == 0:
		default:
			continue
		}
		s.failed[op]++
		return r.fault
	}
	return 0
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.inflight++
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.inflight--
		s.mu.Unlock()
	}()
	req, err := parse(r)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	if strings.Contains(string(req.body), SecretAccessKey) || strings.Contains(fmt.Sprint(r.Header), SecretAccessKey) || strings.Contains(r.URL.String(), SecretAccessKey) {
		s.mu.Lock()
		s.sawSecret = true
		s.mu.Unlock()
	}
	m := scope.FindStringSubmatch(r.Header.Get("Authorization"))
	if m == nil || m[1] != AccessKeyID || (req.service != "" && m[4] != req.service) {
		s.mu.Lock()
		s.badAuth = append(s.badAuth, req.op+": "+r.Header.Get("Authorization"))
		s.mu.Unlock()
		s.fail(w, req, http.StatusForbidden, "AuthFailure", "request is not signed with the expected access key for "+req.service)
		return
	}
	req.region = m[3]
	s.mu.Lock()
	hook := s.onRequest
	s.mu.Unlock()
	if hook != nil {
		hook(req.op)
	}
	switch s.fault(req.op) {
	case Drop:
		drop(w)
	case DropAnswer:
		s.dispatch(httptest.NewRecorder(), req)
		drop(w)
	case Throttle:
		code := map[string]string{"ebs": "RequestThrottledException", "ec2": "RequestLimitExceeded", "ssm": "ThrottlingException", "sts": "Throttling"}[req.service]
		status := http.StatusBadRequest
		if req.service == "ec2" {
			status = http.StatusServiceUnavailable
		}
		s.fail(w, req, status, code, "Rate exceeded")
	case ServerError:
		code := map[string]string{"ebs": "InternalServerException", "ec2": "InternalError", "ssm": "InternalServerError", "sts": "InternalFailure"}[req.service]
		s.fail(w, req, http.StatusInternalServerError, code, "An internal error has occurred")
	case Refuse:
		code := map[string]string{"ebs": "ValidationException", "ec2": "InvalidParameterValue", "ssm": "ValidationException", "sts": "ValidationError"}[req.service]
		s.fail(w, req, http.StatusBadRequest, code, "refused by the test")
	default:
		s.dispatch(w, req)
	}
}

// drop closes the connection without an answer.
func drop(w http.ResponseWriter) {
	if hj, ok := w.(http.Hijacker); ok {
		if c, _, err := hj.Hijack(); err == nil {
			c.Close()
			return
		}
	}
	panic(http.ErrAbortHandler)
}

func (s *Server) dispatch(w http.ResponseWriter, req *request) {
	switch req.service {
	case "ebs":
		s.serveEBS(w, req)
	case "ec2":
		s.serveEC2(w, req)
	case "ssm":
		s.serveSSM(w, req)
	case "sts":
		s.serveSTS(w, req)
	}
}

// apiError is an error answer.
type apiError struct {
	status        int
	code, message string
}

func (e *apiError) Error() string { return e.code + ": " + e.message }

func errorf(status int, code, format string, args ...any) *apiError {
	return &apiError{status: status, code: code, message: fmt.Sprintf(format, args...)}
}

// fail writes an error answer in the protocol of req's service.
func (s *Server) fail(w http.ResponseWriter, req *request, status int, code, msg string) {
	switch req.service {
	case "ec2":
		w.Header().Set("Content-Type", "text/xml;charset=UTF-8")
		w.WriteHeader(status)
		fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?>`+"\n"+`<Response><Errors><Error><Code>%s</Code><Message>%s</Message></Error></Errors><RequestID>req-1</RequestID></Response>`, xmlText(code), xmlText(msg))
	case "sts":
		w.Header().Set("Content-Type", "text/xml")
		w.WriteHeader(status)
		kind := "Sender"
		if status >= 500 {
			kind = "Receiver"
		}
		fmt.Fprintf(w, `<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><Error><Type>%s</Type><Code>%s</Code><Message>%s</Message></Error><RequestId>req-1</RequestId></ErrorResponse>`, kind, xmlText(code), xmlText(msg))
	default:
		ct := "application/json"
		if req.service == "ssm" {
			ct = "application/x-amz-json-1.1"
		}
		w.Header().Set("Content-Type", ct)
		w.Header().Set("X-Amzn-Errortype", code)
		w.WriteHeader(status)
		json.NewEncoder(w).Encode(map[string]string{"__type": code, "message": msg, "Message": msg})
	}
}

func xmlText(s string) string {
	var b strings.Builder
	xml.EscapeText(&b, []byte(s))
	return b.String()
}

func writeJSON(w http.ResponseWriter, contentType string, v any) {
	w.Header().Set("Content-Type", contentType)
	json.NewEncoder(w).Encode(v)
}

func writeXML(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "text/xml;charset=UTF-8")
	w.Write([]byte(xml.Header))
	xml.NewEncoder(w).Encode(v)
}
