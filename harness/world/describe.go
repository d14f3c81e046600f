package world

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// Description is what `harness status --json` prints and what the acceptance suite
// hands from its first process to the others (SPEC §6a). Every path is absolute.
type Description struct {
	RunDir string              `json:"run_dir"`
	Sites  map[string]SiteInfo `json:"sites"`
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
	d := Description{RunDir: w.RunDir, Sites: map[string]SiteInfo{}}
	for name, s := range w.Sites {
		d.Sites[name] = SiteInfo{
			APIURL: s.Gateway.APIURL, FederationURL: s.Gateway.FederationURL,
			CAURL: s.CA.URL, CARoot: s.CA.RootPath, PostgresURL: s.Postgres.URL,
			ValkeyURL: s.Valkey.URL, Config: s.Gateway.ConfigPath, Users: []User{},
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

// Leftovers lists live processes that belong to a run: their command line names the
// run directory, or they sit in one of the given process groups (PostgreSQL backends
// rewrite their command lines).
func Leftovers(runDir string, pgids []int) []int {
	entries, _ := os.ReadDir("/proc")
	groups := map[int]bool{}
	for _, g := range pgids {
		groups[g] = true
	}
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() || isZombie(pid) {
			continue
		}
		if pgid, err := syscall.Getpgid(pid); err == nil && groups[pgid] {
			pids = append(pids, pid)
			continue
		}
		cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		if runDir != "" && strings.Contains(string(bytes.ReplaceAll(cmdline, []byte{0}, []byte{' '})), runDir+string(filepath.Separator)) {
			pids = append(pids, pid)
		}
	}
	return pids
}

func isZombie(pid int) bool {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return true
	}
	// The state follows the command name in parentheses, which may itself hold spaces.
	i := bytes.LastIndexByte(b, ')')
	return i < 0 || i+2 >= len(b) || b[i+2] == 'Z'
}

// KillLeftovers SIGKILLs the process groups of a run's leftover processes and returns
// how many processes it found.
func KillLeftovers(runDir string, pgids []int) int {
	pids := Leftovers(runDir, pgids)
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
	return pid > 0 && syscall.Kill(pid, 0) == nil && !isZombie(pid)
}
