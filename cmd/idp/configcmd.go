package main

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/caf-extranet/idp/config"
)

const configUsage = `Usage: idp config <subcommand> [flags]

Subcommands:
  check       load the configuration (file + IDP_* environment) and report every problem
  reference   print every key with its environment variable and default (Markdown)
`

func cmdConfig(_ context.Context, args, environ []string, stdout io.Writer) error {
	sub, rest, err := subcommand("config", args, stdout, configUsage)
	if err != nil {
		return err
	}
	fs, configPath := newFlagSet("config "+sub, "config "+sub+" [--config FILE]", stdout)
	if err := parseFlags(fs, rest); err != nil {
		return err
	}
	switch sub {
	case "check":
		if _, err := loadConfig(*configPath, environ); err != nil {
			return err
		}
		// Which file was read: --config, IDP_CONFIG, or none at all.
		from := "no file: defaults and IDP_* variables"
		if file := config.FilePath(*configPath, environ); file != "" {
			from = "file " + file + " and IDP_* variables"
		}
		fmt.Fprintf(stdout, "configuration valid (%s)\n", from)
		return nil
	case "reference":
		fmt.Fprint(stdout, configReference())
		return nil
	}
	return &usageError{fmt.Sprintf("config: unknown subcommand %q (see idp config --help)", sub)}
}

// configReference is the Markdown table of every key; the README embeds it
// (a test keeps the two equal).
func configReference() string {
	var sb strings.Builder
	sb.WriteString("| key | environment | default | meaning |\n|---|---|---|---|\n")
	for _, e := range config.Reference() {
		def := e.Default
		if def == "" {
			def = "(empty)"
		}
		fmt.Fprintf(&sb, "| `%s` | `%s` | `%s` | %s |\n", e.Key, e.Env, def, strings.ReplaceAll(e.Description, "|", "\\|"))
	}
	return sb.String()
}
