// Package systemd holds cfguard's units (cfguard-sync.service and .timer,
// cfguard-restore.service) and the commented /etc/default/cfguard that
// `make install` puts in place; its tests check them with systemd-analyze
// and run them under a real systemd in a sandbox (internal/sdtest).
package systemd
