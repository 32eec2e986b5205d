package disklayout

import "github.com/petrel-os/petrel/sources/gpt"

// GUID is a GPT GUID in textual byte order.
type GUID = gpt.GUID

// Partition type GUIDs. They are upstream Bottlerocket's, so that tools
// which know those (GRUB's gptprio patch, systemd-repart configs) keep
// working.
var (
	TypeBIOSBoot  = gpt.MustParseGUID("21686148-6449-6e6f-744e-656564454649") // "Hah!IdontNeedEFI" (sgdisk ef02)
	TypeEFISystem = gpt.MustParseGUID("c12a7328-f81f-11d2-ba4b-00a0c93ec93b")
	TypeEFIBackup = gpt.MustParseGUID("b39ce39c-0a00-b4ab-2d11-f18f8237a21c")
	TypeBoot      = gpt.MustParseGUID("6b636168-7420-6568-2070-6c616e657421") // carries the gptprio bits
	TypeRoot      = gpt.MustParseGUID("5526016a-1a97-4ea4-b39a-b7c8c6ca4502")
	TypeHash      = gpt.MustParseGUID("598f10af-c955-4456-6a99-7720068a6cea") // dm-verity hash tree
	TypeReserved  = gpt.MustParseGUID("0c5d99a5-d331-4147-baef-08e2b855bdc9")
	TypePrivate   = gpt.MustParseGUID("440408bb-eb0b-4328-a6e5-a29038fad706")
	TypeData      = gpt.MustParseGUID("626f7474-6c65-6474-6861-726d61726b73") // "bottledtharmarks"
)

// Fixed partition GUIDs of the DATA partitions. First boot grows the
// partition with the preferred GUID if it exists, else the fallback one.
// Split plan: DATA-A (1 MiB placeholder on the OS disk) gets the fallback
// GUID and DATA-B (data disk) the preferred one. Unified plan: DATA-A gets
// the preferred GUID.
var (
	DataPreferredGUID = gpt.MustParseGUID("5b94e8df-28b8-485c-9d19-362263b5944c")
	DataFallbackGUID  = gpt.MustParseGUID("69040874-417d-4e26-a764-7885f22007ea")
)
