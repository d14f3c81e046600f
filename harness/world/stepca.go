package world

import (
	"bytes"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"net"
	"os"

	"github.com/mosaic-federation/mosaic/siteinit"
)

// Provisioner names of every site's CA (SPEC §3), as siteinit makes them.
const (
	FederationProvisioner = siteinit.FederationProvisioner
	ListenerProvisioner   = siteinit.ListenerProvisioner
	// BrokenProvisioner issues client certificates WITHOUT the OIDs: test only.
	BrokenProvisioner = siteinit.TestProvisioner
)

// CAPasswordFile holds the password of a site's CA keys (step-ca's --password-file).
const CAPasswordFile = SecretsDir + "/ca.pass"

// InitCA writes the site's CA into CADir with siteinit (the recipe the gateway's own
// `ca init` follows, test provisioner included) listening on address, whose host is
// also its DNS name. It returns the CA's handle without a service; the backend serves it.
func (s *Site) InitCA(address string) (*CA, string, error) {
	ca := &CA{
		StepPath:                s.Path(CADir),
		RootPath:                s.Path(CARootFile),
		ProvisionerPasswordFile: s.Path(ProvisionerPasswordFile),
	}
	caPass, provPass := siteinit.NewPassword(), siteinit.NewPassword()
	for f, pass := range map[string][]byte{s.Path(CAPasswordFile): caPass, ca.ProvisionerPasswordFile: provPass} {
		if err := writeSecret(f, string(pass)); err != nil {
			return nil, "", err
		}
	}
	host, _, err := net.SplitHostPort(address)
	if err != nil {
		return nil, "", err
	}
	res, err := siteinit.InitCA(siteinit.CAOptions{StepPath: ca.StepPath, Name: "Mosaic " + s.Name + " CA",
		DNSNames: []string{host}, Address: address, URL: "https://" + address,
		CAPassword: bytes.TrimSpace(caPass), ProvisionerPassword: bytes.TrimSpace(provPass), WithTestProvisioner: true})
	if err != nil {
		return nil, "", fmt.Errorf("site %s: CA init: %w", s.Name, err)
	}
	ca.ConfigPath, ca.Fingerprint, ca.URL = res.Config, res.Fingerprint, res.URL
	return ca, s.Path(CAPasswordFile), nil
}

// SetCAAddress points a CA at address (host:port) and returns its URL (siteinit.SetCAAddress).
func SetCAAddress(stepPath, address string) (string, error) {
	return siteinit.SetCAAddress(stepPath, address)
}

// Fingerprint is how an enrollment URL names a PEM root certificate.
func Fingerprint(pemPath string) (string, error) { return siteinit.Fingerprint(pemPath) }

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

func writeJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "\t")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o600)
}
