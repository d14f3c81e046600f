package identity

import (
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"testing"

	"github.com/google/uuid"

	"github.com/mosaic-federation/mosaic/gateway/api"
)

// FuzzFromCertificate feeds both extensions' raw values (and a duplicate) to the
// extraction: never a panic, and what it accepts is exactly one DER UTF8String of a
// canonical lowercase UUID per OID, re-encoded byte for byte.
func FuzzFromCertificate(f *testing.F) {
	good := func(v string) []byte { der, _ := asn1.MarshalWithParams(v, "utf8"); return der }
	printable, _ := asn1.MarshalWithParams(g, "printable")
	f.Add(good(g), good(s), false)
	f.Add(good(g), good(s), true)
	f.Add(printable, good(s), false)
	f.Add(good("7B0C5A1E-1111-4222-8333-444455556666"), good(s), false)
	f.Add(append(good(g), 0), good(s), false)
	f.Add([]byte{asn1.TagUTF8String, 0x81, 36}, good(s), false) // non-minimal length
	f.Add([]byte{}, good(s), false)
	f.Fuzz(func(t *testing.T, grant, subject []byte, dup bool) {
		exts := []pkix.Extension{{Id: api.OIDGrantID, Value: grant}, {Id: api.OIDSubjectUserID, Value: subject}}
		if dup {
			exts = append(exts, pkix.Extension{Id: api.OIDGrantID, Value: grant})
		}
		id, err := FromCertificate(&x509.Certificate{Extensions: exts})
		if err != nil {
			return
		}
		if dup {
			t.Fatal("accepted a grant OID that appears twice")
		}
		for _, c := range []struct {
			v   string
			raw []byte
		}{{id.GrantID, grant}, {id.SubjectUserID, subject}} {
			if u, err := uuid.Parse(c.v); err != nil || u.String() != c.v {
				t.Fatalf("accepted %q: not a canonical lowercase UUID", c.v)
			}
			if string(good(c.v)) != string(c.raw) {
				t.Fatalf("accepted %x for %q: not its DER UTF8String", c.raw, c.v)
			}
		}
	})
}
