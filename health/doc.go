// Package health decides whether an instance works, not only whether its
// process runs: it runs an instance's checks (notify, exec, http, tcp,
// data), keeps each check's last result, and derives the instance's
// readiness (first healthy since its start) and liveness (healthy since).
//
// Everything is event driven: every check has its own timer, re-armed after
// each probe or each event (a notify datagram, a data message), and there is
// no global polling tick. Time comes from an injected Clock, so the state
// machine is tested with testing/synctest.
//
// It owns the per-instance notify sockets ($NOTIFY_SOCKET) and the decision
// to restart an instance on consecutive failures (check_restart); it does
// not spawn, stop or restart processes itself: a Restarter does, and it
// learns of starts and exits from the statuses it is given (Observe).
package health
