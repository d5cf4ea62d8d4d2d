package tidings

import "encoding/json"

// Optional is a field of a partial update that can also be set to null:
// left out (Set is false: keep the stored value), set to null (Set is true,
// Value is nil: clear it), or set to a value (Set is true, Value points to
// it). Decoding JSON fills it directly: a key that is absent leaves it unset,
// "key": null sets it to null, any other value sets it to that value.
type Optional[T any] struct {
	Set   bool
	Value *T
}

// SetValue returns an Optional that sets the field to v.
func SetValue[T any](v T) Optional[T] { return Optional[T]{Set: true, Value: &v} }

// SetNull returns an Optional that clears the field.
func SetNull[T any]() Optional[T] { return Optional[T]{Set: true} }

// IsZero reports whether the field is left out, so that the json tag option
// omitzero leaves it out again when encoding.
func (o Optional[T]) IsZero() bool { return !o.Set }

// MarshalJSON writes the value, or null.
func (o Optional[T]) MarshalJSON() ([]byte, error) {
	if o.Value == nil {
		return []byte("null"), nil
	}
	return json.Marshal(*o.Value)
}

// UnmarshalJSON marks the field as given and reads its value; encoding/json
// calls it only for keys that are present, null included.
func (o *Optional[T]) UnmarshalJSON(b []byte) error {
	o.Set = true
	if string(b) == "null" {
		o.Value = nil
		return nil
	}
	var v T
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	o.Value = &v
	return nil
}
