package fedclient

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/json"
	"encoding/pem"
	"errors"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/mosaic-federation/mosaic/gateway/api"
)

const (
	renewGrant   = "7b0c5a1e-1111-4222-8333-444455556666"
	renewSubject = "9d2e6f30-aaaa-4bbb-8ccc-ddddeeeeffff"
)

// testCA signs client certificates for CSRs, as the serving site's step-ca would.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
}

func newTestCA(t *testing.T) testCA {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "root"}, IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tpl, tpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return testCA{cert: cert, key: key}
}

func utf8(t *testing.T, oid asn1.ObjectIdentifier, v string) pkix.Extension {
	t.Helper()
	der, err := asn1.MarshalWithParams(v, "utf8")
	if err != nil {
		t.Fatal(err)
	}
	return pkix.Extension{Id: oid, Value: der}
}

// issue answers a renewal's CSR with a certificate for its key binding grantID.
func (ca testCA) issue(t *testing.T, csrPEM, grantID string) string {
	t.Helper()
	block, _ := pem.Decode([]byte(csrPEM))
	csr, err := x509.ParseCertificateRequest(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	tpl := &x509.Certificate{SerialNumber: big.NewInt(42), Subject: pkix.Name{CommonName: grantID},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, NotBefore: time.Now().Add(-time.Minute), NotAfter: time.Now().Add(time.Hour),
		ExtraExtensions: []pkix.Extension{utf8(t, api.OIDGrantID, grantID), utf8(t, api.OIDSubjectUserID, renewSubject)}}
	der, err := x509.CreateCertificate(rand.Reader, tpl, ca.cert, csr.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
}

// Renew returns the certificate only when it chains to the pinned roots, is for the
// new key and binds our grant; a refusal is the peer's code alone.
func TestRenewChecksTheAnswer(t *testing.T) {
	ca := newTestCA(t)
	for _, tc := range []struct {
		name   string
		answer func(t *testing.T, req api.RenewRequest) (int, any)
		code   string // a PeerError's code; "" with ok false: another error
		ok     bool
	}{
		{"renewed", func(t *testing.T, req api.RenewRequest) (int, any) {
			return 201, api.EnrollResponse{GrantID: renewGrant, CertificatePEM: ca.issue(t, req.CSRPEM, renewGrant)}
		}, "", true},
		{"refused", func(*testing.T, api.RenewRequest) (int, any) {
			return 403, map[string]any{"error": map[string]any{"code": "grant_revoked", "message": "anything the peer says"}}
		}, api.CodeGrantRevoked, false},
		{"another grant named", func(t *testing.T, req api.RenewRequest) (int, any) {
			other := "11111111-1111-4111-8111-111111111111" // named and bound alike: only our grant id tells
			return 201, api.EnrollResponse{GrantID: other, CertificatePEM: ca.issue(t, req.CSRPEM, other)}
		}, "", false},
		{"another grant bound", func(t *testing.T, req api.RenewRequest) (int, any) {
			return 201, api.EnrollResponse{GrantID: renewGrant, CertificatePEM: ca.issue(t, req.CSRPEM, "11111111-1111-4111-8111-111111111111")}
		}, "", false},
		{"not our key", func(t *testing.T, _ api.RenewRequest) (int, any) {
			other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
			der, _ := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{}, other)
			return 201, api.EnrollResponse{GrantID: renewGrant, CertificatePEM: ca.issue(t, string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der})), renewGrant)}
		}, "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var gotID string
			srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				gotID = r.Header.Get("X-Request-Id")
				var req api.RenewRequest
				if r.URL.Path != RenewPath || json.NewDecoder(r.Body).Decode(&req) != nil {
					w.WriteHeader(http.StatusBadRequest)
					return
				}
				status, body := tc.answer(t, req)
				w.WriteHeader(status)
				_ = json.NewEncoder(w).Encode(body)
			}))
			defer srv.Close()
			roots := x509.NewCertPool()
			roots.AddCert(srv.Certificate())
			roots.AddCert(ca.cert)
			ctx := WithRequestID(context.Background(), "rid-1")
			got, err := Renew(ctx, "work", srv.URL, roots, &tls.Certificate{}, renewGrant)
			var pe *PeerError
			switch {
			case tc.ok && (err != nil || got.GrantID != renewGrant || got.Key == nil):
				t.Fatalf("renewal refused: %v", err)
			case !tc.ok && err == nil:
				t.Fatal("an answer that fails the checks was accepted")
			case tc.code != "" && (!errors.As(err, &pe) || pe.Code != tc.code || pe.Status != 403):
				t.Fatalf("got %v, want the peer's code %s", err, tc.code)
			case err != nil && (strings.Contains(err.Error(), "anything the peer says") || strings.Contains(err.Error(), "11111111")):
				t.Fatalf("the error quotes the peer: %v", err)
			}
			if gotID != "rid-1" {
				t.Errorf("X-Request-Id %q", gotID)
			}
		})
	}
}
