package storetest

import (
	"errors"
	"fmt"
	"reflect"
	"sort"
	"sync"
	"testing"
	"time"
)

// start is the fake clock's first reading. It carries milliseconds so that an
// engine storing whole seconds is caught; tests move it forward with Add,
// never by sleeping.
func start() time.Time {
	return time.Date(2026, time.March, 14, 9, 30, 0, 250_000_000, time.UTC)
}

// mustOK stops the test when a step it depends on failed.
func mustOK(t *testing.T, err error, what string) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: unexpected error: %v", what, err)
	}
}

// wantErr records a failure unless err is (or wraps) target.
func wantErr(t *testing.T, err, target error, what string) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Errorf("%s: got error %v, want %v", what, err, target)
	}
}

// race runs f(0) … f(n-1) in n goroutines released together, and returns each
// one's error. f must not call t.Fatal (it runs outside the test goroutine).
func race(n int, f func(i int) error) []error {
	errs := make([]error, n)
	gate := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-gate
			errs[i] = f(i)
		})
	}
	close(gate)
	wg.Wait()
	return errs
}

// oneWinner checks that exactly one of the raced calls succeeded and that
// every other one failed with loserErr, and returns the winner's index.
func oneWinner(t *testing.T, what string, errs []error, loserErr error) int {
	t.Helper()
	winner := -1
	for i, err := range errs {
		switch {
		case err == nil && winner >= 0:
			t.Errorf("%s: goroutines %d and %d both succeeded", what, winner, i)
		case err == nil:
			winner = i
		case !errors.Is(err, loserErr):
			t.Errorf("%s: goroutine %d got error %v, want nil or %v", what, i, err, loserErr)
		}
	}
	if winner < 0 {
		t.Errorf("%s: no goroutine succeeded", what)
	}
	if t.Failed() {
		t.FailNow()
	}
	return winner
}

var timeType = reflect.TypeFor[time.Time]()

// canonTime is the form in which two times are compared: the contract keeps
// at least milliseconds, in whatever zone.
func canonTime(tm time.Time) time.Time {
	return tm.Truncate(time.Millisecond).UTC()
}

// canon returns a copy of the record rec (a struct) in which every time is
// truncated to the millisecond and in UTC, and every empty slice is a
// non-nil empty one, so that two records are DeepEqual exactly when the
// contract says they are the same (a nil slice and an empty one are
// equivalent).
func canon[T any](rec T) T {
	c := reflect.New(reflect.TypeFor[T]()).Elem()
	c.Set(reflect.ValueOf(rec))
	for i := range c.NumField() {
		f := c.Field(i)
		switch {
		case f.Type() == timeType:
			f.Set(reflect.ValueOf(canonTime(f.Interface().(time.Time))))
		case f.Kind() == reflect.Pointer && f.Type().Elem() == timeType && !f.IsNil():
			ct := canonTime(f.Elem().Interface().(time.Time))
			f.Set(reflect.ValueOf(&ct))
		case f.Kind() == reflect.Slice && f.Len() == 0:
			f.Set(reflect.MakeSlice(f.Type(), 0, 0))
		}
	}
	return c.Interface().(T)
}

// checkUTC records a failure for every non-zero time of rec (a record read
// from the store) that is not in UTC, as the contract promises.
func checkUTC(t *testing.T, what string, rec any) {
	t.Helper()
	v := reflect.ValueOf(rec)
	for i := range v.NumField() {
		f := v.Field(i)
		var tm time.Time
		switch {
		case f.Type() == timeType:
			tm = f.Interface().(time.Time)
		case f.Kind() == reflect.Pointer && f.Type().Elem() == timeType && !f.IsNil():
			tm = f.Elem().Interface().(time.Time)
		default:
			continue
		}
		if !tm.IsZero() && tm.Location() != time.UTC {
			t.Errorf("%s: %s = %v is not in UTC", what, v.Type().Field(i).Name, tm)
		}
	}
}

// assertSame compares a record read from the store with the expected one,
// field by field, and reports every field that differs.
func assertSame[T any](t *testing.T, what string, got, want T) {
	t.Helper()
	checkUTC(t, what, got)
	g, w := reflect.ValueOf(canon(got)), reflect.ValueOf(canon(want))
	for i := range g.NumField() {
		gf, wf := g.Field(i), w.Field(i)
		if !reflect.DeepEqual(gf.Interface(), wf.Interface()) {
			t.Errorf("%s: %s = %s, want %s", what, g.Type().Field(i).Name, show(gf), show(wf))
		}
	}
}

// assertSameList compares two lists of records, order included.
func assertSameList[T any](t *testing.T, what string, got, want []T) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%s: got %d records %v, want %d %v", what, len(got), ids(got), len(want), ids(want))
		return
	}
	for i := range got {
		assertSame(t, fmt.Sprintf("%s[%d]", what, i), got[i], want[i])
	}
}

// assertIDs compares the ids of a list of records with want, order included.
func assertIDs[T any](t *testing.T, what string, got []T, want ...string) {
	t.Helper()
	if g := ids(got); !reflect.DeepEqual(g, want) && (len(g) != 0 || len(want) != 0) {
		t.Errorf("%s: got ids %q, want %q", what, g, want)
	}
}

// assertIDSet compares the ids of a list of records with want, in any order
// (for claims, whose order the contract leaves open).
func assertIDSet[T any](t *testing.T, what string, got []T, want ...string) {
	t.Helper()
	g := ids(got)
	sort.Strings(g)
	w := append([]string(nil), want...)
	sort.Strings(w)
	if !reflect.DeepEqual(g, w) && (len(g) != 0 || len(w) != 0) {
		t.Errorf("%s: got ids %q, want %q (any order)", what, g, w)
	}
}

// ids lists the ID field of each record, formatted as a string.
func ids[T any](list []T) []string {
	var out []string
	for _, rec := range list {
		out = append(out, fmt.Sprint(reflect.ValueOf(rec).FieldByName("ID").Interface()))
	}
	return out
}

// show formats a field's value for a failure message, dereferencing
// pointers so that an *int64 shows its number rather than its address.
func show(v reflect.Value) string {
	if v.Kind() == reflect.Pointer {
		if v.IsNil() {
			return "nil"
		}
		v = v.Elem()
	}
	if b, ok := v.Interface().([]byte); ok {
		return fmt.Sprintf("%q", b)
	}
	return fmt.Sprintf("%#v", v.Interface())
}
