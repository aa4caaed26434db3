/* cidr.h - address prefixes ("192.0.2.0/24", "2001:db8::/32", or one address): parsed
 * from the config, and matched against a connection's peer (cidr.c). */
#ifndef CHATD_HOST_CIDR_H
#define CHATD_HOST_CIDR_H

#include <stddef.h>

struct sockaddr;

struct cidr {
    int family; /* AF_INET or AF_INET6 */
    unsigned char addr[16];
    unsigned bits; /* the prefix length */
};

/* Parse "ADDRESS" or "ADDRESS/BITS" (a numeric IPv4 or IPv6 address). 0, or -1. */
int cidr_parse(const char *text, struct cidr *out);
/* Whether addr (AF_INET or AF_INET6; an IPv4-mapped IPv6 address counts as its IPv4
 * address) lies in one of the n prefixes. */
int cidr_list_match(const struct cidr *list, size_t n, const struct sockaddr *addr);

#endif
