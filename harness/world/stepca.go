package world

import (
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
	// BrokenProvisioner issues client certificates WITHOUT the OIDs: test only, in a
	// world booted with Options.TestProvisioner.
	BrokenProvisioner = siteinit.TestProvisioner
)

// CAPasswordFile holds the password of a site's CA keys (step-ca's --password-file).
const CAPasswordFile = SecretsDir + "/ca.pass"

// InitCA writes the site's CA into CADir with siteinit (the recipe the gateway's own
// `ca init` follows; the test provisioner only with Options.TestProvisioner) listening
// on address, whose host is also its DNS name. A CA already in CADir is kept, with the
// passwords it was made with: they are made only for a new CA, and a kept CA whose
// password file went is an error, not a fresh password its keys would not open with.
// It returns the CA's handle without a service; the backend serves it.
func (s *Site) InitCA(address string) (*CA, string, error) {
	ca := &CA{
		StepPath:                s.Path(CADir),
		RootPath:                s.Path(CARootFile),
		ProvisionerPasswordFile: s.Path(ProvisionerPasswordFile),
	}
	kept, err := siteinit.CAExists(ca.StepPath)
	if err != nil {
		return nil, "", err
	}
	var caPass, provPass []byte
	for _, f := range []struct {
		path string
		pass *[]byte
	}{{s.Path(CAPasswordFile), &caPass}, {ca.ProvisionerPasswordFile, &provPass}} {
		if *f.pass, err = siteinit.EnsurePassword(f.path, kept); err != nil {
			return nil, "", fmt.Errorf("site %s: CA init: %w", s.Name, err)
		}
	}
	host, _, err := net.SplitHostPort(address)
	if err != nil {
		return nil, "", err
	}
	withTest := s.world != nil && s.world.opts.TestProvisioner
	res, err := siteinit.InitCA(siteinit.CAOptions{StepPath: ca.StepPath, Name: "Mosaic " + s.Name + " CA",
		DNSNames: []string{host}, Address: address, URL: "https://" + address,
		CAPassword: caPass, ProvisionerPassword: provPass, WithTestProvisioner: withTest})
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
