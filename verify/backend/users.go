package backend

import (
	"os/user"
	"strconv"
)

func userName(uid uint32) string {
	if u, err := user.LookupId(strconv.FormatUint(uint64(uid), 10)); err == nil {
		return u.Username
	}
	return strconv.FormatUint(uint64(uid), 10)
}

func groupName(gid uint32) string {
	if g, err := user.LookupGroupId(strconv.FormatUint(uint64(gid), 10)); err == nil {
		return g.Name
	}
	return strconv.FormatUint(uint64(gid), 10)
}

// credOfUser builds the credentials of a configured user name (when no
// worker process runs to read them from).
func credOfUser(name, group string) (cred, bool) {
	u, err := user.Lookup(name)
	if err != nil {
		return cred{}, false
	}
	uid, _ := strconv.ParseUint(u.Uid, 10, 32)
	c := cred{name: name, uid: uint32(uid)}
	if group != "" && group != name {
		if g, err := user.LookupGroup(group); err == nil {
			n, _ := strconv.ParseUint(g.Gid, 10, 32)
			c.gids = append(c.gids, uint32(n))
		}
	}
	gid, _ := strconv.ParseUint(u.Gid, 10, 32)
	c.gids = append(c.gids, uint32(gid))
	if ids, err := u.GroupIds(); err == nil {
		for _, id := range ids {
			n, _ := strconv.ParseUint(id, 10, 32)
			if !c.inGroup(uint32(n)) {
				c.gids = append(c.gids, uint32(n))
			}
		}
	}
	return c, true
}

// credOfProc reads a worker's credentials.
func credOfProc(p *proc) cred {
	c := cred{name: userName(p.uid), uid: p.uid, gids: []uint32{p.gid}}
	for _, g := range p.groups {
		if !c.inGroup(g) {
			c.gids = append(c.gids, g)
		}
	}
	return c
}
