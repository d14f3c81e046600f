package process

import (
	"context"

	"github.com/mosaic-federation/mosaic/harness/world"
	"github.com/mosaic-federation/mosaic/harness/world/process/internal/proc"
)

// StartCA writes the site's CA with siteinit (world.Site.InitCA: both provisioners,
// the test one when the world asks for it, templates, CRL) and starts the host's
// step-ca on a free port.
func (b *Backend) StartCA(ctx context.Context, s *world.Site) (*world.CA, error) {
	progs := b.programs()
	// The address is a placeholder: SetCAAddress writes the real port before each start.
	ca, caPass, err := s.InitCA("127.0.0.1:9000")
	if err != nil {
		return nil, err
	}
	roots, err := world.CertPool(ca.RootPath)
	if err != nil {
		return nil, err
	}
	env := childEnv(s.Run().Dir, "STEPPATH="+ca.StepPath)
	p := newProc(s, proc.Spec{
		Name: s.Name + "/step-ca", Path: progs.stepCA, Env: env, LogPath: s.LogPath("step-ca"),
		Args:  []string{ca.ConfigPath, "--password-file", caPass},
		Ready: func(ctx context.Context) error { return world.CheckHealth(ctx, ca.URL+"/health", roots) },
	})
	ca.Service = p
	_, err = startOnFreePorts(ctx, p, 1, func(ports []int) (err error) {
		p.SetPorts(ports[0])
		ca.URL, err = world.SetCAAddress(ca.StepPath, addr(ports[0]))
		return err
	})
	return ca, err
}
