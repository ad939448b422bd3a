package provider

import (
	"net/url"
	"time"

	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"

	"github.com/caf-extranet/idp/storage"
)

// client adapts a registered relying application to op.Client.
type client struct {
	c               storage.Client
	idTokenLifetime time.Duration
	devMode         bool
}

var _ op.Client = (*client)(nil)

func (c *client) GetID() string                    { return c.c.ID }
func (c *client) RedirectURIs() []string           { return c.c.RedirectURIs }
func (c *client) PostLogoutRedirectURIs() []string { return c.c.PostLogoutRedirectURIs }

// ApplicationType: confidential clients are web applications; public ones
// (no secret, PKCE required) are browser applications.
func (c *client) ApplicationType() op.ApplicationType {
	if c.c.Public {
		return op.ApplicationTypeUserAgent
	}
	return op.ApplicationTypeWeb
}

func (c *client) AuthMethod() oidc.AuthMethod {
	if c.c.Public {
		return oidc.AuthMethodNone
	}
	return oidc.AuthMethodBasic
}

// ResponseTypes: the authorization code flow only; implicit and hybrid are
// refused by the library's response-type check.
func (c *client) ResponseTypes() []oidc.ResponseType {
	return []oidc.ResponseType{oidc.ResponseTypeCode}
}

func (c *client) GrantTypes() []oidc.GrantType {
	if c.c.AllowRefresh {
		return []oidc.GrantType{oidc.GrantTypeCode, oidc.GrantTypeRefreshToken}
	}
	return []oidc.GrantType{oidc.GrantTypeCode}
}

// LoginURL is where the OP sends the browser after storing an auth request:
// the hosted login page, which decides between SSO and the form.
func (c *client) LoginURL(authRequestID string) string { return loginURL(authRequestID) }

func loginURL(authRequestID string) string {
	return "/login?authRequestID=" + url.QueryEscape(authRequestID)
}

func (c *client) AccessTokenType() op.AccessTokenType { return op.AccessTokenTypeBearer }
func (c *client) IDTokenLifetime() time.Duration      { return c.idTokenLifetime }

// DevMode lets public clients use http redirect URIs, only when the provider
// itself runs on localhost.
func (c *client) DevMode() bool { return c.devMode }

func (c *client) RestrictAdditionalIdTokenScopes() func([]string) []string {
	return func(s []string) []string { return s }
}

func (c *client) RestrictAdditionalAccessTokenScopes() func([]string) []string {
	return func(s []string) []string { return s }
}

// IsScopeAllowed: beyond the standard scopes, only "roles" (the agent's
// roles in this application, from its habilitation).
func (c *client) IsScopeAllowed(scope string) bool { return scope == scopeRoles }

// IDTokenUserinfoClaimsAssertion: the ID token carries the scope's claims
// (email, name, organisation) even when an access token is issued too.
func (c *client) IDTokenUserinfoClaimsAssertion() bool { return true }
func (c *client) ClockSkew() time.Duration             { return 0 }
