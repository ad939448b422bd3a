package sqlite

import (
	"context"

	"github.com/caf-extranet/idp/storage"
)

// ChangeGenerations reads the two counters the triggers of migration 0003
// bump, in one statement so that both come from the same snapshot.
func (s *Store) ChangeGenerations(ctx context.Context) (storage.ChangeGenerations, error) {
	var g storage.ChangeGenerations
	err := s.r.QueryRowContext(ctx, `SELECT
		(SELECT generation FROM change_generations WHERE topic = 'clients'),
		(SELECT generation FROM change_generations WHERE topic = 'signing_keys')`).Scan(&g.Clients, &g.SigningKeys)
	if err != nil {
		return storage.ChangeGenerations{}, dbError("read change generations", err)
	}
	return g, nil
}
