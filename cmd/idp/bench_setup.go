package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/caf-extranet/idp/account/policy"
	"github.com/caf-extranet/idp/config"
	"github.com/caf-extranet/idp/storage"
	"github.com/caf-extranet/idp/storage/passhash"
)

// benchClientPrefix names the clients --setup registers. Each setup
// registers a new one (its secret is printed once, like any client's) and
// removes the previous ones.
const benchClientPrefix = "bench-"

// auditSeedBatch is how many audit events one transaction of the seeding
// appends.
const auditSeedBatch = 100000

// benchSetup prepares the database the server uses: a confidential client
// allowed to refresh, the agents (seeded through the bulk importer of `idp
// user import`, all sharing one hash of --password) and, when asked, audit
// events. It fills o's client id and secret.
func benchSetup(ctx context.Context, c config.Config, s migratingStore, o *benchOptions, out io.Writer) error {
	now := time.Now()
	if o.clientID == "" {
		clients, err := s.ListClients(ctx)
		if err != nil {
			return err
		}
		for _, cl := range clients {
			if strings.HasPrefix(cl.ID, benchClientPrefix) {
				if err := s.DeleteClient(ctx, cl.ID); err != nil && !errors.Is(err, storage.ErrNotFound) {
					return err
				}
			}
		}
		secret := storage.NewSecret()
		cl, err := newClient(benchClientPrefix+storage.NewID()[:8], "idp bench", []string{o.redirectURI}, nil, "", false, true)
		if err != nil {
			return err
		}
		cl.SecretHash, cl.CreatedAt = storage.HashSecret(secret), now
		if err := s.CreateClient(ctx, cl); err != nil {
			return err
		}
		o.clientID, o.clientSecret = cl.ID, secret
		fmt.Fprintf(out, "setup: client %s registered (redirect URI %s)\n", cl.ID, o.redirectURI)
	}

	have, err := seededAgents(ctx, s, o.email, o.agents)
	if err != nil {
		return err
	}
	if have < o.agents {
		bulk, ok := s.(storage.BulkImporter)
		if !ok {
			return errors.New("bench: this database engine cannot import in bulk")
		}
		start := time.Now()
		hash, err := passhash.NewHasher(c.Password.Hash.Params(), 1).Hash(ctx, policy.Normalize(o.password))
		if err != nil {
			return err
		}
		users := func(yield func(storage.User, error) bool) {
			for i := have; i < o.agents; i++ {
				u := storage.User{ID: storage.NewID(), Email: benchAgentEmail(o.email, i), Name: fmt.Sprintf("Agent %d", i),
					Organisation: "Banc d'essai", PasswordHash: hash, CreatedAt: now, UpdatedAt: now}
				if !yield(u, nil) {
					return
				}
			}
		}
		n, err := bulk.ImportUsers(ctx, users)
		if err != nil {
			return fmt.Errorf("bench: seeding agents: %w", err)
		}
		fmt.Fprintf(out, "setup: %d agents imported in %s (%d in all)\n", n, time.Since(start).Round(time.Millisecond), o.agents)
	} else {
		fmt.Fprintf(out, "setup: %d agents already there\n", o.agents)
	}

	if o.seedAudit > 0 {
		if err := seedAudit(ctx, s, o, now, out); err != nil {
			return err
		}
	}
	return nil
}

// seededAgents counts the agents of the pattern already stored. Seeding
// always adds a range [have, n) in one transaction, so the stored ones are a
// prefix: a binary search finds its end in about log2(n) lookups.
func seededAgents(ctx context.Context, s storage.Store, pattern string, n int) (int, error) {
	exists := func(i int) (bool, error) {
		_, err := s.GetUserByEmail(ctx, benchAgentEmail(pattern, i))
		if errors.Is(err, storage.ErrNotFound) {
			return false, nil
		}
		return err == nil, err
	}
	if !strings.Contains(pattern, "%") {
		ok, err := exists(0)
		if ok {
			return n, err
		}
		return 0, err
	}
	lo, hi := 0, n
	for lo < hi {
		mid := (lo + hi) / 2
		ok, err := exists(mid)
		if err != nil {
			return 0, err
		}
		if ok {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	return lo, nil
}

// seedAudit appends o.seedAudit events spread evenly over the past 300 days
// (inside the default retention, so the janitor keeps them), in time order
// as a provider records them, of the kinds a busy provider records.
func seedAudit(ctx context.Context, s storage.Store, o *benchOptions, now time.Time, out io.Writer) error {
	bulk, ok := s.(storage.BulkImporter)
	if !ok {
		return errors.New("bench: this database engine cannot append audit events in bulk")
	}
	start := time.Now()
	types := []string{"login.success", "login.success", "login.success", "login.failure", "recovery.requested"}
	span := 300 * 24 * time.Hour
	step := span / time.Duration(o.seedAudit)
	batch := make([]storage.AuditEvent, 0, auditSeedBatch)
	for done := 0; done < o.seedAudit; done += len(batch) {
		batch = batch[:0]
		for i := range min(auditSeedBatch, o.seedAudit-done) {
			batch = append(batch, storage.AuditEvent{
				Time:      now.Add(-span + time.Duration(done+i)*step),
				Type:      types[rand.IntN(len(types))],
				UserID:    storage.NewID(),
				Email:     benchAgentEmail(o.email, rand.IntN(max(o.agents, 1))),
				ClientIP:  fmt.Sprintf("10.%d.%d.%d", rand.IntN(256), rand.IntN(256), rand.IntN(256)),
				UserAgent: "Mozilla/5.0 (Windows NT 10.0; Win64; x64) idp-bench",
			})
		}
		if err := bulk.AppendAuditBatch(ctx, batch); err != nil {
			return fmt.Errorf("bench: seeding audit events: %w", err)
		}
	}
	fmt.Fprintf(out, "setup: %d audit events appended in %s\n", o.seedAudit, time.Since(start).Round(time.Millisecond))
	return nil
}
