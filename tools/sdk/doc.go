// Package sdk checks that the host tools a build needs (the [[sdk.tool]]
// list of Twoliter.toml) are installed in a recent enough version, and
// installs the Debian packages of the missing ones with apt-get.
package sdk
