package fedserver

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"net"
	"testing"
	"time"

	"github.com/mosaic-federation/mosaic/gateway/api"
)

func csr(t *testing.T, key crypto.Signer, tpl *x509.CertificateRequest) string {
	t.Helper()
	der, err := x509.CreateCertificateRequest(rand.Reader, tpl, key)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}))
}

func TestCheckCSR(t *testing.T) {
	p256, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	p224, _ := ecdsa.GenerateKey(elliptic.P224(), rand.Reader)
	_, ed, _ := ed25519.GenerateKey(rand.Reader)
	rsa1024, _ := rsa.GenerateKey(rand.Reader, 1024)
	oid, _ := asn1.Marshal("x")
	tests := []struct {
		name string
		csr  string
		ok   bool
	}{
		{"p256, empty", csr(t, p256, &x509.CertificateRequest{}), true},
		{"ed25519", csr(t, ed, &x509.CertificateRequest{}), true},
		{"p224", csr(t, p224, &x509.CertificateRequest{}), false},
		{"rsa 1024", csr(t, rsa1024, &x509.CertificateRequest{}), false},
		{"a SAN", csr(t, p256, &x509.CertificateRequest{IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}}), false},
		{"a subject (ignored)", csr(t, p256, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "x", Organization: []string{"o"}}}), true},
		{"an email SAN", csr(t, p256, &x509.CertificateRequest{EmailAddresses: []string{"a@b.example"}}), false},
		{"bad signature", badSignature(t, csr(t, p256, &x509.CertificateRequest{})), false},
		{"grant OID", csr(t, p256, &x509.CertificateRequest{ExtraExtensions: []pkix.Extension{{Id: api.OIDGrantID, Value: oid}}}), false},
		{"two blocks", csr(t, p256, &x509.CertificateRequest{}) + csr(t, p256, &x509.CertificateRequest{}), false},
		{"garbage", "hello", false},
	}
	for _, tc := range tests {
		if _, err := checkCSR(tc.csr); (err == nil) != tc.ok {
			t.Errorf("%s: err = %v, want ok=%v", tc.name, err, tc.ok)
		}
	}
}

// badSignature flips a bit in the CSR's signature, leaving it parseable.
func badSignature(t *testing.T, p string) string {
	t.Helper()
	block, _ := pem.Decode([]byte(p))
	block.Bytes[len(block.Bytes)-1] ^= 1
	return string(pem.EncodeToMemory(block))
}

func TestNotAfterIsTheLifetimeCappedAtTheGrantsExpiry(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		name    string
		expires time.Time
		want    time.Time
	}{
		{"grant outlives the lifetime", now.Add(90 * 24 * time.Hour), now.Add(24 * time.Hour)},
		{"grant ends first", now.Add(time.Hour), now.Add(time.Hour)},
	}
	for _, tc := range tests {
		if got := notAfterFor(now, 24*time.Hour, tc.expires); !got.Equal(tc.want) {
			t.Errorf("%s: got %s, want %s", tc.name, got, tc.want)
		}
	}
}
