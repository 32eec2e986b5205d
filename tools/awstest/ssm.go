package awstest

import (
	"encoding/json"
	"encoding/xml"
	"net/http"
	"strings"
)

const ssmJSON = "application/x-amz-json-1.1"

func (s *Server) serveSSM(w http.ResponseWriter, req *request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	reg := s.region(req.region)
	switch req.op {
	case "PutParameter":
		var in struct {
			Name, Value, Type string
			Overwrite         bool
		}
		if err := json.Unmarshal(req.body, &in); err != nil {
			s.fail(w, req, http.StatusBadRequest, "ValidationException", err.Error())
			return
		}
		if !strings.HasPrefix(in.Name, "/") || strings.Contains(in.Name, "//") || len(in.Name) > 1011 {
			s.fail(w, req, http.StatusBadRequest, "ValidationException", "parameter name "+in.Name+" must be a fully qualified path without empty elements")
			return
		}
		if in.Type != "String" {
			s.fail(w, req, http.StatusBadRequest, "ValidationException", "the fake stores String parameters only, not "+in.Type)
			return
		}
		if _, ok := reg.Parameters[in.Name]; ok && !in.Overwrite {
			s.fail(w, req, http.StatusBadRequest, "ParameterAlreadyExists", "The parameter already exists. To overwrite this value, set the overwrite option in the request to true.")
			return
		}
		reg.Parameters[in.Name] = in.Value
		writeJSON(w, ssmJSON, map[string]any{"Version": 1, "Tier": "Standard"})
	case "GetParameters":
		var in struct{ Names []string }
		if err := json.Unmarshal(req.body, &in); err != nil || len(in.Names) == 0 || len(in.Names) > 10 {
			s.fail(w, req, http.StatusBadRequest, "ValidationException", "GetParameters needs 1 to 10 names")
			return
		}
		params, invalid := []map[string]any{}, []string{}
		for _, n := range in.Names {
			if v, ok := reg.Parameters[n]; ok {
				params = append(params, map[string]any{"Name": n, "Value": v, "Type": "String", "Version": 1})
			} else {
				invalid = append(invalid, n)
			}
		}
		writeJSON(w, ssmJSON, map[string]any{"Parameters": params, "InvalidParameters": invalid})
	default:
		s.fail(w, req, http.StatusBadRequest, "InvalidAction", "the fake does not serve "+req.op)
	}
}

type callerIdentity struct {
	XMLName xml.Name `xml:"GetCallerIdentityResponse"`
	Xmlns   string   `xml:"xmlns,attr"`
	Result  struct {
		Arn     string `xml:"Arn"`
		UserID  string `xml:"UserId"`
		Account string `xml:"Account"`
	} `xml:"GetCallerIdentityResult"`
	RequestID string `xml:"ResponseMetadata>RequestId"`
}

func (s *Server) serveSTS(w http.ResponseWriter, req *request) {
	if req.op != "GetCallerIdentity" {
		s.fail(w, req, http.StatusBadRequest, "InvalidAction", "the fake does not serve "+req.op)
		return
	}
	out := &callerIdentity{Xmlns: "https://sts.amazonaws.com/doc/2011-06-15/", RequestID: "req-1"}
	out.Result.Arn = "arn:aws:iam::" + Account + ":user/petrel-release"
	out.Result.UserID = AccessKeyID
	out.Result.Account = Account
	writeXML(w, out)
}
