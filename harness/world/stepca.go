package world

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"embed"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	"github.com/mosaic-federation/mosaic/harness/internal/proc"
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
)

// StartCA initialises a standalone step-ca non-interactively, installs the OID template
// on the federation provisioner, adds the listener provisioner and starts the CA.
func (b *processBackend) StartCA(ctx context.Context, s *Site) (*CA, error) {
	stepPath := s.path("ca")
	ca := &CA{
		StepPath:                stepPath,
		ConfigPath:              filepath.Join(stepPath, "config", "ca.json"),
		RootPath:                filepath.Join(stepPath, "certs", "root_ca.crt"),
		ProvisionerPasswordFile: s.path(secretsDir, "provisioner.pass"),
	}
	caPass := s.path(secretsDir, "ca.pass")
	for _, f := range []string{caPass, ca.ProvisionerPasswordFile} {
		if err := writeSecret(f, randomHex(24)+"\n"); err != nil {
			return nil, err
		}
	}
	env := b.env("STEPPATH=" + stepPath)
	// The CA and the listener provisioner's key are independent: make them in parallel.
	// The CA and the extra provisioners' keys are independent: make them in parallel.
	extra := []string{ListenerProvisioner, BrokenProvisioner}
	errs := make([]error, 1+len(extra))
	var wg sync.WaitGroup
	wg.Add(len(errs))
	go func() {
		defer wg.Done()
		errs[0] = runOnce(ctx, proc.Spec{Path: b.bins.step, Env: env, LogPath: s.logPath("step-ca-init"),
			Args: stepCAInitArgs(s.Name, caPass, ca.ProvisionerPasswordFile)})
	}()
	for i, name := range extra {
		go func() {
			defer wg.Done()
			errs[i+1] = runOnce(ctx, proc.Spec{Path: b.bins.step, Env: env, LogPath: s.logPath("step-ca-init-" + name),
				Args: []string{"crypto", "jwk", "create", s.path(secretsDir, name+".pub.json"), s.path(secretsDir, name+".key.json"),
					"--kty", "EC", "--crv", "P-256", "--use", "sig", "--password-file", ca.ProvisionerPasswordFile, "--force"}})
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if err := configureCA(ca.ConfigPath, filepath.Join(stepPath, "templates"), s.path(secretsDir)); err != nil {
		return nil, fmt.Errorf("configure %s: %w", ca.ConfigPath, err)
	}
	var err error
	if ca.Fingerprint, err = Fingerprint(ca.RootPath); err != nil {
		return nil, err
	}
	roots, err := loadPool(ca.RootPath)
	if err != nil {
		return nil, err
	}
	p := b.newProc(proc.Spec{
		Name: s.Name + "/step-ca", Path: b.bins.stepCA, Env: env, LogPath: s.logPath("step-ca"),
		Args:  []string{ca.ConfigPath, "--password-file", caPass},
		Ready: func(ctx context.Context) error { return checkHealth(ctx, ca.URL+"/health", roots) },
	})
	ca.Service = p
	s.world.track(ca)
	_, err = startOnFreePorts(ctx, p, 1, func(ports []int) error {
		ca.URL = "https://" + addr(ports[0])
		p.SetPorts(ports[0])
		if err := setJSONField(ca.ConfigPath, "address", addr(ports[0])); err != nil {
			return err
		}
		return setJSONField(filepath.Join(stepPath, "config", "defaults.json"), "ca-url", ca.URL)
	})
	return ca, err
}

func addr(port int) string { return "127.0.0.1:" + strconv.Itoa(port) }

// stepCAInitArgs builds `step ca init` for a standalone CA that asks nothing. The
// address is a placeholder: StartCA writes the real port before each start.
func stepCAInitArgs(site, caPass, provPass string) []string {
	return []string{"ca", "init", "--deployment-type", "standalone",
		"--name", "Mosaic " + site + " CA", "--dns", "127.0.0.1", "--address", "127.0.0.1:9000",
		"--provisioner", FederationProvisioner,
		"--password-file", caPass, "--provisioner-password-file", provPass}
}

// configureCA edits ca.json: the OID template and 30-day lifetime on the federation
// provisioner, a JWK provisioner for the gateway's listener certificate and a test-only
// one whose template drops the OIDs. keyDir holds <name>.pub.json / <name>.key.json.
func configureCA(configPath, templateDir, keyDir string) error {
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

// Fingerprint is the lowercase hex SHA-256 of a PEM certificate's DER.
func Fingerprint(pemPath string) (string, error) {
	b, err := os.ReadFile(pemPath)
	if err != nil {
		return "", err
	}
	block, _ := pem.Decode(b)
	if block == nil {
		return "", fmt.Errorf("%s: no PEM block", pemPath)
	}
	sum := sha256.Sum256(block.Bytes)
	return hex.EncodeToString(sum[:]), nil
}

func loadPool(pemPath string) (*x509.CertPool, error) {
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

func checkHealth(ctx context.Context, url string, roots *x509.CertPool) error {
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}}}
	defer client.CloseIdleConnections()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return nil
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
