// Package manpage renders a urfave/cli command tree as a roff manual page
// (man(7) macros), so that cfguard(1) is generated from the very flags and
// commands the binary parses and never drifts from them.
package manpage
