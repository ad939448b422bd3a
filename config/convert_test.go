package config

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/caf-extranet/idp/account/policy"
	"github.com/caf-extranet/idp/storage/passhash"
)

func TestDefaultsMatchThePackages(t *testing.T) {
	if got := Default().Password.Hash.Params(); got != passhash.DefaultParams() {
		t.Errorf("hash params %+v, want passhash.DefaultParams() %+v", got, passhash.DefaultParams())
	}
	rules, err := Default().Password.Policy.Rules()
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(rules, policy.Default()) {
		t.Errorf("policy %+v, want policy.Default() %+v", rules, policy.Default())
	}
}

func TestConversions(t *testing.T) {
	h := Hash{MemoryKiB: 65536, Iterations: 3, Parallelism: 4}
	if got := h.Params(); got.MemoryKiB != 65536 || got.Iterations != 3 || got.Parallelism != 4 || got.SaltLen != 16 || got.KeyLen != 32 {
		t.Errorf("Params() = %+v", got)
	}
	list := filepath.Join(t.TempDir(), "common.txt")
	if err := os.WriteFile(list, []byte("# list\nAzerty1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	p := Policy{MinLength: 8, MaxLength: 64, RequireUppercase: true, RequireSymbol: true,
		ForbiddenPasswordsFile: list, ForbidEmailLocalPart: true}
	rules, err := p.Rules()
	if err != nil {
		t.Fatal(err)
	}
	if rules.MinLength != 8 || rules.MaxLength != 64 || rules.RequireLowercase || !rules.RequireUppercase ||
		rules.RequireDigit || !rules.RequireSymbol || !rules.ForbidEmailLocalPart {
		t.Errorf("Rules() = %+v", rules)
	}
	if _, ok := rules.Forbidden["azerty1"]; !ok || len(rules.Forbidden) != 1 {
		t.Errorf("forbidden = %v", rules.Forbidden)
	}
	p.ForbiddenPasswordsFile = filepath.Join(t.TempDir(), "gone.txt")
	if _, err := p.Rules(); err == nil {
		t.Error("missing forbidden file: no error")
	}
}
