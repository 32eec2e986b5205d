// Package apiserver serves the Petrel settings API (Bottlerocket's routes,
// query parameters and status codes) over HTTP/1.1 on a Unix socket,
// backed by a datastore.Store. Callers are authorised by SO_PEERCRED: root
// and members of the socket's group.
package apiserver
