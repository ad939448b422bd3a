package provider

import (
	"context"
	"errors"
	"fmt"

	"github.com/caf-extranet/idp/storage"
)

// scopeRoles asks for the agent's roles in the requesting application.
const scopeRoles = "roles"

// access decides whether an agent may enter a relying application, and with
// which roles. An open client lets every active agent in; a restricted one
// only agents holding a live habilitation. The roles are those of this
// client's habilitation only, never another application's.
func (s *opStorage) access(ctx context.Context, userID, clientID string) (roles []string, err error) {
	c, err := s.clients.get(ctx, clientID)
	if err != nil {
		return nil, fmt.Errorf("provider: client %q: %w", clientID, err)
	}
	h, err := s.store.GetHabilitation(ctx, userID, clientID, s.now())
	switch {
	case err == nil:
		return h.Roles, nil
	case errors.Is(err, storage.ErrNotFound) && !c.Restricted:
		return nil, nil
	case errors.Is(err, storage.ErrNotFound):
		return nil, storage.ErrNotHabilitated
	}
	return nil, fmt.Errorf("provider: habilitation: %w", err)
}

// ClientsFor lists the relying applications an agent may enter: the open
// ones and the restricted ones it is habilitated for (the secure space).
func (p *Provider) ClientsFor(ctx context.Context, userID string) ([]storage.Client, error) {
	all, err := p.store.ListClients(ctx)
	if err != nil {
		return nil, err
	}
	out := all[:0:0]
	for _, c := range all {
		if !c.Restricted {
			out = append(out, c)
			continue
		}
		_, err := p.store.GetHabilitation(ctx, userID, c.ID, p.now())
		if err == nil {
			out = append(out, c)
		} else if !errors.Is(err, storage.ErrNotFound) {
			return nil, err
		}
	}
	return out, nil
}
