package siteinit

import (
	"bytes"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
)

// The files InitSecrets keeps in a site's secrets folder.
const (
	ProvisionerPasswordFile = "provisioner.pass" // ca.provisioner_password_file
	SealingKeyFile          = "sealing.key"      // sealing_key_file
	AuditKeyFile            = "audit.key"        // audit_key_file
	PostgresURLFile         = "postgres.url"     // storage.postgres_url_file
)

// SecretsOptions says where a site's secrets go.
type SecretsOptions struct {
	Dir string // the secrets folder (mode 0700)
	// PostgresURL is the database URL without a password; with it, PostgresPasswordFile
	// holds the database's password (made when absent, for the database's own init to
	// read) and InitSecrets writes PostgresURLFile, the URL with that password.
	PostgresURL          string
	PostgresPasswordFile string
}

// SecretsResult names the files (never their content): Created were written now, Kept
// were there already and left alone.
type SecretsResult struct {
	Dir     string   `json:"dir"`
	Created []string `json:"created"`
	Kept    []string `json:"kept"`
}

// Files are all of the result's files, created and kept.
func (r SecretsResult) Files() []string { return append(append([]string{}, r.Created...), r.Kept...) }

// InitSecrets writes each secret of a site that is not there yet: the provisioner
// password, the sealing and audit keys and, with a PostgresURL, the database password
// and the URL carrying it. It never rewrites one: a re-run keeps them all.
func InitSecrets(o SecretsOptions) (SecretsResult, error) {
	res := SecretsResult{Dir: o.Dir, Created: []string{}, Kept: []string{}}
	if o.Dir == "" {
		return res, errors.New("no secrets folder: say where the secrets go")
	}
	if (o.PostgresURL == "") != (o.PostgresPasswordFile == "") {
		return res, errors.New("the database URL and its password file go together: give both or neither")
	}
	if err := os.MkdirAll(o.Dir, 0o700); err != nil {
		return res, err
	}
	type secret struct {
		path    string
		content func() ([]byte, error)
		mode    os.FileMode
	}
	fresh := func(f func() []byte) func() ([]byte, error) { return func() ([]byte, error) { return f(), nil } }
	list := []secret{
		{filepath.Join(o.Dir, ProvisionerPasswordFile), fresh(NewPassword), 0o600},
		{filepath.Join(o.Dir, SealingKeyFile), fresh(NewKeyLine), 0o600},
		{filepath.Join(o.Dir, AuditKeyFile), fresh(NewKeyLine), 0o600},
	}
	if o.PostgresURL != "" {
		u, err := url.Parse(o.PostgresURL)
		if err != nil || u.Host == "" || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
			return res, fmt.Errorf("database URL: want postgres://user@host:port/db (no password)")
		}
		if _, has := u.User.Password(); has {
			return res, errors.New("database URL: leave the password out; it is made and kept in the password file")
		}
		list = append(list,
			// Readable by others: the database image's init reads it as its own user,
			// whose uid differs between images. Its volume is mounted by the database
			// and this one-shot only.
			secret{o.PostgresPasswordFile, fresh(NewPassword), 0o644},
			secret{filepath.Join(o.Dir, PostgresURLFile), func() ([]byte, error) { return urlWithPassword(u, o.PostgresPasswordFile) }, 0o600})
	}
	for _, s := range list {
		if _, err := os.Stat(s.path); err == nil {
			res.Kept = append(res.Kept, s.path)
			continue
		}
		b, err := s.content()
		if err != nil {
			return res, err
		}
		created, err := CreateFile(s.path, b, s.mode)
		if err != nil {
			return res, fmt.Errorf("write %s: %w", s.path, err)
		}
		if created {
			res.Created = append(res.Created, s.path)
		} else {
			res.Kept = append(res.Kept, s.path)
		}
	}
	return res, nil
}

// urlWithPassword is u with the password of passwordFile (its first line).
func urlWithPassword(u *url.URL, passwordFile string) ([]byte, error) {
	pass, err := ReadPassword(passwordFile)
	if err != nil {
		return nil, fmt.Errorf("database password: %w", err)
	}
	withPass := *u
	withPass.User = url.UserPassword(u.User.Username(), string(pass))
	return []byte(withPass.String() + "\n"), nil
}

// ReadPassword reads a password file's first line, refusing an empty one.
func ReadPassword(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	pass, _, _ := bytes.Cut(b, []byte("\n"))
	if len(pass) == 0 {
		return nil, fmt.Errorf("%s is empty", path)
	}
	return pass, nil
}
