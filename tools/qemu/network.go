package qemu

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
)

// The guest's network is QEMU's user network (slirp) with restrict=on: the
// guest reaches nothing past this machine, not even this machine, except
// through the forwards a caller asks for. A test that needs a server (a
// TUF repository, a registry) starts it on 127.0.0.1 and forwards a guest
// address to it.

// GuestNetwork is the guest's default network: QEMU's default for the user
// network. The guest gets .15 by DHCP; .2 is the gateway, .3 DNS.
const GuestNetwork = "10.0.2.0/24"

// EC2Network is the network of a guest that plays an EC2 instance: the
// instance metadata service's address, 169.254.169.254, is in it, so a
// GuestForward can serve it.
const EC2Network = "169.254.169.0/24"

// GuestForward connects a TCP address in the guest's network to a server
// on this machine's loopback: each guest connection to Guest runs `socat
// STDIO TCP:Host` (QEMU's guestfwd with a command, the only form that
// serves more than one connection).
type GuestForward struct {
	// Guest is an address of the guest's network (Options.Network) other
	// than the gateway and DNS, e.g. "10.0.2.100:80".
	Guest string
	// Host is a loopback address and port, e.g. "127.0.0.1:8080".
	Host string
}

// HostForward connects a port on this machine's loopback to a guest port.
type HostForward struct {
	// Host is a loopback address and port, e.g. "127.0.0.1:2222".
	Host string
	// GuestPort is the guest's TCP port.
	GuestPort uint16
}

// netdevArg returns the -netdev value for opts.
func netdevArg(opts Options) (string, error) {
	var b strings.Builder
	b.WriteString("user,id=n0,restrict=on")
	var errs []error
	network := netip.MustParsePrefix(GuestNetwork)
	if opts.Network != "" {
		p, err := netip.ParsePrefix(opts.Network)
		if err != nil || !p.Addr().Is4() || p.Bits() > 24 || p.Masked() != p {
			return "", fmt.Errorf("network %q: want an IPv4 network of at least 256 addresses, such as %s", opts.Network, GuestNetwork)
		}
		network = p
		fmt.Fprintf(&b, ",net=%s", p)
	}
	for i, f := range opts.GuestForwards {
		g, err := netip.ParseAddrPort(f.Guest)
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("guest forward %d: guest address %q: %w", i, f.Guest, err))
		case !network.Contains(g.Addr()) || g.Addr() == network.Addr().Next().Next() || g.Addr() == network.Addr().Next().Next().Next():
			errs = append(errs, fmt.Errorf("guest forward %d: guest address %q: want an address of %s other than the gateway .2 and DNS .3", i, f.Guest, network))
		}
		h, err := loopback(f.Host)
		if err != nil {
			errs = append(errs, fmt.Errorf("guest forward %d: %w", i, err))
			continue
		}
		fmt.Fprintf(&b, ",guestfwd=tcp:%s-cmd:socat STDIO TCP:%s", g, h)
	}
	for i, f := range opts.HostForwards {
		h, err := loopback(f.Host)
		if err != nil {
			errs = append(errs, fmt.Errorf("host forward %d: %w", i, err))
			continue
		}
		if f.GuestPort == 0 {
			errs = append(errs, fmt.Errorf("host forward %d: guest port 0", i))
			continue
		}
		fmt.Fprintf(&b, ",hostfwd=tcp:%s:%d-:%d", h.Addr(), h.Port(), f.GuestPort)
	}
	return b.String(), errors.Join(errs...)
}

// loopback parses a loopback address and port.
func loopback(s string) (netip.AddrPort, error) {
	a, err := netip.ParseAddrPort(s)
	if err != nil {
		return a, fmt.Errorf("host address %q: %w", s, err)
	}
	if !a.Addr().Is4() || !a.Addr().IsLoopback() || a.Port() == 0 {
		return a, fmt.Errorf("host address %q: want an IPv4 loopback address with a port, such as 127.0.0.1:8080", s)
	}
	return a, nil
}
