package identity

import (
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"testing"

	"github.com/mosaic-federation/mosaic/gateway/api"
)

const (
	g = "7b0c5a1e-1111-4222-8333-444455556666"
	s = "9d2e6f30-aaaa-4bbb-8ccc-ddddeeeeffff"
)

func ext(oid asn1.ObjectIdentifier, v string, params string) pkix.Extension {
	der, _ := asn1.MarshalWithParams(v, params)
	return pkix.Extension{Id: oid, Value: der}
}

func TestFromCertificate(t *testing.T) {
	good := []pkix.Extension{ext(api.OIDGrantID, g, "utf8"), ext(api.OIDSubjectUserID, s, "utf8")}
	tests := []struct {
		name string
		exts []pkix.Extension
		want error
	}{
		{"both", good, nil},
		{"no grant", good[1:], ErrMissing},
		{"no subject", good[:1], ErrMissing},
		{"printable string, not utf8", []pkix.Extension{ext(api.OIDGrantID, g, "printable"), good[1]}, ErrMalformed},
		{"upper case", []pkix.Extension{ext(api.OIDGrantID, "7B0C5A1E-1111-4222-8333-444455556666", "utf8"), good[1]}, ErrMalformed},
		{"not a uuid", []pkix.Extension{ext(api.OIDGrantID, "grant-1", "utf8"), good[1]}, ErrMalformed},
		{"twice", append(append([]pkix.Extension{}, good...), ext(api.OIDGrantID, g, "utf8")), ErrMalformed},
		{"trailing bytes", []pkix.Extension{{Id: api.OIDGrantID, Value: append(good[0].Value, 0)}, good[1]}, ErrMalformed},
		{"empty value", []pkix.Extension{{Id: api.OIDGrantID, Value: nil}, good[1]}, ErrMalformed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			id, err := FromCertificate(&x509.Certificate{Extensions: tc.exts})
			if !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
			if err == nil && (id.GrantID != g || id.SubjectUserID != s) {
				t.Fatalf("got %+v", id)
			}
		})
	}
}

func TestVerifyIssued(t *testing.T) {
	want := Identity{g, s}
	base := func() *x509.Certificate {
		return &x509.Certificate{Subject: pkix.Name{CommonName: g}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
			Extensions: []pkix.Extension{ext(api.OIDGrantID, g, "utf8"), ext(api.OIDSubjectUserID, s, "utf8")}}
	}
	if err := VerifyIssued(base(), want); err != nil {
		t.Fatal(err)
	}
	bad := map[string]func(*x509.Certificate){
		"other subject": func(c *x509.Certificate) { c.Extensions[1] = ext(api.OIDSubjectUserID, g, "utf8") },
		"other cn":      func(c *x509.Certificate) { c.Subject.CommonName = "home" },
		"server auth":   func(c *x509.Certificate) { c.ExtKeyUsage = append(c.ExtKeyUsage, x509.ExtKeyUsageServerAuth) },
		"a SAN":         func(c *x509.Certificate) { c.DNSNames = []string{"home.example"} },
		"no OIDs":       func(c *x509.Certificate) { c.Extensions = nil },
	}
	for name, mutate := range bad {
		c := base()
		mutate(c)
		if VerifyIssued(c, want) == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
