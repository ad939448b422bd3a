package postgres

import (
	"cmp"
	"context"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/caf-extranet/idp/storage"
	"github.com/caf-extranet/idp/storage/internal/sqlrow"
)

const habilitationColumns = `user_id, client_id, roles, until, granted_at, granted_by`

func scanHabilitation(row rowScanner) (storage.Habilitation, error) {
	var h storage.Habilitation
	err := row.Scan(&h.UserID, &h.ClientID, &h.Roles, &h.Until, &h.GrantedAt, &h.GrantedBy)
	h.Until, h.GrantedAt = utcPtr(h.Until), utc(h.GrantedAt)
	return h, err
}

// GrantHabilitation creates or replaces (h.UserID, h.ClientID)'s
// habilitation; ErrNotFound when the agent or the client does not exist. The
// client row is shared (FOR SHARE) until commit: a concurrent DeleteClient,
// which deletes that row first, either waits and then deletes this
// habilitation too, or has committed and this grant finds no client.
func (s *Store) GrantHabilitation(ctx context.Context, h storage.Habilitation) error {
	const what = "grant habilitation"
	return s.withTx(ctx, func(tx pgx.Tx) error {
		var one int
		if err := tx.QueryRow(ctx, `SELECT 1 FROM users WHERE id = $1 FOR SHARE`, h.UserID).Scan(&one); err != nil {
			return notFoundOr(what+": agent", err)
		}
		if err := tx.QueryRow(ctx, `SELECT 1 FROM clients WHERE id = $1 FOR SHARE`, h.ClientID).Scan(&one); err != nil {
			return notFoundOr(what+": client", err)
		}
		if _, err := tx.Exec(ctx, upsertHabilitation, habilitationArgs(h)...); err != nil {
			return dbError(what, err)
		}
		return nil
	})
}

// upsertHabilitation creates or replaces one habilitation, with the values
// habilitationArgs gives.
const upsertHabilitation = `INSERT INTO habilitations (` + habilitationColumns + `)
	VALUES ($1, $2, $3, $4, $5, $6)
	ON CONFLICT (user_id, client_id) DO UPDATE SET
		roles = excluded.roles, until = excluded.until,
		granted_at = excluded.granted_at, granted_by = excluded.granted_by`

func habilitationArgs(h storage.Habilitation) []any {
	return []any{h.UserID, h.ClientID, list(h.Roles), h.Until, h.GrantedAt, h.GrantedBy}
}

// GrantHabilitations grants hs in one transaction. The agents and clients
// are shared (FOR SHARE) first, as GrantHabilitation shares them, so that a
// concurrent DeleteClient either waits for the commit and then deletes these
// habilitations too, or has committed and the whole import fails. The rows
// are then written with GrantHabilitation's statement, in one batch (one
// round trip); any error rolls every row back.
func (s *Store) GrantHabilitations(ctx context.Context, hs []storage.Habilitation) error {
	if len(hs) == 0 {
		return nil
	}
	const what = "grant habilitations"
	agents, clients := make([]string, len(hs)), make([]string, len(hs))
	for i, h := range hs {
		agents[i], clients[i] = h.UserID, h.ClientID
	}
	return s.withTx(ctx, func(tx pgx.Tx) error {
		for _, parties := range []struct {
			kind, query string
			ids         []string
		}{
			{"agent", `SELECT id FROM users WHERE id = ANY($1) FOR SHARE`, agents},
			{"client", `SELECT id FROM clients WHERE id = ANY($1) FOR SHARE`, clients},
		} {
			rows, err := tx.Query(ctx, parties.query, parties.ids)
			if err != nil {
				return dbError(what, err)
			}
			found, err := pgx.CollectRows(rows, pgx.RowTo[string])
			if err != nil {
				return dbError(what, err)
			}
			exists := make(map[string]bool, len(found))
			for _, id := range found {
				exists[id] = true
			}
			for _, id := range parties.ids {
				if !exists[id] {
					return notFound(what + ": " + parties.kind + " " + id)
				}
			}
		}
		// In one order for every import, so that two imports naming the
		// same pairs in different orders wait for each other instead of
		// each holding a row the other needs next (a deadlock, and one file
		// refused whole). Stable: a pair given twice still ends as its later
		// row says.
		sorted := slices.Clone(hs)
		slices.SortStableFunc(sorted, func(a, b storage.Habilitation) int {
			return cmp.Or(cmp.Compare(a.UserID, b.UserID), cmp.Compare(a.ClientID, b.ClientID))
		})
		b := &pgx.Batch{}
		for _, h := range sorted {
			b.Queue(upsertHabilitation, habilitationArgs(h)...)
		}
		if err := tx.SendBatch(ctx, b).Close(); err != nil {
			return dbError(what, err)
		}
		return nil
	})
}

// RevokeHabilitation deletes (userID, clientID)'s habilitation; ErrNotFound
// when there is none.
func (s *Store) RevokeHabilitation(ctx context.Context, userID, clientID string) error {
	tag, err := s.pool.Exec(ctx, `DELETE FROM habilitations WHERE user_id = $1 AND client_id = $2`, userID, clientID)
	return requireOne("revoke habilitation", tag, err)
}

// GetHabilitation returns the habilitation holding at now; ErrNotFound when
// there is none or it ended (Until <= now).
func (s *Store) GetHabilitation(ctx context.Context, userID, clientID string, now time.Time) (storage.Habilitation, error) {
	h, err := scanHabilitation(s.pool.QueryRow(ctx, `SELECT `+habilitationColumns+` FROM habilitations
		WHERE user_id = $1 AND client_id = $2 AND (until IS NULL OR until > $3)`, userID, clientID, now))
	if err != nil {
		return storage.Habilitation{}, notFoundOr("get habilitation", err)
	}
	return h, nil
}

// GetUserAccess reads the agent and its live habilitation for clientID in
// one query: the outer join leaves the habilitation's columns NULL when there
// is none (or it ended), and no row at all only when the agent is unknown.
func (s *Store) GetUserAccess(ctx context.Context, userID, clientID string, now time.Time) (storage.UserAccess, error) {
	a, err := scanUserAccess(s.pool.QueryRow(ctx, `SELECT `+userAccessColumns+`
		FROM users u LEFT JOIN habilitations h
			ON h.user_id = u.id AND h.client_id = $2 AND (h.until IS NULL OR h.until > $3)
		WHERE u.id = $1`, userID, clientID, now), clientID)
	if err != nil {
		return storage.UserAccess{}, notFoundOr("get user access", err)
	}
	return a, nil
}

// userAccessColumns are an agent's columns (alias u) and those of its
// habilitation (alias h, LEFT JOINed: NULL when there is none), as
// scanUserAccess reads them.
var userAccessColumns = sqlrow.Qualified("u.", userColumns) + `, h.user_id, h.roles, h.until, h.granted_at, h.granted_by`

// scanUserAccess reads userAccessColumns; the habilitation is clientID's.
func scanUserAccess(row rowScanner, clientID string) (storage.UserAccess, error) {
	var (
		hUserID, grantedBy *string
		roles              []string
		until, grantedAt   *time.Time
	)
	u, err := scanUser(sqlrow.Suffix(row, &hUserID, &roles, &until, &grantedAt, &grantedBy))
	if err != nil {
		return storage.UserAccess{}, err
	}
	a := storage.UserAccess{User: u}
	if hUserID != nil {
		a.Habilitation = &storage.Habilitation{UserID: *hUserID, ClientID: clientID, Roles: roles,
			Until: utcPtr(until), GrantedAt: utc(*grantedAt), GrantedBy: *grantedBy}
	}
	return a, nil
}

// ListHabilitations lists the habilitations matching f, ended ones included,
// ordered by agent then client.
func (s *Store) ListHabilitations(ctx context.Context, f storage.HabilitationFilter) ([]storage.Habilitation, error) {
	// One statement per filter shape rather than "$1 = '' OR column = $1",
	// which would keep the planner from using the indexes.
	query, args := `SELECT `+habilitationColumns+` FROM habilitations ORDER BY user_id, client_id`, []any(nil)
	switch {
	case f.UserID != "" && f.ClientID != "":
		query, args = `SELECT `+habilitationColumns+` FROM habilitations
			WHERE user_id = $1 AND client_id = $2`, []any{f.UserID, f.ClientID}
	case f.UserID != "":
		query, args = `SELECT `+habilitationColumns+` FROM habilitations
			WHERE user_id = $1 ORDER BY client_id`, []any{f.UserID}
	case f.ClientID != "":
		query, args = `SELECT `+habilitationColumns+` FROM habilitations
			WHERE client_id = $1 ORDER BY user_id`, []any{f.ClientID}
	}
	rows, err := s.pool.Query(ctx, query, args...)
	if err != nil {
		return nil, dbError("list habilitations", err)
	}
	list, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (storage.Habilitation, error) { return scanHabilitation(r) })
	if err != nil {
		return nil, dbError("list habilitations", err)
	}
	return list, nil
}
