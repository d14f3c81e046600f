package acceptance

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"os"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
)

// rootPool holds the one root certificate of a PEM file.
func rootPool(path string) *x509.CertPool {
	GinkgoHelper()
	b, err := os.ReadFile(path)
	Expect(err).NotTo(HaveOccurred())
	pool := x509.NewCertPool()
	Expect(pool.AppendCertsFromPEM(b)).To(BeTrue())
	return pool
}

// keyAndCSR makes a fresh P-256 key and a PEM CSR for it from a template.
func keyAndCSR(tpl *x509.CertificateRequest) (*ecdsa.PrivateKey, string) {
	GinkgoHelper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	Expect(err).NotTo(HaveOccurred())
	der, err := x509.CreateCertificateRequest(rand.Reader, tpl, key)
	Expect(err).NotTo(HaveOccurred())
	return key, string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}))
}

// csrWith makes a CSR from a template (with a fresh key).
func csrWith(tpl *x509.CertificateRequest) string {
	GinkgoHelper()
	_, csr := keyAndCSR(tpl)
	return csr
}

// newCSR makes a CSR with an empty subject and no SANs, plus any extra extensions.
func newCSR(extra ...pkix.Extension) string {
	GinkgoHelper()
	return csrWith(&x509.CertificateRequest{ExtraExtensions: extra})
}

func utf8Ext(oid asn1.ObjectIdentifier, value string) pkix.Extension {
	GinkgoHelper()
	der, err := asn1.MarshalWithParams(value, "utf8")
	Expect(err).NotTo(HaveOccurred())
	return pkix.Extension{Id: oid, Value: der}
}

// pemDER is the DER of the first PEM block of b.
func pemDER(b []byte) []byte {
	GinkgoHelper()
	block, _ := pem.Decode(b)
	Expect(block).NotTo(BeNil())
	return block.Bytes
}

// pemChain is the DER of every PEM block of p, in order.
func pemChain(p string) [][]byte {
	var chain [][]byte
	for rest := []byte(p); ; {
		var block *pem.Block
		if block, rest = pem.Decode(rest); block == nil {
			return chain
		}
		chain = append(chain, block.Bytes)
	}
}

func parsePEMCert(p string) *x509.Certificate {
	GinkgoHelper()
	c, err := x509.ParseCertificate(pemDER([]byte(p)))
	Expect(err).NotTo(HaveOccurred())
	return c
}

// extValues returns the UTF8String values of every extension with the given OID.
func extValues(cert *x509.Certificate, oid asn1.ObjectIdentifier) []string {
	GinkgoHelper()
	var vals []string
	for _, e := range cert.Extensions {
		if e.Id.Equal(oid) {
			Expect(e.Value[0]).To(Equal(byte(asn1.TagUTF8String)), "extension %s is not a UTF8String", oid)
			var v string
			_, err := asn1.UnmarshalWithParams(e.Value, &v, "utf8")
			Expect(err).NotTo(HaveOccurred())
			vals = append(vals, v)
		}
	}
	return vals
}
