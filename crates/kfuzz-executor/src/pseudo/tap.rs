//! `syz_emit_ethernet` and the tap device it writes to: `syz_tun`, made through /dev/net/tun
//! the first time a program needs it, with the addresses syzkaller's descriptions expect
//! (MAC aa:aa:aa:aa:aa:aa, 172.20.20.170/24, a neighbour 172.20.20.187 at aa:aa:aa:aa:aa:bb),
//! and up. Every proc's runner attaches a queue of its own to the one device (multi-queue).
//! A frame written to the tap fd enters the kernel's network stack as if received.

use std::sync::atomic::{AtomicI32, AtomicU8, Ordering};

use super::{bytes, check, errno, Res};

const TUN_PATH: &[u8] = b"/dev/net/tun\0";
const IFNAME: &[u8] = b"syz_tun";
const LOCAL_MAC: [u8; 6] = [0xaa; 6];
const REMOTE_MAC: [u8; 6] = [0xaa, 0xaa, 0xaa, 0xaa, 0xaa, 0xbb];
const LOCAL_IPV4: [u8; 4] = [172, 20, 20, 170];
const REMOTE_IPV4: [u8; 4] = [172, 20, 20, 187];
const NETMASK: [u8; 4] = [255, 255, 255, 0];
/// A frame longer than this is cut (the largest a tap device takes with its default MTU and
/// headers is far below).
const MAX_FRAME: u64 = 64 << 10;

/// The fd number the runner keeps for the tap device (-1: none reserved).
static SLOT: AtomicI32 = AtomicI32::new(-1);
/// The tap fd once made.
static TAP: AtomicI32 = AtomicI32::new(-1);
/// 0: not tried, 1: made, 2: failed (no /dev/net/tun): not tried again.
static STATE: AtomicU8 = AtomicU8::new(0);

pub fn reserve(fd: libc::c_int) {
    SLOT.store(fd, Ordering::SeqCst);
}

/// Makes the tap device unless that was done (or failed) before.
pub fn ensure() {
    if STATE.load(Ordering::SeqCst) != 0 {
        return;
    }
    match open_tap() {
        Ok(fd) => {
            TAP.store(fd, Ordering::SeqCst);
            STATE.store(1, Ordering::SeqCst);
            configure();
        }
        Err(_) => STATE.store(2, Ordering::SeqCst),
    }
}

/// `struct ifreq`: a name and a 24-byte union.
#[repr(C)]
struct IfReq {
    name: [u8; libc::IFNAMSIZ],
    data: [u8; 24],
}

impl IfReq {
    fn new() -> IfReq {
        let mut r = IfReq {
            name: [0; libc::IFNAMSIZ],
            data: [0; 24],
        };
        r.name[..IFNAME.len()].copy_from_slice(IFNAME);
        r
    }

    /// The union as a `struct sockaddr`: family, then its data.
    fn sockaddr(family: u16, data: &[u8]) -> IfReq {
        let mut r = IfReq::new();
        r.data[..2].copy_from_slice(&family.to_ne_bytes());
        r.data[2..2 + data.len()].copy_from_slice(data);
        r
    }
}

/// `sockaddr_in` data after the family: port 0, then the address.
fn inet(addr: [u8; 4]) -> [u8; 6] {
    [0, 0, addr[0], addr[1], addr[2], addr[3]]
}

fn open_tap() -> Result<libc::c_int, i32> {
    // SAFETY: a valid C string; the fd is kept for the executor's life.
    let fd = check(unsafe {
        libc::open(
            TUN_PATH.as_ptr().cast(),
            libc::O_RDWR | libc::O_NONBLOCK | libc::O_CLOEXEC,
        )
    })? as libc::c_int;
    let mut req = IfReq::new();
    let flags = (libc::IFF_TAP | libc::IFF_NO_PI | libc::IFF_MULTI_QUEUE) as u16;
    req.data[..2].copy_from_slice(&flags.to_ne_bytes());
    // SAFETY: TUNSETIFF reads (and may write) one ifreq.
    if unsafe { libc::ioctl(fd, libc::TUNSETIFF, &mut req) } < 0 {
        let e = errno();
        // SAFETY: closing our fd.
        unsafe { libc::close(fd) };
        return Err(e);
    }
    let slot = SLOT.load(Ordering::SeqCst);
    if slot < 0 || slot == fd {
        return Ok(fd);
    }
    // SAFETY: moving our fd onto the number the runner keeps for it.
    unsafe {
        let r = libc::dup3(fd, slot, libc::O_CLOEXEC);
        libc::close(fd);
        if r < 0 {
            return Err(errno());
        }
    }
    Ok(slot)
}

/// Addresses, neighbour and link up; each step is best effort (a kernel without IPv4 still
/// gets a tap device that is up).
fn configure() {
    for (knob, v) in [("accept_dad", "0"), ("router_solicitations", "0")] {
        let path = format!("/proc/sys/net/ipv6/conf/syz_tun/{knob}");
        let _ = std::fs::write(path, v);
    }
    // SAFETY: socket(2) takes no pointers; closed below.
    let mut sock = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    let inet_ok = sock >= 0;
    if !inet_ok {
        // SAFETY: as above; interface ioctls work on any socket.
        sock = unsafe { libc::socket(libc::AF_UNIX, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    }
    if sock < 0 {
        return;
    }
    let ether = libc::ARPHRD_ETHER;
    let af_inet = libc::AF_INET as u16;
    let mut reqs = vec![(libc::SIOCSIFHWADDR, IfReq::sockaddr(ether, &LOCAL_MAC))];
    if inet_ok {
        reqs.push((
            libc::SIOCSIFADDR,
            IfReq::sockaddr(af_inet, &inet(LOCAL_IPV4)),
        ));
        reqs.push((
            libc::SIOCSIFNETMASK,
            IfReq::sockaddr(af_inet, &inet(NETMASK)),
        ));
    }
    // SAFETY: each ioctl reads (or fills) one ifreq; the arpreq is fully initialised.
    unsafe {
        for (op, mut r) in reqs {
            libc::ioctl(sock, op, &mut r);
        }
        let mut r = IfReq::new();
        if libc::ioctl(sock, libc::SIOCGIFFLAGS, &mut r) == 0 {
            let up = (libc::IFF_UP | libc::IFF_RUNNING) as u16;
            let flags = u16::from_ne_bytes([r.data[0], r.data[1]]) | up;
            r.data[..2].copy_from_slice(&flags.to_ne_bytes());
            libc::ioctl(sock, libc::SIOCSIFFLAGS, &mut r);
        }
        if inet_ok {
            let mut arp: libc::arpreq = std::mem::zeroed();
            arp.arp_pa.sa_family = af_inet;
            for (d, s) in arp.arp_pa.sa_data.iter_mut().zip(inet(REMOTE_IPV4)) {
                *d = s as libc::c_char;
            }
            arp.arp_ha.sa_family = ether;
            for (d, s) in arp.arp_ha.sa_data.iter_mut().zip(REMOTE_MAC) {
                *d = s as libc::c_char;
            }
            arp.arp_flags = libc::ATF_COM | libc::ATF_PERM;
            for (d, s) in arp.arp_dev.iter_mut().zip(IFNAME) {
                *d = *s as libc::c_char;
            }
            libc::ioctl(sock, libc::SIOCSARP, &mut arp);
        }
        libc::close(sock);
    }
}

/// `syz_emit_ethernet(len, packet, frags)`: the frame, written whole (the fragments argument
/// is for a tap mode kfuzz does not use). ENODEV when the kernel has no tun driver.
pub fn emit(len: u64, packet: u64) -> Res {
    ensure();
    let fd = TAP.load(Ordering::SeqCst);
    if fd < 0 {
        return Err(libc::ENODEV);
    }
    let frame = bytes(packet, len.min(MAX_FRAME))?;
    // SAFETY: the frame is valid for its length.
    let n = unsafe { libc::write(fd, frame.as_ptr().cast(), frame.len()) };
    if n < 0 {
        Err(errno())
    } else {
        Ok(n as i64)
    }
}
