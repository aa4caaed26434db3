/* services.c - services offered by plugins and the holds on them (see services.h). */
#include "services.h"

#include "log.h"
#include "plugin_loader.h"
#include "server.h"

#include <stdlib.h>
#include <string.h>

/* One service offered by one plugin instance. */
struct service_entry {
    char *name;
    uint32_t version;
    const void *fns;
    void *instance;
    struct chatd_plugin *plugin;
};

/* The holds of one plugin on one provider: what chatd_service.pin points at. */
struct service_pin {
    struct chatd_plugin *holder;
    struct chatd_plugin *provider; /* NULL once closed regardless (teardown) */
    unsigned count;
    struct service_pin *next;
};

int services_list_has(const char *const *list, const char *name)
{
    for (; list && *list; list++)
        if (strcmp(*list, name) == 0)
            return 1;
    return 0;
}

int services_provide(struct server *srv, struct chatd_plugin *p, const char *name, uint32_t version,
                     const void *fns, void *instance)
{
    if (!name || !*name || strlen(name) > SERVICE_NAME_MAX || !fns)
        return CHATD_EINVAL;
    if (!PLUGIN_DESC_HAS(p, provides) || !services_list_has(p->desc->provides, name))
        return CHATD_EPERM;
    for (size_t i = 0; i < srv->n_services; i++) {
        const struct service_entry *e = &srv->services[i];
        /* The instance a reload replaces keeps offering it until the new one serves. */
        if (strcmp(e->name, name) == 0 &&
            (e->plugin == p || strcmp(e->plugin->name, p->name) != 0)) {
            log_error("plugin %s: service '%s' is already offered by plugin %s", p->name, name,
                      e->plugin->name);
            return CHATD_EEXIST;
        }
    }
    struct service_entry *grown = realloc(srv->services, (srv->n_services + 1) * sizeof(*grown));
    if (!grown)
        return CHATD_ENOMEM;
    srv->services = grown;
    char *copy = strdup(name);
    if (!copy)
        return CHATD_ENOMEM;
    srv->services[srv->n_services++] = (struct service_entry){
        .name = copy, .version = version, .fns = fns, .instance = instance, .plugin = p};
    return 0;
}

int services_get(struct server *srv, const char *name, uint32_t version, struct chatd_service *out)
{
    if (!name || !out)
        return CHATD_EINVAL;
    for (size_t i = 0; i < srv->n_services; i++) {
        const struct service_entry *e = &srv->services[i];
        /* Not the new instance of a reload while it is still in init. */
        if (strcmp(e->name, name) != 0 || e->plugin->state != PLUGIN_RUNNING)
            continue;
        if (e->version < version)
            return CHATD_ENOSYS;
        *out = (struct chatd_service){
            .version = e->version, .fns = e->fns, .instance = e->instance, .pin = NULL};
        return 0;
    }
    return CHATD_ENOENT;
}

/* Whether pin is one of ours (a plugin hands back what it was given, or garbage). */
static int pin_known(const struct server *srv, const struct service_pin *pin)
{
    for (const struct service_pin *at = srv->service_pins; at; at = at->next)
        if (at == pin)
            return 1;
    return 0;
}

int services_hold(struct server *srv, struct chatd_plugin *p, struct chatd_service *svc)
{
    if (!svc)
        return CHATD_EINVAL;
    struct service_pin *pin = svc->pin;
    if (pin && (!pin_known(srv, pin) || pin->holder != p))
        return CHATD_EINVAL;
    if (!pin) {
        struct chatd_plugin *provider = NULL;
        for (size_t i = 0; i < srv->n_services && !provider; i++)
            if (srv->services[i].fns == svc->fns && srv->services[i].instance == svc->instance)
                provider = srv->services[i].plugin;
        if (!provider)
            return CHATD_EINVAL;
        for (pin = srv->service_pins; pin; pin = pin->next)
            if (pin->holder == p && pin->provider == provider)
                break;
        if (!pin) {
            if (!(pin = calloc(1, sizeof(*pin))))
                return CHATD_ENOMEM;
            pin->holder = p;
            pin->provider = provider;
            pin->next = srv->service_pins;
            srv->service_pins = pin;
        }
        svc->pin = pin;
    }
    pin->count++;
    p->holds_taken++;
    if (pin->provider)
        pin->provider->service_holds++;
    return 0;
}

/* Take pin off the list and free it. */
static void pin_free(struct server *srv, struct service_pin *pin)
{
    for (struct service_pin **at = &srv->service_pins; *at; at = &(*at)->next) {
        if (*at == pin) {
            *at = pin->next;
            free(pin);
            return;
        }
    }
}

void services_release(struct server *srv, struct chatd_plugin *p, struct chatd_service *svc)
{
    struct service_pin *pin = svc ? svc->pin : NULL;
    if (!pin || !pin_known(srv, pin) || pin->holder != p || pin->count == 0) {
        log_warn("plugin %s: service_release of a service it does not hold (ignored)", p->name);
        return;
    }
    pin->count--;
    p->holds_taken--;
    if (pin->provider)
        pin->provider->service_holds--;
    if (pin->count == 0) {
        svc->pin = NULL;
        pin_free(srv, pin);
    }
}

void services_retire_plugin(struct server *srv, struct chatd_plugin *p)
{
    size_t kept = 0;
    for (size_t i = 0; i < srv->n_services; i++) {
        if (srv->services[i].plugin == p)
            free(srv->services[i].name);
        else
            srv->services[kept++] = srv->services[i];
    }
    srv->n_services = kept;
}

void services_forget_plugin(struct server *srv, struct chatd_plugin *p)
{
    services_retire_plugin(srv, p);
    struct service_pin *pin = srv->service_pins;
    while (pin) {
        struct service_pin *next = pin->next;
        if (pin->holder == p) {
            log_warn("plugin %s closed with %u holds on services of plugin %s: released", p->name,
                     pin->count, pin->provider ? pin->provider->name : "(gone)");
            if (pin->provider)
                pin->provider->service_holds -= pin->count;
            pin_free(srv, pin);
        } else if (pin->provider == p) {
            /* Only at teardown: a retired provider is closed once no hold is left. */
            log_warn("plugin %s closed while plugin %s holds its service", p->name,
                     pin->holder->name);
            pin->provider = NULL;
        }
        pin = next;
    }
}

void services_free_all(struct server *srv)
{
    for (size_t i = 0; i < srv->n_services; i++)
        free(srv->services[i].name);
    free(srv->services);
    srv->services = NULL;
    srv->n_services = 0;
    while (srv->service_pins) {
        struct service_pin *pin = srv->service_pins;
        srv->service_pins = pin->next;
        free(pin);
    }
}
