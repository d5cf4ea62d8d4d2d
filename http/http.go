// Package http serves Tidings over HTTP: the JSON API of the groupware, long
// polling, server-sent events and WebSocket, all on one delivery loop.
package http

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"math"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/tidings/tidings"
)

// MaxBodyBytes is the largest request body any path accepts.
const MaxBodyBytes = 1 << 20

// bodyReadTimeout bounds how long a client may take to send a request body.
const bodyReadTimeout = 30 * time.Second

// codeStatus maps error codes to HTTP statuses: the only place that does.
var codeStatus = map[string]int{
	tidings.EINVALID:      http.StatusBadRequest,
	tidings.ECURSOR:       http.StatusBadRequest,
	tidings.EUNAUTHORIZED: http.StatusUnauthorized,
	tidings.EFORBIDDEN:    http.StatusForbidden,
	tidings.ENOTFOUND:     http.StatusNotFound,
	tidings.ECONFLICT:     http.StatusConflict,
	tidings.ETOOLARGE:     http.StatusRequestEntityTooLarge,
	tidings.ERATELIMITED:  http.StatusTooManyRequests,
	tidings.EUNAVAILABLE:  http.StatusServiceUnavailable,
	tidings.EINTERNAL:     http.StatusInternalServerError,
}

// ErrorStatus returns the HTTP status of an error's code.
func ErrorStatus(code string) int {
	if s, ok := codeStatus[code]; ok {
		return s
	}
	return http.StatusInternalServerError
}

// errorBody is the JSON shape of every error answer.
type errorBody struct {
	Error errorDetail `json:"error"`
}

type errorDetail struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	Field   string `json:"field,omitempty"`
}

// writeError renders err with the status of its code. Internal errors are
// logged with their detail and answered without it.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	if ended := r.Context().Err(); ended != nil && errors.Is(err, ended) {
		// The client hung up before its answer (or the server gave up on
		// the request when shutting down): nothing failed, and nobody
		// reads an answer.
		s.Logger.Debug("request ended before its answer", "method", r.Method, "path", r.URL.Path, "err", err)
		return
	}
	code := tidings.ErrorCode(err)
	status := ErrorStatus(code)
	if code == tidings.EINTERNAL {
		s.Logger.Error("request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	}
	s.writeErrorStatus(w, status, err)
}

// writeErrorStatus renders err with an explicit status, for the few answers
// whose status is not the code's own (405).
func (s *Server) writeErrorStatus(w http.ResponseWriter, status int, err error) {
	if status == http.StatusServiceUnavailable && w.Header().Get("Retry-After") == "" {
		w.Header().Set("Retry-After", "5")
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, status, errorBody{Error: errorDetail{
		Code:    tidings.ErrorCode(err),
		Message: tidings.ErrorMessage(err),
		Field:   tidings.ErrorField(err),
	}})
}

// writeJSON renders v as the JSON answer.
func writeJSON(w http.ResponseWriter, status int, v any) {
	var buf bytes.Buffer
	if err := json.NewEncoder(&buf).Encode(v); err != nil {
		slog.Error("encode answer", "err", err)
		status = http.StatusInternalServerError
		buf.Reset()
		buf.WriteString(`{"error":{"code":"internal","message":"Internal error."}}` + "\n")
	}
	h := w.Header()
	h["Content-Type"] = jsonContentType
	h["X-Content-Type-Options"] = nosniff
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}

// Header values every answer of their kind has, shared rather than made
// for each: net/http copies them when it writes the header, and Set or Add
// on the same key replaces or reallocates, never writes into them.
var (
	jsonContentType = []string{"application/json; charset=utf-8"}
	nosniff         = []string{"nosniff"}
	sameOrigin      = []string{"same-origin"}
)

// readBody reads the request body, bounded in size and time. An empty body
// gives nil.
func readBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	if r.Body == nil || r.Body == http.NoBody {
		return nil, nil
	}
	rc := http.NewResponseController(w)
	_ = rc.SetReadDeadline(time.Now().Add(bodyReadTimeout))
	defer rc.SetReadDeadline(time.Time{})
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return nil, errTooLarge()
		}
		return nil, tidings.Errorf(tidings.EINVALID, "The request body could not be read.")
	}
	return body, nil
}

func errTooLarge() error {
	return tidings.Errorf(tidings.ETOOLARGE, "The request body is larger than %d bytes.", MaxBodyBytes)
}

// decodeJSON reads a JSON object into v. Unknown fields, malformed JSON,
// invalid UTF-8 and trailing data are refused with a message that names the
// problem and, where there is one, the field.
func decodeJSON(w http.ResponseWriter, r *http.Request, v any) error {
	if ct := r.Header.Get("Content-Type"); ct != "" && ct != "application/json" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || (mt != "application/json" && !strings.HasSuffix(mt, "+json")) {
			return tidings.Errorf(tidings.EINVALID, "The request body must be JSON (Content-Type: application/json), not %q.", ct)
		}
	}
	body, err := readBody(w, r)
	if err != nil {
		return err
	}
	return unmarshalJSON(body, v)
}

// unmarshalJSON is decodeJSON for a body already read.
func unmarshalJSON(body []byte, v any) error {
	if len(bytes.TrimSpace(body)) == 0 {
		return tidings.Errorf(tidings.EINVALID, "The request needs a JSON body.")
	}
	if !utf8.Valid(body) {
		return tidings.Errorf(tidings.EINVALID, "The request body is not valid UTF-8.")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return jsonError(err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return tidings.Errorf(tidings.EINVALID, "The request body has data after its JSON value.")
	}
	return nil
}

// jsonError turns a decoding error into a message a client can act on.
func jsonError(err error) error {
	var syntax *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syntax):
		return tidings.Errorf(tidings.EINVALID, "The request body is not valid JSON (at byte %d).", syntax.Offset)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return tidings.Errorf(tidings.EINVALID, "The request body is not valid JSON: it ends too early.")
	case errors.As(err, &typ):
		if typ.Field == "" {
			return tidings.Errorf(tidings.EINVALID, "The request body must be a JSON object.")
		}
		return tidings.Invalidf(typ.Field, "Field %q must be %s, not %s.", typ.Field, jsonKind(typ.Type.Kind().String()), typ.Value)
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		name := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
		return tidings.Invalidf(name, "Unknown field %q.", name)
	}
	var fe *fieldError
	if errors.As(err, &fe) {
		return fe.err
	}
	var te *tidings.Error
	if errors.As(err, &te) {
		return te
	}
	return tidings.Errorf(tidings.EINVALID, "The request body is not valid JSON: %s.", strings.TrimPrefix(err.Error(), "json: "))
}

func jsonKind(kind string) string {
	switch kind {
	case "string":
		return "a string"
	case "bool":
		return "true or false"
	case "slice", "array":
		return "a list"
	case "struct", "map", "ptr":
		return "an object"
	case "int", "int64", "int32", "uint", "uint64", "float64":
		return "a number"
	}
	return "of another type"
}

// fieldError lets custom JSON decoders report the field they belong to.
type fieldError struct{ err *tidings.Error }

func (e *fieldError) Error() string { return e.err.Error() }

// pathID parses a numeric path value; anything but a canonical decimal id
// (no sign, no leading zero, no exponent, no spaces) is not found.
func pathID(r *http.Request, name, what string) (int64, error) {
	v := r.PathValue(name)
	id, ok := parseDecimal(v, 1, math.MaxInt64)
	if !ok {
		return 0, tidings.Errorf(tidings.ENOTFOUND, "%s %q not found.", what, clipString(v, 40))
	}
	return id, nil
}

// parseDecimal parses s strictly as a canonical decimal integer from lo to
// hi: ASCII digits only, no sign, no leading zero, no spaces, no exponent,
// so that one number has one spelling and nothing after it is ignored.
func parseDecimal(s string, lo, hi int64) (int64, bool) {
	if s == "" || (len(s) > 1 && s[0] == '0') {
		return 0, false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < lo || n > hi {
		return 0, false
	}
	return n, true
}

// queryInt reads an optional integer query parameter from lo to hi; absent
// gives def. Given but empty, given twice, or anything but a canonical
// decimal in range is 400 invalid naming the parameter.
func queryInt(q url.Values, name string, lo, hi, def int64) (int64, error) {
	vs, ok := q[name]
	if !ok {
		return def, nil
	}
	if len(vs) != 1 {
		return 0, tidings.Invalidf(name, "%s must be given once, not %d times.", name, len(vs))
	}
	n, ok := parseDecimal(vs[0], lo, hi)
	if !ok {
		return 0, tidings.Invalidf(name, "%s must be a whole number from %d to %d, not %q.", name, lo, hi, clipString(vs[0], 40))
	}
	return n, nil
}

// list is the shape of every list answer.
type list[T any] struct {
	Items []T     `json:"items"`
	Next  *string `json:"next"`
}

func newList[T any](items []T, next string) list[T] {
	if items == nil {
		items = []T{}
	}
	l := list[T]{Items: items}
	if next != "" {
		l.Next = &next
	}
	return l
}

// pageParams reads limit and after from the query. Without limit the
// store's default page size applies (limit 0).
func pageParams(r *http.Request) (limit int, after string, err error) {
	q := r.URL.Query()
	n, err := queryInt(q, "limit", 1, tidings.MaxPageSize, 0)
	if err != nil {
		return 0, "", err
	}
	return int(n), q.Get("after"), nil
}
