package ingest

import (
	"errors"
	"fmt"
	"unicode/utf8"
)

// scanner is a minimal JSON reader for the flat event objects of api.md.
// encoding/json would first reflect into a struct and then leave us to redo
// every range check, lose byte offsets and accept floats and quoted ids; this
// reader validates while it scans, allocates nothing for names, numbers or
// unescaped strings, and knows the byte offset of every error.
//
// It accepts exactly RFC 8259 JSON, except that it does not check strings that
// are skipped (unknown fields) for valid UTF-8: a string we keep is checked
// by its field, and a string we skip cannot hurt.
type scanner struct {
	b   []byte
	i   int
	buf []byte // unescaped string scratch; valid until the next str call
}

// maxDepth bounds the nesting of skipped unknown values so that a 1 MiB body
// of '[' cannot make the decoder recurse 1 M frames deep.
const maxDepth = 64

// syntaxError is malformed JSON at byte offset Off of the body.
type syntaxError struct {
	Off int
	Msg string
}

func (e *syntaxError) Error() string {
	return fmt.Sprintf("invalid JSON at byte offset %d: %s", e.Off, e.Msg)
}

var errUnexpectedEnd = errors.New("unexpected end of input")

func (s *scanner) fail(msg string) error {
	if s.i >= len(s.b) {
		return &syntaxError{Off: len(s.b), Msg: errUnexpectedEnd.Error()}
	}
	return &syntaxError{Off: s.i, Msg: fmt.Sprintf("%s, found %q", msg, s.b[s.i])}
}

func (s *scanner) ws() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

// peek skips whitespace and returns the next byte, or 0 at the end.
func (s *scanner) peek() byte {
	s.ws()
	if s.i < len(s.b) {
		return s.b[s.i]
	}
	return 0
}

// expect consumes c after optional whitespace.
func (s *scanner) expect(c byte, what string) error {
	if s.peek() != c {
		return s.fail("expected " + what)
	}
	s.i++
	return nil
}

// str reads a string at s.i (which must be '"') and returns its unescaped
// bytes. The result aliases the body or s.buf; copy it to keep it.
func (s *scanner) str() ([]byte, error) {
	if s.i >= len(s.b) || s.b[s.i] != '"' {
		return nil, s.fail("expected string")
	}
	s.i++
	start := s.i
	for s.i < len(s.b) {
		c := s.b[s.i]
		switch {
		case c == '"':
			s.i++
			return s.b[start : s.i-1], nil
		case c == '\\':
			return s.strSlow(start)
		case c < 0x20:
			return nil, s.fail("control character in string")
		}
		s.i++
	}
	return nil, s.fail("")
}

// strSlow unescapes a string from start, having met a backslash at s.i.
func (s *scanner) strSlow(start int) ([]byte, error) {
	out := append(s.buf[:0], s.b[start:s.i]...)
	for s.i < len(s.b) {
		c := s.b[s.i]
		switch {
		case c == '"':
			s.i++
			s.buf = out
			return out, nil
		case c < 0x20:
			return nil, s.fail("control character in string")
		case c != '\\':
			out = append(out, c)
			s.i++
			continue
		}
		s.i++ // the backslash
		if s.i >= len(s.b) {
			return nil, s.fail("")
		}
		esc := s.b[s.i]
		s.i++
		switch esc {
		case '"', '\\', '/':
			out = append(out, esc)
		case 'b':
			out = append(out, '\b')
		case 'f':
			out = append(out, '\f')
		case 'n':
			out = append(out, '\n')
		case 'r':
			out = append(out, '\r')
		case 't':
			out = append(out, '\t')
		case 'u':
			r, ok := s.hex4()
			if !ok {
				return nil, s.fail("invalid \\u escape")
			}
			if r >= 0xD800 && r < 0xDC00 && s.i+1 < len(s.b) && s.b[s.i] == '\\' && s.b[s.i+1] == 'u' {
				save := s.i
				s.i += 2
				if r2, ok := s.hex4(); ok && r2 >= 0xDC00 && r2 < 0xE000 {
					out = utf8.AppendRune(out, (r-0xD800)<<10+(r2-0xDC00)+0x10000)
					continue
				}
				s.i = save
			}
			if r >= 0xD800 && r < 0xE000 {
				// A lone surrogate: keep its (invalid) 3-byte form so that the
				// field's UTF-8 check rejects it instead of silently turning
				// it into U+FFFD as encoding/json does.
				out = append(out, 0xE0|byte(r>>12), 0x80|byte(r>>6)&0x3F, 0x80|byte(r)&0x3F)
				continue
			}
			out = utf8.AppendRune(out, r)
		default:
			s.i--
			return nil, s.fail("invalid escape")
		}
	}
	return nil, s.fail("")
}

func (s *scanner) hex4() (rune, bool) {
	if s.i+4 > len(s.b) {
		return 0, false
	}
	var r rune
	for _, c := range s.b[s.i : s.i+4] {
		switch {
		case c >= '0' && c <= '9':
			c -= '0'
		case c >= 'a' && c <= 'f':
			c = c - 'a' + 10
		case c >= 'A' && c <= 'F':
			c = c - 'A' + 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	s.i += 4
	return r, true
}

// number reads a JSON number at s.i and returns its text and whether it is
// an integer (no fraction, no exponent).
func (s *scanner) number() (tok []byte, isInt bool, err error) {
	start := s.i
	isInt = true
	if s.i < len(s.b) && s.b[s.i] == '-' {
		s.i++
	}
	switch {
	case s.i < len(s.b) && s.b[s.i] == '0':
		s.i++
	case s.i < len(s.b) && s.b[s.i] >= '1' && s.b[s.i] <= '9':
		s.digits()
	default:
		return nil, false, s.fail("invalid number")
	}
	if s.i < len(s.b) && s.b[s.i] == '.' {
		isInt = false
		s.i++
		if s.digits() == 0 {
			return nil, false, s.fail("invalid number")
		}
	}
	if s.i < len(s.b) && (s.b[s.i] == 'e' || s.b[s.i] == 'E') {
		isInt = false
		s.i++
		if s.i < len(s.b) && (s.b[s.i] == '+' || s.b[s.i] == '-') {
			s.i++
		}
		if s.digits() == 0 {
			return nil, false, s.fail("invalid number")
		}
	}
	return s.b[start:s.i], isInt, nil
}

func (s *scanner) digits() int {
	n := 0
	for s.i < len(s.b) && s.b[s.i] >= '0' && s.b[s.i] <= '9' {
		s.i++
		n++
	}
	return n
}

// literal consumes true, false or null.
func (s *scanner) literal(word string) error {
	if len(s.b)-s.i < len(word) || string(s.b[s.i:s.i+len(word)]) != word {
		return s.fail("invalid literal")
	}
	s.i += len(word)
	return nil
}

// skip consumes any JSON value, checking its syntax.
func (s *scanner) skip(depth int) error {
	switch s.peek() {
	case '"':
		_, err := s.str()
		return err
	case '{':
		if depth >= maxDepth {
			return s.fail(fmt.Sprintf("nesting deeper than %d", maxDepth))
		}
		s.i++
		if s.peek() == '}' {
			s.i++
			return nil
		}
		for {
			s.ws()
			if _, err := s.str(); err != nil {
				return err
			}
			if err := s.expect(':', "':'"); err != nil {
				return err
			}
			if err := s.skip(depth + 1); err != nil {
				return err
			}
			switch s.peek() {
			case ',':
				s.i++
			case '}':
				s.i++
				return nil
			default:
				return s.fail("expected ',' or '}'")
			}
		}
	case '[':
		if depth >= maxDepth {
			return s.fail(fmt.Sprintf("nesting deeper than %d", maxDepth))
		}
		s.i++
		if s.peek() == ']' {
			s.i++
			return nil
		}
		for {
			if err := s.skip(depth + 1); err != nil {
				return err
			}
			switch s.peek() {
			case ',':
				s.i++
			case ']':
				s.i++
				return nil
			default:
				return s.fail("expected ',' or ']'")
			}
		}
	case 't':
		return s.literal("true")
	case 'f':
		return s.literal("false")
	case 'n':
		return s.literal("null")
	default:
		_, _, err := s.number()
		if err != nil {
			return s.fail("expected a value")
		}
		return nil
	}
}

// kindOf names the JSON kind starting with c, for error messages.
func kindOf(c byte) string {
	switch c {
	case '"':
		return "a string"
	case '{':
		return "an object"
	case '[':
		return "an array"
	case 't', 'f':
		return "a boolean"
	case 'n':
		return "null"
	default:
		return "a number"
	}
}
