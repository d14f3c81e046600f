package docker

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"

	"github.com/mosaic-federation/mosaic/harness/world"
)

// GatewayCLI runs the host's gateway binary with the site's config: the config names
// the containers' addresses, which this host reaches, and its file paths are the
// site directory's, mounted at the same place in the site's containers.
func (b *Backend) GatewayCLI(ctx context.Context, s *world.Site, stdin io.Reader, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, s.Run().GatewayBin, append([]string{"--config", s.Gateway.ConfigPath}, args...)...)
	cmd.Stdin, cmd.Env = stdin, cliEnv()
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return out, fmt.Errorf("gateway %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return out, nil
}

// cliEnv is the CLI's environment: what a shell session needs, nothing of the harness's.
func cliEnv() []string {
	var env []string
	for _, k := range []string{"PATH", "HOME", "TMPDIR", "LANG", "LC_ALL", "TZ"} {
		if v, ok := os.LookupEnv(k); ok {
			env = append(env, k+"="+v)
		}
	}
	return env
}
