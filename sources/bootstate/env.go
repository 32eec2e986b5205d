package bootstate

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
)

// BlockSize is the size of the environment block: exactly one disk sector,
// so that rewriting it is a single atomic sector write.
const BlockSize = 512

// Signature is the first line of every GRUB environment block.
const Signature = "# GRUB Environment Block\n"

// ErrBlockFull reports that the variables do not fit into BlockSize bytes.
var ErrBlockFull = errors.New("environment block full")

// SyntaxError reports a malformed environment block. Line counts from 1 and
// the signature is line 1.
type SyntaxError struct {
	Line int
	Msg  string
}

func (e *SyntaxError) Error() string {
	return fmt.Sprintf("grubenv line %d: %s", e.Line, e.Msg)
}

// Var is one name=value pair of an environment block.
type Var struct {
	Name  string
	Value string
	// Line is where the variable was found by Parse, 0 for one added by Set.
	Line int
}

// Env is the ordered content of a GRUB environment block. Order is kept so
// that a block rewritten by the host is byte-identical to the one GRUB's
// save_env would produce for the same change, and unknown variables survive.
// The zero value is an empty block. Env is not safe for concurrent use.
type Env struct {
	vars []Var
}

// Vars returns a copy of the variables in block order.
func (e *Env) Vars() []Var {
	return append([]Var(nil), e.vars...)
}

// Get returns the value of name and whether it is set.
func (e *Env) Get(name string) (string, bool) {
	if v := e.find(name); v != nil {
		return v.Value, true
	}
	return "", false
}

// find returns the variable called name, or nil.
func (e *Env) find(name string) *Var {
	for i := range e.vars {
		if e.vars[i].Name == name {
			return &e.vars[i]
		}
	}
	return nil
}

// Set changes name in place or appends it, as GRUB's save_env does.
func (e *Env) Set(name, value string) error {
	if !validName(name) {
		return fmt.Errorf("set grubenv variable %q: name must match [A-Za-z_][A-Za-z0-9_]*", name)
	}
	if v := e.find(name); v != nil {
		v.Value = value
		return nil
	}
	e.vars = append(e.vars, Var{Name: name, Value: value})
	return nil
}

// Parse reads one environment block of exactly BlockSize bytes: the
// signature line, then name=value lines, then '#' padding to the end. A
// backslash in a value escapes the next byte, as GRUB writes it. Anything
// else is an error that names the line.
func Parse(block []byte) (*Env, error) {
	if len(block) != BlockSize {
		return nil, fmt.Errorf("parse grubenv: block is %d bytes, want %d", len(block), BlockSize)
	}
	if !bytes.HasPrefix(block, []byte(Signature)) {
		return nil, &SyntaxError{Line: 1, Msg: fmt.Sprintf("want signature %q", strings.TrimSuffix(Signature, "\n"))}
	}
	env := &Env{}
	p := len(Signature)
	line := 2
	for p < len(block) {
		if block[p] == '#' {
			// Padding: everything up to the end must be '#'.
			if i := bytes.IndexFunc(block[p:], func(r rune) bool { return r != '#' }); i >= 0 {
				return nil, &SyntaxError{Line: line, Msg: "padding must be '#' up to the end of the block"}
			}
			return env, nil
		}
		eq := bytes.IndexByte(block[p:], '=')
		nl := bytes.IndexByte(block[p:], '\n')
		if eq < 0 || (nl >= 0 && nl < eq) {
			return nil, &SyntaxError{Line: line, Msg: "want name=value"}
		}
		name := string(block[p : p+eq])
		if !validName(name) {
			return nil, &SyntaxError{Line: line, Msg: fmt.Sprintf("invalid variable name %q", name)}
		}
		if env.find(name) != nil {
			return nil, &SyntaxError{Line: line, Msg: fmt.Sprintf("variable %q set twice", name)}
		}
		start := line
		var val []byte
		q := p + eq + 1
		for {
			if q >= len(block) {
				return nil, &SyntaxError{Line: start, Msg: fmt.Sprintf("value of %q has no terminating newline", name)}
			}
			c := block[q]
			if c == '\n' {
				break
			}
			if c == '\\' {
				q++
				if q >= len(block) {
					return nil, &SyntaxError{Line: line, Msg: "backslash at end of block"}
				}
				c = block[q]
				if c == '\n' {
					line++
				}
			}
			if c == 0 {
				return nil, &SyntaxError{Line: line, Msg: "NUL byte in value"}
			}
			val = append(val, c)
			q++
		}
		env.vars = append(env.vars, Var{Name: name, Value: string(val), Line: start})
		p = q + 1
		line++
	}
	return nil, &SyntaxError{Line: line, Msg: "block ends without '#' padding"}
}

// Encode serializes the block to exactly BlockSize bytes in GRUB's layout.
// It returns ErrBlockFull when the variables leave no room for at least one
// padding byte, which GRUB needs to find the end of the variables.
func (e *Env) Encode() ([]byte, error) {
	buf := make([]byte, 0, BlockSize)
	buf = append(buf, Signature...)
	for _, v := range e.vars {
		if !validName(v.Name) {
			return nil, fmt.Errorf("encode grubenv variable %q: invalid name", v.Name)
		}
		if strings.IndexByte(v.Value, 0) >= 0 {
			return nil, fmt.Errorf("encode grubenv variable %q: NUL byte in value", v.Name)
		}
		buf = append(buf, v.Name...)
		buf = append(buf, '=')
		for i := 0; i < len(v.Value); i++ {
			if c := v.Value[i]; c == '\\' || c == '\n' {
				buf = append(buf, '\\')
			}
			buf = append(buf, v.Value[i])
		}
		buf = append(buf, '\n')
	}
	if len(buf) >= BlockSize {
		return nil, fmt.Errorf("encode grubenv: %d bytes of variables: %w", len(buf), ErrBlockFull)
	}
	return append(buf, bytes.Repeat([]byte{'#'}, BlockSize-len(buf))...), nil
}

// validName reports whether s can be used as a GRUB script variable name.
func validName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '_', c >= 'A' && c <= 'Z', c >= 'a' && c <= 'z':
		case c >= '0' && c <= '9' && i > 0:
		default:
			return false
		}
	}
	return true
}
