package project

import "errors"

// ErrInvalidInput marks errors caused by bad input (a spec, a TOML file, a
// flag) rather than by a failing build. buildctl maps it to exit code 2.
var ErrInvalidInput = errors.New("invalid input")

// inputError is one problem of the project's input. Its message is the
// wrapped error's; errors.Is(err, ErrInvalidInput) holds.
type inputError struct{ err error }

func (e *inputError) Error() string   { return e.err.Error() }
func (e *inputError) Unwrap() []error { return []error{ErrInvalidInput, e.err} }

// invalid marks err as bad input.
func invalid(err error) error { return &inputError{err: err} }

// problems collects the validation problems of one Load.
type problems struct{ errs []error }

// addf records "file: msg".
func (p *problems) addf(file, format string, args ...any) {
	p.errs = append(p.errs, invalid(errorf(file, format, args...)))
}

// add records err, which already names its file, as bad input.
func (p *problems) add(err error) { p.errs = append(p.errs, invalid(err)) }

func (p *problems) err() error { return errors.Join(p.errs...) }
