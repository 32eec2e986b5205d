// Package kit builds kits: it builds every package of a kit (and what they
// depend on) and assembles the RPMs into a yum repository,
// <BuildDir>/kits/<kit>/<arch>/, with repodata from createrepo_c. The
// repository is reproducible: file times and repodata timestamps are the
// newest build time of its RPMs, and an unchanged kit is not reassembled.
package kit
