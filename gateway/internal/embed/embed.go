// Package embed turns text into vectors. The built-in embedder is deterministic
// feature hashing (so search works offline and tests are repeatable); an
// OpenAI-compatible HTTP embedder is the other option.
package embed

import (
	"context"
	"hash/fnv"
	"math"
	"strings"
	"unicode"
)

// Dims is the width of every embedding the store keeps (SPEC §5: vector(256)).
const Dims = 256

// Embedder maps text to a Dims-wide, L2-normalised vector.
type Embedder interface {
	Embed(ctx context.Context, text string) ([]float32, error)
}

// Hashing is the feature-hashing embedder: each lower-cased word and each pair of
// adjacent words adds ±1 to the bucket its FNV-1a hash picks; the sign comes from
// another bit of the hash so collisions tend to cancel rather than pile up.
type Hashing struct{}

func (Hashing) Embed(_ context.Context, text string) ([]float32, error) {
	return HashVector(text), nil
}

// HashVector is Hashing's function, usable without a context.
func HashVector(text string) []float32 {
	v := make([]float32, Dims)
	words := strings.FieldsFunc(strings.ToLower(text), func(r rune) bool {
		return !unicode.IsLetter(r) && !unicode.IsDigit(r)
	})
	add := func(feature string, weight float32) {
		h := fnv.New64a()
		h.Write([]byte(feature))
		sum := h.Sum64()
		sign := float32(1)
		if sum>>63 == 1 {
			sign = -1
		}
		v[sum%Dims] += sign * weight
	}
	for i, w := range words {
		add(w, 1)
		if i > 0 {
			add(words[i-1]+" "+w, 0.5)
		}
	}
	var norm float64
	for _, x := range v {
		norm += float64(x) * float64(x)
	}
	if norm == 0 {
		return v
	}
	inv := float32(1 / math.Sqrt(norm))
	for i := range v {
		v[i] *= inv
	}
	return v
}
