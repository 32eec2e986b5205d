// Package projecttest gives tests a writable copy of a fixture project
// tree, changed by an overlay of files, so that one test can load a good
// project and the next can break one file of it. Repo also commits the
// copy to a git repository with fixed dates, as builds read
// SOURCE_DATE_EPOCH from the last commit.
//
// The shared fixtures are tools/project/testdata/good (a small valid
// project: four packages, one kit, two variants; loaded by tools/project
// and tools/buildctl tests) and tools/builder/testdata/fixture (a project
// that really builds; used by tools/builder and tools/buildctl tests).
package projecttest
