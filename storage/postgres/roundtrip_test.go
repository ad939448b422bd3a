package postgres

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/caf-extranet/idp/storage"
)

// roundTrips counts what a pool sends: each query or batch (BEGIN and COMMIT
// are queries) and each statement preparation is one round trip.
type roundTrips struct{ n atomic.Int64 }

func (r *roundTrips) TraceQueryStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceQueryStartData) context.Context {
	r.n.Add(1)
	return ctx
}
func (r *roundTrips) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}
func (r *roundTrips) TraceBatchStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceBatchStartData) context.Context {
	r.n.Add(1)
	return ctx
}
func (r *roundTrips) TraceBatchQuery(context.Context, *pgx.Conn, pgx.TraceBatchQueryData) {}
func (r *roundTrips) TraceBatchEnd(context.Context, *pgx.Conn, pgx.TraceBatchEndData)     {}
func (r *roundTrips) TracePrepareStart(ctx context.Context, _ *pgx.Conn, _ pgx.TracePrepareStartData) context.Context {
	r.n.Add(1)
	return ctx
}
func (r *roundTrips) TracePrepareEnd(context.Context, *pgx.Conn, pgx.TracePrepareEndData) {}

// count returns how many round trips fn took.
func (r *roundTrips) count(fn func()) int64 {
	before := r.n.Load()
	fn()
	return r.n.Load() - before
}

// tracedStore is a store on s's database whose pool has one connection
// (its statement cache then warms once) and counts its round trips.
func tracedStore(t *testing.T, s *Store) (*Store, *roundTrips) {
	t.Helper()
	cfg, err := pgxpool.ParseConfig(connString(t, s))
	if err != nil {
		t.Fatal(err)
	}
	rt := &roundTrips{}
	cfg.ConnConfig.Tracer = rt
	cfg.MaxConns = 1
	pool, err := pgxpool.NewWithConfig(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return &Store{pool: pool}, rt
}

// The store's calls for a refresh grant, in the usual case (a live token of
// an enabled agent): one round trip each. Before, reading the token took 6
// (a locking transaction), rotating it 9, and the gate 2 (the agent, then
// its habilitation).
func TestRefreshGrantRoundTrips(t *testing.T) {
	ctx := t.Context()
	now := time.Date(2026, 3, 14, 9, 30, 0, 0, time.UTC)
	s, trips := tracedStore(t, internalMigrated(t))
	err := s.CreateUser(ctx, storage.User{ID: "u-1", Email: "a@example.fr", PasswordHash: "h", CreatedAt: now, UpdatedAt: now})
	if err != nil {
		t.Fatal(err)
	}
	at, rt := internalTokenPair("g", "u-1", 0, now)
	if err := s.CreateTokens(ctx, at, &rt); err != nil {
		t.Fatal(err)
	}
	// refresh is what the provider asks of the store for one refresh grant.
	refresh := func(n int) {
		t.Helper()
		got, err := s.GetRefreshToken(ctx, rt.TokenHash, now)
		if err != nil {
			t.Fatalf("GetRefreshToken: %v", err)
		}
		if _, err := s.GetUserAccess(ctx, got.UserID, got.ClientID, now); err != nil {
			t.Fatalf("GetUserAccess: %v", err)
		}
		nextAT, nextRT := internalTokenPair("g", "u-1", n, now)
		if err := s.RotateRefreshToken(ctx, rt.TokenHash, nextAT, nextRT, now); err != nil {
			t.Fatalf("RotateRefreshToken: %v", err)
		}
		if _, err := s.GetRefreshToken(ctx, nextRT.TokenHash, now); err != nil {
			t.Fatalf("GetRefreshToken of the new token: %v", err)
		}
		rt = nextRT
	}
	refresh(1) // warms the connection's statement cache
	for _, c := range []struct {
		what string
		call func()
	}{
		{"GetRefreshToken", func() { _, _ = s.GetRefreshToken(ctx, rt.TokenHash, now) }},
		{"GetUserAccess", func() { _, _ = s.GetUserAccess(ctx, "u-1", "portail", now) }},
	} {
		if n := trips.count(c.call); n != 1 {
			t.Errorf("%s: %d round trips, want 1", c.what, n)
		}
	}
	nextAT, nextRT := internalTokenPair("g", "u-1", 2, now)
	n := trips.count(func() {
		if err := s.RotateRefreshToken(ctx, rt.TokenHash, nextAT, nextRT, now); err != nil {
			t.Fatalf("RotateRefreshToken: %v", err)
		}
	})
	if n != 1 {
		t.Errorf("RotateRefreshToken: %d round trips, want 1", n)
	}
	if _, err := s.GetRefreshToken(ctx, nextRT.TokenHash, now); err != nil {
		t.Errorf("GetRefreshToken of the last rotation's token: %v", err)
	}
	if _, err := s.GetRefreshToken(ctx, rt.TokenHash, now); err == nil {
		t.Error("the token rotated last is still usable")
	}
}
