//! The guest kfuzz boots: an initramfs it writes itself (the default). Layout: `images/initramfs.md`.

pub mod cpio;
pub mod initramfs;
