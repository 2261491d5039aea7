package fpm

import "github.com/cfguard/cfguard/internal/regfile"

// maxConfigBytes caps one configuration file: the largest real ones are a
// few hundred kilobytes.
const maxConfigBytes = 8 << 20

// readConfig reads one configuration file: a regular file (symbolic links
// followed) of at most maxConfigBytes; a FIFO, a device or a huge file is
// refused instead of read without end.
func readConfig(name string) ([]byte, error) { return regfile.Read(name, maxConfigBytes) }
