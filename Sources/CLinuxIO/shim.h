#pragma once
// The Linux IO AppRuntime's data plane uses: epoll, eventfd, and batched UDP (recvmmsg/sendmmsg and the
// GRO/GSO socket options). glibc declares struct mmsghdr
// and the calls only under _GNU_SOURCE, which Swift's Glibc module lacks, so they are reached through syscall(2)
// with a struct of the kernel's layout.
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <netinet/in.h>
#include <unistd.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>

struct cudp_mmsghdr {
    struct msghdr msg_hdr;
    unsigned int msg_len;
};

static inline int cudp_recvmmsg(int fd, struct cudp_mmsghdr *messages, unsigned int count, int flags) {
    return (int)syscall(SYS_recvmmsg, fd, messages, count, flags, NULL);
}

static inline int cudp_sendmmsg(int fd, struct cudp_mmsghdr *messages, unsigned int count, int flags) {
    return (int)syscall(SYS_sendmmsg, fd, messages, count, flags);
}

// <linux/udp.h> and <netinet/udp.h> values, stable since Linux 4.18 (GSO) and 5.0 (GRO).
// The socket type of the data plane's UDP sockets (Swift's release builds do not always see glibc's enum).
static const int CUDP_SOCK_DGRAM_NONBLOCK_CLOEXEC = SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC;
static const int CTCP_SOCK_STREAM_NONBLOCK_CLOEXEC = SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC;
static const int CTCP_ACCEPT_FLAGS = SOCK_NONBLOCK | SOCK_CLOEXEC;
static const int CTCP_MSG_NOSIGNAL = MSG_NOSIGNAL;
static inline int ctcp_accept4(int fd, struct sockaddr *address, socklen_t *length, int flags) {
    return (int)syscall(SYS_accept4, fd, address, length, flags);
}
static const int CUDP_SOL_UDP = 17;
static const int CUDP_UDP_SEGMENT = 103;
static const int CUDP_UDP_GRO = 104;
static const int CUDP_SO_MARK = 36;
static const int CUDP_SO_RCVBUFFORCE = 33;
static const int CUDP_SO_SNDBUFFORCE = 32;
// The destination address of each received datagram (in_pktinfo: ipi_addr at byte 8; in6_pktinfo: the address
// at byte 0), which the node needs as its host candidate when the socket is bound to the wildcard address.
static const int CUDP_IP_PKTINFO = 8;
static const int CUDP_IPV6_RECVPKTINFO = 49;
static const int CUDP_IPV6_PKTINFO = 50;

// CMSG_* are macros Swift cannot call.
static inline size_t cudp_cmsg_space(size_t length) { return CMSG_SPACE(length); }
static inline size_t cudp_cmsg_len(size_t length) { return CMSG_LEN(length); }
static inline struct cmsghdr *cudp_cmsg_firsthdr(struct msghdr *message) { return CMSG_FIRSTHDR(message); }
static inline struct cmsghdr *cudp_cmsg_nxthdr(struct msghdr *message, struct cmsghdr *header) { return CMSG_NXTHDR(message, header); }
static inline unsigned char *cudp_cmsg_data(struct cmsghdr *header) { return CMSG_DATA(header); }
