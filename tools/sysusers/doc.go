// Package sysusers creates the system users and groups of sysusers.d(5)
// files at image build time, so that the factory copy of /etc in an image
// already holds them and systemd-sysusers need not run at every boot.
//
// Parse reads one sysusers.d file. Apply reads every
// usr/lib/sysusers.d/*.conf of a staging root and adds the users, groups
// and group members that are missing to usr/share/factory/etc/passwd and
// group, the way systemd-sysusers (version 252) does:
//
//   - existing users and groups are never changed, only group member
//     lists grow;
//   - all g lines are applied before all u lines, each in file order;
//   - a fixed ID is used as given; a UID that another user has, or a GID
//     that another group has, is an error (systemd-sysusers would quietly
//     allocate another one); the GID or group of "UID:GID" must exist;
//   - a u line without a group creates a group of the user's name, with
//     GID = UID when that number is free;
//   - other IDs are allocated from 999 downwards, skipping numbers in use
//     as a UID or GID by another name, or requested as a fixed ID by
//     another line (systemd-sysusers would let an earlier line take it),
//     and a user gets the number of its group when it is free;
//   - an m line adds the user to the group, creating either if no line
//     declares it; member lists are sorted.
//
// Where systemd-sysusers would quietly pick something else, Apply keeps
// to what the lines say: it gives a u line its fixed UID even when a group
// of another name has that number as GID, and the GID or group the line
// names even when a group of the user's name exists; it does not create a
// group for a user that already exists; and conflicting lines for one name
// are an error (systemd-sysusers uses the first). Apply also reports every
// bad line of every file at once, and supports neither r lines,
// path-valued IDs, specifiers (%x, apart from %%) nor shadow and gshadow
// files: Petrel hosts have no password logins. On other input its output
// is the same as that of systemd-sysusers 252.
//
// The output is deterministic: existing lines first, unchanged, then the
// new entries in the order they were created, so a second run changes
// nothing.
package sysusers
