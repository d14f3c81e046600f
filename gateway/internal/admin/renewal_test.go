package admin

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/mosaic-federation/mosaic/gateway/api"
	"github.com/mosaic-federation/mosaic/gateway/internal/fedstore"
)

func certPEMUntil(t *testing.T, notAfter time.Time) string {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tpl := &x509.Certificate{SerialNumber: big.NewInt(7), NotBefore: notAfter.Add(-3 * time.Minute), NotAfter: notAfter}
	der, err := x509.CreateCertificate(rand.Reader, tpl, tpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
}

// peer list shows an outbound peer's not_after, renew_at and last renewal failure; an
// expired certificate is certificate_expired with its fix whatever the renewer did.
func TestPeerListShowsTheRenewal(t *testing.T) {
	now := time.Now()
	live, expired := certPEMUntil(t, now.Add(time.Minute)), certPEMUntil(t, now.Add(-time.Second))
	for _, tc := range []struct {
		name      string
		p         fedstore.Peer
		st        fedstore.RenewalState
		wantTimes bool
		wantError string
	}{
		{"inbound", fedstore.Peer{Direction: "inbound"}, fedstore.RenewalState{}, false, ""},
		{"outbound", fedstore.Peer{Direction: "outbound", CertPEM: live}, fedstore.RenewalState{}, true, ""},
		{"outbound, failing", fedstore.Peer{Direction: "outbound", CertPEM: live}, fedstore.RenewalState{Error: "unreachable: x"}, true, "unreachable: x"},
		{"outbound, expired", fedstore.Peer{Direction: "outbound", CertPEM: expired}, fedstore.RenewalState{Error: "unreachable: x"}, true, api.CodeCertificateExpired + ": "},
	} {
		got := withRenewal(api.Peer{}, tc.p, tc.st, now)
		if (got.NotAfter != nil) != tc.wantTimes || (got.RenewAt != nil) != tc.wantTimes {
			t.Errorf("%s: not_after %v renew_at %v", tc.name, got.NotAfter, got.RenewAt)
		}
		if tc.wantTimes && !got.RenewAt.Before(*got.NotAfter) {
			t.Errorf("%s: renew_at %v is not before not_after %v", tc.name, got.RenewAt, got.NotAfter)
		}
		if !strings.HasPrefix(got.RenewalError, tc.wantError) || (tc.wantError == "") != (got.RenewalError == "") {
			t.Errorf("%s: renewal_error %q, want %q…", tc.name, got.RenewalError, tc.wantError)
		}
	}
}
