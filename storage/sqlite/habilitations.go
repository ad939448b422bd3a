package sqlite

import (
	"context"
	"database/sql"
	"time"

	"github.com/caf-extranet/idp/storage"
	"github.com/caf-extranet/idp/storage/internal/sqlrow"
)

const habilitationColumns = `user_id, client_id, roles, until, granted_at, granted_by`

func scanHabilitation(row rowScanner) (storage.Habilitation, error) {
	var h storage.Habilitation
	err := row.Scan(&h.UserID, &h.ClientID, (*jsonList)(&h.Roles), msTimePtr{&h.Until},
		(*msTime)(&h.GrantedAt), &h.GrantedBy)
	return h, err
}

// GrantHabilitation creates or replaces (h.UserID, h.ClientID)'s
// habilitation; ErrNotFound when the agent or the client does not exist. The
// checks and the write share the write transaction, so a client deleted
// concurrently cannot be left with a habilitation.
func (s *Store) GrantHabilitation(ctx context.Context, h storage.Habilitation) error {
	return s.writeTx(ctx, func(tx *txConn) error {
		const what = "grant habilitation"
		if err := requireRow(ctx, tx, what+": agent", `SELECT 1 FROM users WHERE id = ?`, h.UserID); err != nil {
			return err
		}
		if err := requireRow(ctx, tx, what+": client", `SELECT 1 FROM clients WHERE id = ?`, h.ClientID); err != nil {
			return err
		}
		return exec(ctx, tx, what, upsertHabilitation, habilitationArgs(h)...)
	})
}

// upsertHabilitation creates or replaces one habilitation, with the values
// habilitationArgs gives.
const upsertHabilitation = `INSERT INTO habilitations (` + habilitationColumns + `)
	VALUES (?, ?, ?, ?, ?, ?)
	ON CONFLICT (user_id, client_id) DO UPDATE SET
		roles = excluded.roles, until = excluded.until,
		granted_at = excluded.granted_at, granted_by = excluded.granted_by`

func habilitationArgs(h storage.Habilitation) []any {
	return []any{h.UserID, h.ClientID, jsonList(h.Roles), msPtr(h.Until), ms(h.GrantedAt), h.GrantedBy}
}

// GrantHabilitations grants hs in one write transaction, each as
// GrantHabilitation does (its agent and client checked, each of them once,
// then the same statement): any error rolls every row back.
func (s *Store) GrantHabilitations(ctx context.Context, hs []storage.Habilitation) error {
	if len(hs) == 0 {
		return nil
	}
	return s.writeTx(ctx, func(tx *txConn) error {
		const what = "grant habilitations"
		agents, clients := map[string]bool{}, map[string]bool{}
		for _, h := range hs {
			if !agents[h.UserID] {
				if err := requireRow(ctx, tx, what+": agent "+h.UserID, `SELECT 1 FROM users WHERE id = ?`, h.UserID); err != nil {
					return err
				}
				agents[h.UserID] = true
			}
			if !clients[h.ClientID] {
				if err := requireRow(ctx, tx, what+": client "+h.ClientID, `SELECT 1 FROM clients WHERE id = ?`, h.ClientID); err != nil {
					return err
				}
				clients[h.ClientID] = true
			}
			if err := exec(ctx, tx, what, upsertHabilitation, habilitationArgs(h)...); err != nil {
				return err
			}
		}
		return nil
	})
}

// requireRow runs a query that must return a row: ErrNotFound otherwise.
func requireRow(ctx context.Context, q querier, what, query string, args ...any) error {
	var one int
	if err := q.QueryRowContext(ctx, query, args...).Scan(&one); err != nil {
		return dbError(what, err)
	}
	return nil
}

// RevokeHabilitation deletes (userID, clientID)'s habilitation; ErrNotFound
// when there is none.
func (s *Store) RevokeHabilitation(ctx context.Context, userID, clientID string) error {
	return execOne(ctx, s.w, "revoke habilitation",
		`DELETE FROM habilitations WHERE user_id = ? AND client_id = ?`, userID, clientID)
}

// GetHabilitation returns the habilitation holding at now; ErrNotFound when
// there is none or it ended (Until <= now).
func (s *Store) GetHabilitation(ctx context.Context, userID, clientID string, now time.Time) (storage.Habilitation, error) {
	h, err := scanHabilitation(s.r.QueryRowContext(ctx, `SELECT `+habilitationColumns+` FROM habilitations
		WHERE user_id = ? AND client_id = ? AND (until IS NULL OR until > ?)`, userID, clientID, ms(now)))
	if err != nil {
		return storage.Habilitation{}, dbError("get habilitation", err)
	}
	return h, nil
}

// GetUserAccess reads the agent and its live habilitation for clientID in
// one query: the outer join leaves the habilitation's columns NULL when there
// is none (or it ended), and no row at all only when the agent is unknown.
func (s *Store) GetUserAccess(ctx context.Context, userID, clientID string, now time.Time) (storage.UserAccess, error) {
	a, err := scanUserAccess(s.r.QueryRowContext(ctx, `SELECT `+userAccessColumns+`
		FROM users u LEFT JOIN habilitations h
			ON h.user_id = u.id AND h.client_id = ? AND (h.until IS NULL OR h.until > ?)
		WHERE u.id = ?`, clientID, ms(now), userID), clientID)
	if err != nil {
		return storage.UserAccess{}, dbError("get user access", err)
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
		hUserID, roles, grantedBy sql.NullString
		until, grantedAt          *time.Time
	)
	u, err := scanUser(sqlrow.Suffix(row, &hUserID, &roles, msTimePtr{&until}, msTimePtr{&grantedAt}, &grantedBy))
	if err != nil {
		return storage.UserAccess{}, err
	}
	a := storage.UserAccess{User: u}
	if !hUserID.Valid {
		return a, nil
	}
	h := storage.Habilitation{UserID: hUserID.String, ClientID: clientID, Until: until, GrantedBy: grantedBy.String}
	if grantedAt != nil {
		h.GrantedAt = *grantedAt
	}
	if err := (*jsonList)(&h.Roles).Scan(roles.String); err != nil {
		return storage.UserAccess{}, err
	}
	a.Habilitation = &h
	return a, nil
}

// ListHabilitations lists the habilitations matching f, ended ones included,
// ordered by agent then client.
func (s *Store) ListHabilitations(ctx context.Context, f storage.HabilitationFilter) ([]storage.Habilitation, error) {
	// One statement per filter shape rather than "? = '' OR column = ?",
	// which no index serves.
	query, args := `SELECT `+habilitationColumns+` FROM habilitations ORDER BY user_id, client_id`, []any(nil)
	switch {
	case f.UserID != "" && f.ClientID != "":
		query, args = `SELECT `+habilitationColumns+` FROM habilitations
			WHERE user_id = ? AND client_id = ?`, []any{f.UserID, f.ClientID}
	case f.UserID != "":
		query, args = `SELECT `+habilitationColumns+` FROM habilitations
			WHERE user_id = ? ORDER BY client_id`, []any{f.UserID}
	case f.ClientID != "":
		query, args = `SELECT `+habilitationColumns+` FROM habilitations
			WHERE client_id = ? ORDER BY user_id`, []any{f.ClientID}
	}
	rows, err := s.r.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, dbError("list habilitations", err)
	}
	list, err := collect(rows, scanHabilitation)
	if err != nil {
		return nil, dbError("list habilitations", err)
	}
	return list, nil
}
