package world

import (
	"crypto/x509"
	"embed"

	"encoding/json"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/mosaic-federation/mosaic/gateway/api"
)

//go:embed templates/*.tpl
var caTemplates embed.FS

// Provisioner names and certificate lifetimes of every site's CA (SPEC §3).
const (
	FederationProvisioner = "federation"
	ListenerProvisioner   = "gateway"
	// BrokenProvisioner issues client certificates WITHOUT the OIDs: test only.
	BrokenProvisioner = "federation-no-oids"
	// Until renewal exists (M6) client certificates live 30 days, so a demo keeps working.
	federationCertLifetime = "720h"
	// crlCacheDuration is how long step-ca's CRL says it is good for (its NextUpdate).
	crlCacheDuration = "10m"
)

// setCRLDistributionPoint sets the CRL's idpURL in a ca.json that enables the CRL.
func setCRLDistributionPoint(caJSON, idpURL string) error {
	var cfg map[string]any
	if err := readJSON(caJSON, &cfg); err != nil {
		return err
	}
	crl, ok := cfg["crl"].(map[string]any)
	if !ok {
		return nil // a CA configured without a CRL (not by ConfigureCA)
	}
	crl["idpURL"] = idpURL
	return writeJSON(caJSON, cfg)
}

// ExtraProvisioners are the JWK provisioners ConfigureCA adds to the one `step ca init`
// makes; each needs <name>.pub.json and <name>.key.json in the key folder first.
func ExtraProvisioners() []string { return []string{ListenerProvisioner, BrokenProvisioner} }

// ConfigureCA edits the ca.json `step ca init` wrote: the OID template and 30-day
// lifetime on the federation provisioner, a JWK provisioner for the gateway's listener
// certificate and a test-only one whose template drops the OIDs. keyDir holds
// <name>.pub.json / <name>.key.json of each of ExtraProvisioners.
func ConfigureCA(configPath, templateDir, keyDir string) error {
	if err := os.MkdirAll(templateDir, 0o700); err != nil {
		return err
	}
	for _, name := range []string{"federation.tpl", "listener.tpl", "no-oids.tpl"} {
		b, err := caTemplates.ReadFile("templates/" + name)
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(templateDir, name), b, 0o600); err != nil {
			return err
		}
	}
	var cfg map[string]any
	if err := readJSON(configPath, &cfg); err != nil {
		return err
	}
	authority, _ := cfg["authority"].(map[string]any)
	provs, _ := authority["provisioners"].([]any)
	if len(provs) != 1 {
		return fmt.Errorf("expected the one provisioner step ca init makes, found %d", len(provs))
	}
	fed := provs[0].(map[string]any)
	fed["claims"] = map[string]any{
		"defaultTLSCertDuration": federationCertLifetime,
		"maxTLSCertDuration":     federationCertLifetime,
		// The gateway asks for its own lifetime (federation.client_cert_lifetime, at
		// least 2m): specs renew and expire certificates of minutes.
		"minTLSCertDuration": "1m",
		// step-ca's own /renew and /rekey copy every extension of the old certificate
		// (our OIDs too) without the template or the grant check: renewal goes
		// through the gateway instead (SPEC §6d).
		"disableRenewal": true,
	}
	fed["options"] = map[string]any{"x509": map[string]any{"templateFile": filepath.Join(templateDir, "federation.tpl")}}
	for name, tpl := range map[string]string{ListenerProvisioner: "listener.tpl", BrokenProvisioner: "no-oids.tpl"} {
		var pub map[string]any
		if err := readJSON(filepath.Join(keyDir, name+".pub.json"), &pub); err != nil {
			return err
		}
		encKey, err := compactJWE(filepath.Join(keyDir, name+".key.json"))
		if err != nil {
			return err
		}
		provs = append(provs, map[string]any{
			"type": "JWK", "name": name, "key": pub, "encryptedKey": encKey,
			"claims":  map[string]any{"defaultTLSCertDuration": federationCertLifetime, "maxTLSCertDuration": federationCertLifetime},
			"options": map[string]any{"x509": map[string]any{"templateFile": filepath.Join(templateDir, tpl)}},
		})
	}
	authority["provisioners"] = provs
	// The CRL lists every revoked serial, regenerated at once on a revocation; its
	// idpURL (the CA's address) is set when the address is known (SetCAAddress).
	cfg["crl"] = map[string]any{"enabled": true, "generateOnRevoke": true, "cacheDuration": crlCacheDuration}
	return writeJSON(configPath, cfg)
}

// compactJWE reads the JSON-serialised JWE `step crypto jwk create` writes and returns
// its compact form, which is what ca.json's encryptedKey holds.
func compactJWE(path string) (string, error) {
	var j struct {
		Protected    string `json:"protected"`
		EncryptedKey string `json:"encrypted_key"`
		IV           string `json:"iv"`
		Ciphertext   string `json:"ciphertext"`
		Tag          string `json:"tag"`
	}
	if err := readJSON(path, &j); err != nil {
		return "", err
	}
	if j.Protected == "" || j.Ciphertext == "" || j.Tag == "" {
		return "", fmt.Errorf("%s: not a JSON-serialised JWE", path)
	}
	return strings.Join([]string{j.Protected, j.EncryptedKey, j.IV, j.Ciphertext, j.Tag}, "."), nil
}

// Fingerprint is how an enrollment URL names a PEM root certificate (api.RootFingerprint).
func Fingerprint(pemPath string) (string, error) {
	b, err := os.ReadFile(pemPath)
	if err != nil {
		return "", err
	}
	block, _ := pem.Decode(b)
	if block == nil {
		return "", fmt.Errorf("%s: no PEM block", pemPath)
	}
	return api.RootFingerprint(block.Bytes), nil
}

// SetCAAddress points a CA at address (host:port): where ca.json makes step-ca listen,
// and the URL in defaults.json that `step` commands run against it use. It returns
// that URL.
func SetCAAddress(stepPath, address string) (string, error) {
	url := "https://" + address
	caJSON := filepath.Join(stepPath, "config", "ca.json")
	if err := setJSONField(caJSON, "address", address); err != nil {
		return "", err
	}
	// Explicit: step-ca's default distribution point omits the port.
	if err := setCRLDistributionPoint(caJSON, url+"/1.0/crl"); err != nil {
		return "", err
	}
	return url, setJSONField(filepath.Join(stepPath, "config", "defaults.json"), "ca-url", url)
}

// CertPool holds the certificates of a PEM file, e.g. a CA's root for its readiness check.
func CertPool(pemPath string) (*x509.CertPool, error) {
	b, err := os.ReadFile(pemPath)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		return nil, fmt.Errorf("%s: no certificate", pemPath)
	}
	return pool, nil
}

func readJSON(path string, v any) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}

func writeJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "\t")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o600)
}

func setJSONField(path, key string, value any) error {
	var m map[string]any
	if err := readJSON(path, &m); err != nil {
		return err
	}
	m[key] = value
	return writeJSON(path, m)
}
