package postgres

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/caf-extranet/idp/storage"
)

// The tests below force, rather than hope for, the interleavings of a
// refresh-token rotation with a revocation that RotateRefreshToken's comment
// argues about: a third connection holds a row that the first operation
// needs, so that it stops midway with its earlier locks held; the second
// operation is started once the first waits, and the row is released once
// the second waits too (or is done). Whatever the order, no live token of
// the family may remain.

// interleaving is one forced interleaving of two store calls.
type interleaving struct {
	// hold is the statement, run by the third connection in a transaction,
	// that takes a row the first call will wait for.
	hold     string
	holdArgs []any
	first    func(ctx context.Context) error
	second   func(ctx context.Context) error
}

// run runs the interleaving and returns the two calls' errors.
func (il interleaving) run(t *testing.T, s *Store) (firstErr, secondErr error) {
	t.Helper()
	ctx := t.Context()
	holder := connect(t, s)
	monitor := connect(t, s)
	tx, err := holder.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	released := false
	release := func() {
		if !released {
			released = true
			if err := tx.Rollback(ctx); err != nil {
				t.Errorf("release the held row: %v", err)
			}
		}
	}
	// Whatever fails below, the calls must be able to finish.
	defer release()
	tag, err := tx.Exec(ctx, il.hold, il.holdArgs...)
	if err != nil || tag.RowsAffected() != 1 {
		t.Fatalf("hold a row: %v (%d rows)", err, tag.RowsAffected())
	}
	holderPID := holder.PgConn().PID()

	firstDone, secondDone := make(chan struct{}), make(chan struct{})
	go func() { defer close(firstDone); firstErr = il.first(ctx) }()
	firstPID, ok := waitBlocked(t, monitor, firstDone, holderPID)
	if !ok {
		<-firstDone
		t.Fatalf("the first call did not wait for the held row (err %v)", firstErr)
	}
	go func() { defer close(secondDone); secondErr = il.second(ctx) }()
	// The second call waits for the first, or for the held row, or does not
	// wait at all: each is a legitimate design, the outcome decides.
	waitBlocked(t, monitor, secondDone, holderPID, firstPID)
	release()
	<-firstDone
	<-secondDone
	return firstErr, secondErr
}

// connect opens a connection of its own to s's database.
func connect(t *testing.T, s *Store) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), connString(t, s))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close(context.Background()) })
	return conn
}

// waitBlocked waits until a backend other than by waits for a lock that one
// of by holds, and returns its process id; false if done was closed first.
func waitBlocked(t *testing.T, monitor *pgx.Conn, done <-chan struct{}, by ...uint32) (uint32, bool) {
	t.Helper()
	pids := make([]int32, len(by))
	for i, p := range by {
		pids[i] = int32(p)
	}
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-done:
			return 0, false
		default:
		}
		var blocked int32
		err := monitor.QueryRow(t.Context(), `SELECT pid FROM pg_stat_activity
			WHERE pg_blocking_pids(pid) && $1::int[] AND pid <> ALL($1::int[]) LIMIT 1`, pids).Scan(&blocked)
		switch {
		case err == nil:
			return uint32(blocked), true
		case !errors.Is(err, pgx.ErrNoRows):
			t.Fatal(err)
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("no call waited for %v within 10s", by)
	return 0, false
}

// rotationWorld stores an agent with a session and a refresh family of two
// tokens (the first rotated), and returns the current token and the pair its
// rotation would issue.
func rotationWorld(t *testing.T, s *Store, user string, now time.Time) (current, next storage.RefreshToken, nextAT storage.AccessToken) {
	t.Helper()
	ctx := t.Context()
	rt1 := agentWithFamily(t, s, user, "h", now)
	err := s.CreateSession(ctx, storage.Session{ID: "sess-" + user, UserID: user, Kind: storage.SessionActive,
		AuthTime: now, CreatedAt: now, LastSeenAt: now, IdleExpiresAt: now.Add(time.Hour), AbsoluteExpiresAt: now.Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	grant := rt1.GrantID
	at2, rt2 := internalTokenPair(grant, user, 2, now)
	if err := s.RotateRefreshToken(ctx, rt1.TokenHash, at2, rt2, now); err != nil {
		t.Fatal(err)
	}
	at3, rt3 := internalTokenPair(grant, user, 3, now)
	return rt2, rt3, at3
}

const (
	holdRefreshToken = `SELECT 1 FROM refresh_tokens WHERE token_hash = $1 FOR UPDATE`
	holdAccessToken  = `SELECT 1 FROM access_tokens WHERE id = $1 FOR UPDATE`
	holdSession      = `SELECT 1 FROM sessions WHERE id = $1 FOR UPDATE`
)

// A rotation stopped on the token's row, with the grant and the agent
// already locked, then a revocation: the revocation must wait for the new
// pair and revoke it (its snapshot would otherwise miss it).
func TestRotationThenRevocationLeavesNoLiveToken(t *testing.T) {
	s := internalMigrated(t)
	now := time.Date(2026, 3, 14, 9, 30, 0, 0, time.UTC)
	revocations := map[string]func(ctx context.Context, user string) error{
		"SetUserDisabled":  func(ctx context.Context, user string) error { return s.SetUserDisabled(ctx, user, true, now) },
		"RevokeGrant":      func(ctx context.Context, user string) error { return s.RevokeGrant(ctx, "g-"+user) },
		"RevokeUserTokens": func(ctx context.Context, user string) error { return s.RevokeUserTokens(ctx, user) },
		"ChangePassword": func(ctx context.Context, user string) error {
			return s.ChangePassword(ctx, storage.PasswordChange{UserID: user, NewHash: "new", ExpectPasswordHash: "h", Now: now})
		},
	}
	for name, revoke := range revocations {
		t.Run(name, func(t *testing.T) {
			user := "rot-then-" + name
			current, next, nextAT := rotationWorld(t, s, user, now)
			rotateErr, revokeErr := interleaving{
				hold: holdRefreshToken, holdArgs: []any{current.TokenHash},
				first: func(ctx context.Context) error {
					return s.RotateRefreshToken(ctx, current.TokenHash, nextAT, next, now)
				},
				second: func(ctx context.Context) error { return revoke(ctx, user) },
			}.run(t, s)
			if rotateErr != nil || revokeErr != nil {
				t.Fatalf("rotation: %v, %s: %v; want both to succeed", rotateErr, name, revokeErr)
			}
			if n := countLiveTokens(t, s, "g-"+user); n != 0 {
				t.Fatalf("%d tokens of the family live after %s", n, name)
			}
		})
	}
}

// A revocation stopped midway, its locks held, then a rotation: the rotation
// must wait and then issue nothing.
func TestRevocationThenRotationIssuesNothing(t *testing.T) {
	s := internalMigrated(t)
	now := time.Date(2026, 3, 14, 9, 30, 0, 0, time.UTC)
	cases := map[string]struct {
		// hold stops the revocation once it holds its first lock.
		hold     string
		holdArgs func(user string, current storage.RefreshToken) []any
		revoke   func(ctx context.Context, user string) error
	}{
		// Stopped on the sessions, the agent's row updated.
		"SetUserDisabled": {
			hold:     holdSession,
			holdArgs: func(user string, _ storage.RefreshToken) []any { return []any{"sess-" + user} },
			revoke:   func(ctx context.Context, user string) error { return s.SetUserDisabled(ctx, user, true, now) },
		},
		// Stopped on the family's access tokens, the grant locked.
		"RevokeGrant": {
			hold:     holdAccessToken,
			holdArgs: func(user string, _ storage.RefreshToken) []any { return []any{"at-g-" + user + "-2"} },
			revoke:   func(ctx context.Context, user string) error { return s.RevokeGrant(ctx, "g-"+user) },
		},
		// Stopped on the agent's access tokens, the agent's row locked.
		"RevokeUserTokens": {
			hold:     holdAccessToken,
			holdArgs: func(user string, _ storage.RefreshToken) []any { return []any{"at-g-" + user + "-2"} },
			revoke:   func(ctx context.Context, user string) error { return s.RevokeUserTokens(ctx, user) },
		},
		// A replay of the family's rotated token, stopped on the access
		// tokens, the grant locked.
		"Replay": {
			hold:     holdAccessToken,
			holdArgs: func(user string, _ storage.RefreshToken) []any { return []any{"at-g-" + user + "-2"} },
			revoke: func(ctx context.Context, user string) error {
				_, err := s.GetRefreshToken(ctx, "hash-g-"+user+"-1", now)
				if errors.Is(err, storage.ErrAlreadyUsed) {
					return nil
				}
				return err
			},
		},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			user := "then-rot-" + name
			current, next, nextAT := rotationWorld(t, s, user, now)
			revokeErr, rotateErr := interleaving{
				hold: c.hold, holdArgs: c.holdArgs(user, current),
				first: func(ctx context.Context) error { return c.revoke(ctx, user) },
				second: func(ctx context.Context) error {
					return s.RotateRefreshToken(ctx, current.TokenHash, nextAT, next, now)
				},
			}.run(t, s)
			if revokeErr != nil {
				t.Fatalf("%s: %v", name, revokeErr)
			}
			if !errors.Is(rotateErr, storage.ErrNotFound) {
				t.Fatalf("rotation after %s began: %v, want ErrNotFound", name, rotateErr)
			}
			if n := countLiveTokens(t, s, "g-"+user); n != 0 {
				t.Fatalf("%d tokens of the family live after %s", n, name)
			}
		})
	}
}

// exchangeWorld stores an agent whose password hash is "h" and an auth
// request it completed, with its code; it returns the code's hash and the
// token pair its exchange would issue (grant: the request's id).
func exchangeWorld(t *testing.T, s *Store, user string, now time.Time) (codeHash string, at storage.AccessToken, rt storage.RefreshToken) {
	t.Helper()
	ctx := t.Context()
	err := s.CreateUser(ctx, storage.User{ID: user, Email: user + "@example.fr", PasswordHash: "h",
		CreatedAt: now, UpdatedAt: now})
	if err != nil {
		t.Fatal(err)
	}
	err = s.CreateSession(ctx, storage.Session{ID: "sess-" + user, UserID: user, Kind: storage.SessionActive,
		AuthTime: now, CreatedAt: now, LastSeenAt: now, IdleExpiresAt: now.Add(time.Hour), AbsoluteExpiresAt: now.Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	request := "ar-" + user
	err = s.CreateAuthRequest(ctx, storage.AuthRequest{ID: request, ClientID: "portail", CreatedAt: now,
		ExpiresAt: now.Add(time.Minute)})
	if err != nil {
		t.Fatal(err)
	}
	codeHash = "code-" + user
	err = s.CompleteAuthRequestWithCode(ctx, request, user, "sess-"+user, now, []string{"pwd"},
		storage.AuthCode{CodeHash: codeHash, AuthRequestID: request, ExpiresAt: now.Add(time.Minute)}, now)
	if err != nil {
		t.Fatal(err)
	}
	at, rt = internalTokenPair(request, user, 1, now)
	return codeHash, at, rt
}

// revocationsOf are the store calls after which no token of the agent may
// stay live, for the exchange interleavings.
func revocationsOf(s *Store, now time.Time) map[string]func(ctx context.Context, user string) error {
	return map[string]func(ctx context.Context, user string) error{
		"SetUserDisabled":  func(ctx context.Context, user string) error { return s.SetUserDisabled(ctx, user, true, now) },
		"RevokeUserTokens": func(ctx context.Context, user string) error { return s.RevokeUserTokens(ctx, user) },
		"ChangePassword": func(ctx context.Context, user string) error {
			return s.ChangePassword(ctx, storage.PasswordChange{UserID: user, NewHash: "new", ExpectPasswordHash: "h", Now: now})
		},
	}
}

const holdAuthCode = `SELECT 1 FROM auth_codes WHERE code_hash = $1 FOR UPDATE`

// A code exchange stopped on the code's row, then a password change, a
// disabling or a revocation of the agent's tokens: the revocation must wait
// for the exchange's tokens and revoke them (its snapshot would otherwise
// miss them, and the exchange, which read the request before it was deleted,
// would issue them).
func TestExchangeThenRevocationLeavesNoLiveToken(t *testing.T) {
	s := internalMigrated(t)
	now := time.Date(2026, 3, 14, 9, 30, 0, 0, time.UTC)
	for name, revoke := range revocationsOf(s, now) {
		t.Run(name, func(t *testing.T) {
			user := "exch-then-" + name
			code, at, rt := exchangeWorld(t, s, user, now)
			exchangeErr, revokeErr := interleaving{
				hold: holdAuthCode, holdArgs: []any{code},
				first:  func(ctx context.Context) error { return s.ExchangeAuthCode(ctx, code, at, &rt, now) },
				second: func(ctx context.Context) error { return revoke(ctx, user) },
			}.run(t, s)
			if revokeErr != nil {
				t.Fatalf("%s: %v", name, revokeErr)
			}
			if exchangeErr != nil && !errors.Is(exchangeErr, storage.ErrNotFound) {
				t.Fatalf("exchange: %v, want success or ErrNotFound", exchangeErr)
			}
			if n := countLiveTokens(t, s, at.GrantID); n != 0 {
				t.Fatalf("%d tokens of the code live after %s (exchange: %v)", n, name, exchangeErr)
			}
		})
	}
}

// A password change, a disabling or a revocation stopped midway, the agent's
// row updated and its completed requests deleted, then the exchange of a code
// issued before it: the exchange must wait and then issue nothing.
func TestRevocationThenExchangeIssuesNothing(t *testing.T) {
	s := internalMigrated(t)
	now := time.Date(2026, 3, 14, 9, 30, 0, 0, time.UTC)
	for name, revoke := range revocationsOf(s, now) {
		t.Run(name, func(t *testing.T) {
			user := "then-exch-" + name
			code, at, rt := exchangeWorld(t, s, user, now)
			// An earlier grant's access token, on which the revocation stops
			// once it has deleted the completed requests.
			earlier, _ := internalTokenPair("g-"+user, user, 1, now)
			if err := s.CreateTokens(t.Context(), earlier, nil); err != nil {
				t.Fatal(err)
			}
			revokeErr, exchangeErr := interleaving{
				hold: holdAccessToken, holdArgs: []any{earlier.ID},
				first:  func(ctx context.Context) error { return revoke(ctx, user) },
				second: func(ctx context.Context) error { return s.ExchangeAuthCode(ctx, code, at, &rt, now) },
			}.run(t, s)
			if revokeErr != nil {
				t.Fatalf("%s: %v", name, revokeErr)
			}
			if !errors.Is(exchangeErr, storage.ErrNotFound) {
				t.Fatalf("exchange after %s began: %v, want ErrNotFound", name, exchangeErr)
			}
			if n := countLiveTokens(t, s, at.GrantID); n != 0 {
				t.Fatalf("%d tokens of the code live after %s", n, name)
			}
		})
	}
}

// TestConcurrentHabilitationImportsDoNotDeadlock: two `idp habilitation
// import` runs whose files name the same pairs in another order both
// succeed: the rows are upserted in one order whatever the file's, so
// neither holds a row the other needs next (in file order, PostgreSQL
// aborted one with "deadlock detected" and its whole file was refused).
// The interleaving is forced: a third connection holds the first pair's
// row until both imports wait.
func TestConcurrentHabilitationImportsDoNotDeadlock(t *testing.T) {
	s := internalMigrated(t)
	ctx := t.Context()
	now := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	for _, u := range []string{"u-a", "u-b"} {
		if err := s.CreateUser(ctx, storage.User{ID: u, Email: u + "@example.fr", CreatedAt: now, UpdatedAt: now}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.CreateClient(ctx, storage.Client{ID: "x", Name: "X", SecretHash: "h", RedirectURIs: []string{"https://x.example.fr/cb"}, CreatedAt: now}); err != nil {
		t.Fatal(err)
	}
	h := func(u string) storage.Habilitation {
		return storage.Habilitation{UserID: u, ClientID: "x", Roles: []string{"lecture"}, GrantedAt: now, GrantedBy: "import"}
	}
	for _, u := range []string{"u-a", "u-b"} { // both pairs exist: the imports replace them
		if err := s.GrantHabilitation(ctx, h(u)); err != nil {
			t.Fatal(err)
		}
	}
	first, second := interleaving{
		hold:     `SELECT 1 FROM habilitations WHERE user_id = $1 AND client_id = $2 FOR UPDATE`,
		holdArgs: []any{"u-a", "x"},
		first: func(ctx context.Context) error {
			return s.GrantHabilitations(ctx, []storage.Habilitation{h("u-a"), h("u-b")})
		},
		second: func(ctx context.Context) error {
			return s.GrantHabilitations(ctx, []storage.Habilitation{h("u-b"), h("u-a")})
		},
	}.run(t, s)
	if first != nil || second != nil {
		t.Fatalf("two imports of the same pairs in another order: %v / %v", first, second)
	}
}
