package tidings

import (
	"errors"
	"fmt"
)

// Error codes. Each maps to one HTTP status in the http package and is the
// "code" of an error answer.
const (
	EINVALID      = "invalid"        // the request is malformed or a field is wrong
	ECURSOR       = "invalid_cursor" // the cursor is malformed or from another database
	EUNAUTHORIZED = "unauthorized"   // no or wrong credentials
	EFORBIDDEN    = "forbidden"      // authenticated, but not allowed
	ENOTFOUND     = "not_found"      // missing, or not visible to the caller
	ECONFLICT     = "conflict"       // the change contradicts what is stored
	ETOOLARGE     = "too_large"      // the request body exceeds the limit
	ERATELIMITED  = "rate_limited"   // too many attempts; try again later
	EUNAVAILABLE  = "unavailable"    // shutting down or the database is away
	EINTERNAL     = "internal"       // a bug or an unexpected failure
)

// Error is the domain error: a code, a message safe to show a user, and the
// JSON field it concerns, if any. Anything that is not an *Error is internal.
type Error struct {
	Code    string
	Message string
	Field   string
}

// Error implements the error interface.
func (e *Error) Error() string {
	if e.Field != "" {
		return fmt.Sprintf("tidings error: code=%s field=%s message=%s", e.Code, e.Field, e.Message)
	}
	return fmt.Sprintf("tidings error: code=%s message=%s", e.Code, e.Message)
}

// Errorf returns an *Error with the given code and a formatted message.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// Invalidf returns an EINVALID error about one field.
func Invalidf(field, format string, args ...any) *Error {
	return &Error{Code: EINVALID, Field: field, Message: fmt.Sprintf(format, args...)}
}

// ErrorCode returns the code of the *Error in err's chain, EINTERNAL for any
// other error, and "" for nil.
func ErrorCode(err error) string {
	if err == nil {
		return ""
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return EINTERNAL
}

// ErrorMessage returns the user-facing message of err; internal errors get a
// generic text so that no detail leaks.
func ErrorMessage(err error) string {
	if err == nil {
		return ""
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Message
	}
	return "Internal error."
}

// ErrorField returns the field an *Error in err's chain concerns, or "".
func ErrorField(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Field
	}
	return ""
}
