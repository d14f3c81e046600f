package peers

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"math/big"
	"testing"
	"time"

	"github.com/mosaic-federation/mosaic/gateway/api"
	"github.com/mosaic-federation/mosaic/gateway/internal/fedclient"
)

func certUntil(t *testing.T, notAfter time.Time) string {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tpl := &x509.Certificate{SerialNumber: big.NewInt(1), NotBefore: notAfter.Add(-time.Hour), NotAfter: notAfter}
	der, err := x509.CreateCertificate(rand.Reader, tpl, tpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
}

// A peer whose certificate expired answers certificate_expired to every call, without
// calling; one not yet expired, or a certificate that does not parse, is not.
func TestAnExpiredCertificateIsCertificateExpired(t *testing.T) {
	now := time.Now()
	for _, tc := range []struct {
		name string
		pem  string
		want bool
	}{
		{"expired", certUntil(t, now.Add(-time.Second)), true},
		{"at its notAfter", certUntil(t, now.Truncate(time.Second)), true},
		{"valid", certUntil(t, now.Add(time.Minute)), false},
		{"no certificate", "", false},
	} {
		if got := expiredAt(tc.pem, now); got != tc.want {
			t.Errorf("%s: expired %v, want %v", tc.name, got, tc.want)
		}
	}
	p := unusable{name: "work", code: api.CodeCertificateExpired}
	ctx := context.Background()
	_, errList := p.List(ctx, "tasks", api.FedListRequest{})
	_, errGet := p.Get(ctx, "tasks", "x")
	_, errSearch := p.Search(ctx, "notes", api.SearchRequest{})
	for _, err := range []error{errList, errGet, errSearch} {
		if fedclient.Code(err) != api.CodeCertificateExpired {
			t.Errorf("got %v, want certificate_expired", err)
		}
	}
}
