/* device.h - the device name chat logs in with: chosen once per installation and kept
 * in the state folder next to the login tokens (state_dir.h), so every run of chat on
 * this machine is the same device to the server and resumes where the last one stopped
 * acknowledging. The config file's `device` (or --device) overrides it. */
#ifndef CHAT_DEVICE_H
#define CHAT_DEVICE_H

#include <stddef.h>

/* The wire contract's limit: 1 to 64 of [A-Za-z0-9_.-]. */
#define CHAT_DEVICE_MAX 64

/* Whether `name` is a device name the server accepts. */
int chat_device_valid(const char *name);

/* The installation's device name into out (cap > CHAT_DEVICE_MAX): the stored one, or a
 * new one ("chat-" and 12 random hex digits) stored now (mode 0600). When none can be
 * stored (no home folder), "default", the name the server gives a device-less
 * acknowledging login. */
void chat_device_name(char *out, size_t cap);

#endif
