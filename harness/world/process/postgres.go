package process

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"syscall"

	"github.com/mosaic-federation/mosaic/harness/world"
	"github.com/mosaic-federation/mosaic/harness/world/process/internal/proc"
)

// StartPostgres creates a fresh cluster (initdb as the unprivileged user when we are
// root), starts it on a free port and creates the gateway database with the vector
// extension.
func (b *Backend) StartPostgres(ctx context.Context, s *world.Site) (*world.Postgres, error) {
	progs := b.programs()
	dir := s.Path("postgres")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	if err := chownTo(progs.pgCred, dir); err != nil {
		return nil, err
	}
	password := randomHex(16)
	pwfile := filepath.Join(dir, "pwfile")
	if err := writeSecret(pwfile, password+"\n"); err != nil {
		return nil, err
	}
	if err := chownTo(progs.pgCred, pwfile); err != nil {
		return nil, err
	}
	dataDir := filepath.Join(dir, "data")
	env := childEnv(s.Run().Dir)
	err := runOnce(ctx, proc.Spec{
		Path: progs.initdb, Args: initdbArgs(dataDir, pwfile),
		Env: env, Dir: dir, Credential: progs.pgCred, LogPath: s.LogPath("initdb"),
	})
	os.Remove(pwfile)
	if err != nil {
		return nil, err
	}

	pg := &world.Postgres{}
	p := newProc(s, proc.Spec{
		Name: s.Name + "/postgres", Path: progs.postgres, Env: env, Dir: dir,
		Credential: progs.pgCred, LogPath: s.LogPath("postgres"), StopSignal: syscall.SIGINT,
		Ready: func(ctx context.Context) error { return world.PingPostgres(ctx, pg.AdminURL) },
	})
	pg.Service = p
	ports, err := startOnFreePorts(ctx, p, 1, func(ports []int) error {
		pg.AdminURL = world.PostgresURL(password, ports[0], "postgres")
		p.SetArgs(postgresArgs(dataDir, dir, ports[0]), ports[0])
		return nil
	})
	if err != nil {
		return pg, err
	}
	pg.Port = ports[0]
	pg.URL = world.PostgresURL(password, pg.Port, world.PostgresDatabase)
	return pg, world.CreateGatewayDatabase(ctx, pg.AdminURL, pg.URL)
}

// initdbArgs builds initdb's argv: the superuser's password from a file, no fsync (a
// throw-away cluster), nothing printed but errors.
func initdbArgs(dataDir, pwfile string) []string {
	return []string{"-D", dataDir, "-U", world.PostgresSuperuser, "--auth=scram-sha-256", "--pwfile=" + pwfile,
		"-E", "UTF8", "--locale=C", "--no-sync", "--no-instructions"}
}

// postgresArgs builds the server's argv: loopback TCP only, its socket in its own folder.
func postgresArgs(dataDir, socketDir string, port int) []string {
	return []string{
		"-D", dataDir,
		"-p", strconv.Itoa(port),
		"-c", "listen_addresses=127.0.0.1",
		"-c", "unix_socket_directories=" + socketDir,
		"-c", "max_connections=200",
	}
}
