package mail

import (
	"errors"
	"net/smtp"
	"slices"
)

// relayAuth authenticates with the mechanism the relay offers: PLAIN
// (RFC 4616) where it is offered, else LOGIN, the only one that Exchange
// and Office 365 offer beside their own (NTLM, XOAUTH2); both send the
// password as it is, so both are refused, as net/smtp's PlainAuth refuses,
// on a session that is neither encrypted nor on localhost.
type relayAuth struct {
	username, password, host string
	plain                    smtp.Auth
	loginStep                int
}

func newRelayAuth(username, password, host string) *relayAuth {
	return &relayAuth{username: username, password: password, host: host,
		plain: smtp.PlainAuth("", username, password, host)}
}

func (a *relayAuth) Start(server *smtp.ServerInfo) (string, []byte, error) {
	if len(server.Auth) == 0 || slices.Contains(server.Auth, "PLAIN") || !slices.Contains(server.Auth, "LOGIN") {
		a.loginStep = -1
		return a.plain.Start(server)
	}
	if !server.TLS && !isLocalhost(server.Name) {
		return "", nil, errors.New("unencrypted connection")
	}
	if server.Name != a.host {
		return "", nil, errors.New("wrong host name")
	}
	return "LOGIN", nil, nil
}

// Next answers the relay's challenges: for LOGIN, the user name, then the
// password, whatever the prompts say (they vary between servers).
func (a *relayAuth) Next(fromServer []byte, more bool) ([]byte, error) {
	if a.loginStep < 0 {
		return a.plain.Next(fromServer, more)
	}
	if !more {
		return nil, nil
	}
	a.loginStep++
	switch a.loginStep {
	case 1:
		return []byte(a.username), nil
	case 2:
		return []byte(a.password), nil
	}
	return nil, errors.New("unexpected challenge after the password")
}
