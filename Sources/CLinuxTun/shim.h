#pragma once
// <linux/if_tun.h> uses _IOW/_IOR without including <sys/ioctl.h>; Swift does not import those macros.
#include <sys/ioctl.h>
#include <linux/if_tun.h>
static inline unsigned long ctun_TUNSETIFF(void) { return TUNSETIFF; }
static inline int ctun_set_offload(int fd, unsigned int flags) { return ioctl(fd, TUNSETOFFLOAD, (unsigned long)flags); }
