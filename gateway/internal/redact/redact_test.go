package redact

import (
	"net/url"
	"strings"
	"testing"
)

func TestURL(t *testing.T) {
	tests := []struct{ in, want string }{
		{"postgres://mosaic:s3cret@127.0.0.1:5432/gateway?sslmode=disable", "postgres://127.0.0.1:5432/gateway?sslmode=disable"},
		{"redis://:pw@127.0.0.1:6379/0", "redis://127.0.0.1:6379/0"},
		{"postgres://h/db?password=abc&sslmode=require", "postgres://h/db?password=" + Mask + "&sslmode=require"},
		{"not a url with s3cret", Mask},
		{"", Mask},
	}
	for _, tc := range tests {
		if got := URL(tc.in); got != tc.want {
			t.Errorf("URL(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestRedactorBlanksSecretsAndUserinfo(t *testing.T) {
	r := New("postgres://mosaic:p%40ss-word@db:5432/x")
	msg := r.String(`failed: postgres://mosaic:p%40ss-word@db:5432/x said "p@ss-word" and redis://u:other@h`)
	for _, leak := range []string{"p@ss-word", "p%40ss-word", "u:other"} {
		if strings.Contains(msg, leak) {
			t.Errorf("leaked %q in %q", leak, msg)
		}
	}
}

// FuzzRedactor: whatever the password and the surrounding text, the password (in
// plain, query- or path-escaped form) never survives, in the URL or in free text.
func FuzzRedactor(f *testing.F) {
	f.Add("hunter2", "error connecting")
	f.Add("p@ss:w/rd?", "dsn=%s failed")
	f.Add("ünïcödé-pässwörd", "x")
	f.Fuzz(func(t *testing.T, password, text string) {
		if len(strings.TrimSpace(password)) < 4 || strings.ContainsAny(password, "\x00\r\n") {
			t.Skip()
		}
		dsn := (&url.URL{Scheme: "postgres", User: url.UserPassword("u", password), Host: "127.0.0.1:5432", Path: "/db"}).String()
		r := New(dsn)
		out := r.String(text + " " + dsn + " " + password)
		for _, form := range []string{strings.TrimSpace(password), url.QueryEscape(strings.TrimSpace(password))} {
			if strings.Contains(out, form) && !strings.Contains(Mask, form) {
				t.Fatalf("password form %q survived in %q", form, out)
			}
		}
		if strings.Contains(URL(dsn), url.QueryEscape(password)) && len(password) > 0 && !strings.Contains("postgres://127.0.0.1:5432/db", url.QueryEscape(password)) {
			t.Fatalf("URL() kept the password: %q", URL(dsn))
		}
	})
}
