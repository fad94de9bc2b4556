//! The C for pseudo-calls in `prog2c` output: one static function per `syz_*` call a program
//! uses, doing what kfuzz's executor does for it (`crates/kfuzz-executor/src/pseudo/`), short
//! enough to read in the reproducer. Each takes `long` arguments and returns -1 with errno set
//! on failure, like a syscall.

use kfuzz_wire::PseudoCall;

/// Headers a helper needs beyond the common ones.
pub fn includes(p: PseudoCall) -> &'static [&'static str] {
    match p {
        PseudoCall::OpenDev => &["sys/stat.h", "sys/sysmacros.h"],
        PseudoCall::OpenProcfs | PseudoCall::InitNetSocket => &[],
        PseudoCall::OpenPts => &["sys/ioctl.h"],
        PseudoCall::GenetlinkGetFamilyId => &["linux/genetlink.h", "linux/netlink.h"],
        PseudoCall::EmitEthernet => &[
            "arpa/inet.h",
            "linux/if_tun.h",
            "net/if.h",
            "net/if_arp.h",
            "sys/ioctl.h",
        ],
        PseudoCall::MountImage => &[
            "linux/loop.h",
            "sys/ioctl.h",
            "sys/mount.h",
            "sys/stat.h",
            "zlib.h",
        ],
    }
}

/// Extra linker flags the helper needs (shown in the compile line of the header comment).
pub fn libs(p: PseudoCall) -> &'static str {
    match p {
        PseudoCall::MountImage => "-lz",
        _ => "",
    }
}

/// The helper's C definition.
pub fn helper(p: PseudoCall) -> &'static str {
    match p {
        PseudoCall::OpenDev => OPEN_DEV,
        PseudoCall::OpenProcfs => OPEN_PROCFS,
        PseudoCall::OpenPts => OPEN_PTS,
        PseudoCall::GenetlinkGetFamilyId => GENETLINK_GET_FAMILY_ID,
        PseudoCall::InitNetSocket => INIT_NET_SOCKET,
        PseudoCall::EmitEthernet => EMIT_ETHERNET,
        PseudoCall::MountImage => MOUNT_IMAGE,
    }
}

const OPEN_DEV: &str = r#"/* syz_open_dev: open a device path whose '#'s become the digits of id, lowest first;
 * dev 0xc or 0xb instead names char or block device id:flags, found in /dev/char or
 * /dev/block, or through a node made here for the occasion. */
static long syz_open_dev(long dev, long id, long flags)
{
	char path[1024];
	unsigned long n = id;
	unsigned major = (uint8_t)id, minor = (uint8_t)flags;
	int fd;

	if (dev == 0xc || dev == 0xb) {
		snprintf(path, sizeof(path), "/dev/%s/%u:%u", dev == 0xc ? "char" : "block", major, minor);
		fd = open(path, O_RDWR);
		if (fd == -1 && errno == ENOENT) {
			snprintf(path, sizeof(path), "./kfuzz-dev-%u-%u", major, minor);
			unlink(path);
			mknod(path, (dev == 0xc ? S_IFCHR : S_IFBLK) | 0600, makedev(major, minor));
			fd = open(path, O_RDWR);
			unlink(path);
		}
		return fd;
	}
	snprintf(path, sizeof(path), "%s", (const char *)dev);
	for (char *p = strchr(path, '#'); p; p = strchr(p + 1, '#')) {
		*p = '0' + n % 10;
		n /= 10;
	}
	return open(path, flags & ~O_CREAT);
}
"#;

const OPEN_PROCFS: &str = r#"/* syz_open_procfs: a /proc file of this process (pid 0), this thread (-1) or one of its
 * threads, read-write if allowed, else read-only. */
static long syz_open_procfs(long pid, long file)
{
	char path[1024];
	int fd;

	if ((int)pid == 0)
		snprintf(path, sizeof(path), "/proc/self/%s", (const char *)file);
	else if ((int)pid == -1)
		snprintf(path, sizeof(path), "/proc/thread-self/%s", (const char *)file);
	else
		snprintf(path, sizeof(path), "/proc/self/task/%d/%s", (int)pid, (const char *)file);
	fd = open(path, O_RDWR);
	if (fd == -1)
		fd = open(path, O_RDONLY);
	return fd;
}
"#;

const OPEN_PTS: &str = r#"/* syz_open_pts: the slave side of a /dev/ptmx fd. */
static long syz_open_pts(long ptmx, long flags)
{
	unsigned int n;
	char path[64];

	if (ioctl(ptmx, TIOCGPTN, &n))
		return -1;
	snprintf(path, sizeof(path), "/dev/pts/%u", n);
	return open(path, flags);
}
"#;

const INIT_NET_SOCKET: &str = r#"/* syz_init_net_socket: a socket in the initial network namespace, where this program runs. */
static long syz_init_net_socket(long domain, long type, long proto)
{
	return socket(domain, type, proto);
}
"#;

const GENETLINK_GET_FAMILY_ID: &str = r#"/* syz_genetlink_get_family_id: ask the generic netlink controller for a family's id, on the
 * given netlink socket or (fd < 0) a new one. */
static long syz_genetlink_get_family_id(long name, long sock)
{
	struct {
		struct nlmsghdr hdr;
		struct genlmsghdr genl;
		struct nlattr attr;
		char name[GENL_NAMSIZ];
	} req;
	static char buf[32768];
	size_t namelen = strnlen((const char *)name, GENL_NAMSIZ - 1);
	int fd = sock, len, id = -1;

	if (fd < 0 && (fd = socket(AF_NETLINK, SOCK_RAW, NETLINK_GENERIC)) == -1)
		return -1;
	memset(&req, 0, sizeof(req));
	req.genl.cmd = CTRL_CMD_GETFAMILY;
	req.genl.version = 1;
	req.attr.nla_type = CTRL_ATTR_FAMILY_NAME;
	req.attr.nla_len = NLA_HDRLEN + namelen + 1;
	memcpy(req.name, (const char *)name, namelen);
	req.hdr.nlmsg_type = GENL_ID_CTRL;
	req.hdr.nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK;
	req.hdr.nlmsg_len = NLMSG_LENGTH(GENL_HDRLEN + NLA_ALIGN(req.attr.nla_len));
	if (send(fd, &req, req.hdr.nlmsg_len, 0) != -1 && (len = recv(fd, buf, sizeof(buf), 0)) > 0) {
		struct nlmsghdr *h = (struct nlmsghdr *)buf;
		struct nlattr *a = (struct nlattr *)((char *)NLMSG_DATA(h) + GENL_HDRLEN);

		if (h->nlmsg_type == NLMSG_ERROR) {
			errno = -((struct nlmsgerr *)NLMSG_DATA(h))->error;
		} else {
			for (; (char *)a + NLA_HDRLEN <= buf + len && a->nla_len >= NLA_HDRLEN;
			     a = (struct nlattr *)((char *)a + NLA_ALIGN(a->nla_len))) {
				if (a->nla_type == CTRL_ATTR_FAMILY_ID) {
					id = *(uint16_t *)(a + 1);
					break;
				}
			}
			recv(fd, buf, sizeof(buf), MSG_DONTWAIT); /* the acknowledgement */
		}
	}
	if ((int)sock < 0)
		close(fd);
	return id;
}
"#;

const EMIT_ETHERNET: &str = r#"/* The tap device syz_emit_ethernet writes to: syz_tun, with MAC aa:aa:aa:aa:aa:aa, address
 * 172.20.20.170/24, a neighbour 172.20.20.187 at aa:aa:aa:aa:aa:bb, and up. */
static int tap_fd = -1;

static void setup_tap(void)
{
	struct ifreq ifr;
	struct arpreq arp;
	struct sockaddr_in *in = (struct sockaddr_in *)&ifr.ifr_addr;
	int sock;

	tap_fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK);
	if (tap_fd == -1)
		return;
	memset(&ifr, 0, sizeof(ifr));
	strcpy(ifr.ifr_name, "syz_tun");
	ifr.ifr_flags = IFF_TAP | IFF_NO_PI;
	if (ioctl(tap_fd, TUNSETIFF, &ifr)) {
		close(tap_fd);
		tap_fd = -1;
		return;
	}
	sock = socket(AF_INET, SOCK_DGRAM, 0);
	ifr.ifr_hwaddr.sa_family = ARPHRD_ETHER;
	memset(ifr.ifr_hwaddr.sa_data, 0xaa, 6);
	ioctl(sock, SIOCSIFHWADDR, &ifr);
	in->sin_family = AF_INET;
	in->sin_addr.s_addr = inet_addr("172.20.20.170");
	ioctl(sock, SIOCSIFADDR, &ifr);
	in->sin_addr.s_addr = inet_addr("255.255.255.0");
	ioctl(sock, SIOCSIFNETMASK, &ifr);
	ioctl(sock, SIOCGIFFLAGS, &ifr);
	ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
	ioctl(sock, SIOCSIFFLAGS, &ifr);
	memset(&arp, 0, sizeof(arp));
	in = (struct sockaddr_in *)&arp.arp_pa;
	in->sin_family = AF_INET;
	in->sin_addr.s_addr = inet_addr("172.20.20.187");
	arp.arp_ha.sa_family = ARPHRD_ETHER;
	memcpy(arp.arp_ha.sa_data, "\xaa\xaa\xaa\xaa\xaa\xbb", 6);
	arp.arp_flags = ATF_COM | ATF_PERM;
	strcpy(arp.arp_dev, "syz_tun");
	ioctl(sock, SIOCSARP, &arp);
	close(sock);
}

/* syz_emit_ethernet: the frame enters the network stack through the tap device. */
static long syz_emit_ethernet(long len, long packet, long frags)
{
	(void)frags;
	if (tap_fd == -1)
		setup_tap();
	if (tap_fd == -1) {
		errno = ENODEV;
		return -1;
	}
	return write(tap_fd, (const void *)packet, len);
}
"#;

const MOUNT_IMAGE: &str = r#"/* The zlib image inflated into a memfd (zero blocks left as holes) and bound to a free loop
 * device, whose path goes to dev. */
static int attach_image(const void *image, unsigned long size, char *dev, size_t devlen)
{
	static unsigned char out[65536];
	z_stream zs;
	off_t pos = 0;
	int memfd, ctl, loop, n, z = Z_OK, ok = -1;

	memfd = memfd_create("image", 0);
	if (memfd == -1)
		return -1;
	memset(&zs, 0, sizeof(zs));
	zs.next_in = (unsigned char *)image;
	zs.avail_in = size;
	if (inflateInit(&zs) != Z_OK)
		goto out;
	while (z == Z_OK) {
		size_t got, i;

		zs.next_out = out;
		zs.avail_out = sizeof(out);
		z = inflate(&zs, Z_NO_FLUSH);
		got = sizeof(out) - zs.avail_out;
		i = 0;
		while (i < got && out[i] == 0)
			i++;
		if ((z != Z_OK && z != Z_STREAM_END) || (i < got && pwrite(memfd, out, got, pos) != (ssize_t)got))
			break;
		pos += got;
	}
	inflateEnd(&zs);
	if (z != Z_STREAM_END || ftruncate(memfd, pos)) {
		errno = EINVAL;
		goto out;
	}
	ctl = open("/dev/loop-control", O_RDWR);
	if (ctl == -1)
		goto out;
	n = ioctl(ctl, LOOP_CTL_GET_FREE);
	close(ctl);
	snprintf(dev, devlen, "/dev/loop%d", n);
	loop = n < 0 ? -1 : open(dev, O_RDWR);
	if (loop != -1) {
		if (ioctl(loop, LOOP_SET_FD, memfd) == 0)
			ok = 0;
		close(loop);
	}
out:
	close(memfd);
	return ok;
}

/* syz_mount_image: mount the image (no device when it is empty) on dir and return dir opened;
 * options that would let a corrupt image panic the kernel are overridden. */
static long syz_mount_image(long fs, long dir, long flags, long optsarg, long change_dir, long size,
			    long image)
{
	char dev[64], opts[4096];
	const char *name = (const char *)fs;
	int fd = -1, loop;

	snprintf(opts, sizeof(opts), "%s", optsarg ? (const char *)optsarg : "");
	if (strcmp(name, "iso9660") == 0)
		flags |= MS_RDONLY;
	else if (strncmp(name, "ext", 3) == 0 &&
		 (strstr(opts, "errors=panic") || !strstr(opts, "errors=remount-ro")))
		snprintf(opts + strlen(opts), sizeof(opts) - strlen(opts), "%serrors=continue", *opts ? "," : "");
	else if (strcmp(name, "xfs") == 0)
		snprintf(opts + strlen(opts), sizeof(opts) - strlen(opts), "%snouuid", *opts ? "," : "");
	if (size && attach_image((const void *)image, size, dev, sizeof(dev)))
		return -1;
	mkdir((const char *)dir, 0777);
	if (mount(size ? dev : NULL, (const char *)dir, name, flags, opts) == 0) {
		fd = open((const char *)dir, O_RDONLY | O_DIRECTORY);
		if (fd != -1 && (change_dir & 0xff) && chdir((const char *)dir)) {
			close(fd);
			fd = -1;
		}
	}
	if (size) {
		/* Detached now if the mount failed, else when it goes away. */
		int err = errno;

		loop = open(dev, O_RDONLY);
		ioctl(loop, LOOP_CLR_FD, 0);
		close(loop);
		errno = err;
	}
	return fd;
}
"#;
