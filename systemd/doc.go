// Package systemd holds cfguard's units (cfguard-sync.service and .timer,
// cfguard-restore.service) and the commented /etc/default/cfguard that
// `make install` puts in place; its test checks them with systemd-analyze.
package systemd
