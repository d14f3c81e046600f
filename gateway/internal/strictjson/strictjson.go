// Package strictjson decodes one JSON document strictly, the way every request body
// and document the gateway accepts is read: unknown members, duplicate member names,
// invalid UTF-8, trailing data and values of the wrong type are refused, and the error
// names the member (a JSON pointer) and what was expected in the project's own words,
// never a Go type. It is encoding/json/v2's semantics through go-json-experiment/json,
// which the standard library has only behind GOEXPERIMENT=jsonv2 in this Go.
package strictjson

import (
	"errors"
	"fmt"
	"io"
	"reflect"
	"strings"
	"time"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
)

// Error says where a document is wrong and how.
type Error struct {
	Pointer string // RFC 6901 pointer of the member, "" for the whole document
	Problem string
}

func (e *Error) Error() string {
	if e.Pointer == "" {
		return "the body " + e.Problem
	}
	return fmt.Sprintf("field %q %s", e.Pointer, e.Problem)
}

// Decode reads exactly one JSON value from r into v (a pointer). A failure of r
// itself (a body over its limit, say) is returned as it is, for the caller to map.
func Decode(r io.Reader, v any) error {
	rr := &reader{r: r}
	err := json.UnmarshalRead(rr, v, json.RejectUnknownMembers(true))
	switch {
	case err == nil:
		return nil
	case rr.err != nil && !errors.Is(rr.err, io.EOF):
		return rr.err
	case rr.n == 0:
		return &Error{Problem: "is empty: send a JSON object"}
	}
	return explain(err)
}

// reader remembers how much it read and how reading ended.
type reader struct {
	r   io.Reader
	n   int64
	err error
}

func (r *reader) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	r.n += int64(n)
	if err != nil {
		r.err = err
	}
	return n, err
}

// explain turns a decoding error into an *Error naming the member.
func explain(err error) error {
	var sem *json.SemanticError
	var syn *jsontext.SyntacticError
	switch {
	case errors.As(err, &sem):
		p := string(sem.JSONPointer)
		switch {
		case errors.Is(sem.Err, json.ErrUnknownName):
			return &Error{Pointer: p, Problem: "is not a known field"}
		}
		return &Error{Pointer: p, Problem: "must be " + expected(sem.GoType)}
	case errors.As(err, &syn):
		p := string(syn.JSONPointer)
		switch {
		case errors.Is(syn.Err, jsontext.ErrDuplicateName):
			return &Error{Pointer: p, Problem: "appears more than once"}
		case errors.Is(syn.Err, io.ErrUnexpectedEOF):
			return &Error{Problem: "ends before the JSON value does"}
		case strings.Contains(syn.Error(), "after top-level value"):
			return &Error{Problem: "holds more than one JSON value"}
		case strings.Contains(syn.Error(), "invalid UTF-8"):
			return &Error{Pointer: p, Problem: "is not valid UTF-8"}
		}
		return &Error{Problem: fmt.Sprintf("is not valid JSON (at byte %d)", syn.ByteOffset)}
	case errors.Is(err, io.ErrUnexpectedEOF):
		return &Error{Problem: "ends before the JSON value does"}
	}
	return &Error{Problem: "is not valid JSON"}
}

var timeType = reflect.TypeFor[time.Time]()

// expected names what a Go type accepts, in JSON's words.
func expected(t reflect.Type) string {
	if t == nil {
		return "a value of another kind"
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == timeType {
		return "an RFC 3339 time as a string"
	}
	switch t.Kind() {
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "a whole number"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.String:
		return "a string"
	case reflect.Slice, reflect.Array:
		return "an array"
	case reflect.Struct, reflect.Map:
		return "a JSON object"
	}
	return "a value of another kind"
}
