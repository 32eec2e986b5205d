package apiserver

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

type credKey struct{}

// peerCred is the identity of the process on the other end of a connection.
type peerCred struct {
	ok            bool
	pid, uid, gid int
}

// connContext records SO_PEERCRED of each accepted Unix connection.
func connContext(ctx context.Context, c net.Conn) context.Context {
	if lc, ok := c.(*limitConn); ok {
		c = lc.Conn
	}
	uc, ok := c.(*net.UnixConn)
	if !ok {
		return context.WithValue(ctx, credKey{}, peerCred{})
	}
	raw, err := uc.SyscallConn()
	if err != nil {
		return context.WithValue(ctx, credKey{}, peerCred{})
	}
	var cred *unix.Ucred
	var cerr error
	if err := raw.Control(func(fd uintptr) {
		cred, cerr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	}); err != nil || cerr != nil {
		return context.WithValue(ctx, credKey{}, peerCred{})
	}
	return context.WithValue(ctx, credKey{}, peerCred{ok: true, pid: int(cred.Pid), uid: int(cred.Uid), gid: int(cred.Gid)})
}

// authorizer decides whether a peer may use the API: uid 0, or a member
// (primary or supplementary) of group gid. gid < 0 admits only root.
type authorizer struct {
	gid    int
	groups func(pid int) ([]int, error)
}

func (a authorizer) allow(c peerCred) error {
	if !c.ok {
		return errors.New("peer credentials unavailable")
	}
	if c.uid == 0 {
		return nil
	}
	if a.gid >= 0 {
		if c.gid == a.gid {
			return nil
		}
		groups, err := a.groups(c.pid)
		if err != nil {
			return fmt.Errorf("read groups of pid %d: %w", c.pid, err)
		}
		for _, g := range groups {
			if g == a.gid {
				return nil
			}
		}
		return fmt.Errorf("uid %d is not root and not in group %d", c.uid, a.gid)
	}
	return fmt.Errorf("uid %d is not root", c.uid)
}

// procGroups reads the supplementary groups of pid from /proc.
func procGroups(pid int) ([]int, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		rest, ok := strings.CutPrefix(sc.Text(), "Groups:")
		if !ok {
			continue
		}
		var out []int
		for _, f := range strings.Fields(rest) {
			g, err := strconv.Atoi(f)
			if err != nil {
				return nil, fmt.Errorf("parse group %q: %w", f, err)
			}
			out = append(out, g)
		}
		return out, nil
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	return nil, errors.New("no Groups line")
}
