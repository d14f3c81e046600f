package process

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os/exec"
	"strings"

	"github.com/mosaic-federation/mosaic/harness/world"
)

// GatewayCLI runs the host's gateway binary with the site's config, as its gateway
// runs: a clean environment tagged with the run.
func (b *Backend) GatewayCLI(ctx context.Context, s *world.Site, stdin io.Reader, args ...string) ([]byte, error) {
	run := s.Run()
	argv, env := cliCommand(s.Gateway.ConfigPath, run.Dir, args)
	cmd := exec.CommandContext(ctx, run.GatewayBin, argv...)
	cmd.Stdin, cmd.Env = stdin, env
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return out, fmt.Errorf("gateway %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return out, nil
}

// cliCommand builds the admin CLI's argv and environment for a gateway config.
func cliCommand(configPath, runDir string, args []string) (argv, env []string) {
	return append([]string{"--config", configPath}, args...), childEnv(runDir)
}
