package guard

import (
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"testing"

	"github.com/mosaic-federation/mosaic/gateway/api"
)

func provExt(t *testing.T, typ int, name string, trailing bool) pkix.Extension {
	t.Helper()
	der, err := asn1.Marshal(struct {
		Type         int
		Name         []byte
		CredentialID []byte
	}{typ, []byte(name), []byte("kid")})
	if err != nil {
		t.Fatal(err)
	}
	if trailing {
		der = append(der, 0)
	}
	return pkix.Extension{Id: api.OIDStepProvisioner, Value: der}
}

func TestProvisionerOf(t *testing.T) {
	tests := []struct {
		name string
		exts []pkix.Extension
		want string
	}{
		{"jwk federation", []pkix.Extension{provExt(t, 1, "federation", false)}, "federation/kid"},
		{"another type", []pkix.Extension{provExt(t, 2, "federation", false)}, ""},
		{"trailing bytes", []pkix.Extension{provExt(t, 1, "federation", true)}, ""},
		{"garbage", []pkix.Extension{{Id: api.OIDStepProvisioner, Value: []byte{1, 2, 3}}}, ""},
		{"absent", nil, ""},
	}
	for _, tc := range tests {
		name, kid := provisionerOf(&x509.Certificate{Extensions: tc.exts})
		got := name
		if kid != "" {
			got += "/" + kid
		}
		if got != tc.want {
			t.Errorf("%s: got %q, want %q", tc.name, got, tc.want)
		}
	}
}
