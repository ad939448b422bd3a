package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/url"
	"regexp"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/caf-extranet/idp/account"
	"github.com/caf-extranet/idp/config"
	"github.com/caf-extranet/idp/storage"
)

const clientUsage = `Usage: idp client <subcommand> [flags]

Subcommands:
  add     --id ID --name N --redirect-uri URI [--redirect-uri URI2]
          [--post-logout-redirect-uri URI] [--home-url URL] [--public] [--no-refresh] [--restricted]
          a confidential client's secret is printed once; only its hash is kept
  list    list the relying applications
  restrict --id ID [--open]   only habilitated agents may enter (--open: everyone again)
  remove  --id ID
`

var clientIDPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

// checkClientID refuses, as a wrong command line, an --id that is missing
// or that no client can have (clientIDProblem).
func checkClientID(cmd, id string) error {
	if id == "" {
		return &usageError{cmd + ": --id is required"}
	}
	if p := clientIDProblem("--id", id); p != "" {
		return &usageError{cmd + ": " + p}
	}
	return nil
}

// clientIDProblem is what is wrong with id, given by flag to look a client
// up: client add has always enforced the pattern, so an id outside it is
// nobody's, and PostgreSQL would answer one that is not UTF-8 with a raw
// SQLSTATE error.
func clientIDProblem(flag, id string) string {
	if clientIDPattern.MatchString(id) {
		return ""
	}
	return fmt.Sprintf("%s %q is not a client id (letters, digits, '.', '_' or '-', 1 to 64 characters)", flag, id)
}

func cmdClient(ctx context.Context, args, environ []string, stdout io.Writer) error {
	sub, rest, err := subcommand("client", args, stdout, clientUsage)
	if err != nil {
		return err
	}
	// Each subcommand defines the flags it uses, and only those.
	fs, configPath := newFlagSet("client "+sub, "client "+sub+" [flags]", stdout)
	switch sub {
	case "add":
		id := fs.String("id", "", "client id")
		name := fs.String("name", "", "display name of the application")
		var redirects, postLogout listFlag
		fs.Var(&redirects, "redirect-uri", "redirect URI, exact match (repeatable)")
		fs.Var(&postLogout, "post-logout-redirect-uri", "post-logout redirect URI (repeatable)")
		home := fs.String("home-url", "", "the application's home page, linked from the secure space")
		public := fs.Bool("public", false, "public client (no secret, PKCE required)")
		noRefresh := fs.Bool("no-refresh", false, "never issue refresh tokens to this client")
		restricted := fs.Bool("restricted", false, "only agents habilitated for it may enter (see idp habilitation)")
		if err := parseFlags(fs, rest); err != nil {
			return err
		}
		c, err := newClient(*id, *name, redirects, postLogout, *home, *public, !*noRefresh)
		if err != nil {
			return err
		}
		c.Restricted = *restricted
		secret := ""
		if !c.Public {
			b := make([]byte, 32)
			if _, err := rand.Read(b); err != nil {
				return err
			}
			secret = base64.RawURLEncoding.EncodeToString(b)
			c.SecretHash = storage.HashSecret(secret)
		}
		return withStore(ctx, *configPath, environ, func(_ config.Config, s migratingStore) error {
			c.CreatedAt = time.Now()
			if err := s.CreateClient(ctx, c); err != nil {
				if errors.Is(err, storage.ErrDuplicate) {
					return fmt.Errorf("a client with id %s already exists", c.ID)
				}
				return err
			}
			auditAdmin(ctx, s, "admin.client_added", storage.User{}, "client="+c.ID+" by="+osUser())
			fmt.Fprintf(stdout, "client %s created\n", c.ID)
			if secret != "" {
				fmt.Fprintf(stdout, "client_secret: %s\n(shown once: store it now, only its hash is kept)\n", secret)
			}
			return nil
		})
	case "list":
		if err := parseFlags(fs, rest); err != nil {
			return err
		}
		return withStore(ctx, *configPath, environ, func(_ config.Config, s migratingStore) error {
			clients, err := s.ListClients(ctx)
			if err != nil {
				return err
			}
			tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tNAME\tTYPE\tACCESS\tREDIRECT URIS\tHOME")
			for _, c := range clients {
				typ := "confidential"
				if c.Public {
					typ = "public"
				}
				access := "open"
				if c.Restricted {
					access = "restricted"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", c.ID, c.Name, typ, access, strings.Join(c.RedirectURIs, " "), c.HomeURL)
			}
			return tw.Flush()
		})
	case "restrict":
		id := fs.String("id", "", "client id")
		open := fs.Bool("open", false, "open the client to every active agent again")
		if err := parseFlags(fs, rest); err != nil {
			return err
		}
		if err := checkClientID("client restrict", *id); err != nil {
			return err
		}
		return withStore(ctx, *configPath, environ, func(_ config.Config, s migratingStore) error {
			if err := s.SetClientRestricted(ctx, *id, !*open); err != nil {
				if errors.Is(err, storage.ErrNotFound) {
					return fmt.Errorf("no client with id %s", *id)
				}
				return err
			}
			state := "restricted to habilitated agents"
			if *open {
				state = "open to every active agent"
			}
			auditAdmin(ctx, s, "admin.client_access", storage.User{}, "client="+*id+" "+state+" by="+osUser())
			fmt.Fprintf(stdout, "client %s %s\n", *id, state)
			return nil
		})
	case "remove":
		id := fs.String("id", "", "client id")
		if err := parseFlags(fs, rest); err != nil {
			return err
		}
		if err := checkClientID("client remove", *id); err != nil {
			return err
		}
		return withStore(ctx, *configPath, environ, func(_ config.Config, s migratingStore) error {
			if err := s.DeleteClient(ctx, *id); err != nil {
				if errors.Is(err, storage.ErrNotFound) {
					return fmt.Errorf("no client with id %s", *id)
				}
				return err
			}
			auditAdmin(ctx, s, "admin.client_removed", storage.User{}, "client="+*id+" by="+osUser())
			fmt.Fprintf(stdout, "client %s removed\n", *id)
			return nil
		})
	}
	return &usageError{fmt.Sprintf("client: unknown subcommand %q (see idp client --help)", sub)}
}

// newClient validates a client registration; every problem at once.
func newClient(id, name string, redirects, postLogout []string, home string, public, allowRefresh bool) (storage.Client, error) {
	var problems []string
	if !clientIDPattern.MatchString(id) {
		problems = append(problems, fmt.Sprintf("--id %q: letters, digits, '.', '_' or '-', 1 to 64 characters", id))
	}
	// The name is shown in client list, on the login pages and in mails:
	// the rule of an agent's name.
	name, err := account.ValidateText("name", name, true)
	if err != nil {
		problems = append(problems, flagProblems(err))
	}
	if len(redirects) == 0 {
		problems = append(problems, "at least one --redirect-uri is required")
	}
	for _, u := range redirects {
		if err := checkRedirectURI(u); err != nil {
			problems = append(problems, "--redirect-uri "+err.Error())
		}
	}
	for _, u := range postLogout {
		if err := checkRedirectURI(u); err != nil {
			problems = append(problems, "--post-logout-redirect-uri "+err.Error())
		}
	}
	if home != "" {
		if err := checkRedirectURI(home); err != nil {
			problems = append(problems, "--home-url "+err.Error())
		}
	}
	if len(problems) > 0 {
		return storage.Client{}, &usageError{"client add: " + strings.Join(problems, "; ")}
	}
	return storage.Client{ID: id, Name: name, Public: public, RedirectURIs: redirects,
		PostLogoutRedirectURIs: postLogout, HomeURL: home, AllowRefresh: allowRefresh}, nil
}

// checkRedirectURI accepts absolute https URLs, and http ones on loopback
// hosts (development), without fragment.
func checkRedirectURI(raw string) error {
	// url.Parse takes spaces, invalid UTF-8 and controls in a path: none
	// is a URI, and a space would be ambiguous in client list's
	// space-separated list.
	if !utf8.ValidString(raw) || strings.ContainsFunc(raw, func(r rune) bool {
		return unicode.IsSpace(r) || unicode.In(r, unicode.Cc, unicode.Cf)
	}) {
		return fmt.Errorf("%q is not a URI: it holds spaces, control characters or invalid UTF-8 (percent-encode them)", raw)
	}
	u, err := url.Parse(raw)
	if err != nil || !u.IsAbs() || u.Host == "" {
		return fmt.Errorf("%q is not an absolute URL", raw)
	}
	if u.Hostname() == "" { // "https://:8443/cb": a port, no host
		return fmt.Errorf("%q has no host name", raw)
	}
	if u.Fragment != "" || strings.Contains(raw, "#") {
		return fmt.Errorf("%q must not have a fragment", raw)
	}
	switch u.Scheme {
	case "https":
	case "http":
		if !config.OnLoopback(raw) {
			return fmt.Errorf("%q: http is allowed only on localhost; use https", raw)
		}
	default:
		return fmt.Errorf("%q: scheme must be https (or http on localhost)", raw)
	}
	return nil
}
