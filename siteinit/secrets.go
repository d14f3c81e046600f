package siteinit

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
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
// were there already and left alone, Derived are rebuilt from the others on every run
// (the database URL, from the kept or fresh password).
type SecretsResult struct {
	Dir     string   `json:"dir"`
	Created []string `json:"created"`
	Kept    []string `json:"kept"`
	Derived []string `json:"derived"`
}

// Files are all of the result's files, created, kept and derived.
func (r SecretsResult) Files() []string {
	return append(append(append([]string{}, r.Created...), r.Kept...), r.Derived...)
}

// InitSecrets writes each secret of a site that is not there yet: the provisioner
// password, the sealing and audit keys and, with a PostgresURL, the database password.
// It never rewrites one: a re-run keeps them all. The URL carrying the database
// password is derived, not kept: it is written again on every run, so it always holds
// the password file's password (even one made again after its file went).
func InitSecrets(o SecretsOptions) (SecretsResult, error) {
	res := SecretsResult{Dir: o.Dir, Created: []string{}, Kept: []string{}, Derived: []string{}}
	if o.Dir == "" {
		return res, errors.New("no secrets folder: say where the secrets go")
	}
	if (o.PostgresURL == "") != (o.PostgresPasswordFile == "") {
		return res, errors.New("the database URL and its password file go together: give both or neither")
	}
	var dbURL *url.URL
	if o.PostgresURL != "" {
		u, err := url.Parse(o.PostgresURL)
		if err != nil || u.Host == "" || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
			return res, fmt.Errorf("database URL: want postgres://user@host:port/db (no password)")
		}
		if _, has := u.User.Password(); has {
			return res, errors.New("database URL: leave the password out; it is made and kept in the password file")
		}
		dbURL = u
	}
	if err := os.MkdirAll(o.Dir, 0o700); err != nil {
		return res, err
	}
	type secret struct {
		path    string
		content func() []byte
		mode    os.FileMode
	}
	list := []secret{
		{filepath.Join(o.Dir, ProvisionerPasswordFile), NewPassword, 0o600},
		{filepath.Join(o.Dir, SealingKeyFile), NewKeyLine, 0o600},
		{filepath.Join(o.Dir, AuditKeyFile), NewKeyLine, 0o600},
	}
	if dbURL != nil {
		// Readable by others: the database image's init reads it as its own user,
		// whose uid differs between images. Its volume is mounted by the database
		// and this one-shot only.
		list = append(list, secret{o.PostgresPasswordFile, NewPassword, 0o644})
	}
	for _, s := range list {
		created, err := CreateFile(s.path, s.content(), s.mode)
		if err != nil {
			return res, fmt.Errorf("write %s: %w", s.path, err)
		}
		if created {
			res.Created = append(res.Created, s.path)
		} else {
			res.Kept = append(res.Kept, s.path)
		}
	}
	if dbURL != nil {
		path := filepath.Join(o.Dir, PostgresURLFile)
		b, err := urlWithPassword(dbURL, o.PostgresPasswordFile)
		if err != nil {
			return res, err
		}
		if err := WriteFile(path, b, 0o600); err != nil {
			return res, fmt.Errorf("write %s: %w", path, err)
		}
		res.Derived = append(res.Derived, path)
	}
	return res, nil
}

// EnsurePassword returns the password in path (its first line), making the file first
// when it is absent, unless kept says that what the password opens is there already
// (a CA's keys, say): a fresh password would not open them, so it refuses instead.
func EnsurePassword(path string, kept bool) ([]byte, error) {
	if kept {
		if _, err := os.Lstat(path); errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("%s does not exist, but what its password opens is kept: put back the password file it was made with (a new password would not open it), or move the old files away to start afresh", path)
		}
	} else if _, err := CreateFile(path, NewPassword(), 0o600); err != nil {
		return nil, err
	}
	if _, err := keptFile(path); err != nil {
		return nil, err
	}
	return ReadPassword(path)
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
