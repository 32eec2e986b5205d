// Package awstest is an in-process AWS endpoint for the tests of the
// publishing tools. No AWS account is reachable from a build machine or
// CI, and moto or LocalStack are not at hand, so the tests drive the real
// aws-sdk-go-v2 clients through BaseEndpoint (or AWS_ENDPOINT_URL) at a
// Server that speaks the wire protocols as the SDK's own request and
// response snapshots show them:
//
//   - EBS direct APIs, REST-JSON: POST /snapshots, PUT
//     /snapshots/{id}/blocks/{index}, POST /snapshots/completion/{id};
//   - EC2, form-encoded query with XML answers (DescribeSnapshots,
//     DeleteSnapshot, ModifySnapshotAttribute, RegisterImage,
//     DescribeImages, CopyImage, ModifyImageAttribute);
//   - SSM, JSON 1.1 (PutParameter, GetParameters);
//   - STS, query with XML answers (GetCallerIdentity).
//
// It checks what AWS checks and refuses what AWS refuses, each with the
// error code AWS uses: a block's SHA-256 and length, its index within the
// volume, the changed-block count and the LINEAR aggregate checksum of
// CompleteSnapshot, a signed request from the expected access key, the
// fields of RegisterImage (snapshots completed, devices, sizes, volume
// types, boot mode, IMDS and TPM values) and duplicate image names. The
// state of every region (named by the request's SigV4 credential scope)
// is kept in memory; received blocks go to a sparse file per snapshot, so
// a test can rebuild the uploaded disk and compare it byte for byte.
//
// Requests can be made to fail on demand (Fail): throttling, server
// errors and dropped connections, so that retries, resume and clean-up
// are tested against the SDK's real error handling.
//
// Only tests import this package; TestNotLinkedIntoCommands checks that no
// command of the module links it.
package awstest
