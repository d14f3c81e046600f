package process

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"

	"github.com/mosaic-federation/mosaic/harness/world"
	"github.com/mosaic-federation/mosaic/harness/world/process/internal/proc"
)

// StartCA initialises a standalone step-ca non-interactively with the host's `step`,
// lets world.ConfigureCA install the OID template and the extra provisioners, and
// starts step-ca on a free port.
func (b *Backend) StartCA(ctx context.Context, s *world.Site) (*world.CA, error) {
	progs := b.programs()
	stepPath := s.Path(world.CADir)
	ca := &world.CA{
		StepPath:                stepPath,
		ConfigPath:              filepath.Join(stepPath, "config", "ca.json"),
		RootPath:                s.Path(world.CARootFile),
		ProvisionerPasswordFile: s.Path(world.ProvisionerPasswordFile),
	}
	caPass := s.Path(world.SecretsDir, "ca.pass")
	for _, f := range []string{caPass, ca.ProvisionerPasswordFile} {
		if err := writeSecret(f, randomHex(24)+"\n"); err != nil {
			return nil, err
		}
	}
	env := childEnv(s.Run().Dir, "STEPPATH="+stepPath)
	// The CA and the extra provisioners' keys are independent: make them in parallel.
	extra := world.ExtraProvisioners()
	errs := make([]error, 1+len(extra))
	var wg sync.WaitGroup
	wg.Add(len(errs))
	go func() {
		defer wg.Done()
		errs[0] = runOnce(ctx, proc.Spec{Path: progs.step, Env: env, LogPath: s.LogPath("step-ca-init"),
			Args: stepCAInitArgs(s.Name, caPass, ca.ProvisionerPasswordFile)})
	}()
	for i, name := range extra {
		go func() {
			defer wg.Done()
			errs[i+1] = runOnce(ctx, proc.Spec{Path: progs.step, Env: env, LogPath: s.LogPath("step-ca-init-" + name),
				Args: jwkCreateArgs(s.Path(world.SecretsDir, name+".pub.json"), s.Path(world.SecretsDir, name+".key.json"), ca.ProvisionerPasswordFile)})
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if err := world.ConfigureCA(ca.ConfigPath, filepath.Join(stepPath, "templates"), s.Path(world.SecretsDir)); err != nil {
		return nil, fmt.Errorf("configure %s: %w", ca.ConfigPath, err)
	}
	var err error
	if ca.Fingerprint, err = world.Fingerprint(ca.RootPath); err != nil {
		return nil, err
	}
	roots, err := world.CertPool(ca.RootPath)
	if err != nil {
		return nil, err
	}
	p := newProc(s, proc.Spec{
		Name: s.Name + "/step-ca", Path: progs.stepCA, Env: env, LogPath: s.LogPath("step-ca"),
		Args:  []string{ca.ConfigPath, "--password-file", caPass},
		Ready: func(ctx context.Context) error { return world.CheckHealth(ctx, ca.URL+"/health", roots) },
	})
	ca.Service = p
	_, err = startOnFreePorts(ctx, p, 1, func(ports []int) (err error) {
		p.SetPorts(ports[0])
		ca.URL, err = world.SetCAAddress(stepPath, addr(ports[0]))
		return err
	})
	return ca, err
}

// stepCAInitArgs builds `step ca init` for a standalone CA that asks nothing. The
// address is a placeholder: StartCA writes the real port before each start.
func stepCAInitArgs(site, caPass, provPass string) []string {
	return []string{"ca", "init", "--deployment-type", "standalone",
		"--name", "Mosaic " + site + " CA", "--dns", "127.0.0.1", "--address", "127.0.0.1:9000",
		"--provisioner", world.FederationProvisioner,
		"--password-file", caPass, "--provisioner-password-file", provPass}
}

// jwkCreateArgs builds `step crypto jwk create` for a provisioner's key pair, the
// private half encrypted with the provisioner password.
func jwkCreateArgs(pubPath, keyPath, passFile string) []string {
	return []string{"crypto", "jwk", "create", pubPath, keyPath,
		"--kty", "EC", "--crv", "P-256", "--use", "sig", "--password-file", passFile, "--force"}
}
