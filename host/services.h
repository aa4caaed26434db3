/* services.h - services (ABI 1.2): tables of functions a plugin offers under a name and
 * a version, found by others with service_get and pinned with service_hold. Loop thread
 * only.
 *
 * A service belongs to one plugin instance. A reload that replaces the provider lets the
 * new instance offer the same name during its init; from its activation on service_get
 * finds only the new one, while the old instance stays mapped as long as any hold on it
 * remains (its service_holds count, checked with the others before a retired instance
 * is closed). A hold pins the holder too (holds_taken). */
#ifndef CHATD_HOST_SERVICES_H
#define CHATD_HOST_SERVICES_H

#include <chatd/plugin.h>

struct server;

/* The longest service name, in bytes. */
#define SERVICE_NAME_MAX 64

/* Whether `name` is in the NULL-terminated list (NULL: empty). */
int services_list_has(const char *const *list, const char *name);

/* service_provide for p (the caller checks that p is in init). 0, CHATD_EINVAL (no name,
 * an over-long one, or no fns), CHATD_EPERM (not in the descriptor's provides),
 * CHATD_EEXIST (another plugin, or p itself, offers it), CHATD_ENOMEM. */
int services_provide(struct server *srv, struct chatd_plugin *p, const char *name, uint32_t version,
                     const void *fns, void *instance);

/* service_get: the serving provider of `name` into *out (pin NULL). 0, CHATD_ENOENT,
 * CHATD_ENOSYS (only an older version), CHATD_EINVAL. */
int services_get(struct server *srv, const char *name, uint32_t version, struct chatd_service *out);

/* service_hold: pin the provider of *svc and the holder p (sets svc->pin). 0,
 * CHATD_EINVAL (svc is not a service service_get found), CHATD_ENOMEM. */
int services_hold(struct server *srv, struct chatd_plugin *p, struct chatd_service *svc);

/* service_release: give back one hold of p on *svc; a svc that is not held is ignored
 * (logged). */
void services_release(struct server *srv, struct chatd_plugin *p, struct chatd_service *svc);

/* p is retired: service_get no longer finds what it offers (held services stay mapped). */
void services_retire_plugin(struct server *srv, struct chatd_plugin *p);

/* p is closed: drop what it offers and the holds it still has (logged: a plugin releases
 * its holds before its shutdown returns). */
void services_forget_plugin(struct server *srv, struct chatd_plugin *p);

/* Free everything left (server teardown). */
void services_free_all(struct server *srv);

#endif
