package tier

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// crlDER is a CRL whose next update is at next.
func crlDER(t *testing.T, next time.Time) []byte {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "I"}, NotBefore: time.Now().Add(-time.Hour),
		NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCRLSign | x509.KeyUsageCertSign}
	der, _ := x509.CreateCertificate(rand.Reader, tpl, tpl, &key.PublicKey, key)
	issuer, _ := x509.ParseCertificate(der)
	crl, err := x509.CreateRevocationList(rand.Reader, &x509.RevocationList{Number: big.NewInt(3),
		ThisUpdate: next.Add(-10 * time.Minute), NextUpdate: next}, issuer, key)
	if err != nil {
		t.Fatal(err)
	}
	return crl
}

func TestProbeCA(t *testing.T) {
	fresh, stale := crlDER(t, time.Now().Add(10*time.Minute)), crlDER(t, time.Now().Add(-time.Minute))
	for _, tc := range []struct {
		name    string
		serve   func(w http.ResponseWriter)
		problem string // "" for none
	}{
		{"a fresh CRL", func(w http.ResponseWriter) { _, _ = w.Write(fresh) }, ""},
		{"a CRL past its next update", func(w http.ResponseWriter) { _, _ = w.Write(stale) }, "past its next update"},
		{"no CRL (not enabled)", func(w http.ResponseWriter) { w.WriteHeader(http.StatusNotFound) }, "does not serve its CRL (HTTP 404)"},
		{"not a CRL", func(w http.ResponseWriter) { _, _ = w.Write([]byte("<html>")) }, "not a CRL"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path != "/1.0/crl" {
					http.NotFound(w, r)
					return
				}
				tc.serve(w)
			}))
			defer srv.Close()
			root := filepath.Join(t.TempDir(), "root.pem")
			if err := os.WriteFile(root, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600); err != nil {
				t.Fatal(err)
			}
			svc, problems := probeCA(context.Background(), srv.URL, root)
			switch {
			case tc.problem == "" && (len(problems) != 0 || svc.Status != "up"):
				t.Errorf("%s %v", svc.Status, problems)
			case tc.problem != "" && (len(problems) != 1 || !strings.Contains(problems[0], tc.problem)):
				t.Errorf("problems %v, want one saying %q", problems, tc.problem)
			}
		})
	}
	// The CA down: the message names it and what to do.
	srv := httptest.NewTLSServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close()
	root := filepath.Join(t.TempDir(), "root.pem")
	_ = os.WriteFile(root, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600)
	if svc, problems := probeCA(context.Background(), url, root); svc.Status != "down" || len(problems) != 1 ||
		!strings.Contains(problems[0], "connection refused") || !strings.Contains(problems[0], "start step-ca") {
		t.Errorf("the CA down: %s %v", svc.Status, problems)
	}
}
