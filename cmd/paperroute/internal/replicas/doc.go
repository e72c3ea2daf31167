// Package replicas holds the multi-replica end-to-end test (issue #10): 2
// subscriber, 2 digest and 3 sender processes — the test binary re-executed
// as each service, every one a separate OS process with its own listeners —
// on one real redis-server (AOF), delivering to a real SMTP catcher; one
// digest, one sender and one subscriber are killed with SIGKILL in the
// middle of the run (the subscriber is started again on its addresses).
//
// It lives in cmd/paperroute because that is the module that already
// composes the three services (it imports subscriberd, digestd and senderd
// and the bundled sample papers); a test in one service's module could not
// start the other two. The package has no code of its own. What the test
// proves is written in docs/operations.md ("Several replicas").
package replicas
