package embed

import (
	"math"
	"testing"
)

func dot(a, b []float32) float64 {
	var s float64
	for i := range a {
		s += float64(a[i]) * float64(b[i])
	}
	return s
}

func TestHashVector(t *testing.T) {
	a := HashVector("Renew the TLS certificates before Friday")
	if len(a) != Dims {
		t.Fatalf("dims %d", len(a))
	}
	if n := dot(a, a); math.Abs(n-1) > 1e-5 {
		t.Fatalf("not normalised: %v", n)
	}
	b := HashVector("renew the tls certificates before friday!")
	if dot(a, b) < 0.9999 {
		t.Error("case and punctuation changed the vector")
	}
	near := HashVector("renew TLS certificates")
	far := HashVector("buy oat milk and bread")
	if dot(a, near) <= dot(a, far) {
		t.Errorf("similar text not closer: %v vs %v", dot(a, near), dot(a, far))
	}
	if z := HashVector("  ...  "); dot(z, z) != 0 {
		t.Error("empty text should give the zero vector")
	}
}
