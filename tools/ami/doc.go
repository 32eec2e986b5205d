// Package ami publishes a variant's disk images as an Amazon Machine
// Image: the OS disk (and, for the split partition plan, the data disk)
// go up as EBS snapshots through the EBS direct APIs (tools/snapshot),
// then RegisterImage makes them an HVM image with ENA, SR-IOV, a UEFI
// preferred boot mode and, unless the spec says otherwise, IMDSv2 only;
// then, as the spec asks, the image is waited for, copied to more
// regions, shared, and named in SSM parameters.
//
// Options come from a spec file (ami.toml in the variant, a --spec file,
// flags), laid over defaults and validated with every bad field named
// (Spec, Layer). Every step is idempotent: an AMI of the same name is
// found and reused, copies carry client tokens, SSM parameters that hold
// the value already are left alone. An interrupted upload is resumed from
// a state file under build/state/ami/ that records each snapshot and the
// blocks AWS acknowledged; Clean deletes the snapshots of an abandoned
// run instead. Credentials and regions come from the SDK's default chain;
// nothing secret is printed or logged.
//
// The AWS clients are the real aws-sdk-go-v2 ones; tests point them at
// tools/awstest.
package ami
