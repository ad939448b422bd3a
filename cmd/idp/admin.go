package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/caf-extranet/idp/config"
	"github.com/caf-extranet/idp/storage"
)

func cmdMigrate(ctx context.Context, args, environ []string, stdout io.Writer) error {
	fs, configPath := newFlagSet("migrate", "migrate [--config FILE]", stdout)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	c, err := loadConfig(*configPath, environ)
	if err != nil {
		return err
	}
	s, err := openStore(ctx, c.DatabaseURL)
	if err != nil {
		return err
	}
	defer s.Close()
	// A schema that newer servers migrated has nothing to gain from this
	// binary's migrations, and "schema at version N" would tell the
	// operator, whom the other commands sent here, that it is now current.
	v, err := s.SchemaVersion(ctx)
	if err != nil {
		return fmt.Errorf("schema version: %w", err)
	}
	latest, err := latestMigration(c.DatabaseURL)
	if err != nil {
		return err
	}
	if v > latest {
		return &newerSchemaError{version: v, latest: latest}
	}
	if err := s.Migrate(ctx); err != nil {
		return fmt.Errorf("applying migrations: %w", err)
	}
	if v, err = s.SchemaVersion(ctx); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "schema at version %d\n", v)
	return nil
}

// newerSchemaError: the database was migrated by a newer idp than this one.
type newerSchemaError struct{ version, latest int }

func (e *newerSchemaError) Error() string {
	return fmt.Sprintf("schema at version %d, newer than this binary (its latest migration is %d): nothing done; "+
		"run the idp of the servers that migrated it", e.version, e.latest)
}

const keysUsage = `Usage: idp keys <subcommand> [flags]

Subcommands:
  rotate   publish a new signing key now; it signs after keys.publish_ahead
  list     list the signing keys
`

func cmdKeys(ctx context.Context, args, environ []string, stdout io.Writer) error {
	sub, rest, err := subcommand("keys", args, stdout, keysUsage)
	if err != nil {
		return err
	}
	fs, configPath := newFlagSet("keys "+sub, "keys "+sub+" [flags]", stdout)
	switch sub {
	case "rotate":
		if err := parseFlags(fs, rest); err != nil {
			return err
		}
		c, err := loadConfig(*configPath, environ)
		if err != nil {
			return err
		}
		store, err := openCurrent(ctx, c.DatabaseURL)
		if err != nil {
			return err
		}
		defer store.Close()
		srv, err := newServerOn(ctx, c, rotateStore{store}, time.Now, newLogger(c, io.Discard))
		if err != nil {
			return err
		}
		rotated, err := srv.provider.RotateKeys(ctx, true)
		if err != nil {
			return err
		}
		if !rotated {
			return errors.New("another instance rotated the keys at the same moment; nothing done")
		}
		auditAdmin(ctx, srv.store, "admin.keys_rotated", storage.User{}, "by="+osUser())
		fmt.Fprintf(stdout, "new signing key published; it signs from %s\n", time.Now().Add(c.Keys.PublishAhead).Format(time.RFC3339))
		return nil
	case "list":
		if err := parseFlags(fs, rest); err != nil {
			return err
		}
		return withStore(ctx, *configPath, environ, func(_ config.Config, s migratingStore) error {
			keys, err := s.ListSigningKeys(ctx)
			if err != nil {
				return err
			}
			tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "KID\tALG\tCREATED\tSIGNS FROM")
			for _, k := range keys {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", k.ID, k.Algorithm, k.CreatedAt.Format(time.RFC3339), k.NotBefore.Format(time.RFC3339))
			}
			return tw.Flush()
		})
	}
	return &usageError{fmt.Sprintf("keys: unknown subcommand %q (see idp keys --help)", sub)}
}

// rotateStore is the store idp keys rotate builds the provider on, so that
// a refused rotation writes nothing. The secrets that serve only HTTP
// requests (cookies, CAPTCHAs) are read when stored, never created: the
// command serves none. The key-encryption key, when none is stored, is
// created only in a database without signing keys, the first of which it
// then encrypts: next to existing keys, encrypted with the servers'
// configured secrets.key_encryption_key, a new one could not decrypt them.
type rotateStore struct{ migratingStore }

func (s rotateStore) GetOrCreateSecret(ctx context.Context, name string, candidate []byte) ([]byte, error) {
	v, err := s.GetSecret(ctx, name)
	if !errors.Is(err, storage.ErrNotFound) {
		return v, err
	}
	if name != secretKEK {
		return candidate, nil
	}
	keys, err := s.ListSigningKeys(ctx)
	if err != nil {
		return nil, err
	}
	if len(keys) > 0 {
		return nil, errNoKEKHere
	}
	return s.migratingStore.GetOrCreateSecret(ctx, name, candidate)
}

// errNoKEKHere: the signing keys were encrypted with a configured
// key-encryption key that this shell lacks.
var errNoKEKHere = errors.New("the signing keys cannot be decrypted: none is stored with them, so the servers set " +
	"secrets.key_encryption_key, and this shell does not (IDP_SECRETS_KEY_ENCRYPTION_KEY, or the servers' --config); nothing done")
