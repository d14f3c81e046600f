package apitoken

import "testing"

func TestNewIsWellFormedAndUnique(t *testing.T) {
	a, _ := New()
	b, _ := New()
	if a == b || !WellFormed(a) || !WellFormed(b) {
		t.Fatalf("%q %q", a, b)
	}
	for _, bad := range []string{"", "mos_", "abc", a + "x", "xxx_" + a[4:], a[:len(a)-1] + "!"} {
		if WellFormed(bad) {
			t.Errorf("accepted %q", bad)
		}
	}
	if string(Hash(a)) == string(Hash(b)) || len(Hash(a)) != 32 {
		t.Fatal("hash")
	}
}
