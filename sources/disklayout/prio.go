package disklayout

import "fmt"

// GPT attribute bits of the gptprio scheme (GRUB's gptprio patch series and
// upstream signpost). Priority, tries and successful live on the BOOT-A and
// BOOT-B entries; BootSucceededBit lives on the PRIVATE entry.
const (
	PriorityShift    = 48 // bits 48–51: priority, 0–15; highest bootable wins
	TriesShift       = 52 // bits 52–55: tries left, 0–15
	SuccessfulBit    = 56 // set once the bank has booted successfully
	BootSucceededBit = 57 // on PRIVATE: some boot of this disk has ever succeeded

	prioMask = 0xf
	// PrioBits covers every bit EncodePrio may change.
	PrioBits = uint64(prioMask)<<PriorityShift | uint64(prioMask)<<TriesShift | 1<<SuccessfulBit
)

// Prio is the decoded gptprio state of a BOOT partition.
type Prio struct {
	Priority   uint8 // 0–15
	TriesLeft  uint8 // 0–15
	Successful bool
}

// Bootable reports whether GRUB's gptprio would consider the bank: a
// non-zero priority and either tries left or a successful boot.
func (p Prio) Bootable() bool {
	return p.Priority > 0 && (p.TriesLeft > 0 || p.Successful)
}

// DecodePrio extracts the gptprio fields from a GPT attribute value.
func DecodePrio(attrs uint64) Prio {
	return Prio{
		Priority:   uint8(attrs >> PriorityShift & prioMask),
		TriesLeft:  uint8(attrs >> TriesShift & prioMask),
		Successful: attrs&(1<<SuccessfulBit) != 0,
	}
}

// EncodePrio returns attrs with its gptprio bits replaced by p; every
// other bit is kept. Priority and TriesLeft above 15 are an error.
func EncodePrio(attrs uint64, p Prio) (uint64, error) {
	if p.Priority > prioMask || p.TriesLeft > prioMask {
		return attrs, fmt.Errorf("encode gptprio %+v: priority and tries left must be 0..15", p)
	}
	attrs &^= PrioBits
	attrs |= uint64(p.Priority)<<PriorityShift | uint64(p.TriesLeft)<<TriesShift
	if p.Successful {
		attrs |= 1 << SuccessfulBit
	}
	return attrs, nil
}
