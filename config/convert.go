package config

import (
	"github.com/caf-extranet/idp/account/policy"
	"github.com/caf-extranet/idp/storage/passhash"
)

// Params are the Argon2id parameters of a validated configuration (the
// bounds Validate checks make the conversions safe).
func (h Hash) Params() passhash.Params {
	p := passhash.DefaultParams()
	p.MemoryKiB = uint32(h.MemoryKiB)
	p.Iterations = uint32(h.Iterations)
	p.Parallelism = uint8(h.Parallelism)
	return p
}

// Rules is the password policy of a validated configuration, with the
// forbidden passwords file loaded (the only I/O).
func (p Policy) Rules() (policy.Policy, error) {
	rules := policy.Policy{
		MinLength:            p.MinLength,
		MaxLength:            p.MaxLength,
		RequireLowercase:     p.RequireLowercase,
		RequireUppercase:     p.RequireUppercase,
		RequireDigit:         p.RequireDigit,
		RequireSymbol:        p.RequireSymbol,
		ForbidEmailLocalPart: p.ForbidEmailLocalPart,
	}
	if p.ForbiddenPasswordsFile != "" {
		forbidden, err := policy.LoadForbidden(p.ForbiddenPasswordsFile)
		if err != nil {
			return policy.Policy{}, err
		}
		rules.Forbidden = forbidden
	}
	return rules, nil
}
