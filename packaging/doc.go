// Package packaging holds cfguard's Debian packaging: packaging/deb has the
// maintainer scripts and the copyright file that internal/cmd/mkdeb puts
// into the package (`make deb`); this package's test builds the package and
// installs, upgrades, removes and purges it under a real systemd in a
// throwaway sandbox (internal/sdtest). docs/packaging.md explains the
// choices.
package packaging
