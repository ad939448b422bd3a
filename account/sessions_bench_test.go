package account_test

import (
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/caf-extranet/idp/account"
	"github.com/caf-extranet/idp/account/policy"
	"github.com/caf-extranet/idp/storage"
	"github.com/caf-extranet/idp/storage/passhash"
	"github.com/caf-extranet/idp/storage/postgres"
	"github.com/caf-extranet/idp/storage/postgres/pgtest"
	"github.com/caf-extranet/idp/storage/sqlite"
)

// BenchmarkSessionLookup is what every SSO visit of the login page costs the
// account rules: the session behind the browser's cookie (one query while
// its activity was recorded less than a minute ago).
func BenchmarkSessionLookup(b *testing.B) {
	for _, engine := range []string{"sqlite", "postgres"} {
		b.Run(engine, func(b *testing.B) {
			ctx := context.Background()
			var st interface {
				storage.Store
				Migrate(context.Context) error
			}
			var err error
			if engine == "sqlite" {
				st, err = sqlite.Open(ctx, filepath.Join(b.TempDir(), "bench.db"))
			} else {
				st, err = postgres.Open(ctx, pgtest.URL(b))
			}
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { st.Close() })
			if err := st.Migrate(ctx); err != nil {
				b.Fatal(err)
			}
			now := time.Date(2026, 11, 26, 9, 0, 0, 0, time.UTC)
			svc := account.New(st, passhash.NewHasher(passhash.Params{MemoryKiB: 1024, Iterations: 1, Parallelism: 1}, 1),
				policy.Default(), account.Config{ProvisionalLength: 12, ProvisionalTTL: time.Hour,
					SessionIdle: time.Hour, SessionAbsolute: 8 * time.Hour},
				func() time.Time { return now }, slog.New(slog.NewTextHandler(io.Discard, nil)), nil)
			u := storage.User{ID: storage.NewID(), Email: "agent@bench.fr", Name: "Agent", CreatedAt: now, UpdatedAt: now}
			if err := st.CreateUser(ctx, u); err != nil {
				b.Fatal(err)
			}
			cookie, _, err := svc.StartSession(ctx, u.ID, storage.SessionActive, now)
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if s, err := svc.Session(ctx, cookie); err != nil || s.UserID != u.ID {
						b.Errorf("session: %+v, %v", s, err)
						return
					}
				}
			})
		})
	}
}
