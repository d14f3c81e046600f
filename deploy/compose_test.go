package deploy_test

import (
	"context"
	"encoding/json"
	"maps"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"
)

const composeFile = "../docker-compose.two-gateways.yml"

// specFields are the gateway.json field names of SPEC §4, nested objects as dotted paths.
var specFields = []string{
	"tier", "site",
	"listen.api", "listen.federation", "listen.metrics",
	"federation.public_url", "federation.enrollment_token_ttl", "federation.grant_ttl",
	"federation.rate_limit.per_grant", "federation.rate_limit.burst", "federation.rate_limit.per_address",
	"federation.cache.ttl", "federation.cache.max_staleness", "federation.cache.max_bytes",
	"federation.client_cert_lifetime", "federation.renewal_overlap", "federation.crl_refresh",
	"storage.postgres_url_file", "storage.sqlite_path",
	"valkey.url", "valkey.url_file",
	"ca.url", "ca.root", "ca.provisioner", "ca.provisioner_password_file", "ca.listener_provisioner",
	"sealing_key_file", "audit_key_file",
	"telemetry.otlp_endpoint",
}

// federatedRequired are the fields SPEC §4 requires of a federated site.
var federatedRequired = []string{
	"tier", "site", "listen.api", "listen.federation", "federation.public_url",
	"storage.postgres_url_file", "ca.url", "ca.root", "ca.provisioner",
	"ca.provisioner_password_file", "sealing_key_file",
}

// envName is the GATEWAY_* override of a field: listen.api → GATEWAY_LISTEN_API.
func envName(field string) string {
	return "GATEWAY_" + strings.ToUpper(strings.ReplaceAll(field, ".", "_"))
}

// The services, by role. Each site has the same core; work serves, home enrolls.
var (
	sites        = []string{"home", "work"}
	oneShots     = []string{"secrets", "ca-init", "seed"}
	longRunning  = []string{"ca", "postgres", "valkey", "gateway"}
	workOnly     = map[string]bool{"work-link-proxy": false, "work-enroll-offer": true} // name → one-shot
	homeOnly     = map[string]bool{"home-enroll-accept": true}
	linkMembers  = []string{"home-enroll-accept", "home-gateway", "work-link-proxy"}
	gatewayImage = "mosaic/gateway:latest"
)

func isOneShot(name string) bool {
	if v, ok := workOnly[name]; ok {
		return v
	}
	if v, ok := homeOnly[name]; ok {
		return v
	}
	_, role, _ := strings.Cut(name, "-")
	return slices.Contains(oneShots, role)
}

func siteOf(name string) string {
	site, _, _ := strings.Cut(name, "-")
	return site
}

func load(t *testing.T, env map[string]string) *types.Project {
	t.Helper()
	var list []string
	for k, v := range env {
		list = append(list, k+"="+v)
	}
	opts, err := cli.NewProjectOptions([]string{composeFile},
		cli.WithWorkingDirectory(".."), cli.WithEnv(list),
		cli.WithInterpolation(true), cli.WithResolvedPaths(true))
	if err != nil {
		t.Fatal(err)
	}
	p, err := opts.LoadProject(context.Background())
	if err != nil {
		t.Fatalf("load %s: %v", composeFile, err)
	}
	return p
}

func service(t *testing.T, p *types.Project, name string) types.ServiceConfig {
	t.Helper()
	s, ok := p.Services[name]
	if !ok {
		t.Fatalf("no service %q", name)
	}
	return s
}

func gatewayEnv(s types.ServiceConfig) map[string]string {
	m := map[string]string{}
	for k, v := range s.Environment {
		if strings.HasPrefix(k, "GATEWAY_") && v != nil {
			m[k] = *v
		}
	}
	return m
}

func TestComposeServices(t *testing.T) {
	p := load(t, nil)
	want := []string{}
	for _, site := range sites {
		for _, role := range append(slices.Clone(oneShots), longRunning...) {
			want = append(want, site+"-"+role)
		}
	}
	for name := range workOnly {
		want = append(want, name)
	}
	for name := range homeOnly {
		want = append(want, name)
	}
	sort.Strings(want)
	got := p.ServiceNames()
	sort.Strings(got)
	if !slices.Equal(got, want) {
		t.Fatalf("services:\n got %v\nwant %v", got, want)
	}
	for name, s := range p.Services {
		if isOneShot(name) && s.Restart != "no" {
			t.Errorf("%s is a one-shot: restart %q, want \"no\"", name, s.Restart)
		}
	}
}

// Image names are variables defaulting to the official images (SPEC §6e).
func TestComposeImages(t *testing.T) {
	defaults := map[string]string{
		"ca": "smallstep/step-ca:0.30.2", "postgres": "pgvector/pgvector:pg17", "valkey": "valkey/valkey:8",
	}
	local := map[string]string{
		"MOSAIC_GATEWAY_IMAGE": "mosaic/gateway:abc", "MOSAIC_STEP_CA_IMAGE": "mosaic/step-ca:abc",
		"MOSAIC_POSTGRES_IMAGE": "mosaic/pgvector:pg15-abc", "MOSAIC_VALKEY_IMAGE": "mosaic/valkey:8-abc",
		"MOSAIC_TOXIPROXY_IMAGE": "mosaic/toxiproxy:abc",
	}
	localFor := map[string]string{
		"ca": local["MOSAIC_STEP_CA_IMAGE"], "postgres": local["MOSAIC_POSTGRES_IMAGE"], "valkey": local["MOSAIC_VALKEY_IMAGE"],
	}
	def, loc := load(t, nil), load(t, local)
	for name, s := range def.Services {
		_, role, _ := strings.Cut(name, "-")
		wantDef, wantLoc := gatewayImage, local["MOSAIC_GATEWAY_IMAGE"]
		switch {
		case name == "work-link-proxy":
			wantDef, wantLoc = "ghcr.io/shopify/toxiproxy:2.12.0", local["MOSAIC_TOXIPROXY_IMAGE"]
		case defaults[role] != "":
			wantDef, wantLoc = defaults[role], localFor[role]
		}
		if s.Image != wantDef {
			t.Errorf("%s: default image %q, want %q", name, s.Image, wantDef)
		}
		if got := loc.Services[name].Image; got != wantLoc {
			t.Errorf("%s: image with local variables %q, want %q", name, got, wantLoc)
		}
	}
	// The gateway image is built where absent, by the first service of each site only;
	// the rest never pull a name no registry has.
	for name, s := range def.Services {
		if s.Image != gatewayImage {
			continue
		}
		builds := strings.HasSuffix(name, "-secrets")
		if (s.Build != nil) != builds {
			t.Errorf("%s: build section present=%v, want %v", name, s.Build != nil, builds)
		}
		if s.Build != nil && s.Build.Dockerfile != "deploy/images/gateway/Dockerfile" {
			t.Errorf("%s: builds from %q", name, s.Build.Dockerfile)
		}
		if s.PullPolicy != types.PullPolicyNever {
			t.Errorf("%s: pull_policy %q, want never", name, s.PullPolicy)
		}
	}
}

func TestComposeHealthchecks(t *testing.T) {
	p := load(t, nil)
	for name, s := range p.Services {
		if isOneShot(name) {
			continue
		}
		hc := s.HealthCheck
		if hc == nil || hc.Disable || len(hc.Test) < 2 {
			t.Errorf("%s: no healthcheck", name)
			continue
		}
		// scratch images have no shell: exec form only.
		if hc.Test[0] != "CMD" {
			t.Errorf("%s: healthcheck %v is not exec form [CMD, …]", name, hc.Test)
		}
		if hc.Interval == nil || hc.Timeout == nil || hc.Retries == nil {
			t.Errorf("%s: healthcheck without interval, timeout or retries", name)
		}
	}
	// The PostgreSQL check goes over TCP, so the init-time server (socket only) does not
	// count as ready.
	for _, site := range sites {
		if test := service(t, p, site+"-postgres").HealthCheck.Test; !slices.Contains(test, "--host=127.0.0.1") {
			t.Errorf("%s-postgres healthcheck %v does not use TCP", site, test)
		}
	}
}

func TestComposeDependsOn(t *testing.T) {
	const done, healthy = types.ServiceConditionCompletedSuccessfully, types.ServiceConditionHealthy
	p := load(t, nil)
	want := map[string]map[string]string{}
	for _, s := range sites {
		want[s+"-secrets"] = map[string]string{}
		want[s+"-ca-init"] = map[string]string{s + "-secrets": done}
		want[s+"-ca"] = map[string]string{s + "-ca-init": done}
		want[s+"-postgres"] = map[string]string{s + "-secrets": done}
		want[s+"-valkey"] = map[string]string{}
		want[s+"-seed"] = map[string]string{s + "-postgres": healthy, s + "-valkey": healthy}
		want[s+"-gateway"] = map[string]string{s + "-seed": done, s + "-ca": healthy, s + "-postgres": healthy, s + "-valkey": healthy}
	}
	want["work-link-proxy"] = map[string]string{"work-gateway": healthy}
	want["work-enroll-offer"] = map[string]string{"work-gateway": healthy}
	want["home-enroll-accept"] = map[string]string{"home-seed": done, "home-ca-init": done, "work-link-proxy": healthy, "work-enroll-offer": done}
	want["home-gateway"]["home-enroll-accept"] = done
	for name, s := range p.Services {
		got := map[string]string{}
		for dep, d := range s.DependsOn {
			got[dep] = d.Condition
			// A one-shot is waited for until it exits 0, anything else until healthy.
			if wantCond := map[bool]string{true: done, false: healthy}[isOneShot(dep)]; d.Condition != wantCond {
				t.Errorf("%s depends on %s with %q, want %q", name, dep, d.Condition, wantCond)
			}
			if !d.Required {
				t.Errorf("%s: dependency %s is optional", name, dep)
			}
		}
		if w := want[name]; len(got) != len(w) || !mapsEqual(got, w) {
			t.Errorf("%s depends_on %v, want %v", name, got, w)
		}
	}
}

func mapsEqual(a, b map[string]string) bool {
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return len(a) == len(b)
}

func TestComposeNetworks(t *testing.T) {
	p := load(t, nil)
	names := slices.Sorted(maps.Keys(p.Networks))
	if !slices.Equal(names, []string{"home", "link", "work"}) {
		t.Fatalf("networks %v, want home, link, work", names)
	}
	if !p.Networks["link"].Internal {
		t.Error("the link network must be internal (no way out)")
	}
	var onLink []string
	for name, s := range p.Services {
		site := siteOf(name)
		_, role, _ := strings.Cut(name, "-")
		if role == "secrets" || role == "ca-init" {
			if s.NetworkMode != "none" || len(s.Networks) > 0 {
				t.Errorf("%s needs no network: network_mode %q, networks %v", name, s.NetworkMode, s.Networks)
			}
			continue
		}
		if len(s.Networks) == 0 {
			t.Errorf("%s is on no network (the default network would join the sites)", name)
		}
		for n := range s.Networks {
			switch n {
			case site:
			case "link":
				onLink = append(onLink, name)
			default:
				t.Errorf("%s (site %s) is on network %s", name, site, n)
			}
		}
	}
	sort.Strings(onLink)
	if !slices.Equal(onLink, linkMembers) {
		t.Errorf("on the link network: %v, want %v", onLink, linkMembers)
	}
	// Published ports: the gateways' API only, on the host's loopback.
	for name, s := range p.Services {
		for _, port := range s.Ports {
			if !strings.HasSuffix(name, "-gateway") || port.Target != 8080 || port.HostIP != "127.0.0.1" {
				t.Errorf("%s publishes %+v: only the gateways' API, on 127.0.0.1", name, port)
			}
		}
	}
}

// Every gateway config field the file sets is a SPEC §4 field, and each gateway sets
// every field SPEC §4 requires of a federated site.
func TestComposeGatewayConfigFieldsAreSpecFields(t *testing.T) {
	p := load(t, nil)
	known := map[string]string{}
	for _, f := range specFields {
		known[envName(f)] = f
	}
	seen := 0
	for name, s := range p.Services {
		if s.Image != gatewayImage {
			if len(gatewayEnv(s)) > 0 {
				t.Errorf("%s is not a gateway but sets %v", name, gatewayEnv(s))
			}
			continue
		}
		env := gatewayEnv(s)
		for k := range env {
			if _, ok := known[k]; !ok {
				t.Errorf("%s sets %s, which names no SPEC §4 field", name, k)
			}
			if strings.Contains(strings.ToLower(k), "password") && !strings.HasSuffix(k, "_FILE") {
				t.Errorf("%s: %s is a secret given inline (SPEC §4: secrets only by file path)", name, k)
			}
			seen++
		}
		if len(env) == 0 && s.NetworkMode != "none" {
			t.Errorf("%s runs the gateway with no configuration", name)
		}
		if len(env) > 0 {
			for _, f := range federatedRequired {
				if env[envName(f)] == "" {
					t.Errorf("%s: federated tier requires %s (%s)", name, f, envName(f))
				}
			}
			if env["GATEWAY_TIER"] != "federated" || env["GATEWAY_SITE"] != siteOf(name) {
				t.Errorf("%s: tier %q site %q", name, env["GATEWAY_TIER"], env["GATEWAY_SITE"])
			}
			if env["GATEWAY_VALKEY_URL"] == "" && env["GATEWAY_VALKEY_URL_FILE"] == "" {
				t.Errorf("%s: no valkey.url or valkey.url_file", name)
			}
		}
	}
	if seen == 0 {
		t.Fatal("no GATEWAY_* settings found")
	}
}

func hostOf(t *testing.T, addr string) (string, string) {
	t.Helper()
	h, port, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatalf("%q: %v", addr, err)
	}
	return h, port
}

// The listeners bind to an address of their own site's network: an alias that exists on
// that network only, never a wildcard.
func TestComposeListenersBindToOwnSiteNetwork(t *testing.T) {
	p := load(t, nil)
	aliasNets := map[string][]string{} // alias → networks that carry it
	for _, s := range p.Services {
		for n, cfg := range s.Networks {
			if cfg == nil {
				continue
			}
			for _, a := range cfg.Aliases {
				aliasNets[a] = append(aliasNets[a], n)
			}
		}
	}
	for _, site := range sites {
		name := site + "-gateway"
		s := service(t, p, name)
		env := gatewayEnv(s)
		for _, k := range []string{"GATEWAY_LISTEN_API", "GATEWAY_LISTEN_FEDERATION"} {
			host, _ := hostOf(t, env[k])
			if ip := net.ParseIP(host); ip != nil {
				t.Errorf("%s %s=%s: bind to a site-network alias, not an address", name, k, env[k])
				continue
			}
			cfg := s.Networks[site]
			if cfg == nil || !slices.Contains(cfg.Aliases, host) {
				t.Errorf("%s %s host %q is not its alias on the %s network", name, k, host, site)
			}
			if nets := aliasNets[host]; !slices.Equal(nets, []string{site}) {
				t.Errorf("alias %q is on networks %v, want only %s", host, nets, site)
			}
		}
		// The healthcheck probes the API where it listens.
		api := env["GATEWAY_LISTEN_API"]
		if test := s.HealthCheck.Test; !slices.ContainsFunc(test, func(a string) bool { return strings.Contains(a, "//"+api+"/") }) {
			t.Errorf("%s healthcheck %v does not probe %s", name, test, api)
		}
	}
}

// Home reaches work's federation listener through the link proxy and nothing else: the
// proxy's one route goes to that listener, work's public URL is the proxy's link
// address, and the proxy's own API listens on the work network.
func TestComposeLinkProxyForwardsOnlyFederation(t *testing.T) {
	p := load(t, nil)
	b, err := os.ReadFile("compose/toxiproxy.json")
	if err != nil {
		t.Fatal(err)
	}
	var proxies []struct {
		Name, Listen, Upstream string
		Enabled                bool
	}
	if err := json.Unmarshal(b, &proxies); err != nil {
		t.Fatal(err)
	}
	if len(proxies) != 1 || !proxies[0].Enabled {
		t.Fatalf("want exactly one enabled proxy, got %+v", proxies)
	}
	work := gatewayEnv(service(t, p, "work-gateway"))
	if proxies[0].Upstream != work["GATEWAY_LISTEN_FEDERATION"] {
		t.Errorf("proxy upstream %q, want work's federation listener %q", proxies[0].Upstream, work["GATEWAY_LISTEN_FEDERATION"])
	}
	proxy := service(t, p, "work-link-proxy")
	host, _ := hostOf(t, proxies[0].Listen)
	if cfg := proxy.Networks["link"]; cfg == nil || !slices.Contains(cfg.Aliases, host) {
		t.Errorf("proxy listens on %q, which is not its alias on the link network", host)
	}
	u, err := url.Parse(work["GATEWAY_FEDERATION_PUBLIC_URL"])
	if err != nil || u.Scheme != "https" || u.Host != proxies[0].Listen {
		t.Errorf("work's federation.public_url %q, want https://%s", work["GATEWAY_FEDERATION_PUBLIC_URL"], proxies[0].Listen)
	}
	// The proxy's API (toxics: latency, cuts) answers on the container's loopback only,
	// where its healthcheck asks: no other container of the site can cut the link.
	var apiHost string
	for _, a := range proxy.Command {
		if v, ok := strings.CutPrefix(a, "-host="); ok {
			apiHost = v
		}
	}
	if apiHost != "127.0.0.1" {
		t.Errorf("the proxy's API listens on %q, want 127.0.0.1 (its own loopback)", apiHost)
	}
	if !slices.Contains(proxy.HealthCheck.Test, "--host=http://127.0.0.1:8474") {
		t.Errorf("the proxy's healthcheck %v does not ask its loopback API", proxy.HealthCheck.Test)
	}
	// The mounted file is the one this test read.
	if !slices.ContainsFunc(proxy.Volumes, func(v types.ServiceVolumeConfig) bool {
		return v.Type == types.VolumeTypeBind && strings.HasSuffix(v.Source, filepath.Join("deploy", "compose", "toxiproxy.json"))
	}) {
		t.Error("work-link-proxy does not mount deploy/compose/toxiproxy.json")
	}
}

func flag(cmd []string, name string) string {
	for _, a := range cmd {
		if v, ok := strings.CutPrefix(a, "--"+name+"="); ok {
			return v
		}
	}
	return ""
}

// The enrollment one-shots name the seeded demo users (users[0] of each site, SPEC §6a)
// and a scope that covers the subject's teams.
func TestComposeEnrollmentMatchesSeeds(t *testing.T) {
	p := load(t, nil)
	type seedFile struct {
		Users []struct{ ID, Email string }
		Teams []struct {
			ID      string
			Members []string
		}
	}
	read := func(site string) seedFile {
		var f seedFile
		b, err := os.ReadFile(filepath.Join("..", "seed", site+".json"))
		if err == nil {
			err = json.Unmarshal(b, &f)
		}
		if err != nil || len(f.Users) == 0 {
			t.Fatalf("seed/%s.json: %v (%d users)", site, err, len(f.Users))
		}
		return f
	}
	work, home := read("work"), read("home")
	offer := service(t, p, "work-enroll-offer").Command
	accept := service(t, p, "home-enroll-accept").Command
	if got := flag(offer, "subject-user"); got != work.Users[0].Email {
		t.Errorf("offer subject %q, want work's users[0] %q", got, work.Users[0].Email)
	}
	if got := flag(accept, "local-user"); got != home.Users[0].Email {
		t.Errorf("accept local user %q, want home's users[0] %q", got, home.Users[0].Email)
	}
	if flag(offer, "peer") != "home" || flag(accept, "name") != "work" {
		t.Errorf("peer names: offer --peer=%q, accept --name=%q", flag(offer, "peer"), flag(accept, "name"))
	}
	if flag(offer, "url-file") == "" || flag(offer, "url-file") != flag(accept, "url-file") {
		t.Errorf("offer writes %q, accept reads %q", flag(offer, "url-file"), flag(accept, "url-file"))
	}
	b, err := os.ReadFile("compose/scope-home.json")
	if err != nil {
		t.Fatal(err)
	}
	var scope struct {
		Resources         []string `json:"resources"`
		ExcludedResources []string `json:"excluded_resources"`
		IncludeTeams      []string `json:"include_teams"`
		IncludePersonal   bool     `json:"include_personal"`
		MaxRowsPerQuery   int      `json:"max_rows_per_query"`
	}
	if err := json.Unmarshal(b, &scope); err != nil {
		t.Fatal(err)
	}
	var teams []string
	for _, team := range work.Teams {
		if slices.Contains(team.Members, work.Users[0].Email) {
			teams = append(teams, team.ID)
		}
	}
	sort.Strings(teams)
	got := slices.Sorted(slices.Values(scope.IncludeTeams))
	if !slices.Equal(got, teams) {
		t.Errorf("scope include_teams %v, want the subject's teams %v", got, teams)
	}
	for _, r := range scope.Resources {
		if !slices.Contains([]string{"tasks", "notes", "memories"}, r) {
			t.Errorf("scope resource %q", r)
		}
	}
	if !scope.IncludePersonal || scope.MaxRowsPerQuery < 1 || scope.MaxRowsPerQuery > 10000 {
		t.Errorf("scope %+v", scope)
	}
}

// Containers of our images run unprivileged; the few that run as root (to write into
// volumes other users own) keep only the capabilities that takes.
func TestComposePrivileges(t *testing.T) {
	p := load(t, nil)
	allowed := []string{"CHOWN", "DAC_OVERRIDE", "FOWNER"}
	for name, s := range p.Services {
		_, role, _ := strings.Cut(name, "-")
		if role == "postgres" || role == "valkey" {
			continue // their entrypoints drop to their own users, as the official images do
		}
		if !slices.Contains(s.CapDrop, "ALL") {
			t.Errorf("%s: cap_drop %v, want ALL", name, s.CapDrop)
		}
		for _, c := range s.CapAdd {
			if !slices.Contains(allowed, c) {
				t.Errorf("%s adds capability %s", name, c)
			}
		}
		if len(s.CapAdd) > 0 && s.User != "0:0" {
			t.Errorf("%s adds capabilities %v but runs as %q", name, s.CapAdd, s.User)
		}
		if !s.ReadOnly {
			t.Errorf("%s: root filesystem not read-only", name)
		}
		if !slices.Contains(s.SecurityOpt, "no-new-privileges:true") {
			t.Errorf("%s: no no-new-privileges", name)
		}
		if s.User == "0:0" && !isOneShot(name) {
			t.Errorf("%s runs as root and is not a one-shot", name)
		}
	}
}

// The CA keys' password lives in a volume of its own, mounted by the CA's init (which
// makes it) and step-ca (which reads it) only: not in the CA's folder (SETUP: back up
// STEPPATH, keep the password elsewhere), and never where a gateway could read it.
func TestComposeCAPasswordApartFromTheCA(t *testing.T) {
	p := load(t, nil)
	for _, site := range sites {
		vol := site + "-ca-auth"
		if _, ok := p.Volumes[vol]; !ok {
			t.Errorf("no volume %s", vol)
		}
		var mountedBy []string
		for name, s := range p.Services {
			for _, v := range s.Volumes {
				if v.Source == vol {
					mountedBy = append(mountedBy, name)
					if name == site+"-ca" && !v.ReadOnly {
						t.Errorf("%s mounts %s read-write", name, vol)
					}
				}
			}
		}
		sort.Strings(mountedBy)
		if want := []string{site + "-ca", site + "-ca-init"}; !slices.Equal(mountedBy, want) {
			t.Errorf("%s mounted by %v, want %v", vol, mountedBy, want)
		}
		initCmd := service(t, p, site+"-ca-init").Command
		passFile, stepPath := flag(initCmd, "password-file"), flag(initCmd, "steppath")
		if passFile == "" || strings.HasPrefix(passFile, stepPath+"/") {
			t.Errorf("%s-ca-init --password-file %q: want a file outside --steppath %s", site, passFile, stepPath)
		}
		ca := service(t, p, site+"-ca")
		if i := slices.Index(ca.Command, "--password-file"); i < 0 || i+1 >= len(ca.Command) || ca.Command[i+1] != passFile {
			t.Errorf("%s-ca serves with %v, want --password-file %s", site, ca.Command, passFile)
		}
		if !slices.ContainsFunc(ca.Volumes, func(v types.ServiceVolumeConfig) bool {
			return v.Source == vol && strings.HasPrefix(passFile, v.Target+"/")
		}) {
			t.Errorf("%s-ca does not mount %s where the password file is", site, vol)
		}
	}
}

// Every file the compose file bind-mounts is in the repository.
func TestComposeBindMountsExist(t *testing.T) {
	p := load(t, nil)
	for name, s := range p.Services {
		for _, v := range s.Volumes {
			if v.Type != types.VolumeTypeBind {
				continue
			}
			if _, err := os.Stat(v.Source); err != nil {
				t.Errorf("%s mounts %s: %v", name, v.Source, err)
			}
			if !v.ReadOnly {
				t.Errorf("%s mounts %s read-write", name, v.Source)
			}
		}
	}
}

// `compose up --wait` waits for a one-shot only when a service depends on it with
// service_completed_successfully; a one-shot nothing depends on fails --wait once it
// has exited, even with 0 (compose's start.go, getDependencyCondition).
func TestComposeEveryOneShotIsWaitedFor(t *testing.T) {
	p := load(t, nil)
	waited := map[string]bool{}
	for _, s := range p.Services {
		for dep, d := range s.DependsOn {
			if d.Condition == types.ServiceConditionCompletedSuccessfully {
				waited[dep] = true
			}
		}
	}
	for name := range p.Services {
		if isOneShot(name) && !waited[name] {
			t.Errorf("one-shot %s: no service waits for it to complete, so `up --wait` fails once it exits", name)
		}
	}
}
