// Package dm creates device-mapper devices by talking to the kernel through
// ioctls on /dev/mapper/control, without libdevmapper, dmsetup or udev.
//
// It also parses the kernel's dm-mod.create= syntax
// (name,uuid,minor,flags,table[,table...][;...]) so that an initramfs can set
// up exactly the devices a kernel built with CONFIG_DM_INIT would, and the
// same command line works for both.
package dm
