// Package bridge carries many stream connections over one byte stream: a
// virtio-serial port between a QEMU guest and the machine that runs QEMU.
// It is how a developer or a test reaches a VM's API socket (/run/api.sock)
// from the build machine: `buildctl boot --api-socket PATH` serves PATH on
// the build machine (the host end, Serve and Link.Dial), and the guest
// agent api-bridge (Main), which exists only in images with the debug-api
// image feature, connects each stream to the API socket. See docs/vm.md.
//
// A serial port is one byte stream with no notion of connections, and it
// outlives the guest: after a guest reboot or an agent restart, bytes
// meant for the old guest may still sit in the channel (QEMU holds
// host-to-guest bytes until the guest opens the port), and a frame may be
// cut short. So the protocol has
//
//   - frames with a magic, a checksummed header and a checksummed payload,
//     so that a reader skips garbage and finds the next frame (Decoder);
//   - sessions: the guest agent picks a random session number at start and
//     says Hello until the host Acks it; every frame carries the session,
//     and frames of another session are dropped. A Hello with a new
//     session tells the host that the guest restarted: it resets the
//     streams of the old one. A host that starts sends one Probe, which
//     makes a running guest agent start a new session;
//   - streams: Open, Opened, Data, Window, Fin and Reset, with a per-stream
//     window (credit) so that a stream whose reader is slow stops only
//     itself, never the port or the other streams.
//
// Libraries such as yamux assume a reliable stream from a single session
// and cannot skip stale bytes or resynchronise after the far end restarts,
// which is the normal case here; hence this small protocol.
package bridge
