package world

// Description is what `harness status --json` prints and what the acceptance suite
// hands from its first process to the others (SPEC §6a). Every path is absolute.
type Description struct {
	RunDir string              `json:"run_dir"`
	Sites  map[string]SiteInfo `json:"sites"`
	Grants []Grant             `json:"grants"`
	// Links are the Toxiproxy links between sites (Options.Links), if any.
	Links []LinkInfo `json:"links,omitempty"`
}

// SiteInfo describes one site. users[0] is the site's federated demo user.
type SiteInfo struct {
	APIURL        string `json:"api_url"`
	FederationURL string `json:"federation_url"`
	// PublicURL is the site's federation.public_url, where its peers reach it: its
	// inbound link's address when the world has links, else FederationURL.
	PublicURL string `json:"public_url"`
	// MetricsURL is the gateway's listen.metrics (GET /metrics), never the API's.
	MetricsURL  string `json:"metrics_url,omitempty"`
	CAURL       string `json:"ca_url"`
	CARoot      string `json:"ca_root"`
	PostgresURL string `json:"postgres_url"`
	ValkeyURL   string `json:"valkey_url"`
	Config      string `json:"config"`
	Users       []User `json:"users"`
	// Replicas are the site's other gateways (harness up --replicas N).
	Replicas []Replica `json:"replicas,omitempty"`

	// Beyond SPEC §6a: what specs need to talk to the CA directly.
	CAFingerprint           string `json:"ca_fingerprint"`
	CAConfig                string `json:"ca_config"`
	ProvisionerPasswordFile string `json:"ca_provisioner_password_file"`
	Dir                     string `json:"dir"`
}

// Replica is one more gateway of a site.
type Replica struct {
	APIURL        string `json:"api_url"`
	FederationURL string `json:"federation_url"`
	Config        string `json:"config"`
}

// User is a seeded user with their API token (printed by design: throw-away worlds).
type User struct {
	Email string `json:"email"`
	Token string `json:"token"`
}

// Describe returns the world's description.
func (w *World) Describe() Description {
	d := Description{RunDir: w.RunDir, Sites: map[string]SiteInfo{}, Grants: append([]Grant{}, w.Grants...)}
	for _, l := range w.Links() {
		d.Links = append(d.Links, l.Info())
	}
	for name, s := range w.Sites {
		var replicas []Replica
		for _, r := range s.Replicas {
			replicas = append(replicas, Replica{APIURL: r.APIURL, FederationURL: r.FederationURL, Config: r.ConfigPath})
		}
		public := s.Gateway.FederationURL
		if l := s.inboundLink(); l != nil {
			public = l.URL()
		}
		d.Sites[name] = SiteInfo{Replicas: replicas, PublicURL: public,
			APIURL: s.Gateway.APIURL, FederationURL: s.Gateway.FederationURL, MetricsURL: s.Gateway.MetricsURL,
			CAURL: s.CA.URL, CARoot: s.CA.RootPath, PostgresURL: s.Postgres.URL,
			ValkeyURL: s.Valkey.URL, Config: s.Gateway.ConfigPath, Users: append([]User{}, s.Users...),
			CAFingerprint: s.CA.Fingerprint, CAConfig: s.CA.ConfigPath,
			ProvisionerPasswordFile: s.CA.ProvisionerPasswordFile, Dir: s.Dir,
		}
	}
	return d
}

// ProcessGroups returns the process group of every running service: the process
// backend makes each service the leader of its own group, so its pid names the group.
func (w *World) ProcessGroups() []int {
	var pgids []int
	for _, s := range w.Services() {
		if pid := s.Pid(); pid != 0 {
			pgids = append(pgids, pid)
		}
	}
	return pgids
}
