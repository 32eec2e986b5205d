package updater

import (
	"errors"
	"fmt"
	"time"
)

// Sentinels for errors.Is; the typed errors below carry the details.
var (
	// ErrHashMismatch: a target's or metadata file's bytes differ from
	// their signed hash.
	ErrHashMismatch = errors.New("hash mismatch")
	// ErrLengthExceeded: a file is longer than its signed (or maximum)
	// length; reading stopped at the length.
	ErrLengthExceeded = errors.New("longer than the signed length")
	// ErrTruncated: a file ended before its signed length.
	ErrTruncated = errors.New("shorter than the signed length")
	// ErrExpired: a role's metadata is past its expiry.
	ErrExpired = errors.New("metadata expired")
	// ErrRollback: a role's version is lower than one already trusted.
	ErrRollback = errors.New("rollback")
	// ErrFreeze: the repository shows a timestamp older than one already
	// trusted, keeping the host on an old view of the repository. It is
	// a rollback of the timestamp role; such errors match both.
	ErrFreeze = errors.New("freeze")
	// ErrMixAndMatch: a snapshot or targets file is not the one the role
	// above it signed for (version, length or hash).
	ErrMixAndMatch = errors.New("mix-and-match")
	// ErrUntrustedSignature: metadata lacks a threshold of signatures by
	// the keys the trusted root names for its role.
	ErrUntrustedSignature = errors.New("not signed by trusted keys")
	// ErrRootRotation: a new root is not signed by the threshold of the
	// old root and of itself, or skips a version.
	ErrRootRotation = errors.New("bad root rotation")
	// ErrTimeout: the network stalled (connect, response or body).
	ErrTimeout = errors.New("network timeout")
	// ErrNotFound: the server has no such file (HTTP 404).
	ErrNotFound = errors.New("not found")
	// ErrUnknownTarget: the signed targets do not list the name.
	ErrUnknownTarget = errors.New("unknown target")
	// ErrBadMetadata: metadata that cannot be parsed or is of the wrong
	// type.
	ErrBadMetadata = errors.New("bad metadata")
)

// HashError is a file whose bytes do not have the signed hash.
type HashError struct {
	Name      string // target name or metadata file
	Algorithm string
	Want, Got string // hex
}

func (e *HashError) Error() string {
	return fmt.Sprintf("%s: %s mismatch: signed %s, got %s", e.Name, e.Algorithm, e.Want, e.Got)
}

// Is matches ErrHashMismatch.
func (e *HashError) Is(target error) bool { return target == ErrHashMismatch }

// LengthError is a file longer (Got > Want; reading stopped at Want+1
// bytes or at the announced Content-Length) or shorter than its signed
// length.
type LengthError struct {
	Name      string
	Want, Got int64
}

func (e *LengthError) Error() string {
	if e.Got > e.Want {
		return fmt.Sprintf("%s: longer than its signed length of %d bytes (got at least %d)", e.Name, e.Want, e.Got)
	}
	return fmt.Sprintf("%s: ended after %d of its signed %d bytes", e.Name, e.Got, e.Want)
}

// Is matches ErrLengthExceeded or ErrTruncated.
func (e *LengthError) Is(target error) bool {
	return (target == ErrLengthExceeded && e.Got > e.Want) || (target == ErrTruncated && e.Got < e.Want)
}

// ExpiredError is metadata past its expiry at the time of the refresh.
type ExpiredError struct {
	Role         string
	Expires, Now time.Time
}

func (e *ExpiredError) Error() string {
	return fmt.Sprintf("%s metadata expired at %s (now %s)", e.Role, e.Expires.UTC().Format(time.RFC3339), e.Now.UTC().Format(time.RFC3339))
}

// Is matches ErrExpired.
func (e *ExpiredError) Is(target error) bool { return target == ErrExpired }

// RollbackError is a role whose offered version is lower than the trusted
// one. For the timestamp role it is also a freeze.
type RollbackError struct {
	Role         string
	Trusted, Got int64
}

func (e *RollbackError) Error() string {
	return fmt.Sprintf("%s version %d is lower than the trusted version %d", e.Role, e.Got, e.Trusted)
}

// Is matches ErrRollback, and ErrFreeze for the timestamp role.
func (e *RollbackError) Is(target error) bool {
	return target == ErrRollback || (target == ErrFreeze && e.Role == "timestamp")
}

// MixAndMatchError is metadata that is not the one the role above signed
// for.
type MixAndMatchError struct {
	Role   string
	Detail string
}

func (e *MixAndMatchError) Error() string {
	return fmt.Sprintf("%s metadata does not match what was signed for it: %s", e.Role, e.Detail)
}

// Is matches ErrMixAndMatch.
func (e *MixAndMatchError) Is(target error) bool { return target == ErrMixAndMatch }

// SignatureError is metadata without a threshold of trusted signatures.
type SignatureError struct {
	Role string
	Err  error
}

func (e *SignatureError) Error() string {
	return fmt.Sprintf("%s metadata is not signed by the trusted keys: %v", e.Role, e.Err)
}

// Is matches ErrUntrustedSignature.
func (e *SignatureError) Is(target error) bool { return target == ErrUntrustedSignature }

// Unwrap returns go-tuf's error.
func (e *SignatureError) Unwrap() error { return e.Err }

// RootRotationError is a refused new root.
type RootRotationError struct {
	From, To int64 // trusted and offered root versions
	Err      error
}

func (e *RootRotationError) Error() string {
	return fmt.Sprintf("refused root rotation from version %d to %d: %v", e.From, e.To, e.Err)
}

// Is matches ErrRootRotation.
func (e *RootRotationError) Is(target error) bool { return target == ErrRootRotation }

// Unwrap returns the cause.
func (e *RootRotationError) Unwrap() error { return e.Err }

// TimeoutError is a network stall.
type TimeoutError struct {
	URL   string
	Phase string // "connect", "response" or "body"
	After time.Duration
}

func (e *TimeoutError) Error() string {
	return fmt.Sprintf("GET %s: no progress in the %s for %s", e.URL, e.Phase, e.After)
}

// Is matches ErrTimeout.
func (e *TimeoutError) Is(target error) bool { return target == ErrTimeout }

// StatusError is an HTTP status other than success.
type StatusError struct {
	URL    string
	Status int
}

func (e *StatusError) Error() string { return fmt.Sprintf("GET %s: HTTP status %d", e.URL, e.Status) }

// Is matches ErrNotFound for 404.
func (e *StatusError) Is(target error) bool { return target == ErrNotFound && e.Status == 404 }
