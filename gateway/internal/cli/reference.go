package cli

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/cobra/doc"
)

// Reference is the admin CLI's reference in Markdown, one section per command in the
// tree's order, generated from the commands themselves (docs/ADMIN-CLI.md; a test
// fails when the committed file is stale).
func Reference() (string, error) {
	root := New(nil, slog.New(slog.NewTextHandler(io.Discard, nil)))
	var b bytes.Buffer
	b.WriteString("# Admin CLI reference\n\nGenerated from the command tree by `make docs` " +
		"(`go test ./gateway/internal/cli -run TestReference -update`); do not edit by hand.\n\n")
	if err := write(&b, root); err != nil {
		return "", err
	}
	return b.String(), nil
}

func write(b *bytes.Buffer, c *cobra.Command) error {
	if !c.IsAvailableCommand() && c.HasParent() {
		return nil
	}
	c.DisableAutoGenTag = true
	var section bytes.Buffer
	// Links between sections are anchors within this one file.
	err := doc.GenMarkdownCustom(c, &section, func(name string) string {
		return "#" + anchor(name)
	})
	if err != nil {
		return fmt.Errorf("%s: %w", c.CommandPath(), err)
	}
	// cobra's headings start at "##", under the file's own title.
	b.Write(section.Bytes())
	b.WriteString("\n")
	for _, sub := range c.Commands() {
		if err := write(b, sub); err != nil {
			return err
		}
	}
	return nil
}

// anchor is the heading anchor of a command's section from cobra's file name for it
// ("gateway_federation_peer.md" → "gateway-federation-peer").
func anchor(file string) string {
	return strings.ReplaceAll(strings.TrimSuffix(file, ".md"), "_", "-")
}
