package fedserver

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"net"
	"testing"

	"github.com/mosaic-federation/mosaic/gateway/api"
)

// FuzzCheckCSR sends random csr_pem values to the enrollment's CSR check: never a
// panic, and a CSR it lets through is one PEM CERTIFICATE REQUEST that parses, whose
// signature verifies, with an acceptable key, no SANs and no reserved extension.
func FuzzCheckCSR(f *testing.F) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		f.Fatal(err)
	}
	csr := func(tpl *x509.CertificateRequest) string {
		der, err := x509.CreateCertificateRequest(rand.Reader, tpl, key)
		if err != nil {
			f.Fatal(err)
		}
		return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}))
	}
	utf8, _ := asn1.MarshalWithParams("7b0c5a1e-1111-4222-8333-444455556666", "utf8")
	good := csr(&x509.CertificateRequest{Subject: pkix.Name{CommonName: "anything"}})
	f.Add(good)
	f.Add(good + good)
	f.Add(good + "trailing")
	f.Add(csr(&x509.CertificateRequest{DNSNames: []string{"evil.example"}}))
	f.Add(csr(&x509.CertificateRequest{IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}}))
	f.Add(csr(&x509.CertificateRequest{ExtraExtensions: []pkix.Extension{{Id: api.OIDGrantID, Value: utf8}}}))
	f.Add(csr(&x509.CertificateRequest{ExtraExtensions: []pkix.Extension{{Id: api.OIDStepProvisioner, Value: utf8}}}))
	f.Add(string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte{0x30, 0}})))
	f.Add("")
	f.Fuzz(func(t *testing.T, p string) {
		out, err := checkCSR(p)
		if err != nil {
			return
		}
		block, rest := pem.Decode(out)
		if block == nil || block.Type != "CERTIFICATE REQUEST" || len(rest) != 0 {
			t.Fatalf("accepted, but returned %q", out)
		}
		c, err := x509.ParseCertificateRequest(block.Bytes)
		if err != nil || c.CheckSignature() != nil {
			t.Fatalf("accepted a CSR that does not parse or verify: %v", err)
		}
		if !acceptableKey(c.PublicKey) || len(c.DNSNames)+len(c.IPAddresses)+len(c.URIs)+len(c.EmailAddresses) > 0 {
			t.Fatal("accepted a CSR with a refused key or SANs")
		}
		for _, e := range c.Extensions {
			for _, oid := range reservedOIDs {
				if e.Id.Equal(oid) {
					t.Fatalf("accepted a CSR with the reserved extension %s", oid)
				}
			}
		}
	})
}
