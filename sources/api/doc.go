// Package api holds the wire contract of the Petrel settings API shared by
// apiserver and apiclient: route paths, query parameter names, defaults and
// request/response types. It matches Bottlerocket's API.
package api
