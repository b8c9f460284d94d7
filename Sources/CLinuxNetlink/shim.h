#pragma once
// Route netlink (rtnetlink(7)) and policy routing: the kernel's structures and constants for AppRuntime.
#include <sys/socket.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/if_addr.h>
#include <linux/if_link.h>
#include <linux/fib_rules.h>
#include <net/if.h>
#include <sys/syscall.h>
#include <unistd.h>

// setns(2) for network namespaces; glibc declares it only under _GNU_SOURCE, which Swift's Glibc module lacks.
static inline int cnetlink_join_network_namespace(int fd) { return (int)syscall(SYS_setns, fd, 0x40000000 /* CLONE_NEWNET */); }
