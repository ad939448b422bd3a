package provider

import (
	"context"
	"errors"
	"fmt"

	"github.com/caf-extranet/idp/storage"
)

// scopeRoles asks for the agent's roles in the requesting application.
const scopeRoles = "roles"

// accessWith decides whether an agent may enter a relying application, and
// with which roles, given the agent's live habilitation for the client (nil:
// none), as GetUserAccess returns it. An open client lets every active agent
// in; a restricted one only agents holding a live habilitation. The roles
// are those of this client's habilitation only, never another application's.
func (s *opStorage) accessWith(ctx context.Context, clientID string, h *storage.Habilitation) (roles []string, err error) {
	c, err := s.clients.get(ctx, clientID)
	if err != nil {
		return nil, fmt.Errorf("provider: client %q: %w", clientID, err)
	}
	return admit(c, h)
}

// admit is accessWith's decision, h being the live habilitation (nil: none).
func admit(c storage.Client, h *storage.Habilitation) ([]string, error) {
	switch {
	case h != nil:
		return h.Roles, nil
	case c.Restricted:
		return nil, storage.ErrNotHabilitated
	}
	return nil, nil
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
