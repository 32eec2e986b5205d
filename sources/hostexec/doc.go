// Package hostexec serves the API's /exec route: a WebSocket session that
// runs a command in a host container, in the host containerd (upstream
// Bottlerocket's protocol, sources/api's Exec* types, docs/api.md "Exec").
//
// The command is exec'd in the container's running task with the
// containerd Go client (upstream runs `ctr task exec`), its standard
// streams on FIFOs this package reads and writes, with a terminal when
// the client asks for one. Its output goes to the client as binary
// messages, the client's binary messages go to its input, with upstream's
// flow control (Capacity messages), and its exit status ends the session
// as the reason of a normal Close. A client that goes away, stops
// answering pings or breaks the protocol ends the session and the command
// (SIGKILL).
//
// The WebSocket library is github.com/coder/websocket: it is maintained
// (the successor of nhooyr.io/websocket), has no dependencies, takes a
// context in every blocking call, and allows concurrent writers, which
// the output streams, the flow-control messages and the pings are here;
// gorilla/websocket needs one writer at a time and deadlines instead of
// contexts.
package hostexec
