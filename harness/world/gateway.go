package world

import (
	"os"

	"github.com/mosaic-federation/mosaic/siteinit"
)

// Files of a site directory that the standard gateway config names, relative to the
// site directory (where the config lives). The world writes the database URL and the
// sealing key; a backend's CA keeps its STEPPATH in CADir and its provisioner password
// in ProvisionerPasswordFile.
const (
	CADir                   = "ca"
	PostgresURLFile         = SecretsDir + "/pg.url"
	ProvisionerPasswordFile = SecretsDir + "/provisioner.pass"
	SealingKeyFile          = SecretsDir + "/sealing.key"
	AuditKeyFile            = SecretsDir + "/audit.key"
	CARootFile              = CADir + "/certs/root_ca.crt"
)

// GatewayConfig is a site's standard federated-tier gateway.json (SPEC §4): the API and
// federation listeners on apiAddr and fedAddr (host:port), the federation listener's
// public URL on fedAddr too, the site's CA and Valkey, and a CRL refreshed every 2 s.
func GatewayConfig(site, apiAddr, fedAddr, caURL, valkeyURL string) map[string]any {
	return map[string]any{
		"tier": "federated",
		"site": site,
		"listen": map[string]any{
			"api":        apiAddr,
			"federation": fedAddr,
		},
		// A CRL revoked at the CA directly (no announcement) is in force within 2 s.
		// The world's peers keep their certificates for the whole run (720h): specs of
		// renewal start a gateway of their own with minutes.
		"federation": map[string]any{"public_url": "https://" + fedAddr, "crl_refresh": "2s", "client_cert_lifetime": "720h"},
		"storage":    map[string]any{"postgres_url_file": PostgresURLFile},
		"valkey":     map[string]any{"url": valkeyURL},
		"ca": map[string]any{
			"url":                       caURL,
			"root":                      CARootFile,
			"provisioner":               FederationProvisioner,
			"provisioner_password_file": ProvisionerPasswordFile,
		},
		"sealing_key_file": SealingKeyFile,
		"audit_key_file":   AuditKeyFile,
	}
}

// Merge deep-merges src into dst and returns dst: maps merge key by key, anything else
// (nil included) replaces.
func Merge(dst, src map[string]any) map[string]any {
	for k, v := range src {
		sub, ok := v.(map[string]any)
		if d, isMap := dst[k].(map[string]any); ok && isMap {
			dst[k] = Merge(d, sub)
			continue
		}
		dst[k] = v
	}
	return dst
}

// deepCopy copies a config tree (maps of maps; leaves are shared, never mutated).
func deepCopy(m map[string]any) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		if sub, ok := v.(map[string]any); ok {
			v = deepCopy(sub)
		}
		out[k] = v
	}
	return out
}

// WriteConfig writes a gateway config (or any JSON document of the run) with mode 0600.
func WriteConfig(path string, cfg map[string]any) error { return writeJSON(path, cfg) }

// ensureKey writes a fresh key (a sealing or an audit key) unless the site has one.
// O_EXCL: two gateways of a site starting together must not both write a key.
func ensureKey(path string) error {
	_, err := siteinit.CreateFile(path, siteinit.NewKeyLine(), 0o600)
	return err
}

func writeSecret(path, content string) error {
	return os.WriteFile(path, []byte(content), 0o600)
}
