// Package graph resolves the dependencies between the packages of a
// project: it maps the RPM names that specs require to package
// directories, rejects unknown dependencies and cycles, and orders
// packages so that dependencies come first.
package graph
