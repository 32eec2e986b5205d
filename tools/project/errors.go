package project

import "errors"

// ErrInvalidInput marks errors caused by bad input (a spec, a TOML file, a
// flag) rather than by a failing build. buildctl maps it to exit code 2.
var ErrInvalidInput = errors.New("invalid input")
