package sqlrow

import (
	"reflect"
	"testing"
)

// recorder is a row that records the destinations it is asked to fill.
type recorder struct{ got []any }

func (r *recorder) Scan(dest ...any) error { r.got = dest; return nil }

func TestPrefixAndSuffixPlaceTheExtraColumns(t *testing.T) {
	var a, b, own1, own2 int
	r := &recorder{}
	if err := Prefix(r, &a, &b).Scan(&own1, &own2); err != nil {
		t.Fatal(err)
	}
	if want := []any{&a, &b, &own1, &own2}; !reflect.DeepEqual(r.got, want) {
		t.Fatalf("Prefix scanned %v, want %v", r.got, want)
	}
	if err := Suffix(r, &a).Scan(&own1, &own2); err != nil {
		t.Fatal(err)
	}
	if want := []any{&own1, &own2, &a}; !reflect.DeepEqual(r.got, want) {
		t.Fatalf("Suffix scanned %v, want %v", r.got, want)
	}
}

func TestQualified(t *testing.T) {
	if got := Qualified("u.", "id, email,name"); got != "u.id, u.email, u.name" {
		t.Fatalf("Qualified = %q", got)
	}
}

func TestThenScansTheRestWithTheNextFunction(t *testing.T) {
	var first, own1, own2, rest1, rest2 int
	r := &recorder{}
	next := func(rest Scanner) error { return Suffix(rest, &rest2).Scan(&rest1) }
	if err := Then(Prefix(r, &first), next).Scan(&own1, &own2); err != nil {
		t.Fatal(err)
	}
	if want := []any{&first, &own1, &own2, &rest1, &rest2}; !reflect.DeepEqual(r.got, want) {
		t.Fatalf("Then scanned %v, want %v", r.got, want)
	}
}
