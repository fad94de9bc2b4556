//! `syz_genetlink_get_family_id`: asks the generic netlink controller (`nlctrl`) for a family's
//! id with one `CTRL_CMD_GETFAMILY` request, on the program's socket or a fresh one. Replies
//! that are not the answer to this request (other traffic queued on a fuzzed socket) are
//! skipped by sequence number.

use std::sync::atomic::{AtomicU32, Ordering};

use super::{check, errno, string, Res};

/// The controller's own family id.
const GENL_ID_CTRL: u16 = 0x10;
const CTRL_CMD_GETFAMILY: u8 = 3;
const CTRL_ATTR_FAMILY_ID: u16 = 1;
const CTRL_ATTR_FAMILY_NAME: u16 = 2;
/// Family names are at most 15 bytes and a NUL.
const GENL_NAMSIZ: usize = 16;
const NLM_F_REQUEST: u16 = 1;
const NLM_F_ACK: u16 = 4;
const NLMSG_ERROR: u16 = 2;
/// The attribute type without the nested / byte-order flag bits.
const NLA_TYPE_MASK: u16 = 0x3fff;
const NLMSG_HDRLEN: usize = 16;
const GENL_HDRLEN: usize = 4;
/// Replies read before giving up on finding ours.
const MAX_REPLIES: usize = 64;

static SEQ: AtomicU32 = AtomicU32::new(0x6b66_0000);

fn align4(n: usize) -> usize {
    (n + 3) & !3
}

fn u16_at(b: &[u8], off: usize) -> Option<u16> {
    Some(u16::from_ne_bytes(b.get(off..off + 2)?.try_into().ok()?))
}

fn u32_at(b: &[u8], off: usize) -> Option<u32> {
    Some(u32::from_ne_bytes(b.get(off..off + 4)?.try_into().ok()?))
}

/// The family id of `name` (a string in program memory), asked on netlink socket `fd`, or on
/// a socket of our own when `fd` is negative.
pub fn family_id(name: u64, fd: u64) -> Res {
    let name = string(name, GENL_NAMSIZ - 1)?;
    let given = fd as i32;
    let sock = if given < 0 {
        // SAFETY: socket(2) takes no pointers; closed below.
        check(unsafe {
            libc::socket(
                libc::AF_NETLINK,
                libc::SOCK_RAW | libc::SOCK_CLOEXEC,
                libc::NETLINK_GENERIC,
            )
        })? as libc::c_int
    } else {
        given
    };
    let r = query(sock, &name);
    if given < 0 {
        // SAFETY: closing the socket opened above.
        unsafe { libc::close(sock) };
    }
    r
}

/// The request: a netlink header, a generic netlink header, the name attribute.
fn request(name: &[u8], seq: u32) -> Vec<u8> {
    let attr_len = 4 + name.len() + 1;
    let total = NLMSG_HDRLEN + GENL_HDRLEN + align4(attr_len);
    let mut m = Vec::with_capacity(total);
    m.extend_from_slice(&(total as u32).to_ne_bytes());
    m.extend_from_slice(&GENL_ID_CTRL.to_ne_bytes());
    m.extend_from_slice(&(NLM_F_REQUEST | NLM_F_ACK).to_ne_bytes());
    m.extend_from_slice(&seq.to_ne_bytes());
    m.extend_from_slice(&0u32.to_ne_bytes());
    m.extend_from_slice(&[CTRL_CMD_GETFAMILY, 1, 0, 0]);
    m.extend_from_slice(&(attr_len as u16).to_ne_bytes());
    m.extend_from_slice(&CTRL_ATTR_FAMILY_NAME.to_ne_bytes());
    m.extend_from_slice(name);
    m.resize(total, 0);
    m
}

/// What one datagram of replies says about our request.
#[derive(Debug, Default, PartialEq, Eq)]
struct Replies {
    id: Option<u16>,
    /// The request's error (0: the acknowledgement).
    error: Option<i32>,
}

fn parse(buf: &[u8], seq: u32, out: &mut Replies) {
    let mut off = 0;
    while off + NLMSG_HDRLEN <= buf.len() {
        let (Some(len), Some(ty), Some(s)) =
            (u32_at(buf, off), u16_at(buf, off + 4), u32_at(buf, off + 8))
        else {
            return;
        };
        let len = len as usize;
        if len < NLMSG_HDRLEN || off + len > buf.len() {
            return;
        }
        let msg = &buf[off..off + len];
        if s == seq && ty == NLMSG_ERROR {
            out.error = u32_at(msg, NLMSG_HDRLEN).map(|e| e as i32);
        } else if s == seq && ty == GENL_ID_CTRL {
            let mut a = NLMSG_HDRLEN + GENL_HDRLEN;
            while let (Some(alen), Some(aty)) = (u16_at(msg, a), u16_at(msg, a + 2)) {
                let alen = alen as usize;
                if alen < 4 || a + alen > msg.len() {
                    break;
                }
                if aty & NLA_TYPE_MASK == CTRL_ATTR_FAMILY_ID {
                    out.id = u16_at(msg, a + 4);
                }
                a += align4(alen);
            }
        }
        off += align4(len);
    }
}

fn query(sock: libc::c_int, name: &[u8]) -> Res {
    let seq = SEQ.fetch_add(1, Ordering::Relaxed);
    let req = request(name, seq);
    // SAFETY: an all-zero sockaddr_nl is valid; the kernel is pid 0.
    let mut kernel: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
    kernel.nl_family = libc::AF_NETLINK as libc::sa_family_t;
    // SAFETY: the buffer and address are valid for the lengths given.
    let sent = unsafe {
        libc::sendto(
            sock,
            req.as_ptr().cast(),
            req.len(),
            0,
            (&kernel as *const libc::sockaddr_nl).cast(),
            std::mem::size_of::<libc::sockaddr_nl>() as libc::socklen_t,
        )
    };
    if sent < 0 {
        return Err(errno());
    }
    let mut buf = vec![0u8; 32 << 10];
    let mut got = Replies::default();
    for _ in 0..MAX_REPLIES {
        // Once the id is known, only an acknowledgement already queued is read.
        let flags = if got.id.is_some() {
            libc::MSG_DONTWAIT
        } else {
            0
        };
        // SAFETY: the buffer is valid for its length.
        let n = unsafe { libc::recv(sock, buf.as_mut_ptr().cast(), buf.len(), flags) };
        if n < 0 {
            match (errno(), got.id) {
                (_, Some(id)) => return Ok(i64::from(id)),
                (e, None) => return Err(e),
            }
        }
        parse(&buf[..n as usize], seq, &mut got);
        match (got.id, got.error) {
            (Some(id), _) => {
                if got.error.is_some() {
                    return Ok(i64::from(id));
                }
            }
            (None, Some(e)) if e < 0 => return Err(-e),
            // An acknowledgement without the family: the kernel answered nothing useful.
            (None, Some(_)) => return Err(libc::EINVAL),
            (None, None) => {}
        }
    }
    got.id.map(i64::from).ok_or(libc::EINVAL)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A reply as the controller sends it: name attribute first, then the id.
    fn reply(seq: u32, id: u16) -> Vec<u8> {
        let mut attrs = Vec::new();
        attrs.extend_from_slice(&11u16.to_ne_bytes());
        attrs.extend_from_slice(&CTRL_ATTR_FAMILY_NAME.to_ne_bytes());
        attrs.extend_from_slice(b"nlctrl\0\0");
        attrs.extend_from_slice(&6u16.to_ne_bytes());
        attrs.extend_from_slice(&CTRL_ATTR_FAMILY_ID.to_ne_bytes());
        attrs.extend_from_slice(&id.to_ne_bytes());
        attrs.extend_from_slice(&[0, 0]);
        let total = NLMSG_HDRLEN + GENL_HDRLEN + attrs.len();
        let mut m = Vec::new();
        m.extend_from_slice(&(total as u32).to_ne_bytes());
        m.extend_from_slice(&GENL_ID_CTRL.to_ne_bytes());
        m.extend_from_slice(&0u16.to_ne_bytes());
        m.extend_from_slice(&seq.to_ne_bytes());
        m.extend_from_slice(&0u32.to_ne_bytes());
        m.extend_from_slice(&[1, 2, 0, 0]);
        m.extend_from_slice(&attrs);
        m
    }

    #[test]
    fn the_request_carries_the_name_with_its_nul_padded_to_four_bytes() {
        let r = request(b"nlctrl", 7);
        assert_eq!(r.len(), 16 + 4 + 12);
        assert_eq!(u32_at(&r, 0), Some(32));
        assert_eq!(u16_at(&r, 4), Some(GENL_ID_CTRL));
        assert_eq!(u32_at(&r, 8), Some(7));
        assert_eq!(r[16], CTRL_CMD_GETFAMILY);
        assert_eq!(u16_at(&r, 20), Some(11));
        assert_eq!(&r[24..31], b"nlctrl\0");
    }

    #[test]
    fn the_host_kernel_gives_nlctrl_its_fixed_id() {
        // SAFETY: socket(2) takes no pointers; closed below.
        let sock = unsafe {
            libc::socket(
                libc::AF_NETLINK,
                libc::SOCK_RAW | libc::SOCK_CLOEXEC,
                libc::NETLINK_GENERIC,
            )
        };
        if sock < 0 {
            eprintln!("no generic netlink socket on this host: skipped");
            return;
        }
        assert_eq!(query(sock, b"nlctrl"), Ok(i64::from(GENL_ID_CTRL)));
        assert_eq!(query(sock, b"no-such-family"), Err(libc::ENOENT));
        // SAFETY: closing our socket.
        unsafe { libc::close(sock) };
    }

    #[test]
    fn replies_to_other_requests_are_skipped() {
        let mut buf = reply(1, 0x99);
        buf.extend(reply(2, 0x10));
        let mut got = Replies::default();
        parse(&buf, 2, &mut got);
        assert_eq!(got.id, Some(0x10));
        assert_eq!(got.error, None);
    }
}
