package acceptance

import (
	"bytes"
	"crypto/x509"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/mosaic-federation/mosaic/harness/world"
)

// Until the gateway's CA client exists, specs mint step-ca one-time tokens with the
// real `step crypto jwt sign`, using the federation provisioner's encrypted key from
// ca.json; top-level claims come from the JSON payload on its stdin.
func mintToken(s world.SiteInfo, claims map[string]any) string {
	GinkgoHelper()
	return mintTokenWith(s, world.FederationProvisioner, claims)
}

// mintTokenWith mints a one-time token with one of the CA's JWK provisioners.
func mintTokenWith(s world.SiteInfo, provisioner string, claims map[string]any) string {
	GinkgoHelper()
	sub, _ := claims["grant_id"].(string)
	if sub == "" {
		sub = uuid.NewString()
	}
	return mintTokenFor(s, provisioner, "/1.0/sign", sub, claims)
}

// revokeAtCA revokes a certificate at a site's step-ca directly, as an operator with
// the provisioner's password would (passive revocation with a one-time token whose
// subject is the decimal serial), behind the gateway's back.
func revokeAtCA(s world.SiteInfo, serial string) {
	GinkgoHelper()
	ott := mintTokenFor(s, world.FederationProvisioner, "/1.0/revoke", serial, map[string]any{})
	var out struct {
		Status  string `json:"status"`
		Message string `json:"message"`
	}
	status := call(http.MethodPost, s.CAURL+"/1.0/revoke", &out, via(mtlsClient(s, nil)),
		jsonBody(map[string]any{"serial": serial, "ott": ott, "reasonCode": 1, "passive": true}))
	Expect(status).To(Equal(http.StatusOK), out.Message)
}

// crlSerials fetches a site's CRL from its step-ca (DER), checks it is signed by the
// site's intermediate, and returns the serials it lists (decimal).
func crlSerials(s world.SiteInfo) []string {
	GinkgoHelper()
	resp, err := send(http.MethodGet, s.CAURL+"/1.0/crl", via(mtlsClient(s, nil)))
	Expect(err).NotTo(HaveOccurred())
	defer resp.Body.Close()
	Expect(resp.StatusCode).To(Equal(http.StatusOK))
	der, err := io.ReadAll(resp.Body)
	Expect(err).NotTo(HaveOccurred())
	crl, err := x509.ParseRevocationList(der)
	Expect(err).NotTo(HaveOccurred())
	intermediate, err := x509.ParseCertificate(intermediateOf(s))
	Expect(err).NotTo(HaveOccurred())
	Expect(crl.CheckSignatureFrom(intermediate)).To(Succeed(), "the CRL is signed by the intermediate")
	var serials []string
	for _, e := range crl.RevokedCertificateEntries {
		serials = append(serials, e.SerialNumber.String())
	}
	return serials
}

// mintTokenFor mints a one-time token of a provisioner for one of step-ca's endpoints.
func mintTokenFor(s world.SiteInfo, provisioner, endpoint, sub string, claims map[string]any) string {
	GinkgoHelper()
	encryptedKey, kid := provisionerOf(s, provisioner)
	keyFile := filepath.Join(GinkgoT().TempDir(), "provisioner.jwe")
	Expect(os.WriteFile(keyFile, []byte(encryptedKey), 0o600)).To(Succeed())

	payload, err := json.Marshal(claims)
	Expect(err).NotTo(HaveOccurred())
	now := time.Now()
	out, err := output(bytes.NewReader(payload), filepath.Join(the.BinDir, "step"), "crypto", "jwt", "sign",
		"--key", keyFile, "--password-file", s.ProvisionerPasswordFile, "--kid", kid,
		"--iss", provisioner, "--aud", s.CAURL+endpoint, "--sub", sub,
		"--nbf", strconv.FormatInt(now.Unix(), 10), "--exp", strconv.FormatInt(now.Add(5*time.Minute).Unix(), 10),
		"--jti", uuid.NewString())
	Expect(err).NotTo(HaveOccurred(), "step crypto jwt sign")
	return string(bytes.TrimSpace(out))
}

// provisionerOf reads a JWK provisioner's encrypted key and key id from the CA's
// configuration (the key id is public; the key opens only with the password).
func provisionerOf(s world.SiteInfo, name string) (encryptedKey, kid string) {
	GinkgoHelper()
	// step-ca's ca.json, not a gateway type.
	var cfg struct {
		Authority struct {
			Provisioners []struct {
				Name         string `json:"name"`
				EncryptedKey string `json:"encryptedKey"`
				Key          struct {
					Kid string `json:"kid"`
				} `json:"key"`
			} `json:"provisioners"`
		} `json:"authority"`
	}
	b, err := os.ReadFile(s.CAConfig)
	Expect(err).NotTo(HaveOccurred())
	Expect(json.Unmarshal(b, &cfg)).To(Succeed())
	for _, p := range cfg.Authority.Provisioners {
		if p.Name == name {
			return p.EncryptedKey, p.Key.Kid
		}
	}
	Fail("no provisioner " + name + " in " + s.CAConfig)
	return "", ""
}

// sign POSTs a sign request to a site's step-ca and returns the status and, on
// success, the leaf certificate, else step-ca's message.
func sign(s world.SiteInfo, body map[string]any) (int, *x509.Certificate, string) {
	GinkgoHelper()
	// step-ca's answer to /1.0/sign, not a gateway type.
	var out struct {
		Crt     string `json:"crt"`
		Message string `json:"message"`
	}
	status := call(http.MethodPost, s.CAURL+"/1.0/sign", &out, via(mtlsClient(s, nil)), jsonBody(body))
	if out.Crt == "" {
		return status, nil, out.Message
	}
	return status, parsePEMCert(out.Crt), ""
}

// intermediateOf returns a site's intermediate certificate (DER).
func intermediateOf(s world.SiteInfo) []byte {
	GinkgoHelper()
	b, err := os.ReadFile(strings.Replace(s.CARoot, "root_ca.crt", "intermediate_ca.crt", 1))
	Expect(err).NotTo(HaveOccurred())
	return pemDER(b)
}
