package natsq

import (
	"encoding/json"
	"strconv"
)

// A Codec turns job values into message payloads and back. Implementations
// must be safe for concurrent use: the consumer decodes on every worker at
// once.
type Codec[T any] interface {
	Encode(v T) ([]byte, error)
	Decode(data []byte) (T, error)
}

// JSON is the default [Codec]: encoding/json.
type JSON[T any] struct{}

// Encode returns the JSON encoding of v.
func (JSON[T]) Encode(v T) ([]byte, error) { return json.Marshal(v) }

// Decode parses JSON data into a new T.
func (JSON[T]) Decode(data []byte) (T, error) {
	var v T
	err := json.Unmarshal(data, &v)
	return v, err
}

// Raw is a [Codec] for []byte jobs that passes payloads through unchanged.
// Decode returns the message's own buffer, which the handler may keep.
type Raw struct{}

// Encode returns v itself.
func (Raw) Encode(v []byte) ([]byte, error) { return v, nil }

// Decode returns data itself.
func (Raw) Decode(data []byte) ([]byte, error) { return data, nil }

var (
	_ Codec[struct{}] = JSON[struct{}]{}
	_ Codec[[]byte]   = Raw{}
)

func uitoa(n uint64) string { return strconv.FormatUint(n, 10) }
