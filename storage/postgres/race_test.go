package postgres

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/caf-extranet/idp/storage"
	"github.com/caf-extranet/idp/storage/postgres/pgtest"
)

// internalMigrated is a store on a fresh, migrated schema of its own.
func internalMigrated(t *testing.T) *Store {
	t.Helper()
	s := internalOpen(t, pgtest.URL(t))
	if err := s.Migrate(t.Context()); err != nil {
		t.Fatalf("Migrate: %v", err)
	}
	return s
}

// countLiveTokens counts the tokens of a grant that are neither revoked nor, for
// refresh tokens, rotated: what an attacker could still use.
func countLiveTokens(t *testing.T, s *Store, grantID string) int {
	t.Helper()
	var n int
	err := s.pool.QueryRow(t.Context(), `SELECT
		(SELECT count(*) FROM access_tokens WHERE grant_id = $1 AND NOT revoked) +
		(SELECT count(*) FROM refresh_tokens WHERE grant_id = $1 AND NOT revoked AND rotated_at IS NULL)`,
		grantID).Scan(&n)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func internalTokenPair(grantID, userID string, n int, now time.Time) (storage.AccessToken, storage.RefreshToken) {
	at := storage.AccessToken{ID: fmt.Sprintf("at-%s-%d", grantID, n), GrantID: grantID, ClientID: "portail",
		UserID: userID, Scopes: []string{"openid"}, ExpiresAt: now.Add(time.Hour), CreatedAt: now}
	rt := storage.RefreshToken{ID: fmt.Sprintf("rt-%s-%d", grantID, n), TokenHash: fmt.Sprintf("hash-%s-%d", grantID, n),
		GrantID: grantID, ClientID: "portail", UserID: userID, Scopes: []string{"openid", "offline_access"},
		AuthTime: now, ExpiresAt: now.Add(24 * time.Hour), CreatedAt: now}
	return at, rt
}

// agentWithFamily stores an agent whose password hash is hash and the first
// pair of a refresh family (grant "g-"+user), and returns its refresh token.
func agentWithFamily(t *testing.T, s *Store, user, hash string, now time.Time) storage.RefreshToken {
	t.Helper()
	ctx := t.Context()
	err := s.CreateUser(ctx, storage.User{ID: user, Email: user + "@example.fr", PasswordHash: hash,
		CreatedAt: now, UpdatedAt: now})
	if err != nil {
		t.Fatal(err)
	}
	at, rt := internalTokenPair("g-"+user, user, 1, now)
	if err := s.CreateTokens(ctx, at, &rt); err != nil {
		t.Fatal(err)
	}
	return rt
}

// together runs the functions at once and waits for them.
func runTogether(fs ...func()) {
	gate := make(chan struct{})
	var wg sync.WaitGroup
	for _, f := range fs {
		wg.Go(func() { <-gate; f() })
	}
	close(gate)
	wg.Wait()
}

// A replay of an old refresh token racing with the legitimate rotation of the
// current one: whichever runs first, no usable token of the family may be
// left (the rotation must not slip a new pair past the revocation).
func TestReplayRacingRotationLeavesNoLiveToken(t *testing.T) {
	s := internalMigrated(t)
	ctx := t.Context()
	now := time.Date(2026, 3, 14, 9, 30, 0, 0, time.UTC)
	for round := range 15 {
		grant := fmt.Sprintf("g%d", round)
		at1, rt1 := internalTokenPair(grant, "u-1", 1, now)
		if err := s.CreateTokens(ctx, at1, &rt1); err != nil {
			t.Fatal(err)
		}
		at2, rt2 := internalTokenPair(grant, "u-1", 2, now)
		if err := s.RotateRefreshToken(ctx, rt1.TokenHash, at2, rt2, now); err != nil {
			t.Fatal(err)
		}
		at3, rt3 := internalTokenPair(grant, "u-1", 3, now)
		var replayErr, rotateErr error
		runTogether(
			func() { _, replayErr = s.GetRefreshToken(ctx, rt1.TokenHash, now) },
			func() { rotateErr = s.RotateRefreshToken(ctx, rt2.TokenHash, at3, rt3, now) },
		)
		if !errors.Is(replayErr, storage.ErrAlreadyUsed) {
			t.Fatalf("round %d: replay got %v, want ErrAlreadyUsed", round, replayErr)
		}
		if rotateErr != nil && !errors.Is(rotateErr, storage.ErrNotFound) {
			t.Fatalf("round %d: rotation got %v, want nil or ErrNotFound", round, rotateErr)
		}
		if n := countLiveTokens(t, s, grant); n != 0 {
			t.Fatalf("round %d: %d tokens of the replayed family still live (rotation err %v)", round, n, rotateErr)
		}
	}
}

// A password change racing with a refresh: whichever runs first, the agent
// ends with no live token.
func TestPasswordChangeRacingRotationLeavesNoLiveToken(t *testing.T) {
	s := internalMigrated(t)
	ctx := t.Context()
	now := time.Date(2026, 3, 14, 9, 30, 0, 0, time.UTC)
	for round := range 15 {
		user := fmt.Sprintf("u%d", round)
		rt1 := agentWithFamily(t, s, user, "old", now)
		grant := rt1.GrantID
		at2, rt2 := internalTokenPair(grant, user, 2, now)
		var changeErr, rotateErr error
		runTogether(
			func() {
				changeErr = s.ChangePassword(ctx, storage.PasswordChange{UserID: user, NewHash: "new",
					ExpectPasswordHash: "old", Now: now})
			},
			func() { rotateErr = s.RotateRefreshToken(ctx, rt1.TokenHash, at2, rt2, now) },
		)
		if changeErr != nil {
			t.Fatalf("round %d: ChangePassword: %v", round, changeErr)
		}
		if rotateErr != nil && !errors.Is(rotateErr, storage.ErrNotFound) {
			t.Fatalf("round %d: rotation got %v, want nil or ErrNotFound", round, rotateErr)
		}
		if n := countLiveTokens(t, s, grant); n != 0 {
			t.Fatalf("round %d: %d tokens still live after the password change (rotation err %v)", round, n, rotateErr)
		}
	}
}

// The revocation that a replayed code triggers is committed although the
// call fails, whether the replay is caught by the read or by the exchange; a
// rolled-back revocation would leave the tokens live.
func TestCodeReplayRevocationIsCommitted(t *testing.T) {
	s := internalMigrated(t)
	ctx := t.Context()
	now := time.Date(2026, 3, 14, 9, 30, 0, 0, time.UTC)
	for _, ar := range []string{"ar-read", "ar-exchange"} {
		err := s.CreateAuthRequest(ctx, storage.AuthRequest{ID: ar, ClientID: "portail", CreatedAt: now,
			ExpiresAt: now.Add(time.Minute)})
		if err != nil {
			t.Fatal(err)
		}
		if err := s.SaveAuthCode(ctx, storage.AuthCode{CodeHash: "code-" + ar, AuthRequestID: ar, ExpiresAt: now.Add(time.Minute)}); err != nil {
			t.Fatal(err)
		}
		at, rt := internalTokenPair(ar, "u", 1, now)
		if err := s.ExchangeAuthCode(ctx, "code-"+ar, at, &rt, now); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, err := s.AuthRequestByCode(ctx, "code-ar-read", now); !errors.Is(err, storage.ErrAlreadyUsed) {
		t.Fatalf("replay read: %v, want ErrAlreadyUsed", err)
	}
	at, rt := internalTokenPair("ar-exchange", "u", 2, now)
	if err := s.ExchangeAuthCode(ctx, "code-ar-exchange", at, &rt, now); !errors.Is(err, storage.ErrAlreadyUsed) {
		t.Fatalf("replay exchange: %v, want ErrAlreadyUsed", err)
	}
	// Read through a fresh connection: only committed rows are visible.
	other := internalOpen(t, connString(t, s))
	for _, ar := range []string{"ar-read", "ar-exchange"} {
		if n := countLiveTokens(t, other, ar); n != 0 {
			t.Errorf("%s: %d tokens live after the replay", ar, n)
		}
	}
}

// connString is the connection string s was opened with.
func connString(t *testing.T, s *Store) string {
	t.Helper()
	return s.pool.Config().ConnString()
}

// The throttles' asynchronous commit is their transaction's alone: the
// connection they ran on commits synchronously again for whatever comes
// next (a session's or a password's write must reach the disk).
func TestThrottleAsyncCommitStaysInItsTransaction(t *testing.T) {
	base := internalMigrated(t)
	s := internalOpen(t, connString(t, base)+"&pool_max_conns=1")
	ctx := t.Context()
	now := time.Date(2026, 3, 14, 9, 30, 0, 0, time.UTC)
	limit := storage.AttemptLimit{Free: 30, PastFree: 1, Every: 10 * time.Minute, Life: time.Minute}
	if _, _, ok, err := s.ReserveAttempt(ctx, "password:ip:192.0.2.1", "a", limit, now); err != nil || !ok {
		t.Fatalf("ReserveAttempt: %v %v", ok, err)
	}
	if err := s.SettleAttempt(ctx, "password:ip:192.0.2.1", "a", true, limit.Every, now); err != nil {
		t.Fatal(err)
	}
	var setting string
	if err := s.pool.QueryRow(ctx, `SHOW synchronous_commit`).Scan(&setting); err != nil {
		t.Fatal(err)
	}
	if setting != "on" {
		t.Fatalf("synchronous_commit after the throttles' writes: %q, want on", setting)
	}
}
