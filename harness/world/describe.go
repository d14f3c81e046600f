package world

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"syscall"

	"github.com/mosaic-federation/mosaic/harness/internal/proc"
)

// Description is what `harness status --json` prints and what the acceptance suite
// hands from its first process to the others (SPEC §6a). Every path is absolute.
type Description struct {
	RunDir string              `json:"run_dir"`
	Sites  map[string]SiteInfo `json:"sites"`
	Grants []Grant             `json:"grants"`
}

// SiteInfo describes one site. users[0] is the site's federated demo user.
type SiteInfo struct {
	APIURL        string `json:"api_url"`
	FederationURL string `json:"federation_url"`
	CAURL         string `json:"ca_url"`
	CARoot        string `json:"ca_root"`
	PostgresURL   string `json:"postgres_url"`
	ValkeyURL     string `json:"valkey_url"`
	Config        string `json:"config"`
	Users         []User `json:"users"`

	// Beyond SPEC §6a: what specs need to talk to the CA directly.
	CAFingerprint           string `json:"ca_fingerprint"`
	CAConfig                string `json:"ca_config"`
	ProvisionerPasswordFile string `json:"ca_provisioner_password_file"`
	Dir                     string `json:"dir"`
}

// User is a seeded user with their API token (printed by design: throw-away worlds).
type User struct {
	Email string `json:"email"`
	Token string `json:"token"`
}

// Describe returns the world's description.
func (w *World) Describe() Description {
	d := Description{RunDir: w.RunDir, Sites: map[string]SiteInfo{}, Grants: append([]Grant{}, w.Grants...)}
	for name, s := range w.Sites {
		d.Sites[name] = SiteInfo{
			APIURL: s.Gateway.APIURL, FederationURL: s.Gateway.FederationURL,
			CAURL: s.CA.URL, CARoot: s.CA.RootPath, PostgresURL: s.Postgres.URL,
			ValkeyURL: s.Valkey.URL, Config: s.Gateway.ConfigPath, Users: append([]User{}, s.Users...),
			CAFingerprint: s.CA.Fingerprint, CAConfig: s.CA.ConfigPath,
			ProvisionerPasswordFile: s.CA.ProvisionerPasswordFile, Dir: s.Dir,
		}
	}
	return d
}

// ProcessGroups returns the process group of every running service (each service is
// the leader of its own group).
func (w *World) ProcessGroups() []int {
	var pgids []int
	for _, s := range w.Services() {
		if pid := s.Pid(); pid != 0 {
			pgids = append(pgids, pid)
		}
	}
	return pgids
}

// Leftovers lists the live processes of a run: every child the harness starts carries
// MOSAIC_RUN=<run directory> in its environment, and their own children inherit it.
func Leftovers(runDir string) []int {
	if runDir == "" {
		return nil
	}
	tag := []byte(RunEnv + "=" + runDir + "\x00")
	entries, _ := os.ReadDir("/proc")
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() || proc.Zombie(pid) {
			continue
		}
		env, err := os.ReadFile(filepath.Join("/proc", e.Name(), "environ"))
		if err == nil && (bytes.HasPrefix(env, tag) || bytes.Contains(env, append([]byte{0}, tag...))) {
			pids = append(pids, pid)
		}
	}
	return pids
}

// KillLeftovers SIGKILLs a run's leftover processes (and the groups they lead) and
// returns how many it found.
func KillLeftovers(runDir string) int {
	pids := Leftovers(runDir)
	for _, pid := range pids {
		if pgid, err := syscall.Getpgid(pid); err == nil && pgid == pid {
			_ = syscall.Kill(-pgid, syscall.SIGKILL)
		}
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
	return len(pids)
}

// Alive reports whether pid is a live (not zombie) process.
func Alive(pid int) bool {
	return pid > 0 && syscall.Kill(pid, 0) == nil && !proc.Zombie(pid)
}

// StartTime names a process together with its pid (pids are reused; this is not).
func StartTime(pid int) uint64 {
	t, _ := proc.StartTime(pid)
	return t
}
