// Package hello is a placeholder on-host agent: it prints the OS name and
// version from os-release. It exists so that the os package has a
// first-party Go program to build until the real agents land.
package hello
