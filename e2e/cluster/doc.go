// Package cluster holds the acceptance tests of several `idp serve`
// processes sharing one PostgreSQL database, as they run behind a load
// balancer: a flow moving between instances at every step, races with
// exactly one winner, concurrent migrations at start, and a database that
// goes away and comes back. The package has no code of its own; see the
// _test.go files.
package cluster
