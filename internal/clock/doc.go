// Package clock is the one time source of the packages that wait or stamp
// times (runner, health, task, reconcile): Clock, and Real, the host's
// clock. Its fake, for tests, is in package clocktest.
//
// A Clock has two timelines, as a Linux host does: the wall clock (Now),
// which times shown, persisted and matched against cron are in and which
// an administrator or NTP may step, and the monotonic one (Mono and every
// timer), which never jumps. Delays and intervals are measured on the
// monotonic one, so a step of the wall clock neither fires nor holds back a
// timer.
//
// It does not schedule anything itself (task, runner and health do) and
// holds no global clock: each user takes one in its options.
package clock
