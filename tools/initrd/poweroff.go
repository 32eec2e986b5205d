package initrd

import (
	"encoding/binary"
	"fmt"
	"io"
)

// Poweroff writes a gzip'd initramfs whose /init powers the machine off at
// once. It is the floor of boot-time measurements: the same firmware,
// bootloader and kernel as a real image, and no userspace at all.
func Poweroff(out io.Writer) error {
	cw, finish, err := compressor(out, Gzip)
	if err != nil {
		return err
	}
	w := &cpioWriter{w: cw}
	if err := w.entry("init", modeFile|0o755, poweroffELF()); err != nil {
		return err
	}
	if err := w.close(); err != nil {
		return err
	}
	if err := finish(); err != nil {
		return fmt.Errorf("compress poweroff initramfs: %w", err)
	}
	return nil
}

// poweroffELF returns a minimal static x86-64 ELF executable that calls
// reboot(LINUX_REBOOT_MAGIC1, LINUX_REBOOT_MAGIC2, LINUX_REBOOT_CMD_POWER_OFF)
// and then spins. It is generated rather than compiled so that measuring
// the boot floor needs no toolchain.
func poweroffELF() []byte {
	const base = 0x400000
	code := []byte{
		0xbf, 0xad, 0xde, 0xe1, 0xfe, // mov edi, 0xfee1dead
		0xbe, 0x69, 0x19, 0x12, 0x28, // mov esi, 0x28121969
		0xba, 0xdc, 0xfe, 0x21, 0x43, // mov edx, 0x4321fedc (POWER_OFF)
		0xb8, 0xa9, 0x00, 0x00, 0x00, // mov eax, 169 (reboot)
		0x0f, 0x05, // syscall
		0xeb, 0xfe, // jmp .
	}
	const ehSize, phSize = 64, 56
	total := ehSize + phSize + len(code)
	b := make([]byte, total)
	le := binary.LittleEndian
	copy(b, "\x7fELF")
	b[4], b[5], b[6] = 2, 1, 1               // 64-bit, little-endian, version 1
	le.PutUint16(b[16:], 2)                  // ET_EXEC
	le.PutUint16(b[18:], 62)                 // EM_X86_64
	le.PutUint32(b[20:], 1)                  // EV_CURRENT
	le.PutUint64(b[24:], base+ehSize+phSize) // entry
	le.PutUint64(b[32:], ehSize)             // program header offset
	le.PutUint16(b[52:], ehSize)
	le.PutUint16(b[54:], phSize)
	le.PutUint16(b[56:], 1) // one program header
	ph := b[ehSize:]
	le.PutUint32(ph[0:], 1)     // PT_LOAD
	le.PutUint32(ph[4:], 5)     // PF_R|PF_X
	le.PutUint64(ph[8:], 0)     // offset
	le.PutUint64(ph[16:], base) // vaddr
	le.PutUint64(ph[24:], base) // paddr
	le.PutUint64(ph[32:], uint64(total))
	le.PutUint64(ph[40:], uint64(total))
	le.PutUint64(ph[48:], 0x1000)
	copy(b[ehSize+phSize:], code)
	return b
}
