#pragma once
// <linux/if_tun.h> uses _IOW/_IOR without including <sys/ioctl.h>; Swift does not import those macros.
#include <sys/ioctl.h>
#include <linux/if_tun.h>
static inline unsigned long ctun_TUNSETIFF(void) { return TUNSETIFF; }
