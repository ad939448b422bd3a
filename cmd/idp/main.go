// Command idp is the identity provider of the partner extranet: one binary
// that serves the OpenID provider and its login pages (idp serve) and
// administers it (migrate, user, client, keys). It is the composition root:
// every dependency is built here and passed down explicitly.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

// usageError is a mistake in the command line: exit status 2.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Environ(), os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

const topUsage = `Usage: idp <command> [flags]

Commands:
  serve       run the identity provider (applies pending migrations first)
  migrate     apply pending database migrations and exit
  user        manage agents' accounts (add, list, disable, enable, reset)
  client      manage relying applications (add, list, remove)
  keys        manage signing keys (rotate, list)
  config      check the configuration, print the reference of every key
  habilitation  who may enter which restricted application (grant, revoke, list, import)
  audit       read the audit trail (list [--email E] [--since D] [--limit N])
  bench       drive a running provider over HTTP and measure it (docs/performance.md)
  version     print the version

Every command accepts --config FILE (YAML; default: $IDP_CONFIG, if set) and
reads IDP_* environment variables; "idp <command> --help" describes its flags.
`

// run executes one command line and returns the exit status. Every error is
// reported on one line of stderr.
func run(ctx context.Context, args, environ []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, topUsage)
		return 2
	}
	var err error
	switch args[0] {
	case "serve":
		err = cmdServe(ctx, args[1:], environ, stdout, stderr)
	case "migrate":
		err = cmdMigrate(ctx, args[1:], environ, stdout)
	case "user":
		err = cmdUser(ctx, args[1:], environ, stdout)
	case "client":
		err = cmdClient(ctx, args[1:], environ, stdout)
	case "keys":
		err = cmdKeys(ctx, args[1:], environ, stdout)
	case "config":
		err = cmdConfig(ctx, args[1:], environ, stdout)
	case "habilitation":
		err = cmdHabilitation(ctx, args[1:], environ, stdout)
	case "audit":
		err = cmdAudit(ctx, args[1:], environ, stdout)
	case "bench":
		err = cmdBench(ctx, args[1:], environ, stdout)
	case "version", "--version":
		fmt.Fprintln(stdout, "idp", version)
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, topUsage)
	default:
		err = &usageError{fmt.Sprintf("unknown command %q (see idp --help)", args[0])}
	}
	if err == nil || errors.Is(err, flag.ErrHelp) {
		return 0
	}
	fmt.Fprintln(stderr, "idp: "+oneLine(err.Error()))
	var ue *usageError
	if errors.As(err, &ue) {
		return 2
	}
	return 1
}

// oneLine folds a multi-line error (all config problems at once) onto one
// line, as administrators' scripts expect.
func oneLine(s string) string {
	out := make([]rune, 0, len(s))
	for _, r := range s {
		if r == '\n' {
			out = append(out, ';', ' ')
			continue
		}
		out = append(out, r)
	}
	return string(out)
}
